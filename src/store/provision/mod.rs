//! The provisioner: makes each app's database on create and drops what it made on
//! `delete --drop-db`. The three methods of `--db` (docs/contracts.md):
//!
//! - **new database** (`--db new-database`, the default): without a data service, a SQLite file
//!   in the app's folder; on PostgreSQL or MySQL/MariaDB, `CREATE DATABASE` and a role/user of the
//!   app's own with a generated password that owns it. When the data service's account may not
//!   create roles/users, the database is made and used through the service account, and the
//!   create answer says so.
//! - **schema mode** (`--db schema`, PostgreSQL only): `CREATE SCHEMA` in the data service's
//!   database, owned by a role of the app's own; the app gets `DB_SCHEMA` and a `DATABASE_URL`
//!   whose `options=-c search_path=<schema>` selects it.
//! - **new connection** (`--db <URL>`): a PostgreSQL, MySQL/MariaDB or SQLite URL the operator
//!   gives; connected to and asked `SELECT 1` before it is saved; recorded as attached.
//!
//! Identifiers: one mapping, [`identifier`]: `hangar_` + the app name with `-` read as `_`
//! (`shop-eu` → `hangar_shop_eu`), used for the database, the role/user and the schema alike, and
//! always quoted. Two names that map to the same identifier (`a1-b`, `a1_b`) are refused.
//!
//! Invariants: the rights a method needs are checked, and the objects it would make are looked
//! for, before anything is created; every object made is remembered, and a failure at any later
//! step drops them again in reverse order, so a failed create leaves nothing behind. Only what
//! [`Owned`] records is ever dropped; an attached database never is. Statement logging is off on
//! every connection made here and errors never carry a password, so passwords stay in the
//! registry alone. A refusal's message is the server's reason in Hangar's words; the sqlx error
//! behind it, when there is one, is kept as its `source` (the driver's or server's own error,
//! which names no URL).
//!
//! Layout: this file holds the request, the outcome, the undo and the steps every server shares;
//! each server is a [`Server`] in a file of its own (`postgres.rs`, `mysql.rs`), and SQLite,
//! which is only ever attached, has its checks in `sqlite.rs`.

use std::path::Path;
use std::time::Duration;

use sqlx::ConnectOptions;

use crate::base::db::{AppDb, DbMethod, Owned};
use crate::base::dialect::Dialect;
use crate::base::validate::Invalid;

mod mysql;
mod postgres;
mod sqlite;

use mysql::Mysql;
use postgres::Postgres;

/// Every identifier Hangar makes on a data service starts with this.
pub const PREFIX: &str = "hangar_";

/// How long a connection to a data service or an attached database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The one mapping from an app name to the database, role/user and schema names made for it:
/// `hangar_` + the name with `-` read as `_`. App names are lowercase letters, digits, `_` and
/// `-` (at most 40), so the result is at most 47 plain characters; it is quoted anyway.
pub fn identifier(app: &str) -> String {
    format!("{PREFIX}{}", app.replace('-', "_"))
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The operator's input is not accepted.
    #[error("{0}")]
    Invalid(Invalid),
    /// The name, or an object of the same identifier, is taken.
    #[error("{0}")]
    Conflict(Invalid),
    /// A right is missing, a server refused, a step failed (and was undone). `source` is the
    /// sqlx error behind it, when a server or the driver gave one.
    #[error("{message}")]
    Refused {
        message: String,
        #[source]
        source: Option<sqlx::Error>,
    },
}

impl ProvisionError {
    /// A refusal with no error behind it (a right missing, a name taken).
    fn refused(message: String) -> Self {
        ProvisionError::Refused {
            message,
            source: None,
        }
    }
}

impl From<ServerError> for ProvisionError {
    /// The refusal that says the reason alone.
    fn from(e: ServerError) -> Self {
        e.refused(str::to_string)
    }
}

/// Why a step on a database server failed: the reason shown, and the sqlx error behind it when
/// there is one. The reason is the server's own message (not sqlx's wrapping), with the password
/// of the URL connected to, if any, replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ServerError {
    reason: String,
    #[source]
    source: Option<sqlx::Error>,
}

