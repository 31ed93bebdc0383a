//! The conformance suite: every scenario runs against SQLite and MariaDB.

use std::time::Duration;

use heratio_keys_core::store::UsageQuery;
use heratio_keys_core::{
    generate, issue, model, CredentialState, ErrorKind, IssueRequest, Kind, NewClient,
    NewCredential, Options, Request, Scopes, Status, Validator,
};
use heratio_keys_testkit::{actor, eventually, TestDb};

#[path = "conformance/usage_log.rs"]
mod usage_log;
use usage_log::{
    upgrade_to_one_usage_log_index, usage_and_stats, usage_counts_per_credential_in_one_batch,
    usage_log_filters_without_time_index, usage_text_round_trips,
};

fn fast_options() -> Options {
    Options::builder()
        .poll_interval(Duration::from_millis(50))
        .build()
}

fn client(db: &TestDb, name: &str) -> i64 {
    db.store
        .create_client(
            &NewClient {
                name: name.to_owned(),
                email: format!("{name}@example.org"),
                organization: Some("Archive".to_owned()),
            },
            &actor(),
        )
        .expect("create client")
        .id
}

fn issue_key(
    db: &TestDb,
    kind: Kind,
    client_id: i64,
    scopes: &str,
    expires_at: Option<i64>,
) -> (String, i64) {
    let issued = issue(
        db.store.as_ref(),
        kind,
        &IssueRequest {
            client_id,
            name: "production".to_owned(),
            scopes: Scopes::parse(scopes).expect("scopes"),
            expires_at,
            rate_limit: None,
            metadata: None,
        },
        &actor(),
    )
    .expect("issue");
    (issued.key.expose().to_owned(), issued.info.id)
}

fn check(v: &Validator, kind: Kind, key: &str, scopes: &[&str]) -> Status {
    v.validate(&Request::new(kind, key.as_bytes()).scopes(scopes))
        .status
}

/// Waits until the validator reports `want` (the feed has been polled).
fn settles(v: &Validator, kind: Kind, key: &str, want: Status) {
    let waited = eventually(Duration::from_secs(10), || check(v, kind, key, &[]) == want);
    assert!(
        waited.is_some(),
        "validator never reported {want}; last: {}",
        check(v, kind, key, &[])
    );
}

fn install_is_idempotent(db: &TestDb) {
    let again = db.store.install().expect("second install");
    assert_eq!(
        again.from_version,
        Some(heratio_keys_core::store::SCHEMA_VERSION)
    );
    assert!(
        again.applied.is_empty(),
        "nothing to apply the second time: {:?}",
        again.applied
    );
    assert_eq!(
        db.store.schema_version().expect("version"),
        Some(heratio_keys_core::store::SCHEMA_VERSION)
    );
}

