//! `GET /metrics`: a scrape after a known sequence of verify calls and
//! logins, read back with a Prometheus text-format parser, exact counter
//! values and label sets, nothing secret in it; `--metrics-listen` and
//! `--no-metrics`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::{form, store_client, store_key, Browser, Server, TestDb, ADMIN, PASSWORD};
use heratio_keys_core::{generate, Actor, IssueRequest, Kind, Scopes, Source, Status};
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{PrometheusType, PrometheusValue};
use serde_json::json;

/// A sample: its family's name and type, its labels (sorted), its value.
type Sample = (String, PrometheusType, Vec<(String, String)>, f64);

/// A parsed scrape, and the text it came from.
struct Metrics {
    text: String,
    samples: Vec<Sample>,
}

impl Metrics {
    /// Parses `text` with a grammar-based parser of the Prometheus text
    /// format (it refuses what is not the format), then checks our
    /// conventions: prefix, HELP for every family, only counters and
    /// gauges, counters and only counters named `_total`.
    fn parse(text: &str) -> Metrics {
        let exposition = parse_prometheus(text)
            .unwrap_or_else(|e| panic!("not the Prometheus text format ({e:?}):\n{text}"));
        let mut samples = Vec::new();
        for (name, family) in &exposition.families {
            assert!(name.starts_with("heratio_keys_"), "{name}");
            assert!(!family.help.is_empty(), "no HELP for {name}");
            let ty = family.family_type.clone();
            assert!(
                matches!(ty, PrometheusType::Counter | PrometheusType::Gauge),
                "{name}: {ty}"
            );
            assert_eq!(
                ty == PrometheusType::Counter,
                name.ends_with("_total"),
                "{name}"
            );
            for sample in family.iter_samples() {
                let mut labels: Vec<(String, String)> = sample
                    .get_labelset()
                    .expect("labels")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                labels.sort();
                let value = match &sample.value {
                    PrometheusValue::Counter(c) => c.value.as_f64(),
                    PrometheusValue::Gauge(g) => g.as_f64(),
                    other => panic!("{name}: {other:?}"),
                };
                samples.push((name.clone(), ty.clone(), labels, value));
            }
        }
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(samples.len(), lines, "{text}");
        Metrics {
            text: text.to_owned(),
            samples,
        }
    }

    fn fetch(b: &mut Browser) -> Metrics {
        let r = b.get("/metrics").expect(200);
        assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
        Metrics::parse(&r.body)
    }

    /// Every sample of `name`: its labels (sorted) and value.
    fn family(&self, name: &str) -> BTreeMap<Vec<(String, String)>, f64> {
        self.samples
            .iter()
            .filter(|s| s.0 == name)
            .map(|s| (s.2.clone(), s.3))
            .collect()
    }

    /// The value of `name` with exactly `labels`.
    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        *self
            .family(name)
            .get(&want)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{}", self.text))
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

/// An API key with an hourly limit of one.
fn limited_key(db: &TestDb, client: i64) -> String {
    let issued = heratio_keys_core::issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: client,
            name: "limited".into(),
            scopes: Scopes::all(),
            expires_at: None,
            rate_limit: Some(1),
            metadata: None,
        },
        &Actor::new("test", Source::Library),
    )
    .expect("issue");
    issued.key.expose().to_owned()
}

/// The password of a MySQL DSN (`scheme://user:password@…`), if any.
fn dsn_password(dsn: &str) -> Option<String> {
    let rest = dsn.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1.to_owned()).filter(|p| !p.is_empty())
}

