//! Watching the apps over time: the sampling loop, the history of every app's CPU and memory,
//! the timeline of starts, stops, crashes and restarts, and the live feed of figures.
//!
//! Invariants:
//! - the sampler runs every second while anyone watches (a metrics stream, or an open window
//!   on the event stream) and every 5 s otherwise;
//! - in memory, a ring of samples for the last hour per app (at most 3600 + a few);
//! - on disk, 1-minute aggregates (min, avg, max of CPU and memory) and events, kept 7 days,
//!   pruned every minute; events are also capped per app. They live in a small SQLite file of
//!   their own (`metrics.sqlite` in the home), not in the registry: a write every minute per
//!   app never contends with the registry's writes, the file can be deleted without losing an
//!   app definition, and its schema moves independently of the registry's migrations;
//! - the partial minute is written on a clean shutdown, so history survives an engine restart
//!   (a crash loses at most the current minute);
//! - the live feed is a bounded broadcast: a slow reader skips ticks, never holds the sampler.

use crate::run::Core;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use tokio::sync::broadcast;

use crate::run::sampler::{unix_ms, Snapshot, Usage};

/// The key the host's own history is kept under (never a valid app name).
pub const HOST: &str = "@host";
const RING_SECS: i64 = 3600;
const RING_MAX: usize = 3700;
const KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
const EVENTS_PER_APP: i64 = 10_000;
const LIVE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot open the metrics history {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("metrics history: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

/// One point of a history: a 1 s sample (min = avg = max) or a minute's aggregate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// Unix time in milliseconds (a minute's start for aggregates).
    pub t: i64,
    pub cpu: f64,
    pub cpu_min: f64,
    pub cpu_max: f64,
    pub mem: u64,
    pub mem_min: u64,
    pub mem_max: u64,
}

impl Point {
    fn sample(t: i64, u: Usage) -> Point {
        Point {
            t,
            cpu: u.cpu_percent,
            cpu_min: u.cpu_percent,
            cpu_max: u.cpu_percent,
            mem: u.memory_bytes,
            mem_min: u.memory_bytes,
            mem_max: u.memory_bytes,
        }
    }
}

/// A mark on the timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineEvent {
    pub t: i64,
    /// `start`, `stop`, `crash` or `restart`.
    pub kind: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    pub name: String,
    pub range_seconds: i64,
    /// `1s` (raw samples, older parts as minutes) or `1m`.
    pub resolution: String,
    pub points: Vec<Point>,
    pub events: Vec<TimelineEvent>,
}

/// What the live stream carries: a tick, or an event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Live {
    Tick(Snapshot),
    Event {
        app: String,
        #[serde(flatten)]
        event: TimelineEvent,
    },
}

#[derive(Debug, Clone, Copy)]
struct Agg {
    minute: i64,
    n: u32,
    cpu_sum: f64,
    cpu_min: f64,
    cpu_max: f64,
    mem_sum: f64,
    mem_min: u64,
    mem_max: u64,
}

impl Agg {
    fn new(minute: i64) -> Agg {
        Agg {
            minute,
            n: 0,
            cpu_sum: 0.0,
            cpu_min: f64::MAX,
            cpu_max: 0.0,
            mem_sum: 0.0,
            mem_min: u64::MAX,
            mem_max: 0,
        }
    }
    fn add(&mut self, u: Usage) {
        self.n += 1;
        self.cpu_sum += u.cpu_percent;
        self.cpu_min = self.cpu_min.min(u.cpu_percent);
        self.cpu_max = self.cpu_max.max(u.cpu_percent);
        self.mem_sum += u.memory_bytes as f64;
        self.mem_min = self.mem_min.min(u.memory_bytes);
        self.mem_max = self.mem_max.max(u.memory_bytes);
    }
    fn point(&self) -> Point {
        let n = self.n.max(1) as f64;
        Point {
            t: self.minute,
            cpu: (self.cpu_sum / n * 10.0).round() / 10.0,
            cpu_min: if self.n == 0 { 0.0 } else { self.cpu_min },
            cpu_max: self.cpu_max,
            mem: (self.mem_sum / n) as u64,
            mem_min: if self.n == 0 { 0 } else { self.mem_min },
            mem_max: self.mem_max,
        }
    }
}

