//! The demo's database: one connection pool through sqlx `Any` (SQLite, PostgreSQL or
//! MySQL/MariaDB), the versioned schema, and the notes.
//!
//! Schema versions:
//! - 1: `notes(id, body, created_at)` and `demo_meta(key, value)` holding `schema_version`;
//! - 2: adds `notes.author` (text, default '').
//!
//! Every step is written so that running it again after a half-finished run is harmless
//! (MySQL commits DDL at once, so a step there cannot be rolled back as a whole).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row};

use crate::output::out;

/// The longest note body and author name a note may have (the form and the API check both).
pub const MAX_BODY_CHARS: usize = 10_000;
pub const MAX_AUTHOR_CHARS: usize = 200;

/// The oldest and newest schema versions this binary knows how to build.
pub const MIN_SCHEMA: i64 = 1;
pub const MAX_SCHEMA: i64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Dialect::Sqlite),
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            _ => bail!(
                "DATABASE_URL has the scheme {scheme:?}; hangar-demo takes sqlite:, postgres:// or mysql://"
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// The n-th (1-based) bind parameter.
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite | Dialect::MySql => "?".to_string(),
        }
    }

    /// A quoted identifier.
    pub fn ident(self, name: &str) -> String {
        match self {
            Dialect::MySql => format!("`{}`", name.replace('`', "``")),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }
}

/// The database's schema is not the one this binary needs. `serve` exits with status 3.
#[derive(Debug)]
pub struct SchemaMismatch {
    pub found: i64,
    pub needed: i64,
}

impl fmt::Display for SchemaMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (found, needed) = (self.found, self.needed);
        if found < needed {
            write!(
                f,
                "database schema is version {found} but this hangar-demo needs {needed}; run 'hangar-demo upgrade'"
            )
        } else {
            write!(
                f,
                "database schema is version {found} but this hangar-demo needs {needed}; \
                 the database was upgraded by a newer hangar-demo, run that one"
            )
        }
    }
}

impl std::error::Error for SchemaMismatch {}

/// The database URL to use: `DATABASE_URL`, or a SQLite file in `HANGAR_DATA_DIR`.
/// A SQLite URL is made to create its file when missing (`mode=rwc`) unless it names a mode.
pub fn database_url() -> Result<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(with_sqlite_create(url.trim())),
        Ok(_) | Err(std::env::VarError::NotPresent) => default_sqlite_url(),
        Err(std::env::VarError::NotUnicode(_)) => bail!("DATABASE_URL is not valid UTF-8"),
    }
}

/// `HANGAR_DATA_DIR`, or `.` when unset or empty.
pub fn data_dir() -> String {
    match std::env::var("HANGAR_DATA_DIR") {
        Ok(dir) if !dir.is_empty() => dir,
        _ => ".".to_string(),
    }
}