fn lifecycle(db: &TestDb) {
    let c = client(db, "lifecycle");
    let (api, api_id) = issue_key(db, Kind::ApiKey, c, "read,write", None);
    let (ai, ai_id) = issue_key(db, Kind::AiToken, c, "*", None);
    assert!(api.starts_with("hk_api_") && api.len() == 53);
    assert!(ai.starts_with("hk_ai_") && ai.len() == 52);

    let listed = db.store.list_credentials(Kind::ApiKey, c).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, api_id);
    assert_eq!(listed[0].display_prefix, &api[..12]);
    assert_eq!(listed[0].scopes.as_slice(), ["read", "write"]);
    assert_eq!(listed[0].state(model::now_ms()), CredentialState::Active);

    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    let ok = v.validate(&Request::new(Kind::ApiKey, api.as_bytes()).scopes(&["read"]));
    assert_eq!(ok.status, Status::Valid);
    let cred = ok.credential.expect("credential");
    assert_eq!(
        (cred.id, cred.client_id, cred.name.as_str()),
        (api_id, c, "production")
    );

    assert_eq!(
        check(&v, Kind::ApiKey, &ai, &[]),
        Status::WrongKind,
        "an AI token is never an API key"
    );
    assert_eq!(check(&v, Kind::AiToken, &api, &[]), Status::WrongKind);
    assert_eq!(
        check(&v, Kind::AiToken, &ai, &["anything"]),
        Status::Valid,
        "* grants every scope"
    );

    let denied =
        v.validate(&Request::new(Kind::ApiKey, api.as_bytes()).scopes(&["read", "delete"]));
    assert_eq!(denied.status, Status::Forbidden);
    assert_eq!(denied.missing_scope.as_deref(), Some("delete"));
    assert_eq!(denied.message(), "Scope 'delete' required.");

    db.store
        .revoke_credential(Kind::ApiKey, api_id, &actor())
        .expect("revoke");
    settles(&v, Kind::ApiKey, &api, Status::Revoked);
    assert_eq!(
        db.store
            .revoke_credential(Kind::ApiKey, api_id, &actor())
            .expect_err("twice")
            .kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        check(&v, Kind::AiToken, &ai, &[]),
        Status::Valid,
        "revoking one credential leaves others"
    );
    assert_eq!(
        db.store
            .get_credential(Kind::AiToken, ai_id)
            .expect("get")
            .state(model::now_ms()),
        CredentialState::Active
    );
    assert_eq!(
        db.store
            .get_credential(Kind::ApiKey, 999_999)
            .expect_err("missing")
            .kind(),
        ErrorKind::NotFound
    );

    let admin = heratio_keys_core::Actor {
        name: "alice".into(),
        source: heratio_keys_core::Source::Web,
        ip: Some("198.51.100.4".into()),
    };
    db.store
        .record_audit(&admin, "admin.login", "admin_user", Some(1), None)
        .expect("record audit");
    assert_eq!(
        db.store
            .record_audit(&admin, "", "admin_user", None, None)
            .expect_err("empty action")
            .kind(),
        ErrorKind::InvalidInput
    );
    let audit = db.store.audit_log(50).expect("audit");
    let login = audit.first().expect("newest row");
    assert_eq!(
        (
            login.action.as_str(),
            login.actor.as_str(),
            login.source.as_str(),
            login.ip.as_deref()
        ),
        ("admin.login", "alice", "web", Some("198.51.100.4"))
    );
    let audit: Vec<_> = audit.into_iter().skip(1).collect();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for wanted in [
        "client.create",
        "api_key.generate",
        "ai_token.generate",
        "api_key.revoke",
    ] {
        assert!(
            actions.contains(&wanted),
            "audit log lacks {wanted}: {actions:?}"
        );
    }
    assert!(audit
        .iter()
        .all(|a| a.actor == "test-suite" && a.source == "library"));
}

fn cascade_deactivation(db: &TestDb) {
    let c = client(db, "cascade");
    let other = client(db, "bystander");
    let (k1, _) = issue_key(db, Kind::ApiKey, c, "*", None);
    let (k2, _) = issue_key(db, Kind::ApiKey, c, "read", None);
    let (t1, _) = issue_key(db, Kind::AiToken, c, "*", None);
    let (kept, _) = issue_key(db, Kind::ApiKey, other, "*", None);
    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    for (kind, key) in [
        (Kind::ApiKey, &k1),
        (Kind::ApiKey, &k2),
        (Kind::AiToken, &t1),
    ] {
        assert_eq!(check(&v, kind, key, &[]), Status::Valid);
    }
    let report = db.store.deactivate_client(c, &actor()).expect("deactivate");
    assert_eq!((report.api_keys_revoked, report.ai_tokens_revoked), (2, 1));
    settles(&v, Kind::ApiKey, &k1, Status::Revoked);
    settles(&v, Kind::ApiKey, &k2, Status::Revoked);
    settles(&v, Kind::AiToken, &t1, Status::Revoked);
    assert_eq!(check(&v, Kind::ApiKey, &kept, &[]), Status::Valid);
    assert!(!db.store.get_client(c).expect("client").active);
    let err = issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: c,
            name: "late".into(),
            scopes: Scopes::all(),
            expires_at: None,
            rate_limit: None,
            metadata: None,
        },
        &actor(),
    )
    .expect_err("inactive client");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let again = db.store.deactivate_client(c, &actor()).expect("idempotent");
    assert_eq!((again.api_keys_revoked, again.ai_tokens_revoked), (0, 0));
}

