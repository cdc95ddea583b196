//! Backups and restores of one app: `hangar backup NAME | --all [-o DIR]`,
//! `hangar restore FILE [--as NAME] [--db METHOD]`, and the automatic backups taken before an
//! upgrade and before a delete that drops the database.
//!
//! An archive is a gzip-compressed tar (`<app>.<UTC stamp>.<reason>.tar.gz`, mode 0600):
//!
//! ```text
//! hangar-backup.json   the manifest: format, reason, time, the app's definition, what the dump is
//! db.sqlite            the SQLite database, copied online with `VACUUM INTO`, or
//! db.sql               a plain SQL dump: `pg_dump` of the database or of the schema,
//!                      `mariadb-dump` of the database
//! data/…               the app's data folder (without its SQLite file, which is db.sqlite)
//! ```
//!
//! Passwords are never written into an archive: the definition records how the database was
//! made (new database, schema, attached URL) and a password-free description. A restore makes
//! the database anew, as a create would (a new role with a new password), and loads the dump
//! into it; an app that was attached is restored into a new database of the data service (or a
//! `--db URL` the operator names). The app key is kept, so a restore under the same name keeps
//! the app's sessions and whatever it signed; a restore under a new name gets a key of its own.
//!
//! Invariants: an archive appears under its final name only when complete (it is written to a
//! hidden `.partial` file and renamed); a restore checks everything it can (name, manifest,
//! dialects) before it makes anything, and a failure after the app was made deletes it again,
//! with what was provisioned for it, so nothing is left half-restored. Automatic backups older
//! than `backup_keep_days` are removed after each new automatic one; the operator's own
//! backups are never removed.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::config::Config;
use crate::base::db::{sqlite_path, AppDb, DbMethod};
use crate::base::dialect::Dialect;
use crate::base::home::Home;
use crate::base::jobs::Job;
use crate::base::validate::Invalid;
use crate::store::registry::{AppRecord, StartMode};

/// The manifest's format version; a newer one is refused with a clear message.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "hangar-backup.json";
/// The longest a dump or a load may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Invalid(Invalid),
    #[error("{0}")]
    Refused(String),
    /// A file could not be read or written, or a task failed; `source` is why.
    #[error("{message}")]
    Io {
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BackupError {
    /// An `Io` error saying `message`, with `source` behind it.
    pub fn io(
        message: String,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BackupError {
        BackupError::Io {
            message,
            source: source.into(),
        }
    }
}

pub fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BackupError {
    move |e| BackupError::io(format!("cannot {what}: {e}"), e)
}

/// Why a backup was taken. Automatic ones expire after `backup_keep_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Manual,
    BeforeUpgrade,
    BeforeDelete,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Manual => "manual",
            Reason::BeforeUpgrade => "before-upgrade",
            Reason::BeforeDelete => "before-delete",
        }
    }
    fn parse(s: &str) -> Option<Reason> {
        match s {
            "manual" => Some(Reason::Manual),
            "before-upgrade" => Some(Reason::BeforeUpgrade),
            "before-delete" => Some(Reason::BeforeDelete),
            _ => None,
        }
    }
    pub fn automatic(self) -> bool {
        self != Reason::Manual
    }
}

/// What the archive's database dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DumpKind {
    /// The app had no database file yet (never started).
    None,
    Sqlite,
    /// `pg_dump` of a whole database.
    Postgres,
    /// `pg_dump -n` of one schema.
    PostgresSchema,
    /// `mariadb-dump` of one database.
    Mysql,
}

impl DumpKind {
    pub fn dialect(self) -> Option<Dialect> {
        match self {
            DumpKind::None => None,
            DumpKind::Sqlite => Some(Dialect::Sqlite),
            DumpKind::Postgres | DumpKind::PostgresSchema => Some(Dialect::Postgres),
            DumpKind::Mysql => Some(Dialect::Mysql),
        }
    }
    fn file(self) -> Option<&'static str> {
        match self {
            DumpKind::None => None,
            DumpKind::Sqlite => Some("db.sqlite"),
            _ => Some("db.sql"),
        }
    }
}

/// The app as it was, without any password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub display_name: String,
    pub start_mode: StartMode,
    pub port: u16,
    pub domain: Option<String>,
    pub pinned: bool,
    /// Idle stop in seconds (absent in archives from before idle stop existed).
    #[serde(default)]
    pub idle_timeout: Option<u32>,
    /// Memory limit in bytes and CPU priority of its own (absent in older archives).
    #[serde(default)]
    pub memory_max: Option<u64>,
    #[serde(default)]
    pub nice: Option<i32>,
    pub runtime: Option<String>,
    /// Its own program (absent in archives from before `create NAME -- PROGRAM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<crate::base::config::AppCommand>,
    pub env: std::collections::BTreeMap<String, String>,
    pub app_key: String,
    /// The runtime version the app last ran: a restore onto a newer runtime upgrades it.
    pub last_version: Option<String>,
    pub db_method: DbMethod,
    /// Password-free (see [`AppDb::describe`]).
    pub db: String,
    /// The PostgreSQL schema the app used, if any.
    pub db_schema: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub hangar_version: String,
    pub created_at: String,
    pub reason: Reason,
    pub dump: DumpKind,
    pub app: Definition,
}

