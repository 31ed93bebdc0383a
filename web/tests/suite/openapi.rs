//! `/openapi.json` checked against the real answers: every documented
//! (path, method, status) is produced by a real request, its body
//! validated against the document's schema (JSON Schema 2020-12, `$ref`s
//! resolved in the document) and its documented headers checked. And
//! `/readyz` following the database: ready, not ready once the database is
//! really gone, ready again once it is back, never a secret in the answer.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{store_client, store_key, Browser, Resp, Server, TestDb};
use heratio_keys_core::{generate, Actor, IssueRequest, Kind, Scopes, Source};
use serde_json::{json, Value};

/// The document as checked in (the server must serve exactly this).
const DOCUMENT: &str = include_str!("../../openapi.json");

/// `s` as one JSON Pointer token (RFC 6901), percent-encoded for a URI
/// fragment (RFC 3986: a media type's space and the like).
fn pointer_escape(s: &str) -> String {
    let token = s.replace('~', "~0").replace('/', "~1");
    let mut out = String::new();
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks `resp` against what the document says `method path` answers
/// with its status; returns the (path, method, status) it exercised.
#[track_caller]
fn check(doc: &Value, path: &str, method: &str, resp: &Resp) -> (String, String, String) {
    let status = resp.status.to_string();
    let at = format!(
        "/paths/{}/{method}/responses/{status}",
        pointer_escape(path)
    );
    let documented = doc.pointer(&at).unwrap_or_else(|| {
        panic!(
            "{method} {path} answered {status}, undocumented: {}",
            resp.body
        )
    });
    if let Some(headers) = documented.get("headers").and_then(Value::as_object) {
        for (name, h) in headers {
            let value = resp.header(name);
            if h["required"] == true {
                assert!(value.is_some(), "{method} {path} {status}: no {name}");
            }
            if let Some(v) = value {
                let schema = with_root(
                    doc,
                    &format!("#{at}/headers/{}/schema", pointer_escape(name)),
                );
                assert_valid(
                    &schema,
                    &json!(v),
                    &format!("{name} of {method} {path} {status}"),
                );
            }
        }
    }
    // An answer documented without content (404 for /metrics) may carry
    // any body.
    if let Some(content) = documented.get("content").and_then(Value::as_object) {
        let ct = resp.header("content-type").unwrap_or("");
        let media = content
            .keys()
            .find(|k| k.eq_ignore_ascii_case(ct))
            .unwrap_or_else(|| {
                panic!(
                    "{method} {path} {status}: content type {ct:?}, documented {:?}",
                    content.keys()
                )
            });
        let schema_at = format!("#{at}/content/{}/schema", pointer_escape(media));
        let body = if media.starts_with("application/json") {
            serde_json::from_str(&resp.body).unwrap_or_else(|e| {
                panic!("{method} {path} {status}: not JSON ({e}): {}", resp.body)
            })
        } else {
            Value::String(resp.body.clone())
        };
        assert_valid(
            &with_root(doc, &schema_at),
            &body,
            &format!("{method} {path} {status}"),
        );
    }
    (path.to_owned(), method.to_owned(), status)
}

/// A schema that is the whole document (so its `$ref`s resolve) pointing
/// at one schema inside it.
fn with_root(doc: &Value, pointer: &str) -> Value {
    let mut root = doc.clone();
    root["$ref"] = json!(pointer);
    root
}

#[track_caller]
fn assert_valid(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {instance} does not match: {errors:?}"
    );
}

/// Every (path, method, status) the document lists.
fn documented(doc: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            for status in op["responses"].as_object().expect("responses").keys() {
                out.insert((path.clone(), method.clone(), status.clone()));
            }
        }
    }
    out
}

/// A key with the given limit and allowlist.
fn special_key(db: &TestDb, client: i64, rate_limit: Option<i64>) -> String {
    heratio_keys_core::issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: client,
            name: "special".into(),
            scopes: Scopes::parse("read").expect("scopes"),
            expires_at: None,
            rate_limit,
            metadata: None,
        },
        &Actor::new("test", Source::Library),
    )
    .expect("issue")
    .key
    .expose()
    .to_owned()
}

