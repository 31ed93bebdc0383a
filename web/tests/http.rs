//! HTTP-level tests of `keygen serve`: a real server on a loopback port over
//! a real SQLite file and (when configured) a fresh MariaDB database.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{cli_actor, form, keys_in, Browser, Server, ADMIN, PASSWORD};
use heratio_keys_core::model::now_ms;
use heratio_keys_core::{generate, Kind};
use serde_json::json;

const PAGES: &[&str] = &[
    "/",
    "/clients",
    "/clients?q=x",
    "/clients/1",
    "/clients/1/deactivate",
    "/credentials/api/1/revoke",
    "/credentials/ai/1/revoke",
    "/usage",
    "/usage?outcome=valid&page=2",
    "/audit",
];

const FORMS: &[&str] = &[
    "/clients",
    "/clients/1/deactivate",
    "/clients/1/generate/api",
    "/clients/1/generate/ai",
    "/credentials/api/1/revoke",
    "/credentials/ai/1/revoke",
    "/logout",
];

#[test]
fn every_page_requires_login() {
    let db = common::sqlite();
    // Something to leak, if a page did.
    let store = std::sync::Arc::clone(&db.store);
    let actor = heratio_keys_core::Actor::new("test", heratio_keys_core::Source::Library);
    store
        .create_client(
            &heratio_keys_core::NewClient {
                name: "Secret Archive".into(),
                email: "ops@example.org".into(),
                organization: None,
            },
            &actor,
        )
        .unwrap();
    let server = Server::start(&db);
    let mut b = Browser::new(&server);
    for path in PAGES {
        let r = b.get(path);
        assert_eq!(r.status, 303, "GET {path}: {}", r.body);
        assert_eq!(r.location(), Some("/login"), "GET {path}");
        assert!(!r.body.contains("Secret Archive"), "GET {path}");
    }
    for path in FORMS {
        let r = b.post_form(path, "csrf=x&name=n&email=e%40x.org");
        assert_eq!(r.status, 303, "POST {path}: {}", r.body);
        assert_eq!(r.location(), Some("/login"), "POST {path}");
    }
    assert_eq!(
        store.list_clients().unwrap().len(),
        1,
        "nothing was created"
    );
    // A made-up session cookie is no better.
    b.cookies.push(("hk_session".into(), "0".repeat(64)));
    for path in PAGES {
        assert_eq!(b.get(path).status, 303, "GET {path} with a forged cookie");
    }
    // What is public: the login page, assets and /healthz.
    let mut anon = Browser::new(&server);
    let login = anon.get("/login").expect(200);
    assert!(login.body.contains("Administrator log in"));
    let health = anon.get("/healthz").expect(200);
    assert_eq!(health.json(), json!({"status": "ok"}));
    for asset in [
        "bootstrap.min.css",
        "bootstrap.bundle.min.js",
        "app.js",
        "app.css",
    ] {
        let r = anon.get(&format!("/assets/{asset}")).expect(200);
        assert!(r.body.len() > 100, "{asset}");
    }
    anon.get("/assets/nope.js").expect(404);
    // Security headers, on pages and errors alike.
    for r in [login, anon.get("/nowhere")] {
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // No inline script anywhere in the login page.
    let login = anon.get("/login");
    assert!(!login.body.contains("<script>"));
    assert!(!login.body.contains(" onclick="));
}

#[test]
fn login_cookie_flags_logout_and_wrong_password() {
    let db = common::sqlite();
    let server = Server::start(&db);
    let mut b = Browser::new(&server);
    let r = b.login_as(ADMIN, "not the password");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong user name or password."));
    assert!(!r.body.contains("not the password"));
    let r = b.login_as("mallory", PASSWORD);
    assert_eq!(r.status, 401, "unknown users get the same answer");
    assert!(r.body.contains("Wrong user name or password."));
    assert_eq!(b.get("/").status, 303);

    let r = b.login_as(ADMIN, PASSWORD);
    assert_eq!(r.status, 303);
    let set_cookie = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with("hk_session="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "not configured for TLS");
    let dash = b.get("/").expect(200);
    assert!(dash.body.contains("Dashboard") && dash.body.contains(ADMIN));
    // /login while logged in goes to the dashboard.
    assert_eq!(b.get("/login").location(), Some("/"));

    // Logout needs the token, then ends the session server-side.
    let csrf = dash.csrf();
    let old = b.cookies.clone();
    b.post_form("/logout", "csrf=wrong").expect(403);
    let r = b
        .post_form("/logout", &form(&[("csrf", &csrf)]))
        .expect(303);
    assert_eq!(r.location(), Some("/login"));
    assert_eq!(b.get("/").status, 303);
    b.cookies = old;
    assert_eq!(b.get("/").status, 303, "the old cookie is dead too");

    // With TLS configured: Secure and the __Host- prefix.
    let tls = Server::start_with(&db, |c| c.secure_cookies = true);
    let mut t = Browser::new(&tls);
    t.login();
    assert!(t.cookies.iter().any(|(k, _)| k == "__Host-hk_session"));
    let page = t.get("/").expect(200);
    assert!(page
        .header("strict-transport-security")
        .is_some_and(|v| v.contains("max-age")));
}

#[test]
fn session_expiry() {
    let db = common::sqlite();
    let server = Server::start_with(&db, |c| c.session_idle = Duration::from_millis(1000));
    let mut b = Browser::new(&server);
    b.login();
    b.get("/clients").expect(200);
    std::thread::sleep(Duration::from_millis(500));
    b.get("/clients").expect(200);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(b.get("/").status, 303, "idle session expired");

    let server = Server::start_with(&db, |c| c.session_lifetime = Duration::from_millis(1500));
    let mut b = Browser::new(&server);
    b.login();
    let logged_in = Instant::now();
    while logged_in.elapsed() < Duration::from_millis(800) {
        b.get("/clients").expect(200);
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1600).saturating_sub(logged_in.elapsed()));
    assert_eq!(b.get("/").status, 303, "absolute lifetime reached");
}