fn expiry(db: &TestDb) {
    let c = client(db, "expiry");
    let soon = model::now_ms() + 1500;
    let (key, id) = issue_key(db, Kind::ApiKey, c, "*", Some(soon));
    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    assert_eq!(check(&v, Kind::ApiKey, &key, &[]), Status::Valid);
    // Expiry is evaluated at validation time, so the cached entry expires too.
    let waited = eventually(Duration::from_secs(5), || {
        check(&v, Kind::ApiKey, &key, &[]) == Status::Expired
    });
    assert!(waited.is_some(), "never expired");
    assert!(model::now_ms() >= soon);
    assert_eq!(
        db.store
            .get_credential(Kind::ApiKey, id)
            .expect("get")
            .state(model::now_ms()),
        CredentialState::Expired
    );
    // Extending the expiry goes through the feed.
    db.store
        .set_credential_expiry(Kind::ApiKey, id, None, &actor())
        .expect("extend");
    settles(&v, Kind::ApiKey, &key, Status::Valid);
    db.store
        .set_credential_expiry(Kind::ApiKey, id, Some(model::now_ms() - 1), &actor())
        .expect("expire now");
    settles(&v, Kind::ApiKey, &key, Status::Expired);
    let past = issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: c,
            name: "past".into(),
            scopes: Scopes::all(),
            expires_at: Some(model::now_ms() - 1000),
            rate_limit: None,
            metadata: None,
        },
        &actor(),
    );
    assert_eq!(
        past.expect_err("past expiry").kind(),
        ErrorKind::InvalidInput
    );
}

fn negative_cache_and_malformed(db: &TestDb) {
    let c = client(db, "negative");
    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    for garbage in [
        "",
        "hk_api_",
        "hk_api_00000000000000000000000000000000000000001Wtgbs",
        "Bearer x",
    ] {
        assert_eq!(check(&v, Kind::ApiKey, garbage, &[]), Status::Malformed);
    }
    assert_eq!(
        v.stats().store_queries,
        0,
        "malformed keys never reach the store"
    );

    let unknown = generate(Kind::ApiKey).expect("generate");
    assert_eq!(
        check(&v, Kind::ApiKey, unknown.expose(), &[]),
        Status::NotFound
    );
    let queries = v.stats().store_queries;
    for _ in 0..100 {
        assert_eq!(
            check(&v, Kind::ApiKey, unknown.expose(), &[]),
            Status::NotFound
        );
    }
    assert_eq!(
        v.stats().store_queries,
        queries,
        "the negative answer is cached"
    );

    // Storing that very key evicts the negative entry through the feed.
    db.store
        .insert_credential(
            Kind::ApiKey,
            &NewCredential {
                client_id: c,
                name: "imported".into(),
                scopes: Scopes::all(),
                expires_at: None,
                digest: unknown.digest(),
                display_prefix: unknown.display_prefix().to_owned(),
                metadata: None,
                rate_limit: None,
            },
            &actor(),
        )
        .expect("insert");
    settles(&v, Kind::ApiKey, unknown.expose(), Status::Valid);
    let hits = v.stats().cache_hits;
    assert_eq!(
        check(&v, Kind::ApiKey, unknown.expose(), &[]),
        Status::Valid
    );
    assert_eq!(
        v.stats().cache_hits,
        hits + 1,
        "the positive answer is cached"
    );
}

