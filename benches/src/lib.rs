//! Fixtures shared by the criterion benches and the comparative harness
//! (`hk-bench`): stores filled with N real keys.
//!
//! Two ways to fill a store:
//! - [`fill`] issues every key through the core (`issue()`: one transaction,
//!   a change-feed row and an audit row per key) — exactly what `keygen`
//!   does, fine up to ~100k keys;
//! - [`fill_bulk`] generates real keys with the core's generator and inserts
//!   their SHA-256 digests in one big transaction (rusqlite for SQLite, the
//!   `mariadb` client for MariaDB) — what the 1M-key fixture needs. Nothing
//!   validates against the store while it is being filled, so skipping the
//!   change feed changes nothing a benchmark can observe.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use heratio_keys_core::{
    digest_hex, generate, issue, store, Actor, Dsn, IssueRequest, KeyStore, Kind, NewClient,
    Scopes, Source,
};

/// Scopes every fixture key holds.
pub const FIXTURE_SCOPES: &str = "read,write";

fn bench_client(store: &dyn KeyStore) -> i64 {
    let actor = Actor::new("bench", Source::Library);
    store
        .create_client(
            &NewClient {
                name: "bench".into(),
                email: "bench@example.org".into(),
                organization: None,
            },
            &actor,
        )
        .expect("create client")
        .id
}

/// Issues `n` API keys for one new client and returns their plaintexts.
///
/// # Panics
///
/// If the store rejects the fixture (benchmarks have nothing to measure then).
#[must_use]
pub fn fill(store: &dyn KeyStore, n: usize) -> Vec<String> {
    let actor = Actor::new("bench", Source::Library);
    let client = bench_client(store);
    (0..n)
        .map(|i| {
            issue(
                store,
                Kind::ApiKey,
                &IssueRequest {
                    client_id: client,
                    name: format!("bench-{i}"),
                    scopes: Scopes::parse(FIXTURE_SCOPES).expect("scopes"),
                    expires_at: None,
                    rate_limit: None,
                    metadata: None,
                },
                &actor,
            )
            .expect("issue")
            .key
            .expose()
            .to_owned()
        })
        .collect()
}

/// Installs the schema at `dsn`, creates one client and inserts `n` freshly
/// generated API keys (scopes `read,write`, no expiry) in one transaction.
/// Returns the plaintexts.
///
/// # Errors
///
/// A message if the store cannot be opened or the insert fails.
pub fn fill_bulk(dsn: &str, n: usize) -> Result<Vec<String>, String> {
    let parsed = Dsn::parse(dsn).map_err(|e| e.to_string())?;
    let store = store::open(&parsed).map_err(|e| e.to_string())?;
    store.install().map_err(|e| e.to_string())?;
    let client = bench_client(store.as_ref());
    drop(store);
    let now = now_ms();
    let keys: Vec<String> = (0..n)
        .map(|_| {
            generate(Kind::ApiKey)
                .map(|k| k.expose().to_owned())
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    if let Some(path) = dsn.strip_prefix("sqlite:") {
        let mut db = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let tx = db.transaction().map_err(|e| e.to_string())?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO api_key (client_id, name, key_hash, key_prefix, scopes, is_active, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
                )
                .map_err(|e| e.to_string())?;
            for (i, key) in keys.iter().enumerate() {
                insert
                    .execute(rusqlite::params![
                        client,
                        format!("bench-{i}"),
                        digest_hex(&heratio_keys_core::digest(key.as_bytes())),
                        &key[..12],
                        FIXTURE_SCOPES,
                        now
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
    } else {
        let mut sql = String::from("START TRANSACTION;\n");
        for (chunk_no, chunk) in keys.chunks(2000).enumerate() {
            sql.push_str("INSERT INTO api_key (client_id, name, key_hash, key_prefix, scopes, is_active, created_at) VALUES ");
            for (j, key) in chunk.iter().enumerate() {
                let i = chunk_no * 2000 + j;
                let sep = if j == 0 { "" } else { "," };
                let _ = write!(
                    sql,
                    "{sep}({client},'bench-{i}','{}','{}','{FIXTURE_SCOPES}',1,{now})",
                    digest_hex(&heratio_keys_core::digest(key.as_bytes())),
                    &key[..12]
                );
            }
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT;\n");
        mariadb_client(dsn, &[], Some(&sql))?;
    }
    Ok(keys)
}

/// Parts of a `mysql://user:pass@host:port/db` DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlDsn {
    /// User name.
    pub user: String,
    /// Password (may be empty).
    pub pass: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub db: String,
}

/// Parses a `mysql://` DSN (no percent-decoding: the harness makes its own).
#[must_use]
pub fn parse_mysql_dsn(dsn: &str) -> Option<MysqlDsn> {
    let rest = dsn.strip_prefix("mysql://")?;
    let (auth, hostpart) = rest.rsplit_once('@')?;
    let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, db) = hostpart.split_once('/')?;
    let db = db.split('?').next().unwrap_or_default();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 3306),
    };
    Some(MysqlDsn {
        user: user.into(),
        pass: pass.into(),
        host: host.into(),
        port,
        db: db.into(),
    })
}

/// Runs the `mariadb` command-line client against the DSN's database with
/// extra `args`, feeding `stdin`; returns its standard output.
///
/// # Errors
///
/// A message if the DSN is not `mysql://` or the client fails.
pub fn mariadb_client(dsn: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let d = parse_mysql_dsn(dsn).ok_or_else(|| "not a mysql:// DSN".to_owned())?;
    let mut child = Command::new("mariadb")
        .env("MYSQL_PWD", &d.pass)
        .args(["--protocol=TCP", "-h", &d.host, "-P", &d.port.to_string()])
        .args(["-u", &d.user, "-N", "-B", &d.db])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("mariadb client: {e}"))?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().ok_or("mariadb stdin")?;
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("mariadb client: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("mariadb client: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mariadb client failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Milliseconds since the epoch.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
#[must_use]
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The `p`-th percentile (0–100) of sorted values (nearest rank).
#[must_use]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_dsn_parts() {
        let d = parse_mysql_dsn("mysql://hk:pw@127.0.0.1:3307/heratio").expect("dsn");
        assert_eq!(d.user, "hk");
        assert_eq!(d.pass, "pw");
        assert_eq!(d.port, 3307);
        assert_eq!(d.db, "heratio");
        assert_eq!(parse_mysql_dsn("sqlite:x"), None);
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile(&v, 50.0) - 2.0).abs() < f64::EPSILON);
        assert!((percentile(&v, 99.0) - 4.0).abs() < f64::EPSILON);
    }
}
