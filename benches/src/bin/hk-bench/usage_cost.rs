//! `hk-bench usage-cost`: what one recorded validation costs the store.

use std::time::Instant;

use heratio_keys_bench::now_ms;
use heratio_keys_core::{store, Dsn, Kind, Options, Status};
use serde_json::json;

use super::{num, Res};

/// CPU time (user + system) of a process, in seconds, from /proc.
fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

/// What one logged validation costs the store: ROWS records of existing
/// credentials (ids 1..=DISTINCT), written as the host leader writes them
/// (batches of the default batch size, each committing its queue
/// position), timestamps one per 50 µs as under load.
pub(crate) fn run(dsn: &str, rows: &str, distinct: &str, server_pid: Option<&str>) -> Res<()> {
    use heratio_keys_core::model::UsageRecord;
    let rows: usize = num(rows)?;
    let distinct: i64 = num::<i64>(distinct)?.max(1);
    let batch = Options::default().usage_batch_size();
    let dsn = Dsn::parse(dsn).map_err(|e| e.to_string())?;
    let store = store::open(&dsn).map_err(|e| e.to_string())?;
    let start_ms = now_ms();
    let records: Vec<UsageRecord> = (0..rows)
        .map(|i| UsageRecord {
            kind: Kind::ApiKey,
            credential_id: Some(1 + (i as i64 * 7919) % distinct),
            client_id: Some(1),
            at: start_ms + i as i64 / 20,
            ip: Some(format!("10.0.{}.{}", (i / 250) % 250, i % 250)),
            endpoint: Some("/api/informationobjects".to_owned()),
            status: Status::Valid,
        })
        .collect();
    let cpu0 = server_pid.and_then(process_cpu_seconds);
    let own0 = process_cpu_seconds("self");
    let t0 = Instant::now();
    for (n, chunk) in records.chunks(batch).enumerate() {
        store
            .write_usage_through(chunk, "usage-cost", ((n + 1) * batch) as i64)
            .map_err(|e| e.to_string())?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = server_pid.and_then(process_cpu_seconds);
    let own_cpu_us = match (own0, process_cpu_seconds("self")) {
        (Some(a), Some(b)) => Some((b - a) * 1e6 / rows.max(1) as f64),
        _ => None,
    };
    let server_cpu_us = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some((b - a) * 1e6 / rows.max(1) as f64),
        _ => None,
    };
    println!(
        "{}",
        json!({
            "backend": format!("{:?}", dsn.backend()).to_lowercase(),
            "rows": rows,
            "distinct_credentials": distinct,
            "batch_size": batch,
            "wall_us_per_row": wall * 1e6 / rows.max(1) as f64,
            "server_cpu_us_per_row": server_cpu_us,
            "writer_cpu_us_per_row": own_cpu_us,
        })
    );
    Ok(())
}
