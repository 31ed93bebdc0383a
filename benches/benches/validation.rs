//! Criterion benchmarks of the validation paths.
//!
//! MariaDB benchmarks run when `HERATIO_KEYS_BENCH_MYSQL_DSN` (or
//! `HERATIO_KEYS_TEST_MYSQL_DSN`) names an installed, writable database.
//!
//! The cached-key fixtures (1k, 100k, 1M keys) are real generated keys whose
//! SHA-256 digests are bulk-inserted into a bench-only SQLite file in one
//! transaction ([`fill_bulk`]); issuing 1M keys one transaction at a time
//! would take longer than every benchmark together. `HK_BENCH_MAX_KEYS`
//! caps the largest fixture (default 1 000 000).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use heratio_keys_bench::{fill, fill_bulk};
use heratio_keys_core::{
    check_format, digest, store, Kind, Options, OptionsBuilder, Request, Status, Validator,
};

fn sqlite_dsn(dir: &std::path::Path) -> String {
    format!("sqlite:{}", dir.join("bench.db").display())
}

fn open_store(dsn: &str) -> std::sync::Arc<dyn heratio_keys_core::KeyStore> {
    let store = store::open(&store::Dsn::parse(dsn).expect("dsn")).expect("open store");
    store.install().expect("install");
    store
}

/// A validator whose cache holds `n` real keys (usage logging on, as in
/// production), the keys, and the directory to delete afterwards.
fn cached_fixture(n: usize) -> (Validator, Vec<String>, std::path::PathBuf) {
    let dir = tempfile_dir();
    let dsn = sqlite_dsn(&dir);
    let t0 = std::time::Instant::now();
    let keys = fill_bulk(&dsn, n).expect("bulk fixture");
    // A TTL longer than the fixture build and the measurement, so that the
    // benchmark measures hits only (checked after each run).
    let v = Validator::open(&dsn, cached_options(n).build()).expect("validator");
    // Two threads fill the cache (one store query per key).
    std::thread::scope(|s| {
        for half in keys.chunks(keys.len().div_ceil(2)) {
            let v = &v;
            s.spawn(move || {
                for key in half {
                    assert_eq!(
                        v.validate(&Request::new(Kind::ApiKey, key.as_bytes()))
                            .status,
                        Status::Valid
                    );
                }
            });
        }
    });
    eprintln!(
        "fixture: {n} keys inserted and cached in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    (v, keys, dir)
}

fn cached_options(n: usize) -> OptionsBuilder {
    Options::builder()
        .cache_capacity(2 * n as u64)
        .cache_ttl(Duration::from_secs(3600))
}

/// Panics if the cache missed during a benchmark that should only hit.
fn assert_no_new_misses(v: &Validator, before: u64, what: &str) {
    let misses = v.stats().cache_misses - before;
    assert_eq!(
        misses, 0,
        "{what}: {misses} cache misses during the benchmark"
    );
}

/// Cached validation with `n` keys in the cache, usage logging on.
fn cached(c: &mut Criterion, n: usize) {
    let (v, keys, dir) = cached_fixture(n);
    let misses = v.stats().cache_misses;
    let mut i = 0usize;
    c.bench_function(&format!("validate/cached/{n}_keys"), |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let r = Request::new(Kind::ApiKey, keys[i].as_bytes()).scopes(&["read"]);
            black_box(v.validate(black_box(&r)).status)
        });
    });
    if n == 100_000 {
        threads(c, &v, &keys, "usage_on");
    }
    assert_no_new_misses(&v, misses, "validate/cached");
    drop(v);
    if n == 100_000 {
        // The same without usage logging: the hot path alone, no flusher
        // thread competing for the two cores.
        let v = Validator::open(
            &sqlite_dsn(&dir),
            cached_options(n).usage_log(false).build(),
        )
        .expect("validator");
        for key in &keys {
            let _ = v.validate(&Request::new(Kind::ApiKey, key.as_bytes()));
        }
        let misses = v.stats().cache_misses;
        c.bench_function("validate/cached/100000_keys_usage_off", |b| {
            b.iter(|| {
                i = (i + 7919) % keys.len();
                let r = Request::new(Kind::ApiKey, keys[i].as_bytes()).scopes(&["read"]);
                black_box(v.validate(black_box(&r)).status)
            });
        });
        threads(c, &v, &keys, "usage_off");
        assert_no_new_misses(&v, misses, "validate/cached/100000_keys_usage_off");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Throughput of one validator shared by 1 and 2 threads (100k cached keys):
/// criterion reports time per validation across all threads.
fn threads(c: &mut Criterion, v: &Validator, keys: &[String], usage: &str) {
    let mut group = c.benchmark_group(format!("validate/throughput_100000_keys_{usage}"));
    group.throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads as u64);
                let start = std::time::Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        s.spawn(move || {
                            let mut i = t * 50_021;
                            for _ in 0..per_thread {
                                i = (i + 7919) % keys.len();
                                let r = Request::new(Kind::ApiKey, keys[i].as_bytes())
                                    .scopes(&["read"]);
                                black_box(v.validate(&r).status);
                            }
                        });
                    }
                });
                // Wall time for `iters` validations in total.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
            });
        });
    }
    group.finish();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hk-bench-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn bench_cached(c: &mut Criterion) {
    let max: usize = std::env::var("HK_BENCH_MAX_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    for n in [1_000, 100_000, 1_000_000] {
        if n <= max {
            cached(c, n);
        }
    }
}