impl Manifest {
    /// Every field checked as the operator's own input would be: an archive is whatever a file
    /// holds, not what Hangar wrote. A refusal names the field.
    pub fn check(&self) -> Result<(), Invalid> {
        use crate::base::validate;
        let a = &self.app;
        let in_manifest = |e: Invalid| {
            Invalid::new(
                e.field,
                format!("the backup's manifest is refused: {}", e.message),
            )
        };
        let text = |field: &'static str, value: &str, max: usize| {
            if value.chars().count() > max || value.chars().any(char::is_control) {
                Err(Invalid::new(
                    field,
                    format!("{value:?} is not accepted; up to {max} characters without control characters"),
                ))
            } else {
                Ok(())
            }
        };
        let check = || -> Result<(), Invalid> {
            validate::name(&a.name)?;
            validate::display_name(&a.display_name)?;
            validate::port(a.port.into(), &[])?;
            if let Some(d) = &a.domain {
                validate::domain(d)?;
            }
            if let Some(t) = a.idle_timeout {
                validate::idle_timeout(t.into())?;
            }
            for (k, v) in &a.env {
                validate::env_entry(k, v)?;
            }
            if let Some(r) = &a.runtime {
                text("runtime", r, 64)?;
            }
            if let Some(v) = &a.last_version {
                text("last_version", v, 200)?;
            }
            text("db", &a.db, 2000)?;
            text("hangar_version", &self.hangar_version, 100)?;
            text("created_at", &self.created_at, 100)?;
            let key_ok = (16..=256).contains(&a.app_key.len())
                && a.app_key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !key_ok {
                return Err(Invalid::new(
                    "app_key",
                    "an app key is 16 to 256 letters, digits, '_' or '-'",
                ));
            }
            if let Some(schema) = &a.db_schema {
                validate::schema_name(schema)?;
            }
            if self.dump == DumpKind::PostgresSchema && a.db_schema.is_none() {
                return Err(Invalid::new(
                    "db_schema",
                    "a dump of one PostgreSQL schema needs the schema's name",
                ));
            }
            Ok(())
        };
        check().map_err(in_manifest)
    }
}

/// One archive, as `hangar backups` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupInfo {
    pub file: PathBuf,
    /// The file's name (what `hangar restore` and the UI accept for an archive in `backups/`).
    pub name: String,
    pub app: String,
    pub reason: String,
    pub automatic: bool,
    pub created_at: String,
    pub size: u64,
}

/// `<app>.<stamp>.<reason>.tar.gz`: app names have no dots, so the parts are unambiguous.
fn file_name(app: &str, stamp: &str, reason: Reason) -> String {
    format!("{app}.{stamp}.{}.tar.gz", reason.as_str())
}

fn parse_file_name(name: &str) -> Option<(String, String, Reason)> {
    let rest = name.strip_suffix(".tar.gz")?;
    let mut parts = rest.split('.');
    let (app, stamp, reason) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((app.to_string(), stamp.to_string(), Reason::parse(reason)?))
}

fn stamp_now() -> String {
    let f = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second][subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_else(|_| "0".into())
}

/// `20250102T030405678Z` → `2025-01-02T03:04:05Z`.
fn stamp_time(stamp: &str) -> String {
    let b = stamp.as_bytes();
    if b.len() >= 15 && b[8] == b'T' {
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )
    } else {
        stamp.to_string()
    }
}

// ---- listing and expiry ----------------------------------------------------------------------

/// The archives in `backups/` (one app's, or all), newest first.
pub fn list(home: &Home, app: Option<&str>) -> Vec<BackupInfo> {
    let dir = home.backups_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<BackupInfo> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (a, stamp, reason) = parse_file_name(&name)?;
            if app.is_some_and(|want| want != a) {
                return None;
            }
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| BackupInfo {
                file: e.path(),
                name,
                app: a,
                reason: reason.as_str().into(),
                automatic: reason.automatic(),
                created_at: stamp_time(&stamp),
                size: meta.len(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.name
            .split('.')
            .nth(1)
            .cmp(&a.name.split('.').nth(1))
            .then(a.app.cmp(&b.app))
    });
    out
}

