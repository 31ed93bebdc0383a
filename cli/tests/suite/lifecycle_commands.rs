//! A credential's life after issue through the real `keygen` binary, on
//! SQLite and MariaDB: rotation with a grace period, expiry, renaming, IP
//! allowlists, client updates and reactivation, and `keygen maintain` on a
//! clock moved with `--now` (no test sleeps).

use crate::common::{array, expected_actor, int, strings, text, Keygen, TestDb};
use heratio_keys_core::model::{now_ms, parse_rfc3339, rfc3339, DAY_MS};
use heratio_keys_core::AuditQuery;
use serde_json::Value;

const HOUR_MS: i64 = 3_600_000;

fn client(db: &TestDb, name: &str) -> i64 {
    let v = db.json(
        &[
            "client:create",
            "--name",
            name,
            "--email",
            "ops@example.org",
        ],
        0,
    );
    int(&v, "id")
}

/// `*:generate CLIENT --name NAME extra… --json`: the document and its key.
fn generate(db: &TestDb, kind: &str, client: i64, name: &str, extra: &[&str]) -> (Value, String) {
    let command = format!("{kind}:generate");
    let client = client.to_string();
    let mut args = vec![command.as_str(), &client, "--name", name];
    args.extend_from_slice(extra);
    let v = db.json(&args, 0);
    let key = text(&v, "key").to_owned();
    (v, key)
}

/// The status name `*:validate` prints for `key` (no IP: the CLI has none).
fn status(db: &TestDb, kind: &str, key: &str) -> String {
    let run = db.keygen_stdin(&[&format!("{kind}:validate")], Some(key));
    let first = run.stdout.lines().next().unwrap_or("").to_owned();
    assert_eq!(
        run.code,
        if first == "valid" { 0 } else { 1 },
        "{}",
        run.stderr
    );
    first
}

fn time(v: &Value, field: &str) -> i64 {
    parse_rfc3339(text(v, field)).unwrap_or_else(|e| panic!("{field}: {e}"))
}

/// The audit rows of one action on one target, newest first.
fn audited(db: &TestDb, action: &str, target: i64) -> Vec<heratio_keys_core::AuditEntry> {
    db.store
        .audit_query(&AuditQuery {
            action: Some(action.into()),
            target_id: Some(target),
            limit: 100,
            ..AuditQuery::default()
        })
        .expect("audit")
        .0
}

#[track_caller]
fn assert_cli_audit(db: &TestDb, action: &str, target: i64) {
    let rows = audited(db, action, target);
    assert!(!rows.is_empty(), "no {action} row for {target}");
    for row in rows {
        assert_eq!(row.source, "cli");
        if let Some(actor) = expected_actor() {
            assert_eq!(row.actor, actor);
        }
    }
}