fn bench_rejections(c: &mut Criterion) {
    let dir = tempfile_dir();
    let dsn = sqlite_dsn(&dir);
    let keys = fill(open_store(&dsn).as_ref(), 10);
    let v = Validator::open(&dsn, Options::default()).expect("validator");
    let malformed = b"hk_api_00000000000000000000000000000000000000001Wtgbs";
    c.bench_function("validate/malformed", |b| {
        b.iter(|| {
            black_box(
                v.validate(&Request::new(Kind::ApiKey, black_box(malformed)))
                    .status,
            )
        });
    });
    let token = heratio_keys_core::generate(Kind::AiToken).expect("token");
    c.bench_function("validate/wrong_kind", |b| {
        b.iter(|| {
            black_box(
                v.validate(&Request::new(
                    Kind::ApiKey,
                    black_box(token.expose().as_bytes()),
                ))
                .status,
            )
        });
    });
    let unknown = heratio_keys_core::generate(Kind::ApiKey).expect("key");
    assert_eq!(
        v.validate(&Request::new(Kind::ApiKey, unknown.expose().as_bytes()))
            .status,
        Status::NotFound
    );
    c.bench_function("validate/negative_cache_hit", |b| {
        b.iter(|| {
            black_box(
                v.validate(&Request::new(
                    Kind::ApiKey,
                    black_box(unknown.expose().as_bytes()),
                ))
                .status,
            )
        });
    });
    c.bench_function("format/check_format", |b| {
        b.iter(|| black_box(check_format(Kind::ApiKey, black_box(keys[0].as_bytes()))));
    });
    c.bench_function("floor/sha256_53_bytes", |b| {
        b.iter(|| black_box(digest(black_box(keys[0].as_bytes()))));
    });
    c.bench_function("generate/api_key", |b| {
        b.iter(|| black_box(heratio_keys_core::generate(Kind::ApiKey).expect("generate")));
    });
    drop(v);
    let _ = std::fs::remove_dir_all(dir);
}

fn bench_cache_floor(c: &mut Criterion) {
    let cache: moka::sync::Cache<[u8; 32], std::sync::Arc<u64>> = moka::sync::Cache::new(200_000);
    let digests: Vec<[u8; 32]> = (0..100_000u32).map(|i| digest(&i.to_le_bytes())).collect();
    for (i, d) in digests.iter().enumerate() {
        cache.insert(*d, std::sync::Arc::new(i as u64));
    }
    let mut i = 0usize;
    c.bench_function("floor/moka_get_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % digests.len();
            black_box(cache.get(&digests[i]))
        });
    });
    let map: std::collections::HashMap<[u8; 32], std::sync::Arc<u64>> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| (*d, std::sync::Arc::new(i as u64)))
        .collect();
    c.bench_function("floor/hashmap_get_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % digests.len();
            black_box(map.get(&digests[i]).cloned())
        });
    });
}

