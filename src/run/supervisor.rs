//! The supervisor: one actor task per app that owns its process.
//!
//! An actor receives commands (start, stop, restart, wake, shutdown) on a bounded channel and
//! publishes its [`AppState`] on a watch channel; every change is also an [`Event`]. The
//! registry holds what should be (`desired`); the actor makes it so and records the pid.
//!
//! Invariants: at most one process per app; an app process is a process group the engine
//! owns, ended with SIGTERM and, after the runtime's stop timeout, SIGKILL, until no member of
//! the group is left; a crash restarts with an exponential delay capped by the runtime, and too
//! many crashes in a row end in `error` with the reason and the last stderr lines.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::base::config::Rotation;
use crate::base::config::{Config, Runtime};
use crate::base::home::Home;
use crate::run::confine;
use crate::run::launch::{self, Probe};
use crate::run::logs::{AppLog, Stream};
use crate::store::registry::{AppRecord, Desired, Registry};

/// Where an app is. The rules every client applies to a status (may it be started, stopped;
/// is it up; did it fail) are the methods below and nowhere else: the CLI and the desktop call
/// them, and the API serves them as a table (`GET /api/v1/statuses`, see [`StatusRules`]) for
/// the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Stopped,
    Starting,
    Running,
    Stopping,
    Upgrading,
    /// It exited on its own; a restart waits out its delay.
    Backoff,
    /// Hangar gave up (too many crashes, a failed start or upgrade) until it is started again.
    Error,
}

impl Status {
    /// Every status, in the order of an app's life.
    pub const ALL: [Status; 7] = [
        Status::Stopped,
        Status::Starting,
        Status::Running,
        Status::Stopping,
        Status::Upgrading,
        Status::Backoff,
        Status::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Upgrading => "upgrading",
            Status::Backoff => "backoff",
            Status::Error => "error",
        }
    }

    /// A Start makes sense: nothing runs, or a crashed app waits for its restart.
    pub fn can_start(self) -> bool {
        matches!(self, Status::Stopped | Status::Error | Status::Backoff)
    }

    /// A Stop makes sense: a process is up or on its way, or a restart is pending.
    pub fn can_stop(self) -> bool {
        matches!(
            self,
            Status::Starting | Status::Running | Status::Backoff | Status::Upgrading
        )
    }

    /// The app is not down yet: a process is up, on its way up or still stopping, or a restart
    /// is pending. Only `stopped` and `error` are down (nothing runs and nothing will by
    /// itself).
    pub fn is_active(self) -> bool {
        !matches!(self, Status::Stopped | Status::Error)
    }

    /// The app failed: its process exited on its own and a restart is pending (`backoff`), or
    /// Hangar gave up on it (`error`).
    pub fn is_failing(self) -> bool {
        matches!(self, Status::Backoff | Status::Error)
    }

    /// This status with the outcome of each rule.
    pub fn rules(self) -> StatusRules {
        StatusRules {
            status: self,
            active: self.is_active(),
            can_start: self.can_start(),
            can_stop: self.can_stop(),
            failing: self.is_failing(),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One status and what the rules of [`Status`] say of it: the table the API serves, so a
/// client that cannot call the methods (the UI) applies the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatusRules {
    pub status: Status,
    pub active: bool,
    pub can_start: bool,
    pub can_stop: bool,
    pub failing: bool,
}

/// What is, for one app.
#[derive(Debug, Clone, Serialize)]
pub struct AppState {
    pub status: Status,
    pub pid: Option<u32>,
    /// When the current process became ready.
    #[serde(skip)]
    pub running_since: Option<SystemTime>,
    /// When the current start began (for the waiting page's elapsed time).
    #[serde(skip)]
    pub starting_since: Option<SystemTime>,
    pub restarts: u32,
    pub error: Option<String>,
    /// The health path's last non-ready answer while starting (a boot progress message).
    pub progress: Option<String>,
    /// Which change of the engine's apps this state is: every change of any app's state (or of
    /// its record: created, edited) takes the next number, so of two views of one app the one
    /// with the higher version is the newer (a view taken before an event can arrive after it).
    pub version: u64,
    /// The memory limit of the current (or last) run, bytes: the app's own, else its runtime's.
    pub memory_max: Option<u64>,
    /// What enforces it: the kernel (a cgroup) and the sampler, or the sampler alone and why.
    pub memory_enforced_by: Option<String>,
    /// Restarts because the app went over its memory limit, since the engine started.
    pub memory_restarts: u32,
    /// The nice value of the current (or last) run.
    pub nice: Option<i32>,
    /// Why Hangar itself last stopped or restarted the app (its memory limit, the memory
    /// budget, its idle timeout); cleared when the operator starts or stops it, or a visit
    /// wakes it.
    pub reason: Option<String>,
}

impl AppState {
    fn new() -> AppState {
        AppState {
            status: Status::Stopped,
            pid: None,
            running_since: None,
            starting_since: None,
            restarts: 0,
            error: None,
            progress: None,
            version: 0,
            memory_max: None,
            memory_enforced_by: None,
            memory_restarts: 0,
            nice: None,
            reason: None,
        }
    }
    pub fn uptime(&self) -> Option<Duration> {
        self.running_since.and_then(|t| t.elapsed().ok())
    }
}

/// Every change of an app, for the API's event stream, the desktop shell and the proxy.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Its state changed (status, pid, restarts, error, desired state).
    App {
        name: String,
    },
    /// Its record changed: created, edited, restored, imported, or supervised anew. Its routes
    /// (port, domain, prefix) may have: the proxy's route table follows these and `Removed`.
    Record {
        name: String,
    },
    Removed {
        name: String,
    },
}

impl Event {
    /// The app the event is about.
    pub fn name(&self) -> &str {
        match self {
            Event::App { name } | Event::Record { name } | Event::Removed { name } => name,
        }
    }
}

/// What an explicit upgrade did: the versions, and whether the upgrade command ran.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeDone {
    pub from: Option<String>,
    pub to: Option<String>,
    pub upgraded: bool,
}

/// Why a visit could not get an app running.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WakeError {
    #[error("{0} was stopped by the operator")]
    Stopped(String),
    #[error("{0}")]
    Failed(String),
    #[error("the engine is shutting down")]
    Gone,
}

