//! Quitting: every app stopped gracefully, the progress shown in the tray and the windows, then
//! the exit; a signal (SIGTERM, SIGINT, SIGHUP) quits the same way.
//!
//! Invariants: a quit runs once, however often it is asked for; the exit is allowed
//! (`may_exit`) only after the backend says every app is down and the window process is closed;
//! a window process never quits on its own: it asks its host.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, Runtime};

use super::shell;
use super::tray_icon::refresh_tray;
use super::MAIN_WINDOW;
use crate::menu_model::QuitProgress;
use crate::window_proc::ToHost;

/// The event the windows get with a quit's progress.
pub const EVENT_QUIT: &str = "hangar://quit-progress";

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

/// SIGTERM, SIGINT or SIGHUP (logout, `kill`) quit as the tray's Quit does: every app stopped.
pub async fn quit_on_signal<R: Runtime>(app: AppHandle<R>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
    tracing::info!("signal received: quitting");
    begin_quit(&app);
}