/// Remove automatic backups older than `keep_days`; the removed files.
pub fn prune(home: &Home, keep_days: u32) -> Vec<PathBuf> {
    let cutoff = std::time::SystemTime::now()
        .checked_sub(Duration::from_secs(keep_days as u64 * 86_400))
        .unwrap_or(std::time::UNIX_EPOCH);
    let mut removed = Vec::new();
    for b in list(home, None).into_iter().filter(|b| b.automatic) {
        let old = std::fs::metadata(&b.file)
            .and_then(|m| m.modified())
            .map(|t| t < cutoff)
            .unwrap_or(false);
        if old && std::fs::remove_file(&b.file).is_ok() {
            tracing::info!(file = %b.file.display(), "removed an expired automatic backup");
            removed.push(b.file);
        }
    }
    removed
}

// ---- making a backup -------------------------------------------------------------------------

/// Back up `app` into `dir` (default: the home's `backups/`). The app may be running: SQLite is
/// copied with `VACUUM INTO`, `pg_dump` and `mariadb-dump --single-transaction` read one
/// snapshot; the data folder is copied as it is.
pub async fn write(
    home: &Home,
    config: &Config,
    app: &AppRecord,
    reason: Reason,
    dir: Option<&Path>,
    job: &Job,
) -> Result<BackupInfo, BackupError> {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home.backups_dir());
    std::fs::create_dir_all(&dir).map_err(io_err(format_args!("create {}", dir.display())))?;
    let created_at = crate::base::clock::now();
    let name = file_name(&app.name, &stamp_now(), reason);
    let target = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let staging = dir.join(format!(".staging-{}", crate::base::secret::random_hex(6)));
    private_dir(&staging)?;
    let result = write_in(home, app, reason, &created_at, &staging, &partial, job).await;
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &target).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        BackupError::io(
            format!("cannot move the archive to {}: {e}", target.display()),
            e,
        )
    })?;
    let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    tracing::info!(app = %app.name, file = %target.display(), reason = reason.as_str(), size, "backed up");
    if reason.automatic() {
        prune(home, config.backup_keep_days);
    }
    Ok(BackupInfo {
        file: target,
        name,
        app: app.name.clone(),
        reason: reason.as_str().into(),
        automatic: reason.automatic(),
        created_at,
        size,
    })
}

async fn write_in(
    home: &Home,
    app: &AppRecord,
    reason: Reason,
    created_at: &str,
    staging: &Path,
    partial: &Path,
    job: &Job,
) -> Result<(), BackupError> {
    let data_dir = home.app_dir(&app.name);
    job.step("dumping the database");
    let dump = dump(&app.db, staging).await?;
    // The dump holds the app's data (and its users' password hashes): readable by Hangar's
    // user only, in staging and in the archive's header alike (the tools make it 0644).
    if let Some(f) = dump.file() {
        use std::os::unix::fs::PermissionsExt;
        let f = staging.join(f);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(format_args!("make {} private", f.display())))?;
    }
    let manifest = Manifest {
        format: FORMAT,
        hangar_version: env!("CARGO_PKG_VERSION").into(),
        created_at: created_at.to_string(),
        reason,
        dump,
        app: Definition {
            name: app.name.clone(),
            display_name: app.display_name.clone(),
            start_mode: app.start_mode,
            port: app.port,
            domain: app.domain.clone(),
            pinned: app.pinned,
            idle_timeout: app.idle_timeout,
            memory_max: app.memory_max,
            nice: app.nice,
            runtime: app.runtime.clone(),
            command: app.command.clone(),
            env: app.env.clone(),
            app_key: app.app_key.clone(),
            last_version: app.last_version.clone(),
            db_method: app.db.method,
            db: app.db.describe(),
            db_schema: app.db.schema.clone(),
        },
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::io(format!("cannot write the manifest: {e}"), e))?;
    // The SQLite file (and its journal) travel as db.sqlite, not as part of the folder.
    let mut skip = Vec::new();
    if app.db.dialect() == Some(Dialect::Sqlite) {
        let f = sqlite_path(&app.db.url);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            skip.push(PathBuf::from(format!("{}{suffix}", f.display())));
        }
    }
    let db_file = dump.file().map(|f| (staging.join(f), f));
    let total = dir_size(&data_dir, &skip)
        + db_file
            .as_ref()
            .and_then(|(p, _)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .unwrap_or(0);
    job.set_total(total);
    job.step("archiving the data folder and the dump");
    let partial = partial.to_path_buf();
    let job2 = job.clone();
    tokio::task::spawn_blocking(move || {
        build_archive(
            &partial,
            &json,
            db_file.as_ref().map(|(p, n)| (p.as_path(), *n)),
            &data_dir,
            &skip,
            &job2,
        )
    })
    .await
    .map_err(|e| BackupError::io(format!("the archiving task failed: {e}"), e))?
    .map_err(io_err("write the archive"))
}

fn dir_size(dir: &Path, skip: &[PathBuf]) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| !skip.contains(&e.path()))
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path(), skip),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Counts what goes through it into the job's progress.
struct Counting<W> {
    inner: W,
    job: Job,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.job.add_bytes(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.job.add_bytes(n as u64);
        Ok(n)
    }
}

