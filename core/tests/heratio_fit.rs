//! Fitting the AtoM Heratio that exists: its legacy key shapes validate by
//! digest (and cost no query while none are stored), hourly rate limits
//! hold across processes, metadata travels with a credential.

use std::time::Duration;

use heratio_keys_core::model::{now_ms, Metadata};
use heratio_keys_core::{
    digest, digest_hex, issue, IssueRequest, Kind, NewClient, Options, Request, Scopes, Status,
    Validation, Validator,
};
use heratio_keys_testkit::{actor, eventually, TestDb};

fn client(db: &TestDb) -> i64 {
    db.store
        .create_client(
            &NewClient {
                name: "heratio".into(),
                email: "ops@example.org".into(),
                organization: None,
            },
            &actor(),
        )
        .expect("client")
        .id
}

fn fast() -> Options {
    Options::builder()
        .poll_interval(Duration::from_millis(50))
        .build()
}

fn validate(v: &Validator, kind: Kind, key: &str, scopes: &[&str]) -> Validation {
    v.validate(&Request::new(kind, key.as_bytes()).scopes(scopes))
}

/// Stores a key the way an import from Heratio does: its digest, shape 1
/// (Heratio's 48 alphanumerics), scopes as given, and a feed row.
fn store_legacy(db: &TestDb, client_id: i64, key: &str, shape: u8, scopes: &str) {
    let hash = digest_hex(&digest(key.as_bytes()));
    db.exec(&format!(
        "INSERT INTO api_key (client_id, name, key_hash, key_prefix, scopes, is_active, created_at, usage_count, key_shape) \
         VALUES ({client_id}, 'legacy', '{hash}', '{}', '{scopes}', 1, {}, 0, {shape})",
        &key[..8],
        now_ms()
    ));
    db.exec(&format!(
        "INSERT INTO change_feed (credential_kind, key_hash, reason, created_at) VALUES (1, '{hash}', 'imported', {})",
        now_ms()
    ));
}

fn legacy_keys_validate_by_digest(db: &TestDb) {
    let c = client(db);
    let v = Validator::open(&db.dsn, fast()).expect("validator");
    let heratio = "Ab3dEfGh1jKlMn0pQrStUvWxYz0123456789aBcDeFgHiJkL";
    assert_eq!(heratio.len(), 48);
    let research = format!("rk_{}", "0123456789abcdef".repeat(4));
    let queries = v.stats().store_queries;
    for key in [heratio, research.as_str()] {
        assert_eq!(
            validate(&v, Kind::ApiKey, key, &[]).status,
            Status::Malformed
        );
    }
    assert_eq!(
        v.stats().store_queries,
        queries,
        "no legacy key stored: a legacy shape is garbage, and costs no query"
    );

    store_legacy(db, c, heratio, 1, "read,publish:write");
    assert!(
        eventually(Duration::from_secs(10), || {
            validate(&v, Kind::ApiKey, heratio, &["read"]).status == Status::Valid
        })
        .is_some(),
        "an imported key validates once the feed is read"
    );
    let valid = validate(&v, Kind::ApiKey, heratio, &["publish:write"]);
    assert_eq!(valid.status, Status::Valid);
    assert_eq!(
        validate(&v, Kind::ApiKey, heratio, &["write"]).status,
        Status::Forbidden
    );
    assert_eq!(
        validate(&v, Kind::AiToken, heratio, &[]).status,
        Status::Malformed,
        "a legacy key is never an AI token"
    );
    // Research keys are still not stored: no query for them.
    let queries = v.stats().store_queries;
    assert_eq!(
        validate(&v, Kind::ApiKey, &research, &[]).status,
        Status::Malformed
    );
    // An unknown key of a stored shape: one query, then the negative cache.
    let unknown = "Zz3dEfGh1jKlMn0pQrStUvWxYz0123456789aBcDeFgHiJkL";
    for _ in 0..3 {
        assert_eq!(
            validate(&v, Kind::ApiKey, unknown, &[]).status,
            Status::NotFound
        );
    }
    assert_eq!(
        v.stats().store_queries,
        queries + 1,
        "one query per distinct unknown digest"
    );

    // Revocation works like for any key.
    let id = valid.credential.expect("matched").id;
    db.store
        .revoke_credential(Kind::ApiKey, id, &actor())
        .expect("revoke");
    assert!(eventually(Duration::from_secs(10), || {
        validate(&v, Kind::ApiKey, heratio, &[]).status == Status::Revoked
    })
    .is_some());

    // NULL or [] scopes in Heratio: the key holds none.
    let bare = "Bare3dEfGh1jKlMn0pQrStUvWxYz0123456789aBcDeFgHiJ";
    assert_eq!(bare.len(), 48);
    store_legacy(db, c, bare, 1, "");
    assert!(eventually(Duration::from_secs(10), || {
        validate(&v, Kind::ApiKey, bare, &[]).status == Status::Valid
    })
    .is_some());
    assert_eq!(
        validate(&v, Kind::ApiKey, bare, &["read"]).status,
        Status::Forbidden
    );
}