impl ServerError {
    /// A reason of Hangar's own (a timeout, a URL that cannot be read): no error behind it.
    fn new(reason: impl Into<String>) -> Self {
        ServerError {
            reason: reason.into(),
            source: None,
        }
    }

    /// sqlx's error from a server or the driver; `url` is the one connected to, whose password
    /// is kept out of the reason.
    fn sqlx(e: sqlx::Error, url: Option<&str>) -> Self {
        ServerError {
            reason: server_reason(&e, url),
            source: Some(e),
        }
    }

    /// The refusal whose message `message` makes of this reason; the sqlx error stays its source.
    fn refused(self, message: impl FnOnce(&str) -> String) -> ProvisionError {
        ProvisionError::Refused {
            message: message(&self.reason),
            source: self.source,
        }
    }
}

/// What a create asked for.
pub struct Request<'a> {
    pub name: &'a str,
    /// `--db`: `new-database` (also when absent), `schema`, or a connection URL.
    pub method: Option<&'a str>,
    /// `[data_service] url` from hangar.toml.
    pub data_service: Option<&'a str>,
    pub data_dir: &'a Path,
    /// The names of the apps there are.
    pub others: &'a [String],
}

/// What was made, and what the operator should know about it (e.g. "uses the service account").
#[derive(Debug)]
pub struct Provisioned {
    pub db: AppDb,
    pub notices: Vec<String>,
}

/// A data service Hangar provisions on (PostgreSQL, MySQL/MariaDB): one connection to it, and
/// what the common steps (look, wait, make, undo, drop) ask of it. Schema mode is PostgreSQL's
/// alone ([`postgres::new_schema`]).
trait Server: Sized {
    /// Connect with statement logging off, giving up after [`CONNECT_TIMEOUT`]; the error is
    /// the server's reason, without the password.
    async fn connect(url: &str) -> Result<Self, ServerError>;
    async fn close(self);
    /// One statement.
    async fn run(&mut self, sql: &str) -> Result<(), sqlx::Error>;
    /// The objects of identifier `id` there now, as [`existing`] reports them.
    async fn existing(&mut self, id: &str) -> Result<Vec<String>, ServerError>;
    /// How many other sessions run a statement naming `id`.
    async fn busy(&mut self, id: &str) -> Result<i64, ServerError>;
    /// What a create cut short made: the objects of `id` in `now` (from [`Server::existing`])
    /// that were not in `existed`.
    fn unfinished(id: &str, now: &[String], existed: &[String]) -> Owned;
    /// What `owned` records, in creation order (so [`undo`] drops it in reverse).
    fn made(owned: &Owned) -> Vec<Made>;
    /// `--db new-database`: the rights checked, the database (and the app's own role or user)
    /// made, undone on failure.
    async fn new_database(
        &mut self,
        service: &str,
        id: &str,
    ) -> Result<Provisioned, ProvisionError>;
}

