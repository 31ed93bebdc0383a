//! `hk-bench`: the Rust half of the comparative harness
//! (`benches/harness/run.sh`). Every measuring subcommand prints one JSON
//! object on standard output; progress goes to standard error.
//!
//! ```text
//! hk-bench seed DSN N KEYS_FILE             fill a store with N real keys (bulk)
//! hk-bench revocation DSN N                 revocation propagation across processes
//! hk-bench queries DSN MALFORMED UNKNOWN DISTINCT
//!                                           store queries for malformed / unknown keys
//! hk-bench usage-rate DSN KEYS_FILE DISTINCT SECONDS MAX_RATE
//!                                           highest paced rate with no usage record
//!                                           dropped, over the first DISTINCT keys
//! hk-bench usage-cost DSN ROWS DISTINCT [SERVER_PID]
//!                                           the store's cost of writing ROWS usage
//!                                           records over DISTINCT credentials in
//!                                           host-queue batches: server CPU per row
//!                                           (from /proc/SERVER_PID) and wall time
//! hk-bench memory DSN KEYS_FILE             RSS per cached key
//! hk-bench floors KEYS_FILE PASSES          the floors of a cached validation in
//!                                           this run: SHA-256 of each key, and a
//!                                           std HashMap get of its digest over
//!                                           every key of the file, random order
//! hk-bench revoker DSN                      (internal) revokes the key ids read from stdin
//! ```

use std::io::{BufRead, BufWriter, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heratio_keys_bench::{
    fill_bulk, mariadb_client, now_ms, percentile, rss_bytes, FIXTURE_SCOPES,
};
use heratio_keys_core::{
    generate, issue, store, Actor, Dsn, IssueRequest, Kind, NewClient, Options, Request, Scopes,
    Source, Status, Validator,
};
use serde_json::json;

#[path = "hk-bench/usage_cost.rs"]
mod usage_cost;

type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("seed") if args.len() == 4 => seed(&args[1], &args[2], &args[3]),
        Some("revocation") if args.len() == 3 => revocation(&args[1], &args[2]),
        Some("revoker") if args.len() == 2 => revoker(&args[1]),
        Some("queries") if args.len() == 5 => queries(&args[1], &args[2], &args[3], &args[4]),
        Some("usage-rate") if args.len() == 6 => {
            usage_rate(&args[1], &args[2], &args[3], &args[4], &args[5])
        }
        Some("usage-cost") if args.len() == 4 || args.len() == 5 => usage_cost::run(
            &args[1],
            &args[2],
            &args[3],
            args.get(4).map(String::as_str),
        ),
        Some("memory") if args.len() == 3 => memory(&args[1], &args[2]),
        Some("floors") if args.len() == 3 => floors(&args[1], &args[2]),
        _ => {
            eprintln!("usage: see the module documentation of benches/src/bin/hk-bench.rs");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("hk-bench: {e}");
        std::process::exit(1);
    }
}

fn num<T: std::str::FromStr>(s: &str) -> Res<T> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

fn read_keys(path: &str) -> Res<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .filter(|l| l.len() == 53)
        .map(str::to_owned)
        .collect())
}

fn open(dsn: &str, options: Options) -> Res<Validator> {
    Validator::open(dsn, options).map_err(|e| e.to_string())
}

fn validate(v: &Validator, key: &[u8]) -> Status {
    v.validate(
        &Request::new(Kind::ApiKey, key)
            .scopes(&["read"])
            .ip(Some("127.0.0.1"))
            .endpoint(Some("/api/bench")),
    )
    .status
}

