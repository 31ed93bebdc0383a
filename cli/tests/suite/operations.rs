//! `keygen prune` and `keygen doctor` through the real binary, on SQLite
//! and MariaDB. Prune runs on a clock moved with `--now` (no sleeps);
//! usage rows are written through the core's usage writer, the flusher's
//! own path, so the daily rollups are maintained as in production.

use crate::common::{array, closed_port, int, keygen_in, text, Keygen, TestDb};
use heratio_keys_core::model::{now_ms, rfc3339, DAY_MS};
use heratio_keys_core::{Kind, Status, UsageRecord};
use serde_json::Value;

/// One client with one API key; returns their ids.
fn client_and_key(db: &TestDb) -> (i64, i64) {
    let c = db.json(
        &[
            "client:create",
            "--name",
            "Reading Room",
            "--email",
            "ops@example.org",
        ],
        0,
    );
    let client = int(&c, "id");
    let k = db.json(&["api:generate", &client.to_string(), "--name", "prod"], 0);
    // A second change-feed row, so that one is older than the newest.
    let spare = db.json(&["api:generate", &client.to_string(), "--name", "spare"], 0);
    db.json(&["api:revoke", &int(&spare, "id").to_string()], 0);
    (client, int(&k, "id"))
}

fn usage(client: i64, key: Option<i64>, at: i64, status: Status) -> UsageRecord {
    UsageRecord {
        kind: Kind::ApiKey,
        credential_id: key,
        client_id: key.map(|_| client),
        at,
        ip: Some("192.0.2.9".into()),
        endpoint: Some("/api/v1/items".into()),
        status,
    }
}

/// Raw usage-log rows left, counted by exporting them.
fn raw_rows(db: &TestDb) -> usize {
    db.keygen(&["usage:export", "--format", "json"])
        .expect_code(0)
        .stdout
        .lines()
        .count()
}

fn audit_rows(db: &TestDb, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--limit", "1000"];
    all.extend_from_slice(args);
    array(&db.json(&all, 0)).clone()
}