/// Why a start, a restart or an upgrade failed. The text is the app's `error` (as the API shows
/// it); the system's error stays the source. One failure answers every waiter, so it travels
/// shared ([`Failure`]).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Registry(#[from] crate::store::registry::RegistryError),
    #[error("runtime {0:?} is not in hangar.toml")]
    NoRuntime(String),
    #[error("runtime {0:?} runs each app's own program, and this app has none; give it one (`hangar create NAME -- PROGRAM [ARGS…]`, or an edit of its command)")]
    NoCommand(String),
    #[error(transparent)]
    Launch(#[from] launch::LaunchError),
    #[error("cannot create the app's data folder: {0}")]
    DataDir(#[source] std::io::Error),
    #[error("{source} (runtimes.{runtime}.confine = false runs its apps unconfined)")]
    Confine {
        runtime: String,
        #[source]
        source: crate::run::confine::ConfineError,
    },
    #[error("port {0} is taken by another program; free it or give the app another port (`hangar` edit or --port)")]
    PortTaken(u16),
    /// `hint`: empty, or `; ` and the confinement's [`confine::Confinement::hint`].
    #[error("cannot start {program:?}: {source}{hint}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
        hint: String,
    },
    #[error("the process vanished at once")]
    Vanished,
    #[error("not ready after {secs} s: {health} on port {port} never answered 2xx")]
    NotReady {
        secs: u64,
        health: String,
        port: u16,
    },
    /// Too many crashes in a row; `stderr` holds the last lines the app wrote there.
    #[error("crashed {crashes} times in a row, last {reason}; not restarting until started again{}", stderr_tail(.stderr))]
    GaveUp {
        crashes: u32,
        reason: String,
        stderr: Vec<String>,
    },
    #[error("the automatic backup before the upgrade to {version} failed: {source}; not upgraded, not started")]
    Backup {
        version: String,
        #[source]
        source: crate::store::archive::BackupError,
    },
    #[error("cannot run the upgrade {program:?}: {source}")]
    UpgradeRun {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upgrade to {version} failed ({status}); not started; log: {}", .log.join(" | "))]
    UpgradeFailed {
        version: String,
        status: std::process::ExitStatus,
        log: Vec<String>,
    },
    #[error("upgrade to {version}: {source}")]
    UpgradeWait {
        version: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upgrade to {version} did not finish within 30 minutes; not started")]
    UpgradeTimeout { version: String },
    /// Over its memory limit too many times in a row.
    #[error("over its memory limit {times} times in a row, last {reason}; not restarting until started again")]
    MemoryLimit { times: u32, reason: String },
    #[error("{0} was stopped before it was ready")]
    StoppedBeforeReady(String),
    #[error("{0} was stopped before its upgrade ran")]
    StoppedBeforeUpgrade(String),
    #[error("the app was removed or the engine is shutting down")]
    Removed,
    #[error("the engine is shutting down")]
    ShuttingDown,
}

/// A [`StartError`] as every waiter of one start gets it.
pub type Failure = Arc<StartError>;

/// The last stderr lines as a reason quotes them: each distinct line once, in the order each
/// first came (a crash loop writes the same line every time).
fn stderr_tail(lines: &[String]) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for l in lines {
        if !distinct.contains(&l.as_str()) {
            distinct.push(l);
        }
    }
    if distinct.is_empty() {
        String::new()
    } else {
        format!("; last stderr: {}", distinct.join(" | "))
    }
}

enum Cmd {
    /// Operator start: sticky `running`; the reply comes when ready or failed.
    Start(oneshot::Sender<Result<(), Failure>>),
    /// Operator stop: sticky `stopped`.
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<Result<(), Failure>>),
    /// A visit: start unless the operator stopped it; reply with the port when ready.
    Wake(oneshot::Sender<Result<u16, WakeError>>),
    /// Engine shutdown or delete: end the process, keep `desired`, end the actor.
    Shutdown(oneshot::Sender<()>),
    /// Explicit upgrade: when the runtime's version moved, run its upgrade command (stopping
    /// and starting again a running app); a stopped app stays stopped.
    Upgrade(oneshot::Sender<Result<UpgradeDone, Failure>>),
    /// The proxy saw no activity for the app's idle timeout (reason `None`), or the memory
    /// budget needs its memory (the reason): if running, stop and go `dormant` (a visit wakes
    /// it again). Replies whether it stopped.
    Idle(oneshot::Sender<bool>, Option<String>),
    /// The sampler saw the app's tree over its memory limit for several samples in a row:
    /// restart it (counted as a crash). Replies whether it did.
    OverMemory {
        used: u64,
        limit: u64,
        reply: oneshot::Sender<bool>,
    },
}

/// Shared by every actor.
pub struct Ctx {
    pub home: Home,
    pub config: Arc<Config>,
    /// The runtimes in force (see [`crate::run::runtimes::Runtimes`]).
    pub runtimes: Arc<crate::run::runtimes::Runtimes>,
    pub registry: Registry,
    pub events: broadcast::Sender<Event>,
    /// The changes of app states so far (see [`AppState::version`]).
    pub changes: std::sync::atomic::AtomicU64,
    /// Whether the kernel can limit apps' memory here (detected at the first limited start).
    pub cgroups: std::sync::OnceLock<Result<crate::base::cgroup::Cgroups, String>>,
}

impl Ctx {
    /// The number of the next change of any app (see [`AppState::version`]).
    fn next_version(&self) -> u64 {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }
}

#[derive(Clone)]
pub struct AppHandle {
    tx: mpsc::Sender<Cmd>,
    pub state: watch::Receiver<AppState>,
    /// The actor's own sender, for a change of the app's record (see [`Supervisor::changed`]).
    state_tx: Arc<watch::Sender<AppState>>,
    pub log: Arc<AppLog>,
}

pub struct Supervisor {
    ctx: Arc<Ctx>,
    apps: RwLock<HashMap<String, AppHandle>>,
}

impl Supervisor {
    pub fn new(ctx: Arc<Ctx>) -> Supervisor {
        Supervisor {
            ctx,
            apps: RwLock::new(HashMap::new()),
        }
    }

    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Begin supervising `name` (idle until told otherwise).
    pub fn add(&self, name: &str) -> AppHandle {
        self.add_in(name, None)
    }

    /// An app a previous engine left in `error`: it stays so, with its reason, until it is
    /// started or stopped.
    pub fn add_failed(&self, name: &str, error: String) -> AppHandle {
        self.add_in(name, Some(error))
    }

    fn add_in(&self, name: &str, error: Option<String>) -> AppHandle {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = apps.get(name) {
            return h.clone();
        }
        let (tx, rx) = mpsc::channel(64);
        let mut first = AppState::new();
        if error.is_some() {
            first.status = Status::Error;
            first.error = error;
        }
        let (state_tx, state) = watch::channel(first);
        let state_tx = Arc::new(state_tx);
        tokio::spawn(keep_error(
            name.to_string(),
            state_tx.subscribe(),
            self.ctx.registry.clone(),
        ));
        let log = AppLog::open(self.ctx.home.app_log(name), Rotation::default());
        let actor = Actor {
            name: name.to_string(),
            ctx: self.ctx.clone(),
            rx,
            state: state_tx.clone(),
            log: log.clone(),
            wake_waiters: Vec::new(),
            start_waiters: Vec::new(),
            upgrade_waiters: Vec::new(),
            crashes: 0,
            pid_write: None,
            group: None,
        };
        tokio::spawn(actor.run());
        let handle = AppHandle {
            tx,
            state,
            state_tx,
            log,
        };
        apps.insert(name.to_string(), handle.clone());
        handle
    }

    /// `name`'s handle; an app not supervised (after a delete that failed halfway) is supervised
    /// anew, and announced as a record event: the proxy's entry must follow the new handle.
    pub fn ensure(&self, name: &str) -> AppHandle {
        if let Some(h) = self.get(name) {
            return h;
        }
        let h = self.add(name);
        self.changed(name);
        h
    }