fn issue_limited(db: &TestDb, limit: i64, metadata: Option<Metadata>) -> (String, i64) {
    let issued = issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: client(db),
            name: "limited".into(),
            scopes: Scopes::all(),
            expires_at: None,
            rate_limit: Some(limit),
            metadata,
        },
        &actor(),
    )
    .expect("issue");
    (issued.key.expose().to_owned(), issued.info.id)
}

fn rate_limits_hold_across_processes(db: &TestDb) {
    let limit = 50;
    let (key, _) = issue_limited(db, limit, None);
    // Separate validators have separate leases, as separate processes do.
    let a = Validator::open(&db.dsn, Options::default()).expect("a");
    let b = Validator::open(&db.dsn, Options::default()).expect("b");
    let mut accepted = 0;
    let mut last_remaining = limit;
    for i in 0..200 {
        let v = if i % 2 == 0 { &a } else { &b };
        let answer = validate(v, Kind::ApiKey, &key, &[]);
        let rate = answer.rate.expect("a limited key reports its budget");
        assert_eq!(rate.limit, limit);
        match answer.status {
            Status::Valid => {
                accepted += 1;
                assert!(rate.remaining < limit);
            }
            Status::RateLimited => {
                assert!((1..=3600).contains(&rate.reset_after), "{rate:?}");
                assert_eq!(rate.remaining, 0);
                assert_eq!(
                    answer.message(),
                    "Rate limit of 50 requests per hour exceeded."
                );
            }
            other => panic!("unexpected {other}"),
        }
        last_remaining = rate.remaining;
    }
    assert_eq!(accepted, limit, "exactly the limit, across both");
    assert_eq!(last_remaining, 0);
}

/// Four processes hammering one key at once: reservations must not deadlock
/// (a failed reservation fails open and would let requests through
/// uncounted), and exactly the limit is accepted.
fn concurrent_processes_accept_exactly_the_limit(db: &TestDb) {
    let limit = 40;
    let (key, _) = issue_limited(db, limit, None);
    let validators: Vec<Validator> = (0..4)
        .map(|_| Validator::open(&db.dsn, Options::default()).expect("validator"))
        .collect();
    let accepted = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|scope| {
        for v in &validators {
            let (key, accepted) = (&key, &accepted);
            scope.spawn(move || {
                for _ in 0..60 {
                    if validate(v, Kind::ApiKey, key, &[]).status == Status::Valid {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let errors: u64 = validators.iter().map(|v| v.stats().store_errors).sum();
    assert_eq!(errors, 0, "no reservation failed");
    assert_eq!(accepted.into_inner(), limit);
}

fn a_recycled_process_hands_back_its_budget(db: &TestDb) {
    let limit = 40;
    let (key, _) = issue_limited(db, limit, None);
    let first = Validator::open(&db.dsn, Options::default()).expect("first");
    assert_eq!(
        validate(&first, Kind::ApiKey, &key, &[]).status,
        Status::Valid
    );
    // It reserved a block; shutting down returns what it did not use.
    first.shutdown();
    drop(first);
    let second = Validator::open(&db.dsn, Options::default()).expect("second");
    let accepted = (0..100)
        .filter(|_| validate(&second, Kind::ApiKey, &key, &[]).status == Status::Valid)
        .count();
    assert_eq!(accepted, 39, "the first process used one; nothing was lost");
}

fn metadata_and_limits_change_through_the_feed(db: &TestDb) {
    let metadata = Metadata::parse(r#"{"heratio_key_id": 7, "heratio_user_id": 3}"#).expect("json");
    let (key, id) = issue_limited(db, 1000, Some(metadata));
    let v = Validator::open(&db.dsn, fast()).expect("validator");
    let answer = validate(&v, Kind::ApiKey, &key, &[]);
    let seen = answer.credential.as_ref().and_then(|c| c.metadata.clone());
    assert_eq!(
        seen.map(|m| m.as_str().to_owned()).as_deref(),
        Some(r#"{"heratio_key_id":7,"heratio_user_id":3}"#)
    );
    let view = heratio_keys_core::ValidationView::from(&answer);
    assert_eq!(view.rate_limit, Some(1000));
    assert_eq!(view.rate_remaining, Some(999));
    assert_eq!(view.metadata.expect("object")["heratio_user_id"], 3);

    let changed = Metadata::parse(r#"{"team": "harvest"}"#).expect("json");
    db.store
        .set_credential_metadata(Kind::ApiKey, id, Some(&changed), &actor())
        .expect("metadata");
    db.store
        .set_credential_rate_limit(Kind::ApiKey, id, None, &actor())
        .expect("unlimited");
    assert!(eventually(Duration::from_secs(10), || {
        let a = validate(&v, Kind::ApiKey, &key, &[]);
        a.rate.is_none()
            && a.credential
                .and_then(|c| c.metadata.clone())
                .is_some_and(|m| m == changed)
    })
    .is_some());
    assert!(db
        .store
        .set_credential_rate_limit(Kind::ApiKey, id, Some(-1), &actor())
        .is_err());
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
    legacy_keys_validate_by_digest,
    rate_limits_hold_across_processes,
    concurrent_processes_accept_exactly_the_limit,
    a_recycled_process_hands_back_its_budget,
    metadata_and_limits_change_through_the_feed,
);