fn seed(dsn: &str, n: &str, file: &str) -> Res<()> {
    let n: usize = num(n)?;
    let t0 = Instant::now();
    let keys = fill_bulk(dsn, n)?;
    let mut out = BufWriter::new(std::fs::File::create(file).map_err(|e| e.to_string())?);
    for k in &keys {
        writeln!(out, "{k}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({"keys": n, "seconds": t0.elapsed().as_secs_f64()})
    );
    Ok(())
}

/// Revokes the key ids read from stdin, one per line, and answers `ok` after
/// each commit. A separate process, so the validator learns of the
/// revocation only through the store's change feed.
fn revoker(dsn: &str) -> Res<()> {
    let store =
        store::open(&Dsn::parse(dsn).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let actor = Actor::new("bench-revoker", Source::Library);
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let id: i64 = num(line.trim())?;
        store
            .revoke_credential(Kind::ApiKey, id, &actor)
            .map_err(|e| e.to_string())?;
        let mut o = stdout.lock();
        writeln!(o, "ok").map_err(|e| e.to_string())?;
        o.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn revocation(dsn: &str, n: &str) -> Res<()> {
    let n: usize = num(n)?;
    let store =
        store::open(&Dsn::parse(dsn).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    store.install().map_err(|e| e.to_string())?;
    let actor = Actor::new("bench", Source::Library);
    let client = store
        .create_client(
            &NewClient {
                name: "revocation-bench".into(),
                email: "bench@example.org".into(),
                organization: None,
            },
            &actor,
        )
        .map_err(|e| e.to_string())?;
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let issued = issue(
            store.as_ref(),
            Kind::ApiKey,
            &IssueRequest {
                client_id: client.id,
                name: format!("doomed-{i}"),
                scopes: Scopes::parse(FIXTURE_SCOPES).map_err(|e| e.to_string())?,
                expires_at: None,
                rate_limit: None,
                metadata: None,
            },
            &actor,
        )
        .map_err(|e| e.to_string())?;
        keys.push((issued.info.id, issued.key.expose().to_owned()));
    }
    let options = Options::default();
    let poll_ms = options.poll_interval().as_millis();
    let v = Arc::new(open(dsn, options)?);
    for (_, k) in &keys {
        if validate(&v, k.as_bytes()) != Status::Valid {
            return Err("a fresh key is not valid".into());
        }
    }
    // Every key is now cached as valid in this process.
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["revoker", dsn])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("revoker: {e}"))?;
    let mut to_child = child.stdin.take().ok_or("revoker stdin")?;
    let mut from_child = std::io::BufReader::new(child.stdout.take().ok_or("revoker stdout")?);

    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; n]));
    let seen: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; n]));
    let done = Arc::new(AtomicBool::new(false));
    let checker = {
        let (v, sent, seen, done) = (v.clone(), sent.clone(), seen.clone(), done.clone());
        let keys: Vec<String> = keys.iter().map(|(_, k)| k.clone()).collect();
        std::thread::spawn(move || {
            let mut stale_accepts = 0u64;
            while !done.load(Ordering::Relaxed) {
                let pending: Vec<usize> = {
                    let sent = sent.lock().expect("lock");
                    let seen = seen.lock().expect("lock");
                    (0..keys.len())
                        .filter(|&i| sent[i].is_some() && seen[i].is_none())
                        .collect()
                };
                for i in pending {
                    match validate(&v, keys[i].as_bytes()) {
                        Status::Revoked => seen.lock().expect("lock")[i] = Some(Instant::now()),
                        Status::Valid => stale_accepts += 1,
                        _ => {}
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            stale_accepts
        })
    };
    let mut commit_ms = Vec::with_capacity(n);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for (i, (id, _)) in keys.iter().enumerate() {
        let t0 = Instant::now();
        sent.lock().expect("lock")[i] = Some(t0);
        writeln!(to_child, "{id}").map_err(|e| e.to_string())?;
        to_child.flush().map_err(|e| e.to_string())?;
        let mut ack = String::new();
        from_child.read_line(&mut ack).map_err(|e| e.to_string())?;
        if ack.trim() != "ok" {
            return Err(format!("revoker failed on key {id}"));
        }
        commit_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        // Spread the revocations over the poll cycle.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(10 + rng % 40));
    }
    drop(to_child);
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && seen.lock().expect("lock").iter().any(Option::is_none) {
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Relaxed);
    let stale_accepts = checker.join().map_err(|_| "checker panicked")?;
    let sent = sent.lock().expect("lock");
    let seen = seen.lock().expect("lock");
    let mut lat: Vec<f64> = sent
        .iter()
        .zip(seen.iter())
        .filter_map(|(a, b)| Some(b.as_ref()?.duration_since(*a.as_ref()?).as_secs_f64() * 1e3))
        .collect();
    let missed = n - lat.len();
    lat.sort_by(f64::total_cmp);
    commit_ms.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "backend": format!("{:?}", store.backend()).to_lowercase(),
            "revocations": n,
            "not_seen_within_15s": missed,
            "poll_interval_ms": poll_ms,
            "p50_ms": percentile(&lat, 50.0),
            "p99_ms": percentile(&lat, 99.0),
            "max_ms": lat.last().copied().unwrap_or(f64::NAN),
            "revoke_commit_p50_ms": percentile(&commit_ms, 50.0),
            "accepted_after_revoke_request": stale_accepts,
        })
    );
    v.shutdown();
    Ok(())
}

