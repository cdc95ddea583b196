//! Following the engine: its events, gathered for [`DEBOUNCE`], bring the tray, the windows
//! ([`EVENT_APPS`]) and notifications in step; an attached engine's broken stream is followed
//! again.
//!
//! Invariants: one read of the apps per burst of events; nothing more after a quit began;
//! notifications only from the process with the tray (a window process's host notifies), never
//! for what the first list already showed (see `notice`).

use std::time::Duration;

use futures_util::StreamExt;
use tauri::{AppHandle, Emitter, Runtime};

use super::shell;
use super::tray_icon::refresh_tray;
use crate::menu_model::AppItem;
use crate::notice::MemoryRestarts;

/// The event the windows get with the apps' list.
pub const EVENT_APPS: &str = "hangar://apps";

/// How long engine events are gathered before the tray is rebuilt.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Start following the engine (until the quit ends it).
pub fn start<R: Runtime>(app: &AppHandle<R>) {
    let sh = shell(app);
    let handle = app.clone();
    let task = tauri::async_runtime::spawn(async move { follow_engine(handle).await });
    let tauri::async_runtime::JoinHandle::Tokio(t) = task;
    *sh.changes.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
}

/// Read the apps once and update tray, windows and notifications.
pub async fn sync<R: Runtime>(app: &AppHandle<R>) {
    let sh = shell(app);
    match sh.backend.list().await {
        Ok(apps) => {
            sh.set_apps(&apps);
            let items: Vec<(AppItem, Option<String>, MemoryRestarts)> = apps
                .iter()
                .map(|a| {
                    let memory = MemoryRestarts {
                        count: a.memory_restarts,
                        reason: a.reason.clone(),
                    };
                    (AppItem::from(a), a.error.clone(), memory)
                })
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
