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
//! registry alone.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::base::db::{sqlite_path, AppDb, DbMethod, Owned};
use crate::base::dialect::dialect_of;
use crate::base::validate::Invalid;

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
    /// A right is missing, a server refused, a step failed (and was undone).
    #[error("{0}")]
    Refused(String),
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
    let done = match (method, service.and_then(dialect_of)) {
        ("new-database", None) => Provisioned {
            db: AppDb::sqlite_file(req.data_dir),
            notices: Vec::new(),
        },
        ("new-database", Some("postgres")) => {
            pg_provision(service.unwrap_or(""), &id, PgKind::Database).await?
        }
        ("new-database", Some(_)) => my_new_database(service.unwrap_or(""), &id).await?,
        ("schema", Some("postgres")) => {
            pg_provision(service.unwrap_or(""), &id, PgKind::Schema).await?
        }
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
        (url, _) if dialect_of(url).is_some() => attach(url).await?,
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

/// The objects of identifier `id` on the data service now: `database`, `role`, `schema` on
/// PostgreSQL; `database` and `user@host` on MySQL. Written into the journal before a create
/// begins, so a create cut short by a crash is undone without touching what was there before.
pub async fn existing(service: &str, id: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    match dialect_of(service) {
        Some("postgres") => {
            let mut conn = pg_connect(service).await?;
            for (kind, sql) in [
                ("database", PG_DB_EXISTS),
                ("role", PG_ROLE_EXISTS),
                ("schema", PG_SCHEMA_EXISTS),
            ] {
                if pg_exists(&mut conn, sql, id).await? {
                    found.push(kind.to_string());
                }
            }
            let _ = conn.close().await;
        }
        Some("mysql") => {
            let mut conn = my_connect(service).await?;
            if my_database_exists(&mut conn, id).await? {
                found.push("database".into());
            }
            for host in my_user_hosts(&mut conn, id).await {
                found.push(format!("user@{host}"));
            }
            let _ = conn.close().await;
        }
        _ => {}
    }
    Ok(found)
}

/// Wait (up to 60 s) until no other session on the data service runs a statement naming `id`.
async fn wait_until_quiet(service: &str, id: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let busy: i64 = match dialect_of(service) {
            Some("postgres") => {
                let mut conn = pg_connect(service).await?;
                let n = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid() AND state <> 'idle' AND strpos(query, $1) > 0",
                )
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| server_reason(&e, None))?;
                let _ = conn.close().await;
                n
            }
            Some("mysql") => {
                let mut conn = my_connect(service).await?;
                let n = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Sleep' AND INSTR(INFO, ?) > 0",
                )
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| server_reason(&e, None))?;
                let _ = conn.close().await;
                n
            }
            _ => 0,
        };
        if busy == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "statements naming {id} are still running on the data service after 60 s"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn my_user_hosts(conn: &mut MySqlConnection, id: &str) -> Vec<String> {
    // Reading mysql.user needs a right the account may lack; then no user was made either.
    sqlx::query_scalar::<_, String>("SELECT Host FROM mysql.user WHERE User = ?")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default()
}

