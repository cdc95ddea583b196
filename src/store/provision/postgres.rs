//! PostgreSQL as a data service: a database of the app's own (`--db new-database`) or a schema
//! in the service's database (`--db schema`, PostgreSQL only), each owned by a role of the
//! app's own when the service account may create roles.
//!
//! Invariant: the account's rights are read, and the objects of the app's identifier looked
//! for, before anything is created; what is made is pushed onto the undo list as it is made.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor};

use super::{
    appeared, cannot_reach, connect_within, failed_step, left_over, set_credentials, undo, Made,
    ProvisionError, Provisioned, Server, ServerError,
};
use crate::base::db::{AppDb, DbMethod, Owned};

/// A connection to a PostgreSQL data service.
pub(super) struct Postgres(PgConnection);

pub(super) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(super) fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const ROLE_EXISTS: &str = "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1";
const DB_EXISTS: &str = "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1";
const SCHEMA_EXISTS: &str = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1";

impl Server for Postgres {
    async fn connect(url: &str) -> Result<Self, ServerError> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| ServerError::sqlx(e, Some(url)))?
            .disable_statement_logging();
        connect_within(opts, url).await.map(Postgres)
    }

    async fn close(self) {
        let _ = self.0.close().await;
    }

    async fn run(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        // GRANT, REVOKE and DROP OWNED on one database rewrite its catalogue row; two of them at
        // once (two apps made or dropped together, by this engine or another on the same
        // server) make the later one fail with "tuple concurrently updated" (SQLSTATE XX000),
        // although nothing is wrong. Asked again, a few times, after a short wait.
        let mut wait = std::time::Duration::from_millis(20);
        for _ in 0..CONCURRENT_RETRIES {
            match self.0.execute(sql).await {
                Err(e) if concurrently_updated(&e) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                r => return r.map(drop),
            }
        }
        self.0.execute(sql).await.map(drop)
    }

    async fn existing(&mut self, id: &str) -> Result<Vec<String>, ServerError> {
        let mut found = Vec::new();
        for (kind, sql) in [
            ("database", DB_EXISTS),
            ("role", ROLE_EXISTS),
            ("schema", SCHEMA_EXISTS),
        ] {
            if exists(&mut self.0, sql, id).await? {
                found.push(kind.to_string());
            }
        }
        Ok(found)
    }

    async fn busy(&mut self, id: &str) -> Result<i64, ServerError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid() AND state <> 'idle' AND strpos(query, $1) > 0",
        )
        .bind(id)
        .fetch_one(&mut self.0)
        .await
        .map_err(|e| ServerError::sqlx(e, None))
    }

    fn unfinished(id: &str, now: &[String], existed: &[String]) -> Owned {
        let new = |kind: &str| appeared(kind, now, existed).then(|| id.to_string());
        Owned {
            database: new("database"),
            schema: new("schema"),
            role: new("role"),
            ..Owned::default()
        }
    }

    fn made(owned: &Owned) -> Vec<Made> {
        let mut made = Vec::new();
        if let Some(d) = &owned.database {
            made.push(Made::PgDatabase(d.clone()));
        }
        if let Some(s) = &owned.schema {
            made.push(Made::PgSchema(s.clone()));
        }
        if let Some(r) = &owned.role {
            // The role goes last: it owns the database or schema.
            made.insert(0, Made::PgRole(r.clone()));
        }
        made
    }

    async fn new_database(
        &mut self,
        service: &str,
        id: &str,
    ) -> Result<Provisioned, ProvisionError> {
        provision_on(self, service, id, PgKind::Database).await
    }
}

/// `--db schema`: a schema of the app's own in the data service's database.
pub(super) async fn new_schema(service: &str, id: &str) -> Result<Provisioned, ProvisionError> {
    let mut conn = Postgres::connect(service)
        .await
        .map_err(cannot_reach(service))?;
    let r = provision_on(&mut conn, service, id, PgKind::Schema).await;
    conn.close().await;
    r
}

/// The service account and what it may do.
struct Rights {
    user: String,
    database: String,
    superuser: bool,
    create_db: bool,
    create_role: bool,
    create_in_db: bool,
}

