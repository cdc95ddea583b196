//! The shell's state and behaviour: windows (main, one log viewer per app), close-to-tray with
//! the webview released after a while, the tray kept in step with the engine's events,
//! notifications, and quitting.
//!
//! Invariants: the process is never left without a way back: with no tray, closing the main
//! window quits (after stopping every app); a second launch always shows the main window
//! (single instance). A quit runs once; the process exits only after the backend says every
//! app is down. Live log subscriptions are tracked per window and ended when it goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::menu_model::{self, Action, AppItem, QuitProgress, TrayModel, TrayState};
use crate::notice::Watcher;
use crate::tray::{self, TrayProbe};
use crate::window_proc::{HostLink, ToHost, WindowProcess};

/// The main window's label.
pub const MAIN_WINDOW: &str = "main";
/// Log viewer windows are labelled `logs-<app name>` (app names are valid labels).
pub const LOG_WINDOW_PREFIX: &str = "logs-";
/// The control panel's log viewer route on the engine's UI origin; `{name}` is the app, and
/// `?bare` drops the top bar for a window of its own. Keep it in step with ui/ (the one place
/// to change it).
pub const LOG_ROUTE: &str = "/#/logs/{name}?bare";
/// Injected into the shell's windows: log links of the engine's UI open native log windows.
const ENGINE_UI_SCRIPT: &str = include_str!("../engine_ui.js");
/// Events the shell sends to its windows.
pub const EVENT_APPS: &str = "hangar://apps";
pub const EVENT_QUIT: &str = "hangar://quit-progress";
/// How long engine events are gathered before the tray is rebuilt.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

pub fn log_window_label(app: &str) -> String {
    format!("{LOG_WINDOW_PREFIX}{app}")
}

/// What the windows load: the engine's own control panel when it serves one, else the pages
/// built into the shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UiTarget {
    Engine { origin: String },
    Builtin,
}

impl UiTarget {
    pub fn main_url(&self) -> WebviewUrl {
        match self {
            UiTarget::Engine { origin } => match format!("{origin}/").parse() {
                Ok(u) => WebviewUrl::External(u),
                Err(_) => WebviewUrl::App("index.html".into()),
            },
            UiTarget::Builtin => WebviewUrl::App("index.html".into()),
        }
    }