/// Make the app's database as asked; on failure nothing is left behind.
pub async fn provision(req: &Request<'_>) -> Result<Provisioned, ProvisionError> {
    let id = identifier(req.name);
    if let Some(other) = req
        .others
        .iter()
        .find(|o| o.as_str() != req.name && identifier(o) == id)
    {
        return Err(ProvisionError::Conflict(Invalid::new(
            "name",
            format!(
                "{:?} and the existing app {other:?} map to the same database name {id:?} (hangar_<name>, with '-' read as '_'); choose another name",
                req.name
            ),
        )));
    }
    let method = req.method.unwrap_or("new-database");
    let service = req.data_service;
    let done = match (method, service.and_then(Dialect::of)) {
        ("new-database", None) => Provisioned {
            db: AppDb::sqlite_file(req.data_dir),
            notices: Vec::new(),
        },
        ("new-database", Some(Dialect::Postgres)) => {
            new_database::<Postgres>(service.unwrap_or(""), &id).await?
        }
        ("new-database", Some(_)) => new_database::<Mysql>(service.unwrap_or(""), &id).await?,
        ("schema", Some(Dialect::Postgres)) => postgres::new_schema(service.unwrap_or(""), &id).await?,
        ("schema", Some(_)) => {
            return Err(ProvisionError::Invalid(Invalid::new(
                "db",
                "schema mode is PostgreSQL only, and the data service is MySQL/MariaDB (where a schema is a database); use --db new-database",
            )))
        }
        ("schema", None) => {
            return Err(ProvisionError::Invalid(Invalid::new(
                "db",
                "schema mode needs a PostgreSQL data service ([data_service] url = \"postgres://…\" in hangar.toml); without one every app gets its own SQLite file (--db new-database)",
            )))
        }
        (url, _) if Dialect::of(url).is_some() => attach(url).await?,
        (other, _) => {
            let shown = if other.contains("://") {
                "this URL".to_string()
            } else {
                format!("{other:?}")
            };
            return Err(ProvisionError::Invalid(Invalid::new(
                "db",
                format!("{shown} is not accepted; accepted: new-database, schema, or a postgres://, mysql:// or sqlite: URL"),
            )));
        }
    };
    tracing::info!(app = %req.name, method = done.db.method.as_str(), db = %done.db.describe(), "database ready");
    Ok(done)
}

async fn new_database<S: Server>(service: &str, id: &str) -> Result<Provisioned, ProvisionError> {
    let mut conn = S::connect(service).await.map_err(cannot_reach(service))?;
    let r = conn.new_database(service, id).await;
    conn.close().await;
    r
}

/// The objects of identifier `id` on the data service now: `database`, `role`, `schema` on
/// PostgreSQL; `database` and `user@host` on MySQL. Written into the journal before a create
/// begins, so a create cut short by a crash is undone without touching what was there before.
pub async fn existing(service: &str, id: &str) -> Result<Vec<String>, ServerError> {
    match Dialect::of(service) {
        Some(Dialect::Postgres) => existing_on::<Postgres>(service, id).await,
        Some(Dialect::Mysql) => existing_on::<Mysql>(service, id).await,
        _ => Ok(Vec::new()),
    }
}

async fn existing_on<S: Server>(service: &str, id: &str) -> Result<Vec<String>, ServerError> {
    let mut conn = S::connect(service).await?;
    let found = conn.existing(id).await?;
    conn.close().await;
    Ok(found)
}

