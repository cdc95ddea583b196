//! The runtimes in force: those `hangar.toml` gave when the engine started, replaced whole by a
//! reload (`hangar reload`, or the file changing; see `engine::reload`).
//!
//! Invariant: a start reads them once (`supervisor`'s prepare), so a running app keeps the
//! runtime it was started with until its next start.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::base::config::{Config, Runtime};
use crate::store::registry::AppRecord;

/// The runtimes in force: those of `hangar.toml` when the engine started, replaced whole by a
/// reload (`hangar reload`, or the file changing). A start reads them once: a running app keeps
/// the runtime it was started with until its next start.
pub struct Runtimes {
    /// The runtime of an app that names none: the main app's (fixed until the engine restarts).
    main: String,
    set: std::sync::RwLock<Arc<BTreeMap<String, Runtime>>>,
    /// Held by a reload from reading the file to putting its runtimes in force: one at a time.
    /// It keeps what the last reload that changed something did, and when (a `hangar reload`
    /// just after the file watcher applied a change tells that, not "nothing changed").
    pub reloading: tokio::sync::Mutex<Option<String>>,
}

impl Runtimes {
    pub fn new(config: &Config) -> Runtimes {
        Runtimes {
            main: config.main.runtime.clone(),
            set: std::sync::RwLock::new(Arc::new(config.runtimes.clone())),
            reloading: tokio::sync::Mutex::new(None),
        }
    }

    /// Every runtime in force, by name.
    pub fn all(&self) -> Arc<BTreeMap<String, Runtime>> {
        self.set.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, name: &str) -> Option<Runtime> {
        self.all().get(name).cloned()
    }

    /// Put a new set in force (checked by the caller).
    pub fn replace(&self, set: BTreeMap<String, Runtime>) {
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
    }

    /// The name of the runtime an app runs: its own, else the main app's.
    pub fn name_of(&self, app: &AppRecord) -> String {
        app.runtime.clone().unwrap_or_else(|| self.main.clone())
    }

    /// The runtime an app runs with: its runtime, with the app's own program, prefix and health
    /// (`create NAME -- PROGRAM`) over it. `Err`: the name of a runtime no longer there.
    pub fn of(&self, app: &AppRecord) -> Result<Runtime, String> {
        let name = self.name_of(app);
        match self.get(&name) {
            Some(rt) => Ok(rt.for_app(app.command.as_ref())),
            None => Err(name),
        }
    }
}