    pub fn logs_url(&self, app: &str) -> WebviewUrl {
        match self {
            UiTarget::Engine { origin } => {
                match format!("{origin}{}", LOG_ROUTE.replace("{name}", app)).parse() {
                    Ok(u) => WebviewUrl::External(u),
                    Err(_) => WebviewUrl::App(format!("logs.html?app={app}").into()),
                }
            }
            UiTarget::Builtin => WebviewUrl::App(format!("logs.html?app={app}").into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Start with no window (the tray only), as at login.
    pub hidden: bool,
    /// How long the main window stays hidden before its webview is released.
    pub release_after: Duration,
    /// Use the built-in pages even when the engine serves a UI.
    pub builtin_ui: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hidden: false,
            release_after: Duration::from_secs(300),
            builtin_ui: false,
        }
    }
}

/// Where the windows live (set once, at setup; [`Role::Whole`] until then).
pub enum Role {
    /// Engine, tray and windows in this process (`--single-process`, and the tests).
    Whole,
    /// Engine and tray here; the windows in a child process, so this one never loads WebKit.
    Host(Arc<WindowProcess>),
    /// The windows only: the engine and the tray are the parent's (`--window`).
    Window(Arc<HostLink>),
}

pub struct Shell {
    pub backend: Backend,
    role: OnceLock<Role>,
    pub options: Options,
    tray_probe: Mutex<TrayProbe>,
    tray_built: AtomicBool,
    state: Mutex<TrayState>,
    last_model: Mutex<Option<TrayModel>>,
    watcher: Mutex<Watcher>,
    /// Bumped on every show/hide of the main window; a release timer only acts if it still
    /// holds the value it started with.
    hide_gen: AtomicU64,
    /// The main window was hidden (closed to the tray) and not shown since.
    main_hidden: AtomicBool,
    quitting: AtomicBool,
    /// Set once every app is down: the exit that follows is allowed.
    may_exit: AtomicBool,
    log_subs: Mutex<HashMap<String, JoinHandle<()>>>,
    changes: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShellInfo {
    pub mode: String,
    pub tray: TrayProbe,
    pub api_port: u16,
    pub proxy_port: u16,
    pub home: String,
    pub ui: UiTarget,
    pub release_after_secs: u64,
    pub version: &'static str,
    pub quitting: bool,
    pub main_window: &'static str,
    /// The desktop app's process (the engine's too when it is hosted there); a window process
    /// gives its host's.
    pub pid: u32,
    /// The process showing the windows, when one runs (the desktop app's child, or `pid` itself
    /// with `--single-process`).
    pub window_pid: Option<u32>,
}

impl Shell {
    pub fn new(backend: Backend, options: Options, tray_probe: TrayProbe) -> Arc<Shell> {
        Arc::new(Shell {
            backend,
            role: OnceLock::new(),
            options,
            tray_probe: Mutex::new(tray_probe),
            tray_built: AtomicBool::new(false),
            state: Mutex::new(TrayState::default()),
            last_model: Mutex::new(None),
            watcher: Mutex::new(Watcher::new()),
            hide_gen: AtomicU64::new(0),
            main_hidden: AtomicBool::new(false),
            quitting: AtomicBool::new(false),
            may_exit: AtomicBool::new(false),
            log_subs: Mutex::new(HashMap::new()),
            changes: Mutex::new(None),
        })
    }

    /// Decide where the windows live; only the first call counts.
    pub fn set_role(&self, role: Role) {
        if self.role.set(role).is_err() {
            tracing::warn!("the shell's role was already set");
        }
    }

    pub fn role(&self) -> &Role {
        self.role.get().unwrap_or(&Role::Whole)
    }

    /// The window process, when this process hosts the windows in one.
    pub fn window_process(&self) -> Option<&Arc<WindowProcess>> {
        match self.role() {
            Role::Host(wp) => Some(wp),
            _ => None,
        }
    }

    /// The link to the host, when this process is the window process.
    pub fn host_link(&self) -> Option<&Arc<HostLink>> {
        match self.role() {
            Role::Window(link) => Some(link),
            _ => None,
        }
    }

    /// The exit that follows is allowed (the window process, told to go by its host).
    pub fn allow_exit(&self) {
        self.may_exit.store(true, Ordering::SeqCst);
    }

    pub fn tray_available(&self) -> bool {
        self.tray_probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .available
    }

    /// Replace what is known about the tray (it can appear or go while the shell runs).
    pub fn set_tray_probe(&self, probe: TrayProbe) {
        *self.tray_probe.lock().unwrap_or_else(|p| p.into_inner()) = probe;
    }

    pub fn main_hidden(&self) -> bool {
        self.main_hidden.load(Ordering::SeqCst)
    }

    pub fn is_quitting(&self) -> bool {
        self.quitting.load(Ordering::SeqCst)
    }

    pub fn may_exit(&self) -> bool {
        self.may_exit.load(Ordering::SeqCst)
    }

    pub fn tray_state(&self) -> TrayState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn tray_model(&self) -> TrayModel {
        menu_model::build(&self.tray_state())
    }

