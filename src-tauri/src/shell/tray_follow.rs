//! Following the tray: the icon built at start when there is a tray (one that cannot be built
//! counts as none), a tray host that appears or goes while the shell runs, and `--hidden` waiting
//! a while for a tray that is not there yet.
//!
//! Invariants: never an unreachable process: a tray that goes leaves no window hidden (a host
//! tells its window process, and shows the main window when none runs); `--hidden` with no tray
//! shows the window after [`TRAY_WAIT`]; the icon is built once, on the main thread; the window
//! process builds none (its host has it) and follows only what its host tells it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tauri::{AppHandle, Runtime};

use super::release::shed_when_no_webview;
use super::shell;
use super::tray_actions::build_tray;
use super::windows::show_main;
use crate::tray::{self, TrayProbe};

/// Build the tray icon when there is a tray; one that cannot be built counts as no tray.
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
