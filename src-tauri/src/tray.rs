//! The tray: turns a [`TrayModel`] into native menu items, and tells whether this desktop shows
//! tray icons at all.
//!
//! On Linux the tray is an AppIndicator (StatusNotifierItem over D-Bus), which libayatana falls
//! back to an XEmbed icon when only an X11 system tray runs. Stock GNOME has neither without an
//! extension: then there is no tray, and the shell must not hide its only window.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::{AppHandle, Runtime};

use crate::menu_model::{Entry, Icon, TrayModel};

pub const TRAY_ID: &str = "hangar";

const ICON_NORMAL: &[u8] = include_bytes!("../../icons/tray.png");
const ICON_ERROR: &[u8] = include_bytes!("../../icons/tray-error.png");

pub fn icon_image(icon: Icon) -> tauri::Result<Image<'static>> {
    Image::from_bytes(match icon {
        Icon::Normal => ICON_NORMAL,
        Icon::Error => ICON_ERROR,
    })
}

/// Where the answer to "is there a tray?" came from, for the log and `shell_info`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrayProbe {
    pub available: bool,
    pub why: String,
}

/// The bus names a panel's tray host (StatusNotifier watcher) owns.
const WATCHERS: [&str; 2] = [
    "org.kde.StatusNotifierWatcher",
    "org.freedesktop.StatusNotifierWatcher",
];

/// What `HANGAR_TRAY=on|off` says, when it is set.
fn forced() -> Option<TrayProbe> {
    match std::env::var("HANGAR_TRAY").ok().as_deref() {
        Some("on" | "1" | "yes") => Some(TrayProbe {
            available: true,
            why: "HANGAR_TRAY=on".into(),
        }),
        Some("off" | "0" | "no") => Some(TrayProbe {
            available: false,
            why: "HANGAR_TRAY=off".into(),
        }),
        _ => None,
    }
}

/// Whether the answer follows the desktop while Hangar runs (not when `HANGAR_TRAY` decides).
pub fn follows_the_desktop() -> bool {
    forced().is_none()
}

/// `HANGAR_TRAY=on|off` decides when set; otherwise a StatusNotifier watcher on the session bus
/// or an X11 system tray (`_NET_SYSTEM_TRAY_S0`) means yes.
pub fn probe() -> TrayProbe {
    if let Some(p) = forced() {
        return p;
    }
    if status_notifier_watcher() {
        return TrayProbe {
            available: true,
            why: "a StatusNotifier watcher runs on the session bus".into(),
        };
    }
    if x11_system_tray() {
        return TrayProbe {
            available: true,
            why: "an X11 system tray runs".into(),
        };
    }
    TrayProbe {
        available: false,
        why: "no StatusNotifier watcher on the session bus and no X11 system tray".into(),
    }
}

fn status_notifier_watcher() -> bool {
    let Ok(conn) = zbus::blocking::Connection::session() else {
        return false;
    };
    let Ok(dbus) = zbus::blocking::fdo::DBusProxy::new(&conn) else {
        return false;
    };
    WATCHERS.iter().any(|n| {
        zbus::names::BusName::try_from(*n)
            .ok()
            .and_then(|name| dbus.name_has_owner(name).ok())
            .unwrap_or(false)
    })
}

/// Call `changed` from a thread of its own whenever a StatusNotifier watcher appears on or
/// leaves the session bus: a panel that starts after Hangar (autostart can win that race at
/// login), restarts, or an AppIndicator extension switched on or off. An X11 system tray is only
/// looked for by [`probe`]. Nothing is watched when `HANGAR_TRAY` decides.
pub fn watch(changed: impl Fn() + Send + 'static) {
    if !follows_the_desktop() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("tray-watch".into())
        .spawn(move || {
            let Ok(conn) = zbus::blocking::Connection::session() else {
                tracing::debug!("no session bus: the tray is not followed");
                return;
            };
            let Ok(dbus) = zbus::blocking::fdo::DBusProxy::new(&conn) else {
                return;
            };
            let Ok(signals) = dbus.receive_name_owner_changed() else {
                return;
            };
            for signal in signals {
                if signal
                    .args()
                    .is_ok_and(|a| WATCHERS.contains(&a.name().as_str()))
                {
                    changed();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot follow the tray: {e}");
    }
}

fn x11_system_tray() -> bool {
    if std::env::var_os("DISPLAY").is_none() {
        return false;
    }
    let Ok(xlib) = x11_dl::xlib::Xlib::open() else {
        return false;
    };
    // SAFETY: plain Xlib calls on a display we open and close here; the atom name is a valid
    // NUL-terminated string.
    unsafe {
        let display = (xlib.XOpenDisplay)(std::ptr::null());
        if display.is_null() {
            return false;
        }
        let screen = (xlib.XDefaultScreen)(display);
        let name =
            std::ffi::CString::new(format!("_NET_SYSTEM_TRAY_S{screen}")).unwrap_or_default();
        let atom = (xlib.XInternAtom)(display, name.as_ptr(), 0);
        let owner = (xlib.XGetSelectionOwner)(display, atom);
        (xlib.XCloseDisplay)(display);
        owner != 0
    }
}

/// The native menu for `model`.
pub fn menu<R: Runtime>(app: &AppHandle<R>, model: &TrayModel) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for e in &model.entries {
        append(app, e, &mut |item| menu.append(item))?;
    }
    Ok(menu)
}

fn append<R: Runtime>(
    app: &AppHandle<R>,
    entry: &Entry,
    add: &mut dyn FnMut(&dyn IsMenuItem<R>) -> tauri::Result<()>,
) -> tauri::Result<()> {
    match entry {
        Entry::Item { id, label, enabled } => {
            add(&MenuItem::with_id(app, id, label, *enabled, None::<&str>)?)
        }
        Entry::Check { id, label, checked } => add(&CheckMenuItem::with_id(
            app,
            id,
            label,
            true,
            *checked,
            None::<&str>,
        )?),
        Entry::Separator => add(&PredefinedMenuItem::separator(app)?),
        Entry::Submenu { label, entries } => {
            let sub = Submenu::new(app, label, true)?;
            for e in entries {
                append(app, e, &mut |item| sub.append(item))?;
            }
            add(&sub)
        }
    }
}