    pub async fn info(&self) -> ShellInfo {
        let ui = self.ui_target().await;
        let (mode, pid, window_pid) = match self.role() {
            Role::Whole => (
                self.backend.mode().to_string(),
                std::process::id(),
                Some(std::process::id()),
            ),
            Role::Host(wp) => (
                self.backend.mode().to_string(),
                std::process::id(),
                wp.pid(),
            ),
            Role::Window(link) => (
                link.facts().mode.clone(),
                link.facts().pid,
                Some(std::process::id()),
            ),
        };
        ShellInfo {
            mode,
            tray: self
                .tray_probe
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            api_port: self.backend.api_port(),
            proxy_port: self.backend.proxy_port(),
            home: self.backend.home().root().display().to_string(),
            ui,
            release_after_secs: self.options.release_after.as_secs(),
            version: env!("CARGO_PKG_VERSION"),
            quitting: self.is_quitting(),
            main_window: "unknown",
            pid,
            window_pid,
        }
    }

    /// Does the engine serve the control panel on its API origin? Asked each time a window is
    /// made, so a UI that appears later is used from then on.
    pub async fn ui_target(&self) -> UiTarget {
        if self.options.builtin_ui {
            return UiTarget::Builtin;
        }
        let origin = format!("http://127.0.0.1:{}", self.backend.api_port());
        let http = match reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
        {
            Ok(c) => c,
            Err(_) => return UiTarget::Builtin,
        };
        let html = http
            .get(format!("{origin}/"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.headers().get("content-type").cloned())
            .and_then(|v| v.to_str().ok().map(|s| s.starts_with("text/html")))
            .unwrap_or(false);
        if html {
            UiTarget::Engine { origin }
        } else {
            UiTarget::Builtin
        }
    }

    fn set_apps(&self, apps: &[hangar::engine::AppView]) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.apps = apps.iter().map(AppItem::from).collect();
        s.engine_error = None;
    }

    fn set_engine_error(&self, why: String) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .engine_error = Some(why);
    }

    pub fn set_autostart_state(&self, on: bool) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .autostart = on;
    }

    fn set_quit_progress(&self, q: QuitProgress) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .quitting = Some(q);
    }
}

fn shell<R: Runtime>(app: &AppHandle<R>) -> Arc<Shell> {
    app.state::<Arc<Shell>>().inner().clone()
}

/// Build the tray (when there is one) and start following the engine.
pub fn start<R: Runtime>(app: &AppHandle<R>) {
    let sh = shell(app);
    // The window process shows no tray of its own: its host has it.
    if sh.tray_available() && sh.host_link().is_none() {
        if let Err(e) = build_tray(app) {
            tracing::warn!("no tray after all ({e}); closing the window will quit");
            let none = TrayProbe {
                available: false,
                why: format!("building the tray failed: {e}"),
            };
            // A window process started from now on must know: closing its window then quits.
            if let Some(wp) = sh.window_process() {
                wp.set_tray(none.clone());
            }
            sh.set_tray_probe(none);
        }
    }
    let handle = app.clone();
    let task = tauri::async_runtime::spawn(async move { follow_engine(handle).await });
    let tauri::async_runtime::JoinHandle::Tokio(t) = task;
    *sh.changes.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
}

fn build_tray<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let sh = shell(app);
    let model = sh.tray_model();
    let menu = tray::menu(app, &model)?;
    tauri::tray::TrayIconBuilder::with_id(tray::TRAY_ID)
        .icon(tray::icon_image(model.icon)?)
        .tooltip(&model.tooltip)
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            let id = event.id().as_ref().to_string();
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = run_action(&app, &id).await {
                    tracing::warn!("tray {id}: {e}");
                }
            });
        })
        .build(app)?;
    sh.tray_built.store(true, Ordering::SeqCst);
    *sh.last_model.lock().unwrap_or_else(|p| p.into_inner()) = Some(model);
    Ok(())
}