pub struct Monitor {
    db: SqlitePool,
    rings: Mutex<HashMap<String, VecDeque<Point>>>,
    minutes: Mutex<HashMap<String, Agg>>,
    live: broadcast::Sender<Arc<Live>>,
    watchers: AtomicUsize,
}

/// Someone is watching while this lives: the sampler runs every second.
pub struct WatchGuard(Arc<Monitor>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

fn minute_of(t: i64) -> i64 {
    t - t.rem_euclid(60_000)
}

impl Monitor {
    /// Open (creating if absent) the history file.
    pub async fn open(path: &Path) -> Result<Arc<Monitor>, MonitorError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let db = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .map_err(|source| MonitorError::Open {
                path: path.display().to_string(),
                source,
            })?;
        for stmt in [
            "CREATE TABLE IF NOT EXISTS minutes (
                app TEXT NOT NULL, t INTEGER NOT NULL, n INTEGER NOT NULL,
                cpu_min REAL NOT NULL, cpu_avg REAL NOT NULL, cpu_max REAL NOT NULL,
                mem_min INTEGER NOT NULL, mem_avg INTEGER NOT NULL, mem_max INTEGER NOT NULL,
                PRIMARY KEY (app, t)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY, app TEXT NOT NULL, t INTEGER NOT NULL,
                kind TEXT NOT NULL, detail TEXT)",
            "CREATE INDEX IF NOT EXISTS events_app_t ON events (app, t)",
            "PRAGMA user_version = 1",
        ] {
            sqlx::query(stmt).execute(&db).await?;
        }
        let (live, _) = broadcast::channel(LIVE);
        Ok(Arc::new(Monitor {
            db,
            rings: Mutex::new(HashMap::new()),
            minutes: Mutex::new(HashMap::new()),
            live,
            watchers: AtomicUsize::new(0),
        }))
    }

    pub fn watch(self: &Arc<Self>) -> WatchGuard {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        WatchGuard(self.clone())
    }

    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Live>> {
        self.live.subscribe()
    }

    /// Take one tick: into the rings, the minute aggregates (finished minutes go to disk) and
    /// the live feed.
    pub async fn record(&self, snap: &Snapshot) {
        let t = snap.t;
        let minute = minute_of(t);
        let mut entries: Vec<(String, Usage)> =
            snap.apps.iter().map(|(k, v)| (k.clone(), *v)).collect();
        entries.push((
            HOST.to_string(),
            Usage {
                cpu_percent: snap.host.cpu_percent,
                memory_bytes: snap.host.memory_used_bytes,
            },
        ));
        let mut done = Vec::new();
        {
            let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
            for (name, u) in &entries {
                let ring = rings.entry(name.clone()).or_default();
                ring.push_back(Point::sample(t, *u));
                while ring.len() > RING_MAX
                    || ring.front().is_some_and(|p| p.t < t - RING_SECS * 1000)
                {
                    ring.pop_front();
                }
            }
            // Apps no longer sampled keep their ring until it ages out.
            rings.retain(|_, r| r.back().is_some_and(|p| p.t >= t - RING_SECS * 1000));
            let mut minutes = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
            for (name, u) in &entries {
                let agg = minutes
                    .entry(name.clone())
                    .or_insert_with(|| Agg::new(minute));
                if agg.minute != minute {
                    done.push((name.clone(), *agg));
                    *agg = Agg::new(minute);
                }
                agg.add(*u);
            }
            // An app that stopped being sampled: its last minute is finished too.
            let stale: Vec<String> = minutes
                .iter()
                .filter(|(_, a)| a.minute < minute)
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                if let Some(a) = minutes.remove(&k) {
                    done.push((k, a));
                }
            }
        }
        if !done.is_empty() {
            if let Err(e) = self.write_minutes(&done).await {
                tracing::warn!("cannot write the metrics history: {e}");
            }
            if let Err(e) = self.prune(t).await {
                tracing::warn!("cannot prune the metrics history: {e}");
            }
        }
        let _ = self.live.send(Arc::new(Live::Tick(snap.clone())));
    }

    async fn write_minutes(&self, rows: &[(String, Agg)]) -> Result<(), MonitorError> {
        let mut tx = self.db.begin().await?;
        for (app, agg) in rows {
            if agg.n == 0 {
                continue;
            }
            let p = agg.point();
            // A minute written at shutdown and continued after a restart is merged.
            sqlx::query(
                "INSERT INTO minutes (app, t, n, cpu_min, cpu_avg, cpu_max, mem_min, mem_avg, mem_max)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (app, t) DO UPDATE SET
                   cpu_avg = (cpu_avg * n + excluded.cpu_avg * excluded.n) / (n + excluded.n),
                   mem_avg = (mem_avg * n + excluded.mem_avg * excluded.n) / (n + excluded.n),
                   n = n + excluded.n,
                   cpu_min = min(cpu_min, excluded.cpu_min), cpu_max = max(cpu_max, excluded.cpu_max),
                   mem_min = min(mem_min, excluded.mem_min), mem_max = max(mem_max, excluded.mem_max)",
            )
            .bind(app)
            .bind(p.t)
            .bind(agg.n as i64)
            .bind(p.cpu_min)
            .bind(p.cpu)
            .bind(p.cpu_max)
            .bind(p.mem_min as i64)
            .bind(p.mem as i64)
            .bind(p.mem_max as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune(&self, now: i64) -> Result<(), MonitorError> {
        let cutoff = now - KEEP_MS;
        sqlx::query("DELETE FROM minutes WHERE t < ?")
            .bind(cutoff)
            .execute(&self.db)
            .await?;
        sqlx::query("DELETE FROM events WHERE t < ?")
            .bind(cutoff)
            .execute(&self.db)
            .await?;
        sqlx::query(
            "DELETE FROM events WHERE id IN (
               SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY app ORDER BY t DESC, id DESC) AS r FROM events)
               WHERE r > ?)",
        )
        .bind(EVENTS_PER_APP)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Write the unfinished minutes (on shutdown), so a restart finds them.
    pub async fn flush(&self) {
        let rows: Vec<(String, Agg)> = self
            .minutes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        if let Err(e) = self.write_minutes(&rows).await {
            tracing::warn!("cannot write the metrics history: {e}");
        }
    }

    /// Mark an event on an app's timeline (also sent on the live feed).
    pub async fn event(&self, app: &str, kind: &str, detail: Option<String>) {
        let ev = TimelineEvent {
            t: unix_ms(SystemTime::now()),
            kind: kind.to_string(),
            detail,
        };
        if let Err(e) = sqlx::query("INSERT INTO events (app, t, kind, detail) VALUES (?, ?, ?, ?)")
            .bind(app)
            .bind(ev.t)
            .bind(&ev.kind)
            .bind(&ev.detail)
            .execute(&self.db)
            .await
        {
            tracing::warn!(app, "cannot record a {kind} event: {e}");
        }
        let _ = self.live.send(Arc::new(Live::Event {
            app: app.to_string(),
            event: ev,
        }));
    }

    /// The history of `name` (an app, or [`HOST`]) over the last `range_seconds`.
    pub async fn history(&self, name: &str, range_seconds: i64) -> Result<History, MonitorError> {
        let now = unix_ms(SystemTime::now());
        let from = now - range_seconds * 1000;
        let fine = range_seconds <= RING_SECS;
        let ring: Vec<Point> = if fine {
            self.rings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)
                .map(|r| r.iter().filter(|p| p.t >= from).copied().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // Minutes on disk cover what the ring does not (older, or before an engine restart).
        let disk_until = ring.first().map(|p| minute_of(p.t)).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT t, cpu_min, cpu_avg, cpu_max, mem_min, mem_avg, mem_max FROM minutes
             WHERE app = ? AND t >= ? AND t < ? ORDER BY t",
        )
        .bind(name)
        .bind(minute_of(from))
        .bind(disk_until)
        .fetch_all(&self.db)
        .await?;
        let mut points: Vec<Point> = rows
            .iter()
            .map(|r| Point {
                t: r.get(0),
                cpu_min: r.get(1),
                cpu: r.get(2),
                cpu_max: r.get(3),
                mem_min: r.get::<i64, _>(4) as u64,
                mem: r.get::<i64, _>(5) as u64,
                mem_max: r.get::<i64, _>(6) as u64,
            })
            .collect();
        if fine {
            points.extend(ring);
        } else if let Some(a) = self
            .minutes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            // The minute in progress.
            if a.n > 0 && points.last().is_none_or(|p| p.t < a.minute) {
                points.push(a.point());
            }
        }
        let events = sqlx::query(
            "SELECT t, kind, detail FROM events WHERE app = ? AND t >= ? ORDER BY t, id LIMIT 10000",
        )
        .bind(name)
        .bind(from)
        .fetch_all(&self.db)
        .await?
        .iter()
        .map(|r| TimelineEvent {
            t: r.get(0),
            kind: r.get(1),
            detail: r.get(2),
        })
        .collect();
        Ok(History {
            name: name.to_string(),
            range_seconds,
            resolution: if fine { "1s" } else { "1m" }.to_string(),
            points,
            events,
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// `5m`, `1h`, `24h`, `7d`, `90s`: a range of at most 7 days (`base::clock`'s one reader of
/// spans).
pub fn parse_range(s: &str) -> Result<i64, String> {
    let err = || {
        format!("range {s:?} is not accepted; accepted: a span from 1s up to 7d (such as 5m, 1h, 24h, 7d)")
    };
    let d = crate::base::clock::parse_span(s, "range").map_err(|_| err())?;
    match i64::try_from(d.as_secs()) {
        Ok(secs) if (1..=7 * 86400).contains(&secs) => Ok(secs),
        _ => Err(err()),
    }
}

/// What the last state of an app was, to tell events from state changes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    status: crate::run::supervisor::Status,
    restarts: u32,
    pid: Option<u32>,
}

/// Turn the supervisor's state changes into timeline events: a process that became ready is a
/// `start`; one that ended on request a `stop`; one that ended on its own a `crash`; an
/// operator's restart a `restart`.
pub fn classify(
    before: Option<(crate::run::supervisor::Status, u32)>,
    now: (crate::run::supervisor::Status, u32),
) -> Option<&'static str> {
    use crate::run::supervisor::Status::*;
    let (status, restarts) = now;
    let (prev, prev_restarts) = before.unwrap_or((Stopped, restarts));
    if status == prev && restarts == prev_restarts {
        return None;
    }
    if restarts > prev_restarts {
        return Some(match status {
            Backoff | Error => "crash",
            _ => "restart",
        });
    }
    match (prev, status) {
        (Running, Error) | (Starting, Error) => Some("crash"),
        (_, Running) => Some("start"),
        (Running, Stopped) | (Stopping, Stopped) | (Running, Stopping) => Some("stop"),
        _ => None,
    }
}

/// Follow the supervisor's events and mark them on the timeline; configure each app's logs
/// (rotation, files it writes itself) when it starts.
pub async fn follow_events(engine: Arc<Core>) {
    let mut rx = engine.events.subscribe();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    for name in engine.supervisor.names() {
        crate::run::log_files::configure(&engine, &name).await;
        if let Some(s) = engine.supervisor.state(&name) {
            seen.insert(
                name,
                Seen {
                    status: s.status,
                    restarts: s.restarts,
                    pid: s.pid,
                },
            );
        }
    }
    loop {
        let name = match rx.recv().await {
            Ok(
                crate::run::supervisor::Event::App { name }
                | crate::run::supervisor::Event::Record { name },
            ) => name,
            Ok(crate::run::supervisor::Event::Removed { name }) => {
                seen.remove(&name);
                crate::run::log_files::forget(&engine, &name);
                continue;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(s) = engine.supervisor.state(&name) else {
            continue;
        };
        let now = Seen {
            status: s.status,
            restarts: s.restarts,
            pid: s.pid,
        };
        let before = seen.insert(name.clone(), now);
        if before.is_some_and(|b| b == now) {
            continue;
        }
        if now.status == crate::run::supervisor::Status::Starting
            && before.is_none_or(|b| b.status != crate::run::supervisor::Status::Starting)
        {
            crate::run::log_files::configure(&engine, &name).await;
        }
        if let Some(kind) = classify(
            before.map(|b| (b.status, b.restarts)),
            (now.status, now.restarts),
        ) {
            let detail = match kind {
                "start" => now.pid.map(|p| format!("pid {p}")),
                _ => s.error.clone(),
            };
            engine.monitor.event(&name, kind, detail).await;
        }
    }
}

/// Samples in a row over its memory limit before an app is restarted (one sample can catch a
/// short peak; three seconds over is a trend).
pub const OVER_LIMIT_SAMPLES: u32 = 3;

/// Count, per app, the samples in a row its tree was over its memory limit; the apps whose
/// count reached [`OVER_LIMIT_SAMPLES`] are returned (with used bytes and the limit), and
/// their count starts again.
fn over_limits(
    engine: &Core,
    snap: &Snapshot,
    over: &mut HashMap<String, u32>,
) -> Vec<(String, u64, u64)> {
    let mut due = Vec::new();
    over.retain(|name, _| snap.apps.contains_key(name));
    for (name, usage) in &snap.apps {
        let Some(state) = engine.supervisor.state(name) else {
            continue;
        };
        let limit = match state.memory_max {
            Some(l) if state.status == crate::run::supervisor::Status::Running => l,
            _ => {
                over.remove(name);
                continue;
            }
        };
        if usage.memory_bytes <= limit {
            over.remove(name);
            continue;
        }
        let n = over.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n >= OVER_LIMIT_SAMPLES {
            over.remove(name);
            due.push((name.clone(), usage.memory_bytes, limit));
        }
    }
    due
}

/// Does anything need the figures every second: an app running with a memory limit, or a
/// memory budget (both act on fresh figures)?
fn enforcing(engine: &Core) -> bool {
    engine.config.memory_budget.is_some()
        || engine.supervisor.names().iter().any(|n| {
            engine
                .supervisor
                .state(n)
                .is_some_and(|s| s.memory_max.is_some() && s.pid.is_some())
        })
}

/// The sampling loop: every second while watched or while memory limits or a budget are
/// enforced, every 5 s otherwise; the log files' global cap is enforced every minute.
pub async fn run(engine: Arc<Core>) {
    tokio::spawn(follow_events(engine.clone()));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut since_sample = u32::MAX;
    let mut since_sweep = 0u32;
    let mut over: HashMap<String, u32> = HashMap::new();
    loop {
        tick.tick().await;
        since_sample = since_sample.saturating_add(1);
        since_sweep += 1;
        if since_sweep >= 60 {
            since_sweep = 0;
            let e = engine.clone();
            let _ =
                tokio::task::spawn_blocking(move || crate::run::log_files::enforce_total_cap(&e))
                    .await;
        }
        if engine.monitor.watchers() == 0 && since_sample < 5 && !enforcing(&engine) {
            continue;
        }
        since_sample = 0;
        let roots: Vec<(String, u32)> = engine
            .supervisor
            .names()
            .into_iter()
            .filter_map(|n| {
                let s = engine.supervisor.state(&n)?;
                Some((n, s.pid?))
            })
            .collect();
        let e = engine.clone();
        let Ok(snap) = tokio::task::spawn_blocking(move || e.sampler.tick(&roots)).await else {
            continue;
        };
        for (name, used, limit) in over_limits(&engine, &snap, &mut over) {
            let e = engine.clone();
            tokio::spawn(async move { e.supervisor.over_memory(&name, used, limit).await });
        }
        engine.monitor.record(&snap).await;
    }
}

/// How the reason of an app the memory budget put to sleep begins (`AppView::reason`): the
/// budget writes it, clients (`hangar list`) count by it.
pub const BUDGET_REASON: &str = "memory budget";

/// The memory budget as it stands: the budget in bytes, what the running apps hold now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetFigures {
    pub budget_bytes: u64,
    pub used_bytes: u64,
}

/// The memory budget in bytes (`memory_budget`; a share of RAM once the sampler has read the
/// machine's), and what the apps with a process hold by the last sample. `None`: no budget,
/// or the machine's RAM is not known yet.
pub fn budget(engine: &Core) -> Option<BudgetFigures> {
    let b = engine.config.memory_budget?;
    let total = engine
        .sampler
        .host()
        .map(|h| h.memory_total_bytes)
        .filter(|t| *t > 0);
    let budget_bytes = match (b, total) {
        (crate::base::config::MemoryBudget::Bytes(n), _) => n,
        (_, Some(t)) => b.bytes(t),
        (_, None) => return None,
    };
    Some(BudgetFigures {
        budget_bytes,
        used_bytes: apps_memory(engine),
    })
}

/// What the apps that have a process hold, by the last sample.
pub fn apps_memory(engine: &Core) -> u64 {
    engine
        .supervisor
        .names()
        .iter()
        .filter(|n| engine.supervisor.state(n).is_some_and(|s| s.pid.is_some()))
        .filter_map(|n| engine.sampler.usage(n))
        .map(|u| u.memory_bytes)
        .sum()
}

/// Current figures of every app and the host, as one JSON-able value.
pub fn current(engine: &Core) -> BTreeMap<String, Usage> {
    engine
        .supervisor
        .names()
        .into_iter()
        .filter_map(|n| Some((n.clone(), engine.sampler.usage(&n)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::supervisor::Status::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("5m"), Ok(300));
        assert_eq!(parse_range("24h"), Ok(86400));
        assert_eq!(parse_range("7d"), Ok(604800));
        assert!(parse_range("8d").is_err());
        assert!(parse_range("5").is_err());
        assert!(parse_range("m").is_err());
        assert!(parse_range("-5m").is_err());
    }

    #[test]
    fn events_from_states() {
        assert_eq!(classify(Some((Starting, 0)), (Running, 0)), Some("start"));
        assert_eq!(classify(Some((Running, 0)), (Stopping, 0)), Some("stop"));
        assert_eq!(classify(Some((Running, 0)), (Backoff, 1)), Some("crash"));
        assert_eq!(classify(Some((Running, 0)), (Starting, 1)), Some("restart"));
        assert_eq!(classify(Some((Running, 0)), (Running, 0)), None);
        assert_eq!(classify(Some((Stopping, 0)), (Stopped, 0)), Some("stop"));
    }

    #[tokio::test]
    async fn minutes_reach_disk_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let m = Monitor::open(&path).await.unwrap();
        let now = unix_ms(SystemTime::now());
        // Two samples inside one minute, whatever the clock says: the minute two minutes ago,
        // five seconds in.
        let minute_ago = now - now % 60_000 - 120_000 + 5_000;
        let mut apps = BTreeMap::new();
        apps.insert(
            "a1".to_string(),
            Usage {
                cpu_percent: 10.0,
                memory_bytes: 100,
            },
        );
        m.record(&Snapshot {
            t: minute_ago,
            host: Default::default(),
            apps: apps.clone(),
        })
        .await;
        apps.insert(
            "a1".to_string(),
            Usage {
                cpu_percent: 30.0,
                memory_bytes: 300,
            },
        );
        m.record(&Snapshot {
            t: minute_ago + 1_000,
            host: Default::default(),
            apps: apps.clone(),
        })
        .await;
        m.record(&Snapshot {
            t: now,
            host: Default::default(),
            apps,
        })
        .await;
        m.flush().await;
        m.close().await;
        let m = Monitor::open(&path).await.unwrap();
        let h = m.history("a1", 3600).await.unwrap();
        assert_eq!(h.points.len(), 2, "{h:?}");
        assert_eq!(h.points[0].cpu, 20.0);
        assert_eq!(h.points[0].cpu_min, 10.0);
        assert_eq!(h.points[0].mem_max, 300);
    }
}
