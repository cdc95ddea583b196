//! Memory given back when no webview is needed: the hidden main window's webview released after
//! `release_after`, and once no webview is left, WebKit's network process ended, the heap trimmed
//! and library pages paged out (see `lean`).
//!
//! Invariants: a release acts only if the main window stayed hidden since (its hide generation
//! unchanged) and the shell is not quitting; whether any webview is left is decided on the main
//! thread, where windows are made; the window process sheds nothing (it ends itself once no
//! window is left).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tauri::{AppHandle, Manager, Runtime};

use super::shell;
use super::MAIN_WINDOW;

/// The main window was hidden (its hide generation is now `gen`): destroy its webview after
/// `release_after` unless it was shown or hidden again meanwhile, or the shell is quitting.
pub(super) fn release_main_later<R: Runtime>(app: &AppHandle<R>, gen: u64) {
    let after = shell(app).options.release_after;
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
