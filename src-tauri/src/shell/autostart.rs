//! Start at login: whether it is on, switching it (from a window or the tray), and the arguments
//! of the login entry.
//!
//! Invariants: the tray's check mark follows every switch; a switch in the window process is
//! told to its host, whose tray shows it; the login entry starts Hangar in the tray, on the same
//! home.

use std::sync::Arc;

use tauri::{AppHandle, Manager, Runtime};

use super::tray_icon::refresh_tray;
use super::Shell;
use crate::window_proc::ToHost;
use crate::Args;

pub fn autostart_enabled<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.try_state::<tauri_plugin_autostart::AutoLaunchManager>()
        .and_then(|m| m.is_enabled().ok())
        .unwrap_or(false)
}

/// Turn start-at-login on or off; returns the setting as it now is.
pub fn set_autostart<R: Runtime>(app: &AppHandle<R>, on: bool) -> Result<bool, String> {
    let m = app
        .try_state::<tauri_plugin_autostart::AutoLaunchManager>()
        .ok_or("start at login is not available here")?;
    let r = if on { m.enable() } else { m.disable() };
    r.map_err(|e| format!("cannot change start at login: {e}"))?;
    let now = m.is_enabled().unwrap_or(on);
    if let Some(sh) = app.try_state::<Arc<Shell>>() {
        sh.set_autostart_state(now);
        if let Some(link) = sh.host_link() {
            link.send(ToHost::Autostart);
        }
    }
    refresh_tray(app);
    Ok(now)
}

/// The autostart entry's arguments: start in the tray, on this home when one was given.
pub(crate) fn autostart_args(args: &Args) -> Vec<String> {
    let mut v = vec!["--hidden".to_string()];
    if let Some(h) = &args.home {
        v.push("--home".into());
        v.push(h.display().to_string());
    }
    v
}
