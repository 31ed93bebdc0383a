//! `keygen import:heratio` and the per-key limit and metadata commands,
//! through the real binary, on SQLite and on MariaDB (a Heratio-shaped
//! source of the same engine as the target).

#[path = "../../../core/tests/heratio_source/mod.rs"]
mod heratio_source;

use crate::common::{Keygen, Run, TestDb};
use heratio_source::{heratio_db, hex, insert_keys, insert_user, random_key, research_key, KeyRow};
use serde_json::{json, Value};

#[test]
fn import_on_sqlite() {
    import(&TestDb::sqlite_empty());
}

#[test]
fn import_on_mysql() {
    if let Some(db) = TestDb::mysql_empty() {
        import(&db);
    }
}

#[test]
fn limits_and_metadata_on_sqlite() {
    limits_and_metadata(&TestDb::sqlite_empty());
}

#[test]
fn limits_and_metadata_on_mysql() {
    if let Some(db) = TestDb::mysql_empty() {
        limits_and_metadata(&db);
    }
}

/// Every run's output, to check that no digest was ever printed.
#[derive(Default)]
struct Outputs(String);

impl Outputs {
    fn keep(&mut self, run: Run) -> Run {
        self.0.push_str(&run.stdout);
        self.0.push_str(&run.stderr);
        run
    }
}