/// Undo a create cut short: drop the objects of identifier `id` that exist now but did not
/// before it began (`existed`). Returns what was dropped.
pub async fn drop_unfinished(
    service: &str,
    id: &str,
    existed: &[String],
) -> Result<Vec<String>, String> {
    // A statement the dead engine sent (CREATE DATABASE copying its template, say) goes on in
    // the server after its client is gone: let it finish before looking, or its object would
    // appear after the undo.
    wait_until_quiet(service, id).await?;
    let now = existing(service, id).await?;
    let new = |kind: &str| now.iter().any(|k| k == kind) && !existed.iter().any(|k| k == kind);
    let mut owned = Owned::default();
    match dialect_of(service) {
        Some("postgres") => {
            owned.database = new("database").then(|| id.to_string());
            owned.schema = new("schema").then(|| id.to_string());
            owned.role = new("role").then(|| id.to_string());
        }
        Some("mysql") => {
            owned.database = new("database").then(|| id.to_string());
            owned.role = now
                .iter()
                .filter(|k| k.starts_with("user@") && !existed.contains(k))
                .map(|k| format!("{id}@{}", &k["user@".len()..]))
                .next();
        }
        _ => return Ok(Vec::new()),
    }
    let db = AppDb {
        method: DbMethod::NewDatabase,
        url: service.to_string(),
        schema: None,
        owned,
    };
    drop_owned(&db, Some(service))
        .await
        .map_err(|e| e.to_string())
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
        return Err(ProvisionError::Refused(format!(
            "{app}'s database {} was made on a data service, but hangar.toml has no [data_service] now; put it back to drop the database, or delete without --drop-db",
            db.describe()
        )));
    };
    let (Ok(s), Ok(a)) = (url::Url::parse(service), url::Url::parse(&db.url)) else {
        return Err(ProvisionError::Refused(format!(
            "cannot read {app}'s database URL or the data service URL; nothing was dropped"
        )));
    };
    let same_server = dialect_of(service) == dialect_of(&db.url)
        && s.host_str() == a.host_str()
        && s.port_or_known_default().or(default_port(service))
            == a.port_or_known_default().or(default_port(&db.url));
    let same_db = db.owned.schema.is_none() || s.path() == a.path();
    if !same_server || !same_db {
        return Err(ProvisionError::Refused(format!(
            "{app}'s database {} was made on another data service than the one hangar.toml names now; put that one back to drop it, or delete without --drop-db",
            db.describe()
        )));
    }
    Ok(())
}

fn default_port(url: &str) -> Option<u16> {
    match dialect_of(url) {
        Some("postgres") => Some(5432),
        Some("mysql") => Some(3306),
        _ => None,
    }
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
    let o = &db.owned;
    let mut made = Vec::new();
    match dialect_of(service) {
        Some("postgres") => {
            if let Some(d) = &o.database {
                made.push(Made::PgDatabase(d.clone()));
            }
            if let Some(s) = &o.schema {
                made.push(Made::PgSchema(s.clone()));
            }
            if let Some(r) = &o.role {
                // The role goes last: it owns the database or schema.
                made.insert(0, Made::PgRole(r.clone()));
            }
            let mut conn = pg_connect(service)
                .await
                .map_err(|why| ProvisionError::Refused(format!("cannot reach the data service to drop the database: {why}; nothing was dropped")))?;
            let r = undo(&mut conn, &made).await;
            let _ = conn.close().await;
            r.map_err(ProvisionError::Refused)?;
        }
        Some("mysql") => {
            if let Some(r) = &o.role {
                let (user, host) = r.rsplit_once('@').unwrap_or((r.as_str(), "%"));
                made.push(Made::MyUser {
                    user: user.to_string(),
                    host: host.to_string(),
                });
            }
            if let Some(d) = &o.database {
                made.push(Made::MyDatabase(d.clone()));
            }
            let mut conn = my_connect(service)
                .await
                .map_err(|why| ProvisionError::Refused(format!("cannot reach the data service to drop the database: {why}; nothing was dropped")))?;
            let r = undo(&mut conn, &made).await;
            let _ = conn.close().await;
            r.map_err(ProvisionError::Refused)?;
        }
        _ => {
            return Err(ProvisionError::Refused(
                "no PostgreSQL or MySQL data service in hangar.toml to drop the database on".into(),
            ))
        }
    }
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
            Made::PgRole(r) => format!("DROP ROLE IF EXISTS {}", pg_ident(r)),
            Made::PgDatabase(d) => format!("DROP DATABASE IF EXISTS {}", pg_ident(d)),
            Made::PgSchema(s) => format!("DROP SCHEMA IF EXISTS {} CASCADE", pg_ident(s)),
            Made::MyUser { user, host } => {
                format!("DROP USER IF EXISTS {}", my_account(user, host))
            }
            Made::MyDatabase(d) => format!("DROP DATABASE IF EXISTS {}", my_ident(d)),
        }
    }
}

/// Drop `made` in reverse order; every step is tried, and the failures are reported together.
async fn undo(conn: &mut impl RunSql, made: &[Made]) -> Result<(), String> {
    let mut failed = Vec::new();
    for m in made.iter().rev() {
        if let Err(e) = conn.run(&m.drop_sql()).await {
            failed.push(format!("{}: {}", m.describe(), server_reason(&e, None)));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("could not drop {}", failed.join("; ")))
    }
}

type SqlFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'a>>;

/// One statement on either kind of server connection (a generic `Executor` bound would make
/// the futures that call it lose `Send`).
trait RunSql {
    fn run<'a>(&'a mut self, sql: &'a str) -> SqlFuture<'a>;
}

macro_rules! run_sql_on {
    ($($conn:ty),*) => {$(
        impl RunSql for $conn {
            fn run<'a>(&'a mut self, sql: &'a str) -> SqlFuture<'a> {
                Box::pin(async move { self.execute(sql).await.map(drop) })
            }
        }
    )*};
}
run_sql_on!(PgConnection, MySqlConnection, SqliteConnection);

/// The message for a step that failed after `made` was created: undo, and say how that went.
fn failed_step(
    step: &str,
    why: String,
    undone: Result<(), String>,
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
    ProvisionError::Refused(format!("{step} failed: {why}; {after}"))
}

// ---- PostgreSQL ------------------------------------------------------------------------------

fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn pg_connect(url: &str) -> Result<PgConnection, String> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| server_reason(&e, Some(url)))?
        .disable_statement_logging();
    connect_within(opts, url).await
}

/// Connect, giving up after [`CONNECT_TIMEOUT`]; the error is the server's reason.
async fn connect_within<O>(opts: O, url: &str) -> Result<O::Connection, String>
where
    O: ConnectOptions,
    O::Connection: Sized,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Ok(c) => c.map_err(|e| server_reason(&e, Some(url))),
        Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// The service account and what it may do.
struct PgRights {
    user: String,
    database: String,
    superuser: bool,
    create_db: bool,
    create_role: bool,
    create_in_db: bool,
}

async fn pg_rights(conn: &mut PgConnection) -> Result<PgRights, String> {
    let row: (bool, bool, bool, String, String, bool) = sqlx::query_as(
        "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, current_user::text, current_database()::text, \
         has_database_privilege(current_database(), 'CREATE') \
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| server_reason(&e, None))?;
    Ok(PgRights {
        superuser: row.0,
        create_db: row.0 || row.1,
        create_role: row.0 || row.2,
        user: row.3,
        database: row.4,
        create_in_db: row.0 || row.5,
    })
}

async fn pg_exists(conn: &mut PgConnection, sql: &str, name: &str) -> Result<bool, String> {
    sqlx::query_scalar::<_, i32>(sql)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map(|r| r.is_some())
        .map_err(|e| server_reason(&e, None))
}

const PG_ROLE_EXISTS: &str = "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1";
const PG_DB_EXISTS: &str = "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1";
const PG_SCHEMA_EXISTS: &str = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1";

fn left_over(kind: &str, id: &str) -> ProvisionError {
    ProvisionError::Conflict(Invalid::new(
        "name",
        format!(
            "the data service already has a {kind} named {id} (left by an app deleted without --drop-db, or made by hand); drop it there or choose another name; nothing was created"
        ),
    ))
}

fn pg_role_notice(r: &PgRights, id: &str, what: &str) -> String {
    format!(
        "the data service's account {:?} may not create roles (PostgreSQL: it lacks CREATEROLE), so the {what} {id} belongs to that account and the app connects as it; grant CREATEROLE for a role of the app's own",
        r.user
    )
}

/// Create the app's role (and let the service account act as it, which PostgreSQL requires of
/// a non-superuser that makes it the owner of something). Pushes what it made onto `made`.
async fn pg_create_role(
    conn: &mut PgConnection,
    rights: &PgRights,
    id: &str,
    password: &str,
    made: &mut Vec<Made>,
) -> Result<(), String> {
    let sql = format!(
        "CREATE ROLE {} LOGIN PASSWORD {}",
        pg_ident(id),
        sql_string(password)
    );
    conn.execute(sql.as_str())
        .await
        .map_err(|e| server_reason(&e, None))?;
    made.push(Made::PgRole(id.to_string()));
    if !rights.superuser {
        let sql = format!("GRANT {} TO CURRENT_USER", pg_ident(id));
        conn.execute(sql.as_str())
            .await
            .map_err(|e| server_reason(&e, None))?;
    }
    Ok(())
}

/// What PostgreSQL gives an app: a database of its own, or a schema in the service's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgKind {
    Database,
    Schema,
}

