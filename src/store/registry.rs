//! The registry: the engine's own SQLite database of what should be.
//!
//! Invariants: names, ports and domains are unique (checked with a clear message before the
//! write, and by the schema's UNIQUE constraints under it); a failed write changes nothing;
//! secrets stay in here and are never serialised out (see [`AppRecord`]'s fields).

use crate::base::clock::now;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::Row;

use crate::base::config::AppCommand;
use crate::base::db::AppDb;
use crate::base::validate::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no app named {0:?}; `hangar list` shows the apps there are")]
    NotFound(String),
    #[error("{0}")]
    Conflict(Invalid),
    #[error("the registry {path} cannot be opened: {source}; it was left as it is (move it away to start afresh)")]
    Open { path: String, source: sqlx::Error },
    #[error("the registry's schema cannot be brought up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("registry: {0}")]
    Db(#[from] sqlx::Error),
    #[error("registry: stored value for {name} is damaged: {message}")]
    Damaged { name: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    WithMain,
    OnVisit,
}

impl StartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StartMode::WithMain => "with-main",
            StartMode::OnVisit => "on-visit",
        }
    }
}

impl std::fmt::Display for StartMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for StartMode {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "with-main" => Ok(StartMode::WithMain),
            "on-visit" => Ok(StartMode::OnVisit),
            _ => Err(Invalid::new(
                "start_mode",
                format!("{s:?} is not a start mode; accepted: with-main, on-visit"),
            )),
        }
    }
}

/// What the operator wants of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// Keep it running.
    Running,
    /// The operator stopped it: nothing but the operator starts it again.
    Stopped,
    /// Not running, and a visit may start it (an on-visit app never started, or idled).
    Dormant,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
            Desired::Dormant => "dormant",
        }
    }
    fn parse(s: &str) -> Option<Desired> {
        match s {
            "running" => Some(Desired::Running),
            "stopped" => Some(Desired::Stopped),
            "dormant" => Some(Desired::Dormant),
            _ => None,
        }
    }
}

impl std::fmt::Display for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One app as the registry holds it.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub name: String,
    pub display_name: String,
    pub start_mode: StartMode,
    pub port: u16,
    pub domain: Option<String>,
    pub pinned: bool,
    /// `None`: the main app's runtime.
    pub runtime: Option<String>,
    /// Its own program (`create NAME -- PROGRAM`), over its runtime's `command`.
    pub command: Option<AppCommand>,
    pub db: AppDb,
    pub env: BTreeMap<String, String>,
    /// Values Hangar made for it at create (a preset's `generated`, e.g. NocoBase's first
    /// admin): given to its process under the app's own `env`, never shown after the create.
    pub secret_env: BTreeMap<String, String>,
    pub app_key: String,
    pub desired: Desired,
    pub last_version: Option<String>,
    /// The process a previous engine recorded (leader pid, start time, boot).
    pub pid: Option<crate::base::process::Recorded>,
    /// Idle stop: seconds without a request or open connection before an on-visit app goes
    /// dormant; `None`: never.
    pub idle_timeout: Option<u32>,
    /// The app's own memory limit in bytes (else the runtime's); `None`: none of its own.
    pub memory_max: Option<u64>,
    /// The app's own CPU priority (else the runtime's); `None`: none of its own.
    pub nice: Option<i32>,
    pub created_at: String,
    pub updated_at: String,
}

/// The fields an edit may change; `None` leaves a field as it is. An unknown field is refused
/// (a misspelt field must not read as "nothing to change").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppEdit {
    pub display_name: Option<String>,
    pub start_mode: Option<StartMode>,
    pub port: Option<u16>,
    /// `Some(None)` clears the domain: JSON `null` (or `""`); an absent field leaves it (and
    /// `None` is written as an absent field).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub domain: Option<Option<String>>,
    pub pinned: Option<bool>,
    pub env: Option<BTreeMap<String, String>>,
    /// Seconds; `Some(0)` turns idle stop off.
    pub idle_timeout: Option<u32>,
    /// A new program for an app that has its own (`create NAME -- PROGRAM`); applies at its
    /// next start. Checked by the engine, which knows the app's runtime and env.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<AppCommand>,
    /// A size (`600M`, or bytes); `0` removes the app's own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<crate::base::validate::SizeInput>,
    /// -20..19; `0` removes the app's own priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nice: Option<i32>,
}