/// Bring the tray and the windows in step with the state (after a change).
pub fn refresh_tray<R: Runtime>(app: &AppHandle<R>) {
    let sh = shell(app);
    if !sh.tray_built.load(Ordering::SeqCst) {
        return;
    }
    let model = sh.tray_model();
    let mut last = sh.last_model.lock().unwrap_or_else(|p| p.into_inner());
    if last.as_ref() == Some(&model) {
        return;
    }
    let Some(t) = app.tray_by_id(tray::TRAY_ID) else {
        return;
    };
    let icon_changed = last.as_ref().map(|m| m.icon) != Some(model.icon);
    match tray::menu(app, &model) {
        Ok(menu) => {
            if let Err(e) = t.set_menu(Some(menu)) {
                tracing::warn!("cannot update the tray menu: {e}");
            }
        }
        Err(e) => tracing::warn!("cannot build the tray menu: {e}"),
    }
    if icon_changed {
        if let Ok(img) = tray::icon_image(model.icon) {
            let _ = t.set_icon(Some(img));
        }
    }
    let _ = t.set_tooltip(Some(&model.tooltip));
    *last = Some(model);
}

/// Read the apps once and update tray, windows and notifications.
pub async fn sync<R: Runtime>(app: &AppHandle<R>) {
    let sh = shell(app);
    match sh.backend.list().await {
        Ok(apps) => {
            sh.set_apps(&apps);
            let items: Vec<(AppItem, Option<String>)> = apps
                .iter()
                .map(|a| (AppItem::from(a), a.error.clone()))
                .collect();
            let notices = sh
                .watcher
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .observe(&items);
            // Its host notifies, not the window process.
            if sh.host_link().is_none() {
                for n in notices {
                    notify(app, &n.title, &n.body);
                }
            }
            let _ = app.emit(EVENT_APPS, &apps);
        }
        Err(e) => sh.set_engine_error(e.to_string()),
    }
    refresh_tray(app);
}

/// A desktop notification (and a line in the log).
pub fn notify<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str) {
    use tauri_plugin_notification::NotificationExt;
    tracing::info!("notification: {title}: {body}");
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!("cannot show a notification: {e}");
    }
}

/// Follow the engine's events: gather them for [`DEBOUNCE`], then sync once. Reconnects (every
/// 2 s) when an attached engine's stream breaks, until the shell quits.
async fn follow_engine<R: Runtime>(app: AppHandle<R>) {
    let sh = shell(&app);
    loop {
        sync(&app).await;
        match sh.backend.changes().await {
            Ok(mut changes) => {
                while let Some(()) = changes.next().await {
                    tokio::time::sleep(DEBOUNCE).await;
                    // Drain what arrived meanwhile: one rebuild for a burst.
                    while let Some(Some(())) = changes.now_or_never_opt() {}
                    if sh.is_quitting() {
                        continue;
                    }
                    sync(&app).await;
                }
            }
            Err(e) => sh.set_engine_error(e.to_string()),
        }
        if sh.is_quitting() {
            return;
        }
        sh.set_engine_error("the engine's event stream ended".into());
        refresh_tray(&app);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

trait NowOrNever: futures_util::Stream + Unpin {
    /// The next item if one is ready now.
    fn now_or_never_opt(&mut self) -> Option<Option<Self::Item>> {
        futures_util::FutureExt::now_or_never(self.next())
    }
}
impl<S: futures_util::Stream + Unpin> NowOrNever for S {}

/// Show the main window (rebuilding it if its webview was released).
pub async fn show_main<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let sh = shell(app);
    if let Some(wp) = sh.window_process() {
        return wp.show().map_err(tauri::Error::Io);
    }
    sh.hide_gen.fetch_add(1, Ordering::SeqCst);
    sh.main_hidden.store(false, Ordering::SeqCst);
    if let Some(w) = app.get_webview_window(MAIN_WINDOW) {
        w.unminimize()?;
        w.show()?;
        w.set_focus()?;
        return Ok(());
    }
    let target = sh.ui_target().await;
    let w = window_builder(app, MAIN_WINDOW, first_url(&target, target.main_url()))
        .title("Hangar")
        .inner_size(1100.0, 720.0)
        .min_inner_size(480.0, 320.0)
        .build()?;
    if let UiTarget::Engine { .. } = &target {
        open_engine_ui(app, &w, &target.main_url())?;
    }
    Ok(())
}

/// What a new window loads first: the built-in page itself, or, for the engine's UI, a blank
/// page until the webview is logged in (so no page of either kind shows before the right one).
fn first_url(target: &UiTarget, url: WebviewUrl) -> WebviewUrl {
    match (target, "about:blank".parse()) {
        (UiTarget::Engine { .. }, Ok(blank)) => WebviewUrl::External(blank),
        _ => url,
    }
}

/// A window of the shell: log links and pop-ups of the engine's UI become native log windows,
/// other links (an app's URL) open in the system's browser, never inside the shell.
fn window_builder<'a, R: Runtime>(
    app: &'a AppHandle<R>,
    label: &str,
    url: WebviewUrl,
) -> WebviewWindowBuilder<'a, R, AppHandle<R>> {
    let handle = app.clone();
    WebviewWindowBuilder::new(app, label, url)
        .initialization_script(ENGINE_UI_SCRIPT)
        .on_new_window(move |url, _features| {
            let logs = url
                .fragment()
                .and_then(|f| f.strip_prefix("/logs/"))
                .map(|rest| rest.split(['?', '/']).next().unwrap_or("").to_string());
            match logs {
                Some(name) if !name.is_empty() => {
                    let app = handle.clone();
                    tauri::async_runtime::spawn(async move {
                        if let Err(e) = open_logs(&app, &name).await {
                            tracing::warn!("log window for {name}: {e}");
                        }
                    });
                }
                _ if matches!(url.scheme(), "http" | "https") => open_in_browser(url.as_str()),
                _ => tracing::warn!("not opening {url}"),
            }
            tauri::webview::NewWindowResponse::Deny
        })
}

