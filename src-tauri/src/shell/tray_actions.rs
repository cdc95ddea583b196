//! The tray's menu: built once with its click handler, and what each click does.
//!
//! Invariants: no action runs while quitting; a failed action is told in a notification.

use std::sync::atomic::Ordering;

use tauri::{AppHandle, Runtime};

use super::autostart::{autostart_enabled, set_autostart};
use super::engine_follow::notify;
use super::quit::begin_quit;
use super::shell;
use super::windows::{open_logs, show_main};
use crate::menu_model::Action;
use crate::tray;

pub(super) fn build_tray<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
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
        Action::Visit(n) => visit(&sh.backend, &n, true).await,
        Action::VisitPath(n) => visit(&sh.backend, &n, false).await,
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
            let on = autostart_enabled(app);
            set_autostart(app, !on).map(|_| ())
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

/// Open an app in the browser: at its first link (its own origin, `<name>.localhost`; the
/// engine orders `urls`), or at its path on the shared origin (`url`, `/_app/<name>/`).
async fn visit(
    backend: &crate::backend::Backend,
    name: &str,
    own_origin: bool,
) -> Result<(), String> {
    let apps = backend.list().await.map_err(|e| e.to_string())?;
    let view = apps
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| format!("no app {name:?}"))?;
    let url = match own_origin {
        true => view.urls.first().unwrap_or(&view.url),
        false => &view.url,
    };
    super::webview::open_in_browser(url);
    Ok(())
}
