//! The whole operator lifecycle through the real `keygen` binary, on SQLite
//! and on MariaDB: install, clients, keys and tokens, every validation
//! status, revocation, deactivation cascade, statistics, usage and audit.

use std::time::Duration;

use crate::common::{Keygen, TestDb};
use heratio_keys_core::model::{now_ms, parse_rfc3339};
use heratio_keys_core::{Kind, UsageQuery};
use serde_json::Value;

#[test]
fn lifecycle_on_sqlite() {
    lifecycle(&TestDb::sqlite_empty());
}

#[test]
fn lifecycle_on_mysql() {
    let Some(db) = TestDb::mysql_empty() else {
        return;
    };
    lifecycle(&db);
}

fn int(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} is not an integer in {v}"))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} is not an array in {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

/// The user keygen should record: the passwd name of the effective uid.
fn expected_actor() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Counts of validations made, to compare with usage_log and stats.
#[derive(Default)]
struct Tally {
    total: i64,
    valid: i64,
}

impl Tally {
    /// Validates `key` as `kind` with `scopes`, through stdin (no argument),
    /// `-`, or the argument, checking the exit code and status name.
    fn validate(
        &mut self,
        db: &TestDb,
        kind: &str,
        key: &str,
        scopes: &[&str],
        how: How,
        expect: &str,
    ) -> Value {
        let command = format!("{kind}:validate");
        let mut args = vec![command.as_str()];
        let stdin = match how {
            How::Stdin => Some(format!("{key}\n")),
            How::Dash => {
                args.push("-");
                Some(key.to_owned())
            }
            How::Arg => {
                args.push(key);
                None
            }
        };
        for s in scopes {
            args.push("--scope");
            args.push(s);
        }
        let code = if expect == "valid" { 0 } else { 1 };
        // Human output: the status name on the first line.
        let human = db.keygen_stdin(&args, stdin.as_deref()).expect_code(code);
        assert_eq!(
            human.stdout.lines().next(),
            Some(expect),
            "{}",
            human.stdout
        );
        assert!(human.stderr.is_empty(), "stderr: {}", human.stderr);
        // JSON output, field by field.
        args.push("--json");
        let v = db
            .keygen_stdin(&args, stdin.as_deref())
            .expect_code(code)
            .json();
        self.total += 2;
        if expect == "valid" {
            self.valid += 2;
        }
        assert_eq!(text(&v, "status"), expect);
        assert_eq!(v["valid"], Value::Bool(expect == "valid"));
        assert_eq!(text(&v, "kind"), kind);
        let http = match expect {
            "valid" => 200,
            "forbidden" => 403,
            _ => 401,
        };
        assert_eq!(int(&v, "http_status"), http);
        assert!(!text(&v, "message").contains(key));
        v
    }
}

#[derive(Clone, Copy)]
enum How {
    Stdin,
    Dash,
    Arg,
}

