//! `hangar apply` and `hangar dump`: a whole setup as one file (`[apps.NAME]` tables), and the
//! plan that brings the registry to it: create what is missing, edit what differs (restarting a
//! running app whose run settings changed; a nice value is applied live, by `Engine::edit`), and
//! with `prune` delete what the file does not name.
//!
//! Invariants: the whole plan is checked before the first change, and a refusal names the app
//! and the field (`apps.NAME.FIELD: …`); a key the file leaves out is left as it is, so a file
//! written by `dump` applies as a no-op and a second apply changes nothing; `main` is never in
//! the file nor pruned (it is `hangar.toml`'s); a prune drops a database only when the file says
//! `drop_db_on_prune = true`; an env value never appears in a plan (only its key).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::base::config::AppCommand;
use crate::base::validate::{self, Invalid, SizeInput, MAIN};
use crate::engine::{AppView, CreateApp, Engine, EngineError};
use crate::run::launch;
use crate::store::registry::{AppEdit, StartMode};

/// The file: one `[apps.NAME]` table per app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppsFile {
    /// With `prune`, also drop the databases Hangar made for the apps it deletes (after an
    /// automatic backup each). Default: kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_db_on_prune: bool,
    #[serde(default)]
    pub apps: BTreeMap<String, AppSpec>,
}

/// One app as the file describes it; the keys are `list --json`'s (and `create`'s). A key left
/// out takes its default at create and is left as it is on an app that exists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_mode: Option<StartMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `""` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    /// Set at create; an app's runtime cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `new-database`, `schema` or a URL: used at create only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// Seconds; 0: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u32>,
    /// Its own program (`create NAME -- PROGRAM`): `argv`, and `prefix`/`health` over its
    /// runtime's. An app that has one keeps it when the key is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<AppCommand>,
    /// Its own memory limit (`--memory-max`): a size (`"600M"`) or bytes; `0`: none of its
    /// own (the runtime's applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<SizeInput>,
    /// Its own nice value (`--nice`), -20..19; `0`: none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nice: Option<i64>,
    /// The app's whole own environment: a key not listed is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
}

impl AppSpec {
    /// An app as the file writes it (`hangar dump`): every key apply compares, the env only
    /// with `secrets` (left out, apply leaves it as it is). `db` is not written: it only
    /// matters at create, and the view holds no password.
    pub fn of(v: &AppView, secrets: bool) -> AppSpec {
        AppSpec {
            display_name: Some(v.display_name.clone()),
            start_mode: Some(v.start_mode),
            port: Some(v.port),
            domain: v.domain.clone(),
            pinned: Some(v.pinned),
            runtime: Some(v.runtime.clone()),
            db: None,
            idle_timeout: Some(v.idle_timeout.unwrap_or(0)),
            command: v.command.clone(),
            memory_max: Some(SizeInput::Text(validate::size_text(
                v.own_memory_max.unwrap_or(0),
            ))),
            nice: Some(i64::from(v.own_nice.unwrap_or(0))),
            env: secrets.then(|| v.env.clone()),
        }
    }
}

impl AppsFile {
    /// Today's apps as a file (`main` is `hangar.toml`'s, so left out).
    pub fn of(apps: &[AppView], secrets: bool) -> AppsFile {
        AppsFile {
            drop_db_on_prune: false,
            apps: apps
                .iter()
                .filter(|a| a.name != MAIN)
                .map(|a| (a.name.clone(), AppSpec::of(a, secrets)))
                .collect(),
        }
    }
}

/// `POST /apply`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub file: AppsFile,
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Change,
    Delete,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Change => "change",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
        }
    }
}

/// One field a change sets. For `env.KEY` fields `from` and `to` are never the values: `"set"`
/// when the key is there, null when it is not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What the plan does to one app, and (after a real apply) how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// A running app whose run settings (port, env, own program, memory limit) change is
    /// restarted; a new nice value is applied to it live.
    pub restart: bool,
    /// A delete that drops the database Hangar made.
    pub drop_db: bool,
    /// Why this step failed (the steps after it were not tried).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyReport {
    pub dry_run: bool,
    pub steps: Vec<Step>,
}

impl ApplyReport {
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }

    pub fn failed(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.error.is_some())
    }
}