fn rotation(db: &TestDb) {
    let c = client(db, "Reading Room");
    let (old, old_key) = generate(
        db,
        "api",
        c,
        "harvester",
        &[
            "--scopes",
            "read,write",
            "--rate-limit",
            "500",
            "--metadata",
            r#"{"team":"harvest"}"#,
            "--allow-ip",
            "192.0.2.0/24",
        ],
    );
    let old_id = int(&old, "id");

    // JSON: the generate document plus replaces and the old key's new expiry.
    let before = now_ms();
    let run = db
        .keygen(&["api:rotate", &old_id.to_string(), "--grace", "2h", "--json"])
        .expect_code(0);
    assert!(
        run.stderr.contains("will not be shown again"),
        "{}",
        run.stderr
    );
    let new = run.json();
    let new_key = text(&new, "key").to_owned();
    assert_eq!(run.stdout.matches(&new_key).count(), 1);
    assert!(new_key.starts_with("hk_api_") && new_key != old_key);
    let new_id = int(&new, "id");
    assert_ne!(new_id, old_id);
    assert_eq!(int(&new, "replaces"), old_id);
    assert_eq!(int(&new, "rotated_from"), old_id);
    assert_eq!(int(&new, "client_id"), c);
    assert_eq!(text(&new, "kind"), "api");
    assert_eq!(text(&new, "prefix"), &new_key[..12]);
    assert_eq!(text(&new, "name"), "harvester");
    assert_eq!(strings(&new, "scopes"), ["read", "write"]);
    assert_eq!(int(&new, "rate_limit"), 500);
    assert_eq!(new["metadata"]["team"], "harvest");
    assert_eq!(strings(&new, "allowed_ips"), ["192.0.2.0/24"]);
    assert_eq!(text(&new, "status"), "active");
    assert_eq!(new["expires_at"], Value::Null);
    assert_eq!(new["expires_soon"], false);
    let ends = time(&new, "replaces_expires_at");
    assert!(
        ends >= before + 2 * HOUR_MS - 1000 && ends <= now_ms() + 2 * HOUR_MS,
        "{ends}"
    );
    // The old key is still active, expiring at the end of the grace.
    let list = db.json(&["api:list", &c.to_string()], 0);
    let old_now = array(&list)
        .iter()
        .find(|k| int(k, "id") == old_id)
        .expect("old key listed");
    assert_eq!(text(old_now, "status"), "active");
    assert_eq!(time(old_now, "expires_at"), ends);
    assert_eq!(old_now["expires_soon"], true);
    assert_eq!(old_now["rotated_from"], Value::Null);
    // Both work during the grace (here: both refused for the same reason,
    // their allowlist, which the CLI's validation has no address for).
    db.json(&["api:allow-ip", &old_id.to_string(), "--any"], 0);
    db.json(&["api:allow-ip", &new_id.to_string(), "--any"], 0);
    assert_eq!(status(db, "api", &old_key), "valid");
    assert_eq!(status(db, "api", &new_key), "valid");
    assert_cli_audit(db, "api_key.rotate", new_id);

    // Human output: the key once, its details, what happens to the old one.
    let human = db
        .keygen(&["api:rotate", &new_id.to_string(), "--grace", "0"])
        .expect_code(0);
    assert!(human.stderr.contains("will not be shown again"));
    let shown: Vec<&str> = human
        .stdout
        .split_whitespace()
        .filter(|w| w.starts_with("hk_api_") && w.len() == 53)
        .collect();
    assert_eq!(shown.len(), 1, "{}", human.stdout);
    assert!(
        human.stdout.contains(&format!("Rotated API key {new_id}"))
            && human.stdout.lines().any(|l| l
                .split_whitespace()
                .eq(["replaces", new_id.to_string().as_str()]))
            && human.stdout.contains("then answers expired"),
        "{}",
        human.stdout
    );
    // --grace 0: the replaced key is expired at once.
    assert_eq!(status(db, "api", &new_key), "expired");
    assert_eq!(status(db, "api", shown[0]), "valid");

    // Default grace: 24 hours. AI tokens rotate the same way.
    let (tok, tok_key) = generate(db, "ai", c, "describer", &["--scopes", "ai:describe"]);
    let tok_id = int(&tok, "id");
    let before = now_ms();
    let rotated = db.json(&["ai:rotate", &tok_id.to_string()], 0);
    assert_eq!(text(&rotated, "kind"), "ai");
    assert!(text(&rotated, "key").starts_with("hk_ai_"));
    assert_eq!(int(&rotated, "replaces"), tok_id);
    assert_eq!(strings(&rotated, "scopes"), ["ai:describe"]);
    let ends = time(&rotated, "replaces_expires_at");
    assert!(ends >= before + 24 * HOUR_MS - 1000 && ends <= now_ms() + 24 * HOUR_MS);
    assert_eq!(status(db, "ai", &tok_key), "valid");
    assert_cli_audit(db, "ai_token.rotate", int(&rotated, "id"));
    // An old key's own earlier expiry is kept.
    let (short, _) = generate(db, "api", c, "short", &["--expires-in", "1h"]);
    let short_expiry = time(&short, "expires_at");
    let r = db.json(
        &[
            "api:rotate",
            &int(&short, "id").to_string(),
            "--grace",
            "7d",
        ],
        0,
    );
    assert_eq!(time(&r, "replaces_expires_at"), short_expiry);

    // Refusals: revoked (1), unknown (1), bad grace (2), wrong kind's id (1).
    db.keygen(&["api:revoke", &old_id.to_string()])
        .expect_code(0);
    let r = db
        .keygen(&["api:rotate", &old_id.to_string()])
        .expect_code(1);
    assert!(r.one_error_line().contains("revoked"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    db.keygen(&["api:rotate", "999999"])
        .expect_code(1)
        .one_error_line();
    for bad in ["soon", "-1h", "1y", ""] {
        let r = db
            .keygen(&["api:rotate", &new_id.to_string(), "--grace", bad])
            .expect_code(2);
        assert!(r.stdout.is_empty(), "{bad}");
    }
    db.keygen(&["ai:rotate", "999999"]).expect_code(1);
    // A deactivated client's keys cannot be rotated.
    let gone = client(db, "Gone");
    let (g, _) = generate(db, "api", gone, "g", &[]);
    db.keygen(&["client:deactivate", &gone.to_string()])
        .expect_code(0);
    db.keygen(&["api:rotate", &int(&g, "id").to_string()])
        .expect_code(1)
        .one_error_line();
}

fn expiry(db: &TestDb) {
    let c = client(db, "Reading Room");
    let (k, key) = generate(db, "api", c, "expiring", &[]);
    let id = int(&k, "id").to_string();
    assert_eq!(k["expires_soon"], false);

    let before = now_ms();
    let v = db.json(&["api:expire", &id, "--in", "3d"], 0);
    let at = time(&v, "expires_at");
    assert!(at >= before + 3 * DAY_MS - 1000 && at <= now_ms() + 3 * DAY_MS);
    assert_eq!(text(&v, "status"), "active");
    assert_eq!(v["expires_soon"], true);
    assert_eq!(int(&v, "id"), int(&k, "id"));
    // The table marks it.
    let table = db
        .keygen(&["api:list", &c.to_string()])
        .expect_code(0)
        .stdout;
    assert!(table.contains("expires soon"), "{table}");
    assert!(
        table.contains("ALLOWED IPS") && table.contains(" any "),
        "{table}"
    );

    let v = db.json(&["api:expire", &id, "--at", "2099-01-31T01:00:00+01:00"], 0);
    assert_eq!(text(&v, "expires_at"), "2099-01-31T00:00:00Z");
    assert_eq!(v["expires_soon"], false);
    let human = db.keygen(&["api:expire", &id, "--never"]).expect_code(0);
    assert!(
        human.stdout.contains("never expires") && human.stdout.contains("expiring"),
        "{}",
        human.stdout
    );
    let v = db.json(&["api:list", &c.to_string()], 0);
    assert_eq!(v[0]["expires_at"], Value::Null);
    assert_eq!(status(db, "api", &key), "valid");

    // Expiring it a second from now makes it expired (checked through the
    // store's view as of a later instant, not by sleeping).
    let v = db.json(&["api:expire", &id, "--in", "1s"], 0);
    let info = db
        .store
        .get_credential(heratio_keys_core::Kind::ApiKey, int(&k, "id"))
        .expect("credential");
    let at = info.expires_at.expect("an expiry");
    assert_eq!(at / 1000, time(&v, "expires_at") / 1000);
    assert_eq!(info.state(at - 1).as_str(), "active");
    assert_eq!(info.state(at).as_str(), "expired");

    // Usage errors (2): past, too far, malformed, none or two of the options.
    for args in [
        vec!["--at", "2020-01-01T00:00:00Z"],
        vec!["--at", "2400-01-01T00:00:00Z"],
        vec!["--at", "tomorrow"],
        vec!["--in", "0d"],
        vec!["--in", "90"],
        vec![],
        vec!["--in", "1d", "--never"],
    ] {
        let mut all = vec!["api:expire", id.as_str()];
        all.extend(args.iter().copied());
        let r = db.keygen(&all).expect_code(2);
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    // Unknown (1), revoked (1), and the same for tokens.
    db.keygen(&["api:expire", "999999", "--never"])
        .expect_code(1);
    let (t, _) = generate(db, "ai", c, "token", &[]);
    let tid = int(&t, "id").to_string();
    let v = db.json(&["ai:expire", &tid, "--in", "2d"], 0);
    assert_eq!(v["expires_soon"], true);
    assert_eq!(text(&v, "kind"), "ai");
    db.keygen(&["ai:revoke", &tid]).expect_code(0);
    let r = db.keygen(&["ai:expire", &tid, "--never"]).expect_code(1);
    assert!(r.one_error_line().contains("revoked"));
    assert_cli_audit(db, "api_key.set_expiry", int(&k, "id"));
    assert_cli_audit(db, "ai_token.set_expiry", int(&t, "id"));
}

fn rename_and_allowlists(db: &TestDb) {
    let c = client(db, "Reading Room");
    // An allowlist given at generation: validation without an address is
    // ip_denied.
    let (k, key) = generate(
        db,
        "api",
        c,
        "restricted",
        &["--allow-ip", "192.0.2.7, 2001:db8::/32,192.0.2.7"],
    );
    let id = int(&k, "id").to_string();
    assert_eq!(
        strings(&k, "allowed_ips"),
        ["192.0.2.7/32", "2001:db8::/32"],
        "canonical, duplicates dropped"
    );
    assert_eq!(status(db, "api", &key), "ip_denied");
    let v = db.json(&["api:list", &c.to_string()], 0);
    assert_eq!(
        strings(&v[0], "allowed_ips"),
        ["192.0.2.7/32", "2001:db8::/32"]
    );
    let table = db
        .keygen(&["api:list", &c.to_string()])
        .expect_code(0)
        .stdout;
    assert!(table.contains("192.0.2.7/32,2001:db8::/32"), "{table}");
    let human = db
        .keygen(&[
            "api:generate",
            &c.to_string(),
            "--name",
            "h",
            "--allow-ip",
            "10.0.0.0/8",
        ])
        .expect_code(0);
    assert!(
        human.stdout.contains("allowed ips  10.0.0.0/8"),
        "{}",
        human.stdout
    );
    // A bad list at generation writes nothing.
    let keys_before = array(&db.json(&["api:list", &c.to_string()], 0)).len();
    let r = db
        .keygen(&[
            "api:generate",
            &c.to_string(),
            "--name",
            "x",
            "--allow-ip",
            "192.0.2.0/33",
        ])
        .expect_code(2);
    assert!(r.one_error_line().contains("--allow-ip"), "{}", r.stderr);
    assert_eq!(
        array(&db.json(&["api:list", &c.to_string()], 0)).len(),
        keys_before
    );

    // Replaced, then removed.
    let v = db.json(&["api:allow-ip", &id, "198.51.100.0/24"], 0);
    assert_eq!(strings(&v, "allowed_ips"), ["198.51.100.0/24"]);
    let human = db.keygen(&["api:allow-ip", &id, "--any"]).expect_code(0);
    assert!(
        human.stdout.contains("usable from any address"),
        "{}",
        human.stdout
    );
    assert_eq!(status(db, "api", &key), "valid");
    let v = db.json(&["api:list", &c.to_string()], 0);
    assert_eq!(v[0]["allowed_ips"], Value::Null);
    for bad in [vec!["nope"], vec![""], vec![], vec!["10.0.0.0/8", "--any"]] {
        let mut all = vec!["api:allow-ip", id.as_str()];
        all.extend(bad.iter().copied());
        db.keygen(&all).expect_code(2);
    }
    db.keygen(&["api:allow-ip", "999999", "--any"])
        .expect_code(1);
    assert_cli_audit(db, "api_key.set_allowed_ips", int(&k, "id"));

    // Renaming.
    let v = db.json(&["api:rename", &id, "harvester-2027"], 0);
    assert_eq!(text(&v, "name"), "harvester-2027");
    assert_eq!(int(&v, "id"), int(&k, "id"));
    let human = db.keygen(&["api:rename", &id, "again"]).expect_code(0);
    assert!(human.stdout.contains("again): renamed"), "{}", human.stdout);
    db.keygen(&["api:rename", &id, " "]).expect_code(2);
    db.keygen(&["api:rename", &id, &"x".repeat(300)])
        .expect_code(2);
    db.keygen(&["api:rename", "999999", "x"]).expect_code(1);
    assert_cli_audit(db, "api_key.rename", int(&k, "id"));

    // The same for AI tokens.
    let (t, tok) = generate(db, "ai", c, "t", &["--allow-ip", "2001:db8::1"]);
    let tid = int(&t, "id").to_string();
    assert_eq!(strings(&t, "allowed_ips"), ["2001:db8::1/128"]);
    assert_eq!(status(db, "ai", &tok), "ip_denied");
    let v = db.json(&["ai:rename", &tid, "describer"], 0);
    assert_eq!(text(&v, "name"), "describer");
    let v = db.json(&["ai:allow-ip", &tid, "--any"], 0);
    assert_eq!(v["allowed_ips"], Value::Null);
    assert_eq!(status(db, "ai", &tok), "valid");
    db.keygen(&["ai:revoke", &tid]).expect_code(0);
    db.keygen(&["ai:rename", &tid, "late"]).expect_code(1);
    db.keygen(&["ai:allow-ip", &tid, "10.0.0.1"]).expect_code(1);
    assert_cli_audit(db, "ai_token.rename", int(&t, "id"));
    assert_cli_audit(db, "ai_token.set_allowed_ips", int(&t, "id"));
}

fn clients_update_and_reactivate(db: &TestDb) {
    let c = client(db, "Reading Room");
    let cid = c.to_string();
    let created = db.json(&["client:list"], 0);
    assert_eq!(created[0]["idle_revoke"], Value::Null);

    let v = db.json(
        &[
            "client:update",
            &cid,
            "--name",
            "Search Room",
            "--email",
            "search@example.org",
            "--organization",
            "City Archives",
            "--idle-revoke",
            "30d",
        ],
        0,
    );
    assert_eq!(int(&v, "id"), c);
    assert_eq!(text(&v, "name"), "Search Room");
    assert_eq!(text(&v, "email"), "search@example.org");
    assert_eq!(text(&v, "organization"), "City Archives");
    assert_eq!(text(&v, "idle_revoke"), "30d");
    assert_eq!(v["active"], true);
    // Only what is given changes; '' removes the organisation.
    let v = db.json(
        &[
            "client:update",
            &cid,
            "--organization",
            "",
            "--idle-revoke",
            "36h",
        ],
        0,
    );
    assert_eq!(text(&v, "name"), "Search Room");
    assert_eq!(v["organization"], Value::Null);
    assert_eq!(text(&v, "idle_revoke"), "36h");
    let human = db
        .keygen(&["client:update", &cid, "--no-idle-revoke"])
        .expect_code(0);
    assert!(
        human
            .stdout
            .starts_with(&format!("Updated client {c} (Search Room)"))
            && human.stdout.contains("idle revoke   never"),
        "{}",
        human.stdout
    );
    let table = db.keygen(&["client:list"]).expect_code(0).stdout;
    assert!(table.contains("IDLE REVOKE"), "{table}");
    // Refusals.
    for args in [
        vec![],
        vec!["--email", "not-an-address"],
        vec!["--name", " "],
        vec!["--idle-revoke", "0d"],
        vec!["--idle-revoke", "30d", "--no-idle-revoke"],
    ] {
        let mut all = vec!["client:update", cid.as_str()];
        all.extend(args.iter().copied());
        let r = db.keygen(&all).expect_code(2);
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    db.keygen(&["client:update", "999999", "--name", "x"])
        .expect_code(1)
        .one_error_line();
    assert_cli_audit(db, "client.update", c);

    // Reactivation: the client comes back, its keys stay revoked.
    let (_, key) = generate(db, "api", c, "k1", &[]);
    generate(db, "api", c, "k2", &[]);
    generate(db, "ai", c, "t1", &[]);
    let r = db.keygen(&["client:reactivate", &cid]).expect_code(1);
    assert!(r.one_error_line().contains("active"), "{}", r.stderr);
    db.keygen(&["client:deactivate", &cid]).expect_code(0);
    let v = db.json(&["client:reactivate", &cid], 0);
    assert_eq!(int(&v, "id"), c);
    assert_eq!(v["active"], true);
    assert_eq!(v["deactivated_at"], Value::Null);
    assert_eq!(int(&v, "revoked_api_keys"), 2);
    assert_eq!(int(&v, "revoked_ai_tokens"), 1);
    assert_eq!(text(&v, "name"), "Search Room");
    assert_eq!(status(db, "api", &key), "revoked");
    let (_, fresh) = generate(db, "api", c, "fresh", &[]);
    assert_eq!(status(db, "api", &fresh), "valid");
    db.keygen(&["client:deactivate", &cid]).expect_code(0);
    let human = db.keygen(&["client:reactivate", &cid]).expect_code(0);
    assert!(
        human
            .stdout
            .contains("(3 API keys, 1 AI token) stay revoked")
            && human.stdout.contains("keygen api:generate"),
        "{}",
        human.stdout
    );
    db.keygen(&["client:reactivate", "999999"]).expect_code(1);
    assert_cli_audit(db, "client.reactivate", c);
}

fn maintenance_on_a_moved_clock(db: &TestDb) {
    let idle = client(db, "Idle policy");
    let quiet = client(db, "No policy");
    db.json(
        &["client:update", &idle.to_string(), "--idle-revoke", "30d"],
        0,
    );
    let (k, key) = generate(db, "api", idle, "idle-key", &[]);
    let (t, token) = generate(db, "ai", idle, "idle-token", &[]);
    let (_, kept) = generate(db, "api", quiet, "kept", &[]);
    let (e, _) = generate(db, "api", quiet, "expiring", &["--expires-in", "3d"]);
    let (k_id, t_id, e_id) = (int(&k, "id"), int(&t, "id"), int(&e, "id"));
    let start = now_ms();
    let at = |days: i64| rfc3339(start + days * DAY_MS);
    let ids = |v: &Value, list: &str| -> Vec<(String, i64)> {
        array(&v[list])
            .iter()
            .map(|i| (text(i, "kind").to_owned(), int(i, "id")))
            .collect()
    };

    // Now: nothing to revoke; one key expiring within 7 days.
    let v = db.json(&["maintain"], 0);
    assert_eq!(v["dry_run"], false);
    assert!(time(&v, "now") >= start - 1000);
    assert!(array(&v["revoked"]).is_empty());
    assert!(array(&v["revoke_soon"]).is_empty());
    assert_eq!(ids(&v, "expiring_soon"), [("api".to_owned(), e_id)]);
    let item = &v["expiring_soon"][0];
    assert_eq!(int(item, "client_id"), quiet);
    assert_eq!(text(item, "name"), "expiring");
    assert_eq!(text(item, "prefix"), text(&e, "prefix"));
    assert_eq!(text(item, "at"), text(&e, "expires_at"));

    // 25 days on: the idle client's key and token are due within 7 days.
    let v = db.json(&["maintain", "--now", &at(25)], 0);
    assert_eq!(text(&v, "now"), at(25));
    assert!(array(&v["revoked"]).is_empty());
    assert_eq!(
        ids(&v, "revoke_soon"),
        [("api".to_owned(), k_id), ("ai".to_owned(), t_id)]
    );
    let due = time(&v["revoke_soon"][0], "at");
    assert_eq!(
        due,
        parse_rfc3339(text(&k, "created_at")).expect("t") + 30 * DAY_MS
    );
    assert!(array(&v["expiring_soon"]).is_empty(), "expired by then");

    // 31 days on, dry run: listed as revoked, nothing revoked.
    let v = db.json(&["maintain", "--now", &at(31), "--dry-run"], 0);
    assert_eq!(v["dry_run"], true);
    assert_eq!(
        ids(&v, "revoked"),
        [("api".to_owned(), k_id), ("ai".to_owned(), t_id)]
    );
    assert_eq!(status(db, "api", &key), "valid");
    let human = db
        .keygen(&["maintain", "--now", &at(31), "--dry-run"])
        .expect_code(0)
        .stdout;
    assert!(
        human.starts_with("Dry run as of ") && human.contains("would revoke 2 credentials"),
        "{human}"
    );
    assert!(audited(db, "api_key.revoke", k_id).is_empty());

    // For real: revoked, audited as `maintenance`; the other client's key stays.
    let human = db
        .keygen(&["maintain", "--now", &at(31)])
        .expect_code(0)
        .stdout;
    assert!(human.contains("revoked 2 credentials"), "{human}");
    assert!(
        human.contains("idle-key") && human.contains("idle-token"),
        "{human}"
    );
    assert_eq!(status(db, "api", &key), "revoked");
    assert_eq!(status(db, "ai", &token), "revoked");
    assert_eq!(status(db, "api", &kept), "valid");
    for (action, id) in [("api_key.revoke", k_id), ("ai_token.revoke", t_id)] {
        let rows = audited(db, action, id);
        assert_eq!(rows.len(), 1, "{action}");
        assert_eq!(rows[0].actor, "maintenance");
        assert_eq!(rows[0].source, "cli");
    }
    let runs = db
        .store
        .audit_query(&AuditQuery {
            action: Some("maintenance.run".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .expect("audit")
        .0;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].actor, "maintenance");

    // Idempotent: a second pass revokes nothing and writes no audit row.
    let v = db.json(&["maintain", "--now", &at(31)], 0);
    assert!(array(&v["revoked"]).is_empty());
    assert!(array(&v["revoke_soon"]).is_empty());
    assert_eq!(audited(db, "api_key.revoke", k_id).len(), 1);
    let human = db
        .keygen(&["maintain", "--now", &at(31)])
        .expect_code(0)
        .stdout;
    assert!(
        human.contains("revoked 0 credentials") && human.contains("none."),
        "{human}"
    );

    // Idleness counts from the last use: a key used now is not yet due at
    // +29 days, only listed as due soon.
    let (u, used) = generate(db, "api", idle, "used", &[]);
    assert_eq!(status(db, "api", &used), "valid");
    let v = db.json(&["maintain", "--now", &at(29), "--dry-run"], 0);
    assert!(ids(&v, "revoke_soon").contains(&("api".to_owned(), int(&u, "id"))));
    assert!(array(&v["revoked"]).is_empty());

    // A malformed --now is a usage error.
    for bad in ["tomorrow", "2027-01-01", ""] {
        let r = db.keygen(&["maintain", "--now", bad]).expect_code(2);
        assert!(r.stdout.is_empty());
    }
}

on_both_stores!(
    rotation,
    expiry,
    rename_and_allowlists,
    clients_update_and_reactivate,
    maintenance_on_a_moved_clock,
);
