//! The shell's side of the window process (see `window_proc`): in the host, a loop over what its
//! window process tells it; in the window process, a loop over its host's requests.
//!
//! Invariants: the host quits when the window process ended unasked and no tray can bring a
//! window back; the window process reports itself idle whenever no window is left, and exits
//! only when its host closes its input.

use std::sync::Arc;

use tauri::{AppHandle, Manager, Runtime};

use super::autostart::autostart_enabled;
use super::engine_follow::notify;
use super::quit::{begin_quit, show_quit_progress};
use super::release::shed_when_no_webview;
use super::shell;
use super::tray_follow::tray_changed;
use super::tray_icon::refresh_tray;
use super::windows::{open_logs, show_main};
use crate::tray::TrayProbe;
use crate::window_proc::{self, HostEvent, ToWindow, WindowProcess};

/// The host's side of its window process: a quit asked from a window, start at login switched
/// there, no window left (let the process go), the process gone.
pub async fn host_loop<R: Runtime>(
    app: AppHandle<R>,
    wp: Arc<WindowProcess>,
    mut events: tokio::sync::mpsc::Receiver<HostEvent>,
) {
    while let Some(event) = events.recv().await {
        let sh = shell(&app);
        match event {
            HostEvent::Quit => begin_quit(&app),
            HostEvent::Autostart => {
                sh.set_autostart_state(autostart_enabled(&app));
                refresh_tray(&app);
            }
            HostEvent::Idle { id, seq } => {
                wp.idle(id, seq);
            }
            HostEvent::Ended { id, status } => {
                if sh.is_quitting() {
                    continue;
                }
                // Library pages the window process had in use (WebKit's, this binary's) were
                // mapped here too by fault-around, and could not be paged out while it shared
                // them: now they can.
                shed_when_no_webview(&app);
                if !wp.ended(id) {
                    continue;
                }
                tracing::warn!("the window process ended unasked ({status})");
                if sh.tray_available() {
                    notify(
                        &app,
                        "Hangar",
                        &format!("The window closed unexpectedly ({status}); Open Hangar in the tray brings it back."),
                    );
                } else {
                    tracing::info!("no tray to come back through: quitting");
                    begin_quit(&app);
                }
            }
        }
    }
}

/// The window process: its host's requests, until its input ends (then it exits).
pub async fn window_loop<R: Runtime>(app: AppHandle<R>) {
    let sh = shell(&app);
    let Some(link) = sh.host_link().cloned() else {
        return;
    };
    let mut lines = window_proc::stdin_lines();
    while let Some(request) = window_proc::next_request(&mut lines).await {
        match request {
            ToWindow::Show(seq) => {
                link.saw(seq);
                if let Err(e) = show_main(&app).await {
                    tracing::error!("cannot open the main window: {e}");
                }
            }
            ToWindow::Logs(seq, name) => {
                link.saw(seq);
                if let Err(e) = open_logs(&app, &name).await {
                    tracing::warn!("log window for {name}: {e}");
                }
            }
            ToWindow::Progress(q) => show_quit_progress(&app, q),
            ToWindow::Tray(available) => tray_changed(
                &app,
                TrayProbe {
                    available,
                    why: format!(
                        "the desktop app {} its tray",
                        if available { "found" } else { "lost" }
                    ),
                },
            ),
        }
        if app.webview_windows().is_empty() {
            link.idle();
        }
    }
    tracing::debug!("the host closed the window process's input: exiting");
    sh.allow_exit();
    app.exit(0);
}