fn lifecycle(db: &TestDb) {
    let actor = expected_actor();

    // --- install, twice: the second run changes nothing.
    let first = db.json(&["install"], 0);
    assert_eq!(first["created"], Value::Bool(true));
    assert_eq!(first["from_version"], Value::Null);
    let version = int(&first, "to_version");
    assert!(version >= 1);
    assert!(!strings(&first, "applied").is_empty());
    let second = db.json(&["install"], 0);
    assert_eq!(second["created"], Value::Bool(false));
    assert_eq!(int(&second, "from_version"), version);
    assert_eq!(int(&second, "to_version"), version);
    assert!(strings(&second, "applied").is_empty());
    let human = db.keygen(&["install"]).expect_code(0);
    assert!(human.stdout.contains("nothing to do"), "{}", human.stdout);
    if db.is_mysql() {
        // The DSN is shown, its password never.
        let password = db
            .dsn
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .and_then(|(cred, _)| cred.split_once(':'))
            .map(|(_, p)| p.to_owned())
            .expect("password in test DSN");
        assert!(!human.stdout.contains(&format!(":{password}@")));
        assert!(!text(&second, "dsn").contains(&format!(":{password}@")));
    }

    // --- clients.
    assert_eq!(db.json(&["client:list"], 0), Value::Array(vec![]));
    let a = db.json(
        &[
            "client:create",
            "--name",
            "Reading Room",
            "--email",
            "ops@example.org",
            "--organization",
            "City Archives",
        ],
        0,
    );
    let a_id = int(&a, "id");
    assert_eq!(text(&a, "name"), "Reading Room");
    assert_eq!(text(&a, "email"), "ops@example.org");
    assert_eq!(text(&a, "organization"), "City Archives");
    assert_eq!(a["active"], Value::Bool(true));
    assert!(parse_rfc3339(text(&a, "created_at")).is_ok());
    let b_human = db
        .keygen(&[
            "client:create",
            "--name",
            "AI lab",
            "--email",
            "ai@example.org",
        ])
        .expect_code(0);
    assert!(
        b_human.stdout.starts_with("Created client "),
        "{}",
        b_human.stdout
    );
    let clients = db.json(&["client:list"], 0);
    let clients = clients.as_array().expect("array");
    assert_eq!(clients.len(), 2);
    assert_eq!(int(&clients[0], "id"), a_id);
    let b_id = int(&clients[1], "id");
    assert_ne!(a_id, b_id);
    assert_eq!(clients[1]["organization"], Value::Null);
    let table = db.keygen(&["client:list"]).expect_code(0).stdout;
    assert!(table.starts_with("ID  NAME"), "{table}");
    assert!(table.contains("Reading Room") && table.contains("AI lab"));

    // --- generation: keys and tokens with scopes and expiry.
    let a_arg = a_id.to_string();
    let b_arg = b_id.to_string();
    let gen = |kind: &str, client: &str, extra: &[&str]| -> (Value, String) {
        let command = format!("{kind}:generate");
        let mut args = vec![command.as_str(), client];
        args.extend_from_slice(extra);
        args.push("--json");
        let run = db.keygen(&args).expect_code(0);
        assert!(
            run.stderr.contains("will not be shown again"),
            "stderr: {}",
            run.stderr
        );
        let v = run.json();
        let key = text(&v, "key").to_owned();
        assert_eq!(run.stdout.matches(&key).count(), 1, "key printed once");
        assert!(!run.stderr.contains(&key));
        (v, key)
    };

    let before = now_ms();
    let (prod, prod_key) = gen(
        "api",
        &a_arg,
        &[
            "--name",
            "production",
            "--scopes",
            "read,write",
            "--expires-in",
            "90d",
        ],
    );
    let prod_id = int(&prod, "id");
    assert_eq!(int(&prod, "client_id"), a_id);
    assert_eq!(text(&prod, "kind"), "api");
    assert!(prod_key.starts_with("hk_api_"));
    assert_eq!(prod_key.len(), 53);
    assert_eq!(text(&prod, "prefix"), &prod_key[..12]);
    assert_eq!(text(&prod, "name"), "production");
    assert_eq!(strings(&prod, "scopes"), ["read", "write"]);
    let expires = parse_rfc3339(text(&prod, "expires_at")).expect("rfc3339");
    let ninety = 90 * 86_400_000;
    assert!(expires >= before + ninety - 1000 && expires <= now_ms() + ninety);

    let (star, star_key) = gen("api", &a_arg, &["--name", "staging"]);
    assert_eq!(strings(&star, "scopes"), ["*"]);
    assert_eq!(star["expires_at"], Value::Null);
    let star_id = int(&star, "id");

    let (dated, _) = gen(
        "api",
        &a_arg,
        &["--name", "dated", "--expires-at", "2099-01-31T00:00:00Z"],
    );
    assert_eq!(text(&dated, "expires_at"), "2099-01-31T00:00:00Z");

    let (_short, short_key) = gen(
        "api",
        &a_arg,
        &["--name", "short-lived", "--expires-in", "1s"],
    );
    let short_expiry = now_ms() + 1000;

    let (tok, tok_key) = gen(
        "ai",
        &a_arg,
        &["--name", "ai-server", "--scopes", "ai:describe"],
    );
    assert_eq!(text(&tok, "kind"), "ai");
    assert!(tok_key.starts_with("hk_ai_"));
    assert_eq!(tok_key.len(), 52);
    assert_eq!(text(&tok, "prefix"), &tok_key[..12]);
    assert_eq!(strings(&tok, "scopes"), ["ai:describe"]);
    let tok_id = int(&tok, "id");

    let (_b_key_json, b_key) = gen("api", &b_arg, &["--name", "lab"]);
    let (_b_tok_json, b_tok) = gen("ai", &b_arg, &["--name", "lab-ai"]);

    // Human generation output: the key once, with its details.
    let human = db
        .keygen(&["ai:generate", &b_arg, "--name", "human", "--scopes", "a,b"])
        .expect_code(0);
    assert!(human.stderr.contains("will not be shown again"));
    let shown: Vec<&str> = human
        .stdout
        .split_whitespace()
        .filter(|w| w.starts_with("hk_ai_") && w.len() == 52)
        .collect();
    assert_eq!(shown.len(), 1, "{}", human.stdout);
    assert!(human.stdout.contains("a,b") && human.stdout.contains("never"));
    let human_key = shown[0].to_owned();

    // No plaintext anywhere in the database.
    let stored = db.everything_stored();
    for key in [
        &prod_key, &star_key, &short_key, &tok_key, &b_key, &b_tok, &human_key,
    ] {
        assert!(!stored.contains(key.as_str()), "plaintext stored");
        // The display prefix is stored for identification.
        assert!(stored.contains(&key[..12]));
    }

    // --- validation: every status, every way of passing the key.
    let mut tally = Tally::default();
    let v = tally.validate(db, "api", &prod_key, &[], How::Stdin, "valid");
    assert_eq!(int(&v, "id"), prod_id);
    assert_eq!(int(&v, "client_id"), a_id);
    assert_eq!(text(&v, "name"), "production");
    assert_eq!(strings(&v, "scopes"), ["read", "write"]);
    assert_eq!(int(&v, "code"), 0);
    tally.validate(db, "api", &prod_key, &["read", "write"], How::Dash, "valid");
    tally.validate(db, "api", &prod_key, &["read"], How::Arg, "valid");
    let v = tally.validate(
        db,
        "api",
        &prod_key,
        &["read", "delete"],
        How::Stdin,
        "forbidden",
    );
    assert_eq!(text(&v, "missing_scope"), "delete");
    assert_eq!(int(&v, "code"), 7);
    assert_eq!(int(&v, "id"), prod_id);
    tally.validate(
        db,
        "api",
        &star_key,
        &["admin", "batch"],
        How::Dash,
        "valid",
    );
    tally.validate(db, "ai", &tok_key, &["ai:describe"], How::Stdin, "valid");
    tally.validate(db, "ai", &tok_key, &["write"], How::Stdin, "forbidden");
    let v = tally.validate(db, "ai", &prod_key, &[], How::Stdin, "wrong_kind");
    assert_eq!(v["id"], Value::Null);
    assert_eq!(int(&v, "code"), 2);
    tally.validate(db, "api", &tok_key, &[], How::Dash, "wrong_kind");
    let v = tally.validate(db, "api", "hk_api_nope", &[], How::Arg, "malformed");
    assert_eq!(int(&v, "code"), 1);
    // One changed character breaks the checksum.
    let mut typo = prod_key.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ascii");
    tally.validate(db, "api", &typo, &[], How::Stdin, "malformed");
    let unknown = heratio_keys_core::generate(Kind::ApiKey).expect("generate");
    let v = tally.validate(db, "api", unknown.expose(), &[], How::Stdin, "not_found");
    assert_eq!(int(&v, "code"), 3);
    let unknown_ai = heratio_keys_core::generate(Kind::AiToken).expect("generate");
    tally.validate(db, "ai", unknown_ai.expose(), &[], How::Dash, "not_found");
    // Expiry.
    while now_ms() <= short_expiry + 50 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = tally.validate(db, "api", &short_key, &[], How::Stdin, "expired");
    assert_eq!(int(&v, "code"), 5);

    // Human validation output names client and credential when valid.
    let run = db
        .keygen_stdin(&["api:validate"], Some(&star_key))
        .expect_code(0);
    tally.total += 1;
    tally.valid += 1;
    assert!(
        run.stdout
            .contains(&format!("api key  {star_id} (staging)")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("client   {a_id}")),
        "{}",
        run.stdout
    );

    // --- listing: statuses, usage, never a digest or plaintext.
    let list = db.json(&["api:list", &a_arg], 0);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 4);
    let by_name = |name: &str| -> &Value {
        list.iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
    };
    let p = by_name("production");
    assert_eq!(int(p, "id"), prod_id);
    assert_eq!(int(p, "client_id"), a_id);
    assert_eq!(text(p, "kind"), "api");
    assert_eq!(text(p, "prefix"), &prod_key[..12]);
    assert_eq!(text(p, "status"), "active");
    assert_eq!(strings(p, "scopes"), ["read", "write"]);
    // Three valid validations, each made twice (human and JSON).
    assert_eq!(int(p, "usage_count"), 6);
    assert!(parse_rfc3339(text(p, "last_used_at")).is_ok());
    assert_eq!(p["revoked_at"], Value::Null);
    assert_eq!(text(by_name("short-lived"), "status"), "expired");
    assert_eq!(int(by_name("staging"), "usage_count"), 3);
    assert_eq!(by_name("dated")["last_used_at"], Value::Null);
    for entry in list {
        let obj = entry.as_object().expect("object");
        assert!(!obj.contains_key("key") && !obj.contains_key("digest"));
    }
    let table = db.keygen(&["api:list", &a_arg]).expect_code(0).stdout;
    assert!(table.starts_with("ID  PREFIX"), "{table}");
    assert!(table.contains("expired") && table.contains("production"));
    assert!(!table.contains(&prod_key));
    let ai_list = db.json(&["ai:list", &a_arg], 0);
    assert_eq!(ai_list.as_array().expect("array").len(), 1);
    assert_eq!(int(&ai_list[0], "id"), tok_id);
    assert_eq!(int(&ai_list[0], "usage_count"), 2);
    let run = db.keygen(&["api:list", "999999"]).expect_code(1);
    assert!(run.one_error_line().contains("999999"));

    // --- revocation.
    let revoked = db.json(&["api:revoke", &prod_id.to_string()], 0);
    assert_eq!(int(&revoked, "id"), prod_id);
    assert_eq!(text(&revoked, "status"), "revoked");
    assert!(parse_rfc3339(text(&revoked, "revoked_at")).is_ok());
    let v = tally.validate(db, "api", &prod_key, &[], How::Stdin, "revoked");
    assert_eq!(int(&v, "code"), 4);
    let again = db
        .keygen(&["api:revoke", &prod_id.to_string()])
        .expect_code(1);
    assert!(
        again.one_error_line().contains("already revoked"),
        "{}",
        again.stderr
    );
    let missing = db.keygen(&["ai:revoke", "999999"]).expect_code(1);
    assert!(missing.one_error_line().contains("999999"));
    let human = db
        .keygen(&["ai:revoke", &tok_id.to_string()])
        .expect_code(0);
    assert!(
        human.stdout.starts_with("Revoked AI token"),
        "{}",
        human.stdout
    );
    tally.validate(db, "ai", &tok_key, &[], How::Stdin, "revoked");

    // --- statistics before deactivation.
    let stats = db.json(&["stats"], 0);
    assert_eq!(int(&stats, "clients"), 2);
    assert_eq!(int(&stats, "active_clients"), 2);
    // A: staging and dated are active (production revoked, short-lived
    // expired); B: lab.
    assert_eq!(int(&stats, "active_api_keys"), 3);
    // B: lab-ai and human (A's token is revoked).
    assert_eq!(int(&stats, "active_ai_tokens"), 2);
    assert_eq!(int(&stats, "days"), 30);
    assert_eq!(stats["client_id"], Value::Null);
    let validations = &stats["validations"];
    assert_eq!(int(validations, "total"), tally.total);
    assert_eq!(int(validations, "valid"), tally.valid);
    let per_day = validations["per_day"].as_array().expect("array");
    assert_eq!(per_day.len(), 30);
    let summed: i64 = per_day.iter().map(|d| int(d, "total")).sum();
    assert_eq!(summed, tally.total);
    assert_eq!(int(per_day.last().expect("today"), "total"), tally.total);
    let top = stats["top"].as_array().expect("array");
    assert_eq!(int(&top[0], "id"), prod_id);
    assert_eq!(text(&top[0], "kind"), "api");
    assert_eq!(int(&top[0], "usage_count"), 6);
    assert!(parse_rfc3339(text(&stats, "last_used_at")).is_ok());
    let narrowed = db.json(&["stats", "--client", &b_arg], 0);
    assert_eq!(int(&narrowed, "client_id"), b_id);
    assert_eq!(int(&narrowed, "active_api_keys"), 1);
    assert_eq!(int(&narrowed, "active_ai_tokens"), 2);
    assert_eq!(int(&narrowed["validations"], "total"), 0);
    let human = db.keygen(&["stats"]).expect_code(0).stdout;
    assert!(
        human.contains("active API keys") && human.contains("Most used"),
        "{human}"
    );

    // Usage went to usage_log with endpoint "cli".
    let store = db.open_store();
    let (rows, count) = store
        .usage_log(&UsageQuery {
            limit: 10_000,
            ..UsageQuery::default()
        })
        .expect("usage log");
    let (_, rejected) = store
        .rejected_usage(&UsageQuery {
            limit: 10_000,
            ..UsageQuery::default()
        })
        .expect("rejected usage");
    assert_eq!(
        i64::try_from(count + rejected).expect("count"),
        tally.total,
        "every validation recorded: a row per stored credential's, a count for the rest"
    );
    assert!(rows
        .iter()
        .all(|r| r.record.endpoint.as_deref() == Some("cli")));

    // --- deactivation cascades to the client's remaining keys and tokens.
    let d = db.json(&["client:deactivate", &a_arg], 0);
    assert_eq!(int(&d, "client_id"), a_id);
    assert_eq!(d["active"], Value::Bool(false));
    // staging, dated and short-lived (expired, still not revoked).
    assert_eq!(int(&d, "api_keys_revoked"), 3);
    assert_eq!(int(&d, "ai_tokens_revoked"), 0);
    tally.validate(db, "api", &star_key, &[], How::Stdin, "revoked");
    let refused = db
        .keygen(&["api:generate", &a_arg, "--name", "late"])
        .expect_code(1);
    refused.one_error_line();
    let human = db.keygen(&["client:deactivate", &a_arg]).expect_code(0);
    assert!(
        human.stdout.contains("revoked 0 API keys and 0 AI tokens"),
        "{}",
        human.stdout
    );
    let human = db.keygen(&["client:deactivate", &b_arg]).expect_code(0);
    assert!(
        human.stdout.contains("revoked 1 API key and 2 AI tokens"),
        "{}",
        human.stdout
    );
    let clients = db.json(&["client:list"], 0);
    assert_eq!(clients[0]["active"], Value::Bool(false));
    assert!(parse_rfc3339(text(&clients[0], "deactivated_at")).is_ok());
    let stats = db.json(&["stats"], 0);
    assert_eq!(int(&stats, "active_clients"), 0);
    assert_eq!(int(&stats, "active_api_keys"), 0);
    assert_eq!(int(&stats, "active_ai_tokens"), 0);
    assert_eq!(int(&stats["validations"], "total"), tally.total);
    let missing = db.keygen(&["client:deactivate", "999999"]).expect_code(1);
    assert!(missing.one_error_line().contains("999999"));

    // --- every mutation is audited with the OS user as actor.
    let audit = store.audit_log(1000).expect("audit log");
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "client.create",
        "client.deactivate",
        "api_key.generate",
        "ai_token.generate",
        "api_key.revoke",
        "ai_token.revoke",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    // 2 clients, 5 API keys and 3 AI tokens created, 2 revocations, 3
    // deactivations.
    assert!(audit.len() >= 15, "{actions:?}");
    for entry in &audit {
        assert_eq!(entry.source, "cli");
        if std::env::var_os("SUDO_USER").is_none() {
            assert_eq!(entry.actor, actor);
        }
    }
}
