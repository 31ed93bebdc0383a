//! `POST /v1/verify`: every status, what a refusal may say, malformed
//! requests, whose end-user fields are recorded, and per-source throttling.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use crate::common::{Browser, Server, TestDb};
use heratio_keys_core::model::now_ms;
use heratio_keys_core::{generate, Actor, IssueRequest, Kind, NewClient, Scopes, Source};
use serde_json::json;

/// What only a valid answer carries.
const CREDENTIAL_FIELDS: &[&str] = &[
    "client_id",
    "key_id",
    "name",
    "scopes",
    "kind",
    "expires_at",
    "missing_scope",
];

/// All that any other answer carries.
const REFUSAL_FIELDS: [&str; 5] = ["valid", "status", "code", "http_status", "message"];

/// A client with one valid API key; returns the key.
fn valid_key(db: &TestDb) -> String {
    let actor = Actor::new("test", Source::Library);
    let client = db
        .store
        .create_client(
            &NewClient {
                name: "Gateway".into(),
                email: "gw@example.org".into(),
                organization: None,
            },
            &actor,
        )
        .expect("client");
    let issued = heratio_keys_core::issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: client.id,
            name: "gw".into(),
            scopes: Scopes::parse("*").expect("scopes"),
            expires_at: None,
            rate_limit: None,
            metadata: None,
        },
        &actor,
    )
    .expect("key");
    issued.key.expose().to_owned()
}