fn prune_keeps_statistics_and_recent_rows(db: &TestDb) {
    let (client, key) = client_and_key(db);
    let now = now_ms();
    let mut batch: Vec<UsageRecord> = (0..500)
        .map(|i| usage(client, Some(key), now - 100 * DAY_MS + i, Status::Valid))
        .collect();
    batch.extend(
        (0..40).map(|i| usage(client, Some(key), now - 100 * DAY_MS + i, Status::Forbidden)),
    );
    batch.extend((0..200).map(|i| usage(client, Some(key), now - 10 * DAY_MS + i, Status::Valid)));
    // Unknown keys: counted per minute in usage_rejected, not in usage_log.
    batch.extend((0..7).map(|i| usage(client, None, now - 100 * DAY_MS + i, Status::NotFound)));
    db.store.write_usage(&batch).expect("usage rows");
    assert_eq!(raw_rows(db), 740, "{}", db.label());
    let stats_args = ["stats", "--client", &client.to_string(), "--days", "120"];
    let before = db.json(&stats_args, 0);
    assert_eq!(int(&before["validations"], "total"), 740);

    // Two days on: the usage from 100 days ago is past 90 days, the feed
    // rows written by api:generate just now are past 24 hours, and nothing
    // else is.
    let later = rfc3339(now + 2 * DAY_MS);
    let audit_before = audit_rows(db, &[]).len();
    let feed_before = db.store.feed_since(0, u32::MAX).expect("feed").len();
    let head_before = db.store.feed_head().expect("head");
    let v = db.json(&["prune", "--now", &later], 0);
    assert_eq!(text(&v, "now"), later);
    assert_eq!(int(&v, "usage_rows"), 540, "{v}");
    assert_eq!(
        int(&v, "rejected_rows"),
        1,
        "seven rejections in one minute: {v}"
    );
    // Every feed row but the newest (api:generate's and the revocation's
    // below): the feed's head never goes back.
    assert_eq!(
        int(&v, "feed_rows"),
        i64::try_from(feed_before).expect("count") - 1,
        "{v}"
    );
    assert_eq!(int(&v, "rate_rows"), 0, "{v}");
    assert_eq!(
        int(&v, "audit_rows"),
        0,
        "audit kept without --audit-retention: {v}"
    );
    assert_eq!(text(&v, "usage_retention"), "90d");
    assert_eq!(
        text(&v, "feed_retention"),
        "1d",
        "24h, written the shortest way"
    );
    assert!(v["audit_retention"].is_null(), "{v}");
    assert!(v["elapsed_ms"].is_u64(), "{v}");

    assert_eq!(raw_rows(db), 200, "the last 10 days stay");
    let after = db.json(&stats_args, 0);
    assert_eq!(
        after["validations"], before["validations"],
        "statistics read the rollups"
    );
    // One audit row says what went; the others are untouched.
    let audit = audit_rows(db, &[]);
    assert_eq!(audit.len(), audit_before + 1);
    let prune_rows = audit_rows(db, &["--action", "retention.prune"]);
    assert_eq!(prune_rows.len(), 1);
    assert_eq!(text(&prune_rows[0], "actor"), "maintenance");
    let detail = text(&prune_rows[0], "detail");
    assert!(detail.contains("usage_log 540"), "{detail}");
    assert!(detail.contains("audit forever"), "{detail}");

    // Again: nothing left to delete, so no second audit row; the newest
    // feed row stays however old it is.
    let again = db.json(&["prune", "--now", &later], 0);
    assert_eq!(int(&again, "usage_rows"), 0);
    assert_eq!(int(&again, "feed_rows"), 0, "{again}");
    assert_eq!(
        db.store.feed_head().expect("head"),
        head_before,
        "the newest feed row is kept"
    );
    assert_eq!(audit_rows(db, &["--action", "retention.prune"]).len(), 1);

    // Audit rows go only when asked: all of them are two days old by then.
    let audit_count = audit_rows(db, &[]).len();
    let v = db.json(&["prune", "--now", &later, "--audit-retention", "1d"], 0);
    assert_eq!(
        int(&v, "audit_rows"),
        i64::try_from(audit_count).expect("count")
    );
    assert_eq!(text(&v, "audit_retention"), "1d");
    let left = audit_rows(db, &[]);
    assert_eq!(left.len(), 1, "only the record of this prune: {left:?}");
    assert!(text(&left[0], "detail").contains(&format!("audit_log {audit_count}")));
    assert_eq!(
        db.json(&stats_args, 0)["validations"],
        before["validations"]
    );
}

fn prune_takes_retention_from_the_environment(db: &TestDb) {
    let (client, key) = client_and_key(db);
    let now = now_ms();
    let batch: Vec<UsageRecord> = [20, 8, 1]
        .iter()
        .map(|days| usage(client, Some(key), now - days * DAY_MS, Status::Valid))
        .collect();
    db.store.write_usage(&batch).expect("usage rows");
    let run = keygen_in(
        None,
        &["--dsn", &db.dsn, "prune"],
        None,
        &[("HERATIO_KEYS_USAGE_RETENTION", "7d")],
    )
    .expect_code(0);
    assert!(run.stdout.contains("usage_log"), "{}", run.stdout);
    assert!(run.stdout.contains("2 (kept 7d"), "{}", run.stdout);
    assert_eq!(raw_rows(db), 1);
    // A flag beats the environment.
    let v = keygen_in(
        None,
        &[
            "--dsn",
            &db.dsn,
            "prune",
            "--usage-retention",
            "90d",
            "--json",
        ],
        None,
        &[("HERATIO_KEYS_USAGE_RETENTION", "1h")],
    )
    .expect_code(0)
    .json();
    assert_eq!(int(&v, "usage_rows"), 0);
    assert_eq!(text(&v, "usage_retention"), "90d");
}