impl PgKind {
    fn noun(self) -> &'static str {
        match self {
            PgKind::Database => "database",
            PgKind::Schema => "schema",
        }
    }
}

/// The message for a data service that cannot be reached before anything was made.
fn cannot_reach(service: &str) -> impl Fn(String) -> ProvisionError + '_ {
    move |why| {
        ProvisionError::Refused(format!(
            "cannot reach the data service {}: {why}; nothing was created",
            redact(service)
        ))
    }
}

async fn pg_provision(
    service: &str,
    id: &str,
    kind: PgKind,
) -> Result<Provisioned, ProvisionError> {
    let mut conn = pg_connect(service).await.map_err(cannot_reach(service))?;
    let r = pg_provision_on(&mut conn, service, id, kind).await;
    let _ = conn.close().await;
    r
}

async fn pg_provision_on(
    conn: &mut PgConnection,
    service: &str,
    id: &str,
    kind: PgKind,
) -> Result<Provisioned, ProvisionError> {
    let refused = |why: String| ProvisionError::Refused(format!("{why}; nothing was created"));
    let rights = pg_rights(conn).await.map_err(refused)?;
    match kind {
        PgKind::Database if !rights.create_db => {
            return Err(ProvisionError::Refused(format!(
                "the data service's account {u:?} may not create databases: the PostgreSQL role {u:?} lacks CREATEDB (grant it with ALTER ROLE {} CREATEDB, or use --db schema or a connection URL); nothing was created",
                pg_ident(&rights.user),
                u = rights.user
            )))
        }
        PgKind::Schema if !rights.create_in_db => {
            return Err(ProvisionError::Refused(format!(
                "the data service's account {u:?} may not create schemas in the database {d:?}: it lacks the CREATE privilege on that database (grant it with GRANT CREATE ON DATABASE {} TO {}); nothing was created",
                pg_ident(&rights.database),
                pg_ident(&rights.user),
                u = rights.user,
                d = rights.database
            )))
        }
        _ => {}
    }
    let exists = match kind {
        PgKind::Database => PG_DB_EXISTS,
        PgKind::Schema => PG_SCHEMA_EXISTS,
    };
    if pg_exists(conn, exists, id).await.map_err(refused)? {
        return Err(left_over(kind.noun(), id));
    }
    let own_role = rights.create_role;
    if own_role && pg_exists(conn, PG_ROLE_EXISTS, id).await.map_err(refused)? {
        return Err(left_over("role", id));
    }
    let password = crate::base::secret::random_hex(24);
    let mut made = Vec::new();
    let result: Result<(), (&str, String)> = async {
        if own_role {
            pg_create_role(conn, &rights, id, &password, &mut made)
                .await
                .map_err(|e| ("creating the role", e))?;
        }
        let (mut sql, owner, step, object) = match kind {
            PgKind::Database => (
                format!("CREATE DATABASE {}", pg_ident(id)),
                "OWNER",
                "creating the database",
                Made::PgDatabase(id.to_string()),
            ),
            PgKind::Schema => (
                format!("CREATE SCHEMA {}", pg_ident(id)),
                "AUTHORIZATION",
                "creating the schema",
                Made::PgSchema(id.to_string()),
            ),
        };
        if own_role {
            sql.push_str(&format!(" {owner} {}", pg_ident(id)));
        }
        conn.execute(sql.as_str())
            .await
            .map_err(|e| (step, server_reason(&e, None)))?;
        made.push(object);
        if kind == PgKind::Database {
            // Only its owner (and superusers) may connect: other apps' roles cannot even look.
            let sql = format!(
                "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
                pg_ident(id)
            );
            conn.execute(sql.as_str()).await.map_err(|e| {
                (
                    "closing the database to other roles",
                    server_reason(&e, None),
                )
            })?;
        }
        Ok(())
    }
    .await;
    if let Err((step, why)) = result {
        let undone = undo(conn, &made).await;
        return Err(failed_step(step, why, undone, &made));
    }
    let mut url = url::Url::parse(service)
        .map_err(|_| refused("the data service URL cannot be read".into()))?;
    let mut notices = Vec::new();
    if own_role {
        set_credentials(&mut url, id, &password);
    } else {
        notices.push(pg_role_notice(&rights, id, kind.noun()));
    }
    let role = own_role.then(|| id.to_string());
    let db = match kind {
        PgKind::Database => {
            url.set_path(&format!("/{id}"));
            AppDb {
                method: DbMethod::NewDatabase,
                url: url.to_string(),
                schema: None,
                owned: Owned {
                    database: Some(id.to_string()),
                    role,
                    ..Owned::default()
                },
            }
        }
        PgKind::Schema => {
            // The search path travels in the URL (libpq and sqlx read `options`), and in
            // DB_SCHEMA.
            let search_path = format!("options=-c%20search_path%3D{id}");
            let query = match url.query().filter(|q| !q.is_empty()) {
                Some(q) => format!("{q}&{search_path}"),
                None => search_path,
            };
            url.set_query(Some(&query));
            AppDb {
                method: DbMethod::Schema,
                url: url.to_string(),
                schema: Some(id.to_string()),
                owned: Owned {
                    schema: Some(id.to_string()),
                    role,
                    ..Owned::default()
                },
            }
        }
    };
    Ok(Provisioned { db, notices })
}