#[test]
fn verify_answers_every_status() {
    for db in common::all() {
        let label = db.label();
        let store = std::sync::Arc::clone(&db.store);
        let actor = heratio_keys_core::Actor::new("test", heratio_keys_core::Source::Library);
        let client = store
            .create_client(
                &heratio_keys_core::NewClient {
                    name: "Gateway".into(),
                    email: "ai@example.org".into(),
                    organization: None,
                },
                &actor,
            )
            .unwrap();
        let other = store
            .create_client(
                &heratio_keys_core::NewClient {
                    name: "Other".into(),
                    email: "other@example.org".into(),
                    organization: None,
                },
                &actor,
            )
            .unwrap();
        let issue = |client_id: i64, kind: Kind, scopes: &str| {
            heratio_keys_core::issue(
                store.as_ref(),
                kind,
                &heratio_keys_core::IssueRequest {
                    client_id,
                    name: "k".into(),
                    scopes: heratio_keys_core::Scopes::parse(scopes).unwrap(),
                    expires_at: None,
                    rate_limit: None,
                    metadata: None,
                },
                &actor,
            )
            .unwrap()
        };
        let valid = issue(client.id, Kind::ApiKey, "read");
        let ai = issue(client.id, Kind::AiToken, "*");
        let revoked = issue(client.id, Kind::ApiKey, "*");
        store
            .revoke_credential(Kind::ApiKey, revoked.info.id, &actor)
            .unwrap();
        let expired = issue(client.id, Kind::ApiKey, "*");
        store
            .set_credential_expiry(Kind::ApiKey, expired.info.id, Some(now_ms() - 1000), &actor)
            .unwrap();
        // A client made inactive behind the core's back (its key still active).
        let orphan = issue(other.id, Kind::ApiKey, "*");
        db.exec(&format!(
            "UPDATE client SET is_active = 0 WHERE id = {}",
            other.id
        ));
        let unknown = generate(Kind::ApiKey).unwrap();

        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        let cases = [
            (
                json!({"key": valid.key.expose(), "kind": "api", "scopes": ["read"]}),
                200,
                "valid",
            ),
            (json!({"key": valid.key.expose()}), 200, "valid"),
            (
                json!({"key": "hk_api_garbage", "kind": "api"}),
                401,
                "malformed",
            ),
            (json!({"key": "", "kind": "api"}), 401, "malformed"),
            (
                json!({"key": ai.key.expose(), "kind": "api"}),
                401,
                "wrong_kind",
            ),
            (
                json!({"key": valid.key.expose(), "kind": "ai"}),
                401,
                "wrong_kind",
            ),
            (
                json!({"key": ai.key.expose(), "kind": "ai", "scopes": ["anything"]}),
                200,
                "valid",
            ),
            (
                json!({"key": unknown.expose(), "kind": "api"}),
                401,
                "not_found",
            ),
            (
                json!({"key": revoked.key.expose(), "kind": "api"}),
                401,
                "revoked",
            ),
            (
                json!({"key": expired.key.expose(), "kind": "api"}),
                401,
                "expired",
            ),
            (
                json!({"key": orphan.key.expose(), "kind": "api"}),
                401,
                "client_inactive",
            ),
            (
                json!({"key": valid.key.expose(), "kind": "api", "scopes": ["read", "write"]}),
                403,
                "forbidden",
            ),
        ];
        for (doc, http, status) in &cases {
            let r = b.verify(doc);
            assert_eq!(r.status, *http, "{label} {status}: {}", r.body);
            let v = r.json();
            assert_eq!(v["status"], *status, "{label}: {}", r.body);
            assert_eq!(v["valid"], *status == "valid");
            // A valid answer is the core's whole view; any other says what
            // happened and nothing about the credential (the contract since
            // issue 13: no ids, name, scopes or expiry for a revoked,
            // expired or inactive key).
            if *status == "valid" {
                for field in CREDENTIAL_FIELDS {
                    assert!(v.get(*field).is_some(), "{label}: {field} in {v}");
                }
            } else {
                let fields: BTreeSet<&str> =
                    v.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(fields, BTreeSet::from(REFUSAL_FIELDS), "{label} {status}");
            }
            assert!(
                !r.body.contains("hk_api_") && !r.body.contains("hk_ai_"),
                "{label}: key echoed"
            );
            if *http == 401 {
                assert!(r.header("www-authenticate").is_some());
            } else {
                assert!(r.header("www-authenticate").is_none(), "{label} {status}");
            }
            assert_eq!(v["http_status"], *http, "{label}");
            for field in REFUSAL_FIELDS {
                assert!(v.get(field).is_some(), "{label}: {field} in {v}");
            }
        }
        let v = b.verify(&cases[0].0).json();
        assert_eq!(v["client_id"], client.id);
        assert_eq!(v["key_id"], valid.info.id);
        assert_eq!(v["scopes"], json!(["read"]));
        let v = b.verify(&cases[7].0).json();
        assert!(v.get("client_id").is_none(), "{label}: {v}");
        assert!(v.get("scopes").is_none(), "{label}: {v}");
        let v = b.verify(&cases[11].0).json();
        assert!(v.get("missing_scope").is_none(), "{label}: {v}");
        assert_eq!(v["message"], "Scope 'write' required.", "{label}");
        assert_eq!(b.verify(&cases[6].0).json()["kind"], "ai", "{label}");

        // Usage is recorded with the caller's IP and the endpoint.
        drop(b);
        drop(server);
        // A row each for the stored credentials; the rest (no credential
        // matched) are counted per minute and source (issue 13 item 4).
        let query = heratio_keys_core::UsageQuery {
            limit: 100,
            ..Default::default()
        };
        let (rows, total) = store.usage_log(&query).unwrap();
        let (rejected, rejected_total) = store.rejected_usage(&query).unwrap();
        assert!(
            total + rejected_total >= cases.len() as u64,
            "{label}: {total} usage rows, {rejected_total} rejected"
        );
        assert!(rows
            .iter()
            .all(|r| r.record.ip.as_deref() == Some("127.0.0.1")));
        assert!(rejected.iter().all(|r| r.ip == "127.0.0.1"), "{label}");
        assert!(rows
            .iter()
            .all(|r| r.record.endpoint.as_deref() == Some("/v1/verify")));

        // unavailable: the credential table disappears under a running server.
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        db.exec(match label {
            "sqlite" => "ALTER TABLE api_key RENAME TO api_key_gone",
            _ => "RENAME TABLE api_key TO api_key_gone",
        });
        let fresh = generate(Kind::ApiKey).unwrap();
        let r = b.verify(&json!({"key": fresh.expose(), "kind": "api"}));
        assert_eq!(r.status, 503, "{label}: {}", r.body);
        assert_eq!(r.json()["status"], "unavailable");
        assert_eq!(r.json()["valid"], false);
        b.get("/healthz").expect(200);
    }
}

