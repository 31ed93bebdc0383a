//! Importing AtoM Heratio's `ahg_api_key` (both shapes of legacy key, every
//! column's mapping, bad rows, idempotency, updates through the change
//! feed, dry runs), on SQLite and MariaDB, from sources of the same engine.

mod heratio_source;

use std::time::{Duration, Instant};

use heratio_keys_core::import::ImportReport;
use heratio_keys_core::import_heratio;
use heratio_keys_core::model::parse_rfc3339;
use heratio_keys_core::{
    store, CredentialInfo, ErrorKind, KeyShape, KeyStore, Kind, NewClient, Options, Request,
    Status, Validation, Validator,
};
use heratio_keys_testkit::{actor, eventually, TestDb};
use heratio_source::{heratio_db, insert_keys, insert_user, random_key, research_key, KeyRow};

/// The raw keys of the fixture, by Heratio id.
struct Fixture {
    source: TestDb,
    source_store: std::sync::Arc<dyn KeyStore>,
    keys: Vec<(i64, String)>,
}

impl Fixture {
    fn raw(&self, id: i64) -> &str {
        &self
            .keys
            .iter()
            .find(|(i, _)| *i == id)
            .expect("fixture key")
            .1
    }

    fn digests(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|(_, raw)| heratio_source::hex(raw))
            .collect()
    }
}

