//! The engine's operations: what the API, the CLI and the desktop shell call, one operator
//! action one method, over the running side below it (`run::Core`: registry, supervisor,
//! sampler, logs). The front doors (`api`, `proxy`) stand above it and `host.rs` starts them.
//!
//! Invariants: every change is validated before anything is written; a failed create leaves
//! nothing behind; a delete never drops a database Hangar did not create.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::base::config::{AppCommand, Config, ConfigError, Runtime};
use crate::base::db::AppDb;
use crate::base::home::{EngineLock, Home, HomeError};
use crate::base::validate::{self, Invalid, MAIN};
use crate::run::launch;
use crate::run::sampler::Sampler;
use crate::run::supervisor::{Ctx, Event, Failure, Status, Supervisor};
use crate::run::Core;
use crate::store::registry::{AppEdit, AppRecord, Desired, Registry, RegistryError, StartMode};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(Invalid),
    #[error("no app named {0:?}; `hangar list` shows the apps there are")]
    NotFound(String),
    #[error("{0}")]
    Conflict(Invalid),
    #[error("{0}")]
    Refused(String),
    /// A refused step of `apply`'s plan: the app and its field (`apps.NAME.FIELD: …`).
    #[error("apps.{app}.{invalid}")]
    Plan { app: String, invalid: Invalid },
    #[error("{name} did not start: {source}")]
    Start {
        name: String,
        #[source]
        source: Failure,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("{0}")]
    Registry(RegistryError),
    #[error(transparent)]
    Monitor(#[from] crate::run::monitor::MonitorError),
    /// A backup or a restore that failed on the machine (not refused, not invalid).
    #[error(transparent)]
    Backup(crate::store::archive::BackupError),
    /// A task the engine waited for panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// `what` says what failed: "cannot create /home/…/apps/shop".
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A port the engine must listen on is taken (or not allowed); `setting` is its
    /// `hangar.toml` key, and its flag is the same with dashes.
    #[error("cannot listen on {addr} for {service}: {source}; set {setting} in hangar.toml or --{}", .setting.replace('_', "-"))]
    Listen {
        addr: std::net::SocketAddr,
        service: &'static str,
        setting: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// How an I/O error of the step `what` ("cannot create /x") becomes an engine error.
    pub(crate) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> EngineError {
        move |source| EngineError::Io {
            what: what.to_string(),
            source,
        }
    }
}

impl From<RegistryError> for EngineError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound(n) => EngineError::NotFound(n),
            RegistryError::Conflict(i) => EngineError::Conflict(i),
            other => EngineError::Registry(other),
        }
    }
}

impl From<crate::store::provision::ProvisionError> for EngineError {
    fn from(e: crate::store::provision::ProvisionError) -> Self {
        use crate::store::provision::ProvisionError;
        match e {
            ProvisionError::Invalid(i) => EngineError::Invalid(i),
            ProvisionError::Conflict(i) => EngineError::Conflict(i),
            ProvisionError::Refused { message, .. } => EngineError::Refused(message),
        }
    }
}

impl From<Invalid> for EngineError {
    fn from(i: Invalid) -> Self {
        EngineError::Invalid(i)
    }
}

/// What `create` takes (CLI flags, API JSON, UI form).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub start_mode: Option<StartMode>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub pinned: bool,
    /// `new-database` (default), `schema`, or a connection URL.
    #[serde(default)]
    pub db: Option<String>,
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Idle stop in seconds for an on-visit app; absent or 0: never.
    #[serde(default)]
    pub idle_timeout: Option<i64>,
    /// Its own program (`hangar create NAME -- PROGRAM [ARGS…]`); without `runtime`, the app
    /// runs on the `command` runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<AppCommand>,
    /// The app's own memory limit: a size (`600M`) or bytes; absent or 0: the runtime's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<crate::base::validate::SizeInput>,
    /// The app's own CPU priority, -20..19; absent or 0: the runtime's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nice: Option<i64>,
}

impl CreateApp {
    /// The runtime the app will run: the one asked for; else `command` for an app with its own
    /// program; else the main app's.
    fn runtime_name(&self, config: &Config) -> String {
        match (&self.runtime, &self.command) {
            (Some(r), _) => r.clone(),
            (None, Some(_)) => crate::base::config::COMMAND.to_string(),
            (None, None) => config.main.runtime.clone(),
        }
    }

    /// The checks of a create that need nothing but the request and the configuration: name,
    /// display name, domain, env, idle timeout, runtime, the database method's form, a given
    /// port's range. [`Engine::check_create`] adds what needs the registry and the machine.
    pub fn check(
        &self,
        config: &Config,
        runtimes: &BTreeMap<String, Runtime>,
    ) -> Result<Checked, Invalid> {
        validate::name(&self.name)?;
        let display_name = self
            .display_name
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| self.name.clone());
        validate::display_name(&display_name)?;
        let domain = self
            .domain
            .clone()
            .filter(|d| !d.is_empty())
            .map(|d| d.to_ascii_lowercase());
        if let Some(d) = &domain {
            validate::domain(d)?;
        }
        for (k, v) in &self.env {
            validate::env_entry(k, v)?;
        }
        let idle_timeout = match self.idle_timeout.map(validate::idle_timeout).transpose()? {
            Some(0) | None => None,
            Some(_) if self.start_mode == Some(StartMode::WithMain) => {
                return Err(Invalid::new(
                    "idle_timeout",
                    "an idle timeout applies to on-visit apps only; a with-main app runs as long as the engine",
                ))
            }
            Some(s) => Some(s),
        };
        let rt_name = self.runtime_name(config);
        let Some(runtime) = runtimes.get(&rt_name) else {
            let known: Vec<&str> = runtimes.keys().map(|s| s.as_str()).collect();
            return Err(Invalid::new(
                "runtime",
                format!("no runtime {rt_name:?}; accepted: {}", known.join(", ")),
            ));
        };
        match &self.command {
            Some(c) => {
                c.check_for_app(Some(&runtime.env), &self.env)?;
                program_found(c, &runtime.env, &self.env)?;
            }
            None if runtime.per_app() => {
                return Err(Invalid::new(
                    "command",
                    format!("runtime {rt_name:?} runs each app's own program: `hangar create NAME -- PROGRAM [ARGS…]`"),
                ))
            }
            None => {}
        }
        if let Some(m) = self.db.as_deref() {
            validate::db_method(m)?;
        }
        let port = self
            .port
            .map(|p| validate::port(i64::from(p), &[config.proxy_port, config.api_port]))
            .transpose()?;
        let memory_max = match &self.memory_max {
            Some(m) => m.memory_max()?,
            None => None,
        };
        let nice = self
            .nice
            .map(validate::nice)
            .transpose()?
            .filter(|n| *n != 0);
        Ok(Checked {
            runtime: (self.runtime.is_some() || self.command.is_some()).then_some(rt_name),
            display_name,
            domain,
            idle_timeout,
            port,
            memory_max,
            nice,
        })
    }
}

