//! Roles: every route of the site (read from the route table the router is
//! built from, so a new route cannot be left out) tried by every role;
//! the table's own sanity (forms need operator, accounts need admin); a
//! viewer's read-only pages; the accounts page and the core's rules on it
//! (last admin, disabled accounts, sessions ended by a change).

use crate::common;

use crate::common::{
    add_account, alerts, follow, form, form_csrf, Browser, Server, ADMIN, PASSWORD,
};
use heratio_keys_core::{AdminRole, Kind};
use heratio_keys_web::{route_table, Access, RouteInfo};

/// The routes that need no login, and nothing else.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/v1/verify"),
    ("GET", "/healthz"),
    ("GET", "/assets/{file}"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/metrics"),
];

/// The path with its parameters filled in from the fixtures. A route with
/// a parameter nobody knows fails here: give it a fixture.
fn concrete(route: &RouteInfo, client: i64, key: i64) -> String {
    let id = if route.path.starts_with("/credentials/") {
        key
    } else {
        client
    };
    let path = route
        .path
        .replace("{kind}", "api")
        .replace("{id}", &id.to_string())
        .replace("{user}", "target");
    assert!(
        !path.contains('{'),
        "no fixture for a parameter of {} {}",
        route.method,
        route.path
    );
    path
}

#[test]
fn the_route_table_is_sane() {
    let table = route_table();
    assert!(table.len() >= 30, "{} routes", table.len());
    for r in &table {
        let public = PUBLIC.contains(&(r.method, r.path));
        assert_eq!(
            r.access == Access::Public,
            public,
            "{} {}",
            r.method,
            r.path
        );
        let Access::Role(role) = r.access else {
            continue;
        };
        if r.path.starts_with("/admins") {
            assert_eq!(role, AdminRole::Admin, "{} {}", r.method, r.path);
        } else if r.method == "POST" && r.path != "/logout" {
            // Every form that changes something; a viewer changes nothing.
            assert_eq!(role, AdminRole::Operator, "{} {}", r.method, r.path);
        }
    }
    // Each (method, path) once.
    let mut seen: Vec<_> = table.iter().map(|r| (r.method, r.path)).collect();
    seen.sort_unstable();
    let n = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), n, "a route is listed twice");
}

#[test]
fn every_route_with_every_role() {
    for db in common::all() {
        let label = db.label();
        let client = common::store_client(&db, "Matrix Archive");
        let (key, _) = common::store_key(&db, Kind::ApiKey, client, "matrix");
        common::store_key(&db, Kind::AiToken, client, "matrix-ai");
        add_account(&db, "target", AdminRole::Viewer);
        for role in AdminRole::ALL {
            add_account(&db, role.as_str(), role);
        }
        let server = Server::start(&db);
        let table = route_table();
        let (mut allowed, mut refused) = (0, 0);
        for role in AdminRole::ALL {
            let mut b = Browser::new(&server);
            b.login_user(role.as_str());
            let csrf = b.get("/").expect(200).csrf();
            // Logging out ends the session: tried last.
            let mut routes: Vec<&RouteInfo> = table
                .iter()
                .filter(|r| r.access != Access::Public)
                .collect();
            routes.sort_by_key(|r| r.path == "/logout");
            for r in routes {
                let Access::Role(needed) = r.access else {
                    unreachable!()
                };
                let path = concrete(r, client, key);
                let resp = if r.method == "GET" {
                    b.get(&path)
                } else {
                    b.post_form(&path, &form(&[("csrf", &csrf)]))
                };
                let what = format!("{label}: {role} {} {path}", r.method);
                if role.allows(needed) && r.path == "/logout" {
                    // Logging out answers with the login page, by design.
                    allowed += 1;
                    assert_eq!(resp.location(), Some("/login"), "{what}");
                    assert_eq!(b.get("/").location(), Some("/login"), "{what}");
                } else if role.allows(needed) {
                    allowed += 1;
                    assert_ne!(resp.status, 403, "{what} refused: {}", resp.body);
                    assert_ne!(resp.location(), Some("/login"), "{what}: logged out");
                    assert!(resp.status < 500, "{what}: {}", resp.body);
                } else {
                    refused += 1;
                    assert_eq!(resp.status, 403, "{what} allowed: {}", resp.body);
                    assert!(resp.body.contains("Not allowed"), "{what}: {}", resp.body);
                    assert!(
                        resp.body.contains(&format!("needs the {needed} role")),
                        "{what}"
                    );
                }
            }
        }
        eprintln!("{label}: {allowed} allowed and {refused} refused requests");
        // A refused form changed nothing: the viewer and the operator
        // could not touch the accounts, the viewer not the keys.
        let target = db.store.find_admin("target").unwrap().unwrap().account;
        assert_eq!(target.role, AdminRole::Viewer, "{label}");
        let audit = db.store.audit_log(10_000).unwrap();
        for e in &audit {
            if e.source == "web" && !e.action.starts_with("admin.log") {
                assert_ne!(e.actor, "viewer", "{label}: the viewer changed {e:?}");
                if e.target_type == "admin_user" {
                    assert_eq!(e.actor, "admin", "{label}: {e:?}");
                }
            }
        }
    }
}