fn build_archive(
    partial: &Path,
    manifest: &[u8],
    db_file: Option<(&Path, &str)>,
    data_dir: &Path,
    skip: &[PathBuf],
    job: &Job,
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(partial)?;
    let gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(Counting {
        inner: gz,
        job: job.clone(),
    });
    tar.follow_symlinks(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest)?;
    if let Some((path, name)) = db_file {
        tar.append_path_with_name(path, name)?;
    }
    if data_dir.is_dir() {
        tar.append_dir("data", data_dir)?;
        append_tree(&mut tar, data_dir, Path::new("data"), skip)?;
    }
    let counting = tar.into_inner()?;
    let buffered = counting.inner.finish()?;
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    name: &Path,
    skip: &[PathBuf],
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if skip.contains(&path) {
            continue;
        }
        let entry_name = name.join(e.file_name());
        let t = e.file_type()?;
        if t.is_dir() {
            tar.append_dir(&entry_name, &path)?;
            append_tree(tar, &path, &entry_name, skip)?;
        } else if t.is_file() || t.is_symlink() {
            match tar.append_path_with_name(&path, &entry_name) {
                Ok(()) => {}
                // A file removed while the backup runs (a running app's temp file) is not an error.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        // Sockets and FIFOs are not data.
    }
    Ok(())
}

// ---- dumps -----------------------------------------------------------------------------------

/// Dump the app's database into `staging` (db.sqlite or db.sql).
async fn dump(db: &AppDb, staging: &Path) -> Result<DumpKind, BackupError> {
    match db.dialect() {
        Some(Dialect::Sqlite) => {
            let src = sqlite_path(&db.url);
            if !src.exists() {
                return Ok(DumpKind::None);
            }
            let out = staging.join("db.sqlite");
            sqlite_copy(&src, &out).await?;
            Ok(DumpKind::Sqlite)
        }
        Some(Dialect::Postgres) => {
            let env = db.env();
            let out = staging.join("db.sql");
            let mut cmd = tokio::process::Command::new(tool(&["pg_dump"], "postgresql-client")?);
            cmd.args(["--no-owner", "--no-privileges", "--format=plain", "--file"])
                .arg(&out);
            pg_conn_args(&mut cmd, &env);
            if let Some(s) = &db.schema {
                cmd.arg("--schema").arg(pg_quote(s));
            }
            run_tool(cmd, "pg_dump", None).await?;
            Ok(if db.schema.is_some() {
                DumpKind::PostgresSchema
            } else {
                DumpKind::Postgres
            })
        }
        Some(Dialect::Mysql) => {
            let env = db.env();
            let out = staging.join("db.sql");
            let mut cmd = tokio::process::Command::new(tool(
                &["mariadb-dump", "mysqldump"],
                "mariadb-client",
            )?);
            cmd.arg("--no-defaults");
            my_conn_args(&mut cmd, &env);
            cmd.args([
                "--single-transaction",
                "--no-tablespaces",
                "--skip-lock-tables",
                "--triggers",
            ])
            .arg(format!("--result-file={}", out.display()))
            .arg(env.get("DB_DATABASE").cloned().unwrap_or_default());
            run_tool(cmd, "mariadb-dump", None).await?;
            Ok(DumpKind::Mysql)
        }
        None => Err(BackupError::Refused(
            "cannot back up a unknown database".into(),
        )),
    }
}

/// `VACUUM INTO`: a consistent copy of a live SQLite database.
async fn sqlite_copy(src: &Path, out: &Path) -> Result<(), BackupError> {
    use sqlx::{ConnectOptions, Connection};
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(src)
        .busy_timeout(Duration::from_secs(30))
        .disable_statement_logging();
    let mut c = opts.connect().await.map_err(|e| {
        BackupError::Refused(format!(
            "cannot open the SQLite database {}: {e}",
            src.display()
        ))
    })?;
    let r = sqlx::query("VACUUM INTO ?")
        .bind(out.display().to_string())
        .execute(&mut c)
        .await;
    let _ = c.close().await;
    r.map(|_| ()).map_err(|e| {
        BackupError::Refused(format!(
            "copying the SQLite database {} failed: {e}",
            src.display()
        ))
    })
}

fn pg_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn pg_conn_args(
    cmd: &mut tokio::process::Command,
    env: &std::collections::BTreeMap<String, String>,
) {
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    cmd.arg("--host")
        .arg(get("DB_HOST"))
        .arg("--port")
        .arg(get("DB_PORT"))
        .arg("--username")
        .arg(get("DB_USER"))
        .arg("--dbname")
        .arg(get("DB_DATABASE"))
        .arg("--no-password")
        // The password travels in the environment, never on a command line `ps` shows.
        .env("PGPASSWORD", get("DB_PASSWORD"))
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "hangar-backup");
}