fn set_credentials(url: &mut url::Url, user: &str, password: &str) {
    // Both are plain [a-z0-9_]; these cannot fail on a URL with a host.
    let _ = url.set_username(user);
    let _ = url.set_password(Some(password));
}

// ---- MySQL / MariaDB -------------------------------------------------------------------------

fn my_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn my_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn my_account(user: &str, host: &str) -> String {
    format!("{}@{}", my_string(user), my_string(host))
}

/// The longest user name the server accepts, from its `VERSION()`: MariaDB 80, MySQL 32 (16
/// before 5.7.8).
fn my_user_name_limit(version: &str) -> usize {
    if version.contains("MariaDB") {
        return 80;
    }
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    if (major, minor, patch) >= (5, 7, 8) {
        32
    } else {
        16
    }
}

async fn my_connect(url: &str) -> Result<MySqlConnection, String> {
    // sqlx reads mysql:// only; MariaDB URLs are the same otherwise.
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    let opts = MySqlConnectOptions::from_str(&url)
        .map_err(|e| server_reason(&e, Some(&url)))?
        .disable_statement_logging();
    connect_within(opts, &url).await
}

async fn my_database_exists(conn: &mut MySqlConnection, id: &str) -> Result<bool, String> {
    sqlx::query_scalar::<_, i64>("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map(|r| r.is_some())
        .map_err(|e| server_reason(&e, None))
}

struct MyRights {
    user: String,
    host: String,
    create_db: bool,
    drop_db: bool,
    create_user: bool,
    grant: bool,
}

async fn my_rights(conn: &mut MySqlConnection, id: &str) -> Result<MyRights, String> {
    let current: String = sqlx::query_scalar("SELECT CAST(CURRENT_USER() AS CHAR)")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| server_reason(&e, None))?;
    let (user, host) = current
        .rsplit_once('@')
        .map(|(u, h)| (u.to_string(), h.to_string()))
        .unwrap_or((current.clone(), "%".to_string()));
    let grantee = format!("'{user}'@'{host}'");
    let global: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(PRIVILEGE_TYPE AS CHAR), CAST(IS_GRANTABLE AS CHAR) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?",
    )
    .bind(&grantee)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| server_reason(&e, None))?;
    // Database-level grants on a pattern that covers the new name (`hangar\_%`.*) count too.
    let on_db: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(PRIVILEGE_TYPE AS CHAR) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA",
    )
    .bind(&grantee)
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| server_reason(&e, None))?;
    let has = |p: &str| global.iter().any(|(g, _)| g == p) || on_db.iter().any(|g| g == p);
    Ok(MyRights {
        create_db: has("CREATE"),
        drop_db: has("DROP"),
        create_user: global.iter().any(|(g, _)| g == "CREATE USER"),
        grant: global.iter().any(|(_, y)| y == "YES"),
        user,
        host,
    })
}