#[test]
fn verify_rejects_bad_requests_without_panicking() {
    let db = common::sqlite();
    let server = Server::start(&db);
    let mut b = Browser::new(&server);
    let json_ct = Some("application/json");
    let cases: &[(Option<&str>, &[u8], u16)] = &[
        (json_ct, b"{", 400),
        (json_ct, b"", 400),
        (json_ct, b"not json", 400),
        (json_ct, b"[]", 400),
        (json_ct, b"{\"kind\":\"api\"}", 400),
        (json_ct, b"{\"key\":42}", 400),
        (json_ct, b"{\"key\":\"hk_api_x\",\"kind\":\"both\"}", 400),
        (json_ct, b"{\"key\":\"hk_api_x\",\"scopes\":\"read\"}", 400),
        (json_ct, b"{\"key\":\"hk_api_x\",\"extra\":1}", 400),
        (json_ct, b"{\"key\":\"\xff\xfe\"}", 400),
        (None, b"{\"key\":\"hk_api_x\"}", 415),
        (Some("text/plain"), b"{\"key\":\"hk_api_x\"}", 415),
    ];
    for (ct, body, status) in cases {
        let r = b.post_raw("/v1/verify", *ct, body);
        assert_eq!(
            r.status,
            *status,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            r.body
        );
        assert!(r.json()["error"].is_string(), "{}", r.body);
    }
    // A secret-looking value in a wrong field is not echoed back.
    let r = b.post_raw(
        "/v1/verify",
        json_ct,
        b"{\"key\":\"hk_api_x\",\"kind\":\"hk_api_SECRETSECRET\"}",
    );
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("SECRET"));
    let r = b.post_raw(
        "/v1/verify",
        json_ct,
        b"{\"key\":[\"hk_api_SECRETSECRET\"]}",
    );
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("SECRET"));
    // Too many scopes.
    let scopes: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
    let r = b.verify(&json!({"key": "hk_api_x", "scopes": scopes}));
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"].as_str().unwrap().contains("64"),
        "{}",
        r.body
    );
    // A required scope that is no scope name (the core's rule), without
    // repeating it: it may be a key pasted into the wrong field.
    for bad in ["hk_api_SECRET SECRET", "read ", "", "a,b"] {
        let r = b.verify(&json!({"key": "hk_api_x", "scopes": ["read", bad]}));
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("[1]"), "{bad:?}: {error}");
        assert!(!r.body.contains("SECRET"), "{}", r.body);
    }

    // Oversize: a key padded to 20 KB, and a 10 MB declared body.
    let big = json!({"key": "x".repeat(20_000), "kind": "api"}).to_string();
    let r = b.post_raw("/v1/verify", json_ct, big.as_bytes());
    assert_eq!(r.status, 413, "{}", r.body);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = write!(
        sock,
        "POST /v1/verify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{{\"key\":\""
    );
    let _ = sock.write_all(&vec![b'a'; 64 * 1024]);
    let mut answer = String::new();
    let _ = sock.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A form that is too large is refused too.
    let r = b.post_form(
        "/login",
        &format!("username=a&password={}", "p".repeat(100_000)),
    );
    assert_eq!(r.status, 413);
    // Wrong method.
    assert_eq!(b.get("/v1/verify").status, 405);
    // Still alive and well.
    b.get("/healthz").expect(200);
    let r = b.verify(&json!({"key": "hk_api_x"}));
    assert_eq!(r.status, 401);
}

