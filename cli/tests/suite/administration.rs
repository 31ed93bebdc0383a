//! Administration through the real `keygen` binary, on SQLite and MariaDB:
//! web admin accounts with roles, searching the audit log, and the usage
//! export (CSV and JSON lines, streamed).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::{array, expected_actor, int, text, Keygen, TestDb};
use heratio_keys_core::model::{parse_rfc3339, rfc3339};
use heratio_keys_core::{AuditQuery, Kind, Status, UsageRecord};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple\n";

fn create_admin(db: &TestDb, user: &str, extra: &[&str]) -> Value {
    let mut args = vec!["admin:create", user, "--json"];
    args.extend_from_slice(extra);
    db.keygen_stdin(&args, Some(PASSWORD)).expect_code(0).json()
}

fn admin_accounts(db: &TestDb) {
    // None yet.
    assert!(array(&db.json(&["admin:list"], 0)).is_empty());
    let human = db.keygen(&["admin:list"]).expect_code(0).stdout;
    assert!(human.contains("No web administrators yet"), "{human}");

    // Created with a role (default admin).
    let alice = create_admin(db, "alice", &[]);
    assert_eq!(alice["created"], true);
    assert_eq!(text(&alice, "user"), "alice");
    assert_eq!(text(&alice, "role"), "admin");
    let bob = create_admin(db, "bob", &["--role", "operator"]);
    assert_eq!(text(&bob, "role"), "operator");
    let run = db
        .keygen_stdin(
            &["admin:create", "carol", "--role", "viewer"],
            Some(PASSWORD),
        )
        .expect_code(0);
    assert!(
        run.stdout.contains("Created admin carol") && run.stdout.contains("role viewer"),
        "{}",
        run.stdout
    );
    // Refused: unknown role, role with a reset, an existing name.
    for args in [
        vec!["admin:create", "dave", "--role", "root"],
        vec![
            "admin:create",
            "alice",
            "--reset-password",
            "--role",
            "viewer",
        ],
    ] {
        let r = db.keygen_stdin(&args, Some(PASSWORD)).expect_code(2);
        assert!(r.stdout.is_empty());
    }
    db.keygen_stdin(&["admin:create", "bob", "--role", "viewer"], Some(PASSWORD))
        .expect_code(1)
        .one_error_line();
    // A password reset keeps the role.
    let reset = db
        .keygen_stdin(
            &["admin:create", "bob", "--reset-password", "--json"],
            Some("another good password\n"),
        )
        .expect_code(0)
        .json();
    assert_eq!(reset["created"], false);
    assert_eq!(text(&reset, "role"), "operator");

    // Listed by name, field by field.
    let list = db.json(&["admin:list"], 0);
    let list = array(&list);
    let names: Vec<&str> = list.iter().map(|a| text(a, "user")).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let roles: Vec<&str> = list.iter().map(|a| text(a, "role")).collect();
    assert_eq!(roles, ["admin", "operator", "viewer"]);
    for a in list {
        assert_eq!(a["active"], true);
        assert_eq!(a["last_login_at"], Value::Null);
        assert!(parse_rfc3339(text(a, "created_at")).is_ok());
        assert!(int(a, "id") > 0);
        let obj = a.as_object().expect("object");
        assert!(!obj
            .keys()
            .any(|k| k.contains("password") || k.contains("hash")));
    }
    assert_eq!(int(&list[0], "id"), int(&alice, "id"));
    let table = db.keygen(&["admin:list"]).expect_code(0).stdout;
    assert!(table.starts_with("ID  USER   ROLE"), "{table}");
    assert!(
        table.contains("LAST LOGIN") && table.contains("never"),
        "{table}"
    );
    let stored = db.everything_stored();
    assert!(
        !stored.contains(PASSWORD.trim()),
        "password stored in clear"
    );

    // Roles and states.
    let v = db.json(&["admin:role", "carol", "operator"], 0);
    assert_eq!(text(&v, "user"), "carol");
    assert_eq!(text(&v, "role"), "operator");
    assert_eq!(v["active"], true);
    let v = db.json(&["admin:disable", "carol"], 0);
    assert_eq!(v["active"], false);
    assert_eq!(text(&v, "role"), "operator");
    let human = db.keygen(&["admin:enable", "carol"]).expect_code(0).stdout;
    assert_eq!(human, "Admin carol: enabled.\n");
    let human = db
        .keygen(&["admin:role", "carol", "viewer"])
        .expect_code(0)
        .stdout;
    assert!(human.contains("role viewer"), "{human}");

    // The last active admin can be neither disabled nor demoted (exit 1,
    // the core's message).
    for args in [
        vec!["admin:disable", "alice"],
        vec!["admin:role", "alice", "operator"],
    ] {
        let r = db.keygen(&args).expect_code(1);
        assert!(
            r.one_error_line().contains("last active admin"),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
    db.json(&["admin:role", "bob", "admin"], 0);
    let v = db.json(&["admin:disable", "alice"], 0);
    assert_eq!(v["active"], false);
    let r = db.keygen(&["admin:role", "bob", "viewer"]).expect_code(1);
    assert!(r.one_error_line().contains("last active admin"));

    // Unknown accounts (1), bad roles (2).
    for args in [
        vec!["admin:disable", "nobody"],
        vec!["admin:enable", "nobody"],
        vec!["admin:role", "nobody", "viewer"],
    ] {
        db.keygen(&args).expect_code(1).one_error_line();
    }
    db.keygen(&["admin:role", "bob", "superuser"])
        .expect_code(2);
    db.keygen(&["admin:role", "bob"]).expect_code(2);

    // Every change audited with the OS user, source cli.
    let (rows, _) = db
        .store
        .audit_query(&AuditQuery {
            action: Some("admin.".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .expect("audit");
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for action in [
        "admin.create",
        "admin.reset_password",
        "admin.role",
        "admin.disable",
        "admin.enable",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| **a == "admin.create").count(), 3);
    for row in &rows {
        assert_eq!(row.source, "cli");
        assert_eq!(row.target_type, "admin_user");
        if let Some(actor) = expected_actor() {
            assert_eq!(row.actor, actor);
        }
    }
}

fn audit_search(db: &TestDb) {
    // Some history: a client, two keys, a token, a revocation.
    let c = db.json(
        &[
            "client:create",
            "--name",
            "Archive",
            "--email",
            "a@example.org",
        ],
        0,
    );
    let cid = int(&c, "id");
    let k1 = int(
        &db.json(&["api:generate", &cid.to_string(), "--name", "k1"], 0),
        "id",
    );
    let k2 = int(
        &db.json(&["api:generate", &cid.to_string(), "--name", "k2"], 0),
        "id",
    );
    let t = int(
        &db.json(&["ai:generate", &cid.to_string(), "--name", "t"], 0),
        "id",
    );
    db.keygen(&["api:revoke", &k1.to_string()]).expect_code(0);
    // The revocation happened "last March".
    let march = parse_rfc3339("2026-03-14T10:00:00Z").expect("t");
    db.exec(&format!(
        "UPDATE audit_log SET created_at = {march} WHERE action = 'api_key.revoke'"
    ));

    // Everything, newest first, field by field.
    let all = db.json(&["audit"], 0);
    let all = array(&all);
    assert_eq!(all.len(), 5);
    let ids: Vec<i64> = all.iter().map(|e| int(e, "id")).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let gen = all
        .iter()
        .find(|e| e["action"] == "api_key.generate" && int(e, "target_id") == k2)
        .expect("k2's generation");
    assert_eq!(text(gen, "source"), "cli");
    assert_eq!(text(gen, "target_type"), "api_key");
    assert_eq!(gen["ip"], Value::Null);
    assert!(parse_rfc3339(text(gen, "at")).is_ok());
    if let Some(actor) = expected_actor() {
        assert_eq!(text(gen, "actor"), actor);
    }
    let keys: Vec<&str> = gen
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for field in [
        "id",
        "at",
        "actor",
        "source",
        "ip",
        "action",
        "target_type",
        "target_id",
        "detail",
    ] {
        assert!(keys.contains(&field), "{field} missing from {keys:?}");
    }

    let count = |args: &[&str]| -> usize {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        array(&db.json(&all, 0)).len()
    };
    // Exact action, prefix, target with and without id, actor.
    assert_eq!(count(&["--action", "api_key.generate"]), 2);
    assert_eq!(count(&["--action", "api_key."]), 3);
    assert_eq!(
        count(&["--action", "api_key"]),
        0,
        "no prefix without the dot"
    );
    assert_eq!(count(&["--target", "api_key"]), 3);
    assert_eq!(count(&["--target", &format!("api:{k1}")]), 2);
    assert_eq!(count(&["--target", &format!("ai_token:{t}")]), 1);
    assert_eq!(count(&["--target", &format!("client:{cid}")]), 1);
    assert_eq!(count(&["--actor", "nobody"]), 0);
    if let Some(actor) = expected_actor() {
        assert_eq!(count(&["--actor", &actor]), 5);
    }
    // Time: RFC 3339, dates, durations ago; since inclusive, until exclusive.
    let revoked = db.json(
        &["audit", "--since", "2026-03-01", "--until", "2026-04-01"],
        0,
    );
    assert_eq!(array(&revoked).len(), 1);
    assert_eq!(text(&revoked[0], "action"), "api_key.revoke");
    assert_eq!(int(&revoked[0], "target_id"), k1);
    assert_eq!(text(&revoked[0], "at"), "2026-03-14T10:00:00Z");
    assert_eq!(count(&["--since", &rfc3339(march)]), 5);
    assert_eq!(count(&["--until", &rfc3339(march)]), 0);
    assert_eq!(count(&["--since", "1h"]), 4);
    assert_eq!(count(&["--until", "1h"]), 1);
    // Pages.
    let page = db.json(&["audit", "--limit", "2", "--offset", "1"], 0);
    let page: Vec<i64> = array(&page).iter().map(|e| int(e, "id")).collect();
    assert_eq!(page, ids[1..3]);
    assert!(array(&db.json(&["audit", "--offset", "5"], 0)).is_empty());

    // Human output: a table, and how to get the next page.
    let human = db.keygen(&["audit", "--limit", "2"]).expect_code(0).stdout;
    assert!(human.starts_with("ID  TIME (UTC)"), "{human}");
    assert!(
        human.contains("Rows 1-2 of 5") && human.contains("--offset 2"),
        "{human}"
    );
    assert!(human.contains(&format!("api_key:{k2}")) || human.contains(&format!("ai_token:{t}")));
    let none = db
        .keygen(&["audit", "--actor", "nobody"])
        .expect_code(0)
        .stdout;
    assert_eq!(none, "No audit rows match.\n");

    // Usage errors.
    for args in [
        vec!["--since", "yesterday"],
        vec!["--since", "2026-04-01", "--until", "2026-03-01"],
        vec!["--target", "client:x"],
        vec!["--target", "Client"],
        vec!["--limit", "0"],
        vec!["--limit", "many"],
    ] {
        let mut all = vec!["audit"];
        all.extend(args.iter().copied());
        let r = db.keygen(&all).expect_code(2);
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    // Reading writes nothing.
    assert_eq!(array(&db.json(&["audit"], 0)).len(), 5);
}

/// `n` usage rows: API key 1 of client 1 and AI token 2 of client 2 in turn,
/// one a minute from `start`; every fifth forbidden; endpoints that need
/// CSV quoting.
fn usage_rows(start: i64, n: i64) -> Vec<UsageRecord> {
    (0..n)
        .map(|i| {
            let api = i % 2 == 0;
            UsageRecord {
                kind: if api { Kind::ApiKey } else { Kind::AiToken },
                credential_id: Some(if api { 1 } else { 2 }),
                client_id: Some(if api { 1 } else { 2 }),
                at: start + i * 60_000,
                ip: Some(if api {
                    "192.0.2.7".into()
                } else {
                    "2001:db8::1".into()
                }),
                endpoint: Some(format!("/api/search?q=a,b \"{i}\"")),
                status: if i % 5 == 0 {
                    Status::Forbidden
                } else {
                    Status::Valid
                },
            }
        })
        .collect()
}

/// A minimal RFC 4180 reader for one line without embedded line breaks.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("field").push(c),
        }
    }
    fields
}

fn usage_export(db: &TestDb) {
    // Empty: the header alone; JSON lines: nothing.
    assert_eq!(
        db.keygen(&["usage:export"]).expect_code(0).stdout,
        "id,at,kind,credential_id,client_id,status,ip,endpoint\n"
    );
    assert_eq!(
        db.keygen(&["usage:export", "--json"]).expect_code(0).stdout,
        ""
    );

    let start = parse_rfc3339("2026-11-01T00:00:00Z").expect("t");
    let rows = usage_rows(start, 3000);
    for batch in rows.chunks(1000) {
        db.store.write_usage(batch).expect("usage rows");
    }

    // CSV: header, every row oldest first, fields as written.
    let csv = db.keygen(&["usage:export"]).expect_code(0);
    assert!(csv.stderr.is_empty(), "{}", csv.stderr);
    let mut lines = csv.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("id,at,kind,credential_id,client_id,status,ip,endpoint")
    );
    let parsed: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(parsed.len(), 3000);
    let ids: Vec<i64> = parsed.iter().map(|f| f[0].parse().expect("id")).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first, once each"
    );
    for (fields, record) in parsed.iter().zip(&rows) {
        assert_eq!(fields.len(), 8, "{fields:?}");
        assert_eq!(fields[1], rfc3339(record.at));
        assert_eq!(fields[2], record.kind.short_name());
        assert_eq!(fields[3], record.credential_id.expect("id").to_string());
        assert_eq!(fields[4], record.client_id.expect("client").to_string());
        assert_eq!(fields[5], record.status.name());
        assert_eq!(Some(fields[6].as_str()), record.ip.as_deref());
        assert_eq!(Some(fields[7].as_str()), record.endpoint.as_deref());
    }

    // JSON lines, field by field; --json and --format json are the same.
    let json = db
        .keygen(&["usage:export", "--format", "json"])
        .expect_code(0)
        .stdout;
    assert_eq!(
        db.keygen(&["usage:export", "--json"]).expect_code(0).stdout,
        json
    );
    let docs: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(docs.len(), 3000);
    let first = &docs[1];
    assert_eq!(int(first, "id"), ids[1]);
    assert_eq!(text(first, "at"), rfc3339(start + 60_000));
    assert_eq!(text(first, "kind"), "ai");
    assert_eq!(int(first, "credential_id"), 2);
    assert_eq!(int(first, "client_id"), 2);
    assert_eq!(text(first, "status"), "valid");
    assert_eq!(text(first, "ip"), "2001:db8::1");
    assert_eq!(text(first, "endpoint"), "/api/search?q=a,b \"1\"");

    // Filters: client, kind, status, time window (since inclusive, until
    // exclusive; dates and RFC 3339).
    let lines = |args: &[&str]| -> usize {
        let mut all = vec!["usage:export", "--format", "json"];
        all.extend_from_slice(args);
        db.keygen(&all).expect_code(0).stdout.lines().count()
    };
    assert_eq!(lines(&["--client", "1"]), 1500);
    assert_eq!(lines(&["--kind", "ai"]), 1500);
    assert_eq!(lines(&["--status", "forbidden"]), 600);
    assert_eq!(lines(&["--kind", "api", "--status", "forbidden"]), 300);
    assert_eq!(lines(&["--client", "2", "--kind", "api"]), 0);
    // 3000 minutes from Nov 1: through Nov 3 (1440 a day).
    assert_eq!(
        lines(&["--since", "2026-11-02", "--until", "2026-11-03"]),
        1440
    );
    assert_eq!(lines(&["--until", "2026-11-01T00:10:00Z"]), 10);
    assert_eq!(
        lines(&["--since", "2026-11-03T01:59:00Z"]),
        3000 - 2 * 1440 - 119
    );
    assert_eq!(
        db.keygen(&[
            "usage:export",
            "--since",
            "2026-11-02",
            "--until",
            "2026-11-03"
        ])
        .expect_code(0)
        .stdout
        .lines()
        .count(),
        1441,
        "CSV: the header and the rows"
    );

    // Usage errors: nothing on stdout.
    for args in [
        vec!["--format", "xml"],
        vec!["--kind", "key"],
        vec!["--status", "fine"],
        vec!["--client", "0"],
        vec!["--since", "soon"],
        vec!["--json", "--format", "csv"],
    ] {
        let mut all = vec!["usage:export"];
        all.extend(args.iter().copied());
        let r = db.keygen(&all).expect_code(2);
        assert!(r.stdout.is_empty(), "{args:?}");
    }

    // A reader that stops early (`| head -1`) is not an error: exit 0.
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygen"))
        .args(["--dsn", &db.dsn, "usage:export"])
        .env_remove("HERATIO_KEYS_DSN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keygen");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    assert!(first.starts_with("id,at,"));
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn unusable_stores_leave_stdout_empty(db: &TestDb) {
    // The schema is there but the tables are not what keygen expects: exit 4,
    // no CSV header.
    db.exec("DROP TABLE usage_log");
    let r = db.keygen(&["usage:export"]).expect_code(4);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    r.one_error_line();
}

#[test]
fn a_missing_database_is_exit_4_for_every_new_command() {
    let db = TestDb::sqlite_empty();
    for args in [
        vec!["admin:list"],
        vec!["admin:disable", "alice"],
        vec!["audit"],
        vec!["usage:export"],
        vec!["maintain"],
        vec!["client:reactivate", "1"],
        vec!["api:rotate", "1"],
    ] {
        let r = db.keygen(&args).expect_code(4);
        assert!(r.stdout.is_empty(), "{args:?}");
        assert!(
            r.one_error_line().contains("keygen install"),
            "{}",
            r.stderr
        );
    }
}

on_both_stores!(
    admin_accounts,
    audit_search,
    usage_export,
    unusable_stores_leave_stdout_empty,
);