/// A miss: the cache holds nothing, so every validation queries the store.
fn miss(c: &mut Criterion, name: &str, dsn: &str) {
    let keys = fill(open_store(dsn).as_ref(), 1000);
    let v = Validator::open(
        dsn,
        Options::builder()
            .cache_capacity(0)
            .usage_log(false)
            .build(),
    )
    .expect("validator");
    let mut i = 0usize;
    c.bench_function(&format!("validate/miss/{name}"), |b| {
        b.iter_batched(
            || {
                i = (i + 7919) % keys.len();
                keys[i].clone()
            },
            |key| {
                black_box(
                    v.validate(&Request::new(Kind::ApiKey, key.as_bytes()))
                        .status,
                )
            },
            BatchSize::SmallInput,
        );
    });
}

fn bench_misses(c: &mut Criterion) {
    let dir = tempfile_dir();
    miss(c, "sqlite", &sqlite_dsn(&dir));
    let _ = std::fs::remove_dir_all(dir);
    let mysql = std::env::var("HERATIO_KEYS_BENCH_MYSQL_DSN")
        .or_else(|_| std::env::var("HERATIO_KEYS_TEST_MYSQL_DSN"));
    match mysql {
        Ok(dsn) => miss(c, "mariadb", &dsn),
        Err(_) => eprintln!("skipping validate/miss/mariadb: set HERATIO_KEYS_BENCH_MYSQL_DSN"),
    }
}

/// Cached validation of a plain key beside the lifecycle states that add
/// work to a hit: an IP allowlist (the caller's address parsed and matched
/// against four networks), and a key rotated away and in its grace period
/// (an expiry to check), all in one cache and one run.
fn bench_lifecycle_states(c: &mut Criterion) {
    let dir = tempfile_dir();
    let dsn = sqlite_dsn(&dir);
    let store = open_store(&dsn);
    let actor = heratio_keys_core::Actor::new("bench", heratio_keys_core::Source::Library);
    let keys = heratio_keys_bench::fill(store.as_ref(), 3);
    let id = |key: &str| {
        store
            .find_credential(Kind::ApiKey, &digest(key.as_bytes()))
            .expect("lookup")
            .expect("stored")
            .id
    };
    let allowed = heratio_keys_core::AllowedIps::parse(
        "192.0.2.0/24,198.51.100.0/24,2001:db8::/32,10.0.0.0/8",
    )
    .expect("allowlist");
    store
        .set_credential_allowed_ips(Kind::ApiKey, id(&keys[1]), Some(&allowed), &actor)
        .expect("allowlist set");
    heratio_keys_core::rotate(
        store.as_ref(),
        Kind::ApiKey,
        id(&keys[2]),
        3_600_000,
        &actor,
    )
    .expect("rotate");
    let v = Validator::open(&dsn, cached_options(16).build()).expect("validator");
    let cases = [
        ("plain", &keys[0], "10.1.2.3"),
        ("allowlist_4_networks", &keys[1], "10.1.2.3"),
        ("rotated_in_grace", &keys[2], "10.1.2.3"),
    ];
    for (_, key, ip) in cases {
        let r = v.validate(&Request::new(Kind::ApiKey, key.as_bytes()).ip(Some(ip)));
        assert_eq!(r.status, Status::Valid, "fixture");
    }
    let misses = v.stats().cache_misses;
    let mut group = c.benchmark_group("validate/cached_state");
    for (name, key, ip) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(v.validate(black_box(
                    &Request::new(Kind::ApiKey, key.as_bytes()).ip(Some(ip)),
                )))
            });
        });
    }
    group.finish();
    assert_no_new_misses(&v, misses, "validate/cached_state");
    drop(v);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_cached, bench_lifecycle_states, bench_rejections, bench_cache_floor, bench_misses
}
criterion_main!(benches);
