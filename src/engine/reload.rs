//! `hangar.toml` read again while the engine runs: by `hangar reload` (the API's `POST /reload`)
//! and by a watcher of the file (`watch`, started by the host).
//!
//! Invariants: a file that does not parse, or that removes a runtime an app uses, changes
//! nothing (the refusal names the key, is logged, and is `reload`'s answer); new and changed
//! runtimes apply to the next start of their apps, and a running app is never touched (it keeps
//! the runtime it was started with). Keys outside `[runtimes]` apply when the engine starts again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::config::Config;
use crate::engine::{Engine, EngineError};

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Runtimes new in the file.
    pub added: Vec<String>,
    /// Runtimes whose settings changed: their apps get them at their next start.
    pub changed: Vec<String>,
    /// Runtimes no app uses that the file no longer has.
    pub removed: Vec<String>,
    /// Apps running now on a changed runtime: they keep the old settings until restarted.
    pub running_on_changed: Vec<String>,
    /// What the reload did not apply (keys that need the engine to start again).
    pub notes: Vec<String>,
    /// When nothing changed: the last reload that changed something (the file watcher's,
    /// when the file was saved), what it did and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_before: Option<String>,
}

impl ReloadReport {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl Engine {
    /// Read `hangar.toml` again and put its runtimes in force (see the module's invariants).
    pub async fn reload(&self) -> Result<ReloadReport, EngineError> {
        let mut last = self.runtimes.reloading.lock().await;
        let mut result = self.reload_now().await;
        match &mut result {
            Ok(r) if r.is_empty() => r.applied_before = last.clone(),
            Ok(r) => {
                let mut did = Vec::new();
                for (what, names) in [
                    ("added", &r.added),
                    ("changed", &r.changed),
                    ("removed", &r.removed),
                ] {
                    if !names.is_empty() {
                        did.push(format!("{what} {}", names.join(", ")));
                    }
                }
                *last = Some(format!(
                    "{} at {}",
                    did.join("; "),
                    crate::base::clock::now()
                ));
            }
            Err(_) => {}
        }
        match &result {
            Ok(r) if r.is_empty() => tracing::info!("hangar.toml read again: no runtime changed"),
            Ok(r) => tracing::info!(
                added = ?r.added,
                changed = ?r.changed,
                removed = ?r.removed,
                "hangar.toml read again: runtimes apply to the next start of their apps"
            ),
            Err(e) => tracing::warn!("hangar.toml was not reloaded: {e}"),
        }
        result
    }

    async fn reload_now(&self) -> Result<ReloadReport, EngineError> {
        let path = self.home.config_file();
        let new = Config::load(&path)
            .map_err(|e| EngineError::Refused(format!("{e}; the running configuration is kept")))?;
        let old = self.runtimes.all();
        let apps = self.registry.list().await?;
        let mut report = ReloadReport::default();
        for name in old.keys().filter(|n| !new.runtimes.contains_key(*n)) {
            let users: Vec<&str> = apps
                .iter()
                .filter(|a| &self.runtimes.name_of(a) == name)
                .map(|a| a.name.as_str())
                .collect();
            if !users.is_empty() {
                return Err(EngineError::Refused(format!(
                    "{} is invalid: runtimes.{name}: removed, but apps use it ({}); keep it until they are deleted; the running configuration is kept",
                    path.display(),
                    users.join(", ")
                )));
            }
            report.removed.push(name.clone());
        }
        for (name, rt) in &new.runtimes {
            match old.get(name) {
                None => report.added.push(name.clone()),
                Some(o) if o != rt => report.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        report.notes = restart_keys(&self.config, &new);
        for name in report.added.iter().chain(&report.changed) {
            let found = new
                .runtimes
                .get(name)
                .map(|rt| crate::run::launch::secrets_on_command_line(rt, true))
                .unwrap_or_default();
            if let Some(w) =
                crate::run::launch::secrets_warning(&format!("runtimes.{name}.command"), &found)
            {
                tracing::warn!("{w}");
                report.notes.push(w);
            }
        }
        let touched: Vec<&str> = report.changed.iter().map(String::as_str).collect();
        for app in &apps {
            if touched.contains(&self.runtimes.name_of(app).as_str()) {
                let running = self
                    .supervisor
                    .state(&app.name)
                    .is_some_and(|s| s.pid.is_some());
                if running {
                    report.running_on_changed.push(app.name.clone());
                }
            }
        }
        self.runtimes.replace(new.runtimes);
        // The proxy's routes (prefix, health path) of the apps on a changed runtime.
        for app in &apps {
            if touched.contains(&self.runtimes.name_of(app).as_str()) {
                self.supervisor.changed(&app.name);
            }
        }
        Ok(report)
    }
}

/// The keys outside `[runtimes]` that differ from the running configuration: they apply when
/// the engine starts again (the ports given on `serve`'s command line are not compared).
fn restart_keys(running: &Config, new: &Config) -> Vec<String> {
    let mut a = running.clone();
    let mut b = new.clone();
    a.runtimes.clear();
    b.runtimes.clear();
    b.proxy_port = a.proxy_port;
    b.api_port = a.api_port;
    if format!("{a:?}") == format!("{b:?}") {
        Vec::new()
    } else {
        vec!["keys outside [runtimes] changed: they apply when the engine starts again".into()]
    }
}

/// Follow `hangar.toml`: a change (written in place, or replaced as editors do) is read again
/// after a quiet 300 ms. The host aborts it when the engine ends.
pub async fn watch(engine: Arc<Engine>) {
    let path = engine.home.config_file();
    let Some(dir) = path.parent().map(Path::to_path_buf) else {
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let file = path.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let ours = ev.paths.iter().any(|p| p == &file);
            if ours && !matches!(ev.kind, notify::EventKind::Access(_)) {
                // A full channel already holds a wake-up: nothing is lost.
                let _ = tx.try_send(());
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("hangar.toml is not watched ({e}); `hangar reload` reads it again");
            return;
        }
    };
    {
        use notify::Watcher;
        if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!("hangar.toml is not watched ({e}); `hangar reload` reads it again");
            return;
        }
    }
    // The host aborts this task when the engine ends.
    while rx.recv().await.is_some() {
        // Let a burst of writes settle, then read once.
        loop {
            match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let _ = engine.reload().await;
    }
}