fn my_conn_args(
    cmd: &mut tokio::process::Command,
    env: &std::collections::BTreeMap<String, String>,
) {
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    cmd.arg("--protocol=TCP")
        .arg(format!("--host={}", get("DB_HOST")))
        .arg(format!("--port={}", get("DB_PORT")))
        .arg(format!("--user={}", get("DB_USER")))
        .env("MYSQL_PWD", get("DB_PASSWORD"));
}

/// A client program from PATH, or a clear message saying which package has it.
fn tool(names: &[&str], package: &str) -> Result<PathBuf, BackupError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(BackupError::Refused(format!(
        "{} is not installed; install the {package} package (scripts/install-deps.sh run does)",
        names[0]
    )))
}

/// Run a client program (stdin from `input` when given); its error output, shortened, on failure.
async fn run_tool(
    mut cmd: tokio::process::Command,
    what: &str,
    input: Option<&Path>,
) -> Result<(), BackupError> {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match input {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(io_err(format_args!("open {}", p.display())))?;
            cmd.stdin(Stdio::from(f));
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| BackupError::Refused(format!("cannot run {what}: {e}")))?;
    let out = match tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output()).await {
        Ok(r) => r.map_err(|e| BackupError::Refused(format!("{what}: {e}")))?,
        Err(_) => {
            return Err(BackupError::Refused(format!(
                "{what} did not finish within {} minutes",
                TOOL_TIMEOUT.as_secs() / 60
            )))
        }
    };
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let err: String = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    let short: String = err.chars().take(800).collect();
    Err(BackupError::Refused(format!(
        "{what} failed ({}): {short}",
        out.status
    )))
}

/// The longest line of a SQL dump read at once; a longer one refuses the restore (a dump line
/// is a statement or one row of a `COPY`).
const MAX_LINE: usize = 64 << 20;

/// What a restore does to a PostgreSQL plain dump before `psql` reads it: the first line puts
/// `psql` in restricted mode with a key of this restore's own (`\restrict KEY`), so no
/// backslash command the file holds (`\!`, `\o`, `\i`, `\copy`, …) runs, and no line of the
/// file can leave that mode without the key; the dump's own `\restrict`/`\unrestrict` lines
/// (pg_dump writes them since 13.22, 14.19, 15.14, 16.10 and 17.6) go. With `rename`
/// (`from`, `to`), a dump of schema `from` is made to load into schema `to` (which the restore
/// has already made): the `CREATE SCHEMA` line goes, and every reference to the schema outside
/// the data of `COPY` blocks is renamed; data lines are never touched.
pub fn prepare_pg_dump<R: std::io::BufRead, W: Write>(
    input: &mut R,
    output: &mut W,
    rename: Option<(&str, &str)>,
    key: &str,
) -> Result<(), BackupError> {
    use std::io::BufRead;
    let write_err = |e: std::io::Error| BackupError::io(format!("cannot write the dump: {e}"), e);
    writeln!(output, "\\restrict {key}").map_err(write_err)?;
    let create = rename.map(|(from, _)| {
        [
            format!("CREATE SCHEMA {from};"),
            format!("CREATE SCHEMA {};", pg_quote(from)),
        ]
    });
    let mut in_copy = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_err("read the dump"))?;
        if n == 0 {
            break;
        }
        if line.len() > MAX_LINE {
            return Err(BackupError::Refused(format!(
                "the dump holds a line longer than {} MiB; nothing was loaded",
                MAX_LINE >> 20
            )));
        }
        let bare = line.trim_ascii_end();
        if in_copy {
            if bare == b"\\." {
                in_copy = false;
            }
            output.write_all(&line).map_err(write_err)?;
            continue;
        }
        if bare.starts_with(b"\\restrict ") || bare.starts_with(b"\\unrestrict ") {
            continue;
        }
        if bare.starts_with(b"COPY ") && bare.ends_with(b"FROM stdin;") {
            in_copy = true;
        }
        match (rename, std::str::from_utf8(&line)) {
            (Some((from, to)), Ok(text)) => {
                let trimmed = text.trim_end();
                if create
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c == trimmed))
                {
                    continue;
                }
                let moved = if from == to {
                    text.to_string()
                } else {
                    rename_ident(text, from, to)
                };
                output.write_all(moved.as_bytes()).map_err(write_err)?;
            }
            _ => output.write_all(&line).map_err(write_err)?,
        }
    }
    output.flush().map_err(write_err)
}

/// Replace `from` where it stands as a whole identifier (plain or double-quoted). `from` is
/// never empty (the manifest's schema name is checked).
fn rename_ident(line: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return line.to_string();
    }
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + from.len()..].chars().next();
        let whole = !before.is_some_and(is_ident) && !after.is_some_and(is_ident);
        out.push_str(&rest[..i]);
        out.push_str(if whole { to } else { from });
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

