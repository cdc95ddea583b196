//! The tray icon: built from the menu model, brought in step with the state after a change, and
//! its menu's clicks run as actions.
//!
//! Invariants: updated only once built, and only when the model differs from the one shown (the
//! image only when its variant changed); no action runs while quitting; a failed action is told
//! in a notification.

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