/// Hand a URL to the desktop's browser (`xdg-open`), detached.
fn open_in_browser(url: &str) {
    match std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            // Reap it when it ends; xdg-open returns as soon as the browser has the URL.
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::warn!("cannot run xdg-open for {url}: {e}"),
    }
}

/// Log the webview in (the API's HttpOnly cookie, set natively as `/login` would: the token
/// never reaches a page, and needs no one-time code, so any window can log itself in) and load
/// the engine's UI.
fn open_engine_ui<R: Runtime>(
    app: &AppHandle<R>,
    w: &tauri::WebviewWindow<R>,
    url: &WebviewUrl,
) -> tauri::Result<()> {
    let sh = shell(app);
    let WebviewUrl::External(url) = url else {
        return Ok(());
    };
    let cookie =
        tauri::webview::Cookie::build((hangar::ui_server::COOKIE, sh.backend.token().to_string()))
            .domain("127.0.0.1")
            .path("/api/v1")
            .http_only(true)
            .same_site(tauri::webview::cookie::SameSite::Strict)
            .build();
    w.set_cookie(cookie)?;
    if let Some(lang) = webview_language() {
        w.with_webview(move |pw| {
            use webkit2gtk::{WebContextExt, WebViewExt};
            if let Some(ctx) = pw.inner().context() {
                ctx.set_preferred_languages(&[lang]);
            }
        })?;
    }
    w.navigate(url.clone())
}

/// Under the C/POSIX locale (CI, containers, `LANG=C.UTF-8`) WebKitGTK gives pages the language
/// `c`, which `Intl` rejects ("invalid language tag"), breaking pages that format numbers: name a
/// real language then. Any real locale is left to WebKit.
pub fn webview_language() -> Option<&'static str> {
    let ctype = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default();
    let base = ctype.split(['.', '@']).next().unwrap_or("");
    matches!(base, "" | "C" | "POSIX").then_some("en-US")
}