fn prune_refuses_a_feed_retention_under_an_hour(db: &TestDb) {
    for (args, env) in [
        (vec!["prune", "--feed-retention", "30m"], vec![]),
        (vec!["prune"], vec![("HERATIO_KEYS_FEED_RETENTION", "59m")]),
    ] {
        let mut all = vec!["--dsn", db.dsn.as_str()];
        all.extend(args);
        let run = keygen_in(None, &all, None, &env).expect_code(2);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let line = run.one_error_line();
        assert!(line.contains("--feed-retention"), "{line}");
        assert!(line.contains("1h"), "{line}");
    }
    let run = db
        .keygen(&["prune", "--usage-retention", "soon"])
        .expect_code(2);
    assert!(run.one_error_line().contains("--usage-retention"));
    // Nothing was deleted or recorded by the refused runs.
    assert!(audit_rows(db, &["--action", "retention.prune"]).is_empty());
}

fn prune_of_past_rate_counters_alone_is_not_audited(db: &TestDb) {
    let (client, _) = client_and_key(db);
    let k = db.json(
        &[
            "api:generate",
            &client.to_string(),
            "--name",
            "limited",
            "--rate-limit",
            "100",
        ],
        0,
    );
    let run = db.keygen_stdin(&["api:validate"], Some(text(&k, "key")));
    run.expect_code(0);
    // Three hours on the hour's counter is over; the usage row and the
    // generate's feed row are not old enough yet.
    let later = rfc3339(now_ms() + 3 * 3_600_000);
    let v = db.json(&["prune", "--now", &later], 0);
    assert_eq!(int(&v, "rate_rows"), 1, "{v}");
    assert_eq!(int(&v, "usage_rows") + int(&v, "feed_rows"), 0, "{v}");
    assert!(audit_rows(db, &["--action", "retention.prune"]).is_empty());
}

/// `checks[name]` of a doctor report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    array(&report["checks"])
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

fn status_of<'a>(report: &'a Value, name: &str) -> &'a str {
    text(check(report, name), "status")
}

/// The password of a MySQL DSN (`None` for SQLite).
fn password(dsn: &str) -> Option<&str> {
    let rest = dsn.strip_prefix("mysql://")?;
    let auth = rest.rsplit_once('@')?.0;
    auth.split_once(':').map(|(_, p)| p)
}

fn doctor_passes_a_healthy_store(db: &TestDb) {
    let run = db.keygen(&["doctor", "--json"]).expect_code(0);
    let report = run.json();
    for name in ["dsn", "schema", "feed", "retention", "usage_drops"] {
        assert_eq!(status_of(&report, name), "ok", "{name}: {report}");
        assert!(!text(check(&report, name), "message").is_empty());
    }
    if db.is_mysql() {
        assert_eq!(text(&report, "backend"), "mysql");
        // The test account holds ALL PRIVILEGES on its databases.
        assert_eq!(status_of(&report, "privileges"), "warn", "{report}");
        let message = text(check(&report, "privileges"), "message");
        assert!(message.contains("ALL PRIVILEGES"), "{message}");
        assert!(check(&report, "privileges")["hint"].is_string());
        assert_eq!(status_of(&report, "clock"), "ok", "{report}");
        assert_eq!(status_of(&report, "max_connections"), "ok", "{report}");
        assert_eq!(text(&report, "status"), "warn");
        let pw = password(&db.dsn).expect("password");
        assert!(!run.stdout.contains(pw) && !run.stderr.contains(pw));
        assert!(text(&report, "dsn").contains("***"), "{report}");
    } else {
        assert_eq!(text(&report, "backend"), "sqlite");
        assert_eq!(status_of(&report, "sqlite_permissions"), "ok", "{report}");
        assert_eq!(text(&report, "status"), "ok");
        assert!(report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["name"] != "privileges" && c["name"] != "clock"));
    }
    // The human report names every check and ends with the tally.
    let human = db.keygen(&["doctor"]).expect_code(0).stdout;
    for c in array(&report["checks"]) {
        assert!(human.contains(text(c, "name")), "{human}");
    }
    assert!(human.contains("0 failed."), "{human}");
}