/// Users 3 (alice) and 4 (no name, no e-mail); keys 1-7 importable, 8-13 bad.
fn fixture(mysql: bool) -> Option<Fixture> {
    let source = heratio_db(mysql, true)?;
    insert_user(&source, 3, Some("alice"), Some("alice@example.org"));
    insert_user(&source, 4, None, None);
    let mut keys = Vec::new();
    let mut rows = Vec::new();
    let mut row = |id: i64, user: i64, raw: String, edit: &dyn Fn(&mut KeyRow)| {
        let mut r = KeyRow::new(id, user, &raw);
        edit(&mut r);
        keys.push((id, raw));
        rows.push(r);
    };
    row(1, 3, random_key(), &|r| {
        r.scopes = Some(r#"["read","write"]"#.into());
        r.rate_limit = Some(500);
        r.expires_at = Some("2030-01-01 00:00:00".into());
        r.last_used_at = Some("2026-01-02 03:04:05".into());
    });
    row(2, 3, research_key(), &|r| {
        r.scopes = Some(r#"["read","search","write","create","update"]"#.into());
    });
    row(3, 4, random_key(), &|r| {
        r.scopes = None;
        r.rate_limit = None;
    });
    row(4, 4, random_key(), &|r| {
        r.scopes = Some("[]".into());
        r.rate_limit = Some(2);
    });
    row(5, 3, random_key(), &|r| r.is_active = Some(0));
    row(6, 3, random_key(), &|r| {
        r.expires_at = Some("2020-01-01 00:00:00".into())
    });
    row(7, 3, research_key(), &|r| r.is_active = None);
    row(8, 999, random_key(), &|_| {});
    row(9, 3, random_key(), &|r| r.api_key = "not-a-digest".into());
    row(10, 3, random_key(), &|r| {
        r.scopes = Some(r#""read""#.into())
    });
    row(11, 3, random_key(), &|r| r.scopes = Some("[true]".into()));
    row(12, 3, random_key(), &|r| r.scopes = Some(r#"["*"]"#.into()));
    row(13, 3, random_key(), &|r| {
        r.scopes = Some(r#"["read write"]"#.into())
    });
    insert_keys(&source, &rows);
    let source_store = source.open_store();
    Some(Fixture {
        source,
        source_store,
        keys,
    })
}

fn import(db: &TestDb, f: &Fixture, client: Option<i64>, dry_run: bool) -> ImportReport {
    let report = import_heratio(
        db.store.as_ref(),
        f.source_store.as_ref(),
        client,
        dry_run,
        &actor(),
    )
    .expect("import");
    let shown = format!(
        "{}\n{report:?}",
        serde_json::to_string(&report).expect("json")
    );
    for digest in f.digests() {
        assert!(!shown.contains(&digest), "a digest in the report: {shown}");
    }
    assert_eq!(
        report.imported + report.updated + report.unchanged + report.skipped.len() as u64,
        report.rows,
        "every row is accounted for"
    );
    report
}

fn validate(v: &Validator, key: &str, scopes: &[&str]) -> Validation {
    v.validate(&Request::new(Kind::ApiKey, key.as_bytes()).scopes(scopes))
}

/// The imported key with this Heratio id.
fn imported(db: &TestDb, heratio_id: i64) -> CredentialInfo {
    for client in db.store.list_clients().expect("clients") {
        for c in db
            .store
            .list_credentials(Kind::ApiKey, client.id)
            .expect("keys")
        {
            let id = c
                .metadata
                .as_ref()
                .and_then(|m| m.to_object()["heratio_key_id"].as_i64());
            if id == Some(heratio_id) {
                return c;
            }
        }
    }
    panic!("Heratio key {heratio_id} not imported");
}

fn ms(rfc3339: &str) -> i64 {
    parse_rfc3339(rfc3339).expect("time")
}

fn skipped_ids(r: &ImportReport) -> Vec<i64> {
    r.skipped.iter().map(|s| s.heratio_key_id).collect()
}

fn reason(r: &ImportReport, id: i64) -> &str {
    &r.skipped
        .iter()
        .find(|s| s.heratio_key_id == id)
        .expect("skipped")
        .reason
}

fn import_maps_validates_and_stays_idempotent(db: &TestDb) {
    let Some(f) = fixture(db.is_mysql()) else {
        return;
    };
    // A validator running before the import, as PHP-FPM workers would be.
    let v = Validator::open(&db.dsn, Options::default()).expect("validator");
    assert_eq!(validate(&v, f.raw(1), &[]).status, Status::Malformed);

    // A dry run reports exactly what the import will do, and writes nothing.
    let dry = import(db, &f, None, true);
    assert!(dry.dry_run);
    assert_eq!(
        (
            dry.rows,
            dry.imported,
            dry.updated,
            dry.unchanged,
            dry.revoked,
            dry.clients_created
        ),
        (13, 7, 0, 0, 2, 2)
    );
    assert!(dry.clients.iter().all(|c| c.client_id.is_none()));
    assert!(db.store.list_clients().expect("clients").is_empty());
    assert!(db.store.audit_log(100).expect("audit").is_empty());
    assert_eq!(db.store.feed_head().expect("feed"), 0);

    let report = import(db, &f, None, false);
    assert!(!report.dry_run);
    assert_eq!(
        (
            report.rows,
            report.imported,
            report.updated,
            report.unchanged,
            report.revoked,
            report.clients_created
        ),
        (13, 7, 0, 0, 2, 2)
    );
    assert_eq!(skipped_ids(&report), [8, 9, 10, 11, 12, 13]);
    assert_eq!(skipped_ids(&dry), skipped_ids(&report));
    assert!(reason(&report, 8).contains("unknown user"));
    assert!(reason(&report, 9).contains("SHA-256"));
    assert!(reason(&report, 10).contains("array of strings"));
    assert!(reason(&report, 11).contains("array of strings"));
    assert!(reason(&report, 12).contains("every scope"));
    assert!(reason(&report, 13).contains("not a valid scope name"));

    // One client per Heratio user, named from AtoM's user table.
    let clients = db.store.list_clients().expect("clients");
    assert_eq!(clients.len(), 2);
    let alice = clients
        .iter()
        .find(|c| c.external_id.as_deref() == Some("heratio:user:3"))
        .expect("alice");
    assert_eq!(
        (alice.name.as_str(), alice.email.as_str()),
        ("alice", "alice@example.org")
    );
    let nobody = clients
        .iter()
        .find(|c| c.external_id.as_deref() == Some("heratio:user:4"))
        .expect("user 4");
    assert_eq!(
        (nobody.name.as_str(), nobody.email.as_str()),
        ("Heratio user 4", "heratio-user-4@heratio.invalid")
    );

    // Every column mapped.
    let k1 = imported(db, 1);
    assert_eq!(k1.client_id, alice.id);
    assert_eq!(k1.name, "key 1");
    assert_eq!(k1.display_prefix, &f.raw(1)[..8]);
    assert_eq!(k1.key_shape, KeyShape::HeratioRandom);
    assert_eq!(k1.scopes.as_slice(), ["read", "write"]);
    assert_eq!(k1.rate_limit, Some(500));
    assert_eq!(
        k1.expires_at,
        Some(ms("2030-01-01T00:00:01Z")),
        "end of the second"
    );
    assert_eq!(k1.created_at, ms("2025-06-01T10:00:00Z"));
    assert_eq!(k1.last_used_at, Some(ms("2026-01-02T03:04:05Z")));
    assert!(k1.active && k1.revoked_at.is_none());
    assert_eq!(
        k1.metadata
            .as_ref()
            .map(|m| m.as_str().to_owned())
            .as_deref(),
        Some(r#"{"heratio_key_id":1,"heratio_user_id":3}"#)
    );
    let k2 = imported(db, 2);
    assert_eq!(k2.key_shape, KeyShape::HeratioResearch);
    assert_eq!(
        k2.scopes.as_slice(),
        ["read", "search", "write", "create", "update"]
    );
    assert_eq!((k2.expires_at, k2.last_used_at), (None, None));
    let k3 = imported(db, 3);
    assert_eq!(k3.client_id, nobody.id);
    assert!(k3.scopes.as_slice().is_empty(), "NULL scopes hold none");
    assert_eq!(k3.rate_limit, Some(1000), "NULL is Heratio's 1000");
    assert!(
        imported(db, 4).scopes.as_slice().is_empty(),
        "[] holds none"
    );
    for inactive in [5, 7] {
        let k = imported(db, inactive);
        assert!(!k.active && k.revoked_at.is_some(), "{inactive}");
    }
    assert_eq!(imported(db, 7).key_shape, KeyShape::HeratioResearch);

    // Change feed and audit trail, in the import's transaction.
    assert_eq!(db.store.feed_since(0, 1000).expect("feed").len(), 7);
    let audit = db.store.audit_log(100).expect("audit");
    let count = |action: &str| audit.iter().filter(|a| a.action == action).count();
    assert_eq!(count("api_key.import"), 7);
    assert_eq!(count("client.create"), 2);
    assert_eq!(count("import.heratio"), 1);
    let summary = audit
        .iter()
        .find(|a| a.action == "import.heratio")
        .and_then(|a| a.detail.clone())
        .expect("summary");
    assert!(
        summary.contains("imported=7") && summary.contains("skipped=6"),
        "{summary}"
    );
    let everything = db.everything_stored();
    for bad in [8, 10, 11, 12, 13] {
        assert!(
            !everything.contains(&heratio_source::hex(f.raw(bad))),
            "bad row {bad} stored"
        );
    }

    // Legacy keys of both shapes validate like any key, in the validator
    // that was running all along (it learns of the shapes from the feed).
    assert!(eventually(Duration::from_secs(5), || {
        validate(&v, f.raw(1), &["read"]).status == Status::Valid
    })
    .is_some());
    let a = validate(&v, f.raw(1), &["read", "write"]);
    assert_eq!(a.status, Status::Valid);
    let view = heratio_keys_core::ValidationView::from(&a);
    assert_eq!(view.metadata.expect("metadata")["heratio_user_id"], 3);
    assert_eq!(view.rate_limit, Some(500));
    assert_eq!(
        validate(&v, f.raw(1), &["delete"]).status,
        Status::Forbidden
    );
    assert_eq!(
        validate(&v, f.raw(2), &["search", "update"]).status,
        Status::Valid
    );
    assert_eq!(validate(&v, f.raw(3), &[]).status, Status::Valid);
    assert_eq!(validate(&v, f.raw(3), &["read"]).status, Status::Forbidden);
    let limited: Vec<Status> = (0..4).map(|_| validate(&v, f.raw(4), &[]).status).collect();
    assert_eq!(
        limited,
        [
            Status::Valid,
            Status::Valid,
            Status::RateLimited,
            Status::RateLimited
        ]
    );
    assert_eq!(validate(&v, f.raw(5), &[]).status, Status::Revoked);
    assert_eq!(validate(&v, f.raw(6), &[]).status, Status::Expired);
    assert_eq!(validate(&v, f.raw(7), &[]).status, Status::Revoked);
    assert_eq!(
        validate(&v, f.raw(8), &[]).status,
        Status::NotFound,
        "skipped"
    );
    assert_eq!(
        validate(&v, f.raw(1), &[]).credential.expect("matched").id,
        k1.id
    );
    assert_eq!(
        v.validate(&Request::new(Kind::AiToken, f.raw(1).as_bytes()))
            .status,
        Status::Malformed,
        "a legacy key is never an AI token"
    );

    // A second run creates nothing.
    let again = import(db, &f, None, false);
    assert_eq!(
        (
            again.imported,
            again.updated,
            again.unchanged,
            again.clients_created,
            again.revoked
        ),
        (0, 0, 7, 0, 0)
    );
    assert_eq!(skipped_ids(&again), [8, 9, 10, 11, 12, 13]);
    assert_eq!(db.store.list_clients().expect("clients").len(), 2);
    assert_eq!(db.store.feed_since(0, 1000).expect("feed").len(), 7);

    // Heratio deactivates key 1 and changes key 2's limit and expiry.
    f.source
        .exec("UPDATE ahg_api_key SET is_active = 0 WHERE id = 1");
    f.source.exec(
        "UPDATE ahg_api_key SET rate_limit = 50, expires_at = '2031-01-01 00:00:00' WHERE id = 2",
    );
    let dry = import(db, &f, None, true);
    assert_eq!((dry.updated, dry.revoked), (2, 1));
    assert!(imported(db, 1).active, "a dry run revokes nothing");
    let changed = import(db, &f, None, false);
    let committed = Instant::now();
    assert_eq!(
        (
            changed.imported,
            changed.updated,
            changed.unchanged,
            changed.revoked
        ),
        (0, 2, 5, 1)
    );
    let by_id = |id: i64| {
        changed
            .updates
            .iter()
            .find(|u| u.heratio_key_id == id)
            .map(|u| u.changed.clone())
            .expect("update")
    };
    assert_eq!(by_id(1), ["revoked"]);
    assert_eq!(by_id(2), ["rate_limit", "expires_at"]);
    let k2 = imported(db, 2);
    assert_eq!(
        (k2.rate_limit, k2.expires_at),
        (Some(50), Some(ms("2031-01-01T00:00:01Z")))
    );
    // The running validator refuses the key within a feed poll (500 ms).
    let seen = eventually(Duration::from_secs(5), || {
        validate(&v, f.raw(1), &[]).status == Status::Revoked
    })
    .expect("revocation seen");
    let elapsed = committed.elapsed();
    eprintln!(
        "{}: deactivated source key refused {} ms after the import committed",
        db.label(),
        elapsed.as_millis()
    );
    assert!(seen < Duration::from_millis(1500), "{seen:?}");
    let audit = db.store.audit_log(100).expect("audit");
    assert!(audit.iter().any(|a| a.action == "api_key.revoke"
        && a.target_id == Some(imported(db, 1).id)
        && a.detail
            .as_deref()
            .is_some_and(|d| d.contains("heratio_key_id=1"))));

    // Reactivated in Heratio: revoked here stays revoked, and is reported.
    f.source
        .exec("UPDATE ahg_api_key SET is_active = 1 WHERE id = 1");
    // Deleted in Heratio: reported, not revoked.
    f.source.exec("DELETE FROM ahg_api_key WHERE id = 3");
    let last = import(db, &f, None, false);
    assert_eq!((last.imported, last.updated, last.unchanged), (0, 0, 6));
    assert_eq!(last.kept_revoked.len(), 1);
    assert_eq!(last.kept_revoked[0].heratio_key_id, Some(1));
    assert_eq!(last.not_in_source.len(), 1);
    assert_eq!(last.not_in_source[0].key_id, imported(db, 3).id);
    assert!(imported(db, 3).active);
    assert_eq!(validate(&v, f.raw(1), &[]).status, Status::Revoked);
}

fn client_option_puts_every_key_on_one_client(db: &TestDb) {
    let Some(f) = fixture(db.is_mysql()) else {
        return;
    };
    let client = |name: &str| {
        db.store
            .create_client(
                &NewClient {
                    name: name.into(),
                    email: "ops@example.org".into(),
                    organization: None,
                },
                &actor(),
            )
            .expect("client")
            .id
    };
    let target = client("Reading Room");
    let unknown = import_heratio(
        db.store.as_ref(),
        f.source_store.as_ref(),
        Some(999),
        false,
        &actor(),
    )
    .expect_err("unknown client");
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    let gone = client("Gone");
    db.store
        .deactivate_client(gone, &actor())
        .expect("deactivate");
    let refused = import_heratio(
        db.store.as_ref(),
        f.source_store.as_ref(),
        Some(gone),
        false,
        &actor(),
    )
    .expect_err("deactivated client");
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    assert!(db
        .store
        .list_credentials(Kind::ApiKey, target)
        .expect("keys")
        .is_empty());

    let report = import(db, &f, Some(target), false);
    assert_eq!((report.imported, report.clients_created), (7, 0));
    assert_eq!(db.store.list_clients().expect("clients").len(), 2);
    let keys = db
        .store
        .list_credentials(Kind::ApiKey, target)
        .expect("keys");
    assert_eq!(keys.len(), 7);
    assert_eq!(
        imported(db, 3).metadata.expect("m").to_object()["heratio_user_id"],
        4
    );
    let again = import(db, &f, Some(target), false);
    assert_eq!((again.imported, again.unchanged), (0, 7));
    // Without --client afterwards, the keys move to their users' clients.
    let moved = import(db, &f, None, false);
    assert_eq!(
        (moved.clients_created, moved.updated),
        (2, 5),
        "revoked keys stay"
    );
    assert!(moved.updates.iter().all(|u| u.changed == ["client"]));
}

fn source_without_user_table_names_clients_by_id(db: &TestDb) {
    let Some(source) = heratio_db(db.is_mysql(), false) else {
        return;
    };
    let raw = random_key();
    insert_keys(&source, &[KeyRow::new(1, 999, &raw)]);
    let report = import_heratio(
        db.store.as_ref(),
        source.open_store().as_ref(),
        None,
        false,
        &actor(),
    )
    .expect("import");
    assert_eq!((report.imported, report.skipped.len()), (1, 0));
    let client = &db.store.list_clients().expect("clients")[0];
    assert_eq!(client.name, "Heratio user 999");
    assert_eq!(client.email, "heratio-user-999@heratio.invalid");

    // A database without ahg_api_key is refused, naming the table.
    let err = import_heratio(db.store.as_ref(), db.store.as_ref(), None, false, &actor())
        .expect_err("not a Heratio database");
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.message().contains("ahg_api_key"), "{err}");
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::TestDb::sqlite()); } )*
        }
        mod mysql {
            $( #[test] fn $name() { if let Some(db) = super::TestDb::mysql() { super::$name(&db); } } )*
        }
    };
}

on_both_stores!(
    import_maps_validates_and_stays_idempotent,
    client_option_puts_every_key_on_one_client,
    source_without_user_table_names_clients_by_id,
);

/// 10 000 rows from 100 users, on MariaDB: the import's time, then a
/// second run's. `cargo test --release -p heratio-keys-core --test
/// heratio_import -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn import_10000_rows_on_mariadb() {
    let Some(db) = TestDb::mysql() else {
        return;
    };
    let source = heratio_db(true, true).expect("source");
    for user in 1..=100 {
        insert_user(
            &source,
            user,
            Some(&format!("user{user}")),
            Some(&format!("u{user}@example.org")),
        );
    }
    let rows: Vec<KeyRow> = (1..=10_000)
        .map(|id| {
            let raw = if id % 10 == 0 {
                research_key()
            } else {
                random_key()
            };
            let mut r = KeyRow::new(id, 1 + id % 100, &raw);
            r.scopes = Some(r#"["read","write"]"#.into());
            r
        })
        .collect();
    insert_keys(&source, &rows);
    let from = store::open(&store::Dsn::parse(&source.dsn).expect("dsn")).expect("open");
    let start = Instant::now();
    let report =
        import_heratio(db.store.as_ref(), from.as_ref(), None, false, &actor()).expect("import");
    let first = start.elapsed();
    assert_eq!((report.imported, report.clients_created), (10_000, 100));
    let start = Instant::now();
    let again =
        import_heratio(db.store.as_ref(), from.as_ref(), None, false, &actor()).expect("again");
    let second = start.elapsed();
    assert_eq!((again.imported, again.unchanged), (0, 10_000));
    eprintln!(
        "import of 10 000 rows on MariaDB: {} ms; second run (all unchanged): {} ms",
        first.as_millis(),
        second.as_millis()
    );
}
