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

/// Run statements; the first error as text.
pub fn sql_try(url: &str, stmts: &[&str]) -> Result<(), String> {
    rt().block_on(async {
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            for s in stmts {
                sqlx::raw_sql(s)
                    .execute(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let _ = c.close().await;
        } else {
            let mut c = sqlx::MySqlConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            for s in stmts {
                sqlx::raw_sql(s)
                    .execute(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let _ = c.close().await;
        }
        Ok(())
    })
}

pub fn sql(url: &str, stmts: &[&str]) {
    if let Err(e) = sql_try(url, stmts) {
        panic!("{stmts:?} on {url}: {e}");
    }
}

/// One integer from a query (COUNT(*) and the like).
pub fn count_try(url: &str, query: &str) -> Result<i64, String> {
    rt().block_on(async {
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            let n: i64 = sqlx::query_scalar(query)
                .fetch_one(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let _ = c.close().await;
            Ok(n)
        } else {
            let mut c = sqlx::MySqlConnection::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            let n: i64 = sqlx::query_scalar(query)
                .fetch_one(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let _ = c.close().await;
            Ok(n)
        }
    })
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
