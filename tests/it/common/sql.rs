//! SQL helpers for tests that use the throwaway servers of `scripts/test-db.sh`: their URLs
//! (a test that needs a server fails, saying how to start it, when its URL is not set), queries,
//! limited accounts, and what a test checks is left on a server after it.
#![allow(dead_code)]

use sqlx::Connection;

pub fn need(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: these tests need the throwaway database servers; start them with \
             `eval \"$(scripts/test-db.sh start)\"` and run the tests again"
        ),
    }
}

pub fn pg() -> String {
    need("HANGAR_TEST_PG_URL")
}

pub fn my() -> String {
    need("HANGAR_TEST_MYSQL_URL")
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn sql(url: &str, stmts: &[&str]) {
    if let Err(e) = sql_try(url, stmts) {
        panic!("{stmts:?} on {url}: {e}");
    }
}

pub fn count(url: &str, query: &str) -> i64 {
    count_try(url, query).unwrap_or_else(|e| panic!("{query} on {url}: {e}"))
}

pub fn text(url: &str, query: &str) -> String {
    rt().block_on(async {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let s: String = sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap();
        let _ = c.close().await;
        s
    })
}

async fn connect(url: &str) -> Result<sqlx::AnyConnection, String> {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .map_err(|e| e.to_string())
}

/// Run statements (PostgreSQL, MySQL/MariaDB or SQLite); the first error as text.
pub fn sql_try(url: &str, stmts: &[&str]) -> Result<(), String> {
    rt().block_on(async {
        let mut c = connect(url).await?;
        for s in stmts {
            sqlx::raw_sql(s)
                .execute(&mut c)
                .await
                .map_err(|e| format!("{s}: {e}"))?;
        }
        let _ = c.close().await;
        Ok(())
    })
}

/// One integer from a query (COUNT(*) and the like).
pub fn count_try(url: &str, query: &str) -> Result<i64, String> {
    rt().block_on(async {
        let mut c = connect(url).await?;
        let n = sqlx::query_scalar::<_, i64>(query)
            .fetch_one(&mut c)
            .await
            .map_err(|e| e.to_string());
        let _ = c.close().await;
        n
    })
}

/// `url` with another database.
pub fn on_db(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// A name of this run only: servers are shared between runs.
pub fn uniq(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}{:06x}",
        (std::process::id().wrapping_mul(7919) ^ nanos ^ (n << 20)) & 0xffffff
    )
}

/// A `hangar.toml` fragment naming the data service.
pub fn data_service(url: &str) -> String {
    format!("[data_service]\nurl = \"{url}\"\n")
}

/// `url` with other credentials.
pub fn as_user(url: &str, user: &str, password: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_username(user).unwrap();
    u.set_password(Some(password)).unwrap();
    u.to_string()
}

/// The password in `url`.
pub fn password_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .password()
        .expect("a password")
        .to_string()
}

/// The name of an app's database, role, schema or user on a server (Hangar's one mapping).
pub fn ident(app: &str) -> String {
    hangar::store::provision::identifier(app)
}

/// The app's stored database URL (password included), straight from the registry.
pub fn stored_url(e: &super::TestEngine, name: &str) -> String {
    let path = e.home_path().join("registry.db");
    rt().block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        let json: String = sqlx::query_scalar("SELECT db_json FROM apps WHERE name = ?")
            .bind(name)
            .fetch_one(&mut c)
            .await
            .unwrap();
        let _ = c.close().await;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["url"].as_str().unwrap().to_string()
    })
}

// ---- what a server has -----------------------------------------------------------------------

/// A kind of thing on a server, looked up by name.
#[derive(Clone, Copy, Debug)]
pub enum Object {
    PgDatabase,
    PgRole,
    /// In the database of the URL asked.
    PgSchema,
    MyDatabase,
    MyUser,
}

