//! The tray icon brought in step with the state after a change (built by `tray_actions`).
//!
//! Invariants: updated only once built, and only when the model differs from the one shown (the
//! image only when its variant changed).

use std::sync::atomic::Ordering;

use tauri::{AppHandle, Runtime};

use super::shell;
use crate::tray;

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