/// A field that is present, `null` included, is `Some`: serde's default reads `null` as absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl AppEdit {
    /// Every check of an edit that needs only the request (`reserved`: the proxy's and the
    /// API's ports); returns the edit as it will be stored (an empty domain clears it, a domain
    /// is lowercased as at create).
    pub fn check(mut self, reserved: &[u16]) -> Result<AppEdit, Invalid> {
        use crate::base::validate;
        if let Some(d) = &self.display_name {
            validate::display_name(d)?;
        }
        if let Some(Some(d)) = &self.domain {
            if d.is_empty() {
                self.domain = Some(None);
            } else {
                let d = d.to_ascii_lowercase();
                validate::domain(&d)?;
                self.domain = Some(Some(d));
            }
        }
        if let Some(p) = self.port {
            validate::port(i64::from(p), reserved)?;
        }
        if let Some(env) = &self.env {
            for (k, v) in env {
                validate::env_entry(k, v)?;
            }
        }
        if let Some(m) = &self.memory_max {
            // Stored as bytes: what the check read is what the registry writes.
            let bytes = m.memory_max()?.unwrap_or(0);
            self.memory_max = Some(validate::SizeInput::Bytes(bytes));
        }
        if let Some(n) = self.nice {
            validate::nice(i64::from(n))?;
        }
        if let Some(s) = self.idle_timeout {
            validate::idle_timeout(i64::from(s))?;
            if s > 0 && self.start_mode == Some(StartMode::WithMain) {
                return Err(Invalid::new(
                    "idle_timeout",
                    "an idle timeout applies to on-visit apps only; a with-main app runs as long as the engine",
                ));
            }
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalOp {
    Create,
    Delete,
}

impl JournalOp {
    fn as_str(self) -> &'static str {
        match self {
            JournalOp::Create => "create",
            JournalOp::Delete => "delete",
        }
    }
}

/// An operation in flight (see migrations/0005_journal.sql).
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub name: String,
    pub op: JournalOp,
    pub data_service: Option<String>,
    /// Create: the data-service objects of the app's identifier that existed before it began.
    pub existed: Vec<String>,
    /// Delete: the app's database, to finish dropping it.
    pub db: Option<AppDb>,
    pub drop_db: bool,
}

#[derive(Clone)]
pub struct Registry {
    pool: SqlitePool,
}