/// Takes the database away for real: the SQLite file moved aside, or the
/// MariaDB database dropped. Returns how to bring it back.
fn take_database_away(db: &TestDb) -> Box<dyn FnOnce()> {
    match db.sqlite_path() {
        Some(path) => {
            let aside = path.with_extension("aside");
            std::fs::rename(path, &aside).expect("move the database aside");
            let path = path.to_owned();
            Box::new(move || std::fs::rename(&aside, &path).expect("move it back"))
        }
        None => {
            let name = db.dsn.rsplit('/').next().expect("db name").to_owned();
            db.exec(&format!("DROP DATABASE {name}"));
            let dsn = db.dsn.clone();
            Box::new(move || {
                let base = heratio_keys_testkit::mysql_base().expect("the test MariaDB");
                heratio_keys_testkit::mysql_exec(&base, &format!("CREATE DATABASE {name}"));
                let dsn = heratio_keys_core::Dsn::parse(&dsn).expect("dsn");
                heratio_keys_core::store::open(&dsn)
                    .and_then(|s| s.install())
                    .expect("install again");
            })
        }
    }
}

/// Polls `/readyz` until it answers `status`; returns that answer.
fn readyz_until(b: &mut Browser, status: u16) -> Resp {
    let mut last = None;
    let seen = heratio_keys_testkit::eventually(Duration::from_secs(15), || {
        let r = b.get("/readyz");
        let done = r.status == status;
        last = Some(r);
        done
    });
    let r = last.expect("an answer");
    assert!(
        seen.is_some(),
        "/readyz never answered {status}: {} {}",
        r.status,
        r.body
    );
    r
}

