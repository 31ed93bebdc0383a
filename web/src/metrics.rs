//! What `GET /metrics` reports, in the Prometheus text format 0.0.4 (the
//! `prometheus` crate's registry and encoder; see `docs/metrics.md`).
//!
//! Two sources: counters this crate keeps as requests happen (verify
//! answers, HTTP requests, logins), each an atomic add on the request's
//! path; and the validator's own counters ([`Stats`]), read once per
//! scrape and rendered from a snapshot, so the hot path pays nothing for
//! them.
//!
//! Labels hold only bounded, non-secret values: a kind (`api`, `ai`), a
//! status name, an HTTP method from a fixed list, a route *template*
//! (`/clients/{id}`, never the path asked for), a status code, a fixed
//! reason. Never a key, prefix, client, user name, address or DSN.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use heratio_keys_core::{Kind, Stats, Status, Validator};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Every metric's name starts with this.
const PREFIX: &str = "heratio_keys_";

/// The route label of a request that matched no route (404s), so scans of
/// random paths add one series, not one per path.
pub(crate) const UNMATCHED: &str = "unmatched";

/// Counters kept by the server, and the validator whose counters are read
/// at each scrape.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// `[kind][status code]`, resolved once so a verify answer is counted
    /// with one atomic add, no label lookup.
    validations: Vec<Vec<IntCounter>>,
    http: IntCounterVec,
    pub verify_throttled: IntCounter,
    pub login_failures: IntCounter,
    pub login_lockouts: IntCounter,
    pub login_refused_locked: IntCounter,
    pub login_refused_busy: IntCounter,
    validator: Arc<Validator>,
    /// When the validator was opened (just before this), for the feed lag
    /// before the feed's first read.
    started: Instant,
}

fn name(short: &str) -> String {
    format!("{PREFIX}{short}")
}

fn counter(registry: &Registry, short: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name(short), help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// The server's counters, all at zero. Fails only on an invalid or
    /// duplicate metric name, a programming error every test would show.
    pub(crate) fn new(validator: Arc<Validator>) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let info = IntGauge::with_opts(
            Opts::new(
                name("build_info"),
                "Always 1; the version label says which heratio-keys serves.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        info.set(1);
        registry.register(Box::new(info))?;
        let by_status = IntCounterVec::new(
            Opts::new(
                name("validations_total"),
                "POST /v1/verify answers, by the credential kind asked for and status.",
            ),
            &["kind", "status"],
        )?;
        registry.register(Box::new(by_status.clone()))?;
        // Every (kind, status) pair exists from the start, at 0: a status
        // seen for the first time then shows as an increase, not as a new
        // series that rate() would miss.
        let validations = Kind::ALL
            .iter()
            .map(|kind| {
                Status::ALL
                    .iter()
                    .map(|status| {
                        by_status.get_metric_with_label_values(&[kind.short_name(), status.name()])
                    })
                    .collect::<prometheus::Result<Vec<_>>>()
            })
            .collect::<prometheus::Result<Vec<_>>>()?;
        let http = IntCounterVec::new(
            Opts::new(
                name("http_requests_total"),
                "HTTP requests answered, by method, route template and status code.",
            ),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(http.clone()))?;
        Ok(Metrics {
            validations,
            http,
            verify_throttled: counter(
                &registry,
                "verify_throttled_total",
                "POST /v1/verify requests refused (429) by the per-source throttle, before any validation.",
            )?,
            login_failures: counter(
                &registry,
                "login_failures_total",
                "Administrator logins refused for a wrong user name or password (or a disabled account).",
            )?,
            login_lockouts: counter(
                &registry,
                "login_lockouts_total",
                "Login lock-outs (of a user name from a source, or of a whole source) that refused an attempt.",
            )?,
            login_refused_locked: counter(
                &registry,
                "login_refused_locked_out_total",
                "Login attempts refused (429) without a password check because of a lock-out.",
            )?,
            login_refused_busy: counter(
                &registry,
                "login_refused_busy_total",
                "Login attempts refused (503) because the password checks or the throttle table were full.",
            )?,
            registry,
            validator,
            started: Instant::now(),
        })
    }

    /// Counts one `/v1/verify` answer.
    pub(crate) fn validation(&self, kind: Kind, status: Status) {
        let k = usize::from(kind.code()).saturating_sub(1);
        if let Some(c) = self
            .validations
            .get(k)
            .and_then(|row| row.get(usize::from(status.code())))
        {
            c.inc();
        }
    }

    /// Counts one HTTP answer.
    pub(crate) fn request(&self, method: &Method, route: &str, status: u16) {
        let method = match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            // Anything else is answered 405 or 404; one series for all, so
            // invented methods cannot add series.
            _ => "other",
        };
        let code = status.to_string();
        if let Ok(c) = self
            .http
            .get_metric_with_label_values(&[method, route, &code])
        {
            c.inc();
        }
    }

    /// The whole exposition, as `GET /metrics` answers it.
    pub(crate) fn render(&self) -> prometheus::Result<String> {
        let mut families = self.registry.gather();
        families.extend(validator_families(
            &self.validator.stats(),
            self.started.elapsed(),
        )?);
        prometheus::TextEncoder::new().encode_to_string(&families)
    }
}