    pub fn get(&self, name: &str) -> Option<AppHandle> {
        self.apps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn state(&self, name: &str) -> Option<AppState> {
        self.get(name).map(|h| h.state.borrow().clone())
    }

    /// `name`'s record changed (created, edited, supervised anew): its views take the next
    /// version, as for a change of its state, and every subscriber hears of it (a route event).
    pub fn changed(&self, name: &str) {
        if let Some(h) = self.get(name) {
            h.state_tx
                .send_modify(|s| s.version = self.ctx.next_version());
        }
        let _ = self.ctx.events.send(Event::Record {
            name: name.to_string(),
        });
    }

    pub fn names(&self) -> Vec<String> {
        self.apps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    async fn ask<T>(&self, name: &str, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let h = self.get(name)?;
        let (tx, rx) = oneshot::channel();
        h.tx.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    pub async fn start(&self, name: &str) -> Result<(), Failure> {
        self.ask(name, Cmd::Start)
            .await
            .unwrap_or_else(|| Err(StartError::ShuttingDown.into()))
    }
    pub async fn stop(&self, name: &str) {
        self.ask(name, Cmd::Stop).await;
    }
    pub async fn restart(&self, name: &str) -> Result<(), Failure> {
        self.ask(name, Cmd::Restart)
            .await
            .unwrap_or_else(|| Err(StartError::ShuttingDown.into()))
    }
    pub async fn upgrade(&self, name: &str) -> Result<UpgradeDone, Failure> {
        self.ask(name, Cmd::Upgrade)
            .await
            .unwrap_or_else(|| Err(StartError::ShuttingDown.into()))
    }
    /// Idle stop: a running app stops and goes `dormant`; anything else is left alone.
    pub async fn idle(&self, name: &str) -> bool {
        self.ask(name, |r| Cmd::Idle(r, None))
            .await
            .unwrap_or(false)
    }
    /// Put a running app to sleep for the memory budget (`reason` is recorded and logged); as
    /// an idle stop otherwise. Whether it stopped.
    pub async fn evict(&self, name: &str, reason: String) -> bool {
        self.ask(name, |r| Cmd::Idle(r, Some(reason)))
            .await
            .unwrap_or(false)
    }
    /// The app's tree held `used` bytes over its `limit` for several samples: restart it.
    pub async fn over_memory(&self, name: &str, used: u64, limit: u64) -> bool {
        self.ask(name, |reply| Cmd::OverMemory { used, limit, reply })
            .await
            .unwrap_or(false)
    }
    pub async fn wake(&self, name: &str) -> Result<u16, WakeError> {
        self.ask(name, Cmd::Wake)
            .await
            .unwrap_or(Err(WakeError::Gone))
    }

    /// At the engine's start, before `name` runs: end what an earlier engine's run of it left
    /// in its cgroup (a child that left its process group outlives an engine that was killed),
    /// and remove the group. Whether anything was left.
    pub async fn end_earlier_run(&self, name: &str) -> bool {
        let cgroups = self
            .ctx
            .cgroups
            .get_or_init(|| crate::base::cgroup::Cgroups::detect(self.ctx.home.root()));
        let Some(g) = cgroups
            .as_ref()
            .ok()
            .and_then(|cg| cg.left_by_earlier_run(name))
        else {
            return false;
        };
        let left = !g.members().is_empty();
        if left {
            tracing::warn!(app = %name, "ending processes an earlier run left in its cgroup");
            g.kill();
        }
        let _ = tokio::task::spawn_blocking(move || g.remove()).await;
        left
    }

    /// End the app's process (keeping `desired`) and forget it.
    pub async fn remove(&self, name: &str) {
        self.ask(name, Cmd::Shutdown).await;
        self.apps
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// End every app's process, all at once, keeping what the operator wanted.
    pub async fn shutdown_all(&self) {
        let names = self.names();
        let stops = names.iter().map(|n| self.ask(n, Cmd::Shutdown));
        futures_util::future::join_all(stops).await;
    }
}

enum Next {
    Idle,
    Start,
    Backoff(Duration),
    Exit,
}

/// How a start or a run ended.
enum Ended {
    /// Told to stop (desired already written).
    Stopped,
    /// Stopped for idleness (desired already `dormant`).
    Idled,
    Restart,
    Shutdown,
    /// The process exited on its own.
    Crashed {
        reason: String,
        uptime: Duration,
    },
    /// Ended for going over its memory limit (the sampler's restart, or the kernel's kill).
    OverMemory {
        reason: String,
        uptime: Duration,
    },
    Failed(StartError),
}

struct Actor {
    name: String,
    ctx: Arc<Ctx>,
    rx: mpsc::Receiver<Cmd>,
    state: Arc<watch::Sender<AppState>>,
    log: Arc<AppLog>,
    wake_waiters: Vec<oneshot::Sender<Result<u16, WakeError>>>,
    start_waiters: Vec<oneshot::Sender<Result<(), Failure>>>,
    upgrade_waiters: Vec<oneshot::Sender<Result<UpgradeDone, Failure>>>,
    crashes: u32,
    /// The running process's pid being recorded in the registry.
    pid_write: Option<tokio::task::JoinHandle<()>>,
    /// The current run's cgroups, if it has any: a stop ends every process in them.
    group: Option<crate::base::cgroup::AppGroup>,
}

impl Actor {
    async fn run(mut self) {
        let mut next = Next::Idle;
        loop {
            next = match next {
                Next::Idle => self.idle().await,
                Next::Start => self.cycle().await,
                Next::Backoff(d) => self.backoff(d).await,
                Next::Exit => break,
            };
        }
        self.fail_waiters(&Arc::new(StartError::Removed));
    }

    fn set(&self, f: impl FnOnce(&mut AppState)) {
        self.state.send_modify(|s| {
            f(s);
            s.version = self.ctx.next_version();
        });
        let _ = self.ctx.events.send(Event::App {
            name: self.name.clone(),
        });
    }

    async fn set_desired(&self, d: Desired) {
        if let Err(e) = self.ctx.registry.set_desired(&self.name, d).await {
            tracing::warn!(app = %self.name, "cannot record desired state: {e}");
        }
    }

    async fn desired(&self) -> Option<Desired> {
        self.ctx
            .registry
            .get(&self.name)
            .await
            .ok()
            .map(|a| a.desired)
    }

    /// Ask the runtime its version beside the start (see [`Actor::prepare`]).
    fn ask_version(
        &self,
        p: &Prepared,
    ) -> tokio::task::JoinHandle<Result<Option<String>, launch::LaunchError>> {
        let (runtime, env, cwd) = (p.runtime.clone(), p.env.clone(), p.cwd.clone());
        let confinement = p.confinement.clone();
        tokio::spawn(async move {
            launch::runtime_version(&runtime, &env, &cwd, confinement.ruleset()).await
        })
    }

    fn notify_ready(&mut self, port: u16) {
        for w in self.wake_waiters.drain(..) {
            let _ = w.send(Ok(port));
        }
        for w in self.start_waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
    }

    fn fail_waiters(&mut self, why: &Failure) {
        for w in self.wake_waiters.drain(..) {
            let _ = w.send(Err(WakeError::Failed(why.to_string())));
        }
        for w in self.start_waiters.drain(..) {
            let _ = w.send(Err(why.clone()));
        }
        for w in self.upgrade_waiters.drain(..) {
            let _ = w.send(Err(why.clone()));
        }
    }

    fn stopped_waiters(&mut self) {
        let name = self.name.clone();
        for w in self.wake_waiters.drain(..) {
            let _ = w.send(Err(WakeError::Stopped(name.clone())));
        }
        if !self.start_waiters.is_empty() {
            let why: Failure = Arc::new(StartError::StoppedBeforeReady(name.clone()));
            for w in self.start_waiters.drain(..) {
                let _ = w.send(Err(why.clone()));
            }
        }
        if !self.upgrade_waiters.is_empty() {
            let why: Failure = Arc::new(StartError::StoppedBeforeUpgrade(name));
            for w in self.upgrade_waiters.drain(..) {
                let _ = w.send(Err(why.clone()));
            }
        }
    }

    /// Not running: wait for a reason to start.
    async fn idle(&mut self) -> Next {
        loop {
            let Some(cmd) = self.rx.recv().await else {
                return Next::Exit;
            };
            match cmd {
                Cmd::Start(reply) | Cmd::Restart(reply) => {
                    self.set_desired(Desired::Running).await;
                    self.start_waiters.push(reply);
                    self.crashes = 0;
                    self.set(|s| s.reason = None);
                    return Next::Start;
                }
                Cmd::Wake(reply) => {
                    let state = self.state.borrow().clone();
                    match self.desired().await {
                        Some(Desired::Stopped) => {
                            let _ = reply.send(Err(WakeError::Stopped(self.name.clone())));
                        }
                        _ if state.status == Status::Error => {
                            let why = state.error.unwrap_or_else(|| "the app is in error".into());
                            let _ = reply.send(Err(WakeError::Failed(why)));
                        }
                        _ => {
                            self.wake_waiters.push(reply);
                            self.crashes = 0;
                            self.set(|s| s.reason = None);
                            return Next::Start;
                        }
                    }
                }
                Cmd::Stop(reply) => {
                    self.set_desired(Desired::Stopped).await;
                    self.set(|s| {
                        s.status = Status::Stopped;
                        s.error = None;
                        s.reason = None;
                    });
                    let _ = reply.send(());
                }
                Cmd::Shutdown(reply) => {
                    let _ = reply.send(());
                    return Next::Exit;
                }
                Cmd::Upgrade(reply) => {
                    let _ = reply.send(self.upgrade_idle().await);
                }
                Cmd::Idle(reply, _) | Cmd::OverMemory { reply, .. } => {
                    let _ = reply.send(false);
                }
            }
        }
    }

    /// An explicit upgrade of an app that is not running: upgrade if needed, stay stopped.
    async fn upgrade_idle(&mut self) -> Result<UpgradeDone, Failure> {
        let prep = self.prepare(true).await.map_err(Arc::new)?;
        let (from, to) = (prep.app.last_version.clone(), prep.version.clone());
        match self.upgrade_if_needed(&prep).await {
            Ok(upgraded) => {
                if upgraded {
                    self.set(|s| {
                        s.status = Status::Stopped;
                        s.error = None;
                    });
                }
                Ok(UpgradeDone { from, to, upgraded })
            }
            Err(why) => {
                let why = Arc::new(why);
                self.fail(why.clone());
                Err(why)
            }
        }
    }

    /// Wait out a restart delay, still answering commands.
    async fn backoff(&mut self, delay: Duration) -> Next {
        self.set(|s| s.status = Status::Backoff);
        self.log
            .sys(format!("restarting in {} ms", delay.as_millis()));
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Next::Start,
                cmd = self.rx.recv() => match cmd {
                    None => return Next::Exit,
                    Some(Cmd::Start(r)) | Some(Cmd::Restart(r)) => {
                        self.set_desired(Desired::Running).await;
                        self.start_waiters.push(r);
                        self.crashes = 0;
                        return Next::Start;
                    }
                    Some(Cmd::Wake(r)) => self.wake_waiters.push(r),
                    Some(Cmd::Stop(r)) => {
                        self.set_desired(Desired::Stopped).await;
                        self.stopped_waiters();
                        self.set(|s| { s.status = Status::Stopped; s.error = None; });
                        let _ = r.send(());
                        return Next::Idle;
                    }
                    Some(Cmd::Shutdown(r)) => {
                        self.set(|s| s.status = Status::Stopped);
                        let _ = r.send(());
                        return Next::Exit;
                    }
                    Some(Cmd::Upgrade(r)) => {
                        // Start now: the start upgrades first when the version moved.
                        self.upgrade_waiters.push(r);
                        return Next::Start;
                    }
                    Some(Cmd::Idle(r, _)) | Some(Cmd::OverMemory { reply: r, .. }) => {
                        let _ = r.send(false);
                    }
                }
            }
        }
    }

    /// Put the app in `error` with `why`, tell whoever waits, go idle.
    fn fail(&mut self, why: Failure) -> Next {
        tracing::warn!(app = %self.name, "{why}");
        self.log.sys(format!("error: {why}"));
        self.fail_waiters(&why);
        self.set(|s| {
            s.status = Status::Error;
            s.pid = None;
            s.running_since = None;
            s.starting_since = None;
            s.progress = None;
            s.error = Some(why.to_string());
        });
        Next::Idle
    }

    /// One start and run of the process, until it ends.
    async fn cycle(&mut self) -> Next {
        self.set(|s| {
            s.status = Status::Starting;
            s.error = None;
            s.progress = None;
            s.starting_since = Some(SystemTime::now());
        });
        let began = std::time::Instant::now();
        let prep = match self.prepare(!self.upgrade_waiters.is_empty()).await {
            Ok(p) => p,
            Err(why) => return self.fail(Arc::new(why)),
        };
        tracing::debug!(app = %self.name, "start prepared in {:?}", began.elapsed());
        let upgraded = match self.upgrade_if_needed(&prep).await {
            Ok(u) => u,
            Err(why) => return self.fail(Arc::new(why)),
        };
        for w in self.upgrade_waiters.drain(..) {
            let _ = w.send(Ok(UpgradeDone {
                from: prep.app.last_version.clone(),
                to: prep.version.clone(),
                upgraded,
            }));
        }
        if launch::port_taken(prep.app.port) {
            return self.fail(Arc::new(StartError::PortTaken(prep.app.port)));
        }
        tracing::debug!(app = %self.name, "spawning after {:?}", began.elapsed());
        let ended = self.run_process(&prep).await;
        if let Some(w) = self.pid_write.take() {
            let _ = w.await;
        }
        let _ = self.ctx.registry.set_pid(&self.name, None).await;
        self.set(|s| {
            s.pid = None;
            s.running_since = None;
        });
        match ended {
            Ended::Stopped => {
                self.stopped_waiters();
                self.set(|s| s.status = Status::Stopped);
                Next::Idle
            }
            Ended::Idled => {
                self.set(|s| s.status = Status::Stopped);
                Next::Idle
            }
            Ended::Restart => {
                self.set(|s| s.restarts += 1);
                Next::Start
            }
            Ended::Shutdown => {
                self.set(|s| s.status = Status::Stopped);
                Next::Exit
            }
            Ended::Failed(why) => self.fail(Arc::new(why)),
            Ended::OverMemory { reason, uptime } => {
                if uptime >= prep.runtime.stable_after {
                    self.crashes = 0;
                }
                self.crashes += 1;
                if self.crashes >= prep.runtime.restart_limit {
                    return self.fail(Arc::new(StartError::MemoryLimit {
                        times: self.crashes,
                        reason,
                    }));
                }
                self.set(|s| s.restarts += 1);
                // Memory freed at once: restart without waiting out a crash delay the first
                // time, then back off as for crashes.
                let delay = backoff_delay(self.crashes, prep.runtime.restart_backoff_max);
                Next::Backoff(if self.crashes == 1 {
                    Duration::ZERO
                } else {
                    delay
                })
            }
            Ended::Crashed { reason, uptime } => {
                if uptime >= prep.runtime.stable_after {
                    self.crashes = 0;
                }
                self.crashes += 1;
                let limit = prep.runtime.restart_limit;
                if self.crashes >= limit {
                    return self.fail(Arc::new(StartError::GaveUp {
                        crashes: self.crashes,
                        reason,
                        stderr: self.last_stderr(),
                    }));
                }
                self.set(|s| s.restarts += 1);
                let delay = backoff_delay(self.crashes, prep.runtime.restart_backoff_max);
                Next::Backoff(delay)
            }
        }
    }

    /// What a start needs. The runtime's version is asked first only when it decides something
    /// (`always`, or an upgrade command and a version the app last ran with); otherwise the
    /// start does not wait for it and it is recorded once the app is ready.
    async fn prepare(&self, always: bool) -> Result<Prepared, StartError> {
        let app = self.ctx.registry.get(&self.name).await?;
        let rt_name = self.ctx.runtimes.name_of(&app);
        let runtime = self.ctx.runtimes.of(&app).map_err(StartError::NoRuntime)?;
        if runtime.per_app() {
            return Err(StartError::NoCommand(rt_name));
        }
        let launch::Setting { mut env, argv, cwd } =
            launch::setting(&self.ctx.home, &app, &runtime, self.ctx.config.proxy_port)?;
        let data_dir = self.ctx.home.app_dir(&self.name);
        std::fs::create_dir_all(&data_dir).map_err(StartError::DataDir)?;
        let launch = confine::Launch {
            home: self.ctx.home.root(),
            data_dir: &data_dir,
            cwd: &cwd,
            writable: &runtime.writable,
            env: &env,
            user_homes: &confine::user_homes(),
        };
        let confinement =
            confine::prepare(&rt_name, runtime.confine, &launch).map_err(|source| {
                StartError::Confine {
                    runtime: rt_name.clone(),
                    source,
                }
            })?;
        for (k, v) in confinement.env() {
            match v {
                Some(v) => env.insert(k.clone(), v.clone()),
                None => env.remove(k),
            };
        }
        // Every process of this run carries it: a stop finds one that left the process group.
        let marker = crate::base::secret::random_hex(16);
        env.insert(crate::base::process::INSTANCE_VAR.into(), marker.clone());
        // Asked as the app runs: confined as it is (an archive's env and data folder are
        // whatever the archive held).
        let gates = always || (runtime.upgrade.is_some() && app.last_version.is_some());
        let version = if gates {
            launch::runtime_version(&runtime, &env, &cwd, confinement.ruleset()).await?
        } else {
            None
        };
        Ok(Prepared {
            app,
            runtime,
            env,
            argv,
            cwd,
            version,
            version_later: !gates,
            confinement: Arc::new(confinement),
            marker,
        })
    }

    /// Run the runtime's upgrade command when the version moved since the app last ran;
    /// `Ok(true)` when it ran and succeeded.
    async fn upgrade_if_needed(&mut self, p: &Prepared) -> Result<bool, StartError> {
        let (Some(upgrade), Some(version)) = (&p.runtime.upgrade, &p.version) else {
            return Ok(false);
        };
        if !needs_upgrade(p) {
            return Ok(false);
        }
        self.set(|s| s.status = Status::Upgrading);
        // Keep what the app has before its runtime changes it: an upgrade without a backup
        // does not run.
        let job = crate::base::jobs::Job::detached("backup", &self.name);
        match crate::store::archive::write(
            &self.ctx.home,
            &self.ctx.config,
            &p.app,
            crate::store::archive::Reason::BeforeUpgrade,
            None,
            &job,
        )
        .await
        {
            Ok(info) => self.log.sys(format!(
                "backed up to {} before the upgrade",
                info.file.display()
            )),
            Err(source) => {
                return Err(StartError::Backup {
                    version: version.clone(),
                    source,
                })
            }
        }
        let argv = launch::expand_all(
            upgrade,
            &p.env,
            &format!("runtimes.{}.upgrade", p.runtime.name),
        )?;
        // The template, never its expansion: `${DATABASE_URL}` or `${APP_KEY}` expanded would
        // put a secret into the log file, the panel and the waiting page.
        self.log.sys(format!(
            "upgrading from {} to {version}: {}",
            p.app.last_version.as_deref().unwrap_or("?"),
            upgrade.join(" ")
        ));
        let mut child = launch::command(
            &argv,
            &p.env,
            &p.cwd,
            p.confinement.ruleset(),
            &launch::Resources::default(),
        )
        .spawn()
        .map_err(|source| StartError::UpgradeRun {
            program: upgrade[0].clone(),
            source,
        })?;
        let pumps = self.pump_output(&mut child);
        let status = tokio::time::timeout(Duration::from_secs(1800), child.wait()).await;
        futures_util::future::join_all(pumps).await;
        match status {
            Ok(Ok(st)) if st.success() => {
                self.log.sys(format!("upgraded to {version}"));
                let _ = self
                    .ctx
                    .registry
                    .set_last_version(&self.name, version)
                    .await;
                self.set(|s| s.status = Status::Starting);
                Ok(true)
            }
            Ok(Ok(status)) => {
                let log: Vec<String> = self
                    .log
                    .recent(8, None)
                    .into_iter()
                    .map(|l| l.text)
                    .collect();
                Err(StartError::UpgradeFailed {
                    version: version.clone(),
                    status,
                    log,
                })
            }
            Ok(Err(source)) => Err(StartError::UpgradeWait {
                version: version.clone(),
                source,
            }),
            Err(_) => {
                if let Some(pid) = child.id() {
                    crate::base::process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                }
                Err(StartError::UpgradeTimeout {
                    version: version.clone(),
                })
            }
        }
    }

    fn pump_output(&self, child: &mut tokio::process::Child) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(out) = child.stdout.take() {
            tasks.push(crate::run::logs::spawn_pump(
                out.into_owned_fd(),
                Stream::Out,
                self.log.clone(),
            ));
        }
        if let Some(err) = child.stderr.take() {
            tasks.push(crate::run::logs::spawn_pump(
                err.into_owned_fd(),
                Stream::Err,
                self.log.clone(),
            ));
        }
        tasks
    }

    /// The run's memory limit and priority: the app's own, else its runtime's; the app's
    /// cgroups made where the kernel allows (always, so a stop ends every process it made; with
    /// the memory ceiling when it has a limit). Recorded in the state for `status`.
    async fn resources(&self, p: &Prepared) -> launch::Resources {
        let limit = p.app.memory_max.or(p.runtime.memory_max);
        let nice = p.app.nice.or(p.runtime.nice);
        let cgroups = self
            .ctx
            .cgroups
            .get_or_init(|| crate::base::cgroup::Cgroups::detect(self.ctx.home.root()));
        let ceiling = limit.map(crate::base::cgroup::ceiling);
        let group = match cgroups {
            Ok(cg) => match cg.prepare(&self.name, ceiling) {
                Ok(g) => Ok(g),
                Err(e) => Err(format!("the app's cgroup could not be made: {e}")),
            },
            Err(why) => Err(format!("the kernel's limit is not available: {why}")),
        };
        let enforced = limit.map(|_| match (&group, cgroups) {
            (Ok(g), Ok(cg)) if g.memory.is_some() => format!(
                "the sampler, and the kernel ({}) at {}",
                cg.memory().unwrap_or("a cgroup"),
                mib(ceiling.unwrap_or(0))
            ),
            (Ok(_), Ok(cg)) => format!(
                "the sampler (the kernel's limit is not available: {})",
                cg.memory().err().unwrap_or("no memory controller")
            ),
            (Err(why), _) | (_, Err(why)) => format!("the sampler ({why})"),
        });
        let group = group.ok();
        if let Some(g) = &group {
            // What an earlier run left in its group (an engine that was killed): it would hold
            // the app's port.
            let left = g.members();
            if !left.is_empty() {
                self.log.sys(format!(
                    "ending {} process(es) an earlier run left in its cgroup",
                    left.len()
                ));
                g.kill();
                for _ in 0..50 {
                    if g.members().is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        self.set(|s| {
            s.memory_max = limit;
            s.memory_enforced_by = enforced;
            s.nice = nice;
        });
        launch::Resources { nice, group }
    }

    /// After the spawn: say in the log what the resources are, and what did not take.
    fn check_resources(&self, pid: u32, r: &launch::Resources) {
        if let Some(n) = r.nice {
            match launch::nice_of(pid) {
                Some(got) if got == n => self.log.sys(format!("nice {n}")),
                got => self.log.sys(format!(
                    "nice {n} could not be set (the process runs at {})",
                    got.map(|g| g.to_string()).unwrap_or("?".into())
                )),
            }
        }
        let in_group = r.group.as_ref().map(|g| g.holds(pid));
        if in_group == Some(false) {
            self.log.sys("the process could not join its cgroup: a stop finds what it starts by its process group and the marker in its environment");
        }
        let (limit, by) = {
            let st = self.state.borrow();
            (st.memory_max, st.memory_enforced_by.clone())
        };
        if let Some(limit) = limit {
            match in_group {
                Some(false) => {
                    let by = "the sampler (the process could not join its cgroup)".to_string();
                    self.log
                        .sys(format!("memory limit {}: enforced by {by}", mib(limit)));
                    self.set(|s| s.memory_enforced_by = Some(by));
                }
                _ => self.log.sys(format!(
                    "memory limit {}: enforced by {}",
                    mib(limit),
                    by.unwrap_or_default()
                )),
            }
        }
    }

    /// The kernel killed a process of the app's group for its limit since `before` kills.
    fn killed_for_memory(&self, r: &launch::Resources, before: u64) -> Option<String> {
        let g = r.group.as_ref()?;
        if g.oom_kills() <= before {
            return None;
        }
        let limit = self.state.borrow().memory_max.unwrap_or(0);
        let reason = format!(
            "memory limit: killed by the kernel at {} (limit {})",
            mib(crate::base::cgroup::ceiling(limit)),
            mib(limit)
        );
        self.set(|s| {
            s.memory_restarts += 1;
            s.reason = Some(reason.clone());
        });
        Some(reason)
    }

    async fn run_process(&mut self, p: &Prepared) -> Ended {
        let res = self.resources(p).await;
        self.group = res.group.clone();
        let ended = self.run_with(p, &res).await;
        self.group = None;
        if let Some(g) = res.group {
            let _ = tokio::task::spawn_blocking(move || g.remove()).await;
        }
        ended
    }

    async fn run_with(&mut self, p: &Prepared, res: &launch::Resources) -> Ended {
        let version_later = p.version_later.then(|| self.ask_version(p));
        // The command as hangar.toml writes it, not expanded (see `upgrade`).
        self.log
            .sys(format!("starting: {}", p.runtime.command.join(" ")));
        let started = std::time::Instant::now();
        self.log.sys(p.confinement.line());
        if let Some(line) = crate::base::process::AppCaps::of_engine().line() {
            self.log.sys(line);
        }
        let mut child =
            match launch::command(&p.argv, &p.env, &p.cwd, p.confinement.ruleset(), res).spawn() {
                Ok(c) => c,
                Err(source) => {
                    let hint = match p.confinement.hint() {
                        Some(h) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                            format!("; {h}")
                        }
                        _ => String::new(),
                    };
                    return Ended::Failed(StartError::Spawn {
                        program: p.runtime.command[0].clone(),
                        source,
                        hint,
                    });
                }
            };
        let Some(pid) = child.id() else {
            return Ended::Failed(StartError::Vanished);
        };
        let mut pumps = self.pump_output(&mut child);
        self.check_resources(pid, res);
        let oom_before = res.group.as_ref().map(|g| g.oom_kills()).unwrap_or(0);
        let ticks = crate::base::process::start_time(pid).unwrap_or(0);
        // Written while the app boots (it is awaited before the pid is cleared again).
        let registry = self.ctx.registry.clone();
        let name = self.name.clone();
        self.pid_write = Some(tokio::spawn(async move {
            let _ = registry.set_pid(&name, Some((pid, ticks))).await;
        }));
        self.set(|s| s.pid = Some(pid));

        // Starting: probe the health path until it answers 2xx (every 1 ms at first, so a
        // visitor waits no longer than the app's own boot; every 5 ms after PROBE_FAST_FOR).
        let health = launch::health_path(&self.name, &p.runtime);
        let deadline = tokio::time::sleep(p.runtime.start_timeout);
        tokio::pin!(deadline);
        let mut last_progress = String::new();
        let ready = loop {
            tokio::select! {
                exit = child.wait() => {
                    let code = exit.as_ref().ok().and_then(|st| st.code());
                    let reason = format!("{} before it was ready", describe_exit(exit));
                    drain(&mut pumps).await;
                    let reason = self.blame_confinement(reason, code, p);
                    self.log.sys(reason.clone());
                    self.end_leftovers(pid, p).await;
                    if let Some(reason) = self.killed_for_memory(res, oom_before) {
                        self.log.sys(reason.clone());
                        break Err(Ended::OverMemory { reason, uptime: Duration::ZERO });
                    }
                    break Err(Ended::Crashed { reason, uptime: Duration::ZERO });
                }
                _ = &mut deadline => {
                    self.stop_process(&mut child, pid, p).await;
                    break Err(Ended::Failed(StartError::NotReady {
                        secs: p.runtime.start_timeout.as_secs(),
                        health: health.clone(),
                        port: p.app.port,
                    }));
                }
                cmd = self.rx.recv() => {
                    if let Some(end) = self.command_while_up(cmd, &mut child, pid, p, None).await {
                        break Err(end);
                    }
                }
                probe = probe_until_change(p.app.port, &health, p.runtime.health_body.as_deref(), started) => match probe {
                    Probe::Ready => break Ok(()),
                    Probe::NotYet(body) => {
                        if body != last_progress {
                            last_progress = body.clone();
                            self.set(|s| s.progress = Some(body));
                        }
                        tokio::time::sleep(PROBE_ANSWERED_EVERY).await;
                    }
                    Probe::Refused => {}
                }
            }
        };
        if let Err(end) = ready {
            return end;
        }
        let boot = started.elapsed();
        tracing::debug!(app = %self.name, "ready {:?} after the spawn", boot);
        // What the app wrote before it answered ("listening on …") comes first.
        self.log.settle().await;
        self.log.sys(format!(
            "ready in {} ms (pid {pid}, port {})",
            boot.as_millis(),
            p.app.port
        ));
        // The version asked beside the boot (normally long done): the one that started.
        let version = match version_later {
            Some(asked) => match asked.await {
                Ok(Ok(v)) => v,
                Ok(Err(why)) => {
                    self.log.sys(why.to_string());
                    None
                }
                Err(_) => None,
            },
            None => p.version.clone(),
        };
        let since = SystemTime::now();
        self.set(|s| {
            s.status = Status::Running;
            s.running_since = Some(since);
            s.progress = None;
        });
        self.notify_ready(p.app.port);
        // After the waiters are on their way: recording the version is not part of a visit.
        if let Some(v) = &version {
            if p.app.last_version.as_deref() != Some(v) {
                let _ = self.ctx.registry.set_last_version(&self.name, v).await;
            }
        }

        // Running: until it exits or we are told otherwise.
        let up = std::time::Instant::now();
        loop {
            tokio::select! {
                exit = child.wait() => {
                    let reason = describe_exit(exit);
                    drain(&mut pumps).await;
                    self.log.sys(format!("{reason} unexpectedly after {} s", up.elapsed().as_secs()));
                    self.end_leftovers(pid, p).await;
                    if let Some(reason) = self.killed_for_memory(res, oom_before) {
                        self.log.sys(reason.clone());
                        return Ended::OverMemory { reason, uptime: up.elapsed() };
                    }
                    return Ended::Crashed { reason, uptime: up.elapsed() };
                }
                cmd = self.rx.recv() => {
                    if let Some(end) = self.command_while_up(cmd, &mut child, pid, p, Some(p.app.port)).await {
                        return end;
                    }
                }
            }
        }
    }

    /// A command that arrives while the process is up (starting or running). Returns how the
    /// run ends, or `None` to keep going.
    async fn command_while_up(
        &mut self,
        cmd: Option<Cmd>,
        child: &mut tokio::process::Child,
        pid: u32,
        p: &Prepared,
        ready_port: Option<u16>,
    ) -> Option<Ended> {
        match cmd {
            None => {
                self.stop_process(child, pid, p).await;
                Some(Ended::Shutdown)
            }
            Some(Cmd::Start(r)) => {
                match ready_port {
                    Some(_) => {
                        let _ = r.send(Ok(()));
                    }
                    None => self.start_waiters.push(r),
                }
                self.set_desired(Desired::Running).await;
                None
            }
            Some(Cmd::Wake(r)) => {
                match ready_port {
                    Some(port) => {
                        let _ = r.send(Ok(port));
                    }
                    None => self.wake_waiters.push(r),
                }
                None
            }
            Some(Cmd::Stop(r)) => {
                self.set_desired(Desired::Stopped).await;
                self.stop_process(child, pid, p).await;
                self.mark_stopped();
                let _ = r.send(());
                Some(Ended::Stopped)
            }
            Some(Cmd::Restart(r)) => {
                self.set_desired(Desired::Running).await;
                self.start_waiters.push(r);
                self.stop_process(child, pid, p).await;
                Some(Ended::Restart)
            }
            Some(Cmd::Shutdown(r)) => {
                self.stop_process(child, pid, p).await;
                self.mark_stopped();
                let _ = r.send(());
                Some(Ended::Shutdown)
            }
            Some(Cmd::Upgrade(r)) => {
                // Ask the runtime its version afresh: it may have changed since this start.
                match self.prepare(true).await {
                    Err(why) => {
                        let _ = r.send(Err(Arc::new(why)));
                        None
                    }
                    Ok(fresh) if !needs_upgrade(&fresh) => {
                        let _ = r.send(Ok(UpgradeDone {
                            from: fresh.app.last_version.clone(),
                            to: fresh.version.clone(),
                            upgraded: false,
                        }));
                        None
                    }
                    Ok(_) => {
                        // Stop, and start again: the start runs the upgrade and answers.
                        self.upgrade_waiters.push(r);
                        self.stop_process(child, pid, p).await;
                        Some(Ended::Restart)
                    }
                }
            }
            Some(Cmd::Idle(r, why)) => {
                if ready_port.is_none() {
                    let _ = r.send(false);
                    return None;
                }
                let why = why.unwrap_or_else(|| {
                    "idle: no request or open connection for the idle timeout".into()
                });
                self.log
                    .sys(format!("{why}; going dormant until the next visit"));
                self.set(|s| s.reason = Some(why));
                self.set_desired(Desired::Dormant).await;
                self.stop_process(child, pid, p).await;
                // Gone before the answer: the budget counts what is left at once.
                self.mark_stopped();
                let _ = r.send(true);
                Some(Ended::Idled)
            }
            Some(Cmd::OverMemory { used, limit, reply }) => {
                let reason = format!("memory limit: {} over {}", mib(used), mib(limit));
                tracing::warn!(app = %self.name, "{reason}; restarting");
                self.log.sys(format!("{reason}; restarting"));
                let uptime = self.state.borrow().uptime().unwrap_or_default();
                self.set(|s| {
                    s.memory_restarts += 1;
                    s.reason = Some(reason.clone());
                });
                self.stop_process(child, pid, p).await;
                let _ = reply.send(true);
                Some(Ended::OverMemory { reason, uptime })
            }
        }
    }

    /// The process is gone: say so before anyone who asked for the stop hears back.
    fn mark_stopped(&self) {
        self.set(|s| {
            s.status = Status::Stopped;
            s.pid = None;
            s.running_since = None;
        });
    }

    /// SIGTERM the group, SIGKILL after the stop timeout, reap the leader.
    async fn stop_process(&self, child: &mut tokio::process::Child, pid: u32, p: &Prepared) {
        self.set(|s| s.status = Status::Stopping);
        self.log.settle().await;
        self.log.sys(format!("stopping (SIGTERM to group {pid})"));
        let killed = self.processes(pid, p).end(p.runtime.stop_timeout).await;
        if killed {
            self.log.sys(format!(
                "still running after {} s: sent SIGKILL",
                p.runtime.stop_timeout.as_secs()
            ));
        }
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        if let Ok(st) = status {
            // Its last lines ("shutting down") before the stop's, and before a restart's next.
            self.log.settle().await;
            self.log.sys(format!("stopped ({})", describe_exit(st)));
        }
    }

    /// The app's last lines on stderr (at most 10): what a crash report shows, and where a
    /// refusal of the confinement shows.
    fn last_stderr(&self) -> Vec<String> {
        self.log
            .recent(10, Some(Stream::Err))
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    /// `reason` (an exit before the app was ready), with the confinement's hint when it is the
    /// likely cause ([`confine::likely_cause`]: status 126, or a permission denied on stderr).
    fn blame_confinement(&self, reason: String, code: Option<i32>, p: &Prepared) -> String {
        let Some(hint) = p.confinement.hint() else {
            return reason;
        };
        if confine::likely_cause(code, &self.last_stderr()) {
            format!("{reason}; {hint}")
        } else {
            reason
        }
    }

    /// After the leader exited by itself: end whatever it left (in its process group, its
    /// cgroup, or marked as this run's).
    async fn end_leftovers(&self, pid: u32, p: &Prepared) {
        let procs = self.processes(pid, p);
        if procs.any_left() {
            procs.end(p.runtime.stop_timeout).await;
        }
    }

    /// Every process of the run whose first process is `pid`.
    fn processes<'a>(
        &'a self,
        pid: u32,
        p: &'a Prepared,
    ) -> crate::base::process::AppProcesses<'a> {
        crate::base::process::AppProcesses {
            pgid: pid,
            group: self.group.as_ref(),
            marker: Some(&p.marker),
        }
    }
}

struct Prepared {
    app: AppRecord,
    runtime: Runtime,
    env: std::collections::BTreeMap<String, String>,
    argv: Vec<String>,
    cwd: std::path::PathBuf,
    version: Option<String>,
    /// The version was not asked before the start: ask and record it once ready.
    version_later: bool,
    /// The app's Landlock ruleset (or why it has none), for the version and upgrade commands
    /// and the start (shared with a version asked beside the start).
    confinement: Arc<confine::Confinement>,
    /// The value of `process::INSTANCE_VAR` every process of this run carries.
    marker: String,
}

/// Has the runtime's version moved since the app last ran, and is there an upgrade command?
/// (An app that never ran has nothing to upgrade from.)
fn needs_upgrade(p: &Prepared) -> bool {
    match (&p.runtime.upgrade, &p.version, &p.app.last_version) {
        (Some(_), Some(version), Some(last)) => last != version,
        _ => false,
    }
}

/// Record each change of an app's error in the registry, in order, so that its `error` state
/// and reason survive an engine restart. Ends with the app.
async fn keep_error(
    name: String,
    mut state: watch::Receiver<AppState>,
    registry: crate::store::registry::Registry,
) {
    let mut kept = state.borrow_and_update().error.clone();
    while state.changed().await.is_ok() {
        let now = state.borrow_and_update().error.clone();
        if now != kept {
            if let Err(e) = registry.set_error(&name, now.as_deref()).await {
                tracing::warn!(app = %name, "cannot record its error state: {e}");
            }
            kept = now;
        }
    }
}

/// Let the output pumps read what the process wrote before it exited (bounded: a grandchild
/// may hold the pipes open).
async fn drain(pumps: &mut Vec<tokio::task::JoinHandle<()>>) {
    for p in pumps.drain(..) {
        let _ = tokio::time::timeout(Duration::from_millis(500), p).await;
    }
}

/// Readiness is probed every millisecond for this long after a start, then every 5 ms.
const PROBE_FAST_FOR: Duration = Duration::from_secs(2);

/// An app that answers but is not ready yet (a 503 while it boots, as NocoBase's for a minute)
/// is asked again after this: every request costs a booting app CPU (and often a log line).
const PROBE_ANSWERED_EVERY: Duration = Duration::from_millis(50);

fn probe_interval(started: std::time::Instant) -> Duration {
    if started.elapsed() < PROBE_FAST_FOR {
        Duration::from_millis(1)
    } else {
        Duration::from_millis(5)
    }
}

/// Probe until the answer is not "refused" (polling while nothing listens).
async fn probe_until_change(
    port: u16,
    path: &str,
    body: Option<&str>,
    started: std::time::Instant,
) -> Probe {
    loop {
        match launch::probe(port, path, body).await {
            Probe::Refused => tokio::time::sleep(probe_interval(started)).await,
            other => return other,
        }
    }
}

fn describe_exit(exit: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match exit {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "exited".into(),
        },
        Err(e) => format!("could not be waited for ({e})"),
    }
}

/// Bytes as whole MiB, as the memory limit's messages say them (`612 MiB`).
pub fn mib(bytes: u64) -> String {
    format!("{} MiB", (bytes + (1 << 19)) >> 20)
}

/// 1 s, 2 s, 4 s, … capped.
pub fn backoff_delay(crashes: u32, cap: Duration) -> Duration {
    let exp = crashes.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(10);
        let d: Vec<u64> = (1..=6).map(|c| backoff_delay(c, cap).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(backoff_delay(1000, cap), cap);
    }

    /// The rules as the tray, the CLI and the UI have always applied them.
    #[test]
    fn the_status_rules() {
        let with = |rule: fn(Status) -> bool| -> Vec<&str> {
            Status::ALL
                .into_iter()
                .filter(|s| rule(*s))
                .map(Status::as_str)
                .collect()
        };
        assert_eq!(with(Status::can_start), ["stopped", "backoff", "error"]);
        assert_eq!(
            with(Status::can_stop),
            ["starting", "running", "upgrading", "backoff"]
        );
        assert_eq!(
            with(Status::is_active),
            ["starting", "running", "stopping", "upgrading", "backoff"]
        );
        assert_eq!(with(Status::is_failing), ["backoff", "error"]);
        let r = Status::Backoff.rules();
        assert!(r.active && r.can_start && r.can_stop && r.failing);
        assert_eq!(
            serde_json::to_string(&Status::Stopped.rules()).unwrap(),
            r#"{"status":"stopped","active":false,"can_start":true,"can_stop":false,"failing":false}"#
        );
    }

    /// A failure's text is what the app's `error` shows; the typed errors keep the sentences.
    #[test]
    fn start_errors_read_as_before() {
        let gave_up = |stderr: Vec<String>| {
            StartError::GaveUp {
                crashes: 3,
                reason: "exited with code 1".into(),
                stderr,
            }
            .to_string()
        };
        assert_eq!(
            gave_up(vec![]),
            "crashed 3 times in a row, last exited with code 1; not restarting until started again"
        );
        assert_eq!(
            gave_up(vec!["boom".into(), "bang".into()]),
            "crashed 3 times in a row, last exited with code 1; not restarting until started again; last stderr: boom | bang"
        );
        // A line written by every crash is quoted once.
        assert_eq!(
            gave_up(["boom", "bang", "boom", "boom", "bang"].map(String::from).to_vec()),
            "crashed 3 times in a row, last exited with code 1; not restarting until started again; last stderr: boom | bang"
        );
        assert_eq!(
            StartError::PortTaken(5000).to_string(),
            "port 5000 is taken by another program; free it or give the app another port (`hangar` edit or --port)"
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let spawn = StartError::Spawn {
            program: "node".into(),
            source: io,
            hint: String::new(),
        };
        assert_eq!(spawn.to_string(), "cannot start \"node\": No such file");
        let source = std::error::Error::source(&spawn).map(|e| e.to_string());
        assert_eq!(source.as_deref(), Some("No such file"), "the cause is kept");
    }
}
