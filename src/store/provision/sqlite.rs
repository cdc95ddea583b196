//! SQLite, attached by URL (`--db sqlite:///…`): the file is opened and asked `SELECT 1` before
//! it is saved. (The embedded default, a SQLite file in the app's folder, is
//! [`AppDb::sqlite_file`](crate::base::db::AppDb::sqlite_file) and needs no server.)
//!
//! Invariant: only an absolute file is accepted; an in-memory or relative one is refused before
//! anything is opened.

use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use super::{connect_within, server_reason, ProvisionError, ServerError};
use crate::base::db::sqlite_path;
use crate::base::validate::Invalid;

/// The options of an operator's `sqlite:` URL, statement logging off; refused unless it names
/// an absolute file.
pub(super) fn options(url: &str) -> Result<SqliteConnectOptions, ProvisionError> {
    let invalid = |m: String| ProvisionError::Invalid(Invalid::new("db", m));
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
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|e| {
            invalid(format!(
                "the --db URL cannot be read: {}",
                server_reason(&e, Some(url))
            ))
        })?
        .disable_statement_logging())
}

/// Open the file and `SELECT 1`, then close it.
pub(super) async fn select_one(opts: SqliteConnectOptions, url: &str) -> Result<(), ServerError> {
    let mut conn = connect_within(opts, url).await?;
    let r = conn
        .execute("SELECT 1")
        .await
        .map(drop)
        .map_err(|e| ServerError::sqlx(e, Some(url)));
    let _ = conn.close().await;
    r
}