/// Wait (up to 60 s) until no other session on the data service runs a statement naming `id`.
async fn wait_until_quiet<S: Server>(service: &str, id: &str) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut conn = S::connect(service).await?;
        let busy = conn.busy(id).await?;
        conn.close().await;
        if busy == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ServerError::new(format!(
                "statements naming {id} are still running on the data service after 60 s"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Undo a create cut short: drop the objects of identifier `id` that exist now but did not
/// before it began (`existed`). Returns what was dropped.
pub async fn drop_unfinished(
    service: &str,
    id: &str,
    existed: &[String],
) -> Result<Vec<String>, ProvisionError> {
    match Dialect::of(service) {
        Some(Dialect::Postgres) => drop_unfinished_on::<Postgres>(service, id, existed).await,
        Some(Dialect::Mysql) => drop_unfinished_on::<Mysql>(service, id, existed).await,
        _ => Ok(Vec::new()),
    }
}

async fn drop_unfinished_on<S: Server>(
    service: &str,
    id: &str,
    existed: &[String],
) -> Result<Vec<String>, ProvisionError> {
    // A statement the dead engine sent (CREATE DATABASE copying its template, say) goes on in
    // the server after its client is gone: let it finish before looking, or its object would
    // appear after the undo.
    wait_until_quiet::<S>(service, id).await?;
    let now = existing_on::<S>(service, id).await?;
    let db = AppDb {
        method: DbMethod::NewDatabase,
        url: service.to_string(),
        schema: None,
        owned: S::unfinished(id, &now, existed),
    };
    drop_owned(&db, Some(service)).await
}

/// Is `kind` in `now` and not in `existed`?
fn appeared(kind: &str, now: &[String], existed: &[String]) -> bool {
    now.iter().any(|k| k == kind) && !existed.iter().any(|k| k == kind)
}

/// Does this database have objects on a server that `--drop-db` must drop?
pub fn owns_server_objects(db: &AppDb) -> bool {
    db.owned.database.is_some() || db.owned.role.is_some() || db.owned.schema.is_some()
}

/// Checks, without touching any server, that `drop_owned` can reach where the objects were made:
/// the data service in hangar.toml must still be the server (and, for a schema, the database)
/// the app's URL points at.
pub fn check_drop(app: &str, db: &AppDb, data_service: Option<&str>) -> Result<(), ProvisionError> {
    if !owns_server_objects(db) {
        return Ok(());
    }
    let Some(service) = data_service else {
        return Err(ProvisionError::refused(format!(
            "{app}'s database {} was made on a data service, but hangar.toml has no [data_service] now; put it back to drop the database, or delete without --drop-db",
            db.describe()
        )));
    };
    let (Ok(s), Ok(a)) = (url::Url::parse(service), url::Url::parse(&db.url)) else {
        return Err(ProvisionError::refused(format!(
            "cannot read {app}'s database URL or the data service URL; nothing was dropped"
        )));
    };
    let dialect = Dialect::of(service);
    let default_port = dialect.and_then(Dialect::default_port);
    let same_server = dialect == Dialect::of(&db.url)
        && s.host_str() == a.host_str()
        && s.port_or_known_default().or(default_port) == a.port_or_known_default().or(default_port);
    let same_db = db.owned.schema.is_none() || s.path() == a.path();
    if !same_server || !same_db {
        return Err(ProvisionError::refused(format!(
            "{app}'s database {} was made on another data service than the one hangar.toml names now; put that one back to drop it, or delete without --drop-db",
            db.describe()
        )));
    }
    Ok(())
}

/// Drop exactly what [`Owned`] records on the data service (schema or database, then role or
/// user); a SQLite file is the engine's to remove with the app's folder. Returns what was
/// dropped, for the delete report.
pub async fn drop_owned(
    db: &AppDb,
    data_service: Option<&str>,
) -> Result<Vec<String>, ProvisionError> {
    if !owns_server_objects(db) {
        return Ok(Vec::new());
    }
    let service = data_service.unwrap_or("");
    match Dialect::of(service) {
        Some(Dialect::Postgres) => drop_owned_on::<Postgres>(service, &db.owned).await,
        Some(Dialect::Mysql) => drop_owned_on::<Mysql>(service, &db.owned).await,
        _ => Err(ProvisionError::refused(
            "no PostgreSQL or MySQL data service in hangar.toml to drop the database on".into(),
        )),
    }
}

async fn drop_owned_on<S: Server>(
    service: &str,
    owned: &Owned,
) -> Result<Vec<String>, ProvisionError> {
    let made = S::made(owned);
    let mut conn = S::connect(service).await.map_err(|why| {
        why.refused(|why| {
            format!(
                "cannot reach the data service to drop the database: {why}; nothing was dropped"
            )
        })
    })?;
    let r = undo(&mut conn, &made).await;
    conn.close().await;
    r?;
    // `made` is in creation order; report in drop order.
    Ok(made.iter().rev().map(Made::describe).collect())
}

// ---- what was made, and how to undo it -------------------------------------------------------

#[derive(Debug, Clone)]
enum Made {
    PgRole(String),
    PgDatabase(String),
    PgSchema(String),
    MyUser { user: String, host: String },
    MyDatabase(String),
}

impl Made {
    fn describe(&self) -> String {
        match self {
            Made::PgRole(r) => format!("PostgreSQL role {r}"),
            Made::PgDatabase(d) => format!("PostgreSQL database {d}"),
            Made::PgSchema(s) => format!("PostgreSQL schema {s}"),
            Made::MyUser { user, host } => format!("MySQL user '{user}'@'{host}'"),
            Made::MyDatabase(d) => format!("MySQL database {d}"),
        }
    }

    fn drop_sql(&self) -> String {
        match self {
            // What the role owns or was granted in the service's database first (schema mode:
            // CREATE on that database, schemas it made itself), or the role cannot be dropped.
            Made::PgRole(r) => format!(
                "DO $hangar$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {name}) \
                 THEN EXECUTE {drop_owned}; END IF; END $hangar$; DROP ROLE IF EXISTS {role}",
                name = postgres::sql_string(r),
                drop_owned = postgres::sql_string(&format!("DROP OWNED BY {}", postgres::ident(r))),
                role = postgres::ident(r)
            ),
            Made::PgDatabase(d) => format!("DROP DATABASE IF EXISTS {}", postgres::ident(d)),
            Made::PgSchema(s) => format!("DROP SCHEMA IF EXISTS {} CASCADE", postgres::ident(s)),
            Made::MyUser { user, host } => {
                format!("DROP USER IF EXISTS {}", mysql::account(user, host))
            }
            Made::MyDatabase(d) => format!("DROP DATABASE IF EXISTS {}", mysql::ident(d)),
        }
    }
}

/// Drop `made` in reverse order; every step is tried, and the failures are reported together
/// (the first one's sqlx error is the source).
async fn undo<S: Server>(conn: &mut S, made: &[Made]) -> Result<(), ServerError> {
    let mut failed = Vec::new();
    let mut first = None;
    for m in made.iter().rev() {
        if let Err(e) = conn.run(&m.drop_sql()).await {
            failed.push(format!("{}: {}", m.describe(), server_reason(&e, None)));
            first.get_or_insert(e);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ServerError {
            reason: format!("could not drop {}", failed.join("; ")),
            source: first,
        })
    }
}

/// The message for a step that failed after `made` was created: undo, and say how that went.
/// The step's own sqlx error is the source.
fn failed_step(
    step: &str,
    why: ServerError,
    undone: Result<(), ServerError>,
    made: &[Made],
) -> ProvisionError {
    let after = match (made.is_empty(), undone) {
        (true, _) => "nothing was created".to_string(),
        (false, Ok(())) => format!(
            "what was made before ({}) was dropped again; nothing was left behind",
            made.iter()
                .map(Made::describe)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (false, Err(e)) => {
            format!("undoing what was made before also failed ({e}); drop it by hand")
        }
    };
    why.refused(|why| format!("{step} failed: {why}; {after}"))
}

fn left_over(kind: &str, id: &str) -> ProvisionError {
    ProvisionError::Conflict(Invalid::new(
        "name",
        format!(
            "the data service already has a {kind} named {id} (left by an app deleted without --drop-db, or made by hand); drop it there or choose another name; nothing was created"
        ),
    ))
}

/// The message for a data service that cannot be reached before anything was made.
fn cannot_reach(service: &str) -> impl Fn(ServerError) -> ProvisionError + '_ {
    move |why| {
        why.refused(|why| {
            format!(
                "cannot reach the data service {}: {why}; nothing was created",
                redact(service)
            )
        })
    }
}

fn set_credentials(url: &mut url::Url, user: &str, password: &str) {
    // Both are plain [a-z0-9_]; these cannot fail on a URL with a host.
    let _ = url.set_username(user);
    let _ = url.set_password(Some(password));
}

/// Connect, giving up after [`CONNECT_TIMEOUT`]; the error is the server's reason.
async fn connect_within<O>(opts: O, url: &str) -> Result<O::Connection, ServerError>
where
    O: ConnectOptions,
    O::Connection: Sized,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Ok(c) => c.map_err(|e| ServerError::sqlx(e, Some(url))),
        Err(_) => Err(ServerError::new(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

// ---- new connection --------------------------------------------------------------------------

/// The "Test connection" button: connect and `SELECT 1`, nothing is made or saved.
pub async fn test_url(url: &str) -> Result<(), ProvisionError> {
    attach(url).await.map(|_| ())
}

/// Connect, `SELECT 1`, then close.
async fn select_one<S: Server>(url: &str) -> Result<(), ServerError> {
    let mut conn = S::connect(url).await?;
    let r = conn
        .run("SELECT 1")
        .await
        .map_err(|e| ServerError::sqlx(e, Some(url)));
    conn.close().await;
    r
}

/// Test an operator's URL (connect, `SELECT 1`) and record it as attached.
async fn attach(url: &str) -> Result<Provisioned, ProvisionError> {
    let invalid = |m: String| ProvisionError::Invalid(Invalid::new("db", m));
    let shown = redact(url);
    let test: Result<(), ServerError> = match Dialect::of(url) {
        Some(Dialect::Sqlite) => sqlite::select_one(sqlite::options(url)?, url).await,
        Some(Dialect::Postgres) => {
            url::Url::parse(url)
                .map_err(|e| invalid(format!("the --db URL cannot be read: {e}")))?;
            select_one::<Postgres>(url).await
        }
        _ => {
            url::Url::parse(url)
                .map_err(|e| invalid(format!("the --db URL cannot be read: {e}")))?;
            select_one::<Mysql>(url).await
        }
    };
    test.map_err(|why| {
        why.refused(|why| format!(
            "cannot use {shown}: {why}; nothing was saved (the URL is tested with a connection and SELECT 1 before it is saved)"
        ))
    })?;
    Ok(Provisioned {
        db: AppDb {
            method: DbMethod::Url,
            url: url.to_string(),
            schema: None,
            owned: Owned::default(),
        },
        notices: Vec::new(),
    })
}

// ---- messages --------------------------------------------------------------------------------

/// A URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => format!(
            "a {} URL",
            Dialect::of(url).map_or("database", Dialect::as_str)
        ),
    }
}

/// The server's own reason for an error (its message, not sqlx's wrapping), with the password
/// of `url`, if any, never in it.
pub fn server_reason(e: &sqlx::Error, url: Option<&str>) -> String {
    let text = match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string(),
    };
    let password = url
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.password().map(|p| p.to_string()))
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => text.replace(&p, "***"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_is_prefix_and_underscores() {
        assert_eq!(identifier("shop-eu"), "hangar_shop_eu");
        assert_eq!(identifier("a1_b"), identifier("a1-b"));
    }
    #[test]
    fn redaction_hides_the_password() {
        let r = redact("postgres://u:s3cret@h:5/d");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("u:***@h"), "{r}");
    }

    #[tokio::test]
    async fn names_that_map_alike_are_refused_before_anything_is_made() {
        let others = vec!["a1-b".to_string()];
        let r = provision(&Request {
            name: "a1_b",
            method: None,
            data_service: None,
            data_dir: Path::new("/nonexistent"),
            others: &others,
        })
        .await;
        let e = r.expect_err("refused").to_string();
        assert!(e.contains("a1-b") && e.contains("hangar_a1_b"), "{e}");
    }

    #[tokio::test]
    async fn schema_mode_needs_postgres() {
        let r = provision(&Request {
            name: "s1",
            method: Some("schema"),
            data_service: Some("mysql://u:p@127.0.0.1:1/x"),
            data_dir: Path::new("/nonexistent"),
            others: &[],
        })
        .await;
        let e = r.expect_err("refused").to_string();
        assert!(e.contains("PostgreSQL only"), "{e}");
    }

    #[tokio::test]
    async fn a_refusal_keeps_the_drivers_error_as_its_source_and_no_password() {
        // Nothing listens on port 1: the connection is refused at once.
        let e = test_url("postgres://u:s3cret@127.0.0.1:1/x")
            .await
            .expect_err("refused");
        let shown = e.to_string();
        assert!(
            shown.starts_with("cannot use postgres://u:***@127.0.0.1:1/x: "),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        let source = std::error::Error::source(&e).expect("the sqlx error is kept");
        assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
    }
}
