//! The shell's windows: the main window (shown, hidden to the tray, made again after its webview
//! was released) and one log viewer window per app. `show_main` and `open_logs` are the one door
//! to windows in every role: in a host they become requests to its window process.
//!
//! Invariants: closing the main window hides it only when a tray can bring it back, else it
//! quits; a log window is made only for an app the engine knows (its name is then a valid label)
//! and is reused while open; a window's live log subscription is tracked by its label and ended
//! when the window goes (or reloads).

use std::sync::atomic::Ordering;

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};
use tokio::task::JoinHandle;

use super::quit::begin_quit;
use super::release;
use super::shell;
use super::webview::{first_url, open_engine_ui, open_in_browser, UiTarget, ENGINE_UI_SCRIPT};
use super::{Shell, MAIN_WINDOW};

/// Log viewer windows are labelled `logs-<app name>` (app names are valid labels).
pub const LOG_WINDOW_PREFIX: &str = "logs-";

pub fn log_window_label(app: &str) -> String {
    format!("{LOG_WINDOW_PREFIX}{app}")
}

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
        open_engine_ui(app, &w, &target.main_url()).await?;
    }
    Ok(())
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
    release::release_main_later(app, gen);
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
        open_engine_ui(app, &w, &target.logs_url(name))
            .await
            .map_err(|e| e.to_string())?;
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

/// A window of the shell: log links and pop-ups of the engine's UI become native log windows,
/// other links (an app's URL) open in the system's browser, never inside the shell.
pub(super) fn window_builder<'a, R: Runtime>(
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
