//! The shell: the state its parts share ([`Shell`], managed by Tauri), where the windows live
//! ([`Role`]) and what `shell_info` reports. Each job has a child module: `windows` (the main
//! window, log windows, close-to-tray; the one door to windows), `webview` (what a window loads,
//! where its links go), `release` (memory given back when no webview is needed), `tray_icon` (the
//! icon and its menu; its clicks), `tray_follow` (a tray that comes and goes), `engine_follow`
//! (the engine's events into the tray, the windows and notifications), `quit`, `autostart`
//! (start at login), `window_link` (the loops on either side of the window process).
//!
//! Invariants: the process is never left without a way back: with no tray, closing the main
//! window quits (after stopping every app); a second launch always shows the main window
//! (single instance). A quit runs once; the process exits only after the backend says every
//! app is down. The role is set once. The state's fields are seen only by `shell` and its
//! children.

pub mod autostart;
pub mod engine_follow;
pub mod quit;
pub mod release;
pub mod tray_actions;
pub mod tray_follow;
pub mod tray_icon;
pub mod webview;
pub mod window_link;
pub mod windows;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};
use tokio::task::JoinHandle;

use self::webview::UiTarget;
use crate::backend::Backend;
use crate::menu_model::{self, AppItem, QuitProgress, TrayModel, TrayState};
use crate::notice::Watcher;
use crate::tray::TrayProbe;
use crate::window_proc::{HostLink, WindowProcess};

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

/// The main window's label.
pub const MAIN_WINDOW: &str = "main";
