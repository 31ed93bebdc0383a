//! `hk-retention`: statistics on a big usage log before and after the
//! daily rollups, and prune throughput (figures in BENCHMARKS.md,
//! "Retention and rollups").
//!
//! ```text
//! hk-retention DSN ROWS [DAYS]
//! ```
//!
//! Installs the schema at DSN (use an empty database), issues 200 API keys
//! to one client and writes ROWS usage rows through the core's usage writer
//! (the flusher's path: multi-row inserts plus the rollup upserts in one
//! transaction), spread evenly over the last DAYS days (default 120), 95 %
//! valid. Then times, five runs each, median:
//! - `before_*`: the per-day query the statistics ran before schema 8
//!   (`GROUP BY created_at / day` over `usage_log`, commit 9d08f37);
//! - `after_*`: the whole `usage_stats` call as `keygen stats` and the
//!   dashboard make it now (reading `usage_daily`);
//!
//! for 30 days (the default window of both) and 90 days; then prunes with
//! the defaults (90 days of usage) and reports rows deleted per second.
//! One JSON object on standard output; progress on standard error.
//!
//! On MariaDB the old query runs through the `mariadb` client; its start-up
//! time (a `SELECT 1` timed the same way) is subtracted.

use std::time::Instant;

use heratio_keys_bench::{mariadb_client, now_ms};
use heratio_keys_core::model::DAY_MS;
use heratio_keys_core::{
    issue, store, Actor, Dsn, IssueRequest, KeyStore, Kind, NewClient, Retention, Scopes, Source,
    StatsQuery, Status, UsageRecord,
};
use serde_json::json;

type Res<T> = Result<T, String>;

const KEYS: i64 = 200;
const RUNS: usize = 5;
const WRITE_BATCH: usize = 20_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [dsn, rows] => run(dsn, rows, "120"),
        [dsn, rows, days] => run(dsn, rows, days),
        _ => Err("usage: hk-retention DSN ROWS [DAYS]".to_owned()),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("hk-retention: {e}");
            std::process::exit(1);
        }
    }
}

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> Res<T>) -> Res<(T, f64)> {
    let start = Instant::now();
    let v = f()?;
    Ok((v, start.elapsed().as_secs_f64() * 1000.0))
}

fn run(dsn: &str, rows: &str, days: &str) -> Res<serde_json::Value> {
    let rows: i64 = rows.parse().map_err(|_| "ROWS: not a number")?;
    let days: i64 = days.parse().map_err(|_| "DAYS: not a number")?;
    let parsed = Dsn::parse(dsn).map_err(|e| e.to_string())?;
    let store = store::open(&parsed).map_err(|e| e.to_string())?;
    store.install().map_err(|e| e.to_string())?;
    let (client, keys) = credentials(store.as_ref())?;
    let now = now_ms();

    let (_, fill_ms) = timed(|| fill(store.as_ref(), client, &keys, rows, days, now))?;
    eprintln!("filled {rows} rows in {:.1} s", fill_ms / 1000.0);

    let mut out = json!({
        "store": format!("{:?}", store.backend()).to_lowercase(),
        "rows": rows,
        "days": days,
        "credentials": KEYS,
        "fill_rows_per_s": (rows as f64 / (fill_ms / 1000.0)).round(),
    });
    for window in [30u32, 90] {
        let old = old_stats_ms(dsn, &parsed, now, window)?;
        let (new, totals) = new_stats_ms(store.as_ref(), now, window)?;
        eprintln!("{window} days: before {old:.1} ms, after {new:.1} ms");
        out[format!("before_{window}d_ms")] = json!((old * 10.0).round() / 10.0);
        out[format!("after_{window}d_ms")] = json!((new * 10.0).round() / 10.0);
        out[format!("validations_{window}d")] = json!(totals);
    }

    let (pruned, prune_ms) = timed(|| {
        store
            .prune(&Retention {
                now,
                ..Retention::defaults()
            })
            .map_err(|e| e.to_string())
    })?;
    eprintln!(
        "pruned {} rows in {:.1} s",
        pruned.usage_rows,
        prune_ms / 1000.0
    );
    out["pruned_rows"] = json!(pruned.usage_rows);
    out["prune_ms"] = json!(prune_ms.round());
    out["prune_rows_per_s"] = json!((pruned.usage_rows as f64 / (prune_ms / 1000.0)).round());
    let (after_prune, totals) = new_stats_ms(store.as_ref(), now, 90)?;
    out["after_prune_90d_ms"] = json!((after_prune * 10.0).round() / 10.0);
    out["validations_90d_after_prune"] = json!(totals);
    Ok(out)
}