fn plaintext_never_stored(db: &TestDb) {
    let c = client(db, "secrets");
    let (key, _) = issue_key(db, Kind::ApiKey, c, "*", None);
    let (token, _) = issue_key(db, Kind::AiToken, c, "*", None);
    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    assert_eq!(check(&v, Kind::ApiKey, &key, &[]), Status::Valid);
    assert_eq!(check(&v, Kind::AiToken, &token, &[]), Status::Valid);
    drop(v);
    let everything = db.everything_stored();
    assert!(
        everything.contains(&key[..12]),
        "the dump is readable (display prefix present)"
    );
    for secret in [&key, &token] {
        assert!(
            !everything.contains(secret.as_str()),
            "plaintext found in the database"
        );
        assert!(
            !everything.contains(&secret[12..40]),
            "part of the secret body found in the database"
        );
    }
}

fn bad_input_is_rejected_cleanly(db: &TestDb) {
    let bad_client = db.store.create_client(
        &NewClient {
            name: " ".into(),
            email: "x@example.org".into(),
            organization: None,
        },
        &actor(),
    );
    assert_eq!(
        bad_client.expect_err("empty name").kind(),
        ErrorKind::InvalidInput
    );
    let bad_email = db.store.create_client(
        &NewClient {
            name: "n".into(),
            email: "not-an-email".into(),
            organization: None,
        },
        &actor(),
    );
    assert_eq!(
        bad_email.expect_err("bad email").kind(),
        ErrorKind::InvalidInput
    );
    let unknown_client = issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: 77_777,
            name: "x".into(),
            scopes: Scopes::all(),
            expires_at: None,
            rate_limit: None,
            metadata: None,
        },
        &actor(),
    );
    assert_eq!(
        unknown_client.expect_err("unknown client").kind(),
        ErrorKind::NotFound
    );
    let c = client(db, "weird");
    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    let (key, _) = issue_key(db, Kind::ApiKey, c, "*", None);
    let huge = "A".repeat(1 << 20);
    let mut with_nul = key.clone().into_bytes();
    with_nul[20] = 0;
    let non_utf8 = [&key.as_bytes()[..30], &[0xff, 0xfe], &key.as_bytes()[32..]].concat();
    for input in [huge.as_bytes(), &with_nul, &non_utf8] {
        assert_eq!(
            v.validate(&Request::new(Kind::ApiKey, input)).status,
            Status::Malformed
        );
    }
    let long_ip = "9".repeat(500);
    let long_endpoint = "é".repeat(1000);
    let r = Request::new(Kind::ApiKey, key.as_bytes())
        .ip(Some(&long_ip))
        .endpoint(Some(&long_endpoint));
    assert_eq!(v.validate(&r).status, Status::Valid);
    assert!(v.flush(Duration::from_secs(10)));
    let (rows, _) = db
        .store
        .usage_log(&UsageQuery {
            limit: 10,
            ..UsageQuery::default()
        })
        .expect("log");
    let stored = rows
        .iter()
        .find(|r| r.record.status == Status::Valid)
        .expect("valid row");
    assert_eq!(stored.record.ip.as_deref().map(str::len), Some(45));
    assert!(stored
        .record
        .endpoint
        .as_deref()
        .is_some_and(|e| e.len() <= 255 && e.starts_with('é')));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::TestDb::sqlite()); } )*
        }
        mod mysql {
            $( #[test] fn $name() { if let Some(db) = super::TestDb::mysql() { super::$name(&db); } } )*
        }
    };
}

conformance!(
    install_is_idempotent,
    lifecycle,
    cascade_deactivation,
    expiry,
    negative_cache_and_malformed,
    usage_and_stats,
    usage_counts_per_credential_in_one_batch,
    usage_log_filters_without_time_index,
    usage_text_round_trips,
    upgrade_to_one_usage_log_index,
    plaintext_never_stored,
    bad_input_is_rejected_cleanly,
);
