//! SQL helpers for tests that use the throwaway servers of `scripts/test-db.sh`.
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