#[test]
fn a_viewer_reads_everything_and_sees_no_forms() {
    for db in common::all() {
        let label = db.label();
        let client = common::store_client(&db, "Reading Room");
        let (key, _) = common::store_key(&db, Kind::ApiKey, client, "production");
        add_account(&db, "vera", AdminRole::Viewer);
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        b.login_user("vera");
        for path in [
            "/".to_owned(),
            "/clients".to_owned(),
            format!("/clients/{client}"),
            format!("/credentials/api/{key}"),
            "/usage".to_owned(),
            "/audit".to_owned(),
        ] {
            let r = b.get(&path).expect(200);
            // The log-out form is the one POST form on every page.
            assert_eq!(
                r.body.matches("method=\"post\"").count(),
                1,
                "{label}: {path} has forms: {}",
                r.body
            );
            assert!(r.body.contains("action=\"/logout\""), "{label}: {path}");
            assert!(!r.body.contains("href=\"/admins\""), "{label}: {path}");
            assert!(r.body.contains(">viewer<"), "{label}: role shown on {path}");
            assert!(
                !r.body.contains("Revoke"),
                "{label}: {path} offers to revoke"
            );
        }
        // Reading includes the exports.
        b.get("/usage/export").expect(200);
        b.get("/audit/export").expect(200);
        b.get("/admins").expect(403);
        let csrf = b.get("/").csrf();
        let r = b.post_form(
            &format!("/credentials/api/{key}/revoke"),
            &form(&[("csrf", &csrf)]),
        );
        assert_eq!(r.status, 403, "{label}");
        assert!(db.store.get_credential(Kind::ApiKey, key).unwrap().active);
    }
}

