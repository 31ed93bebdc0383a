//! The test MariaDB named by `HERATIO_KEYS_TEST_MYSQL_DSN` (started by
//! `scripts/test.sh`), reached directly with `mysql_async` so tests can
//! create, inspect and drop their own databases.

use std::sync::atomic::{AtomicU32, Ordering};

use mysql_async::prelude::Queryable;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The test server's DSN; `None` (printing SKIPPED) when it is not
/// configured, unless `HERATIO_KEYS_REQUIRE_MYSQL=1`, which makes a missing
/// DSN a failure — so CI can never skip the MariaDB tests silently.
#[must_use]
pub fn mysql_base() -> Option<String> {
    match std::env::var("HERATIO_KEYS_TEST_MYSQL_DSN") {
        Ok(base) if !base.trim().is_empty() => Some(base),
        _ => {
            assert!(
                std::env::var("HERATIO_KEYS_REQUIRE_MYSQL").as_deref() != Ok("1"),
                "HERATIO_KEYS_REQUIRE_MYSQL=1 but HERATIO_KEYS_TEST_MYSQL_DSN is not set"
            );
            eprintln!(
                "SKIPPED: MySQL test (set HERATIO_KEYS_TEST_MYSQL_DSN or run scripts/test.sh)"
            );
            None
        }
    }
}

/// A database name no other test (or test process) uses: `hk_test_<tag>_…`.
#[must_use]
pub fn unique_database_name(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "hk_test_{tag}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Replaces the database part of a MySQL URL.
#[must_use]
pub fn with_database(url: &str, db: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    format!("{base}/{db}")
}

/// Runs SQL on the server at `url` (a DSN whose database exists).
///
/// # Errors
///
/// The driver's error; for destructors, which must not panic.
pub fn try_mysql_exec(url: &str, sql: &str) -> Result<(), mysql_async::Error> {
    runtime().block_on(async {
        let mut conn = mysql_async::Conn::from_url(url).await?;
        conn.query_drop(sql).await?;
        conn.disconnect().await
    })
}

/// Runs SQL on the server at `url`, panicking on failure.
pub fn mysql_exec(url: &str, sql: &str) {
    try_mysql_exec(url, sql).expect("run SQL on the test MariaDB");
}

/// Every value of every row of `table`, as text.
#[must_use]
pub fn mysql_dump(url: &str, table: &str) -> Vec<String> {
    mysql_texts(url, &format!("SELECT * FROM {table}"))
}

/// Every value of every row `sql` returns, as text, row after row.
#[must_use]
pub fn mysql_texts(url: &str, sql: &str) -> Vec<String> {
    runtime().block_on(async {
        let mut conn = mysql_async::Conn::from_url(url)
            .await
            .expect("connect to test MariaDB");
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.expect("query");
        conn.disconnect().await.expect("disconnect");
        rows.into_iter()
            .flat_map(mysql_async::Row::unwrap)
            .map(|v| match v {
                mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    })
}