/// Hide the main window; release its webview after `release_after` if it stays hidden.
pub fn hide_main<R: Runtime>(app: &AppHandle<R>) {
    let sh = shell(app);
    let Some(w) = app.get_webview_window(MAIN_WINDOW) else {
        return;
    };
    let _ = w.hide();
    sh.main_hidden.store(true, Ordering::SeqCst);
    let gen = sh.hide_gen.fetch_add(1, Ordering::SeqCst) + 1;
    let after = sh.options.release_after;
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(after).await;
        let sh = shell(&app);
        if sh.hide_gen.load(Ordering::SeqCst) != gen || sh.is_quitting() || !sh.main_hidden() {
            return;
        }
        if let Some(w) = app.get_webview_window(MAIN_WINDOW) {
            tracing::info!(
                "main window hidden for {} s: releasing its webview",
                after.as_secs()
            );
            // The rest (WebKit's network process, the heap) follows from its Destroyed event
            // (`shed_when_no_webview`).
            let _ = w.destroy();
        }
    });
}

/// How long after a window went the shell looks whether any webview is left: WebKit ends the
/// window's web process meanwhile.
pub const SETTLE_AFTER_WINDOW: Duration = Duration::from_secs(2);

/// A window was destroyed, or the shell started in the tray: once no webview is left (and the
/// shell is not quitting), end WebKit's network process, which WebKit keeps otherwise, hand the
/// freed heap back to the system and page out library pages (see `lean`).
pub fn shed_when_no_webview<R: Runtime>(app: &AppHandle<R>) {
    if shell(app).host_link().is_some() {
        // The window process ends itself once no window is left.
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(SETTLE_AFTER_WINDOW).await;
        if shell(&app).is_quitting() {
            return;
        }
        // On the main thread, where windows are made: none can appear between the check and
        // the end of the network process.
        let handle = app.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let r = app.run_on_main_thread(move || {
            let none_left = handle.webview_windows().is_empty();
            if none_left {
                crate::lean::end_webkit_network_process();
            }
            let _ = tx.send(none_left);
        });
        if let Err(e) = r {
            tracing::warn!("cannot reach the main thread: {e}");
        }
        let none_left = rx.await.unwrap_or(false);
        tokio::time::sleep(SETTLE_AFTER_WINDOW).await;
        trim_heap();
        if none_left && !shell(&app).is_quitting() {
            let advised = crate::lean::page_out_file_mappings();
            tracing::info!(
                "no webview left: library pages paged out ({} MB of mappings advised)",
                advised / (1024 * 1024)
            );
        }
    });
}

/// Return free heap pages to the system (glibc keeps them otherwise).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; no pointer is handed over.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long a change of the desktop's tray host is left to settle (a panel restarting) before
/// the shell acts on it.
pub const TRAY_SETTLE: Duration = Duration::from_secs(2);
/// How long `--hidden` waits at start for a tray that is not there yet (at login, autostart can
/// start Hangar before the panel) before it shows the window instead.
pub const TRAY_WAIT: Duration = Duration::from_secs(10);

/// Follow the desktop's tray host while the shell runs (see [`tray::watch`]): a tray that
/// appears is used; one that goes leaves no hidden window behind.
pub fn follow_tray<R: Runtime>(app: &AppHandle<R>) {
    let handle = app.clone();
    tray::watch(move || {
        // On the watch thread: the probe is a blocking call on the bus.
        std::thread::sleep(TRAY_SETTLE);
        tray_changed(&handle, tray::probe());
    });
}

