//! The tray menu's model: which entries, their labels and enabled states, and which icon, from
//! the list of apps and their statuses. A pure function, so every rule is unit-tested without a
//! display; `tray.rs` only turns the model into native menu items.
//!
//! Invariants: the menu is bounded (at most [`MAX_APPS`] app entries, then one "more" line);
//! every clickable entry's id parses back into exactly one [`Action`]; pinned apps come first.

use hangar::run::supervisor::Status;
use serde::Serialize;

/// At most this many apps get an entry of their own; the rest are behind "Open Hangar".
pub const MAX_APPS: usize = 25;

/// What the tray needs to know about one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppItem {
    pub name: String,
    pub display_name: String,
    pub status: Status,
    pub pinned: bool,
    pub restarts: u32,
    /// Stopped, and its next visit starts it (never started, stopped when idle, put to sleep by
    /// the memory budget): the menu says `asleep`, as the panel does, not `stopped`.
    pub asleep: bool,
}

impl From<&hangar::engine::AppView> for AppItem {
    fn from(v: &hangar::engine::AppView) -> Self {
        AppItem {
            name: v.name.clone(),
            display_name: v.display_name.clone(),
            status: v.status,
            pinned: v.pinned,
            restarts: v.restarts,
            asleep: v.status == Status::Stopped
                && v.desired == hangar::store::registry::Desired::Dormant,
        }
    }
}

/// Quitting: how many apps are still being stopped, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuitProgress {
    pub left: usize,
    pub total: usize,
}

/// Everything the menu depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrayState {
    pub apps: Vec<AppItem>,
    pub autostart: bool,
    pub quitting: Option<QuitProgress>,
    /// The engine could not be reached (attached mode); the message says why.
    pub engine_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Icon {
    Normal,
    /// Some app is in `error`.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    Item {
        id: String,
        label: String,
        enabled: bool,
    },
    Check {
        id: String,
        label: String,
        checked: bool,
    },
    Submenu {
        label: String,
        entries: Vec<Entry>,
    },
    Separator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrayModel {
    pub entries: Vec<Entry>,
    pub icon: Icon,
    pub tooltip: String,
}

/// What a click on an entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Open,
    Start(String),
    Stop(String),
    Logs(String),
    /// Open the app in the browser at its own origin (`<name>.localhost`; `/` for main).
    Visit(String),
    /// Open it at its path on the shared origin, `/_app/<name>/`.
    VisitPath(String),
    StartAll,
    StopAll,
    ToggleAutostart,
    Quit,
}

impl Action {
    pub fn id(&self) -> String {
        match self {
            Action::Open => "open".into(),
            Action::Start(n) => format!("start:{n}"),
            Action::Stop(n) => format!("stop:{n}"),
            Action::Logs(n) => format!("logs:{n}"),
            Action::Visit(n) => format!("visit:{n}"),
            Action::VisitPath(n) => format!("visit-path:{n}"),
            Action::StartAll => "start-all".into(),
            Action::StopAll => "stop-all".into(),
            Action::ToggleAutostart => "autostart".into(),
            Action::Quit => "quit".into(),
        }
    }

    /// The action of a menu id; `None` for anything else (never guess).
    pub fn parse(id: &str) -> Option<Action> {
        let valid =
            |n: &str| hangar::base::validate::name(n).is_ok() || n == hangar::base::validate::MAIN;
        match id {
            "open" => return Some(Action::Open),
            "start-all" => return Some(Action::StartAll),
            "stop-all" => return Some(Action::StopAll),
            "autostart" => return Some(Action::ToggleAutostart),
            "quit" => return Some(Action::Quit),
            _ => {}
        }
        let (verb, name) = id.split_once(':')?;
        if !valid(name) {
            return None;
        }
        let name = name.to_string();
        match verb {
            "start" => Some(Action::Start(name)),
            "stop" => Some(Action::Stop(name)),
            "logs" => Some(Action::Logs(name)),
            "visit" => Some(Action::Visit(name)),
            "visit-path" if name != hangar::base::validate::MAIN => Some(Action::VisitPath(name)),
            _ => None,
        }
    }
}

/// The app's mark in the menu: running, failing, stopped, or on its way up or down.
fn marker(status: Status) -> &'static str {
    match status {
        Status::Running => "●",
        s if s.is_failing() => "⚠",
        Status::Stopped => "○",
        _ => "◐",
    }
}