#[test]
fn openapi_describes_every_real_answer() {
    for db in common::all() {
        let label = db.label();
        let doc: Value = serde_json::from_str(DOCUMENT).expect("the document is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut seen = BTreeSet::new();
        let client = store_client(&db, "Gateway");
        let (_, valid) = store_key(&db, Kind::ApiKey, client, "k");
        let (revoked_id, revoked) = store_key(&db, Kind::ApiKey, client, "r");
        db.store
            .revoke_credential(Kind::ApiKey, revoked_id, &common::cli_actor())
            .expect("revoke");
        let read_only = special_key(&db, client, None);
        let limited = special_key(&db, client, Some(1));
        let (allow_id, allow) = store_key(&db, Kind::ApiKey, client, "allow");
        db.store
            .set_credential_allowed_ips(
                Kind::ApiKey,
                allow_id,
                Some(&heratio_keys_core::model::AllowedIps::parse("10.9.9.0/24").expect("net")),
                &common::cli_actor(),
            )
            .expect("allowlist");

        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        let served = b.get("/openapi.json").expect(200);
        assert_eq!(served.json(), doc, "{label}: served document differs");
        seen.insert(check(&doc, "/openapi.json", "get", &served));

        let verify = |b: &mut Browser, body: Value| b.verify(&body);
        let cases: Vec<(Value, u16)> = vec![
            (json!({"key": valid, "kind": "api", "scopes": []}), 200),
            (json!({"key": "hk_api_x"}), 401),
            (
                json!({"key": generate(Kind::ApiKey).expect("key").expose()}),
                401,
            ),
            (json!({"key": revoked}), 401),
            (json!({"key": valid, "kind": "ai"}), 401),
            (json!({"key": read_only, "scopes": ["write"]}), 403),
            (json!({"key": allow}), 403),
            (json!({"key": limited}), 200),
            (json!({"key": limited}), 429),
            (json!({"key": valid, "extra": true}), 400),
        ];
        for (body, status) in cases {
            let r = verify(&mut b, body);
            assert_eq!(r.status, status, "{label}: {}", r.body);
            seen.insert(check(&doc, "/v1/verify", "post", &r));
        }
        let r = b.post_raw("/v1/verify", Some("text/plain"), b"{}");
        seen.insert(check(&doc, "/v1/verify", "post", &r.expect(415)));
        let big = json!({"key": "x".repeat(20_000)}).to_string();
        let r = b.post_raw("/v1/verify", Some("application/json"), big.as_bytes());
        seen.insert(check(&doc, "/v1/verify", "post", &r.expect(413)));
        seen.insert(check(
            &doc,
            "/healthz",
            "get",
            &b.get("/healthz").expect(200),
        ));
        seen.insert(check(&doc, "/readyz", "get", &b.get("/readyz").expect(200)));
        seen.insert(check(
            &doc,
            "/metrics",
            "get",
            &b.get("/metrics").expect(200),
        ));
        // The schema is strict enough to catch a leak: a refusal carrying
        // a credential's id fails it.
        let leaky = json!({"valid": false, "status": "revoked", "code": 4,
            "http_status": 401, "message": "x", "key_id": 1});
        let refusal = with_root(&doc, "#/components/schemas/Refusal");
        assert!(!jsonschema::draft202012::new(&refusal)
            .expect("compiles")
            .is_valid(&leaky));

        // The per-source throttle's 429 (an error object, not a refusal).
        let tight = Server::start_with(&db, |c| {
            c.verify_rate = 1;
            c.verify_burst = 1;
            c.metrics = false;
        });
        let mut t = Browser::new(&tight);
        t.verify(&json!({"key": "hk_api_x"})).expect(401);
        let r = t.verify(&json!({"key": "hk_api_x"})).expect(429);
        assert!(r.json()["error"].is_string());
        seen.insert(check(&doc, "/v1/verify", "post", &r));
        seen.insert(check(
            &doc,
            "/metrics",
            "get",
            &t.get("/metrics").expect(404),
        ));
        drop(t);
        drop(tight);

        // 503 from both: the credential table gone (verify can answer
        // nothing), then the whole database gone (not ready).
        db.exec(if db.is_mysql() {
            "RENAME TABLE api_key TO api_key_gone"
        } else {
            "ALTER TABLE api_key RENAME TO api_key_gone"
        });
        let fresh = generate(Kind::ApiKey).expect("key");
        let r = b.verify(&json!({"key": fresh.expose()})).expect(503);
        seen.insert(check(&doc, "/v1/verify", "post", &r));
        db.exec(if db.is_mysql() {
            "RENAME TABLE api_key_gone TO api_key"
        } else {
            "ALTER TABLE api_key_gone RENAME TO api_key"
        });
        let back = take_database_away(&db);
        let r = readyz_until(&mut b, 503);
        seen.insert(check(&doc, "/readyz", "get", &r));
        back();
        readyz_until(&mut b, 200);
        drop(b);
        drop(server);

        assert_eq!(
            seen,
            documented(&doc),
            "{label}: documented but never produced"
        );
    }
}

#[test]
fn readyz_follows_the_database_and_says_nothing_secret() {
    for db in common::all() {
        let label = db.label();
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        let r = b.get("/readyz").expect(200);
        assert_eq!(r.json(), json!({"status": "ready"}));
        assert_eq!(r.header("cache-control"), Some("no-store"));

        let back = take_database_away(&db);
        let down = readyz_until(&mut b, 503);
        let v = down.json();
        assert_eq!(v["status"], "unavailable", "{label}");
        let want = if db.is_mysql() {
            "store_unavailable"
        } else {
            "schema_outdated"
        };
        assert_eq!(v["reason"], want, "{label}: {}", down.body);
        // Liveness does not depend on the database.
        b.get("/healthz").expect(200);
        // No DSN, password, host, port or path in the answer.
        let mut secrets = vec![db.dsn.clone(), "127.0.0.1".to_owned(), "keys.db".to_owned()];
        if let Some(rest) = db.dsn.split_once("://").map(|(_, r)| r) {
            let userinfo = rest.rsplit_once('@').map_or("", |(u, _)| u);
            secrets.extend(userinfo.split_once(':').map(|(_, p)| p.to_owned()));
            secrets.extend(rest.split('/').nth(1).map(str::to_owned));
            secrets.extend(
                rest.rsplit_once('@')
                    .and_then(|(_, h)| h.split_once('/'))
                    .map(|(h, _)| h.to_owned()),
            );
        }
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(
                !down.body.contains(s.as_str()),
                "{label}: {s:?} in {}",
                down.body
            );
        }
        back();
        let up = readyz_until(&mut b, 200);
        assert_eq!(up.json(), json!({"status": "ready"}), "{label}");
    }
}