/// An app's own program exists and may be run: an absolute path names an executable file, a
/// bare name is found on the app's `PATH` (its own, else its runtime's, else the engine's). A
/// program given through a variable (`${VAR}`) or relative to the working folder is left to
/// the start.
fn program_found(
    c: &AppCommand,
    runtime_env: &BTreeMap<String, String>,
    app_env: &BTreeMap<String, String>,
) -> Result<(), Invalid> {
    use std::os::unix::fs::PermissionsExt;
    let Some(program) = c.argv.first() else {
        return Ok(());
    };
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains("${") {
        return Ok(());
    }
    if program.starts_with('/') {
        let p = std::path::Path::new(program);
        return match std::fs::metadata(p) {
            Err(e) => Err(Invalid::new(
                "command",
                format!("program {program:?} cannot be run: {e}"),
            )),
            Ok(_) if !runnable(p) => Err(Invalid::new(
                "command",
                format!("program {program:?} is not an executable file"),
            )),
            Ok(_) => Ok(()),
        };
    }
    if program.contains('/') {
        return Ok(());
    }
    let path = app_env
        .get("PATH")
        .or_else(|| runtime_env.get("PATH"))
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    if std::env::split_paths(&path).any(|d| runnable(&d.join(program))) {
        return Ok(());
    }
    Err(Invalid::new(
        "command",
        format!("program {program:?} is not found on PATH ({path}); give its full path"),
    ))
}

/// One app as every client sees it: the contract's `list --json` fields, and a few more.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppView {
    pub name: String,
    pub display_name: String,
    pub status: Status,
    pub pid: Option<u32>,
    pub port: u16,
    pub start_mode: StartMode,
    pub domain: Option<String>,
    pub pinned: bool,
    pub url: String,
    /// Every address, the one to open first first: `<name>.localhost` (its own origin), `url`,
    /// its domain.
    pub urls: Vec<String>,
    pub db: String,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub uptime_seconds: Option<u64>,
    pub restarts: u32,
    pub error: Option<String>,
    pub runtime: String,
    pub desired: Desired,
    pub env: BTreeMap<String, String>,
    pub progress: Option<String>,
    /// Output lines that never reached the app's log file (the writer fell behind for over a
    /// second, or writes failed, e.g. a full disk); each loss is also noted in the file.
    pub log_lines_lost: u64,
    pub created_at: String,
    /// What the operator should know about a create (e.g. the app uses the service account).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// Idle stop in seconds (on-visit apps); `None`: never.
    #[serde(default)]
    pub idle_timeout: Option<u32>,
    /// Its own program (`create NAME -- PROGRAM`), as stored: `${VAR}` not expanded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<AppCommand>,
    /// Orders views of one app from one engine: the higher is the newer (see
    /// `supervisor::AppState::version`). Starts again with the engine.
    #[serde(default)]
    pub version: u64,
    /// The memory limit in bytes: the app's own, else its runtime's (a change applies at the
    /// next start).
    #[serde(default)]
    pub memory_max: Option<u64>,
    /// What enforces the limit: the kernel (a cgroup) and the sampler, or the sampler alone
    /// and why.
    #[serde(default)]
    pub memory_enforced_by: Option<String>,
    /// Restarts for going over the memory limit since the engine started.
    #[serde(default)]
    pub memory_restarts: u32,
    /// The CPU priority (nice) of its process group: the app's own, else its runtime's.
    #[serde(default)]
    pub nice: Option<i32>,
    /// Why Hangar itself last stopped or restarted it: its memory limit, the memory budget
    /// (put to sleep), its idle timeout.
    #[serde(default)]
    pub reason: Option<String>,
    /// The app's own memory limit (bytes) and nice value, without its runtime's: what
    /// `hangar dump` writes and `apply` compares. Absent: none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_memory_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_nice: Option<i32>,
}

impl AppView {
    /// Stopped, and its next visit starts it (an on-visit app never started, stopped when
    /// idle, put to sleep by the memory budget): "asleep", where the operator's stop is
    /// "stopped". The CLI, the panel and the tray say the same.
    pub fn asleep(&self) -> bool {
        self.status == Status::Stopped && self.desired == Desired::Dormant
    }

    /// The status as the operator reads it: `asleep` for an asleep app, else the status.
    pub fn shown_status(&self) -> &'static str {
        if self.asleep() {
            "asleep"
        } else {
            self.status.as_str()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteReport {
    pub name: String,
    pub dropped: Vec<String>,
    pub kept: Vec<String>,
}

/// One app's explicit upgrade (`hangar upgrade`): `result` says what it did (when it
/// `failed`, `error` says why; the app is left in `error` and not started).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeReport {
    pub name: String,
    pub result: UpgradeResult,
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: Status,
    pub error: Option<String>,
}

/// What an explicit upgrade of one app did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeResult {
    /// The runtime's version moved and its upgrade command ran.
    Upgraded,
    /// Nothing to do: the version did not move, or the runtime has no upgrade command.
    UpToDate,
    Failed,
}

impl UpgradeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeResult::Upgraded => "upgraded",
            UpgradeResult::UpToDate => "up-to-date",
            UpgradeResult::Failed => "failed",
        }
    }
}

impl std::fmt::Display for UpgradeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How [`Engine::create_with`] departs from a plain create.
#[derive(Debug, Default)]
pub(crate) struct CreateOpts {
    /// Use this database (attached or already provisioned) instead of provisioning one.
    pub db: Option<AppDb>,
    /// Register the app stopped (`desired = stopped`): nothing starts it until the operator does.
    pub hold: bool,
    pub app_key: Option<String>,
}

/// What `check_create` made of a create's fields, as they will be stored.
pub struct Checked {
    /// The runtime it is stored with (`None`: the main app's).
    pub runtime: Option<String>,
    pub display_name: String,
    pub domain: Option<String>,
    pub idle_timeout: Option<u32>,
    /// The port asked for, if any.
    pub port: Option<u16>,
    pub memory_max: Option<u64>,
    pub nice: Option<i32>,
}

/// Command-line overrides of `hangar.toml`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub proxy_port: Option<u16>,
    pub api_port: Option<u16>,
}