// ---- reading an archive ----------------------------------------------------------------------

/// A folder made new for this process only (0700); one already there is refused.
pub fn private_dir(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(io_err(format_args!("create {}", path.display())))
}

/// A file made new (never through a path already there, a symbolic link included).
fn new_file(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// What an entry of an archive may be: a regular file or a folder; a link, a device or a FIFO
/// would reach outside what the restore makes.
fn plain_entry<R: Read>(entry: &tar::Entry<'_, R>, name: &Path) -> Result<bool, String> {
    use tar::EntryType;
    match entry.header().entry_type() {
        EntryType::Regular | EntryType::Continuous => Ok(false),
        EntryType::Directory => Ok(true),
        other => {
            let what = match other {
                EntryType::Symlink => "a symbolic link",
                EntryType::Link => "a hard link",
                EntryType::Char | EntryType::Block => "a device",
                EntryType::Fifo => "a FIFO",
                _ => "neither a file nor a folder",
            };
            Err(format!(
                "the entry {} is {what}; a Hangar backup holds only files and folders",
                name.display()
            ))
        }
    }
}

/// The manifest, which is the archive's first entry, checked field by field.
pub fn read_manifest(path: &Path) -> Result<Manifest, BackupError> {
    let not_ours = |why: String| {
        BackupError::Invalid(Invalid::new(
            "file",
            format!("{} is not a Hangar backup ({why}); a backup is a .tar.gz that `hangar backup` made", path.display()),
        ))
    };
    let f = std::fs::File::open(path).map_err(|e| {
        BackupError::Invalid(Invalid::new(
            "file",
            format!("cannot open {}: {e}", path.display()),
        ))
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut entries = archive.entries().map_err(|e| not_ours(e.to_string()))?;
    let first = entries
        .next()
        .ok_or_else(|| not_ours("it is empty".into()))?
        .map_err(|e| not_ours(e.to_string()))?;
    let name = first.path().map(|p| p.into_owned()).unwrap_or_default();
    if name != Path::new(MANIFEST) {
        return Err(not_ours(format!(
            "its first entry is {}, not {MANIFEST}",
            name.display()
        )));
    }
    if plain_entry(&first, &name).map_err(not_ours)? {
        return Err(not_ours(format!("{MANIFEST} is a folder")));
    }
    let mut text = String::new();
    first
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| not_ours(e.to_string()))?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| not_ours(format!("its manifest cannot be read: {e}")))?;
    if m.format > FORMAT {
        return Err(BackupError::Refused(format!(
            "{} was made by a newer Hangar (backup format {}; this one reads up to {FORMAT})",
            path.display(),
            m.format
        )));
    }
    m.check().map_err(BackupError::Invalid)?;
    Ok(m)
}

/// Unpack `data/…` into `data_dir` and the dump into `staging`; nothing lands outside them.
/// Every entry is a file or a folder, every file is made new (no path already there is
/// written through, no link followed), and all of it together is at most `max_bytes`
/// (`restore_max_bytes`): a small archive that inflates to fill the disk stops there.
pub fn extract(
    path: &Path,
    data_dir: &Path,
    staging: &Path,
    max_bytes: u64,
    job: &Job,
) -> Result<(), BackupError> {
    let f = std::fs::File::open(path).map_err(io_err(format_args!("open {}", path.display())))?;
    let reader = Counting {
        inner: f,
        job: job.clone(),
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let bad =
        |why: String| BackupError::Refused(format!("{} cannot be unpacked: {why}", path.display()));
    match std::fs::symlink_metadata(data_dir) {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err(bad(format!(
                "{} is not a folder Hangar made",
                data_dir.display()
            )))
        }
    }
    let mut left = max_bytes;
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let name = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let is_dir = plain_entry(&entry, &name).map_err(bad)?;
        if name == Path::new(MANIFEST) {
            continue;
        }
        let (dir, rel, mode) = if name == Path::new("db.sqlite") || name == Path::new("db.sql") {
            (staging, name.as_path(), 0o600)
        } else {
            let Ok(rel) = name.strip_prefix("data") else {
                return Err(bad(format!("unexpected entry {}", name.display())));
            };
            let mode = entry.header().mode().unwrap_or(0o600) & 0o777;
            (data_dir, rel, mode)
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad(format!(
                "the entry {} leaves the data folder",
                name.display()
            )));
        }
        if is_dir {
            folders_in(dir, rel, mode | 0o700).map_err(bad)?;
            continue;
        }
        if let Some(parent) = rel.parent() {
            folders_in(dir, parent, 0o700).map_err(bad)?;
        }
        let target = dir.join(rel);
        let mut file = new_file(&target, 0o600).map_err(|e| {
            bad(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} is there already (an entry comes twice)", name.display())
            } else {
                format!("cannot create {}: {e}", target.display())
            })
        })?;
        let n = std::io::copy(&mut (&mut entry).take(left.saturating_add(1)), &mut file)
            .map_err(|e| bad(format!("{}: {e}", name.display())))?;
        if n > left {
            return Err(BackupError::Refused(format!(
                "{} unpacks to more than {max_bytes} bytes, the most a restore writes (restore_max_bytes in hangar.toml); nothing was restored",
                path.display()
            )));
        }
        left -= n;
        if mode != 0o600 {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| bad(format!("{}: {e}", name.display())))?;
        }
    }
    Ok(())
}