fn with_sqlite_create(url: &str) -> String {
    if Dialect::from_url(url).ok() != Some(Dialect::Sqlite) || url.contains(":memory:") {
        return url.to_string();
    }
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    if query.split('&').any(|pair| pair.starts_with("mode=")) {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

fn default_sqlite_url() -> Result<String> {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create data folder {dir}"))?;
    let dir = std::path::absolute(&dir).with_context(|| format!("cannot resolve {dir}"))?;
    let file = dir.join("demo.sqlite");
    let file = file
        .to_str()
        .ok_or_else(|| anyhow!("the data folder path {} is not valid UTF-8", dir.display()))?;
    Ok(format!("sqlite://{}?mode=rwc", percent_encode_path(file)))
}

/// Percent-encodes everything in a file path but unreserved characters and `/`,
/// so spaces, `?`, `#` and `%` survive the trip through a URL.
fn percent_encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The URL with its password (if any) replaced by `***`, fit for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.split_once(':') {
        Some((user, _password)) => {
            format!("{}://{user}:***@{}", &url[..scheme_end], &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub id: i64,
    pub body: String,
    pub author: String,
    pub created_at: String,
}

pub struct Db {
    pool: AnyPool,
    pub dialect: Dialect,
    /// The schema version the queries are written for (set once the schema is checked).
    schema: i64,
}

impl Db {
    /// Opens a pool of at most 4 connections. With `DB_SCHEMA` set on PostgreSQL, every new
    /// connection starts with `SET search_path TO "<schema>"`.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let pg_schema = std::env::var("DB_SCHEMA").ok().filter(|s| !s.is_empty());
        let mut options = AnyPoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10));
        match (&pg_schema, dialect) {
            (Some(schema), Dialect::Postgres) => {
                let set = format!("SET search_path TO {}", Dialect::Postgres.ident(schema));
                options = options.after_connect(move |conn, _meta| {
                    let set = set.clone();
                    Box::pin(async move {
                        conn.execute(set.as_str()).await?;
                        Ok(())
                    })
                });
            }
            (Some(_), _) => out(format!(
                "note: DB_SCHEMA is only used with PostgreSQL; ignored for {}",
                dialect.name()
            )),
            (None, _) => {}
        }
        let pool = options.connect(url).await.with_context(|| {
            format!(
                "cannot connect to the {} database {}",
                dialect.name(),
                redact(url)
            )
        })?;
        let db = Db {
            pool,
            dialect,
            schema: 0,
        };
        if let (Some(schema), Dialect::Postgres) = (&pg_schema, dialect) {
            let found: i64 = sqlx::query_scalar::<Any, i64>(
                "SELECT COUNT(*) FROM pg_catalog.pg_namespace WHERE nspname = $1",
            )
            .bind(schema.clone())
            .fetch_one(&db.pool)
            .await
            .context("cannot look up the PostgreSQL schema named by DB_SCHEMA")?;
            if found == 0 {
                bail!("the PostgreSQL schema {schema:?} named by DB_SCHEMA does not exist");
            }
        }
        Ok(db)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Tells the note queries which schema version they run on.
    pub fn set_schema(&mut self, version: i64) {
        self.schema = version;
    }

    async fn count(&self, sql: &str) -> Result<i64> {
        sqlx::query_scalar::<Any, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .with_context(|| format!("query failed: {sql}"))
    }

    async fn table_exists(&self, table: &str) -> Result<bool> {
        let sql = match self.dialect {
            Dialect::Sqlite => format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            ),
            Dialect::Postgres => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '{table}'"
            ),
            Dialect::MySql => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
        };
        Ok(self.count(&sql).await? > 0)
    }

    async fn column_exists(&self, table: &str, column: &str) -> Result<bool> {
        let sql = match self.dialect {
            Dialect::Sqlite => format!(
                "SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'"
            ),
            Dialect::Postgres => format!(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = '{table}' AND column_name = '{column}'"
            ),
            Dialect::MySql => format!(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
                 AND table_name = '{table}' AND column_name = '{column}'"
            ),
        };
        Ok(self.count(&sql).await? > 0)
    }

    /// The installed schema version, or `None` for a database without the demo's tables.
    pub async fn schema_version(&self) -> Result<Option<i64>> {
        if !self.table_exists("demo_meta").await? {
            if self.table_exists("notes").await? {
                bail!("the database has a notes table but no demo_meta table; it was not made by hangar-demo");
            }
            return Ok(None);
        }
        let sql = format!(
            "SELECT {} FROM demo_meta WHERE {} = 'schema_version'",
            self.dialect.ident("value"),
            self.dialect.ident("key")
        );
        let row = sqlx::query(&sql)
            .fetch_optional(&self.pool)
            .await
            .context("cannot read the schema version from demo_meta")?;
        // No row: the first step stopped half-way; it is safe to run again.
        let Some(row) = row else { return Ok(None) };
        let value = text(&row, 0)?;
        let version = value
            .trim()
            .parse::<i64>()
            .with_context(|| format!("demo_meta holds schema_version {value:?}, not a number"))?;
        Ok(Some(version))
    }

    /// Applies the steps after `from` (0 = empty database) up to `to`, reporting each one.
    pub async fn migrate(&self, from: i64, to: i64, report: &dyn Fn(String)) -> Result<()> {
        for step in (from + 1)..=to {
            match step {
                1 => {
                    report(format!(
                        "schema step 1: create tables notes and demo_meta ({})",
                        self.dialect.name()
                    ));
                    self.step_1().await.context("schema step 1 failed")?;
                }
                2 => {
                    report("schema step 2: add column notes.author".to_string());
                    self.step_2().await.context("schema step 2 failed")?;
                }
                _ => bail!("hangar-demo knows no schema step {step}"),
            }
            report(format!("schema is now version {step}"));
        }
        Ok(())
    }

    async fn step_1(&self) -> Result<()> {
        let d = self.dialect;
        let (id, table_options) = match d {
            Dialect::Sqlite => ("id INTEGER PRIMARY KEY AUTOINCREMENT", ""),
            Dialect::Postgres => ("id BIGSERIAL PRIMARY KEY", ""),
            Dialect::MySql => (
                "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
                " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            ),
        };
        let notes = format!(
            "CREATE TABLE IF NOT EXISTS notes ({id}, body TEXT NOT NULL, \
             created_at VARCHAR(40) NOT NULL){table_options}"
        );
        let meta = format!(
            "CREATE TABLE IF NOT EXISTS demo_meta ({} VARCHAR(64) NOT NULL PRIMARY KEY, \
             {} VARCHAR(255) NOT NULL){table_options}",
            d.ident("key"),
            d.ident("value")
        );
        let version = format!(
            "INSERT INTO demo_meta ({}, {}) VALUES ('schema_version', '1')",
            d.ident("key"),
            d.ident("value")
        );
        let mut tx = self.pool.begin().await?;
        (&mut *tx).execute(notes.as_str()).await?;
        (&mut *tx).execute(meta.as_str()).await?;
        (&mut *tx).execute(version.as_str()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn step_2(&self) -> Result<()> {
        let d = self.dialect;
        let column_type = match d {
            Dialect::Sqlite | Dialect::Postgres => "TEXT",
            Dialect::MySql => "VARCHAR(255)",
        };
        let has_author = self.column_exists("notes", "author").await?;
        let version = format!(
            "UPDATE demo_meta SET {} = '2' WHERE {} = 'schema_version'",
            d.ident("value"),
            d.ident("key")
        );
        let mut tx = self.pool.begin().await?;
        if !has_author {
            let alter =
                format!("ALTER TABLE notes ADD COLUMN author {column_type} NOT NULL DEFAULT ''");
            (&mut *tx).execute(alter.as_str()).await?;
        }
        (&mut *tx).execute(version.as_str()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` notes, newest first.
    pub async fn list_notes(&self, limit: i64) -> Result<Vec<Note>> {
        let columns = if self.schema >= 2 {
            "id, body, created_at, author"
        } else {
            "id, body, created_at"
        };
        let sql = format!("SELECT {columns} FROM notes ORDER BY id DESC LIMIT {limit}");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .context("cannot read notes")?;
        rows.iter()
            .map(|row| {
                Ok(Note {
                    id: row.try_get::<i64, _>(0)?,
                    body: text(row, 1)?,
                    created_at: text(row, 2)?,
                    author: if self.schema >= 2 {
                        text(row, 3)?
                    } else {
                        String::new()
                    },
                })
            })
            .collect()
    }

    /// Stores a note (the author only where the schema has the column) and returns it.
    pub async fn add_note(&self, body: &str, author: &str) -> Result<Note> {
        let d = self.dialect;
        let created_at = now_utc();
        let with_author = self.schema >= 2;
        let (columns, values) = if with_author {
            (
                "body, created_at, author",
                format!("{}, {}, {}", d.param(1), d.param(2), d.param(3)),
            )
        } else {
            (
                "body, created_at",
                format!("{}, {}", d.param(1), d.param(2)),
            )
        };
        let mut sql = format!("INSERT INTO notes ({columns}) VALUES ({values})");
        if d != Dialect::MySql {
            sql.push_str(" RETURNING id");
        }
        let mut query = sqlx::query(&sql)
            .bind(body.to_string())
            .bind(created_at.clone());
        if with_author {
            query = query.bind(author.to_string());
        }
        let id = if d == Dialect::MySql {
            let done = query
                .execute(&self.pool)
                .await
                .context("cannot store the note")?;
            done.last_insert_id()
                .ok_or_else(|| anyhow!("the database did not report the new note's id"))?
        } else {
            let row = query
                .fetch_one(&self.pool)
                .await
                .context("cannot store the note")?;
            row.try_get::<i64, _>(0)?
        };
        Ok(Note {
            id,
            body: body.to_string(),
            author: if with_author {
                author.to_string()
            } else {
                String::new()
            },
            created_at,
        })
    }
}

/// A text column, also when the driver hands it over as bytes (MySQL `TEXT` through `Any`).
fn text(row: &AnyRow, index: usize) -> Result<String> {
    match row.try_get::<String, _>(index) {
        Ok(text) => Ok(text),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(index)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_utc(secs)
}

fn format_utc(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Works in 400-year eras of 146,097 days, with years starting on March 1st so that
/// the leap day falls at the end of a year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(format_utc(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(with_sqlite_create("sqlite:a.db"), "sqlite:a.db?mode=rwc");
        assert_eq!(
            with_sqlite_create("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            with_sqlite_create("sqlite:a.db?mode=ro"),
            "sqlite:a.db?mode=ro"
        );
        assert_eq!(with_sqlite_create("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(with_sqlite_create("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn encodes_paths_and_redacts_passwords() {
        assert_eq!(percent_encode_path("/a b/c%#?.db"), "/a%20b/c%25%23%3F.db");
        assert_eq!(
            redact("postgres://user:secret@127.0.0.1:5432/db"),
            "postgres://user:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact("mysql://root@host/db"), "mysql://root@host/db");
        assert_eq!(redact("sqlite:///x/y.db"), "sqlite:///x/y.db");
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(Dialect::Postgres.ident("te\"st"), "\"te\"\"st\"");
        assert_eq!(Dialect::MySql.ident("ke`y"), "`ke``y`");
    }
}