/// The engine: the running side ([`Core`], reached through `Deref`) and the operations on it.
pub struct Engine {
    core: Arc<Core>,
    pub token: String,
    /// Backups and restores under way, for the API's progress route.
    pub jobs: crate::base::jobs::Jobs,
    shutdown: watch::Sender<bool>,
    /// Every app event with its view, made once (see [`Engine::view_events`]).
    views: std::sync::OnceLock<broadcast::Sender<ViewEvent>>,
    _lock: EngineLock,
}

/// An app event with the app's view, made once for every listener (the API's event streams).
#[derive(Debug, Clone)]
pub enum ViewEvent {
    App(Arc<AppView>),
    Removed(String),
    /// Events were missed: read the list again.
    Resync,
}

impl Engine {
    /// The running side, for the loops that follow it (see `host`).
    pub fn core(&self) -> Arc<Core> {
        self.core.clone()
    }
}

impl std::ops::Deref for Engine {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

/// How many apps start at once: when the engine starts, and in the CLI's bulk `start` and
/// `stop`; the control panel's bulk actions read it from `GET /api/v1/engine`
/// (`start_parallel`).
pub const START_PARALLEL: usize = 4;

impl Engine {
    /// Take the home (refusing if another engine holds it), load the configuration and the
    /// registry. Nothing is started yet: see [`Engine::boot`].
    pub async fn open(home: Home, overrides: Overrides) -> Result<Arc<Engine>, EngineError> {
        home.prepare()?;
        let lock = home.lock()?;
        let mut config = Config::load(&home.config_file())?;
        if let Some(p) = overrides.proxy_port {
            config.proxy_port = p;
        }
        if let Some(p) = overrides.api_port {
            config.api_port = p;
        }
        let config = Arc::new(config);
        let runtimes = Arc::new(crate::run::runtimes::Runtimes::new(&config));
        let registry = Registry::open(&home.registry_file()).await?;
        let token = home.token()?;
        let monitor =
            crate::run::monitor::Monitor::open(&home.root().join("metrics.sqlite")).await?;
        let sampler_kind = config.sampler;
        let (events, _) = broadcast::channel(1024);
        let ctx = Arc::new(Ctx {
            home: home.clone(),
            config: config.clone(),
            runtimes: runtimes.clone(),
            registry: registry.clone(),
            events: events.clone(),
            changes: Default::default(),
            cgroups: Default::default(),
        });
        let (shutdown, _) = watch::channel(false);
        Ok(Arc::new(Engine {
            core: Arc::new(Core {
                home,
                config,
                runtimes,
                registry,
                supervisor: Supervisor::new(ctx),
                events,
                sampler: Sampler::with_kind(sampler_kind),
                monitor,
                log_files: Default::default(),
            }),
            token,
            jobs: crate::base::jobs::Jobs::default(),
            shutdown,
            views: std::sync::OnceLock::new(),
            _lock: lock,
        }))
    }