/// The validator's counters, as metric families, from one snapshot.
///
/// A registry of its own per scrape: the snapshot's values are set on
/// fresh metrics (a few dozen small allocations, once per scrape) instead of
/// hand-building the encoder's structures.
///
/// `age` is how long the validator has run: the feed lag until its first
/// successful read.
fn validator_families(s: &Stats, age: Duration) -> prometheus::Result<Vec<MetricFamily>> {
    let reg = Registry::new();
    let counter = |short: &str, help: &str, value: u64| -> prometheus::Result<()> {
        let c = IntCounter::new(name(short), help)?;
        c.inc_by(value);
        reg.register(Box::new(c))
    };
    let gauge = |short: &str, help: &str, value: u64| -> prometheus::Result<()> {
        let g = IntGauge::new(name(short), help)?;
        g.set(i64::try_from(value).unwrap_or(i64::MAX));
        reg.register(Box::new(g))
    };
    counter(
        "cache_hits_total",
        "Validations answered from the in-process cache.",
        s.cache_hits,
    )?;
    counter(
        "cache_misses_total",
        "Validations that needed a store lookup.",
        s.cache_misses,
    )?;
    gauge(
        "cache_entries",
        "Entries in the in-process cache now (approximate; 0 when the host cache is used).",
        s.cache_entries,
    )?;
    counter(
        "store_queries_total",
        "Credential lookups sent to the store.",
        s.store_queries,
    )?;
    counter(
        "store_errors_total",
        "Credential lookups that failed.",
        s.store_errors,
    )?;
    counter(
        "feed_polls_total",
        "Successful reads of the revocation feed.",
        s.feed_polls,
    )?;
    counter(
        "feed_errors_total",
        "Failed reads of the revocation feed.",
        s.feed_errors,
    )?;
    counter(
        "feed_evictions_total",
        "Cache entries evicted because of feed rows.",
        s.feed_evictions,
    )?;
    let lag = Gauge::new(
        name("feed_lag_seconds"),
        "Seconds since the revocation feed was last read successfully (since the server started, before the first read).",
    )?;
    // Never read counts from the start, so an alert on `> N` also fires
    // for a server that never managed to read the feed. (Not +Inf: the
    // encoder writes Rust's `inf`, which is not the text format's `+Inf`.)
    lag.set(
        s.feed_lag_ms
            .map_or(age, Duration::from_millis)
            .as_secs_f64(),
    );
    reg.register(Box::new(lag))?;
    gauge(
        "usage_queued",
        "Usage records waiting to be written.",
        s.usage_queued,
    )?;
    counter(
        "usage_written_total",
        "Usage records written.",
        s.usage_written,
    )?;
    counter(
        "usage_dropped_total",
        "Usage records dropped (queue full while its writer had stopped, or unwritable at shutdown).",
        s.usage_dropped,
    )?;
    counter(
        "usage_write_errors_total",
        "Failed usage batch writes (retried).",
        s.usage_write_errors,
    )?;
    if let Some(h) = &s.host {
        gauge(
            "host_leader",
            "1 while this process leads the host region (polls the feed, writes usage).",
            u64::from(h.leader),
        )?;
        counter(
            "host_hits_total",
            "Validations answered from the host cache, all processes of the host.",
            h.hits,
        )?;
        counter(
            "host_misses_total",
            "Validations that needed a store lookup, all processes of the host.",
            h.misses,
        )?;
        counter(
            "host_fills_total",
            "Answers stored in the host cache.",
            h.fills,
        )?;
        gauge("host_entries", "Occupied host cache slots now.", h.entries)?;
        counter(
            "host_corrupt_total",
            "Host cache slots found damaged (read as misses).",
            h.corrupt,
        )?;
        gauge(
            "host_queued",
            "Usage records queued host-wide, not yet written.",
            h.queued,
        )?;
        counter(
            "host_dropped_total",
            "Usage records the host queue could not take or lost.",
            h.dropped,
        )?;
        counter(
            "host_written_total",
            "Usage records written from the host queue.",
            h.written,
        )?;
    }
    Ok(reg.gather())
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::HostStats;

    #[test]
    fn host_counters_appear_when_shared_and_lag_counts_from_the_start() {
        let age = Duration::from_millis(2250);
        let mut stats = Stats::default();
        let private = validator_families(&stats, age).expect("families");
        assert!(private.iter().all(|f| !f.name().contains("_host_")));
        stats.host = Some(HostStats::default());
        stats.cache_hits = 7;
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&validator_families(&stats, age).expect("families"))
            .expect("encode");
        for name in [
            "heratio_keys_host_leader 0",
            "heratio_keys_host_hits_total 0",
            "heratio_keys_host_misses_total 0",
            "heratio_keys_host_fills_total 0",
            "heratio_keys_host_entries 0",
            "heratio_keys_host_corrupt_total 0",
            "heratio_keys_host_queued 0",
            "heratio_keys_host_dropped_total 0",
            "heratio_keys_host_written_total 0",
            "heratio_keys_cache_hits_total 7",
            "heratio_keys_feed_lag_seconds 2.25",
        ] {
            assert!(text.lines().any(|l| l == name), "{name} in:\n{text}");
        }
        stats.feed_lag_ms = Some(1500);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&validator_families(&stats, age).expect("families"))
            .expect("encode");
        assert!(text
            .lines()
            .any(|l| l == "heratio_keys_feed_lag_seconds 1.5"));
    }

    /// What counting adds to one `/v1/verify` request: its validation
    /// counter and its HTTP counter. A measurement, not a check (run with
    /// `cargo test --release -p heratio-keys-web --lib -- --ignored
    /// --nocapture counting_cost`).
    #[test]
    #[ignore = "a measurement; prints nanoseconds per request"]
    fn counting_cost() {
        let db = heratio_keys_testkit::TestDb::sqlite();
        let validator = Arc::new(
            Validator::open(&db.dsn, heratio_keys_core::Options::default()).expect("validator"),
        );
        let m = Metrics::new(Arc::clone(&validator)).expect("metrics");
        let n: u32 = 1_000_000;
        for _ in 0..3 {
            let start = Instant::now();
            for _ in 0..n {
                m.validation(Kind::ApiKey, Status::Valid);
                m.request(&Method::POST, "/v1/verify", 200);
            }
            let per = start.elapsed().as_nanos() / u128::from(n);
            let render = Instant::now();
            let text = m.render().expect("render");
            println!(
                "counting per verify request: {per} ns; one scrape: {} µs, {} bytes",
                render.elapsed().as_micros(),
                text.len()
            );
        }
        validator.shutdown();
    }
}