fn doctor_fails_too_many_workers_for_max_connections(db: &TestDb) {
    if !db.is_mysql() {
        return;
    }
    let report = db.json(&["doctor", "--workers", "5"], 0);
    assert_eq!(status_of(&report, "max_connections"), "ok", "{report}");
    // The test server allows 500 connections; 1000 workers may want 2016.
    let run = db
        .keygen(&["doctor", "--workers", "1000", "--json"])
        .expect_code(1);
    let report = run.json();
    assert_eq!(status_of(&report, "max_connections"), "fail", "{report}");
    assert_eq!(text(&report, "status"), "fail");
    let message = text(check(&report, "max_connections"), "message");
    assert!(
        message.contains("2016") && message.contains("500"),
        "{message}"
    );
}

fn doctor_flags_a_world_readable_sqlite_file(db: &TestDb) {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = db.sqlite_path() else {
        return;
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let report = db.keygen(&["doctor", "--json"]).expect_code(1).json();
    assert_eq!(status_of(&report, "sqlite_permissions"), "fail", "{report}");
    let message = text(check(&report, "sqlite_permissions"), "message");
    assert!(
        message.contains("0644") && message.contains("read"),
        "{message}"
    );
    assert_eq!(status_of(&report, "dsn"), "ok");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let report = db.json(&["doctor"], 0);
    assert_eq!(status_of(&report, "sqlite_permissions"), "ok", "{report}");
}

fn doctor_warns_when_prune_does_not_run_and_fails_an_old_schema(db: &TestDb) {
    let (client, key) = client_and_key(db);
    let aged = now_ms() - 100 * DAY_MS;
    db.store
        .write_usage(&[usage(client, Some(key), aged, Status::Valid)])
        .expect("usage row");
    let report = db.json(&["doctor"], 0);
    assert_eq!(status_of(&report, "retention"), "warn", "{report}");
    let message = text(check(&report, "retention"), "message");
    assert!(message.contains("keygen prune"), "{message}");
    // A site that keeps a year says so to the timer and to doctor alike.
    let year = keygen_in(
        None,
        &["--dsn", &db.dsn, "doctor", "--json"],
        None,
        &[("HERATIO_KEYS_USAGE_RETENTION", "365d")],
    )
    .expect_code(0)
    .json();
    assert_eq!(status_of(&year, "retention"), "ok", "{year}");
    // A retention prune would refuse is reported, not silently replaced.
    let bad = keygen_in(
        None,
        &["--dsn", &db.dsn, "doctor", "--json"],
        None,
        &[("HERATIO_KEYS_FEED_RETENTION", "10m")],
    )
    .expect_code(0)
    .json();
    assert_eq!(status_of(&bad, "retention"), "warn", "{bad}");
    let message = text(check(&bad, "retention"), "message");
    assert!(message.contains("HERATIO_KEYS_FEED_RETENTION"), "{message}");
    db.keygen(&["prune"]).expect_code(0);
    let report = db.json(&["doctor"], 0);
    assert_eq!(status_of(&report, "retention"), "ok", "{report}");

    // As if this keygen were newer than the installed schema.
    db.exec("DELETE FROM schema_version WHERE version = (SELECT v FROM (SELECT MAX(version) AS v FROM schema_version) AS t)");
    let report = db.keygen(&["doctor", "--json"]).expect_code(1).json();
    assert_eq!(status_of(&report, "schema"), "fail", "{report}");
    let hint = text(check(&report, "schema"), "hint");
    assert!(hint.contains("keygen install"), "{hint}");
}

#[test]
fn doctor_reports_an_unreachable_server_without_its_password() {
    let dsn = format!(
        "mysql://keygen:Pw-never-shown-42@127.0.0.1:{}/heratio_keys",
        closed_port()
    );
    for json in [true, false] {
        let mut args = vec!["--dsn", dsn.as_str(), "doctor"];
        if json {
            args.push("--json");
        }
        let run = keygen_in(None, &args, None, &[]).expect_code(3);
        assert!(!run.stdout.contains("Pw-never-shown-42"), "{}", run.stdout);
        assert!(!run.stderr.contains("Pw-never-shown-42"), "{}", run.stderr);
        if json {
            let report = run.json();
            assert_eq!(status_of(&report, "dsn"), "fail", "{report}");
            assert_eq!(array(&report["checks"]).len(), 1, "{report}");
            assert!(check(&report, "dsn")["hint"].is_string());
        } else {
            assert!(run.stdout.contains("FAIL  dsn"), "{}", run.stdout);
        }
    }
}

#[test]
fn doctor_reports_a_missing_sqlite_file() {
    let dir = tempfile::tempdir().expect("dir");
    let dsn = format!("sqlite:{}", dir.path().join("absent.db").display());
    let report = keygen_in(None, &["--dsn", &dsn, "doctor", "--json"], None, &[])
        .expect_code(1)
        .json();
    assert_eq!(status_of(&report, "dsn"), "fail", "{report}");
    let hint = text(check(&report, "dsn"), "hint");
    assert!(hint.contains("keygen install"), "{hint}");
}

on_both_stores!(
    prune_keeps_statistics_and_recent_rows,
    prune_takes_retention_from_the_environment,
    prune_refuses_a_feed_retention_under_an_hour,
    prune_of_past_rate_counters_alone_is_not_audited,
    doctor_passes_a_healthy_store,
    doctor_fails_too_many_workers_for_max_connections,
    doctor_flags_a_world_readable_sqlite_file,
    doctor_warns_when_prune_does_not_run_and_fails_an_old_schema,
);

/// The runtime account's GRANT block of docs/install.md, for database `db`
/// and account `user`.
fn documented_runtime_grants(db: &str, user: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/install.md"))
        .expect("docs/install.md");
    let block = doc
        .split("<!-- test: mariadb-runtime -->")
        .nth(1)
        .and_then(|rest| rest.split("```sql").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the runtime GRANT block");
    block
        .replace("heratio_keys.", &format!("{db}."))
        .replace("'heratio_keys'@", &format!("'{user}'@"))
}

/// The documented runtime account is exactly what `doctor` wants of a
/// validators' DSN; one grant less fails, a global one warns. Needs root,
/// so it runs on a MariaDB server of its own.
#[test]
fn doctor_judges_the_documented_runtime_account() {
    if heratio_keys_testkit::mysql_base().is_none() {
        return;
    }
    let Some(server) = heratio_keys_testkit::PrivateMariaDb::start() else {
        return;
    };
    let owner = server.dsn();
    keygen_in(None, &["--dsn", &owner, "install"], None, &[]).expect_code(0);
    let root = |sql: &str| {
        let status = std::process::Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!(
                "--socket={}",
                server.dir.path().join("sock").display()
            ))
            .arg("-e")
            .arg(sql)
            .status()
            .expect("mariadb client");
        assert!(status.success(), "{sql}");
    };
    root(&documented_runtime_grants("heratio_keys", "hk_runtime"));
    let runtime = owner.replace("hk:pw@", "hk_runtime:runtime-secret@");
    let doctor = |code| {
        keygen_in(None, &["--dsn", &runtime, "doctor", "--json"], None, &[])
            .expect_code(code)
            .json()
    };
    let report = doctor(0);
    assert_eq!(status_of(&report, "privileges"), "ok", "{report}");
    assert_eq!(text(&report, "status"), "ok", "{report}");

    root("REVOKE SELECT ON heratio_keys.change_feed FROM 'hk_runtime'@'127.0.0.1'");
    let report = doctor(1);
    assert_eq!(status_of(&report, "privileges"), "fail", "{report}");
    assert_eq!(status_of(&report, "feed"), "fail", "{report}");
    let message = text(check(&report, "privileges"), "message");
    assert!(message.contains("SELECT on change_feed"), "{message}");

    root(
        "GRANT SELECT ON heratio_keys.change_feed TO 'hk_runtime'@'127.0.0.1'; \
         GRANT PROCESS ON *.* TO 'hk_runtime'@'127.0.0.1' WITH GRANT OPTION",
    );
    let report = doctor(0);
    assert_eq!(status_of(&report, "privileges"), "warn", "{report}");
    let message = text(check(&report, "privileges"), "message");
    assert!(message.contains("global privileges (PROCESS)"), "{message}");
    assert!(message.contains("GRANT OPTION"), "{message}");
}
