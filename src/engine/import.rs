//! `hangar import nocobase --from URL [--dry-run]`: bring in the sub-apps of a NocoBase main
//! database's multi-app manager (its `applications` collection) as Hangar apps, each ATTACHED to
//! the database or schema it already has: never provisioned again, never dropped by Hangar.
//!
//! The `applications` collection (plugin-multi-app-manager): `name` (the key), `displayName`,
//! `cname` (custom domain), `pinned`, `status`, `options` (JSON). From `options`:
//! `autoStart` (true: start with the main app → `with-main`; else `on-visit`), `dbConnType`,
//! and `database` (connection options merged over the main app's: `dialect`, `host`, `port`,
//! `username`, `password`, `database`, `schema`, `storage`).
//!
//! Where a sub-app's data is, as NocoBase's own default places it when `options.database`
//! does not say otherwise: on PostgreSQL and MySQL/MariaDB a database named after the app on
//! the main database's server; in schema mode (`dbConnType` schema, or `options.database.schema`
//! given) a schema named after the app in the main database; on SQLite `<app>.sqlite` beside
//! the main database file. `dbConnType` is read loosely (`new_database`, `newDatabase`,
//! `database`; `new_schema`, `schema`; `new_connection`, `connection`), since its spelling is
//! not part of the documented collection; without it the kind follows from `options.database`.
//!
//! The imported apps run a NocoBase runtime, never the embedded demo (which would create its
//! own tables in NocoBase's databases): the runtime named by `--runtime`, else the main app's
//! when it is built on the `nocobase` preset, else the one runtime built on that preset. With
//! none, the import is refused and says what to add to `hangar.toml`. A sub-app on SQLite whose
//! file does not exist yet (it never started) is imported; NocoBase makes the file on its first
//! start, in a folder that must exist.
//!
//! Each row is reported as created, skipped (an app of that name exists with the same
//! definition, so a second run changes nothing) or conflicting (with the reason: an invalid
//! name, a name or domain taken by a different app, a database that cannot be reached). A dry
//! run makes the same checks and changes nothing.

use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{ConnectOptions, Connection, Row};

use crate::base::db::{sqlite_path, AppDb, DbMethod, Owned};
use crate::base::dialect::Dialect;
use crate::engine::{CreateApp, Engine, EngineError};
use crate::store::provision::server_reason;
use crate::store::registry::StartMode;

/// At most this many rows are read (a multi-app table is small; this bounds a wrong URL).
const MAX_ROWS: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The NocoBase main database: postgres://…, mysql://… (MariaDB too) or sqlite:///path.
    pub from: String,
    #[serde(default)]
    pub dry_run: bool,
    /// The runtime the imported apps run (default: the NocoBase one, see the module's doc).
    #[serde(default)]
    pub runtime: Option<String>,
}

impl ImportRequest {
    /// The check that needs only the request: `from` is a URL of a known dialect.
    pub fn check(&self) -> Result<(), crate::base::validate::Invalid> {
        if Dialect::of(&self.from).is_none() {
            return Err(crate::base::validate::Invalid::new(
                "from",
                "accepted: a postgres://, mysql:// (MariaDB too) or sqlite:///absolute/path URL of the NocoBase main database",
            ));
        }
        Ok(())
    }
}

/// One `applications` row and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportRow {
    pub name: String,
    pub display_name: String,
    pub start_mode: String,
    pub domain: Option<String>,
    pub pinned: bool,
    /// Where its data is (no password).
    pub db: String,
    /// Why it was skipped or conflicts.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportReport {
    /// The source, without its password.
    pub source: String,
    pub dry_run: bool,
    /// The runtime the imported apps run.
    #[serde(default)]
    pub runtime: String,
    pub rows: usize,
    /// Made (or, in a dry run, would be made).
    pub created: Vec<ImportRow>,
    pub skipped: Vec<ImportRow>,
    pub conflicts: Vec<ImportRow>,
}

