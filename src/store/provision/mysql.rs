//! MySQL and MariaDB as a data service: a database of the app's own (`--db new-database`),
//! with a user of the app's own when the service account may create users and grant.
//!
//! Invariant: the account's rights, the user name length the server accepts, and the objects of
//! the app's identifier are checked before anything is created; what is made is pushed onto the
//! undo list as it is made.

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection, Executor};

use super::{
    appeared, connect_within, failed_step, left_over, set_credentials, undo, Made, ProvisionError,
    Provisioned, Server, ServerError, PREFIX,
};
use crate::base::db::{AppDb, DbMethod, Owned};

/// A connection to a MySQL or MariaDB data service.
pub(super) struct Mysql(MySqlConnection);

pub(super) fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A database name as a database-level GRANT reads it: there `_` and `%` are wildcards (the
/// grant for `hangar_team_a` would also cover `hangar_teamba`), so both are escaped.
fn grant_db(s: &str) -> String {
    ident(
        &s.replace('\\', "\\\\")
            .replace('_', "\\_")
            .replace('%', "\\%"),
    )
}

pub(super) fn account(user: &str, host: &str) -> String {
    format!("{}@{}", string(user), string(host))
}

/// The longest user name the server accepts, from its `VERSION()`: MariaDB 80, MySQL 32 (16
/// before 5.7.8).
fn user_name_limit(version: &str) -> usize {
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

impl Server for Mysql {
    async fn connect(url: &str) -> Result<Self, ServerError> {
        // sqlx reads mysql:// only; MariaDB URLs are the same otherwise.
        let url = match url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => url.to_string(),
        };
        let opts = MySqlConnectOptions::from_str(&url)
            .map_err(|e| ServerError::sqlx(e, Some(&url)))?
            .disable_statement_logging();
        connect_within(opts, &url).await.map(Mysql)
    }

    async fn close(self) {
        let _ = self.0.close().await;
    }

    async fn run(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        self.0.execute(sql).await.map(drop)
    }

    async fn existing(&mut self, id: &str) -> Result<Vec<String>, ServerError> {
        let mut found = Vec::new();
        if database_exists(&mut self.0, id).await? {
            found.push("database".into());
        }
        for host in user_hosts(&mut self.0, id).await {
            found.push(format!("user@{host}"));
        }
        Ok(found)
    }

    async fn busy(&mut self, id: &str) -> Result<i64, ServerError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND <> 'Sleep' AND INSTR(INFO, ?) > 0",
        )
        .bind(id)
        .fetch_one(&mut self.0)
        .await
        .map_err(|e| ServerError::sqlx(e, None))
    }

    fn unfinished(id: &str, now: &[String], existed: &[String]) -> Owned {
        Owned {
            database: appeared("database", now, existed).then(|| id.to_string()),
            role: now
                .iter()
                .filter(|k| k.starts_with("user@") && !existed.contains(k))
                .map(|k| format!("{id}@{}", &k["user@".len()..]))
                .next(),
            ..Owned::default()
        }
    }

    fn made(owned: &Owned) -> Vec<Made> {
        let mut made = Vec::new();
        if let Some(r) = &owned.role {
            let (user, host) = r.rsplit_once('@').unwrap_or((r.as_str(), "%"));
            made.push(Made::MyUser {
                user: user.to_string(),
                host: host.to_string(),
            });
        }
        if let Some(d) = &owned.database {
            made.push(Made::MyDatabase(d.clone()));
        }
        made
    }

    async fn new_database(
        &mut self,
        service: &str,
        id: &str,
    ) -> Result<Provisioned, ProvisionError> {
        new_database_on(self, service, id).await
    }
}

async fn user_hosts(conn: &mut MySqlConnection, id: &str) -> Vec<String> {
    // Reading mysql.user needs a right the account may lack; then no user was made either.
    sqlx::query_scalar::<_, String>("SELECT Host FROM mysql.user WHERE User = ?")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default()
}