fn credentials(store: &dyn KeyStore) -> Res<(i64, Vec<i64>)> {
    let actor = Actor::new("bench", Source::Library);
    let client = store
        .create_client(
            &NewClient {
                name: "retention bench".into(),
                email: "bench@example.org".into(),
                organization: None,
            },
            &actor,
        )
        .map_err(|e| e.to_string())?
        .id;
    let mut ids = Vec::new();
    for i in 0..KEYS {
        let issued = issue(
            store,
            Kind::ApiKey,
            &IssueRequest {
                client_id: client,
                name: format!("bench-{i}"),
                scopes: Scopes::all(),
                expires_at: None,
                rate_limit: None,
                metadata: None,
            },
            &actor,
        )
        .map_err(|e| e.to_string())?;
        ids.push(issued.info.id);
    }
    Ok((client, ids))
}

/// `rows` records, evenly spaced over `days` days ending an hour ago, in
/// time order (as the flusher writes them).
fn fill(
    store: &dyn KeyStore,
    client: i64,
    keys: &[i64],
    rows: i64,
    days: i64,
    now: i64,
) -> Res<()> {
    let start = now - days * DAY_MS;
    let step = ((days * DAY_MS - 3_600_000) / rows.max(1)).max(1);
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let len = i64::try_from(keys.len()).map_err(|e| e.to_string())?;
    for i in 0..rows {
        batch.push(UsageRecord {
            kind: Kind::ApiKey,
            credential_id: Some(keys[usize::try_from(i % len).unwrap_or(0)]),
            client_id: Some(client),
            at: start + i * step,
            ip: Some(format!("192.0.2.{}", i % 250)),
            endpoint: Some("/api/v1/informationobjects".into()),
            status: if i % 20 == 0 {
                Status::Forbidden
            } else {
                Status::Valid
            },
        });
        if batch.len() == WRITE_BATCH || i == rows - 1 {
            store.write_usage(&batch).map_err(|e| e.to_string())?;
            batch.clear();
            if (i + 1) % 1_000_000 < WRITE_BATCH as i64 {
                eprintln!("  {} rows", i + 1);
            }
        }
    }
    Ok(())
}

fn new_stats_ms(store: &dyn KeyStore, now: i64, days: u32) -> Res<(f64, i64)> {
    let mut samples = Vec::new();
    let mut total = 0;
    for _ in 0..RUNS {
        let (s, ms) = timed(|| {
            store
                .usage_stats(&StatsQuery {
                    client_id: None,
                    now,
                    days,
                    top: 10,
                })
                .map_err(|e| e.to_string())
        })?;
        total = s.validations;
        samples.push(ms);
    }
    Ok((median_ms(samples), total))
}

/// The per-day aggregation of commit 9d08f37's `usage_stats`, verbatim but
/// for the dialect's integer division.
fn old_stats_ms(dsn: &str, parsed: &Dsn, now: i64, days: u32) -> Res<f64> {
    let today = now.div_euclid(DAY_MS);
    let since = (today - i64::from(days) + 1) * DAY_MS;
    let sql = |div: &str| {
        format!(
            "SELECT created_at {div} 86400000 AS day, COUNT(*), \
             COALESCE(SUM(CASE WHEN status = 0 THEN 1 ELSE 0 END), 0) \
             FROM usage_log WHERE created_at >= {since} AND created_at <= {now} \
             GROUP BY created_at {div} 86400000 ORDER BY day"
        )
    };
    let mut samples = Vec::new();
    match parsed {
        Dsn::Sqlite { path } => {
            let db = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
            let q = sql("/");
            for _ in 0..RUNS {
                let (_, ms) = timed(|| {
                    let mut stmt = db.prepare(&q).map_err(|e| e.to_string())?;
                    let n = stmt
                        .query_map([], |r| r.get::<_, i64>(1))
                        .map_err(|e| e.to_string())?
                        .count();
                    Ok(n)
                })?;
                samples.push(ms);
            }
            Ok(median_ms(samples))
        }
        _ => {
            let q = sql("DIV");
            let mut base = Vec::new();
            for _ in 0..RUNS {
                base.push(timed(|| mariadb_client(dsn, &["-e", "SELECT 1"], None))?.1);
                samples.push(timed(|| mariadb_client(dsn, &["-e", &q], None))?.1);
            }
            Ok(median_ms(samples) - median_ms(base))
        }
    }
}
