//! Logging in and staying logged in: cookies, expiry, throttling that slows
//! guessers without locking the real admin out, bounded audit rows, and
//! sessions ended by account changes made from another process.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{
    audit_count, cli_actor, form, parallel_logins, Browser, Server, ADMIN, PASSWORD,
};

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
    // A lock-out long enough that no load on the machine outlasts it
    // between the third failure and the next attempt (argon2 runs in
    // between), then a short one to see it end.
    for (lockout, check_the_end) in [
        (Duration::from_secs(600), false),
        (Duration::from_secs(1), true),
    ] {
        let server = Server::start_with(&db, |c| {
            c.login_max_failures = 3;
            c.login_window = Duration::from_secs(600);
            c.login_lockout = lockout;
        });
        let mut b = Browser::new(&server);
        for _ in 0..3 {
            assert_eq!(b.login_as(ADMIN, "wrong password!").status, 401);
        }
        let failed_at = Instant::now();
        if check_the_end {
            // The lock-out ends: waiting longer than it is always safe.
            std::thread::sleep(Duration::from_millis(1100).saturating_sub(failed_at.elapsed()));
            let r = b.login_as(ADMIN, PASSWORD);
            assert_eq!(r.status, 303, "{}", r.body);
        } else {
            let r = b.login_as(ADMIN, PASSWORD);
            assert_eq!(r.status, 429, "locked out even with the right password");
            assert!(r.body.contains("Too many failed logins"));
            assert!(r.header("retry-after").is_some());
            assert_eq!(b.get("/").status, 303);
        }
    }
}

#[test]
fn parallel_wrong_logins_are_counted_before_their_checks() {
    for db in common::all() {
        let label = db.label();
        let server = Server::start(&db);
        // 200 guesses at once, same name, same source: each is counted
        // before its password is checked, so only the allowed number (5,
        // the default) are checked at all; the rest are refused at once.
        let statuses = parallel_logins(&server, 200, |_| ADMIN.to_owned(), |_| None);
        let checked = statuses.iter().filter(|s| **s == 401).count();
        assert!(
            statuses.iter().all(|s| [401, 429, 503].contains(s)),
            "{label}: {statuses:?}"
        );
        drop(server);
        let failed = audit_count(&db, "admin.login_failed");
        eprintln!("{label}: 200 parallel wrong logins: {checked} password checks, {failed} admin.login_failed rows");
        assert!(checked <= 5, "{label}: {checked} passwords checked");
        assert_eq!(failed, checked, "{label}: one row per checked failure");
        assert!(
            audit_count(&db, "admin.login_locked_out") <= 1,
            "{label}: refusals audited once"
        );
    }
}

#[test]
fn a_lockout_from_one_source_spares_the_admin_elsewhere() {
    for db in common::all() {
        let label = db.label();
        let server = Server::start_with(&db, |c| c.trust_proxy = true);
        let mut attacker = Browser::from_ip(&server, "203.0.113.7");
        for _ in 0..5 {
            attacker.login_as(ADMIN, "a wrong guess!!").expect(401);
        }
        let r = attacker.login_as(ADMIN, PASSWORD);
        assert_eq!(r.status, 429, "{label}: the guesser is locked out");
        assert!(r.header("retry-after").is_some());
        // The real admin, from somewhere else, is not.
        let mut admin = Browser::from_ip(&server, "198.51.100.20");
        admin.login();
        admin.get("/").expect(200);
        // The guesser keeps trying: refused every time, audited once.
        for i in 0..30 {
            let pw = if i % 2 == 0 {
                PASSWORD
            } else {
                "another guess"
            };
            assert_eq!(attacker.login_as(ADMIN, pw).status, 429, "{label}");
        }
        drop(server);
        assert_eq!(audit_count(&db, "admin.login_failed"), 5, "{label}");
        assert_eq!(
            audit_count(&db, "admin.login_locked_out"),
            1,
            "{label}: one row per (user, source) per lock-out"
        );
    }
}

#[test]
fn a_source_spraying_user_names_is_locked_out_alone() {
    for db in common::all() {
        let label = db.label();
        let server = Server::start_with(&db, |c| c.trust_proxy = true);
        // One IPv6 host owns its /64: rotating addresses inside it does
        // not make new sources.
        let host = |i: usize| format!("2001:db8:7:7::{:x}", i + 1);
        for i in 0..20 {
            let mut b = Browser::from_ip(&server, &host(i));
            b.login_as(&format!("user{i}"), "a wrong guess!!")
                .expect(401);
        }
        for i in 20..50 {
            let mut b = Browser::from_ip(&server, &host(i));
            let user = if i % 2 == 0 {
                ADMIN.to_owned()
            } else {
                format!("user{i}")
            };
            let r = b.login_as(&user, PASSWORD);
            assert_eq!(r.status, 429, "{label}: {user} from {}", host(i));
        }
        let mut admin = Browser::from_ip(&server, "2001:db8:7:8::1");
        admin.login();
        drop(server);
        assert_eq!(audit_count(&db, "admin.login_failed"), 20, "{label}");
        assert_eq!(
            audit_count(&db, "admin.login_locked_out"),
            1,
            "{label}: a locked-out source is audited once per lock-out"
        );
    }
}

#[test]
fn a_password_reset_from_the_cli_ends_sessions() {
    for db in common::all() {
        let label = db.label();
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        let mut other = Browser::new(&server);
        b.login();
        other.login();
        let csrf = b.get("/").expect(200).csrf();
        // What `keygen admin:create alice --reset-password` does, in
        // another process as far as the server knows.
        heratio_keys_web::create_admin(&db.dsn, ADMIN, "a brand new password", true, &cli_actor())
            .expect("reset");
        let r = b.get("/clients");
        assert_eq!(r.status, 303, "{label}: {}", r.body);
        assert_eq!(r.location(), Some("/login"), "{label}");
        assert_eq!(other.get("/").location(), Some("/login"), "{label}");
        // The session is gone on the server, not just refused once.
        let r = b.post_form("/logout", &form(&[("csrf", &csrf)]));
        assert_eq!(r.location(), Some("/login"), "{label}");
        // A login with the new password works and stays.
        assert_eq!(b.login_as(ADMIN, PASSWORD).status, 401, "{label}");
        let r = b.login_as(ADMIN, "a brand new password");
        assert_eq!(r.status, 303, "{label}: {}", r.body);
        b.get("/clients").expect(200);
        b.get("/").expect(200);
        // An account removed behind the server's back ends its sessions too.
        db.exec("DELETE FROM admin_user");
        assert_eq!(b.get("/").location(), Some("/login"), "{label}");
    }
}