/// A row as read from the table.
#[derive(Debug, Clone, Default)]
struct Source {
    name: String,
    display_name: Option<String>,
    cname: Option<String>,
    pinned: bool,
    options: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnType {
    Database,
    Schema,
    Connection,
}

fn conn_type(v: Option<&Value>) -> Result<Option<ConnType>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let s: String = v
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match s.as_str() {
        "newdatabase" | "database" | "db" => Ok(Some(ConnType::Database)),
        "newschema" | "schema" => Ok(Some(ConnType::Schema)),
        "newconnection" | "connection" | "url" => Ok(Some(ConnType::Connection)),
        _ => Err(format!(
            "options.dbConnType {v} is not understood; accepted: new_database, new_schema, new_connection"
        )),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Where a sub-app's data is: its attached database, built from the main database's URL and
/// the row's options as NocoBase would.
fn legacy_db(main: &str, app: &str, options: &Value) -> Result<AppDb, String> {
    let db = options.get("database").filter(|d| d.is_object());
    let field = |k: &str| text(db.and_then(|d| d.get(k)));
    let kind = match conn_type(options.get("dbConnType"))? {
        Some(k) => k,
        None if field("schema").is_some() => ConnType::Schema,
        None => ConnType::Database,
    };
    let main_dialect =
        Dialect::of(main).ok_or("the --from URL is not postgres://, mysql:// or sqlite:")?;
    let dialect = match field("dialect") {
        None => main_dialect,
        Some(name) => Dialect::named(&name).ok_or_else(|| {
            format!("options.database.dialect {name:?} is not PostgreSQL, MySQL/MariaDB or SQLite")
        })?,
    };
    if kind == ConnType::Connection && db.is_none() {
        return Err(
            "options.dbConnType is a new connection, but options.database gives no connection"
                .into(),
        );
    }
    if dialect == Dialect::Sqlite {
        let path = match field("storage") {
            Some(s) => std::path::PathBuf::from(s),
            None if main_dialect == Dialect::Sqlite => {
                let main_file = sqlite_path(main);
                main_file
                    .parent()
                    .unwrap_or(std::path::Path::new("/"))
                    .join(format!("{app}.sqlite"))
            }
            None => return Err("options.database says SQLite but gives no storage file".into()),
        };
        if !path.is_absolute() {
            return Err(format!(
                "its SQLite file {} is relative to NocoBase's folder; import from a main database whose sub-app files have absolute paths, or create the app by hand with --db sqlite:///absolute/path",
                path.display()
            ));
        }
        return Ok(AppDb {
            method: DbMethod::Url,
            url: format!("sqlite://{}", path.display()),
            schema: None,
            owned: Owned::default(),
        });
    }
    // PostgreSQL / MySQL: the main connection, with the row's own values over it.
    let mut url = if dialect == main_dialect {
        url::Url::parse(main).map_err(|e| format!("the --from URL cannot be read: {e}"))?
    } else {
        // PostgreSQL or MySQL here: SQLite returned above.
        url::Url::parse(&format!("{dialect}://localhost/"))
            .map_err(|e| format!("cannot build a URL: {e}"))?
    };
    if dialect == Dialect::Mysql && url.scheme() != "mysql" {
        let _ = url.set_scheme("mysql");
    }
    // The main URL's own query (sslmode, a search_path) is for the main app.
    url.set_query(None);
    if let Some(h) = field("host") {
        url.set_host(Some(&h))
            .map_err(|e| format!("options.database.host {h:?}: {e}"))?;
    }
    if let Some(p) = field("port") {
        let p: u16 = p
            .parse()
            .map_err(|_| format!("options.database.port {p:?} is not a port"))?;
        let _ = url.set_port(Some(p));
    }
    if let Some(u) = field("username") {
        let _ = url.set_username(&u);
    }
    if let Some(pw) = field("password") {
        let _ = url.set_password(Some(&pw));
    }
    let main_db = url.path().trim_start_matches('/').to_string();
    let (database, schema) = match kind {
        ConnType::Schema if dialect != Dialect::Postgres => {
            return Err("schema mode is PostgreSQL only, and this database is MySQL/MariaDB".into())
        }
        ConnType::Schema => (
            field("database").unwrap_or(main_db),
            Some(field("schema").unwrap_or_else(|| app.to_string())),
        ),
        _ => (
            field("database").unwrap_or_else(|| app.to_string()),
            field("schema"),
        ),
    };
    url.set_path(&format!("/{database}"));
    if let Some(s) = &schema {
        if dialect != Dialect::Postgres {
            return Err("options.database.schema is PostgreSQL only".into());
        }
        let encoded: String =
            url::form_urlencoded::byte_serialize(format!("-c search_path={s}").as_bytes())
                .collect();
        url.set_query(Some(&format!("options={}", encoded.replace('+', "%20"))));
    }
    Ok(AppDb {
        method: DbMethod::Url,
        url: url.to_string(),
        schema,
        owned: Owned::default(),
    })
}

// ---- reading the table -----------------------------------------------------------------------

fn columns_query(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'applications' AND table_schema = current_schema()",
        Dialect::Mysql => "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS WHERE TABLE_NAME = 'applications' AND TABLE_SCHEMA = DATABASE()",
        Dialect::Sqlite => "SELECT name FROM pragma_table_info('applications')",
    }
}

/// The rows query for the columns there are (`displayName`, or `display_name` when NocoBase ran
/// with DB_UNDERSCORED).
fn rows_query(dialect: Dialect, cols: &[String]) -> Result<String, String> {
    let has = |c: &str| cols.iter().any(|x| x == c);
    if !has("name") {
        return Err("it has no `applications` table with a `name` column: is it a NocoBase main database with the multi-app manager?".into());
    }
    let q = |c: &str| match dialect {
        Dialect::Mysql => format!("`{c}`"),
        Dialect::Postgres | Dialect::Sqlite => format!("\"{c}\""),
    };
    let as_text = |c: &str| match dialect {
        Dialect::Mysql => format!("CAST({} AS CHAR)", q(c)),
        Dialect::Postgres | Dialect::Sqlite => format!("CAST({} AS TEXT)", q(c)),
    };
    let opt = |c: &str| if has(c) { as_text(c) } else { "NULL".into() };
    let display = if has("displayName") {
        as_text("displayName")
    } else {
        opt("display_name")
    };
    let pinned = if has("pinned") {
        format!("CASE WHEN {} THEN 1 ELSE 0 END", q("pinned"))
    } else {
        "0".into()
    };
    Ok(format!(
        "SELECT {}, {display}, {}, CAST({pinned} AS {}), {} FROM applications ORDER BY {}",
        as_text("name"),
        opt("cname"),
        if dialect == Dialect::Mysql {
            "SIGNED"
        } else {
            "BIGINT"
        },
        opt("options"),
        q("name")
    ))
}

async fn read_table(url: &str) -> Result<Vec<Source>, String> {
    let dialect = Dialect::of(url)
        .ok_or("accepted: a postgres://, mysql:// (MariaDB too) or sqlite:///absolute/path URL")?;
    // One body for the three drivers: their rows decode alike for these casts.
    macro_rules! read {
        ($conn:expr) => {{
            let mut conn = $conn.map_err(|e| server_reason(&e, Some(url)))?;
            let r = async {
                let cols: Vec<String> = sqlx::query_scalar(columns_query(dialect))
                    .fetch_all(&mut conn)
                    .await
                    .map_err(|e| server_reason(&e, Some(url)))?;
                let sql = rows_query(dialect, &cols)?;
                let rows = sqlx::query(&sql)
                    .fetch_all(&mut conn)
                    .await
                    .map_err(|e| server_reason(&e, Some(url)))?;
                if rows.len() > MAX_ROWS {
                    return Err(format!(
                        "it has {} applications; at most {MAX_ROWS} are imported at once",
                        rows.len()
                    ));
                }
                rows.iter()
                    .map(|r| {
                        let t =
                            |i: usize| r.try_get::<Option<String>, _>(i).map_err(|e| e.to_string());
                        Ok(Source {
                            name: t(0)?.unwrap_or_default(),
                            display_name: t(1)?,
                            cname: t(2)?,
                            pinned: r
                                .try_get::<Option<i64>, _>(3)
                                .map_err(|e| e.to_string())?
                                .unwrap_or(0)
                                != 0,
                            options: t(4)?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
            }
            .await;
            let _ = conn.close().await;
            r
        }};
    }
    match dialect {
        Dialect::Postgres => {
            let o = sqlx::postgres::PgConnectOptions::from_str(url)
                .map_err(|e| server_reason(&e, Some(url)))?
                .disable_statement_logging();
            read!(o.connect().await)
        }
        Dialect::Mysql => {
            let u = url
                .strip_prefix("mariadb://")
                .map(|r| format!("mysql://{r}"))
                .unwrap_or(url.to_string());
            let o = sqlx::mysql::MySqlConnectOptions::from_str(&u)
                .map_err(|e| server_reason(&e, Some(url)))?
                .disable_statement_logging();
            read!(o.connect().await)
        }
        Dialect::Sqlite => {
            let path = sqlite_path(url);
            if !path.is_file() {
                return Err(format!("there is no SQLite file {}", path.display()));
            }
            let o = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .read_only(true)
                .disable_statement_logging();
            read!(o.connect().await)
        }
    }
}

/// Does the attached database answer, and is its schema there?
async fn reachable(db: &AppDb) -> Result<(), String> {
    if Dialect::of(&db.url) == Some(Dialect::Sqlite) {
        let file = sqlite_path(&db.url);
        if !file.exists() {
            // An app that never started: NocoBase makes its file on the first connect.
            return match file.parent() {
                Some(dir) if dir.is_dir() => Ok(()),
                _ => Err(format!(
                    "neither its SQLite file {} nor the folder it goes in exists",
                    file.display()
                )),
            };
        }
    }
    crate::store::provision::test_url(&db.url)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(s) = &db.schema {
        let o = sqlx::postgres::PgConnectOptions::from_str(&db.url)
            .map_err(|e| e.to_string())?
            .disable_statement_logging();
        let mut c = o
            .connect()
            .await
            .map_err(|e| server_reason(&e, Some(&db.url)))?;
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1")
                .bind(s)
                .fetch_optional(&mut c)
                .await
                .map_err(|e| server_reason(&e, Some(&db.url)))?;
        let _ = c.close().await;
        if found.is_none() {
            return Err(format!(
                "the schema {s} does not exist in {}",
                db.describe()
            ));
        }
    }
    Ok(())
}

impl Engine {
    /// Import a NocoBase main database's sub-apps (see the module's doc).
    pub async fn import_nocobase(
        self: &Arc<Self>,
        req: ImportRequest,
    ) -> Result<ImportReport, EngineError> {
        req.check()?;
        let runtime = import_runtime(
            &self.runtimes.all(),
            &self.config.main.runtime,
            req.runtime.as_deref(),
        )?;
        let source = crate::store::provision::redact(&req.from);
        let rows = read_table(&req.from).await.map_err(|why| {
            EngineError::Refused(format!(
                "cannot read the applications table at {source}: {why}"
            ))
        })?;
        let mut report = ImportReport {
            source,
            dry_run: req.dry_run,
            runtime: runtime.clone(),
            rows: rows.len(),
            created: Vec::new(),
            skipped: Vec::new(),
            conflicts: Vec::new(),
        };
        let mut domains_here: Vec<String> = Vec::new();
        for src in rows {
            let options: Value = match src.options.as_deref().filter(|s| !s.trim().is_empty()) {
                None => Value::Object(Default::default()),
                Some(s) => match serde_json::from_str(s) {
                    Ok(v) => v,
                    Err(e) => {
                        report.conflicts.push(row(
                            &src,
                            None,
                            None,
                            Some(format!("its options column is not JSON: {e}")),
                        ));
                        continue;
                    }
                },
            };
            let start_mode = if options
                .get("autoStart")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                StartMode::WithMain
            } else {
                StartMode::OnVisit
            };
            let req_app = CreateApp {
                name: src.name.clone(),
                display_name: src.display_name.clone(),
                start_mode: Some(start_mode),
                domain: src
                    .cname
                    .clone()
                    .filter(|c| !c.trim().is_empty())
                    .map(|c| c.trim().to_ascii_lowercase()),
                pinned: src.pinned,
                runtime: Some(runtime.clone()),
                ..CreateApp::default()
            };
            if let Err(e) = crate::base::validate::name(&src.name) {
                report.conflicts.push(row(
                    &src,
                    Some(start_mode),
                    None,
                    Some(format!("the name cannot be a Hangar app's: {}", e.message)),
                ));
                continue;
            }
            let db = match legacy_db(&req.from, &src.name, &options) {
                Ok(db) => db,
                Err(why) => {
                    report
                        .conflicts
                        .push(row(&src, Some(start_mode), None, Some(why)));
                    continue;
                }
            };
            let shown = db.describe();
            if let Ok(existing) = self.registry.get(&src.name).await {
                let display = req_app
                    .display_name
                    .clone()
                    .filter(|d| !d.trim().is_empty())
                    .unwrap_or_else(|| src.name.clone());
                let mut differs = Vec::new();
                if existing.db.url != db.url
                    || existing.db.schema != db.schema
                    || !existing.db.owned.is_empty()
                {
                    differs.push(format!("database {}", existing.db.describe()));
                }
                if existing.display_name != display {
                    differs.push(format!("display name {:?}", existing.display_name));
                }
                if existing.domain != req_app.domain {
                    differs.push(format!(
                        "domain {}",
                        existing.domain.as_deref().unwrap_or("none")
                    ));
                }
                if existing.pinned != req_app.pinned {
                    differs.push(format!("pinned {}", existing.pinned));
                }
                let existing_runtime = existing
                    .runtime
                    .clone()
                    .unwrap_or_else(|| self.config.main.runtime.clone());
                if existing_runtime != runtime {
                    differs.push(format!("runtime {existing_runtime}"));
                }
                if existing.start_mode != start_mode {
                    differs.push(format!("start mode {}", existing.start_mode.as_str()));
                }
                if differs.is_empty() {
                    report.skipped.push(row(
                        &src,
                        Some(start_mode),
                        Some(shown),
                        Some(
                            "already imported: an app of this name has the same definition".into(),
                        ),
                    ));
                } else {
                    report.conflicts.push(row(
                        &src,
                        Some(start_mode),
                        Some(shown),
                        Some(format!(
                            "the name is taken by a different app (it has {})",
                            differs.join(", ")
                        )),
                    ));
                }
                continue;
            }
            if let Some(d) = &req_app.domain {
                if domains_here.contains(d) {
                    report.conflicts.push(row(
                        &src,
                        Some(start_mode),
                        Some(shown),
                        Some(format!("the domain {d} is also another row's")),
                    ));
                    continue;
                }
            }
            if let Err(e) = self.check_create(&req_app).await {
                report.conflicts.push(row(
                    &src,
                    Some(start_mode),
                    Some(shown),
                    Some(e.to_string()),
                ));
                continue;
            }
            if let Err(why) = reachable(&db).await {
                report.conflicts.push(row(
                    &src,
                    Some(start_mode),
                    Some(shown),
                    Some(format!("its database cannot be used: {why}")),
                ));
                continue;
            }
            if !req.dry_run {
                if let Err(e) = self.attach(req_app.clone(), db).await {
                    report.conflicts.push(row(
                        &src,
                        Some(start_mode),
                        Some(shown),
                        Some(e.to_string()),
                    ));
                    continue;
                }
            }
            if let Some(d) = req_app.domain {
                domains_here.push(d);
            }
            report
                .created
                .push(row(&src, Some(start_mode), Some(shown), None));
        }
        tracing::info!(
            source = %report.source, dry_run = report.dry_run,
            created = report.created.len(), skipped = report.skipped.len(), conflicts = report.conflicts.len(),
            "NocoBase import"
        );
        Ok(report)
    }
}

/// The runtime imported apps run: the one named, else the main app's when it is a NocoBase
/// one, else the only runtime built on the `nocobase` preset.
fn import_runtime(
    runtimes: &std::collections::BTreeMap<String, crate::base::config::Runtime>,
    main: &str,
    named: Option<&str>,
) -> Result<String, EngineError> {
    use crate::base::validate::Invalid;
    if let Some(name) = named {
        return match runtimes.get(name) {
            Some(_) => Ok(name.to_string()),
            None => Err(EngineError::Invalid(Invalid::new(
                "runtime",
                format!(
                    "no runtime {name:?} in hangar.toml; accepted: {}",
                    runtimes.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))),
        };
    }
    let is_nocobase = |n: &String| {
        runtimes
            .get(n.as_str())
            .is_some_and(|r| r.preset.as_deref() == Some("nocobase"))
    };
    if is_nocobase(&main.to_string()) {
        return Ok(main.to_string());
    }
    let found: Vec<&String> = runtimes.keys().filter(|n| is_nocobase(n)).collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(EngineError::Invalid(Invalid::new(
            "runtime",
            "the imported apps need a NocoBase runtime, and hangar.toml has none (they would \
             otherwise run the demo app against NocoBase's databases): add [runtimes.nocobase] \
             with preset = \"nocobase\" and cwd = \"<the NocoBase app folder>\" (then `hangar \
             reload`), or name another runtime with --runtime",
        ))),
        many => Err(EngineError::Invalid(Invalid::new(
            "runtime",
            format!(
                "several runtimes are NocoBase ones ({}); name the one to use with --runtime",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))),
    }
}

fn row(
    src: &Source,
    mode: Option<StartMode>,
    db: Option<String>,
    reason: Option<String>,
) -> ImportRow {
    ImportRow {
        name: src.name.clone(),
        display_name: src.display_name.clone().unwrap_or_else(|| src.name.clone()),
        start_mode: mode.unwrap_or(StartMode::OnVisit).as_str().into(),
        domain: src.cname.clone().filter(|c| !c.is_empty()),
        pinned: src.pinned,
        db: db.unwrap_or_else(|| "-".into()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PG: &str = "postgres://nb:s3cret@db.local:5432/nocobase?sslmode=disable";

    #[test]
    fn default_places_follow_nocobase() {
        let d = legacy_db(PG, "a_shop", &json!({})).unwrap();
        assert_eq!(d.url, "postgres://nb:s3cret@db.local:5432/a_shop");
        assert!(d.owned.is_empty() && d.schema.is_none());
        let s = legacy_db(PG, "a_shop", &json!({"dbConnType": "new_schema"})).unwrap();
        assert_eq!(s.schema.as_deref(), Some("a_shop"));
        assert!(
            s.url
                .starts_with("postgres://nb:s3cret@db.local:5432/nocobase?options="),
            "{}",
            s.url
        );
        let f = legacy_db("sqlite:///srv/nb/storage/db/main.sqlite", "a1", &json!({})).unwrap();
        assert_eq!(f.url, "sqlite:///srv/nb/storage/db/a1.sqlite");
    }

    #[test]
    fn options_database_overrides_the_main_connection() {
        let d = legacy_db(
            PG,
            "a1",
            &json!({"dbConnType": "newConnection", "database": {"dialect": "mysql", "host": "other", "port": 3307, "username": "u", "password": "p@ss", "database": "legacy"}}),
        )
        .unwrap();
        assert_eq!(d.url, "mysql://u:p%40ss@other:3307/legacy");
        assert!(legacy_db(PG, "a1", &json!({"dbConnType": "new_connection"})).is_err());
        assert!(legacy_db(PG, "a1", &json!({"dbConnType": "weird"}))
            .unwrap_err()
            .contains("weird"));
        let rel = legacy_db(
            PG,
            "a1",
            &json!({"database": {"dialect": "sqlite", "storage": "storage/db/a1.sqlite"}}),
        );
        assert!(rel.unwrap_err().contains("relative"));
    }
}