#[test]
fn metrics_count_what_happened_and_nothing_secret() {
    for db in common::all() {
        let label = db.label();
        let client = store_client(&db, "Gateway Client Name");
        let (_, valid) = store_key(&db, Kind::ApiKey, client, "valid-label");
        let (revoked_id, revoked) = store_key(&db, Kind::ApiKey, client, "revoked-label");
        db.store
            .revoke_credential(Kind::ApiKey, revoked_id, &common::cli_actor())
            .expect("revoke");
        let (_, ai) = store_key(&db, Kind::AiToken, client, "ai-label");
        let limited = limited_key(&db, client);
        let unknown = generate(Kind::ApiKey).expect("generate");

        let server = Server::start_with(&db, |c| {
            c.trust_proxy = true;
            c.verify_rate = 1;
            c.verify_burst = 20;
            c.login_max_failures = 2;
        });
        let mut b = Browser::from_ip(&server, "192.0.2.10");
        // A fresh server: every (kind, status) pair at zero, nothing else.
        let before = Metrics::fetch(&mut b);
        let zeros = before.family("heratio_keys_validations_total");
        assert_eq!(zeros.len(), 2 * Status::ALL.len(), "{label}");
        assert!(zeros.values().all(|v| *v == 0.0), "{label}");

        let calls = [
            (json!({"key": valid}), 200, "api", "valid"),
            (json!({"key": valid, "kind": "api"}), 200, "api", "valid"),
            (json!({"key": unknown.expose()}), 401, "api", "not_found"),
            (json!({"key": "hk_api_x"}), 401, "api", "malformed"),
            (json!({"key": revoked}), 401, "api", "revoked"),
            (json!({"key": limited}), 200, "api", "valid"),
            (json!({"key": limited}), 429, "api", "rate_limited"),
            (json!({"key": ai}), 401, "api", "wrong_kind"),
            (json!({"key": ai, "kind": "ai"}), 200, "ai", "valid"),
            (
                json!({"key": valid, "scopes": ["x", "hk_api_SECRET SECRET"]}),
                400,
                "",
                "",
            ),
        ];
        let mut want: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for (doc, http, kind, status) in &calls {
            let r = b.verify(doc);
            assert_eq!(r.status, *http, "{label} {status}: {}", r.body);
            if !status.is_empty() {
                assert_eq!(r.json()["status"], *status, "{label}");
                *want.entry((kind, status)).or_default() += 1.0;
            }
        }
        // Another source runs into the per-source throttle (20 at once,
        // then one a second): each answer counted as what it was.
        let mut flood = Browser::from_ip(&server, "198.51.100.7");
        let mut throttled = 0.0;
        for _ in 0..30 {
            let r = flood.verify(&json!({"key": "hk_api_flood"}));
            match r.status {
                401 => *want.entry(("api", "malformed")).or_default() += 1.0,
                429 => throttled += 1.0,
                other => panic!("{label}: {other} {}", r.body),
            }
        }
        assert!(throttled >= 1.0, "{label}: the throttle never refused");
        // Logins: two wrong passwords lock alice out from here; the third
        // try is refused unchecked.
        let mut admin = Browser::from_ip(&server, "203.0.113.9");
        assert_eq!(admin.login_as(ADMIN, "wrong password!").status, 401);
        assert_eq!(admin.login_as(ADMIN, "wrong again!!!").status, 401);
        assert_eq!(admin.login_as(ADMIN, PASSWORD).status, 429, "{label}");
        // Pages by template, not by path.
        assert_eq!(b.get("/clients/987654").status, 303);
        assert_eq!(b.get("/no/such/page/hk_api_SECRETSECRET").status, 404);

        let m = Metrics::fetch(&mut b);
        for kind in Kind::ALL {
            for status in Status::ALL {
                let (k, s) = (kind.short_name(), status.name());
                let expected = want.get(&(k, s)).copied().unwrap_or(0.0);
                assert_eq!(
                    m.value(
                        "heratio_keys_validations_total",
                        &[("kind", k), ("status", s)]
                    ),
                    expected,
                    "{label}: validations {k} {s}"
                );
            }
        }
        assert_eq!(
            m.value("heratio_keys_verify_throttled_total", &[]),
            throttled
        );
        assert_eq!(
            m.value("heratio_keys_login_failures_total", &[]),
            2.0,
            "{label}"
        );
        assert_eq!(m.value("heratio_keys_login_lockouts_total", &[]), 1.0);
        assert_eq!(
            m.value("heratio_keys_login_refused_locked_out_total", &[]),
            1.0
        );
        assert_eq!(m.value("heratio_keys_login_refused_busy_total", &[]), 0.0);
        // The validator's own counters: of the calls above, the cache saw
        // every well-formed key of the kind asked for: misses for the
        // first sight of valid, unknown, revoked, limited and the AI token,
        // hits for the second sight of valid and limited.
        assert_eq!(
            m.value("heratio_keys_cache_misses_total", &[]),
            5.0,
            "{label}"
        );
        assert_eq!(
            m.value("heratio_keys_cache_hits_total", &[]),
            2.0,
            "{label}"
        );
        // Five lookups, and the limited key's first use reserving its
        // hourly budget (one block: the second use finds it spent).
        assert_eq!(
            m.value("heratio_keys_store_queries_total", &[]),
            6.0,
            "{label}"
        );
        assert_eq!(m.value("heratio_keys_store_errors_total", &[]), 0.0);
        assert_eq!(m.value("heratio_keys_cache_entries", &[]), 5.0, "{label}");
        assert_eq!(
            m.value(
                "heratio_keys_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        let http = m.family("heratio_keys_http_requests_total");
        let verify_200 = want
            .iter()
            .filter(|((_, s), _)| *s == "valid")
            .map(|(_, n)| n)
            .sum::<f64>();
        let get = |pairs: &[(&str, &str)]| http.get(&labels(pairs)).copied();
        let post = |route: &str, status: &str| {
            get(&[("method", "POST"), ("route", route), ("status", status)])
        };
        assert_eq!(post("/v1/verify", "200"), Some(verify_200), "{label}");
        assert_eq!(post("/v1/verify", "400"), Some(1.0));
        assert_eq!(post("/v1/verify", "429"), Some(throttled + 1.0));
        assert_eq!(post("/login", "401"), Some(2.0));
        assert_eq!(post("/login", "429"), Some(1.0));
        assert_eq!(
            get(&[("method", "GET"), ("route", "/login"), ("status", "200")]),
            Some(3.0)
        );
        assert_eq!(
            get(&[
                ("method", "GET"),
                ("route", "/clients/{id}"),
                ("status", "303")
            ]),
            Some(1.0)
        );
        assert_eq!(
            get(&[("method", "GET"), ("route", "unmatched"), ("status", "404")]),
            Some(1.0)
        );
        // The first scrape counted itself once it was answered.
        assert_eq!(
            get(&[("method", "GET"), ("route", "/metrics"), ("status", "200")]),
            Some(1.0)
        );
        let routes: BTreeSet<&str> = route_labels(&m);
        let table: BTreeSet<&str> = heratio_keys_web::route_table()
            .iter()
            .map(|r| r.path)
            .collect();
        for r in &routes {
            assert!(*r == "unmatched" || table.contains(r), "{label}: route {r}");
        }

        // Nothing secret: no key, prefix, client or credential name, user
        // name, address or DSN anywhere in the text.
        let mut secrets = vec![
            valid.clone(),
            revoked.clone(),
            ai.clone(),
            limited.clone(),
            unknown.expose().to_owned(),
            "hk_api_".into(),
            "hk_ai_".into(),
            "SECRET".into(),
            "Gateway".into(),
            "-label".into(),
            ADMIN.into(),
            "192.0.2.".into(),
            "198.51.100.".into(),
            "203.0.113.".into(),
            "987654".into(),
            db.dsn.clone(),
        ];
        secrets.extend(dsn_password(&db.dsn));
        secrets.extend(db.sqlite_path().map(|p| p.display().to_string()));
        for key in [&valid, &revoked, &ai, &limited] {
            secrets.push(key[..12].to_owned());
        }
        for s in &secrets {
            assert!(!m.text.contains(s.as_str()), "{label}: {s:?} in /metrics");
        }

        // Usage: once the queue is flushed, every validation was written or
        // counted as dropped (the core's invariant, seen from outside).
        let validations: f64 = want.values().sum();
        let mut last = None;
        let flushed = heratio_keys_testkit::eventually(Duration::from_secs(10), || {
            let m = Metrics::fetch(&mut b);
            let done = m.value("heratio_keys_usage_queued", &[]) == 0.0
                && m.value("heratio_keys_usage_written_total", &[])
                    + m.value("heratio_keys_usage_dropped_total", &[])
                    == validations
                && m.value("heratio_keys_feed_polls_total", &[]) > 0.0;
            last = Some(m);
            done
        });
        let m = last.expect("scraped");
        assert!(
            flushed.is_some(),
            "{label}: usage never flushed:\n{}",
            m.text
        );
        assert_eq!(m.value("heratio_keys_usage_dropped_total", &[]), 0.0);
        assert_eq!(m.value("heratio_keys_usage_write_errors_total", &[]), 0.0);
        let lag = m.value("heratio_keys_feed_lag_seconds", &[]);
        assert!(lag.is_finite() && lag >= 0.0, "{label}: feed lag {lag}");
        // This server does not use a host region: no host_* metrics.
        assert!(!m.text.contains("heratio_keys_host_"), "{label}");
    }
}

fn route_labels(m: &Metrics) -> BTreeSet<&str> {
    m.samples
        .iter()
        .flat_map(|s| s.2.iter())
        .filter(|(k, _)| k == "route")
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn metrics_move_to_their_own_listener_or_turn_off() {
    for db in common::all() {
        let label = db.label();
        let (server, metrics_base) = Server::start_split(&db, |_| {});
        let mut main = Browser::new(&server);
        let mut side = Browser::at(&metrics_base);
        main.get("/metrics").expect(404);
        main.verify(&json!({"key": "hk_api_x"})).expect(401);
        let m = Metrics::fetch(&mut side);
        // The same counters, whichever listener shows them.
        assert_eq!(
            m.value(
                "heratio_keys_validations_total",
                &[("kind", "api"), ("status", "malformed")]
            ),
            1.0,
            "{label}"
        );
        // The main listener's 404 for /metrics is counted as unmatched.
        assert_eq!(
            m.value(
                "heratio_keys_http_requests_total",
                &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
            ),
            1.0
        );
        // Only /metrics there: not the site, not the verify endpoint.
        side.get("/login").expect(404);
        side.get("/healthz").expect(404);
        side.verify(&json!({"key": "hk_api_x"})).expect(404);
        main.get("/healthz").expect(200);
        drop(server);

        let server = Server::start_with(&db, |c| c.metrics = false);
        let mut b = Browser::new(&server);
        let r = b.get("/metrics");
        assert_eq!(r.status, 404, "{label}");
        assert!(!r.body.contains("heratio_keys_"), "{label}");
        b.get("/healthz").expect(200);
        drop(server);

        // Off wins over a listener of its own: nothing listens there.
        let (server, metrics_base) = Server::start_split(&db, |c| c.metrics = false);
        Browser::new(&server).get("/metrics").expect(404);
        let port = metrics_base.rsplit(':').next().expect("port");
        assert!(
            std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
            "{label}: a metrics listener with metrics off"
        );
        drop(server);
    }
}

#[test]
fn a_login_form_posted_without_its_cookie_is_no_login_failure() {
    let db = common::sqlite();
    let server = Server::start(&db);
    let mut b = Browser::new(&server);
    let r = b.post_form(
        "/login",
        &form(&[("csrf", "x"), ("username", ADMIN), ("password", "nope")]),
    );
    assert_eq!(r.status, 403);
    let m = Metrics::fetch(&mut b);
    assert_eq!(m.value("heratio_keys_login_failures_total", &[]), 0.0);
}