/// What is known about the tray changed to `probe`. Found: build the tray icon if it was never
/// built (a tray host that comes back finds the icon libayatana keeps). Lost: no window may stay
/// hidden, or Hangar would be unreachable; the window process is told, and decides for its own
/// windows.
pub fn tray_changed<R: Runtime>(app: &AppHandle<R>, probe: TrayProbe) {
    let sh = shell(app);
    if probe.available == sh.tray_available() {
        return;
    }
    tracing::info!(
        available = probe.available,
        "the tray changed: {}",
        probe.why
    );
    if probe.available && sh.host_link().is_none() && !sh.tray_built.load(Ordering::SeqCst) {
        // Tray icons and menus are made on the main thread (which also runs these one at a
        // time: a second change queued meanwhile finds the icon built).
        let handle = app.clone();
        let r = app.run_on_main_thread(move || {
            if shell(&handle).tray_built.load(Ordering::SeqCst) {
                return use_tray(&handle, probe);
            }
            match build_tray(&handle) {
                Ok(()) => use_tray(&handle, probe),
                Err(e) => tracing::warn!("a tray appeared, but building the icon failed: {e}"),
            }
        });
        if let Err(e) = r {
            tracing::warn!("cannot reach the main thread: {e}");
        }
        return;
    }
    use_tray(app, probe);
}

fn use_tray<R: Runtime>(app: &AppHandle<R>, probe: TrayProbe) {
    let sh = shell(app);
    let lost = !probe.available;
    sh.set_tray_probe(probe.clone());
    if let Some(wp) = sh.window_process() {
        let running = wp.pid().is_some();
        wp.set_tray(probe);
        if lost && !running {
            tracing::info!("the tray went while no window was open: showing the main window");
            if let Err(e) = wp.show() {
                tracing::error!("cannot open the main window: {e}");
            }
        }
        return;
    }
    if lost && sh.main_hidden() {
        tracing::info!("the tray went while the main window was hidden: showing it");
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            if let Err(e) = show_main(&app).await {
                tracing::error!("cannot open the main window: {e}");
            }
        });
    }
}

/// Started in the tray (`--hidden`) where no tray is yet: wait up to [`TRAY_WAIT`] for one
/// (see [`follow_tray`]), then show the main window if none came.
pub fn show_main_unless_a_tray_comes<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let sh = shell(&app);
        let deadline = tokio::time::Instant::now() + TRAY_WAIT;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if sh.tray_available() {
                tracing::info!("a tray came: staying in it");
                if sh.window_process().is_none() {
                    // (A host shed what starting touched already.)
                    shed_when_no_webview(&app);
                }
                return;
            }
        }
        tracing::info!(
            "no tray came within {} s: showing the main window",
            TRAY_WAIT.as_secs()
        );
        if let Err(e) = show_main(&app).await {
            tracing::error!("cannot open the main window: {e}");
        }
    });
}

/// The user closed the main window. With a tray: hide it and keep serving. Without one: quit,
/// so the process never lingers where nobody can reach it.
pub fn main_close_requested<R: Runtime>(app: &AppHandle<R>) -> bool {
    let sh = shell(app);
    if sh.is_quitting() {
        return false;
    }
    if sh.tray_available() {
        hide_main(app);
        return true;
    }
    tracing::info!("main window closed and no tray to come back through: quitting");
    begin_quit(app);
    true
}

/// Open (or bring forward) the log viewer window of `name`.
pub async fn open_logs<R: Runtime>(app: &AppHandle<R>, name: &str) -> Result<String, String> {
    let sh = shell(app);
    // Only an existing app gets a window; the name is then a valid label too.
    sh.backend
        .log_tail(name, 0)
        .await
        .map_err(|e| e.to_string())?;
    let label = log_window_label(name);
    if let Some(wp) = sh.window_process() {
        wp.logs(name).map_err(|e| e.to_string())?;
        return Ok(label);
    }
    if let Some(w) = app.get_webview_window(&label) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return Ok(label);
    }
    let target = sh.ui_target().await;
    let w = window_builder(app, &label, first_url(&target, target.logs_url(name)))
        .title(format!("Hangar — logs of {name}"))
        .inner_size(960.0, 600.0)
        .build()
        .map_err(|e| e.to_string())?;
    if let UiTarget::Engine { .. } = &target {
        open_engine_ui(app, &w, &target.logs_url(name)).map_err(|e| e.to_string())?;
    }
    Ok(label)
}