/// Make the folders of `rel` under `root`, one component at a time: a component already there
/// must be a real folder (never a link); new ones get `mode`.
fn folders_in(root: &Path, rel: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} is there already and is not a folder",
                    at.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
                .mode(mode)
                .create(&at)
                .map_err(|e| format!("cannot create {}: {e}", at.display()))?,
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    Ok(())
}

/// `psql` must know restricted mode (`\restrict`), which keeps a dump's backslash commands
/// from running; an older client is refused rather than trusted with an archive.
async fn psql_restricts(psql: &Path) -> Result<(), BackupError> {
    let out = tokio::process::Command::new(psql)
        .arg("--help=commands")
        .env("PAGER", "cat")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .map_err(|_| BackupError::Refused("psql --help did not answer".into()))?
        .map_err(|e| BackupError::Refused(format!("cannot run psql: {e}")))?;
    if String::from_utf8_lossy(&out.stdout).contains("\\restrict") {
        Ok(())
    } else {
        Err(BackupError::Refused(format!(
            "{} has no restricted mode (\\restrict), which keeps the commands a dump may hold from running; install postgresql-client 13.22, 14.19, 15.14, 16.10, 17.6 or newer; nothing was loaded",
            psql.display()
        )))
    }
}

/// Whether the `mariadb` client has `--sandbox` (MariaDB 10.5.25, 10.6.18, 10.11.8, 11.0.6 and
/// later), which refuses every client command that reaches the file system or a shell.
async fn mariadb_sandbox(client: &Path) -> bool {
    let out = tokio::process::Command::new(client)
        .args(["--no-defaults", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), out).await {
        Ok(Ok(o)) => String::from_utf8_lossy(&o.stdout).contains("--sandbox"),
        _ => false,
    }
}

/// Load the staged dump into the app's new database. No dump runs through a client that would
/// execute the client commands it holds: `psql` reads it in restricted mode
/// ([`prepare_pg_dump`]), `mariadb` in `--binary-mode` (no client commands but `DELIMITER`)
/// and, where the client has it, `--sandbox`.
pub async fn load(db: &AppDb, manifest: &Manifest, staging: &Path) -> Result<(), BackupError> {
    match manifest.dump {
        DumpKind::None => Ok(()),
        DumpKind::Sqlite => {
            let target = sqlite_path(&db.url);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(io_err(format_args!("create {}", parent.display())))?;
            }
            let mut from = std::fs::File::open(staging.join("db.sqlite"))
                .map_err(io_err("open the staged database"))?;
            let mut to = new_file(&target, 0o600)
                .map_err(io_err(format_args!("create {}", target.display())))?;
            std::io::copy(&mut from, &mut to)
                .map_err(io_err(format_args!("write {}", target.display())))?;
            Ok(())
        }
        DumpKind::Postgres | DumpKind::PostgresSchema => {
            let rename = if manifest.dump == DumpKind::PostgresSchema {
                let (Some(from), Some(to)) = (&manifest.app.db_schema, &db.schema) else {
                    return Err(BackupError::Refused(
                        "this backup holds one PostgreSQL schema; restore it with --db schema"
                            .into(),
                    ));
                };
                Some((from.clone(), to.clone()))
            } else {
                None
            };
            let psql = tool(&["psql"], "postgresql-client")?;
            psql_restricts(&psql).await?;
            let key = crate::base::secret::random_hex(16);
            let (src, file) = (staging.join("db.sql"), staging.join("db.load.sql"));
            let out = file.clone();
            tokio::task::spawn_blocking(move || {
                let input = std::fs::File::open(&src).map_err(io_err("open the dump"))?;
                let output = new_file(&out, 0o600).map_err(io_err("write the dump"))?;
                let mut w = std::io::BufWriter::new(output);
                prepare_pg_dump(
                    &mut std::io::BufReader::new(input),
                    &mut w,
                    rename.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                    &key,
                )
            })
            .await
            .map_err(|e| BackupError::io(format!("the dump task failed: {e}"), e))??;
            let env = db.env();
            let mut cmd = tokio::process::Command::new(psql);
            cmd.args([
                "-X",
                "-q",
                "--single-transaction",
                "-v",
                "ON_ERROR_STOP=1",
                "--file",
            ])
            .arg(&file);
            pg_conn_args(&mut cmd, &env);
            run_tool(cmd, "psql (loading the dump)", None).await
        }
        DumpKind::Mysql => {
            let env = db.env();
            let client = tool(&["mariadb", "mysql"], "mariadb-client")?;
            let sandbox = mariadb_sandbox(&client).await;
            let mut cmd = tokio::process::Command::new(client);
            cmd.arg("--no-defaults");
            my_conn_args(&mut cmd, &env);
            cmd.arg("--batch").arg("--binary-mode");
            if sandbox {
                cmd.arg("--sandbox");
            }
            cmd.arg(format!(
                "--database={}",
                env.get("DB_DATABASE").cloned().unwrap_or_default()
            ));
            run_tool(
                cmd,
                "mariadb (loading the dump)",
                Some(&staging.join("db.sql")),
            )
            .await
        }
    }
}