async fn rights(conn: &mut PgConnection) -> Result<Rights, ServerError> {
    let row: (bool, bool, bool, String, String, bool) = sqlx::query_as(
        "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, current_user::text, current_database()::text, \
         has_database_privilege(current_database(), 'CREATE') \
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| ServerError::sqlx(e, None))?;
    Ok(Rights {
        superuser: row.0,
        create_db: row.0 || row.1,
        create_role: row.0 || row.2,
        user: row.3,
        database: row.4,
        create_in_db: row.0 || row.5,
    })
}

async fn exists(conn: &mut PgConnection, sql: &str, name: &str) -> Result<bool, ServerError> {
    sqlx::query_scalar::<_, i32>(sql)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map(|r| r.is_some())
        .map_err(|e| ServerError::sqlx(e, None))
}

fn role_notice(r: &Rights, id: &str, what: &str) -> String {
    format!(
        "the data service's account {:?} may not create roles (PostgreSQL: it lacks CREATEROLE), so the {what} {id} belongs to that account and the app connects as it; grant CREATEROLE for a role of the app's own",
        r.user
    )
}

/// Create the app's role (and let the service account act as it, which PostgreSQL requires of
/// a non-superuser that makes it the owner of something). Pushes what it made onto `made`.
async fn create_role(
    conn: &mut PgConnection,
    rights: &Rights,
    id: &str,
    password: &str,
    made: &mut Vec<Made>,
) -> Result<(), ServerError> {
    let sql = format!(
        "CREATE ROLE {} LOGIN PASSWORD {}",
        ident(id),
        sql_string(password)
    );
    conn.execute(sql.as_str())
        .await
        .map_err(|e| ServerError::sqlx(e, None))?;
    made.push(Made::PgRole(id.to_string()));
    if !rights.superuser {
        let sql = format!("GRANT {} TO CURRENT_USER", ident(id));
        conn.execute(sql.as_str())
            .await
            .map_err(|e| ServerError::sqlx(e, None))?;
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

async fn provision_on(
    conn: &mut Postgres,
    service: &str,
    id: &str,
    kind: PgKind,
) -> Result<Provisioned, ProvisionError> {
    let refused = |why: ServerError| why.refused(|why| format!("{why}; nothing was created"));
    let rights = rights(&mut conn.0).await.map_err(refused)?;
    match kind {
        PgKind::Database if !rights.create_db => {
            return Err(ProvisionError::refused(format!(
                "the data service's account {u:?} may not create databases: the PostgreSQL role {u:?} lacks CREATEDB (grant it with ALTER ROLE {} CREATEDB, or use --db schema or a connection URL); nothing was created",
                ident(&rights.user),
                u = rights.user
            )))
        }
        PgKind::Schema if !rights.create_in_db => {
            return Err(ProvisionError::refused(format!(
                "the data service's account {u:?} may not create schemas in the database {d:?}: it lacks the CREATE privilege on that database (grant it with GRANT CREATE ON DATABASE {} TO {}); nothing was created",
                ident(&rights.database),
                ident(&rights.user),
                u = rights.user,
                d = rights.database
            )))
        }
        _ => {}
    }
    let exists_sql = match kind {
        PgKind::Database => DB_EXISTS,
        PgKind::Schema => SCHEMA_EXISTS,
    };
    if exists(&mut conn.0, exists_sql, id).await.map_err(refused)? {
        return Err(left_over(kind.noun(), id));
    }
    let own_role = rights.create_role;
    if own_role
        && exists(&mut conn.0, ROLE_EXISTS, id)
            .await
            .map_err(refused)?
    {
        return Err(left_over("role", id));
    }
    let password = crate::base::secret::random_hex(24);
    let mut made = Vec::new();
    let result: Result<(), (&str, ServerError)> = async {
        if own_role {
            create_role(&mut conn.0, &rights, id, &password, &mut made)
                .await
                .map_err(|e| ("creating the role", e))?;
        }
        let (mut sql, owner, step, object) = match kind {
            PgKind::Database => (
                format!("CREATE DATABASE {}", ident(id)),
                "OWNER",
                "creating the database",
                Made::PgDatabase(id.to_string()),
            ),
            PgKind::Schema => (
                format!("CREATE SCHEMA {}", ident(id)),
                "AUTHORIZATION",
                "creating the schema",
                Made::PgSchema(id.to_string()),
            ),
        };
        if own_role {
            sql.push_str(&format!(" {owner} {}", ident(id)));
        }
        conn.0
            .execute(sql.as_str())
            .await
            .map_err(|e| (step, ServerError::sqlx(e, None)))?;
        made.push(object);
        if kind == PgKind::Schema && own_role {
            // What a runtime's boot needs in schema mode: NocoBase runs `CREATE SCHEMA IF NOT
            // EXISTS "<its schema>"` at every boot, and PostgreSQL checks CREATE on the database
            // before it looks whether the schema exists. The right lets the role make schemas
            // of its own (dropped with it by `DROP OWNED BY`), never use another app's: those
            // belong to other roles and grant nothing to PUBLIC.
            let sql = format!(
                "GRANT CREATE ON DATABASE {} TO {}",
                ident(&rights.database),
                ident(id)
            );
            conn.0.execute(sql.as_str()).await.map_err(|e| {
                (
                    "letting the role create its schema at boot",
                    ServerError::sqlx(e, None),
                )
            })?;
        }
        if kind == PgKind::Database {
            // Only its owner (and superusers) may connect: other apps' roles cannot even look.
            let sql = format!(
                "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
                ident(id)
            );
            conn.0.execute(sql.as_str()).await.map_err(|e| {
                (
                    "closing the database to other roles",
                    ServerError::sqlx(e, None),
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
        .map_err(|_| refused(ServerError::new("the data service URL cannot be read")))?;
    let mut notices = Vec::new();
    if own_role {
        set_credentials(&mut url, id, &password);
    } else {
        notices.push(role_notice(&rights, id, kind.noun()));
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

/// Retries of a statement that met a concurrent catalogue update (20 ms, doubling: ~1.3 s in all).
const CONCURRENT_RETRIES: usize = 6;

/// PostgreSQL's "tuple concurrently updated": a catalogue row changed by another session
/// between this statement's read and write; the statement itself is fine.
fn concurrently_updated(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("XX000") && d.message().contains("concurrently updated")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("x\"y"), "\"x\"\"y\"");
        assert_eq!(sql_string("it's"), "'it''s'");
    }
}