#[test]
fn accounts_page_creates_changes_and_protects_the_last_admin() {
    for db in common::all() {
        let label = db.label();
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        b.login();
        let page = b.get("/admins").expect(200);
        assert!(
            page.body.contains(&format!("data-admin=\"{ADMIN}\"")),
            "{label}"
        );
        let csrf = form_csrf(&page, "/admins");
        // Creating: both passwords, the core's name rule, a role.
        let create = |b: &mut Browser, user: &str, p2: &str, role: &str| {
            let r = b.post_form(
                "/admins",
                &form(&[
                    ("csrf", &csrf),
                    ("username", user),
                    ("password", PASSWORD),
                    ("password2", p2),
                    ("role", role),
                ]),
            );
            alerts(&follow(b, &r)).join(" ")
        };
        assert!(create(&mut b, "olga", "different password", "operator").contains("differ"));
        assert!(create(&mut b, "bad name", PASSWORD, "viewer").contains("invalid admin user name"));
        assert!(create(&mut b, "olga", PASSWORD, "chief").contains("invalid role"));
        assert!(
            create(&mut b, "olga", PASSWORD, "operator")
                .contains("Created account olga (operator)"),
            "{label}"
        );
        assert!(
            create(&mut b, "olga", PASSWORD, "viewer").contains("already exists"),
            "{label}"
        );
        let olga = db.store.find_admin("olga").unwrap().unwrap();
        assert_eq!(olga.account.role, AdminRole::Operator);
        assert!(
            olga.password_hash.starts_with("$argon2id$"),
            "{label}: hashed"
        );

        // The last active admin cannot be demoted or disabled: the core says so.
        for (path, fields) in [
            (format!("/admins/{ADMIN}/role"), vec![("role", "viewer")]),
            (format!("/admins/{ADMIN}/disable"), vec![]),
        ] {
            let mut fields = fields;
            fields.push(("csrf", &csrf));
            let r = b.post_form(&path, &form(&fields));
            let said = alerts(&follow(&mut b, &r)).join(" ");
            assert!(said.contains("is the last active admin"), "{label}: {said}");
        }
        let me = db.store.find_admin(ADMIN).unwrap().unwrap().account;
        assert!(me.active && me.role == AdminRole::Admin, "{label}");

        // olga logs in, then a role change ends her session at once.
        let mut o = Browser::new(&server);
        o.login_user("olga");
        o.get("/clients").expect(200);
        let r = b.post_form(
            "/admins/olga/role",
            &form(&[("csrf", &csrf), ("role", "viewer")]),
        );
        assert!(
            alerts(&follow(&mut b, &r))
                .join(" ")
                .contains("olga is now viewer"),
            "{label}"
        );
        assert_eq!(
            o.get("/clients").location(),
            Some("/login"),
            "{label}: session ended"
        );
        o.login_user("olga");
        assert!(o.get("/").body.contains(">viewer<"), "{label}");

        // Disabled: the session ends and the right password no longer works.
        let r = b.post_form("/admins/olga/disable", &form(&[("csrf", &csrf)]));
        assert!(
            alerts(&follow(&mut b, &r))
                .join(" ")
                .contains("Disabled olga"),
            "{label}"
        );
        assert_eq!(o.get("/").location(), Some("/login"), "{label}");
        let r = o.login_as("olga", PASSWORD);
        assert_eq!(r.status, 401, "{label}: a disabled account logs in");
        assert!(r.body.contains("Wrong user name or password."), "{label}");
        let failed = db
            .store
            .audit_log(100)
            .unwrap()
            .into_iter()
            .find(|e| e.action == "admin.login_failed" && e.actor == "olga")
            .expect("audited");
        assert_eq!(
            failed.detail.as_deref(),
            Some("account disabled"),
            "{label}"
        );
        // Enabled again, she can.
        let r = b.post_form("/admins/olga/enable", &form(&[("csrf", &csrf)]));
        assert!(
            alerts(&follow(&mut b, &r))
                .join(" ")
                .contains("Enabled olga"),
            "{label}"
        );
        o.login_user("olga");

        // With a second admin, the first may step down; its own session ends.
        let r = b.post_form(
            "/admins/olga/role",
            &form(&[("csrf", &csrf), ("role", "admin")]),
        );
        follow(&mut b, &r).expect(200);
        let r = b.post_form(
            &format!("/admins/{ADMIN}/role"),
            &form(&[("csrf", &csrf), ("role", "operator")]),
        );
        assert_eq!(
            follow(&mut b, &r).location(),
            Some("/login"),
            "{label}: own session ended"
        );
        b.login();
        assert_eq!(b.get("/admins").status, 403, "{label}: now an operator");
        // Every change is the core's audit row, with the web actor.
        let audit = db.store.audit_log(200).unwrap();
        for action in [
            "admin.create",
            "admin.role",
            "admin.disable",
            "admin.enable",
        ] {
            assert!(
                audit
                    .iter()
                    .any(|e| e.action == action && e.source == "web" && e.actor == ADMIN),
                "{label}: no {action}"
            );
        }
    }
}

#[test]
fn every_form_checks_its_csrf_token() {
    let db = common::sqlite();
    let client = common::store_client(&db, "Token Archive");
    let (key, _) = common::store_key(&db, Kind::ApiKey, client, "token");
    add_account(&db, "target", AdminRole::Viewer);
    let server = Server::start(&db);
    let mut b = Browser::new(&server);
    b.login();
    let mut forms = 0;
    for r in route_table() {
        if r.method != "POST" || r.access == Access::Public {
            continue;
        }
        forms += 1;
        let path = concrete(&r, client, key);
        for bad in ["", "forged"] {
            let resp = b.post_form(
                &path,
                &form(&[("csrf", bad), ("name", "x"), ("role", "admin")]),
            );
            assert_eq!(
                resp.status, 403,
                "POST {path} with token {bad:?}: {}",
                resp.body
            );
            assert!(resp.body.contains("Form expired"), "POST {path}");
        }
    }
    assert!(forms >= 15, "{forms} forms");
    let changed: Vec<_> = db
        .store
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.source == "web" && e.action != "admin.login")
        .collect();
    assert!(changed.is_empty(), "a forged form changed {changed:?}");
}