async fn my_new_database(service: &str, id: &str) -> Result<Provisioned, ProvisionError> {
    let mut conn = my_connect(service).await.map_err(cannot_reach(service))?;
    let r = my_new_database_on(&mut conn, service, id).await;
    let _ = conn.close().await;
    r
}

async fn my_new_database_on(
    conn: &mut MySqlConnection,
    service: &str,
    id: &str,
) -> Result<Provisioned, ProvisionError> {
    let refused = |why: String| ProvisionError::Refused(format!("{why}; nothing was created"));
    let rights = my_rights(conn, id).await.map_err(refused)?;
    let account = my_account(&rights.user, &rights.host);
    if !rights.create_db {
        return Err(ProvisionError::Refused(format!(
            "the data service's account {account} may not create databases: it lacks the CREATE privilege (grant it with GRANT CREATE, DROP ON *.* TO {account}, or use a connection URL); nothing was created"
        )));
    }
    if !rights.drop_db {
        return Err(ProvisionError::Refused(format!(
            "the data service's account {account} may not drop databases, which undoing a failed create and --drop-db need: it lacks the DROP privilege (grant it with GRANT DROP ON *.* TO {account}); nothing was created"
        )));
    }
    if my_database_exists(conn, id).await.map_err(refused)? {
        return Err(left_over("database", id));
    }
    let own_user = rights.create_user && rights.grant;
    if own_user {
        let version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| refused(server_reason(&e, None)))?;
        let limit = my_user_name_limit(&version);
        if id.chars().count() > limit {
            return Err(ProvisionError::Refused(format!(
                "the app's database user would be {id:?}, {} characters, and this data service (version {version}) accepts user names of at most {limit}: choose an app name of at most {} characters, or use a connection URL; nothing was created",
                id.chars().count(),
                limit.saturating_sub(PREFIX.len())
            )));
        }
    }
    // The app's user matches the host part the service account matched, so it can log in from
    // where the engine does.
    let host = rights.host.clone();
    if own_user {
        // Reading mysql.user needs a right the account may lack; CREATE USER then says it.
        let taken: Result<Option<i64>, _> =
            sqlx::query_scalar("SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?")
                .bind(id)
                .bind(&host)
                .fetch_optional(&mut *conn)
                .await;
        if let Ok(Some(_)) = taken {
            return Err(left_over("user", &format!("'{id}'@'{host}'")));
        }
    }
    let password = crate::base::secret::random_hex(24);
    let mut made = Vec::new();
    let result: Result<(), (&str, String)> = async {
        if own_user {
            let sql = format!(
                "CREATE USER {} IDENTIFIED BY {}",
                my_account(id, &host),
                my_string(&password)
            );
            conn.execute(sql.as_str())
                .await
                .map_err(|e| ("creating the user", server_reason(&e, None)))?;
            made.push(Made::MyUser {
                user: id.to_string(),
                host: host.clone(),
            });
        }
        let sql = format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            my_ident(id)
        );
        conn.execute(sql.as_str())
            .await
            .map_err(|e| ("creating the database", server_reason(&e, None)))?;
        made.push(Made::MyDatabase(id.to_string()));
        if own_user {
            let sql = format!(
                "GRANT ALL PRIVILEGES ON {}.* TO {}",
                my_ident(id),
                my_account(id, &host)
            );
            conn.execute(sql.as_str())
                .await
                .map_err(|e| ("granting the user its database", server_reason(&e, None)))?;
        }
        Ok(())
    }
    .await;
    if let Err((step, why)) = result {
        let undone = undo(conn, &made).await;
        return Err(failed_step(step, why, undone, &made));
    }
    let mut url = url::Url::parse(service)
        .map_err(|_| refused("the data service URL cannot be read".into()))?;
    if url.scheme() != "mysql" {
        let _ = url.set_scheme("mysql");
    }
    url.set_path(&format!("/{id}"));
    let mut notices = Vec::new();
    if own_user {
        set_credentials(&mut url, id, &password);
    } else {
        let lacks = if rights.create_user {
            "GRANT OPTION"
        } else {
            "the CREATE USER privilege"
        };
        notices.push(format!(
            "the data service's account {account} may not create users of their own (it lacks {lacks}), so the database {id} belongs to that account and the app connects as it; grant CREATE USER and GRANT OPTION for a user of the app's own"
        ));
    }
    Ok(Provisioned {
        db: AppDb {
            method: DbMethod::NewDatabase,
            url: url.to_string(),
            schema: None,
            owned: Owned {
                database: Some(id.to_string()),
                role: own_user.then(|| format!("{id}@{host}")),
                ..Owned::default()
            },
        },
        notices,
    })
}