    /// Make sure the main app exists, end what a crashed engine left running, supervise every
    /// app and start the main app and the `with-main` apps, a few at a time.
    pub async fn boot(self: &Arc<Self>) -> Result<(), EngineError> {
        self.recover().await?;
        self.ensure_main().await?;
        let apps = self.registry.list().await?;
        // Apps a previous engine left in `error` stay so, with their reason, unstarted.
        let failed = self.registry.errors().await?;
        for app in &apps {
            if let Some(recorded) = &app.pid {
                // A previous engine died without stopping this app. Its output pipes died with
                // that engine, so it cannot be adopted with its logs: end what is left of its
                // group (never a process that merely reused the pid, nor one of another boot).
                let pid = recorded.pid;
                if crate::base::process::group_alive(pid) {
                    if recorded.is_ours() {
                        tracing::warn!(app = %app.name, pid, "ending processes left by an engine that did not stop cleanly");
                        crate::base::process::end_group(pid, Duration::from_secs(10)).await;
                    } else {
                        tracing::info!(app = %app.name, pid, "a recorded process is not this boot's own (or not the one recorded); left alone");
                    }
                }
                let _ = self.registry.set_pid(&app.name, None).await;
            }
            self.supervisor.end_earlier_run(&app.name).await;
            match failed.get(&app.name) {
                Some(why) => self.supervisor.add_failed(&app.name, why.clone()),
                None => self.supervisor.add(&app.name),
            };
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(START_PARALLEL));
        for app in apps {
            let boot_it = match (app.start_mode, app.desired) {
                _ if failed.contains_key(&app.name) => false,
                (_, Desired::Stopped) => false,
                (StartMode::WithMain, _) => true,
                (StartMode::OnVisit, Desired::Running) => {
                    // It ran before; it will start again on its next visit.
                    let _ = self.registry.set_desired(&app.name, Desired::Dormant).await;
                    false
                }
                (StartMode::OnVisit, _) => false,
            };
            if app.name == MAIN && !self.config.main.enabled {
                continue;
            }
            if boot_it {
                let engine = self.clone();
                let slots = slots.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = slots.acquire().await else {
                        return;
                    };
                    if let Err(why) = engine.supervisor.start(&app.name).await {
                        tracing::warn!(app = %app.name, "did not start with the engine: {why}");
                    }
                });
            }
        }
        Ok(())
    }

    /// Move a deleted app's data folder to `apps/.deleted/<name>-<time>/`.
    fn move_aside(&self, name: &str) -> Result<std::path::PathBuf, EngineError> {
        let dir = self.home.app_dir(name);
        let stamp = crate::base::clock::now().replace([':', '-'], "");
        let aside = self
            .home
            .apps_dir()
            .join(".deleted")
            .join(format!("{name}-{stamp}"));
        if let Some(parent) = aside.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::rename(&dir, &aside).map_err(EngineError::io(format!(
            "cannot move {} aside",
            dir.display()
        )))?;
        Ok(aside)
    }

    /// Finish what a crashed engine left in the journal: a create cut short is undone (only
    /// what it made: objects that existed before it are kept), a delete is rolled forward.
    async fn recover(&self) -> Result<(), EngineError> {
        for entry in self.registry.journal().await? {
            let registered = self.registry.get(&entry.name).await.is_ok();
            match entry.op {
                crate::store::registry::JournalOp::Create if registered => {}
                crate::store::registry::JournalOp::Create => {
                    tracing::warn!(app = %entry.name, "undoing a create that an engine crash cut short");
                    if let Some(svc) = &entry.data_service {
                        let id = crate::store::provision::identifier(&entry.name);
                        match crate::store::provision::drop_unfinished(svc, &id, &entry.existed)
                            .await
                        {
                            Ok(dropped) if !dropped.is_empty() => {
                                tracing::warn!(app = %entry.name, "dropped {}", dropped.join(", "))
                            }
                            Ok(_) => {}
                            Err(why) => {
                                // Keep the entry: the next start tries again.
                                tracing::error!(app = %entry.name, "cannot undo the unfinished create yet: {why}");
                                continue;
                            }
                        }
                    }
                    let dir = self.home.app_dir(&entry.name);
                    if !entry.existed.iter().any(|k| k == "folder") && dir.exists() {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                }
                crate::store::registry::JournalOp::Delete => {
                    tracing::warn!(app = %entry.name, "finishing a delete that an engine crash cut short");
                    if entry.drop_db {
                        if let Some(db) = &entry.db {
                            if let Err(e) = crate::store::provision::drop_owned(
                                db,
                                entry.data_service.as_deref(),
                            )
                            .await
                            {
                                tracing::error!(app = %entry.name, "cannot finish dropping the database yet: {e}");
                                continue;
                            }
                        }
                    }
                    if registered {
                        self.registry.delete(&entry.name).await?;
                    }
                    let dir = self.home.app_dir(&entry.name);
                    if dir.exists() {
                        if entry.drop_db {
                            let _ = std::fs::remove_dir_all(&dir);
                        } else {
                            let _ = self.move_aside(&entry.name);
                        }
                    }
                }
            }
            self.registry.journal_end(&entry.name).await?;
        }
        Ok(())
    }

    async fn ensure_main(&self) -> Result<(), EngineError> {
        if self.registry.get(MAIN).await.is_ok() {
            // Keep the main app's row in step with hangar.toml.
            let edit = AppEdit {
                domain: Some(self.config.main.domain.clone()),
                env: Some(self.config.main.env.clone()),
                port: self.config.main.port,
                ..AppEdit::default()
            };
            self.registry.update(MAIN, &edit).await?;
            return Ok(());
        }
        let port = match self.config.main.port {
            Some(p) => p,
            None => self.free_port().await?,
        };
        let dir = self.home.app_dir(MAIN);
        std::fs::create_dir_all(&dir)
            .map_err(EngineError::io(format!("cannot create {}", dir.display())))?;
        let now = crate::base::clock::now();
        let record = AppRecord {
            name: MAIN.into(),
            display_name: "Main app".into(),
            start_mode: StartMode::WithMain,
            port,
            domain: self.config.main.domain.clone(),
            pinned: false,
            runtime: None,
            command: None,
            db: AppDb::sqlite_file(&dir),
            env: self.config.main.env.clone(),
            secret_env: generated_env(
                self.runtimes.get(&self.config.main.runtime).as_ref(),
                MAIN,
                &self.config.main.env,
            ),
            app_key: crate::base::secret::random_hex(32),
            desired: Desired::Running,
            last_version: None,
            pid: None,
            idle_timeout: None,
            memory_max: None,
            nice: None,
            created_at: now.clone(),
            updated_at: now,
        };
        self.registry.insert(&record).await?;
        // No one reads a create's answer for the main app, and a log is no place for a
        // password: the engine's log names the keys and how to read them, never the values.
        if !record.secret_env.is_empty() {
            let keys: Vec<&str> = record.secret_env.keys().map(String::as_str).collect();
            tracing::warn!(
                "made for main: {} (its first admin when it installs itself); read them with `hangar exec main -- printenv {}`, or choose your own in [main] env",
                keys.join(", "),
                keys.join(" ")
            );
        }
        Ok(())
    }

    fn reserved_ports(&self) -> [u16; 2] {
        [self.config.proxy_port, self.config.api_port]
    }

    /// A free port from the configured range, starting the scan at a random place so that two
    /// engines on one machine rarely reach for the same one.
    async fn free_port(&self) -> Result<u16, EngineError> {
        let used = self.registry.used_ports().await?;
        let reserved = self.reserved_ports();
        let range = self.config.app_ports.clone();
        let (first, len) = (*range.start() as u32, range.end() - range.start() + 1);
        let offset = rand::random::<u32>() % len as u32;
        (0..len as u32)
            .map(|i| (first + (offset + i) % len as u32) as u16)
            .find(|p| !used.contains(p) && !reserved.contains(p) && !launch::port_taken(*p))
            .ok_or_else(|| {
                EngineError::Refused(format!(
                    "no free port left in {}-{} (app_ports in hangar.toml)",
                    range.start(),
                    range.end()
                ))
            })
    }

    /// Validate and register a new app, make its data folder and database; a `with-main` app
    /// starts at once.
    pub async fn create(self: &Arc<Self>, req: CreateApp) -> Result<AppView, EngineError> {
        self.create_with(req, CreateOpts::default()).await
    }

    /// Register an app on a database that already exists (a legacy import): the same checks as
    /// [`Engine::create`], nothing is provisioned, and `db.owned` must be empty, so Hangar never
    /// drops it. The app is registered stopped: it runs only once the operator starts it.
    pub async fn attach(
        self: &Arc<Self>,
        req: CreateApp,
        db: AppDb,
    ) -> Result<AppView, EngineError> {
        if !db.owned.is_empty() {
            return Err(EngineError::Refused(
                "an attached database must not be recorded as made by Hangar".into(),
            ));
        }
        self.create_with(
            req,
            CreateOpts {
                db: Some(db),
                hold: true,
                ..CreateOpts::default()
            },
        )
        .await
    }

    /// Every check `create` makes before it writes anything (name, display name, domain, env,
    /// runtime, a free name, a given port); nothing is changed. Returns the display name and
    /// the domain as they will be stored.
    pub async fn check_create(&self, req: &CreateApp) -> Result<Checked, EngineError> {
        let checked = req.check(&self.config, &self.runtimes.all())?;
        if self.registry.get(&req.name).await.is_ok() {
            return Err(EngineError::Conflict(Invalid::new(
                "name",
                format!(
                    "an app named {:?} already exists; names are unique",
                    req.name
                ),
            )));
        }
        if let Some(p) = checked.port {
            if !self.registry.used_ports().await?.contains(&p) && launch::port_taken(p) {
                return Err(Invalid::new("port", format!("port {p} is taken by another program on this machine; leave it blank to get a free one")).into());
            }
        }
        // A port or domain another app holds (the registry names the holder).
        self.registry
            .check_unique(checked.port, checked.domain.as_deref(), &req.name)
            .await?;
        Ok(checked)
    }

    /// `create`, with what attach and restore need: a given database instead of provisioning
    /// one, the app held stopped (a restore loads its data first), a given app key.
    pub(crate) async fn create_with(
        self: &Arc<Self>,
        req: CreateApp,
        opts: CreateOpts,
    ) -> Result<AppView, EngineError> {
        let checked = self.check_create(&req).await?;
        let port = match checked.port {
            Some(p) => p,
            None => self.free_port().await?,
        };
        let data_dir = self.home.app_dir(&req.name);
        // The journal lets an engine that starts after a crash undo a create cut short.
        let provisions = opts.db.is_none()
            && matches!(
                req.db.as_deref().unwrap_or("new-database"),
                "new-database" | "schema"
            );
        let service = self.config.data_service.clone().filter(|_| provisions);
        let mut existed = match &service {
            Some(svc) => crate::store::provision::existing(
                svc,
                &crate::store::provision::identifier(&req.name),
            )
            .await
            .map_err(|why| {
                EngineError::Refused(format!(
                    "cannot reach the data service: {why}; nothing was created"
                ))
            })?,
            None => Vec::new(),
        };
        if data_dir.exists() {
            existed.push("folder".into());
        }
        let entry = crate::store::registry::JournalEntry {
            name: req.name.clone(),
            op: crate::store::registry::JournalOp::Create,
            data_service: service,
            existed,
            db: None,
            drop_db: false,
        };
        self.registry.journal_begin(&entry).await?;
        let result = self
            .create_journaled(req, opts, data_dir, checked, port)
            .await;
        if let Err(e) = self.registry.journal_end(&entry.name).await {
            tracing::warn!(app = %entry.name, "cannot close the journal entry: {e}");
        }
        result
    }

    async fn create_journaled(
        self: &Arc<Self>,
        req: CreateApp,
        opts: CreateOpts,
        data_dir: std::path::PathBuf,
        checked: Checked,
        port: u16,
    ) -> Result<AppView, EngineError> {
        let Checked {
            runtime,
            display_name,
            domain,
            idle_timeout,
            port: asked,
            memory_max,
            nice,
        } = checked;
        let attached = opts.db.is_some();
        let crate::store::provision::Provisioned { db, mut notices } = match opts.db {
            Some(db) => crate::store::provision::Provisioned {
                db,
                notices: Vec::new(),
            },
            None => self.provision_db(&req, &data_dir).await?,
        };
        // A new, empty database is installed at its first start: the runtime's generated
        // values (a first admin) are made now, and told once. Attached and restored (held)
        // apps have their data, and their admins, already.
        let secret_env = if attached || opts.hold {
            BTreeMap::new()
        } else {
            let runtime = req
                .runtime
                .as_deref()
                .unwrap_or(self.config.main.runtime.as_str());
            // The runtimes in force: one added by a reload makes its values too.
            generated_env(self.runtimes.get(runtime).as_ref(), &req.name, &req.env)
        };
        notices.extend(generated_notice(&req.name, &secret_env));
        let now = crate::base::clock::now();
        let mut record = AppRecord {
            name: req.name.clone(),
            display_name,
            start_mode: req.start_mode.unwrap_or(StartMode::OnVisit),
            port,
            domain,
            pinned: req.pinned,
            runtime,
            command: req.command.clone(),
            db,
            env: req.env.clone(),
            secret_env,
            app_key: opts
                .app_key
                .unwrap_or_else(|| crate::base::secret::random_hex(32)),
            desired: match req.start_mode {
                _ if opts.hold => Desired::Stopped,
                Some(StartMode::WithMain) => Desired::Running,
                _ => Desired::Dormant,
            },
            last_version: None,
            pid: None,
            idle_timeout,
            memory_max,
            nice,
            created_at: now.clone(),
            updated_at: now,
        };
        // Make the folder, then the record; undo the folder if the record is refused.
        // Either failing drops the database just made (provision's undo), so nothing is half-made.
        // An attached database is never dropped.
        let made_dir = !data_dir.exists();
        if let Err(e) = std::fs::create_dir_all(&data_dir) {
            if !attached {
                self.discard_db(&record.db).await;
            }
            return Err(EngineError::io(format!(
                "cannot create {}",
                data_dir.display()
            ))(e));
        }
        if let Err(e) = self.insert_new(&mut record, asked.is_none()).await {
            if made_dir {
                let _ = std::fs::remove_dir_all(&data_dir);
            }
            if !attached {
                self.discard_db(&record.db).await;
            }
            return Err(e);
        }
        tracing::info!(app = %record.name, port = record.port, "created");
        self.supervisor.add(&record.name);
        self.supervisor.changed(&record.name);
        if record.start_mode == StartMode::WithMain && !opts.hold {
            let engine = self.clone();
            let name = record.name.clone();
            tokio::spawn(async move {
                let _ = engine.supervisor.start(&name).await;
            });
        }
        if let Ok(rt) = self.runtimes.of(&record) {
            let url_secret = url::Url::parse(&record.db.url).is_ok_and(|u| u.password().is_some());
            let what = match &record.command {
                Some(_) => format!("the command of {}", record.name),
                None => format!("runtimes.{}.command", self.runtimes.name_of(&record)),
            };
            let found = crate::run::launch::secrets_on_command_line(&rt, url_secret);
            if let Some(w) = crate::run::launch::secrets_warning(&what, &found) {
                tracing::warn!(app = %record.name, "{w}");
                notices.push(w);
            }
        }
        let mut view = self.view(&record.name).await?;
        view.notices = notices;
        Ok(view)
    }

    /// Insert a new app's record. A port Hangar picked (`picked`) that another create took
    /// in the meantime (two creates at once can find the same port free) is picked again:
    /// each such refusal is another create's success, so this ends; bounded all the same.
    async fn insert_new(&self, record: &mut AppRecord, picked: bool) -> Result<(), EngineError> {
        const PICKS: usize = 64;
        let mut picks = 1;
        loop {
            match self.registry.insert(record).await {
                Err(RegistryError::Conflict(i)) if picked && i.field == "port" && picks < PICKS => {
                    picks += 1;
                    record.port = self.free_port().await?;
                }
                done => return Ok(done?),
            }
        }
    }

    /// Drop what provisioning made for an app that was not registered after all.
    async fn discard_db(&self, db: &AppDb) {
        if let Err(e) =
            crate::store::provision::drop_owned(db, self.config.data_service.as_deref()).await
        {
            tracing::warn!(
                "a database made for an app that was not created could not be dropped: {e}"
            );
        }
    }

    async fn provision_db(
        &self,
        req: &CreateApp,
        data_dir: &std::path::Path,
    ) -> Result<crate::store::provision::Provisioned, EngineError> {
        let others: Vec<String> = self
            .registry
            .list()
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect();
        let request = crate::store::provision::Request {
            name: &req.name,
            method: req.db.as_deref(),
            data_service: self.config.data_service.as_deref(),
            data_dir,
            others: &others,
        };
        Ok(crate::store::provision::provision(&request).await?)
    }

    pub async fn edit(&self, name: &str, edit: AppEdit) -> Result<AppView, EngineError> {
        let edit = edit.check(&self.reserved_ports())?;
        if let Some(c) = &edit.command {
            let app = self.registry.get(name).await?;
            let runtime = self.runtimes.get(&self.runtimes.name_of(&app));
            c.check_for_app(
                runtime.as_ref().map(|r| &r.env),
                edit.env.as_ref().unwrap_or(&app.env),
            )?;
        }
        let app = self.registry.update(name, &edit).await?;
        if edit.nice.is_some() {
            // A running app gets its new priority at once: every process of its group.
            let rt = self.runtimes.get(&self.runtimes.name_of(&app));
            let nice = app.nice.or(rt.and_then(|r| r.nice)).unwrap_or(0);
            if let Some(pid) = self.supervisor.state(name).and_then(|s| s.pid) {
                if let Err(e) = launch::renice_group(pid, nice) {
                    tracing::warn!(app = %name, "cannot renice its process group to {nice}: {e}");
                }
            }
        }
        self.supervisor.changed(name);
        self.view(name).await
    }

    /// Stop and remove an app. With `drop_db`, drop what Hangar created for it; otherwise its
    /// data folder is kept aside under `apps/.deleted/`, so a new app of the same name starts
    /// empty and nothing is lost.
    pub async fn delete(&self, name: &str, drop_db: bool) -> Result<DeleteReport, EngineError> {
        self.delete_with(name, drop_db, true).await
    }

    /// `delete`; with `backup`, a delete that drops the database is preceded by an automatic
    /// backup (a failed backup deletes nothing). A failed restore undoes itself without one.
    pub(crate) async fn delete_with(
        &self,
        name: &str,
        drop_db: bool,
        backup: bool,
    ) -> Result<DeleteReport, EngineError> {
        if name == MAIN {
            return Err(EngineError::Refused(
                "the main app cannot be deleted; disable it with [main] enabled = false".into(),
            ));
        }
        let app = self.registry.get(name).await?;
        if drop_db && app.db.owned.is_empty() {
            return Err(EngineError::Refused(format!(
                "{name}'s database ({}) was attached (--db URL), not created by Hangar, so Hangar never drops it; delete without --drop-db",
                app.db.describe()
            )));
        }
        let service = self.config.data_service.as_deref();
        if drop_db {
            crate::store::provision::check_drop(name, &app.db, service)?;
        }
        // Stopped first, so the backup is consistent; the backup is complete before anything
        // is dropped (a failed backup deletes nothing).
        self.supervisor.remove(name).await;
        let mut saved = None;
        if drop_db && backup {
            let job = crate::base::jobs::Job::detached("backup", name);
            match crate::store::archive::write(
                &self.home,
                &self.config,
                &app,
                crate::store::archive::Reason::BeforeDelete,
                None,
                &job,
            )
            .await
            {
                Ok(info) => saved = Some(info.name),
                Err(e) => {
                    self.supervisor.ensure(name);
                    return Err(EngineError::Refused(format!(
                        "the automatic backup before dropping {name}'s database failed: {e}; nothing was deleted"
                    )));
                }
            }
        }
        // From here the delete is rolled forward by the next engine if this one dies.
        self.registry
            .journal_begin(&crate::store::registry::JournalEntry {
                name: name.to_string(),
                op: crate::store::registry::JournalOp::Delete,
                data_service: service.map(String::from),
                existed: Vec::new(),
                db: Some(app.db.clone()),
                drop_db,
            })
            .await?;
        let result = self.delete_journaled(&app, drop_db, saved).await;
        if let Err(e) = self.registry.journal_end(name).await {
            tracing::warn!(app = %name, "cannot close the journal entry: {e}");
        }
        result
    }

    async fn delete_journaled(
        &self,
        app: &AppRecord,
        drop_db: bool,
        saved: Option<String>,
    ) -> Result<DeleteReport, EngineError> {
        let name = app.name.as_str();
        let service = self.config.data_service.as_deref();
        self.supervisor.remove(name).await;
        let mut dropped = Vec::new();
        if drop_db {
            // Drop on the server first: if that fails, the app stays registered (stopped).
            match crate::store::provision::drop_owned(&app.db, service).await {
                Ok(d) => dropped = d,
                Err(e) => {
                    self.supervisor.ensure(name);
                    return Err(e.into());
                }
            }
        }
        self.registry.delete(name).await?;
        let mut report = DeleteReport {
            name: name.to_string(),
            dropped,
            kept: Vec::new(),
        };
        if !drop_db && crate::store::provision::owns_server_objects(&app.db) {
            report.kept.push(format!(
                "database {} on the data service (a new app of this name is refused until it is dropped by hand)",
                app.db.describe()
            ));
        }
        let dir = self.home.app_dir(name);
        if drop_db {
            if let Some(f) = &app.db.owned.file {
                report
                    .dropped
                    .push(format!("SQLite database {}", f.display()));
            }
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(EngineError::io(format!("cannot remove {}", dir.display())))?;
                report
                    .dropped
                    .push(format!("data folder {}", dir.display()));
            }
        } else if dir.exists() {
            let aside = self.move_aside(name)?;
            report.kept.push(format!(
                "data folder (and its database) moved to {}",
                aside.display()
            ));
        }
        if app.db.owned.is_empty() {
            report
                .kept
                .push(format!("attached database {}", app.db.describe()));
        }
        if let Some(file) = saved {
            report.kept.push(format!(
                "a backup taken just before: `hangar restore {file}` brings it back"
            ));
        }
        tracing::info!(app = %name, drop_db, "deleted");
        let _ = self.events.send(Event::Removed {
            name: name.to_string(),
        });
        Ok(report)
    }

    pub async fn start(&self, name: &str) -> Result<AppView, EngineError> {
        self.registry.get(name).await?;
        self.supervisor.ensure(name);
        self.supervisor
            .start(name)
            .await
            .map_err(|source| EngineError::Start {
                name: name.to_string(),
                source,
            })?;
        self.view(name).await
    }

    /// Upgrade one app now, through the supervisor's own upgrade step (the one a start runs):
    /// when its runtime's version differs from the one it last ran, run the upgrade command; a
    /// running app is stopped for it and started again, a stopped one stays stopped.
    pub async fn upgrade(&self, name: &str) -> Result<UpgradeReport, EngineError> {
        self.registry.get(name).await?;
        self.supervisor.ensure(name);
        let outcome = self.supervisor.upgrade(name).await;
        let status = self
            .supervisor
            .state(name)
            .map(|s| s.status)
            .unwrap_or(Status::Stopped);
        let report = match outcome {
            Ok(done) => UpgradeReport {
                name: name.to_string(),
                result: if done.upgraded {
                    UpgradeResult::Upgraded
                } else {
                    UpgradeResult::UpToDate
                },
                from: done.from,
                to: done.to,
                status,
                error: None,
            },
            Err(why) => UpgradeReport {
                name: name.to_string(),
                result: UpgradeResult::Failed,
                from: None,
                to: None,
                status,
                error: Some(why.to_string()),
            },
        };
        tracing::info!(app = %name, result = %report.result, "upgrade");
        Ok(report)
    }

    /// Upgrade every app (the main app included unless disabled), one after another.
    pub async fn upgrade_all(&self) -> Result<Vec<UpgradeReport>, EngineError> {
        let mut reports = Vec::new();
        for app in self.registry.list().await? {
            if app.name == MAIN && !self.config.main.enabled {
                continue;
            }
            reports.push(self.upgrade(&app.name).await?);
        }
        Ok(reports)
    }

    pub async fn stop(&self, name: &str) -> Result<AppView, EngineError> {
        self.registry.get(name).await?;
        self.supervisor.stop(name).await;
        self.view(name).await
    }

    pub async fn restart(&self, name: &str) -> Result<AppView, EngineError> {
        self.registry.get(name).await?;
        self.supervisor
            .restart(name)
            .await
            .map_err(|source| EngineError::Start {
                name: name.to_string(),
                source,
            })?;
        self.view(name).await
    }

    /// Stop every app, the main app included (keeping what the operator wanted, so the next
    /// engine brings back what ran), then end the engine.
    pub async fn kill(&self) {
        self.supervisor.shutdown_all().await;
        let _ = self.shutdown.send(true);
    }

    /// End the engine: stop every app, keep what the operator wanted.
    pub async fn shutdown(&self) {
        self.supervisor.shutdown_all().await;
        let _ = self.shutdown.send(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Every app event with its view, read once however many listen: an open panel costs the
    /// engine one send per event, not one registry read each. Nothing is read while no one
    /// listens.
    pub fn view_events(self: &Arc<Self>) -> broadcast::Receiver<ViewEvent> {
        self.views
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(1024);
                let mut events = self.events.subscribe();
                let engine = Arc::downgrade(self);
                let out = tx.clone();
                tokio::spawn(async move {
                    use broadcast::error::RecvError;
                    loop {
                        let item = match events.recv().await {
                            Ok(Event::App { name } | Event::Record { name }) => {
                                if out.receiver_count() == 0 {
                                    continue;
                                }
                                let Some(engine) = engine.upgrade() else {
                                    return;
                                };
                                match engine.view(&name).await {
                                    Ok(v) => ViewEvent::App(Arc::new(v)),
                                    Err(_) => ViewEvent::Removed(name),
                                }
                            }
                            Ok(Event::Removed { name }) => ViewEvent::Removed(name),
                            Err(RecvError::Lagged(_)) => ViewEvent::Resync,
                            Err(RecvError::Closed) => return,
                        };
                        let _ = out.send(item);
                    }
                });
                tx
            })
            .subscribe()
    }

    pub async fn view(&self, name: &str) -> Result<AppView, EngineError> {
        let app = self.registry.get(name).await?;
        Ok(self.view_of(&app))
    }

    pub async fn list(&self) -> Result<Vec<AppView>, EngineError> {
        Ok(self
            .registry
            .list()
            .await?
            .iter()
            .map(|a| self.view_of(a))
            .collect())
    }

    fn view_of(&self, app: &AppRecord) -> AppView {
        let state = self.supervisor.state(&app.name);
        let status = state.as_ref().map(|s| s.status).unwrap_or(Status::Stopped);
        let running = status == Status::Running;
        let usage = if running {
            self.sampler.usage(&app.name)
        } else {
            None
        };
        let url = launch::public_url(&app.name, self.config.proxy_port);
        let rt = self.runtimes.get(&self.runtimes.name_of(app));
        // The link to open first: a sub-app's own origin (`<name>.localhost`), since every app
        // under `/_app/` shares one browser origin (cookies, storage) with the others.
        let mut urls = Vec::new();
        if app.name != MAIN {
            urls.push(format!(
                "http://{}.localhost:{}/",
                app.name, self.config.proxy_port
            ));
        }
        urls.push(url.clone());
        if let Some(d) = &app.domain {
            urls.push(format!("http://{d}:{}/", self.config.proxy_port));
        }
        AppView {
            name: app.name.clone(),
            display_name: app.display_name.clone(),
            status,
            pid: state.as_ref().and_then(|s| s.pid),
            port: app.port,
            start_mode: app.start_mode,
            domain: app.domain.clone(),
            pinned: app.pinned,
            url,
            urls,
            db: app.db.describe(),
            cpu_percent: usage.map(|u| u.cpu_percent),
            memory_bytes: usage.map(|u| u.memory_bytes),
            uptime_seconds: state.as_ref().and_then(|s| s.uptime()).map(|d| d.as_secs()),
            restarts: state.as_ref().map(|s| s.restarts).unwrap_or(0),
            error: state.as_ref().and_then(|s| s.error.clone()),
            runtime: app
                .runtime
                .clone()
                .unwrap_or_else(|| self.config.main.runtime.clone()),
            desired: app.desired,
            env: app.env.clone(),
            progress: state.as_ref().and_then(|s| s.progress.clone()),
            version: state.as_ref().map(|s| s.version).unwrap_or(0),
            log_lines_lost: self
                .supervisor
                .get(&app.name)
                .map(|h| h.log.dropped() + h.log.unwritten())
                .unwrap_or(0),
            created_at: app.created_at.clone(),
            notices: Vec::new(),
            idle_timeout: app.idle_timeout,
            command: app.command.clone(),
            memory_max: app.memory_max.or(rt.as_ref().and_then(|r| r.memory_max)),
            memory_enforced_by: state.as_ref().and_then(|s| s.memory_enforced_by.clone()),
            memory_restarts: state.as_ref().map(|s| s.memory_restarts).unwrap_or(0),
            nice: app.nice.or(rt.as_ref().and_then(|r| r.nice)),
            reason: state.as_ref().and_then(|s| s.reason.clone()),
            own_memory_max: app.memory_max,
            own_nice: app.nice,
        }
    }

    /// The configuration with the runtimes in force (a reload's).
    pub fn live_config(&self) -> Config {
        let mut c = (*self.config).clone();
        c.runtimes = (*self.runtimes.all()).clone();
        c
    }

    /// The apps an export covers: one by name, or every app.
    async fn export_apps(&self, name: Option<&str>) -> Result<Vec<AppRecord>, EngineError> {
        Ok(match name {
            Some(n) => vec![self.registry.get(n).await?],
            None => self.registry.list().await?,
        })
    }

    pub async fn export_nginx(
        &self,
        name: Option<&str>,
        direct: bool,
        listen: u16,
    ) -> Result<String, EngineError> {
        let apps = self.export_apps(name).await?;
        let target = if direct {
            crate::engine::export::NginxTarget::Direct
        } else {
            crate::engine::export::NginxTarget::Hangar
        };
        Ok(crate::engine::export::nginx(
            &self.live_config(),
            &apps,
            target,
            listen,
        ))
    }

    /// Manifests for every app (or one); `image` may hold `{runtime}` and `{name}`. Secret
    /// values only when `secrets` (else their names, empty).
    pub async fn export_kubernetes(
        &self,
        name: Option<&str>,
        image: &str,
        secrets: bool,
    ) -> Result<String, EngineError> {
        let apps = self.export_apps(name).await?;
        let main_rt = self.config.main.runtime.clone();
        let image_of = |a: &AppRecord| {
            image
                .replace("{runtime}", a.runtime.as_deref().unwrap_or(&main_rt))
                .replace("{name}", &a.name)
        };
        crate::engine::export::kubernetes(&self.live_config(), &apps, &image_of, secrets)
            .map_err(|e| EngineError::Refused(e.to_string()))
    }
}