fn com_counter(dsn: &str, name: &str) -> Option<u64> {
    let out = mariadb_client(
        dsn,
        &["-e", &format!("SHOW GLOBAL STATUS LIKE '{name}'")],
        None,
    )
    .ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

/// Malformed keys of every kind of damage, cycling through `i`: wrong
/// checksum, wrong length, bad alphabet, wrong prefix, empty.
fn malformed_key(base: &[u8], i: usize) -> Vec<u8> {
    let mut k = base.to_vec();
    match i % 5 {
        0 | 1 => {
            // One body character changed: the CRC32 no longer matches.
            let pos = 7 + (i / 5) % 40;
            let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            let mut c = alphabet[(i / 200) % 62];
            if c == k[pos] {
                c = alphabet[((i / 200) + 1) % 62];
            }
            k[pos] = c;
        }
        2 => k.truncate(1 + (i / 5) % 52),
        3 => k[7 + (i / 5) % 40] = b'-',
        _ => k[3] = b'x',
    }
    k
}

fn queries(dsn: &str, malformed: &str, unknown: &str, distinct: &str) -> Res<()> {
    let (malformed, unknown, distinct): (usize, usize, usize) =
        (num(malformed)?, num(unknown)?, num(distinct)?);
    let mysql = dsn.starts_with("mysql:");
    let v = open(dsn, Options::default())?;
    let base = generate(Kind::ApiKey).map_err(|e| e.to_string())?;
    let base = base.expose().as_bytes().to_vec();
    // Start the engine (feed head read) before counting.
    let _ = validate(&v, b"x");
    let s0 = v.stats();
    let c0 = if mysql {
        com_counter(dsn, "Com_select")
    } else {
        None
    };
    let t0 = Instant::now();
    let mut not_malformed = 0usize;
    for i in 0..malformed {
        let k = malformed_key(&base, i);
        let s = validate(&v, &k);
        if s != Status::Malformed {
            not_malformed += 1;
        }
    }
    let malformed_secs = t0.elapsed().as_secs_f64();
    let s1 = v.stats();
    let c1 = if mysql {
        com_counter(dsn, "Com_select")
    } else {
        None
    };

    let unknown_keys: Vec<String> = (0..distinct)
        .map(|_| generate(Kind::ApiKey).map(|k| k.expose().to_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    let mut not_found = 0usize;
    for i in 0..unknown {
        if validate(&v, unknown_keys[i % distinct].as_bytes()) == Status::NotFound {
            not_found += 1;
        }
    }
    let unknown_secs = t1.elapsed().as_secs_f64();
    let s2 = v.stats();
    let c2 = if mysql {
        com_counter(dsn, "Com_select")
    } else {
        None
    };
    let d = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => json!(b.saturating_sub(a)),
        _ => json!(null),
    };
    println!(
        "{}",
        json!({
            "backend": if mysql { "mysql" } else { "sqlite" },
            "malformed": malformed,
            "malformed_not_rejected": not_malformed,
            "malformed_store_queries": s1.store_queries - s0.store_queries,
            "malformed_feed_polls": s1.feed_polls - s0.feed_polls,
            "malformed_com_select": d(c0, c1),
            "malformed_ns_each": malformed_secs * 1e9 / malformed.max(1) as f64,
            "unknown": unknown,
            "unknown_distinct": distinct,
            "unknown_not_found": not_found,
            "unknown_store_queries": s2.store_queries - s1.store_queries,
            "unknown_feed_polls": s2.feed_polls - s1.feed_polls,
            "unknown_com_select": d(c1, c2),
            "unknown_ns_each": unknown_secs * 1e9 / unknown.max(1) as f64,
            "usage_dropped": s2.usage_dropped,
        })
    );
    v.shutdown();
    Ok(())
}

fn usage_rate(
    dsn: &str,
    keys_file: &str,
    distinct: &str,
    seconds: &str,
    max_rate: &str,
) -> Res<()> {
    let distinct: usize = num(distinct)?;
    let seconds: f64 = num(seconds)?;
    let max_rate: u64 = num(max_rate)?;
    let mut keys = read_keys(keys_file)?;
    keys.truncate(distinct.max(1));
    if keys.is_empty() {
        return Err("no keys".into());
    }
    let options = Options::default();
    let (queue, batch) = (options.usage_queue_capacity(), options.usage_batch_size());
    let v = open(dsn, options)?;
    for k in &keys {
        if validate(&v, k.as_bytes()) != Status::Valid {
            return Err("fixture key not valid".into());
        }
    }
    if !v.flush(Duration::from_secs(30)) {
        return Err("usage flush timed out".into());
    }
    let mut steps = Vec::new();
    let mut best = 0.0f64;
    // 2 500/s and up by about ×1.4 per step (2.5k, 3.5k, 5k, 7k, 10k, 14k, 20k…).
    let rates: Vec<u64> = (0..40)
        .map(|k| {
            let r = 2_500.0 * 2f64.powf(f64::from(k) / 2.0);
            ((r / 500.0).round() * 500.0) as u64
        })
        .take_while(|&r| r <= max_rate)
        .collect();
    let mut i = 0usize;
    for rate in rates {
        let before = v.stats();
        let start = Instant::now();
        let mut done = 0u64;
        loop {
            let elapsed = start.elapsed().as_secs_f64();
            if elapsed >= seconds {
                break;
            }
            let target = (rate as f64 * elapsed) as u64;
            if done < target {
                for _ in 0..(target - done).min(256) {
                    i = (i + 7919) % keys.len();
                    let _ = validate(&v, keys[i].as_bytes());
                    done += 1;
                }
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let at_end = v.stats();
        // Records still waiting when the step ends: a rate the writer keeps
        // up with leaves at most about a flush interval's worth behind.
        let backlog = (at_end.usage_queued - before.usage_queued)
            .saturating_sub(at_end.usage_written - before.usage_written)
            .saturating_sub(at_end.usage_dropped - before.usage_dropped);
        let flushed = v.flush(Duration::from_secs(30));
        let after = v.stats();
        let dropped = after.usage_dropped - before.usage_dropped;
        let written = after.usage_written - before.usage_written;
        let achieved = done as f64 / elapsed;
        let keeps_up = dropped == 0 && flushed && (backlog as f64) <= achieved * 1.5 + batch as f64;
        eprintln!(
            "  usage-rate: target {rate}/s achieved {achieved:.0}/s dropped {dropped} backlog {backlog} keeps_up {keeps_up}"
        );
        steps.push(json!({
            "target_per_s": rate, "achieved_per_s": achieved, "validations": done,
            "written": written, "dropped": dropped, "backlog_at_end": backlog, "keeps_up": keeps_up,
        }));
        if !keeps_up {
            break;
        }
        best = best.max(achieved);
        if achieved < 0.9 * rate as f64 {
            break; // the CPU, not the log, is the limit now
        }
    }
    println!(
        "{}",
        json!({
            "backend": format!("{:?}", v.dsn().backend()).to_lowercase(),
            "seconds_per_step": seconds,
            "distinct_keys": keys.len(),
            "queue_capacity": queue,
            "batch_size": batch,
            "max_rate_no_drop_per_s": best,
            "steps": steps,
        })
    );
    v.shutdown();
    Ok(())
}

fn memory(dsn: &str, keys_file: &str) -> Res<()> {
    let keys = read_keys(keys_file)?;
    let v = open(
        dsn,
        Options::builder()
            .cache_capacity(2 * keys.len() as u64)
            .usage_log(false)
            .build(),
    )?;
    let _ = validate(&v, keys[0].as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    let before = v.stats().cache_entries;
    let rss0 = rss_bytes().ok_or("no /proc/self/statm")?;
    let t0 = now_ms();
    for k in &keys {
        if validate(&v, k.as_bytes()) != Status::Valid {
            return Err("fixture key not valid".into());
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss1 = rss_bytes().ok_or("no /proc/self/statm")?;
    let entries = v.stats().cache_entries.saturating_sub(before).max(1);
    println!(
        "{}",
        json!({
            "backend": format!("{:?}", v.dsn().backend()).to_lowercase(),
            "keys": keys.len(),
            "cache_entries": entries,
            "rss_before_bytes": rss0,
            "rss_after_bytes": rss1,
            "bytes_per_entry": (rss1.saturating_sub(rss0)) as f64 / entries as f64,
            "fill_ms": now_ms() - t0,
        })
    );
    v.shutdown();
    Ok(())
}

/// The floors a cached validation cannot go under, measured in this run
/// next to the validations themselves: SHA-256 of a 53-byte key (the
/// core's own `digest`), and a `std::collections::HashMap` get of a 32-byte
/// digest among every key of the file (random order, so that a large table
/// pays its memory latency as the cache does). Median of the passes' means.
fn floors(keys_file: &str, passes: &str) -> Res<()> {
    use std::collections::HashMap;
    use std::hint::black_box;

    let keys = read_keys(keys_file)?;
    let passes: usize = num::<usize>(passes)?.max(3);
    let n = keys.len().max(1);
    let digests: Vec<[u8; 32]> = keys
        .iter()
        .map(|k| heratio_keys_core::format::digest(k.as_bytes()))
        .collect();
    let map: HashMap<[u8; 32], u64> = digests.iter().zip(0u64..).map(|(d, i)| (*d, i)).collect();
    // A fixed pseudo-random order, different for each pass.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut shuffle = |order: &mut Vec<usize>| {
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let j = usize::try_from(x % (i as u64 + 1)).unwrap_or(0);
            order.swap(i, j);
        }
    };
    let (mut sha, mut get) = (Vec::new(), Vec::new());
    for _ in 0..passes {
        shuffle(&mut order);
        let t = Instant::now();
        for &i in &order {
            black_box(heratio_keys_core::format::digest(black_box(
                keys[i].as_bytes(),
            )));
        }
        sha.push(t.elapsed().as_nanos() as f64 / n as f64);
        shuffle(&mut order);
        let t = Instant::now();
        for &i in &order {
            black_box(map.get(black_box(&digests[i])));
        }
        get.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (sha, get) = (median(&mut sha), median(&mut get));
    println!(
        "{}",
        json!({
            "keys": keys.len(),
            "passes": passes,
            "sha256_ns": sha,
            "hashmap_get_ns": get,
            "sum_ns": sha + get,
        })
    );
    Ok(())
}