impl Registry {
    /// Open (creating if absent) and migrate. A damaged file is an error, never recreated.
    pub async fn open(path: &Path) -> Result<Registry, RegistryError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5))
            .foreign_keys(true);
        let open_err = |source| RegistryError::Open {
            path: path.display().to_string(),
            source,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        // A damaged file fails here, before anything is written.
        sqlx::query("PRAGMA quick_check")
            .execute(&pool)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Registry { pool })
    }

    pub async fn list(&self) -> Result<Vec<AppRecord>, RegistryError> {
        let rows = sqlx::query("SELECT * FROM apps ORDER BY name = 'main' DESC, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn get(&self, name: &str) -> Result<AppRecord, RegistryError> {
        let row = sqlx::query("SELECT * FROM apps WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => from_row(&r),
            None => Err(RegistryError::NotFound(name.to_string())),
        }
    }

    pub async fn used_ports(&self) -> Result<Vec<u16>, RegistryError> {
        let rows = sqlx::query("SELECT port FROM apps")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0) as u16).collect())
    }

    /// Refuse a port or domain another app holds (`except`: the app being edited).
    pub async fn check_unique(
        &self,
        port: Option<u16>,
        domain: Option<&str>,
        except: &str,
    ) -> Result<(), RegistryError> {
        if let Some(port) = port {
            let other: Option<String> =
                sqlx::query_scalar("SELECT name FROM apps WHERE port = ? AND name <> ?")
                    .bind(port as i64)
                    .bind(except)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some(other) = other {
                return Err(RegistryError::Conflict(Invalid::new(
                    "port",
                    format!("port {port} is already used by app {other:?}; leave it blank to get a free one"),
                )));
            }
        }
        if let Some(domain) = domain {
            let other: Option<String> =
                sqlx::query_scalar("SELECT name FROM apps WHERE domain = ? AND name <> ?")
                    .bind(domain)
                    .bind(except)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some(other) = other {
                return Err(RegistryError::Conflict(Invalid::new(
                    "domain",
                    format!("domain {domain:?} is already used by app {other:?}; each domain leads to one app"),
                )));
            }
        }
        Ok(())
    }

    /// A new app's name, port and domain are free (the refusal names the holder).
    async fn check_new(&self, app: &AppRecord) -> Result<(), RegistryError> {
        if self.get(&app.name).await.is_ok() {
            return Err(RegistryError::Conflict(Invalid::new(
                "name",
                format!(
                    "an app named {:?} already exists; names are unique",
                    app.name
                ),
            )));
        }
        self.check_unique(Some(app.port), app.domain.as_deref(), &app.name)
            .await
    }

    /// Register a new app. A name, port or domain another app holds is a `Conflict` naming it,
    /// also when that app was inserted between the check and this write (two creates at once).
    pub async fn insert(&self, app: &AppRecord) -> Result<(), RegistryError> {
        self.check_new(app).await?;
        let db_json = serde_json::to_string(&app.db).map_err(|e| damaged(&app.name, e))?;
        let env_json = serde_json::to_string(&app.env).map_err(|e| damaged(&app.name, e))?;
        let command_json = command_json(&app.name, app.command.as_ref())?;
        let secret_env_json =
            serde_json::to_string(&app.secret_env).map_err(|e| damaged(&app.name, e))?;
        let inserted = sqlx::query(
            "INSERT INTO apps (name, display_name, start_mode, port, domain, pinned, runtime, db_json, env_json, secret_env_json, app_key, desired, last_version, idle_timeout, memory_max, nice, created_at, updated_at, command_json)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&app.name)
        .bind(&app.display_name)
        .bind(app.start_mode.as_str())
        .bind(app.port as i64)
        .bind(&app.domain)
        .bind(app.pinned)
        .bind(&app.runtime)
        .bind(db_json)
        .bind(env_json)
        .bind(secret_env_json)
        .bind(&app.app_key)
        .bind(app.desired.as_str())
        .bind(&app.last_version)
        .bind(app.idle_timeout.map(i64::from))
        .bind(app.memory_max.map(|b| b.min(i64::MAX as u64) as i64))
        .bind(app.nice.map(i64::from))
        .bind(&app.created_at)
        .bind(&app.updated_at)
        .bind(command_json)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            // Another insert came between the check and this one: the check says who holds what.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                self.check_new(app).await?;
                Err(RegistryError::Db(sqlx::Error::Database(db)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Apply an edit in one statement; the caller has validated the values.
    pub async fn update(&self, name: &str, edit: &AppEdit) -> Result<AppRecord, RegistryError> {
        let mut app = self.get(name).await?;
        let domain = match &edit.domain {
            Some(d) => d.clone(),
            None => app.domain.clone(),
        };
        self.check_unique(edit.port, domain.as_deref(), name)
            .await?;
        if let Some(v) = &edit.display_name {
            app.display_name = v.clone();
        }
        if let Some(v) = edit.start_mode {
            app.start_mode = v;
        }
        if let Some(v) = edit.port {
            app.port = v;
        }
        app.domain = domain;
        if let Some(v) = edit.pinned {
            app.pinned = v;
        }
        if let Some(v) = &edit.env {
            app.env = v.clone();
        }
        if let Some(v) = edit.idle_timeout {
            app.idle_timeout = (v > 0).then_some(v);
        }
        if let Some(c) = &edit.command {
            app.command = Some(c.clone());
        }
        if let Some(m) = &edit.memory_max {
            app.memory_max = m.memory_max().map_err(RegistryError::Conflict)?;
        }
        if let Some(n) = edit.nice {
            app.nice = (n != 0).then_some(n);
        }
        app.updated_at = now();
        let env_json = serde_json::to_string(&app.env).map_err(|e| damaged(name, e))?;
        let command_json = command_json(name, app.command.as_ref())?;
        sqlx::query(
            "UPDATE apps SET display_name = ?, start_mode = ?, port = ?, domain = ?, pinned = ?, env_json = ?, idle_timeout = ?, memory_max = ?, nice = ?, updated_at = ?, command_json = ? WHERE name = ?",
        )
        .bind(&app.display_name)
        .bind(app.start_mode.as_str())
        .bind(app.port as i64)
        .bind(&app.domain)
        .bind(app.pinned)
        .bind(env_json)
        .bind(app.idle_timeout.map(i64::from))
        .bind(app.memory_max.map(|b| b.min(i64::MAX as u64) as i64))
        .bind(app.nice.map(i64::from))
        .bind(&app.updated_at)
        .bind(command_json)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(app)
    }

    pub async fn set_desired(&self, name: &str, desired: Desired) -> Result<(), RegistryError> {
        let r = sqlx::query("UPDATE apps SET desired = ?, updated_at = ? WHERE name = ?")
            .bind(desired.as_str())
            .bind(now())
            .bind(name)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        Ok(())
    }

    pub async fn set_last_version(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        sqlx::query("UPDATE apps SET last_version = ? WHERE name = ?")
            .bind(version)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record why the app is in `error` (`None`: it is not), for the next engine.
    pub async fn set_error(&self, name: &str, error: Option<&str>) -> Result<(), RegistryError> {
        sqlx::query("UPDATE apps SET error = ? WHERE name = ?")
            .bind(error)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The apps a previous engine left in `error`, and why.
    pub async fn errors(&self) -> Result<BTreeMap<String, String>, RegistryError> {
        let rows = sqlx::query("SELECT name, error FROM apps WHERE error IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for r in &rows {
            out.insert(r.try_get("name")?, r.try_get("error")?);
        }
        Ok(out)
    }

    /// Remember the running process (pid and its start time, in this boot) so a later engine
    /// can find it.
    pub async fn set_pid(&self, name: &str, pid: Option<(u32, u64)>) -> Result<(), RegistryError> {
        sqlx::query("UPDATE apps SET pid = ?, pid_started = ?, pid_boot = ? WHERE name = ?")
            .bind(pid.map(|p| p.0 as i64))
            .bind(pid.map(|p| p.1 as i64))
            .bind(pid.and(crate::base::process::boot_id()))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), RegistryError> {
        let r = sqlx::query("DELETE FROM apps WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        Ok(())
    }

    /// Note an operation before its first change outside the registry.
    pub async fn journal_begin(&self, entry: &JournalEntry) -> Result<(), RegistryError> {
        let db_json = match &entry.db {
            Some(db) => Some(serde_json::to_string(db).map_err(|e| damaged(&entry.name, e))?),
            None => None,
        };
        let existed = serde_json::to_string(&entry.existed).map_err(|e| damaged(&entry.name, e))?;
        sqlx::query(
            "INSERT OR REPLACE INTO journal (name, op, data_service, existed_json, db_json, drop_db, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&entry.name)
        .bind(entry.op.as_str())
        .bind(&entry.data_service)
        .bind(existed)
        .bind(db_json)
        .bind(entry.drop_db)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn journal_end(&self, name: &str) -> Result<(), RegistryError> {
        sqlx::query("DELETE FROM journal WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn journal(&self) -> Result<Vec<JournalEntry>, RegistryError> {
        let rows = sqlx::query(
            "SELECT name, op, data_service, existed_json, db_json, drop_db FROM journal",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            let op: String = r.try_get("op")?;
            let existed: String = r.try_get("existed_json")?;
            let db: Option<String> = r.try_get("db_json")?;
            out.push(JournalEntry {
                op: if op == "delete" {
                    JournalOp::Delete
                } else {
                    JournalOp::Create
                },
                data_service: r.try_get("data_service")?,
                existed: serde_json::from_str(&existed).map_err(|e| damaged(&name, e))?,
                db: match db {
                    Some(j) => Some(serde_json::from_str(&j).map_err(|e| damaged(&name, e))?),
                    None => None,
                },
                drop_db: r.try_get("drop_db")?,
                name,
            });
        }
        Ok(out)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn damaged(name: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Damaged {
        name: name.to_string(),
        message: e.to_string(),
    }
}

fn command_json(name: &str, c: Option<&AppCommand>) -> Result<Option<String>, RegistryError> {
    c.map(serde_json::to_string)
        .transpose()
        .map_err(|e| damaged(name, e))
}

fn from_row(r: &SqliteRow) -> Result<AppRecord, RegistryError> {
    let name: String = r.try_get("name")?;
    let start_mode: String = r.try_get("start_mode")?;
    let desired: String = r.try_get("desired")?;
    let db_json: String = r.try_get("db_json")?;
    let env_json: String = r.try_get("env_json")?;
    let secret_env_json: String = r.try_get("secret_env_json")?;
    let pid: Option<i64> = r.try_get("pid")?;
    let pid_started: Option<i64> = r.try_get("pid_started")?;
    let pid_boot: Option<String> = r.try_get("pid_boot")?;
    let idle_timeout: Option<i64> = r.try_get("idle_timeout")?;
    let command: Option<String> = r.try_get("command_json")?;
    let memory_max: Option<i64> = r.try_get("memory_max")?;
    let nice: Option<i64> = r.try_get("nice")?;
    Ok(AppRecord {
        command: command
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| damaged(&name, e))?,
        display_name: r.try_get("display_name")?,
        start_mode: start_mode.parse().map_err(|e: Invalid| damaged(&name, e))?,
        port: r.try_get::<i64, _>("port")? as u16,
        domain: r.try_get("domain")?,
        pinned: r.try_get("pinned")?,
        runtime: r.try_get("runtime")?,
        db: serde_json::from_str(&db_json).map_err(|e| damaged(&name, e))?,
        env: serde_json::from_str(&env_json).map_err(|e| damaged(&name, e))?,
        secret_env: serde_json::from_str(&secret_env_json).map_err(|e| damaged(&name, e))?,
        app_key: r.try_get("app_key")?,
        desired: Desired::parse(&desired)
            .ok_or_else(|| damaged(&name, format!("desired = {desired:?}")))?,
        last_version: r.try_get("last_version")?,
        pid: pid
            .zip(pid_started)
            .map(|(p, s)| crate::base::process::Recorded {
                pid: p as u32,
                started: s as u64,
                boot: pid_boot,
            }),
        idle_timeout: idle_timeout
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0),
        memory_max: memory_max
            .and_then(|b| u64::try_from(b).ok())
            .filter(|b| *b > 0),
        nice: nice.and_then(|n| i32::try_from(n).ok()),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_reads_null_as_clearing_the_domain_and_refuses_unknown_fields() {
        // The control panel clears a domain with `"domain": null`; serde's default read it as
        // "absent", so the domain stayed. A misspelt field was ignored: the edit changed nothing
        // and answered 200.
        let e: AppEdit = serde_json::from_str(r#"{"domain": null}"#).unwrap();
        assert_eq!(e.domain, Some(None));
        let e: AppEdit = serde_json::from_str("{}").unwrap();
        assert_eq!(e.domain, None);
        let e: AppEdit = serde_json::from_str(r#"{"domain": "A.Example.com"}"#).unwrap();
        let e = e.check(&[13000, 13001]).unwrap();
        assert_eq!(e.domain, Some(Some("a.example.com".into())));
        let err = serde_json::from_str::<AppEdit>(r#"{"domian": "a.example.com"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("domian"), "{err}");
    }
}