#[test]
fn verify_records_end_user_fields_only_from_trusted_callers() {
    for db in common::all() {
        let label = db.label();
        let key = valid_key(&db);
        let send = |b: &mut Browser, ip: &str, endpoint: &str| {
            b.verify(&json!({"key": key, "ip": ip, "endpoint": endpoint}))
                .expect(200);
        };
        // By default nobody is trusted: the caller's own address is recorded.
        let server = Server::start(&db);
        send(&mut Browser::new(&server), "192.0.2.55", "/api/untrusted");
        drop(server);
        let server = Server::start_with(&db, |c| {
            c.verify_trusted = heratio_keys_web::parse_trusted("127.0.0.1").unwrap();
        });
        send(&mut Browser::new(&server), "192.0.2.66", "/api/trusted");
        drop(server);
        // Behind a proxy, the caller is the forwarded address.
        let server = Server::start_with(&db, |c| {
            c.trust_proxy = true;
            c.verify_trusted = heratio_keys_web::parse_trusted("198.51.100.0/24").unwrap();
        });
        send(
            &mut Browser::from_ip(&server, "198.51.100.9"),
            "192.0.2.77",
            "/api/gw",
        );
        send(
            &mut Browser::from_ip(&server, "203.0.113.5"),
            "192.0.2.88",
            "/api/forged",
        );
        drop(server);
        let (rows, _) = db
            .store
            .usage_log(&heratio_keys_core::UsageQuery {
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        let seen: BTreeSet<(String, String)> = rows
            .into_iter()
            .map(|r| {
                (
                    r.record.ip.unwrap_or_default(),
                    r.record.endpoint.unwrap_or_default(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String)> = [
            ("127.0.0.1", "/v1/verify"),
            ("192.0.2.66", "/api/trusted"),
            ("192.0.2.77", "/api/gw"),
            ("203.0.113.5", "/v1/verify"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(seen, want, "{label}");
    }
}

#[test]
fn verify_throttles_each_source() {
    for db in common::all() {
        let label = db.label();
        let key = valid_key(&db);
        let server = Server::start_with(&db, |c| {
            c.trust_proxy = true;
            c.verify_rate = 1;
            c.verify_burst = 5;
        });
        let mut a = Browser::from_ip(&server, "192.0.2.1");
        let statuses: Vec<u16> = (0..20)
            .map(|i| {
                let doc = if i % 2 == 0 {
                    json!({"key": key})
                } else {
                    json!({"key": "hk_api_x"})
                };
                a.verify(&doc).status
            })
            .collect();
        assert!(
            statuses[..5].iter().all(|s| *s == 200 || *s == 401),
            "{label}: the burst passes: {statuses:?}"
        );
        // One token a second: however slow the machine, most of the rest
        // are refused.
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert!(refused >= 10, "{label}: {statuses:?}");
        let r = a.verify(&json!({"key": key}));
        assert_eq!(r.status, 429, "{label}");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&wait), "{label}: Retry-After {wait}");
        assert!(r.json()["error"].is_string(), "{label}: {}", r.body);
        assert!(!r.body.contains("hk_api_"), "{label}");
        // Another source is not affected, nor is an IPv6 /64 next door.
        Browser::from_ip(&server, "192.0.2.2")
            .verify(&json!({"key": key}))
            .expect(200);
        let mut v6 = Browser::from_ip(&server, "2001:db8:1:1::1");
        for _ in 0..5 {
            v6.verify(&json!({"key": key})).expect(200);
        }
        let mut same64 = Browser::from_ip(&server, "2001:db8:1:1::2");
        assert_eq!(same64.verify(&json!({"key": key})).status, 429, "{label}");
        Browser::from_ip(&server, "2001:db8:1:2::1")
            .verify(&json!({"key": key}))
            .expect(200);
    }
}

#[test]
fn verify_rate_limited_answers_say_when_to_retry_and_nothing_else() {
    for db in common::all() {
        let label = db.label();
        let actor = Actor::new("test", Source::Library);
        let client = db
            .store
            .create_client(
                &NewClient {
                    name: "Limited".into(),
                    email: "l@example.org".into(),
                    organization: None,
                },
                &actor,
            )
            .unwrap();
        let limited = heratio_keys_core::issue(
            db.store.as_ref(),
            Kind::ApiKey,
            &IssueRequest {
                client_id: client.id,
                name: "limited".into(),
                scopes: Scopes::parse("*").unwrap(),
                expires_at: None,
                rate_limit: Some(2),
                metadata: None,
            },
            &actor,
        )
        .unwrap();
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        let doc = json!({"key": limited.key.expose()});
        for _ in 0..2 {
            b.verify(&doc).expect(200);
        }
        let r = b.verify(&doc);
        assert_eq!(r.status, 429, "{label}: {}", r.body);
        let v = r.json();
        assert_eq!(v["status"], "rate_limited", "{label}");
        let fields: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, BTreeSet::from(REFUSAL_FIELDS), "{label}");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=3600).contains(&wait), "{label}: Retry-After {wait}");
    }
}