/// Remember a window's live log subscription, ending the one it had before (a reload).
pub fn track_log_sub(sh: &Shell, label: &str, task: JoinHandle<()>) {
    let mut subs = sh.log_subs.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(old) = subs.insert(label.to_string(), task) {
        old.abort();
    }
}

/// A window went away: end what it was subscribed to.
pub fn window_gone(sh: &Shell, label: &str) {
    if let Some(t) = sh
        .log_subs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(label)
    {
        t.abort();
    }
}

pub fn log_sub_count(sh: &Shell) -> usize {
    sh.log_subs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .filter(|t| !t.is_finished())
        .count()
}

/// Stop every app gracefully, showing progress in the tray and the windows, then exit.
/// Runs once, however often it is asked for.
pub fn begin_quit<R: Runtime>(app: &AppHandle<R>) {
    let sh = shell(app);
    if let Some(link) = sh.host_link() {
        // The host quits (and shows its progress here); it ends this process last.
        link.send(ToHost::Quit);
        return;
    }
    if sh.quitting.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let sh = shell(&app);
        let progress = {
            let app = app.clone();
            move |q: QuitProgress| {
                show_quit_progress(&app, q);
                if let Some(wp) = shell(&app).window_process() {
                    wp.progress(q);
                }
            }
        };
        if let Err(e) = sh.backend.quit(progress).await {
            tracing::error!("quitting: {e}");
        }
        if let Some(t) = sh.changes.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
        for (_, t) in sh
            .log_subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            t.abort();
        }
        if let Some(wp) = sh.window_process() {
            wp.close(WINDOW_PROCESS_PATIENCE).await;
        }
        sh.may_exit.store(true, Ordering::SeqCst);
        tracing::info!("every app stopped: exiting");
        app.exit(0);
    });
}

/// How long a quit waits for the window process to exit before killing it.
pub const WINDOW_PROCESS_PATIENCE: Duration = Duration::from_secs(10);

/// A quit's progress, in the tray and the windows: an event for the page, and the main window's
/// title (whatever page it shows).
pub fn show_quit_progress<R: Runtime>(app: &AppHandle<R>, q: QuitProgress) {
    let sh = shell(app);
    sh.set_quit_progress(q);
    refresh_tray(app);
    let _ = app.emit(EVENT_QUIT, q);
    if let Some(w) = app.get_webview_window(MAIN_WINDOW) {
        let _ = w.set_title(&format!(
            "Hangar — quitting: {} of {} apps still stopping",
            q.left, q.total
        ));
    }
}

/// One tray action: a click on the tray menu entry `id`.
pub async fn run_action<R: Runtime>(app: &AppHandle<R>, id: &str) -> Result<(), String> {
    let action = Action::parse(id).ok_or_else(|| format!("no tray action {id:?}"))?;
    let sh = shell(app);
    if sh.is_quitting() {
        return Err("Hangar is quitting".into());
    }
    let result = match action {
        Action::Open => show_main(app).await.map_err(|e| e.to_string()),
        Action::Start(n) => sh
            .backend
            .start(&n)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Action::Stop(n) => sh
            .backend
            .stop(&n)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Action::Logs(n) => open_logs(app, &n).await.map(|_| ()),
        Action::StartAll => match sh.backend.start_all().await {
            Ok(errors) if errors.is_empty() => Ok(()),
            Ok(errors) => Err(errors.join("; ")),
            Err(e) => Err(e.to_string()),
        },
        Action::StopAll => match sh.backend.stop_all().await {
            Ok(errors) if errors.is_empty() => Ok(()),
            Ok(errors) => Err(errors.join("; ")),
            Err(e) => Err(e.to_string()),
        },
        Action::ToggleAutostart => {
            let on = crate::autostart_enabled(app);
            crate::set_autostart(app, !on).map(|_| ())
        }
        Action::Quit => {
            begin_quit(app);
            Ok(())
        }
    };
    if let Err(e) = &result {
        notify(app, "Hangar", e);
    }
    result
}