async fn database_exists(conn: &mut MySqlConnection, id: &str) -> Result<bool, ServerError> {
    sqlx::query_scalar::<_, i64>("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map(|r| r.is_some())
        .map_err(|e| ServerError::sqlx(e, None))
}

struct Rights {
    user: String,
    host: String,
    create_db: bool,
    drop_db: bool,
    create_user: bool,
    grant: bool,
}

async fn rights(conn: &mut MySqlConnection, id: &str) -> Result<Rights, ServerError> {
    let current: String = sqlx::query_scalar("SELECT CAST(CURRENT_USER() AS CHAR)")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| ServerError::sqlx(e, None))?;
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
    .map_err(|e| ServerError::sqlx(e, None))?;
    // Database-level grants on a pattern that covers the new name (`hangar\_%`.*) count too.
    let on_db: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(PRIVILEGE_TYPE AS CHAR) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA",
    )
    .bind(&grantee)
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| ServerError::sqlx(e, None))?;
    let has = |p: &str| global.iter().any(|(g, _)| g == p) || on_db.iter().any(|g| g == p);
    Ok(Rights {
        create_db: has("CREATE"),
        drop_db: has("DROP"),
        create_user: global.iter().any(|(g, _)| g == "CREATE USER"),
        grant: global.iter().any(|(_, y)| y == "YES"),
        user,
        host,
    })
}

async fn new_database_on(
    conn: &mut Mysql,
    service: &str,
    id: &str,
) -> Result<Provisioned, ProvisionError> {
    let refused = |why: ServerError| why.refused(|why| format!("{why}; nothing was created"));
    let rights = rights(&mut conn.0, id).await.map_err(refused)?;
    let account_shown = account(&rights.user, &rights.host);
    if !rights.create_db {
        return Err(ProvisionError::refused(format!(
            "the data service's account {account_shown} may not create databases: it lacks the CREATE privilege (grant it with GRANT CREATE, DROP ON *.* TO {account_shown}, or use a connection URL); nothing was created"
        )));
    }
    if !rights.drop_db {
        return Err(ProvisionError::refused(format!(
            "the data service's account {account_shown} may not drop databases, which undoing a failed create and --drop-db need: it lacks the DROP privilege (grant it with GRANT DROP ON *.* TO {account_shown}); nothing was created"
        )));
    }
    if database_exists(&mut conn.0, id).await.map_err(refused)? {
        return Err(left_over("database", id));
    }
    let own_user = rights.create_user && rights.grant;
    if own_user {
        let version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
            .fetch_one(&mut conn.0)
            .await
            .map_err(|e| refused(ServerError::sqlx(e, None)))?;
        let limit = user_name_limit(&version);
        if id.chars().count() > limit {
            return Err(ProvisionError::refused(format!(
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
                .fetch_optional(&mut conn.0)
                .await;
        if let Ok(Some(_)) = taken {
            return Err(left_over("user", &format!("'{id}'@'{host}'")));
        }
    }
    let password = crate::base::secret::random_hex(24);
    let mut made = Vec::new();
    let result: Result<(), (&str, ServerError)> = async {
        if own_user {
            let sql = format!(
                "CREATE USER {} IDENTIFIED BY {}",
                account(id, &host),
                string(&password)
            );
            conn.0
                .execute(sql.as_str())
                .await
                .map_err(|e| ("creating the user", ServerError::sqlx(e, None)))?;
            made.push(Made::MyUser {
                user: id.to_string(),
                host: host.clone(),
            });
        }
        let sql = format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            ident(id)
        );
        conn.0
            .execute(sql.as_str())
            .await
            .map_err(|e| ("creating the database", ServerError::sqlx(e, None)))?;
        made.push(Made::MyDatabase(id.to_string()));
        if own_user {
            let sql = format!(
                "GRANT ALL PRIVILEGES ON {}.* TO {}",
                grant_db(id),
                account(id, &host)
            );
            conn.0
                .execute(sql.as_str())
                .await
                .map_err(|e| ("granting the user its database", ServerError::sqlx(e, None)))?;
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
            "the data service's account {account_shown} may not create users of their own (it lacks {lacks}), so the database {id} belongs to that account and the app connects as it; grant CREATE USER and GRANT OPTION for a user of the app's own"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_name_one_database_not_a_pattern() {
        assert_eq!(grant_db("hangar_team_a"), "`hangar\\_team\\_a`");
        assert_eq!(grant_db("a%b`c"), "`a\\%b``c`");
    }

    #[test]
    fn names_are_quoted_and_user_names_limited_by_version() {
        // User names: MySQL 8 takes 32 characters, MariaDB 80, old MySQL 16.
        assert_eq!(user_name_limit("8.0.36"), 32);
        assert_eq!(user_name_limit("8.4.0-log"), 32);
        assert_eq!(user_name_limit("5.7.8"), 32);
        assert_eq!(user_name_limit("5.6.51"), 16);
        assert_eq!(user_name_limit("10.11.6-MariaDB-0+deb12u1"), 80);
        assert_eq!(user_name_limit("5.5.5-10.11.6-MariaDB"), 80);
        assert_eq!(ident("x`y"), "`x``y`");
        assert_eq!(string("it's\\"), "'it''s\\\\'");
    }
}