// ---- new connection --------------------------------------------------------------------------

/// The "Test connection" button: connect and `SELECT 1`, nothing is made or saved.
pub async fn test_url(url: &str) -> Result<(), ProvisionError> {
    attach(url).await.map(|_| ())
}

/// `SELECT 1` on a connection just made, then close it.
async fn select_one<C: RunSql + Connection>(
    conn: Result<C, String>,
    url: &str,
) -> Result<(), String> {
    let mut conn = conn?;
    let r = conn
        .run("SELECT 1")
        .await
        .map_err(|e| server_reason(&e, Some(url)));
    let _ = conn.close().await;
    r
}

/// Test an operator's URL (connect, `SELECT 1`) and record it as attached.
async fn attach(url: &str) -> Result<Provisioned, ProvisionError> {
    let invalid = |m: String| ProvisionError::Invalid(Invalid::new("db", m));
    let dialect = dialect_of(url).unwrap_or("unknown");
    let shown = redact(url);
    let test: Result<(), String> = match dialect {
        "sqlite" => {
            let path = sqlite_path(url);
            if path.as_os_str().is_empty() || url.contains(":memory:") {
                return Err(invalid(
                    "an in-memory SQLite database would be empty at every start; give a file: sqlite:///absolute/path.db".into(),
                ));
            }
            if !path.is_absolute() {
                return Err(invalid(format!(
                    "the SQLite path {} is relative, and the app runs in its own folder; give an absolute one: sqlite:///absolute/path.db",
                    path.display()
                )));
            }
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| {
                    invalid(format!(
                        "the --db URL cannot be read: {}",
                        server_reason(&e, Some(url))
                    ))
                })?
                .disable_statement_logging();
            select_one(connect_within(opts, url).await, url).await
        }
        "postgres" => {
            url::Url::parse(url)
                .map_err(|e| invalid(format!("the --db URL cannot be read: {e}")))?;
            select_one(pg_connect(url).await, url).await
        }
        _ => {
            url::Url::parse(url)
                .map_err(|e| invalid(format!("the --db URL cannot be read: {e}")))?;
            select_one(my_connect(url).await, url).await
        }
    };
    test.map_err(|why| {
        ProvisionError::Refused(format!(
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
        Err(_) => format!("a {} URL", dialect_of(url).unwrap_or("database")),
    }
}

/// The server's own reason for an error (its message, not sqlx's wrapping), with the password
/// of `url`, if any, never in it.
fn server_reason(e: &sqlx::Error, url: Option<&str>) -> String {
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
        // User names: MySQL 8 takes 32 characters, MariaDB 80, old MySQL 16.
        assert_eq!(my_user_name_limit("8.0.36"), 32);
        assert_eq!(my_user_name_limit("8.4.0-log"), 32);
        assert_eq!(my_user_name_limit("5.7.8"), 32);
        assert_eq!(my_user_name_limit("5.6.51"), 16);
        assert_eq!(my_user_name_limit("10.11.6-MariaDB-0+deb12u1"), 80);
        assert_eq!(my_user_name_limit("5.5.5-10.11.6-MariaDB"), 80);
        assert_eq!(identifier("a1_b"), identifier("a1-b"));
        assert_eq!(pg_ident("x\"y"), "\"x\"\"y\"");
        assert_eq!(my_ident("x`y"), "`x``y`");
        assert_eq!(my_string("it's\\"), "'it''s\\\\'");
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
}