pub mod apply;
pub mod backup;
pub mod exec;
pub mod export;
pub mod import;
pub mod reload;

/// The values `runtime` makes for the new app `app` (its `generated`), for each key its own
/// `env` does not give.
fn generated_env(
    runtime: Option<&crate::base::config::Runtime>,
    app: &str,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    runtime
        .map(|rt| rt.generated.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|(k, _)| !own.contains_key(k))
        .map(|(k, g)| (k.clone(), g.make(app)))
        .collect()
}

/// The one time the operator is told the values made for an app (the create's answer).
fn generated_notice(app: &str, made: &BTreeMap<String, String>) -> Option<String> {
    if made.is_empty() {
        return None;
    }
    let values: Vec<String> = made.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(format!(
        "made for {app} and shown only now: {} (given to the app as env; its first admin when it installs itself; --env KEY=VALUE at create chooses your own)",
        values.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view's JSON is the API's contract: its typed fields serialise to the strings they
    /// always were. The literal is what the engine served while they were strings.
    #[test]
    fn a_view_serialises_as_it_always_did() {
        let view = AppView {
            name: "shop".into(),
            display_name: "The shop".into(),
            status: Status::Backoff,
            pid: Some(4242),
            port: 15001,
            start_mode: StartMode::OnVisit,
            domain: Some("shop.example.test".into()),
            pinned: true,
            url: "http://127.0.0.1:8080/_app/shop/".into(),
            urls: vec![
                "http://127.0.0.1:8080/_app/shop/".into(),
                "http://shop.localhost:8080/".into(),
            ],
            db: "SQLite /home/h/apps/shop/app.sqlite".into(),
            cpu_percent: Some(1.5),
            memory_bytes: Some(1048576),
            uptime_seconds: None,
            restarts: 2,
            error: Some("exited with code 3".into()),
            runtime: "demo".into(),
            desired: Desired::Dormant,
            env: [("A".to_string(), "1".to_string())].into_iter().collect(),
            progress: None,
            log_lines_lost: 0,
            created_at: "2024-05-01T10:00:00Z".into(),
            notices: vec![],
            idle_timeout: Some(300),
            command: None,
            version: 17,
            memory_max: None,
            memory_enforced_by: None,
            memory_restarts: 0,
            nice: None,
            reason: None,
            own_memory_max: None,
            own_nice: None,
        };
        let json = r#"{"name":"shop","display_name":"The shop","status":"backoff","pid":4242,"port":15001,"start_mode":"on-visit","domain":"shop.example.test","pinned":true,"url":"http://127.0.0.1:8080/_app/shop/","urls":["http://127.0.0.1:8080/_app/shop/","http://shop.localhost:8080/"],"db":"SQLite /home/h/apps/shop/app.sqlite","cpu_percent":1.5,"memory_bytes":1048576,"uptime_seconds":null,"restarts":2,"error":"exited with code 3","runtime":"demo","desired":"dormant","env":{"A":"1"},"progress":null,"log_lines_lost":0,"created_at":"2024-05-01T10:00:00Z","idle_timeout":300,"version":17,"memory_max":null,"memory_enforced_by":null,"memory_restarts":0,"nice":null,"reason":null}"#;
        assert_eq!(serde_json::to_string(&view).unwrap(), json);
        // And a client reads it back to the same view.
        let back: AppView = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn an_upgrade_report_serialises_as_it_always_did() {
        let report = UpgradeReport {
            name: "shop".into(),
            result: UpgradeResult::UpToDate,
            from: Some("1".into()),
            to: Some("1".into()),
            status: Status::Stopped,
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"name":"shop","result":"up-to-date","from":"1","to":"1","status":"stopped","error":null}"#
        );
    }

    /// Every value of the typed fields: its JSON string, its text (what the CLI prints, padded
    /// in tables) and `as_str` are one spelling, and the JSON reads back.
    #[test]
    fn each_value_has_one_spelling() {
        fn check<T>(values: &[T], spelled: &[&str], as_str: impl Fn(&T) -> &'static str)
        where
            T: Serialize
                + serde::de::DeserializeOwned
                + std::fmt::Display
                + PartialEq
                + std::fmt::Debug,
        {
            assert_eq!(values.len(), spelled.len());
            for (v, s) in values.iter().zip(spelled) {
                assert_eq!(serde_json::to_value(v).unwrap(), *s);
                assert_eq!(v.to_string(), *s);
                assert_eq!(as_str(v), *s);
                assert_eq!(
                    &serde_json::from_value::<T>(serde_json::json!(s)).unwrap(),
                    v
                );
                assert_eq!(format!("{v:<12}|"), format!("{s:<12}|"), "padding is kept");
            }
        }
        check(
            &Status::ALL,
            &[
                "stopped",
                "starting",
                "running",
                "stopping",
                "upgrading",
                "backoff",
                "error",
            ],
            |s| s.as_str(),
        );
        check(
            &[StartMode::WithMain, StartMode::OnVisit],
            &["with-main", "on-visit"],
            |s| s.as_str(),
        );
        check(
            &[Desired::Running, Desired::Stopped, Desired::Dormant],
            &["running", "stopped", "dormant"],
            |s| s.as_str(),
        );
        check(
            &[
                UpgradeResult::Upgraded,
                UpgradeResult::UpToDate,
                UpgradeResult::Failed,
            ],
            &["upgraded", "up-to-date", "failed"],
            |s| s.as_str(),
        );
    }
}