#[test]
fn login_throttling() {
    let db = common::sqlite();
    let server = Server::start_with(&db, |c| {
        c.login_max_failures = 3;
        c.login_window = Duration::from_secs(600);
        c.login_lockout = Duration::from_secs(2);
    });
    let mut b = Browser::new(&server);
    for _ in 0..3 {
        assert_eq!(b.login_as(ADMIN, "wrong password!").status, 401);
    }
    let started = Instant::now();
    let r = b.login_as(ADMIN, PASSWORD);
    assert_eq!(r.status, 429, "locked out even with the right password");
    assert!(r.body.contains("Too many failed logins"));
    assert!(r.header("retry-after").is_some());
    assert_eq!(b.get("/").status, 303);
    // The lock-out ends.
    std::thread::sleep(Duration::from_millis(2100).saturating_sub(started.elapsed()));
    let r = b.login_as(ADMIN, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn csrf_is_checked_on_every_form() {
    let db = common::sqlite();
    let server = Server::start(&db);
    let mut b = Browser::new(&server);

    // The login form's token must match its cookie.
    b.get("/login").expect(200);
    let r = b.post_form(
        "/login",
        &form(&[
            ("csrf", "forged"),
            ("username", ADMIN),
            ("password", PASSWORD),
        ]),
    );
    assert_eq!(r.status, 403);
    let r = b.post_form(
        "/login",
        &form(&[("username", ADMIN), ("password", PASSWORD)]),
    );
    assert_eq!(r.status, 403);

    b.login();
    let token = b.get("/clients").expect(200).csrf();
    let mut other = Browser::new(&server);
    other.login();
    let other_token = other.get("/").csrf();
    assert_ne!(token, other_token);

    let client = [("name", "Reading Room"), ("email", "ops@example.org")];
    for bad in [None, Some(""), Some("0"), Some(other_token.as_str())] {
        let mut fields = client.to_vec();
        if let Some(t) = bad {
            fields.push(("csrf", t));
        }
        let r = b.post_form("/clients", &form(&fields));
        assert_eq!(r.status, 403, "csrf {bad:?}");
        assert!(r.body.contains("Form expired"));
    }
    assert!(db.store.list_clients().unwrap().is_empty());

    // With the right token it works; then every other form refuses a bad one.
    let mut fields = client.to_vec();
    fields.push(("csrf", &token));
    let r = b.post_form("/clients", &form(&fields)).expect(303);
    assert_eq!(r.location(), Some("/clients/1"));
    let body = "csrf=nope&name=x&scopes=*&expires=never";
    for path in [
        "/clients/1/generate/api",
        "/clients/1/generate/ai",
        "/clients/1/deactivate",
        "/credentials/api/1/revoke",
        "/logout",
    ] {
        assert_eq!(b.post_form(path, body).status, 403, "{path}");
    }
    let store = std::sync::Arc::clone(&db.store);
    assert!(store.get_client(1).unwrap().active);
    assert!(store.list_credentials(Kind::ApiKey, 1).unwrap().is_empty());
}

/// Generates a credential through the web form; returns (id, plaintext, page).
fn web_generate(
    b: &mut Browser,
    client: i64,
    kind: &str,
    label: &str,
    scopes: &str,
) -> (i64, String, common::Resp) {
    let csrf = b.get(&format!("/clients/{client}")).expect(200).csrf();
    let r = b
        .post_form(
            &format!("/clients/{client}/generate/{kind}"),
            &form(&[
                ("csrf", &csrf),
                ("name", label),
                ("scopes", scopes),
                ("expires", "never"),
                ("expires_on", ""),
            ]),
        )
        .expect(200);
    let keys = keys_in(&r.body);
    assert_eq!(keys.len(), 1, "one key on the page: {}", r.body);
    let id: i64 = common::between(&r.body, "id=\"new-key-id\">", "<")
        .expect("key id on the page")
        .parse()
        .expect("numeric key id");
    (id, keys[0].clone(), r)
}

/// Polls /v1/verify until `status` (the change feed needs up to ~1 s).
fn wait_for_status(b: &mut Browser, doc: &serde_json::Value, status: &str) -> common::Resp {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = b.verify(doc);
        if r.json()["status"] == status || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn generate_shows_the_key_once_then_revoke_and_deactivate() {
    for db in common::all() {
        let label = db.label();
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        b.login();
        let csrf = b.get("/clients").csrf();
        let r = b
            .post_form(
                "/clients",
                &form(&[
                    ("csrf", &csrf),
                    ("name", "Reading Room"),
                    ("email", "ops@example.org"),
                    ("organization", "City Archives"),
                ]),
            )
            .expect(303);
        let client_path = r.location().unwrap().to_owned();
        let client: i64 = client_path.rsplit('/').next().unwrap().parse().unwrap();
        let page = b.get(&client_path).expect(200);
        assert!(page.body.contains("Created client"), "{label}: flash shown");
        assert!(
            !b.get(&client_path).body.contains("Created client"),
            "{label}: flash once"
        );

        let (key_id, key, shown) = web_generate(&mut b, client, "api", "production", "read,write");
        assert_eq!(shown.header("cache-control"), Some("no-store"), "{label}");
        assert!(shown.body.contains("data-copy-target=\"new-key\""));
        assert!(key.starts_with("hk_api_"));
        // Never again: not on any page, not in the database.
        for path in [
            client_path.as_str(),
            "/",
            "/clients",
            "/usage",
            "/audit",
            &format!("/credentials/api/{key_id}/revoke"),
        ] {
            let r = b.get(path).expect(200);
            assert!(!r.body.contains(&key), "{label}: {path} shows the key");
            assert!(keys_in(&r.body).is_empty(), "{label}: {path}");
        }
        let listed = b.get(&client_path).body;
        assert!(
            listed.contains(&key[..12]),
            "{label}: display prefix listed"
        );

        // It works, with its scopes.
        let doc = json!({"key": key, "kind": "api", "scopes": ["read"]});
        let r = b.verify(&doc).expect(200);
        let v = r.json();
        assert_eq!(v["valid"], true);
        assert_eq!(v["status"], "valid");
        assert_eq!(v["client_id"], client);
        assert_eq!(v["key_id"], key_id);
        assert_eq!(v["name"], "production");
        assert_eq!(v["scopes"], json!(["read", "write"]));

        // Revoke, with a confirmation page first.
        let confirm = b
            .get(&format!("/credentials/api/{key_id}/revoke"))
            .expect(200);
        assert!(confirm.body.contains(&key[..12]) && confirm.body.contains("Revoke"));
        let r = b
            .post_form(
                &format!("/credentials/api/{key_id}/revoke"),
                &form(&[("csrf", &confirm.csrf())]),
            )
            .expect(303);
        assert!(r.location().unwrap().starts_with(&client_path));
        assert!(b.get(&client_path).body.contains("Revoked API key"));
        let r = wait_for_status(&mut b, &doc, "revoked");
        assert_eq!(r.status, 401, "{label}: {}", r.body);
        assert_eq!(r.json()["status"], "revoked");
        // Revoking twice: back to the client with a note, no error page.
        let r = b
            .post_form(
                &format!("/credentials/api/{key_id}/revoke"),
                &form(&[("csrf", &confirm.csrf())]),
            )
            .expect(303);
        assert!(b
            .get(r.location().unwrap())
            .body
            .contains("already revoked"));

        // Deactivation cascade: the confirmation counts what will go.
        let (_, api2, _) = web_generate(&mut b, client, "api", "staging", "*");
        let (_, ai1, _) = web_generate(&mut b, client, "ai", "ai-server", "ai:describe");
        let doc_api2 = json!({"key": api2, "kind": "api"});
        let doc_ai1 = json!({"key": ai1, "kind": "ai", "scopes": ["ai:describe"]});
        b.verify(&doc_api2).expect(200);
        b.verify(&doc_ai1).expect(200);
        let confirm = b.get(&format!("{client_path}/deactivate")).expect(200);
        assert!(
            confirm.body.contains("id=\"revoke-count-api\">1 API key<"),
            "{label}: {}",
            confirm.body
        );
        assert!(confirm.body.contains("id=\"revoke-count-ai\">1 AI token<"));
        let r = b
            .post_form(
                &format!("{client_path}/deactivate"),
                &form(&[("csrf", &confirm.csrf())]),
            )
            .expect(303);
        let after = b.get(r.location().unwrap()).expect(200);
        assert!(
            after.body.contains("revoked 1 API key and 1 AI token"),
            "{label}: {}",
            after.body
        );
        assert!(after.body.contains(">inactive<"));
        assert_eq!(wait_for_status(&mut b, &doc_api2, "revoked").status, 401);
        assert_eq!(wait_for_status(&mut b, &doc_ai1, "revoked").status, 401);
        // Generating for an inactive client is refused with a message.
        let r = b
            .post_form(
                &format!("/clients/{client}/generate/api"),
                &form(&[
                    ("csrf", &confirm.csrf()),
                    ("name", "late"),
                    ("expires", "never"),
                ]),
            )
            .expect(303);
        let back = b.get(r.location().unwrap()).expect(200);
        assert!(keys_in(&back.body).is_empty());

        // Every action is in the audit log as the admin, from the web, with an IP.
        let audit = db.store.audit_log(100).unwrap();
        for action in [
            "admin.login",
            "client.create",
            "api_key.generate",
            "ai_token.generate",
            "api_key.revoke",
            "client.deactivate",
        ] {
            let e = audit
                .iter()
                .find(|e| e.action == action)
                .unwrap_or_else(|| panic!("{label}: no {action} in {audit:?}"));
            assert_eq!(e.actor, ADMIN, "{label}: {action}");
            assert_eq!(e.source, "web");
            assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
        }
        let shown = b.get("/audit").expect(200);
        assert!(shown.body.contains("client.deactivate"));
        // The dashboard agrees.
        let dash = b.get("/").expect(200);
        assert!(dash.body.contains("id=\"count-clients\">1<"), "{label}");
        assert!(dash.body.contains("id=\"count-api-keys\">0<"), "{label}");
        assert!(dash.body.contains("<svg"), "{label}: chart");
        drop(b);
        drop(server);
        // No plaintext was stored anywhere.
        for k in [&key, &api2, &ai1] {
            let audit = format!("{:?}", db.store.audit_log(100).unwrap());
            assert!(!audit.contains(k.as_str()));
        }
    }
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
            for field in ["client_id", "key_id", "name", "scopes"] {
                assert!(v.get(field).is_some(), "{label}: {field} in {v}");
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
            // The core's view of the answer, every field present.
            assert_eq!(v["http_status"], *http, "{label}");
            for field in ["code", "message", "kind", "expires_at", "missing_scope"] {
                assert!(v.get(field).is_some(), "{label}: {field} in {v}");
            }
        }
        let v = b.verify(&cases[0].0).json();
        assert_eq!(v["client_id"], client.id);
        assert_eq!(v["key_id"], valid.info.id);
        assert_eq!(v["scopes"], json!(["read"]));
        let v = b.verify(&cases[7].0).json();
        assert_eq!(v["client_id"], serde_json::Value::Null);
        assert_eq!(v["scopes"], json!([]));
        let v = b.verify(&cases[11].0).json();
        assert_eq!(v["missing_scope"], "write", "{label}");
        assert_eq!(v["message"], "Scope 'write' required.", "{label}");
        assert_eq!(b.verify(&cases[6].0).json()["kind"], "ai", "{label}");

        // Usage is recorded with the caller's IP and the endpoint.
        drop(b);
        drop(server);
        let (rows, total) = store
            .usage_log(&heratio_keys_core::UsageQuery {
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert!(total >= cases.len() as u64, "{label}: {total} usage rows");
        assert!(rows
            .iter()
            .all(|r| r.record.ip.as_deref() == Some("127.0.0.1")));
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
fn usage_log_filters_and_pagination() {
    let db = common::sqlite();
    let server = Server::start(&db);
    let mut b = Browser::new(&server);
    b.login();
    let csrf = b.get("/clients").csrf();
    b.post_form(
        "/clients",
        &form(&[("csrf", &csrf), ("name", "A"), ("email", "a@example.org")]),
    )
    .expect(303);
    let (key_id, key, _) = web_generate(&mut b, 1, "api", "prod", "read");
    for i in 0..60 {
        b.verify(
            &json!({"key": key, "ip": format!("192.0.2.{}", i % 3), "endpoint": "/api/items"}),
        )
        .expect(200);
    }
    for _ in 0..7 {
        b.verify(&json!({"key": "hk_api_nonsense", "ip": "198.51.100.9"}));
    }
    // Usage is written by a background flusher: wait for all 67 rows.
    let deadline = Instant::now() + Duration::from_secs(10);
    let store = std::sync::Arc::clone(&db.store);
    while store
        .usage_log(&heratio_keys_core::UsageQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap()
        .1
        < 67
    {
        assert!(Instant::now() < deadline, "usage rows not flushed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let summary = |b: &mut Browser, q: &str| {
        let r = b.get(&format!("/usage{q}")).expect(200);
        common::between(&r.body, "id=\"usage-summary\">", "</p>").unwrap()
    };
    assert!(summary(&mut b, "").contains("1–50 of 67"));
    assert!(summary(&mut b, "?page=2").contains("51–67 of 67"));
    assert!(summary(&mut b, "?outcome=malformed").contains("of 7 "));
    assert!(summary(&mut b, "?outcome=valid&ip=192.0.2.1").contains("of 20 "));
    assert!(summary(&mut b, "?client=1").contains("of 60 "));
    assert!(summary(&mut b, &format!("?kind=api&credential={key_id}")).contains("of 60 "));
    assert!(summary(&mut b, "?kind=ai&credential=1").contains("No matching"));
    let r = b.get("/usage?kind=ai").expect(200);
    assert!(r.body.contains("The kind filters together with a key id"));
    let today = heratio_keys_core::model::utc_date(now_ms());
    assert!(summary(&mut b, &format!("?from={today}&to={today}")).contains("of 67 "));
    assert!(summary(&mut b, "?to=2000-01-01").contains("No matching"));
    // Page 2 keeps the filters in its links.
    let r = b.get("/usage?outcome=valid").expect(200);
    assert!(
        r.body.contains("href=\"/usage?outcome=valid&amp;page=2\""),
        "{}",
        r.body
    );
    // Bad filters are explained, not fatal.
    let r = b
        .get("/usage?client=abc&from=yesterday&outcome=bogus&page=0")
        .expect(200);
    assert!(r.body.contains("Client must be a client id."));
    assert!(r.body.contains("From must be a date"));
    assert!(r.body.contains("Unknown outcome"));
    // Client search.
    let r = b.get("/clients?q=zzz").expect(200);
    assert!(r.body.contains("0 of 1 clients match"));
    let r = b.get("/clients?q=A").expect(200);
    assert!(r.body.contains("1 of 1 clients match"));
    // Unknown ids are 404 pages, not panics.
    b.get("/clients/999").expect(404);
    b.get("/clients/abc").expect(404);
    b.get("/credentials/api/999/revoke").expect(404);
    b.get("/credentials/xx/1/revoke").expect(404);
}

#[test]
fn admin_create_rules() {
    use heratio_keys_core::ErrorKind;
    for db in common::all() {
        let label = db.label();
        let actor = cli_actor();
        let create = |user: &str, password: &str, reset: bool| {
            heratio_keys_web::create_admin(&db.dsn, user, password, reset, &actor)
        };
        let err = create(ADMIN, PASSWORD, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{label}");
        let err = create("bob", "short", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{label}");
        let err = create("bad name", PASSWORD, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{label}");
        let err = create("nobody", PASSWORD, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{label}");
        let done = create(ADMIN, "a brand new password", true).unwrap();
        assert!(!done.created);
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        assert_eq!(b.login_as(ADMIN, PASSWORD).status, 401, "{label}");
        assert_eq!(
            b.login_as(ADMIN, "a brand new password").status,
            303,
            "{label}"
        );
        drop(b);
        drop(server);
        // Only a hash is stored.
        let text = db.everything_stored();
        assert!(!text.contains("a brand new password"), "{label}");
        assert!(text.contains("$argon2id$v=19$"), "{label}");
        // Creating and resetting are audited by the core, with our actor.
        let audit = db.store.audit_log(100).unwrap();
        for action in ["admin.create", "admin.reset_password"] {
            let e = audit
                .iter()
                .find(|e| e.action == action)
                .unwrap_or_else(|| panic!("{label}: no {action} in {audit:?}"));
            assert_eq!(e.source, "cli", "{label}: {action}");
        }
    }
}

#[test]
fn admin_accounts_need_the_current_schema() {
    use heratio_keys_core::ErrorKind;
    let actor = cli_actor();
    // No database at all: nothing is created, not even the file.
    let empty = common::TestDb::sqlite_empty();
    let err =
        heratio_keys_web::create_admin(&empty.dsn, ADMIN, PASSWORD, false, &actor).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaOutdated, "{}", err.message());
    assert!(!empty.sqlite_path().unwrap().exists());
    // A schema from before admin accounts were the core's (version 1):
    // refused, and the table is not created behind `keygen install`'s back.
    for db in heratio_keys_testkit::TestDb::all() {
        let label = db.label();
        db.exec("DROP TABLE admin_user");
        db.exec("DELETE FROM schema_version WHERE version >= 2");
        let err =
            heratio_keys_web::create_admin(&db.dsn, ADMIN, PASSWORD, false, &actor).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::SchemaOutdated,
            "{label}: {}",
            err.message()
        );
        assert!(err.message().contains("keygen install"), "{label}");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = heratio_keys_web::serve_listener(
            &heratio_keys_web::Config::new(db.dsn.clone()),
            listener,
            async {},
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SchemaOutdated, "{label}: serve");
        db.store.install().unwrap();
        heratio_keys_web::create_admin(&db.dsn, ADMIN, PASSWORD, false, &actor).unwrap();
    }
}