fn ids(v: &Value) -> Vec<i64> {
    v["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| s["heratio_key_id"].as_i64().expect("id"))
        .collect()
}

fn import(db: &TestDb) {
    db.keygen(&["install"]).expect_code(0);
    let source = heratio_db(db.is_mysql(), true).expect("source");
    insert_user(&source, 3, Some("alice"), Some("alice@example.org"));
    let heratio = random_key();
    let research = research_key();
    let inactive = random_key();
    let mut rows = vec![
        KeyRow::new(1, 3, &heratio),
        KeyRow::new(2, 3, &research),
        KeyRow::new(3, 3, &inactive),
        KeyRow::new(4, 3, &random_key()),
        KeyRow::new(5, 999, &random_key()),
    ];
    rows[0].scopes = Some(r#"["read","write"]"#.into());
    rows[0].rate_limit = Some(500);
    rows[1].scopes = None;
    rows[2].is_active = Some(0);
    rows[3].api_key = "0".repeat(63);
    insert_keys(&source, &rows);
    let digests: Vec<String> = rows.iter().map(|r| r.api_key.clone()).collect();
    let from = source.dsn.as_str();
    let mut out = Outputs::default();

    // Dry run: the report, and nothing written.
    let dry = out
        .keep(db.keygen(&["import:heratio", "--from", from, "--dry-run", "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        (
            &dry["imported"],
            &dry["updated"],
            &dry["unchanged"],
            &dry["clients_created"]
        ),
        (&json!(3), &json!(0), &json!(0), &json!(1))
    );
    assert_eq!(ids(&dry), [4, 5]);
    assert_eq!(dry["clients"][0]["client_id"], Value::Null);
    assert_eq!(db.json(&["client:list"], 0), json!([]));
    let human = out
        .keep(db.keygen(&["import:heratio", "--from", from, "--dry-run"]))
        .expect_code(0);
    assert!(
        human.stdout.starts_with("Dry run, nothing written."),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("Heratio key 4: api_key is not a SHA-256 digest"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("Heratio key 5: unknown user"),
        "{}",
        human.stdout
    );

    let report = out
        .keep(db.keygen(&["import:heratio", "--from", from, "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(
        (
            &report["imported"],
            &report["revoked"],
            &report["clients_created"]
        ),
        (&json!(3), &json!(1), &json!(1))
    );
    let clients = db.json(&["client:list"], 0);
    assert_eq!(clients[0]["name"], "alice");
    assert_eq!(clients[0]["external_id"], "heratio:user:3");
    let client = clients[0]["id"].as_i64().expect("id").to_string();

    // Legacy keys validate through keygen, with their metadata and limit.
    let ok = out
        .keep(db.keygen_stdin(
            &["api:validate", "--scope", "read", "--json"],
            Some(&heratio),
        ))
        .expect_code(0)
        .json();
    assert_eq!(ok["status"], "valid");
    assert_eq!(
        ok["metadata"],
        json!({"heratio_key_id": 1, "heratio_user_id": 3})
    );
    assert_eq!(ok["rate_limit"], 500);
    let held = out
        .keep(db.keygen_stdin(&["api:validate"], Some(&research)))
        .expect_code(0);
    assert!(held.stdout.starts_with("valid\n"), "{}", held.stdout);
    let none = out
        .keep(db.keygen_stdin(&["api:validate", "--scope", "read"], Some(&research)))
        .expect_code(1);
    assert!(
        none.stdout.starts_with("forbidden\n"),
        "NULL scopes hold none"
    );
    out.keep(db.keygen_stdin(&["api:validate"], Some(&inactive)))
        .expect_code(1);

    let list = db.json(&["api:list", &client], 0);
    let shapes: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|k| k["shape"].as_str().expect("shape"))
        .collect();
    assert_eq!(shapes, ["heratio", "research", "heratio"]);
    assert_eq!(list[0]["rate_limit"], 500);
    assert_eq!(list[1]["rate_limit"], 1000);
    assert_eq!(list[1]["scopes"], json!([]));
    assert_eq!(list[2]["status"], "revoked");
    let table = out.keep(db.keygen(&["api:list", &client])).expect_code(0);
    assert!(table.stdout.contains("LIMIT") && table.stdout.contains("SHAPE"));
    assert!(table.stdout.contains("500/h") && table.stdout.contains("research"));
    assert!(table.stdout.contains("(none)"));

    // Idempotent; then a key deactivated in Heratio is revoked here.
    let again = out
        .keep(db.keygen(&["import:heratio", "--from", from, "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(
        (
            &again["imported"],
            &again["updated"],
            &again["unchanged"],
            &again["clients_created"]
        ),
        (&json!(0), &json!(0), &json!(3), &json!(0))
    );
    source.exec("UPDATE ahg_api_key SET is_active = 0 WHERE id = 1");
    let human = out
        .keep(db.keygen(&["import:heratio", "--from", from]))
        .expect_code(0);
    assert!(
        human.stdout.contains("0 imported, 1 updated, 2 unchanged"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("(Heratio key 1): revoked"),
        "{}",
        human.stdout
    );
    let refused = out
        .keep(db.keygen_stdin(&["api:validate", "--json"], Some(&heratio)))
        .expect_code(1)
        .json();
    assert_eq!(refused["status"], "revoked");

    // Errors: the exit codes of every command, naming the source.
    let run = out
        .keep(db.keygen(&["import:heratio", "--from", "postgres://x"]))
        .expect_code(2);
    assert!(run.one_error_line().contains("--from"), "{}", run.stderr);
    let run = out
        .keep(db.keygen(&["import:heratio", "--from", from, "--client", "99"]))
        .expect_code(1);
    assert!(
        run.one_error_line().contains("no client with id 99"),
        "{}",
        run.stderr
    );
    let run = out
        .keep(db.keygen(&["import:heratio", "--from", &db.dsn]))
        .expect_code(4);
    assert!(
        run.one_error_line().contains("ahg_api_key"),
        "{}",
        run.stderr
    );
    out.keep(db.keygen(&["import:heratio"])).expect_code(2);
    let missing = tempfile::tempdir().expect("dir");
    let missing = format!("sqlite:{}", missing.path().join("heratio.db").display());
    let run = out
        .keep(db.keygen(&["import:heratio", "--from", &missing]))
        .expect_code(4);
    let line = run.one_error_line();
    assert!(
        line.contains("not a Heratio database") && !line.contains("keygen install"),
        "{line}"
    );

    for digest in digests {
        assert!(!out.0.contains(&digest), "a digest was printed");
    }
    assert!(!out.0.contains(&hex(&heratio)));
    assert!(!out.0.contains(&heratio), "a raw key was printed");
}

fn limits_and_metadata(db: &TestDb) {
    db.keygen(&["install"]).expect_code(0);
    let client = db.json(
        &[
            "client:create",
            "--name",
            "Harvester",
            "--email",
            "h@example.org",
        ],
        0,
    )["id"]
        .to_string();
    let generated = db.json(
        &[
            "api:generate",
            &client,
            "--name",
            "limited",
            "--rate-limit",
            "2",
            "--metadata",
            r#"{"team": "harvest"}"#,
        ],
        0,
    );
    assert_eq!(generated["rate_limit"], 2);
    assert_eq!(generated["metadata"], json!({"team": "harvest"}));
    assert_eq!(generated["shape"], "native");
    assert_eq!(generated["status"], "active");
    let key = generated["key"].as_str().expect("key").to_owned();
    let id = generated["id"].to_string();
    for expect in [0, 0, 1] {
        db.keygen_stdin(&["api:validate"], Some(&key))
            .expect_code(expect);
    }
    let limited = db
        .keygen_stdin(&["api:validate", "--json"], Some(&key))
        .json();
    assert_eq!(limited["status"], "rate_limited");
    assert_eq!(limited["http_status"], 429);
    let human = db
        .keygen_stdin(&["api:validate"], Some(&key))
        .expect_code(1);
    assert!(
        human.stdout.starts_with("rate_limited\n"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("rate limit  2 per hour, 0 left, renews in"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains(r#"metadata    {"team":"harvest"}"#),
        "{}",
        human.stdout
    );

    let human = db
        .keygen(&[
            "api:generate",
            &client,
            "--name",
            "plain",
            "--rate-limit",
            "100",
        ])
        .expect_code(0);
    assert!(
        human.stdout.contains("rate limit  100 per hour"),
        "{}",
        human.stdout
    );

    let view = db.json(&["api:limit", &id, "10"], 0);
    assert_eq!(
        (view["id"].to_string(), &view["rate_limit"]),
        (id.clone(), &json!(10))
    );
    assert_eq!(
        db.json(&["api:limit", &id, "--none"], 0)["rate_limit"],
        Value::Null
    );
    let text = db.keygen(&["api:limit", &id, "5"]).expect_code(0);
    assert!(
        text.stdout.contains("at most 5 validations per clock hour"),
        "{}",
        text.stdout
    );
    db.keygen(&["api:limit", &id]).expect_code(2);
    db.keygen(&["api:limit", &id, "5", "--none"]).expect_code(2);
    db.keygen(&["api:limit", &id, "2000000000"]).expect_code(2);
    db.keygen(&["api:limit", "999", "5"]).expect_code(1);

    let view = db.json(&["api:metadata", &id, r#"{"a": [1, 2]}"#], 0);
    assert_eq!(view["metadata"], json!({"a": [1, 2]}));
    db.keygen(&["api:metadata", &id, "[1]"]).expect_code(2);
    db.keygen(&[
        "api:metadata",
        &id,
        &format!(r#"{{"a":"{}"}}"#, "x".repeat(5000)),
    ])
    .expect_code(2);
    assert_eq!(
        db.json(&["api:metadata", &id, "--none"], 0)["metadata"],
        Value::Null
    );
    db.keygen(&["api:generate", &client, "--name", "x", "--metadata", "nope"])
        .expect_code(2);
    db.keygen(&["api:generate", &client, "--name", "x", "--rate-limit", "-1"])
        .expect_code(2);

    let token = db.json(
        &[
            "ai:generate",
            &client,
            "--name",
            "ai",
            "--rate-limit",
            "7",
            "--metadata",
            "{}",
        ],
        0,
    );
    assert_eq!(
        (&token["kind"], &token["rate_limit"]),
        (&json!("ai"), &json!(7))
    );
    let tid = token["id"].to_string();
    assert_eq!(
        db.json(&["ai:limit", &tid, "--none"], 0)["rate_limit"],
        Value::Null
    );
    assert_eq!(
        db.json(&["ai:metadata", &tid, r#"{"model":"m"}"#], 0)["metadata"],
        json!({"model": "m"})
    );
    let list = db.keygen(&["ai:list", &client]).expect_code(0);
    assert!(list.stdout.contains("native"), "{}", list.stdout);

    // A revoked key's limit and metadata are final.
    db.keygen(&["api:revoke", &id]).expect_code(0);
    db.keygen(&["api:limit", &id, "5"]).expect_code(1);
    db.keygen(&["api:metadata", &id, "{}"]).expect_code(1);
}