/// A refusal of the plan: the app and the field (as the file names it: a program's `health`
/// is `command.health`).
fn refuse(app: &str, i: Invalid) -> EngineError {
    let invalid = match i.field {
        "health" => Invalid::new("command.health", i.message),
        "prefix" => Invalid::new("command.prefix", i.message),
        _ => i,
    };
    EngineError::Plan {
        app: app.to_string(),
        invalid,
    }
}

/// What one planned step needs to run.
enum Work {
    Create(CreateApp),
    Edit(AppEdit),
    Delete,
    Nothing,
}

/// One apply at a time per engine process: two interleaved plans would each be checked
/// against a registry the other changes.
static APPLYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Engine {
    /// Plan the file against today's apps, check it whole, and (unless `dry_run`) carry it out:
    /// deletes first (their ports and domains become free), then changes, then creates. A step
    /// that fails on the machine stops the apply; the report says which and why.
    pub async fn apply(self: &Arc<Self>, req: ApplyRequest) -> Result<ApplyReport, EngineError> {
        let _one = APPLYING.lock().await;
        let apps = self.list().await?;
        let plan = self.plan(&apps, &req)?;
        let mut steps: Vec<Step> = plan.iter().map(|(s, _)| s.clone()).collect();
        if req.dry_run {
            return Ok(ApplyReport {
                dry_run: true,
                steps,
            });
        }
        let order = |w: &Work| match w {
            Work::Delete => 0,
            Work::Edit(_) => 1,
            // An app asking for a given port is made before one taking any free port.
            Work::Create(c) if c.port.is_some() => 2,
            Work::Create(_) => 3,
            Work::Nothing => 4,
        };
        let mut todo: Vec<(usize, Work)> = plan
            .into_iter()
            .enumerate()
            .map(|(i, (_, w))| (i, w))
            .collect();
        todo.sort_by_key(|(i, w)| (order(w), *i));
        for (i, work) in todo {
            let step = &mut steps[i];
            let done = match work {
                Work::Delete => self.delete(&step.name, step.drop_db).await.map(|_| ()),
                Work::Edit(edit) => match self.edit(&step.name, edit).await {
                    Ok(v) if step.restart && v.status.is_active() => {
                        self.restart(&step.name).await.map(|_| ())
                    }
                    Ok(_) => {
                        step.restart = false;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Work::Create(c) => self.create(c).await.map(|_| ()),
                Work::Nothing => Ok(()),
            };
            if let Err(e) = done {
                tracing::warn!(app = %step.name, action = step.action.as_str(), "apply stopped: {e}");
                step.error = Some(e.to_string());
                break;
            }
        }
        Ok(ApplyReport {
            dry_run: false,
            steps,
        })
    }

    /// Every step of the file against `apps`, each checked; nothing is changed.
    fn plan(&self, apps: &[AppView], req: &ApplyRequest) -> Result<Vec<(Step, Work)>, EngineError> {
        let by_name: HashMap<&str, &AppView> = apps.iter().map(|a| (a.name.as_str(), a)).collect();
        let mut plan = Vec::new();
        for (name, spec) in &req.file.apps {
            if name == MAIN {
                return Err(refuse(
                    name,
                    Invalid::new(
                        "name",
                        "the main app is configured in hangar.toml ([main]), not here",
                    ),
                ));
            }
            let (step, work) = match by_name.get(name.as_str()) {
                Some(v) => self.plan_change(v, spec)?,
                None => self.plan_create(name, spec)?,
            };
            plan.push((step, work));
        }
        if req.prune {
            for a in apps {
                if a.name == MAIN || req.file.apps.contains_key(&a.name) {
                    continue;
                }
                plan.push((
                    Step {
                        name: a.name.clone(),
                        action: Action::Delete,
                        fields: Vec::new(),
                        restart: false,
                        drop_db: req.file.drop_db_on_prune,
                        error: None,
                    },
                    Work::Delete,
                ));
            }
        }
        check_unique(apps, &plan)?;
        Ok(plan)
    }

    fn plan_create(&self, name: &str, spec: &AppSpec) -> Result<(Step, Work), EngineError> {
        let req = CreateApp {
            name: name.to_string(),
            display_name: spec.display_name.clone(),
            start_mode: spec.start_mode,
            port: spec.port.map(u32::from),
            domain: spec.domain.clone(),
            pinned: spec.pinned.unwrap_or(false),
            db: spec.db.clone(),
            runtime: spec.runtime.clone(),
            env: spec.env.clone().unwrap_or_default(),
            idle_timeout: spec.idle_timeout.map(i64::from),
            command: spec.command.clone(),
            memory_max: spec.memory_max.clone(),
            nice: spec.nice,
        };
        let checked = req
            .check(&self.config, &self.runtimes.all())
            .map_err(|i| refuse(name, i))?;
        let mut fields = Vec::new();
        let mut set = |field: &str, to: Option<String>| {
            if let Some(to) = to {
                fields.push(FieldChange {
                    field: field.to_string(),
                    from: None,
                    to: Some(to),
                });
            }
        };
        set("display_name", spec.display_name.clone());
        set("start_mode", spec.start_mode.map(|m| m.to_string()));
        set("port", spec.port.map(|p| p.to_string()));
        set("domain", checked.domain.clone());
        set("pinned", spec.pinned.map(|p| p.to_string()));
        set("runtime", spec.runtime.clone());
        set("db", spec.db.as_deref().map(db_shown));
        set("idle_timeout", spec.idle_timeout.map(|s| s.to_string()));
        if let Some(c) = &spec.command {
            set("command.argv", Some(argv_shown(&c.argv)));
            set("command.prefix", c.prefix.map(|p| p.as_str().to_string()));
            set("command.health", c.health.clone());
        }
        set("memory_max", checked.memory_max.map(validate::size_text));
        set("nice", checked.nice.map(|n| n.to_string()));
        for k in req.env.keys() {
            set(&format!("env.{k}"), Some("set".into()));
        }
        Ok((
            Step {
                name: name.to_string(),
                action: Action::Create,
                fields,
                restart: false,
                drop_db: false,
                error: None,
            },
            Work::Create(req),
        ))
    }

    fn plan_change(&self, v: &AppView, spec: &AppSpec) -> Result<(Step, Work), EngineError> {
        let name = v.name.as_str();
        if let Some(rt) = &spec.runtime {
            if *rt != v.runtime {
                return Err(refuse(
                    name,
                    Invalid::new(
                        "runtime",
                        format!(
                            "{name} runs {:?}; an app's runtime cannot change (delete it and create it again)",
                            v.runtime
                        ),
                    ),
                ));
            }
        }
        let mut edit = AppEdit::default();
        let mut fields = Vec::new();
        let mut note = |field: &str, from: Option<String>, to: Option<String>| {
            fields.push(FieldChange {
                field: field.to_string(),
                from,
                to,
            })
        };
        if let Some(d) = &spec.display_name {
            let d = if d.trim().is_empty() {
                name
            } else {
                d.as_str()
            };
            if d != v.display_name {
                note("display_name", Some(v.display_name.clone()), Some(d.into()));
                edit.display_name = Some(d.to_string());
            }
        }
        if let Some(m) = spec.start_mode.filter(|m| *m != v.start_mode) {
            note(
                "start_mode",
                Some(v.start_mode.to_string()),
                Some(m.to_string()),
            );
            edit.start_mode = Some(m);
        }
        if let Some(p) = spec.port.filter(|p| *p != v.port) {
            note("port", Some(v.port.to_string()), Some(p.to_string()));
            edit.port = Some(p);
        }
        if let Some(d) = &spec.domain {
            let d = (!d.is_empty()).then(|| d.to_ascii_lowercase());
            if d != v.domain {
                note("domain", v.domain.clone(), d.clone());
                edit.domain = Some(d);
            }
        }
        if let Some(p) = spec.pinned.filter(|p| *p != v.pinned) {
            note("pinned", Some(v.pinned.to_string()), Some(p.to_string()));
            edit.pinned = Some(p);
        }
        if let Some(s) = spec
            .idle_timeout
            .filter(|s| *s != v.idle_timeout.unwrap_or(0))
        {
            note(
                "idle_timeout",
                Some(v.idle_timeout.unwrap_or(0).to_string()),
                Some(s.to_string()),
            );
            edit.idle_timeout = Some(s);
        }
        let mut env_changed = false;
        if let Some(env) = spec.env.as_ref().filter(|e| **e != v.env) {
            let keys: std::collections::BTreeSet<&String> =
                env.keys().chain(v.env.keys()).collect();
            for k in keys {
                let (old, new) = (v.env.get(k), env.get(k));
                if old != new {
                    let set = |x: Option<&String>| x.map(|_| "set".to_string());
                    note(&format!("env.{k}"), set(old), set(new));
                }
            }
            edit.env = Some(env.clone());
            env_changed = true;
        }
        if let Some(c) = spec
            .command
            .as_ref()
            .filter(|c| Some(*c) != v.command.as_ref())
        {
            c.check_for_app(
                self.runtimes.get(&v.runtime).as_ref().map(|r| &r.env),
                spec.env.as_ref().unwrap_or(&v.env),
            )
            .map_err(|i| refuse(name, i))?;
            let old = v.command.as_ref();
            let argv = |c: Option<&AppCommand>| c.map(|c| argv_shown(&c.argv));
            let prefix =
                |c: Option<&AppCommand>| c.and_then(|c| c.prefix).map(|p| p.as_str().to_string());
            let health = |c: Option<&AppCommand>| c.and_then(|c| c.health.clone());
            for (field, from, to) in [
                ("command.argv", argv(old), argv(Some(c))),
                ("command.prefix", prefix(old), prefix(Some(c))),
                ("command.health", health(old), health(Some(c))),
            ] {
                if from != to {
                    note(field, from, to);
                }
            }
            edit.command = Some(c.clone());
        }
        if let Some(m) = &spec.memory_max {
            let to = m.memory_max().map_err(|i| refuse(name, i))?;
            if to != v.own_memory_max {
                let shown = |b: Option<u64>| validate::size_text(b.unwrap_or(0));
                note("memory_max", Some(shown(v.own_memory_max)), Some(shown(to)));
                edit.memory_max = Some(SizeInput::Bytes(to.unwrap_or(0)));
            }
        }
        if let Some(n) = spec.nice {
            let to = validate::nice(n).map_err(|i| refuse(name, i))?;
            let from = v.own_nice.unwrap_or(0);
            if to != from {
                note("nice", Some(from.to_string()), Some(to.to_string()));
                edit.nice = Some(to);
            }
        }
        // What a running process was started with: a change restarts it. A nice value is not:
        // `Engine::edit` renices a running app's whole group at once, as `hangar edit` does.
        let restart = edit.port.is_some()
            || env_changed
            || edit.command.is_some()
            || edit.memory_max.is_some();
        let edit = edit
            .check(&self.reserved_ports())
            .map_err(|i| refuse(name, i))?;
        // An idle timeout on an app that stays with-main.
        if edit.idle_timeout.is_some_and(|s| s > 0)
            && edit.start_mode.unwrap_or(v.start_mode) == StartMode::WithMain
        {
            return Err(refuse(
                name,
                Invalid::new(
                    "idle_timeout",
                    "an idle timeout applies to on-visit apps only; a with-main app runs as long as the engine",
                ),
            ));
        }
        let action = if fields.is_empty() {
            Action::Unchanged
        } else {
            Action::Change
        };
        Ok((
            Step {
                name: name.to_string(),
                action,
                fields,
                restart: restart && v.status.is_active(),
                drop_db: false,
                error: None,
            },
            if action == Action::Unchanged {
                Work::Nothing
            } else {
                Work::Edit(edit)
            },
        ))
    }
}

/// A program's words as a plan shows them: a JSON array, as the file writes them.
fn argv_shown(argv: &[String]) -> String {
    serde_json::to_string(argv).unwrap_or_else(|_| argv.join(" "))
}

/// A `db` value as a plan shows it: a URL without its password.
fn db_shown(db: &str) -> String {
    use crate::base::db::{AppDb, DbMethod, Owned};
    match db {
        "new-database" | "schema" => db.to_string(),
        url => AppDb {
            method: DbMethod::Url,
            url: url.to_string(),
            schema: None,
            owned: Owned::default(),
        }
        .describe(),
    }
}

/// No two apps end with one port or one domain, and no app takes a port or a domain another
/// app still holds while the plan runs (the registry would refuse it half-way). A new port
/// taken by another program on the machine is refused too.
fn check_unique(apps: &[AppView], plan: &[(Step, Work)]) -> Result<(), EngineError> {
    let deleted: Vec<&str> = plan
        .iter()
        .filter(|(s, _)| s.action == Action::Delete)
        .map(|(s, _)| s.name.as_str())
        .collect();
    // Today's holders that keep existing.
    let mut port_holder: HashMap<u16, &str> = HashMap::new();
    let mut domain_holder: HashMap<String, &str> = HashMap::new();
    for a in apps.iter().filter(|a| !deleted.contains(&a.name.as_str())) {
        port_holder.insert(a.port, &a.name);
        if let Some(d) = &a.domain {
            domain_holder.insert(d.clone(), &a.name);
        }
    }
    // What each step asks for.
    let mut ports: HashMap<u16, &str> = HashMap::new();
    let mut domains: HashMap<String, &str> = HashMap::new();
    for (step, work) in plan {
        let name = step.name.as_str();
        let (port, domain) = match work {
            Work::Create(c) => (
                c.port.and_then(|p| u16::try_from(p).ok()),
                c.domain
                    .clone()
                    .filter(|d| !d.is_empty())
                    .map(|d| d.to_ascii_lowercase()),
            ),
            Work::Edit(e) => (e.port, e.domain.clone().flatten()),
            _ => (None, None),
        };
        if let Some(p) = port {
            if let Some(other) = ports.insert(p, name) {
                return Err(refuse(
                    name,
                    Invalid::new("port", format!("port {p} is asked for {other} too")),
                ));
            }
            match port_holder.get(&p) {
                Some(holder) if *holder != name => {
                    return Err(refuse(name, Invalid::new("port", format!("port {p} is {holder}'s today; give {holder} another port in one apply and this one in the next"))));
                }
                None if launch::port_taken(p) => {
                    return Err(refuse(
                        name,
                        Invalid::new(
                            "port",
                            format!("port {p} is taken by another program on this machine"),
                        ),
                    ));
                }
                _ => {}
            }
        }
        if let Some(d) = domain {
            if let Some(other) = domains.insert(d.clone(), name) {
                return Err(refuse(
                    name,
                    Invalid::new("domain", format!("domain {d} is asked for {other} too")),
                ));
            }
            if let Some(holder) = domain_holder.get(&d).filter(|h| **h != name) {
                return Err(refuse(name, Invalid::new("domain", format!("domain {d} is {holder}'s today; take it from {holder} in one apply and give it in the next"))));
            }
        }
    }
    Ok(())
}

/// A file `apply` cannot read: where (`apps.NAME.KEY`, or the line) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct FileError {
    pub at: String,
    pub message: String,
}

impl AppsFile {
    /// Read an apps file (TOML). A refusal names the key at fault: `apps.shop.port: invalid
    /// type: string "x", expected u16`.
    pub fn parse(text: &str) -> Result<AppsFile, FileError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            FileError {
                at: line.map_or("the file".into(), |l| format!("line {l}")),
                message: e.message().to_string(),
            }
        })?;
        let err = |at: String, message: String| FileError { at, message };
        for (k, v) in &table {
            match k.as_str() {
                "apps" => {
                    let apps = v.as_table().ok_or_else(|| {
                        err("apps".into(), "a table of [apps.NAME] tables".into())
                    })?;
                    for (name, spec) in apps {
                        let spec = spec.as_table().ok_or_else(|| {
                            err(format!("apps.{name}"), "a table: [apps.NAME]".into())
                        })?;
                        // One key at a time, so a refusal names its key.
                        for (key, value) in spec {
                            let one = toml::Table::from_iter([(key.clone(), value.clone())]);
                            toml::Value::Table(one).try_into::<AppSpec>().map_err(|e| {
                                err(format!("apps.{name}.{key}"), e.message().to_string())
                            })?;
                        }
                    }
                }
                "drop_db_on_prune" => {
                    v.as_bool()
                        .ok_or_else(|| err(k.clone(), "true or false".into()))?;
                }
                _ => {
                    return Err(err(
                        k.clone(),
                        "unknown key; accepted: drop_db_on_prune, [apps.NAME] tables".into(),
                    ))
                }
            }
        }
        toml::Value::Table(table)
            .try_into::<AppsFile>()
            .map_err(|e| err("the file".into(), e.message().to_string()))
    }

    /// The file as `dump` writes it.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
