//! HTTP-level tests of `keygen serve`: a real server on a loopback port over
//! a real SQLite file and (when configured) a fresh MariaDB database. Logins
//! and sessions are in `login.rs`, `/v1/verify` in `verify.rs`.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{cli_actor, form, keys_in, Browser, Server, ADMIN, PASSWORD};
use heratio_keys_core::model::now_ms;
use heratio_keys_core::Kind;
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
fn usage_log_filters_and_pagination() {
    let db = common::sqlite();
    // The test sends end-user addresses, which only a trusted caller may.
    let server = Server::start_with(&db, |c| {
        c.verify_trusted = heratio_keys_web::parse_trusted("127.0.0.0/8").unwrap();
    });
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
    // Usage is written by a background flusher: wait for the 60 rows of the
    // stored key and the count of the 7 that matched nothing (those have no
    // row each since issue 13 item 4).
    let deadline = Instant::now() + Duration::from_secs(10);
    let store = std::sync::Arc::clone(&db.store);
    let all = heratio_keys_core::UsageQuery {
        limit: 1,
        ..Default::default()
    };
    while store.usage_log(&all).unwrap().1 < 60 || store.rejected_usage(&all).unwrap().1 < 7 {
        assert!(Instant::now() < deadline, "usage rows not flushed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let summary = |b: &mut Browser, q: &str| {
        let r = b.get(&format!("/usage{q}")).expect(200);
        common::between(&r.body, "id=\"usage-summary\">", "</p>").unwrap()
    };
    assert!(summary(&mut b, "").contains("1–50 of 60"));
    assert!(summary(&mut b, "?page=2").contains("51–60 of 60"));
    assert!(summary(&mut b, "?outcome=malformed").contains("No matching"));
    assert!(summary(&mut b, "?outcome=valid&ip=192.0.2.1").contains("of 20 "));
    assert!(summary(&mut b, "?client=1").contains("of 60 "));
    assert!(summary(&mut b, &format!("?kind=api&credential={key_id}")).contains("of 60 "));
    assert!(summary(&mut b, "?kind=ai&credential=1").contains("No matching"));
    let r = b.get("/usage?kind=ai").expect(200);
    assert!(r.body.contains("The kind filters together with a key id"));
    let today = heratio_keys_core::model::utc_date(now_ms());
    assert!(summary(&mut b, &format!("?from={today}&to={today}")).contains("of 60 "));
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
