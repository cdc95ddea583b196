//! When to send a desktop notification: an app enters `error`, keeps crashing, or was
//! restarted for going over its memory limit. A pure state
//! machine fed with successive app lists, so the rules are tested without a notification daemon.
//!
//! Invariants: one notification per episode (entering `error` once, or crossing the crash
//! threshold once until the app runs stably or is stopped); the first list seen only sets the
//! baseline, so starting the shell never replays old errors as news; memory is bounded by the
//! number of apps (removed apps are forgotten).

use std::collections::HashMap;

use hangar::run::supervisor::Status;

use crate::menu_model::AppItem;

/// Restarts after which an app "keeps crashing".
pub const CRASH_LOOP: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub app: String,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone)]
struct Seen {
    status: Status,
    crash_told: bool,
    memory_restarts: u32,
}

/// What an app's view says of its memory limit: restarts for it, and the last reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryRestarts {
    pub count: u32,
    pub reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct Watcher {
    seen: HashMap<String, Seen>,
    primed: bool,
}

impl Watcher {
    pub fn new() -> Watcher {
        Watcher::default()
    }

    /// Feed the current apps (with their `error` texts, when any, and their memory-limit
    /// restarts); get what is news.
    pub fn observe(&mut self, apps: &[(AppItem, Option<String>, MemoryRestarts)]) -> Vec<Notice> {
        let mut out = Vec::new();
        let primed = self.primed;
        self.primed = true;
        let mut next = HashMap::with_capacity(apps.len());
        for (app, error, memory) in apps {
            let before = self.seen.get(&app.name);
            let was_error = before.map(|s| s.status == Status::Error).unwrap_or(false);
            let mut crash_told = before.map(|s| s.crash_told).unwrap_or(false);
            let baseline = !primed || before.is_none();
            if app.status == Status::Error && !was_error && !baseline {
                out.push(Notice {
                    app: app.name.clone(),
                    title: format!("{} stopped with an error", app.display_name),
                    body: error
                        .clone()
                        .unwrap_or_else(|| "Hangar gave up restarting it.".into()),
                });
            }
            // Each restart for the memory limit is news (bounded: the app ends in `error`
            // after its runtime's restart limit).
            let memory_before = before.map(|s| s.memory_restarts).unwrap_or(memory.count);
            if memory.count > memory_before && !baseline && app.status != Status::Error {
                out.push(Notice {
                    app: app.name.clone(),
                    title: format!("{} was restarted: over its memory limit", app.display_name),
                    body: memory
                        .reason
                        .clone()
                        .unwrap_or_else(|| "see its logs.".into()),
                });
            }
            let crashing = app.status == Status::Backoff && app.restarts >= CRASH_LOOP;
            if crashing && !crash_told {
                if !baseline {
                    out.push(Notice {
                        app: app.name.clone(),
                        title: format!("{} keeps crashing", app.display_name),
                        body: format!(
                            "Restarted {} times; {}",
                            app.restarts,
                            error.clone().unwrap_or_else(|| "see its logs.".into())
                        ),
                    });
                }
                crash_told = true;
            }
            // A new episode begins once the app runs again with its counter reset, or stops.
            if app.status == Status::Stopped
                || (app.status == Status::Running && app.restarts < CRASH_LOOP)
            {
                crash_told = false;
            }
            next.insert(
                app.name.clone(),
                Seen {
                    status: app.status,
                    crash_told,
                    memory_restarts: memory.count,
                },
            );
        }
        self.seen = next;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: &str, status: Status, restarts: u32) -> (AppItem, Option<String>, MemoryRestarts) {
        (
            AppItem {
                name: name.into(),
                display_name: name.to_uppercase(),
                status,
                pinned: false,
                restarts,
                asleep: false,
            },
            (status == Status::Error).then(|| "exited with code 3".to_string()),
            MemoryRestarts::default(),
        )
    }

    #[test]
    fn a_restart_for_the_memory_limit_is_told_each_time() {
        let mut w = Watcher::new();
        let mem = |count: u32, status: Status| {
            let mut x = a("x", status, count);
            x.2 = MemoryRestarts {
                count,
                reason: Some(format!("memory limit: 61{count} MiB over 600 MiB")),
            };
            x
        };
        assert!(w.observe(&[mem(2, Status::Running)]).is_empty(), "baseline");
        let n = w.observe(&[mem(3, Status::Starting)]);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].title, "X was restarted: over its memory limit");
        assert_eq!(n[0].body, "memory limit: 613 MiB over 600 MiB");
        assert!(w.observe(&[mem(3, Status::Running)]).is_empty(), "once");
        let n = w.observe(&[mem(4, Status::Error)]);
        assert_eq!(n.len(), 1, "error is told, not also the restart");
        assert!(n[0].title.contains("error"));
    }

    #[test]
    fn entering_error_is_told_once() {
        let mut w = Watcher::new();
        assert!(w.observe(&[a("x", Status::Running, 0)]).is_empty());
        let n = w.observe(&[a("x", Status::Error, 0)]);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].title, "X stopped with an error");
        assert_eq!(n[0].body, "exited with code 3");
        assert!(
            w.observe(&[a("x", Status::Error, 0)]).is_empty(),
            "not twice"
        );
        assert!(w.observe(&[a("x", Status::Starting, 0)]).is_empty());
        assert_eq!(
            w.observe(&[a("x", Status::Error, 0)]).len(),
            1,
            "a new episode"
        );
    }

    #[test]
    fn old_errors_are_not_news() {
        let mut w = Watcher::new();
        assert!(w
            .observe(&[a("x", Status::Error, 0), a("y", Status::Backoff, 5)])
            .is_empty());
        assert!(w
            .observe(&[a("x", Status::Error, 0), a("y", Status::Backoff, 6)])
            .is_empty());
    }

    #[test]
    fn crash_loop_is_told_once_per_episode() {
        let mut w = Watcher::new();
        w.observe(&[a("x", Status::Running, 0)]);
        assert!(w.observe(&[a("x", Status::Backoff, 1)]).is_empty());
        assert!(w.observe(&[a("x", Status::Backoff, 2)]).is_empty());
        let n = w.observe(&[a("x", Status::Backoff, 3)]);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].title, "X keeps crashing");
        assert!(w.observe(&[a("x", Status::Backoff, 4)]).is_empty());
        assert!(w.observe(&[a("x", Status::Running, 4)]).is_empty());
        assert!(
            w.observe(&[a("x", Status::Backoff, 5)]).is_empty(),
            "same episode"
        );
        w.observe(&[a("x", Status::Stopped, 0)]);
        w.observe(&[a("x", Status::Running, 0)]);
        assert_eq!(w.observe(&[a("x", Status::Backoff, 3)]).len(), 1);
    }

    #[test]
    fn a_new_app_starts_quiet_and_removed_apps_are_forgotten() {
        let mut w = Watcher::new();
        w.observe(&[]);
        assert!(
            w.observe(&[a("n", Status::Error, 0)]).is_empty(),
            "first sight"
        );
        w.observe(&[]);
        assert!(w.observe(&[a("n", Status::Error, 0)]).is_empty());
        assert_eq!(w.seen.len(), 1);
    }
}
