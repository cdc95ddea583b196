//! The shell's commands, for its windows (and the engine's UI when it runs in the shell). Each is
//! one call into the shell or the engine; errors are the engine's own sentences.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hangar::engine::AppView;
use hangar::run::logs::LogLine;
use hangar::run::supervisor::{Status, StatusRules};
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, Runtime, State, WebviewWindow};

use crate::menu_model::TrayModel;
use crate::shell::{self, Shell, ShellInfo};

/// Live log lines are sent in batches, at most this often and this big.
pub const BATCH_EVERY: Duration = Duration::from_millis(100);
pub const BATCH_MAX: usize = 1000;

type Res<T> = Result<T, String>;

/// The shell's facts: engine mode and ports, tray, UI target, and the main window's state
/// (`visible`, `hidden`, or `released` when its webview was let go).
#[tauri::command]
pub async fn shell_info<R: Runtime>(
    app: AppHandle<R>,
    sh: State<'_, Arc<Shell>>,
) -> Res<ShellInfo> {
    let mut info = sh.info().await;
    info.main_window = match app.get_webview_window(shell::MAIN_WINDOW) {
        None => "released",
        Some(_) if sh.main_hidden() => "hidden",
        Some(_) => "visible",
    };
    Ok(info)
}

#[tauri::command]
pub async fn list_apps(sh: State<'_, Arc<Shell>>) -> Res<Vec<AppView>> {
    sh.backend.list().await.map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn start_app(sh: State<'_, Arc<Shell>>, name: String) -> Res<AppView> {
    sh.backend.start(&name).await.map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn stop_app(sh: State<'_, Arc<Shell>>, name: String) -> Res<AppView> {
    sh.backend.stop(&name).await.map_err(|e| e.to_string())
}

/// Open the log viewer window of `name` (reused when open); returns its label.
#[tauri::command]
pub async fn open_logs<R: Runtime>(app: AppHandle<R>, name: String) -> Res<String> {
    shell::windows::open_logs(&app, &name).await
}

#[tauri::command]
pub async fn log_tail(
    sh: State<'_, Arc<Shell>>,
    name: String,
    n: Option<usize>,
) -> Res<Vec<LogLine>> {
    sh.backend
        .log_tail(&name, n.unwrap_or(500))
        .await
        .map_err(|e| e.to_string())
}

/// Send `name`'s new log lines to `on_lines`, in batches, until the window closes or reloads.
#[tauri::command]
pub async fn follow_logs<R: Runtime>(
    window: WebviewWindow<R>,
    sh: State<'_, Arc<Shell>>,
    name: String,
    on_lines: Channel<Vec<LogLine>>,
) -> Res<()> {
    let mut lines = sh.backend.follow(&name).await.map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let mut batch: Vec<LogLine> = Vec::new();
        loop {
            let deadline = tokio::time::sleep(BATCH_EVERY);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    next = lines.next() => match next {
                        Some(l) => {
                            batch.push(l);
                            if batch.len() >= BATCH_MAX {
                                break;
                            }
                        }
                        None => {
                            if !batch.is_empty() {
                                let _ = on_lines.send(std::mem::take(&mut batch));
                            }
                            return;
                        }
                    }
                }
            }
            if !batch.is_empty() && on_lines.send(std::mem::take(&mut batch)).is_err() {
                return;
            }
        }
    });
    shell::windows::track_log_sub(&sh, window.label(), task);
    Ok(())
}

#[tauri::command]
pub fn get_autostart<R: Runtime>(app: AppHandle<R>) -> bool {
    shell::autostart::autostart_enabled(&app)
}

/// Start at login: on or off. Returns the new setting.
#[tauri::command]
pub fn set_autostart<R: Runtime>(app: AppHandle<R>, enabled: bool) -> Res<bool> {
    shell::autostart::set_autostart(&app, enabled)
}

/// What the tray menu shows now.
#[tauri::command]
pub fn tray_model(sh: State<'_, Arc<Shell>>) -> TrayModel {
    sh.tray_model()
}

/// The rules of each app status (may it be started, stopped…), from the engine's own
/// definitions, for the shell's fallback page: it never spells a rule itself.
#[tauri::command]
pub fn status_rules() -> Vec<StatusRules> {
    Status::ALL.map(Status::rules).to_vec()
}

#[tauri::command]
pub async fn show_main<R: Runtime>(app: AppHandle<R>) -> Res<()> {
    shell::windows::show_main(&app)
        .await
        .map_err(|e| e.to_string())
}

/// Quit: stop every app gracefully, then exit. Progress arrives as `hangar://quit-progress`.
#[tauri::command]
pub fn quit<R: Runtime>(app: AppHandle<R>) {
    shell::quit::begin_quit(&app);
}