impl Object {
    fn count_query(self, name: &str) -> String {
        let (table, column) = match self {
            Object::PgDatabase => ("pg_database", "datname"),
            Object::PgRole => ("pg_roles", "rolname"),
            Object::PgSchema => ("pg_namespace", "nspname"),
            Object::MyDatabase => ("information_schema.SCHEMATA", "SCHEMA_NAME"),
            Object::MyUser => ("mysql.user", "User"),
        };
        format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{name}'")
    }
}

/// How many `what` named `name` the server of `url` has (MariaDB: one user per host).
pub fn how_many(url: &str, what: Object, name: &str) -> i64 {
    count(url, &what.count_query(name))
}

pub fn exists(url: &str, what: Object, name: &str) -> bool {
    how_many(url, what, name) > 0
}

/// Nothing named `name` is left on the server of `url`: no database, role or schema
/// (PostgreSQL), no database or user (MariaDB).
pub fn assert_left_nothing(url: &str, name: &str) {
    let kinds: &[Object] = if url.starts_with("postgres") {
        &[Object::PgDatabase, Object::PgRole, Object::PgSchema]
    } else {
        &[Object::MyDatabase, Object::MyUser]
    };
    for &what in kinds {
        assert_eq!(
            how_many(url, what, name),
            0,
            "{what:?} {name} was left behind"
        );
    }
}

/// The owner of a PostgreSQL database.
pub fn pg_database_owner(url: &str, database: &str) -> String {
    text(
        url,
        &format!(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = '{database}'"
        ),
    )
}

/// The owner of a PostgreSQL schema in `url`'s database.
pub fn pg_schema_owner(url: &str, schema: &str) -> String {
    text(
        url,
        &format!(
            "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = '{schema}'"
        ),
    )
}

// ---- limited accounts ------------------------------------------------------------------------

/// The password of every limited account.
const LIMITED_PASSWORD: &str = "limited-pw";

/// A login of a test's own, with only the rights it is given: a data service that is not a
/// superuser. [`Account::remove`] drops it, and fails if the server will not (it still owns a
/// database).
pub struct Account {
    pub name: String,
    /// The superuser URL, with this account's credentials.
    pub url: String,
    admin: String,
}

impl Account {
    /// A PostgreSQL role `LOGIN` with `attributes` (`CREATEDB NOCREATEROLE`, …), then `grants`,
    /// in which `{role}` stands for the role.
    pub fn pg(admin: &str, prefix: &str, attributes: &str, grants: &[&str]) -> Account {
        let name = uniq(prefix);
        let role = format!("\"{name}\"");
        let mut stmts = vec![format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{LIMITED_PASSWORD}' {attributes}"
        )];
        stmts.extend(grants.iter().map(|g| g.replace("{role}", &role)));
        Self::made(admin, name, &stmts)
    }

    /// A MariaDB user on 127.0.0.1, then `grants`, in which `{user}` stands for the user.
    pub fn my(admin: &str, prefix: &str, grants: &[&str]) -> Account {
        let name = uniq(prefix);
        let user = format!("'{name}'@'127.0.0.1'");
        let mut stmts = vec![format!(
            "CREATE USER {user} IDENTIFIED BY '{LIMITED_PASSWORD}'"
        )];
        stmts.extend(grants.iter().map(|g| g.replace("{user}", &user)));
        Self::made(admin, name, &stmts)
    }

    fn made(admin: &str, name: String, stmts: &[String]) -> Account {
        sql(admin, &stmts.iter().map(String::as_str).collect::<Vec<_>>());
        Account {
            url: as_user(admin, &name, LIMITED_PASSWORD),
            name,
            admin: admin.to_string(),
        }
    }

    /// Drop the account (PostgreSQL: its rights and what it owns in the admin's database first).
    pub fn remove(self) {
        let name = &self.name;
        if self.admin.starts_with("postgres") {
            sql(
                &self.admin,
                &[
                    &format!("DROP OWNED BY \"{name}\""),
                    &format!("DROP ROLE \"{name}\""),
                ],
            );
        } else {
            sql(&self.admin, &[&format!("DROP USER '{name}'@'127.0.0.1'")]);
        }
    }
}