/// Pinned apps first, then the main app, then the rest by name.
pub fn ordered(apps: &[AppItem]) -> Vec<&AppItem> {
    let mut v: Vec<&AppItem> = apps.iter().collect();
    v.sort_by(|a, b| {
        let key = |x: &AppItem| (!x.pinned, x.name != hangar::base::validate::MAIN);
        key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
    v
}

fn item(action: Action, label: impl Into<String>, enabled: bool) -> Entry {
    Entry::Item {
        id: action.id(),
        label: label.into(),
        enabled,
    }
}

fn disabled(id: &str, label: impl Into<String>) -> Entry {
    Entry::Item {
        id: id.into(),
        label: label.into(),
        enabled: false,
    }
}

/// The app's entry: "● Display name — running", a submenu with Start, Stop, Logs and its
/// links: first its own origin (`<name>.localhost`: no other app shares its cookies and
/// storage), then its path on the shared origin (`/_app/<name>/`).
fn app_entry(app: &AppItem) -> Entry {
    let mut entries = vec![
        item(
            Action::Start(app.name.clone()),
            "Start",
            app.status.can_start(),
        ),
        item(
            Action::Stop(app.name.clone()),
            "Stop",
            app.status.can_stop(),
        ),
        item(Action::Logs(app.name.clone()), "Logs", true),
    ];
    if app.name == hangar::base::validate::MAIN {
        entries.push(item(Action::Visit(app.name.clone()), "Open", true));
    } else {
        entries.push(item(
            Action::Visit(app.name.clone()),
            format!("Open {}.localhost", app.name),
            true,
        ));
        entries.push(item(
            Action::VisitPath(app.name.clone()),
            format!("Open /_app/{}/", app.name),
            true,
        ));
    }
    let mut status = app.status.to_string();
    if app.status == Status::Backoff && app.restarts > 0 {
        status = format!("crashed, restart {}", app.restarts);
    } else if app.asleep {
        status = "asleep".into();
    }
    let pin = if app.pinned { "📌 " } else { "" };
    Entry::Submenu {
        label: format!(
            "{} {pin}{} — {status}",
            marker(app.status),
            app.display_name
        ),
        entries,
    }
}

pub fn icon(state: &TrayState) -> Icon {
    if state.apps.iter().any(|a| a.status == Status::Error) {
        Icon::Error
    } else {
        Icon::Normal
    }
}

pub fn tooltip(state: &TrayState) -> String {
    if let Some(q) = state.quitting {
        return format!("Hangar — quitting, {} of {} apps left", q.left, q.total);
    }
    if let Some(e) = &state.engine_error {
        return format!("Hangar — engine unreachable: {e}");
    }
    let running = state
        .apps
        .iter()
        .filter(|a| a.status == Status::Running)
        .count();
    let errors = state
        .apps
        .iter()
        .filter(|a| a.status == Status::Error)
        .count();
    let mut s = format!("Hangar — {running} of {} apps running", state.apps.len());
    if errors > 0 {
        s.push_str(&format!(", {errors} in error"));
    }
    s
}

/// The whole menu for `state`.
pub fn build(state: &TrayState) -> TrayModel {
    let icon = icon(state);
    let tooltip = tooltip(state);
    if let Some(q) = state.quitting {
        // While quitting only the progress shows; nothing can be started behind our back.
        let label = if q.left == 0 {
            "Quitting…".to_string()
        } else {
            format!("Quitting: stopping {} of {} apps…", q.left, q.total)
        };
        return TrayModel {
            entries: vec![disabled("quitting", label)],
            icon,
            tooltip,
        };
    }
    let mut entries = vec![item(Action::Open, "Open Hangar", true), Entry::Separator];
    let apps = ordered(&state.apps);
    if let Some(e) = &state.engine_error {
        entries.push(disabled("engine-error", format!("Engine unreachable: {e}")));
    } else if apps.is_empty() {
        entries.push(disabled("no-apps", "No apps yet"));
    }
    for app in apps.iter().take(MAX_APPS) {
        entries.push(app_entry(app));
    }
    if apps.len() > MAX_APPS {
        entries.push(Entry::Item {
            id: Action::Open.id(),
            label: format!("{} more… (Open Hangar)", apps.len() - MAX_APPS),
            enabled: true,
        });
    }
    entries.push(Entry::Separator);
    entries.push(item(
        Action::StartAll,
        "Start all",
        apps.iter().any(|a| a.status.can_start()),
    ));
    entries.push(item(
        Action::StopAll,
        "Stop all",
        apps.iter().any(|a| a.status.can_stop()),
    ));
    let logs: Vec<Entry> = apps
        .iter()
        .take(MAX_APPS)
        .map(|a| item(Action::Logs(a.name.clone()), a.display_name.clone(), true))
        .collect();
    if logs.is_empty() {
        entries.push(disabled("logs", "Open logs…"));
    } else {
        entries.push(Entry::Submenu {
            label: "Open logs…".into(),
            entries: logs,
        });
    }
    entries.push(Entry::Separator);
    entries.push(Entry::Submenu {
        label: "Settings".into(),
        entries: vec![Entry::Check {
            id: Action::ToggleAutostart.id(),
            label: "Start at login".into(),
            checked: state.autostart,
        }],
    });
    entries.push(item(Action::Quit, "Quit Hangar (stops every app)", true));
    TrayModel {
        entries,
        icon,
        tooltip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, status: Status, pinned: bool) -> AppItem {
        AppItem {
            name: name.into(),
            display_name: format!("App {name}"),
            status,
            pinned,
            restarts: 0,
            asleep: false,
        }
    }

    fn labels(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Item { label, .. } | Entry::Check { label, .. } => label.clone(),
                Entry::Submenu { label, .. } => format!("{label} >"),
                Entry::Separator => "---".into(),
            })
            .collect()
    }

    fn find<'a>(entries: &'a [Entry], id: &str) -> Option<&'a Entry> {
        entries.iter().find_map(|e| match e {
            Entry::Item { id: i, .. } | Entry::Check { id: i, .. } if i == id => Some(e),
            Entry::Submenu { entries, .. } => find(entries, id),
            _ => None,
        })
    }

    fn enabled(m: &TrayModel, id: &str) -> bool {
        match find(&m.entries, id) {
            Some(Entry::Item { enabled, .. }) => *enabled,
            other => panic!("{id}: {other:?}"),
        }
    }

    #[test]
    fn layout_with_apps() {
        let s = TrayState {
            apps: vec![
                app("zeta", Status::Stopped, false),
                app("main", Status::Running, false),
                app("alpha", Status::Running, false),
                app("pinned", Status::Stopped, true),
            ],
            ..TrayState::default()
        };
        let m = build(&s);
        assert_eq!(
            labels(&m.entries),
            vec![
                "Open Hangar",
                "---",
                "○ 📌 App pinned — stopped >",
                "● App main — running >",
                "● App alpha — running >",
                "○ App zeta — stopped >",
                "---",
                "Start all",
                "Stop all",
                "Open logs… >",
                "---",
                "Settings >",
                "Quit Hangar (stops every app)",
            ]
        );
        assert_eq!(m.icon, Icon::Normal);
        assert_eq!(m.tooltip, "Hangar — 2 of 4 apps running");
    }

    #[test]
    fn an_app_its_next_visit_starts_is_asleep_one_the_operator_stopped_is_stopped() {
        let mut sleeping = app("blog", Status::Stopped, false);
        sleeping.asleep = true;
        let s = TrayState {
            apps: vec![sleeping, app("shop", Status::Stopped, false)],
            ..TrayState::default()
        };
        let m = build(&s);
        let l = labels(&m.entries);
        assert!(l.contains(&"○ App blog — asleep >".to_string()), "{l:?}");
        assert!(l.contains(&"○ App shop — stopped >".to_string()), "{l:?}");
        // Asleep is stopped for the actions: Start is offered.
        assert!(enabled(&m, "start:blog"));
    }

    #[test]
    fn start_and_stop_follow_status() {
        let s = TrayState {
            apps: vec![
                app("a", Status::Running, false),
                app("b", Status::Stopped, false),
                app("c", Status::Stopping, false),
                app("d", Status::Error, false),
                app("e", Status::Backoff, false),
            ],
            ..TrayState::default()
        };
        let m = build(&s);
        assert!(!enabled(&m, "start:a") && enabled(&m, "stop:a"));
        assert!(enabled(&m, "start:b") && !enabled(&m, "stop:b"));
        assert!(!enabled(&m, "start:c") && !enabled(&m, "stop:c"));
        assert!(enabled(&m, "start:d") && !enabled(&m, "stop:d"));
        assert!(enabled(&m, "start:e") && enabled(&m, "stop:e"));
        assert!(enabled(&m, "logs:c"));
        assert_eq!(m.icon, Icon::Error, "an app in error changes the icon");
        assert!(m.tooltip.contains("1 in error"), "{}", m.tooltip);
    }

    #[test]
    fn start_all_and_stop_all_are_enabled_only_when_useful() {
        let all_running = TrayState {
            apps: vec![
                app("a", Status::Running, false),
                app("b", Status::Starting, false),
            ],
            ..TrayState::default()
        };
        let m = build(&all_running);
        assert!(!enabled(&m, "start-all") && enabled(&m, "stop-all"));
        let all_stopped = TrayState {
            apps: vec![app("a", Status::Stopped, false)],
            ..TrayState::default()
        };
        let m = build(&all_stopped);
        assert!(enabled(&m, "start-all") && !enabled(&m, "stop-all"));
    }

    #[test]
    fn empty_and_unreachable() {
        let m = build(&TrayState::default());
        assert!(labels(&m.entries).contains(&"No apps yet".to_string()));
        assert!(!enabled(&m, "start-all") && !enabled(&m, "stop-all"));
        assert!(!enabled(&m, "logs"));
        let m = build(&TrayState {
            engine_error: Some("connection refused".into()),
            ..TrayState::default()
        });
        assert!(labels(&m.entries).contains(&"Engine unreachable: connection refused".into()));
        assert!(enabled(&m, "quit") && enabled(&m, "open"));
    }

    #[test]
    fn quitting_shows_only_progress() {
        let s = TrayState {
            apps: vec![app("a", Status::Stopping, false)],
            quitting: Some(QuitProgress { left: 1, total: 3 }),
            ..TrayState::default()
        };
        let m = build(&s);
        assert_eq!(labels(&m.entries), vec!["Quitting: stopping 1 of 3 apps…"]);
        assert!(!enabled(&m, "quitting"));
    }

    #[test]
    fn autostart_check_reflects_state() {
        for on in [false, true] {
            let m = build(&TrayState {
                autostart: on,
                ..TrayState::default()
            });
            match find(&m.entries, "autostart") {
                Some(Entry::Check { checked, .. }) => assert_eq!(*checked, on),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn menu_is_bounded() {
        let apps: Vec<AppItem> = (0..40)
            .map(|i| app(&format!("app{i:02}"), Status::Stopped, false))
            .collect();
        let m = build(&TrayState {
            apps,
            ..TrayState::default()
        });
        let app_entries = m
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Submenu { label, .. } if label.contains(" — ")))
            .count();
        assert_eq!(app_entries, MAX_APPS);
        assert!(labels(&m.entries).contains(&"15 more… (Open Hangar)".into()));
    }

    /// Each sub-app is its own browser origin only at `<name>.localhost`: that link comes first,
    /// the shared origin's `/_app/<name>/` second; the main app has one.
    #[test]
    fn an_apps_own_origin_is_the_first_link() {
        let m = build(&TrayState {
            apps: vec![
                app("main", Status::Running, false),
                app("shop", Status::Stopped, false),
            ],
            ..TrayState::default()
        });
        let submenu = |name: &str| {
            m.entries
                .iter()
                .find_map(|e| match e {
                    Entry::Submenu { label, entries } if label.contains(name) => {
                        Some(labels(entries))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no entry for {name}"))
        };
        assert_eq!(
            submenu("App shop"),
            vec![
                "Start",
                "Stop",
                "Logs",
                "Open shop.localhost",
                "Open /_app/shop/"
            ]
        );
        assert_eq!(submenu("App main"), vec!["Start", "Stop", "Logs", "Open"]);
        assert!(enabled(&m, "visit:shop") && enabled(&m, "visit-path:shop"));
        assert_eq!(
            Action::parse("visit:shop"),
            Some(Action::Visit("shop".into()))
        );
    }

    #[test]
    fn crash_loop_is_visible_in_the_label() {
        let mut a = app("a", Status::Backoff, false);
        a.restarts = 4;
        let m = build(&TrayState {
            apps: vec![a],
            ..TrayState::default()
        });
        assert!(labels(&m.entries).contains(&"⚠ App a — crashed, restart 4 >".into()));
    }

    #[test]
    fn every_id_round_trips_and_junk_is_refused() {
        let m = build(&TrayState {
            apps: vec![
                app("main", Status::Running, false),
                app("my-app_2", Status::Stopped, true),
            ],
            autostart: true,
            ..TrayState::default()
        });
        fn ids(entries: &[Entry], out: &mut Vec<(String, bool)>) {
            for e in entries {
                match e {
                    Entry::Item { id, enabled, .. } => out.push((id.clone(), *enabled)),
                    Entry::Check { id, .. } => out.push((id.clone(), true)),
                    Entry::Submenu { entries, .. } => ids(entries, out),
                    Entry::Separator => {}
                }
            }
        }
        let mut all = Vec::new();
        ids(&m.entries, &mut all);
        for (id, enabled) in all {
            if enabled {
                let a = Action::parse(&id).unwrap_or_else(|| panic!("{id} does not parse"));
                assert_eq!(a.id(), id);
            }
        }
        for junk in [
            "",
            "start",
            "start:",
            "start:Bad",
            "launch:a",
            "logs:../x",
            "quit ",
            "visit:",
            "visit:Bad",
            "visit-path:main",
        ] {
            assert_eq!(Action::parse(junk), None, "{junk:?}");
        }
    }
}