// ---- the engine's operations -----------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_says_what_failed_and_keeps_why() {
        let e = io_err("open x")(std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "cannot open x: boom");
        let source = std::error::Error::source(&e).expect("the io error is kept");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "{source:?}"
        );
    }

    #[test]
    fn file_names_round_trip() {
        let n = file_name("shop-eu_2", "20250102T030405678Z", Reason::BeforeUpgrade);
        assert_eq!(n, "shop-eu_2.20250102T030405678Z.before-upgrade.tar.gz");
        let (a, s, r) = parse_file_name(&n).unwrap();
        assert_eq!((a.as_str(), r), ("shop-eu_2", Reason::BeforeUpgrade));
        assert_eq!(stamp_time(&s), "2025-01-02T03:04:05Z");
        assert!(parse_file_name("x.tar.gz").is_none());
        assert!(parse_file_name("a.b.nope.tar.gz").is_none());
    }

    fn prepared(sql: &str, rename: Option<(&str, &str)>) -> String {
        let mut out = Vec::new();
        prepare_pg_dump(&mut sql.as_bytes(), &mut out, rename, "k3y").unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn schema_dumps_move_to_the_new_schema_but_data_stays() {
        let sql = "CREATE SCHEMA hangar_a;\n\
                   CREATE TABLE hangar_a.notes (id integer DEFAULT nextval('hangar_a.notes_id_seq'::regclass));\n\
                   COPY hangar_a.notes (id, body) FROM stdin;\n\
                   1\tsee hangar_a.notes and hangar_ab\n\
                   \\.\n\
                   ALTER TABLE ONLY hangar_a.notes ADD CONSTRAINT notes_pkey PRIMARY KEY (id);\n\
                   SELECT x FROM hangar_ab.t;\n";
        let out = prepared(sql, Some(("hangar_a", "hangar_b")));
        assert!(!out.contains("CREATE SCHEMA"), "{out}");
        assert!(out.contains("CREATE TABLE hangar_b.notes"), "{out}");
        assert!(out.contains("nextval('hangar_b.notes_id_seq'"), "{out}");
        assert!(out.contains("COPY hangar_b.notes"), "{out}");
        assert!(
            out.contains("1\tsee hangar_a.notes and hangar_ab\n"),
            "data untouched: {out}"
        );
        assert!(out.contains("ALTER TABLE ONLY hangar_b.notes"), "{out}");
        assert!(
            out.contains("hangar_ab.t"),
            "another identifier is left alone: {out}"
        );
    }

    #[test]
    fn a_dump_is_read_in_restricted_mode_with_a_key_of_its_own() {
        let sql = "\\restrict pgdumpkey\nSELECT 1;\n\\! touch /tmp/x\n\\unrestrict pgdumpkey\n";
        let out = prepared(sql, None);
        assert!(out.starts_with("\\restrict k3y\n"), "{out}");
        assert!(!out.contains("pgdumpkey"), "the dump's own key goes: {out}");
        assert!(
            out.contains("\\! touch /tmp/x\n"),
            "left for psql to refuse: {out}"
        );
        // An empty name (never accepted in a manifest) cannot make the rename loop.
        assert_eq!(rename_ident("a.b", "", "x"), "a.b");
    }

    #[test]
    fn an_empty_schema_name_in_a_manifest_is_refused() {
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "format": 1, "hangar_version": "0.1.0", "created_at": "2025-01-01T00:00:00Z",
            "reason": "manual", "dump": "postgres-schema",
            "app": {
                "name": "a1", "display_name": "a1", "start_mode": "on-visit", "port": 14000,
                "domain": null, "pinned": false, "runtime": null, "env": {},
                "app_key": "0123456789abcdef0123456789abcdef", "last_version": null,
                "db_method": "schema", "db": "x", "db_schema": ""
            }
        }))
        .unwrap();
        let e = m.check().unwrap_err();
        assert_eq!(e.field, "db_schema", "{e}");
        assert!(e.message.contains("manifest"), "{e}");
    }
}
