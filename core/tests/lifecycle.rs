//! A credential's life after issue: rotation with grace, IP allowlists,
//! renaming, client updates and reactivation, and the maintenance pass
//! (idle auto-revoke), tested with a clock the test moves.

use std::time::Duration;

use heratio_keys_core::model::{now_ms, AllowedIps, ClientUpdate, DAY_MS};
use heratio_keys_core::{
    issue, rotate, IssueRequest, Kind, NewClient, Options, Request, Scopes, Status, Validator,
};
use heratio_keys_testkit::{actor, eventually, TestDb};

fn client(db: &TestDb) -> i64 {
    db.store
        .create_client(
            &NewClient {
                name: "lifecycle".into(),
                email: "ops@example.org".into(),
                organization: None,
            },
            &actor(),
        )
        .expect("client")
        .id
}

fn key(db: &TestDb, client_id: i64) -> (String, i64) {
    let issued = issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id,
            name: "harvester".into(),
            scopes: Scopes::parse("read").expect("scopes"),
            expires_at: None,
            rate_limit: Some(500),
            metadata: None,
        },
        &actor(),
    )
    .expect("issue");
    (issued.key.expose().to_owned(), issued.info.id)
}

fn fast() -> Options {
    Options::builder()
        .poll_interval(Duration::from_millis(50))
        .build()
}

fn status(v: &Validator, key: &str, ip: Option<&str>) -> Status {
    v.validate(&Request::new(Kind::ApiKey, key.as_bytes()).ip(ip))
        .status
}

fn settles(v: &Validator, key: &str, ip: Option<&str>, want: Status) {
    assert!(
        eventually(Duration::from_secs(10), || status(v, key, ip) == want).is_some(),
        "never {want}; last {}",
        status(v, key, ip)
    );
}

fn rotation_keeps_both_for_the_grace(db: &TestDb) {
    let c = client(db);
    let (old, old_id) = key(db, c);
    let allow = AllowedIps::parse("192.0.2.0/24").expect("net");
    db.store
        .set_credential_allowed_ips(Kind::ApiKey, old_id, Some(&allow), &actor())
        .expect("allowlist");
    let v = Validator::open(&db.dsn, fast()).expect("validator");
    let ip = Some("192.0.2.9");
    assert_eq!(status(&v, &old, ip), Status::Valid);
    let rotated =
        rotate(db.store.as_ref(), Kind::ApiKey, old_id, 3_600_000, &actor()).expect("rotate");
    let new = rotated.key.expose().to_owned();
    assert_eq!(rotated.info.rotated_from, Some(old_id));
    assert_eq!(rotated.info.name, "harvester");
    assert_eq!(rotated.info.rate_limit, Some(500));
    assert_eq!(rotated.info.allowed_ips.as_ref(), Some(&allow));
    assert_eq!(rotated.info.scopes.as_slice(), ["read"]);
    assert_eq!(rotated.info.expires_at, None);
    let ends = rotated
        .replaced
        .expires_at
        .expect("the old key now expires");
    assert!((ends - now_ms() - 3_600_000).abs() < 60_000);
    // During the grace both work.
    assert_eq!(status(&v, &new, ip), Status::Valid);
    assert_eq!(status(&v, &old, ip), Status::Valid);
    // Rotating again without grace ends the previous one at once.
    let next = rotate(
        db.store.as_ref(),
        Kind::ApiKey,
        rotated.info.id,
        0,
        &actor(),
    )
    .expect("rotate");
    settles(&v, &new, ip, Status::Expired);
    assert_eq!(status(&v, next.key.expose(), ip), Status::Valid);
    assert!(rotate(db.store.as_ref(), Kind::ApiKey, 999_999, 0, &actor()).is_err());
}

fn allowlists_refuse_outside_and_unknown(db: &TestDb) {
    let c = client(db);
    let (k, id) = key(db, c);
    let v = Validator::open(&db.dsn, fast()).expect("validator");
    assert_eq!(
        status(&v, &k, None),
        Status::Valid,
        "no allowlist: anywhere"
    );
    let allow = AllowedIps::parse("198.51.100.0/24,2001:db8::/32").expect("nets");
    db.store
        .set_credential_allowed_ips(Kind::ApiKey, id, Some(&allow), &actor())
        .expect("allowlist");
    settles(&v, &k, Some("203.0.113.1"), Status::IpDenied);
    assert_eq!(status(&v, &k, None), Status::IpDenied, "unknown address");
    assert_eq!(status(&v, &k, Some("198.51.100.77")), Status::Valid);
    assert_eq!(status(&v, &k, Some("2001:db8:1::5")), Status::Valid);
    let denied = v.validate(&Request::new(Kind::ApiKey, k.as_bytes()).ip(Some("203.0.113.1")));
    assert_eq!(denied.status.http_status(), 403);
    assert_eq!(
        denied.message(),
        "API key not allowed from this IP address."
    );
    db.store
        .set_credential_allowed_ips(Kind::ApiKey, id, None, &actor())
        .expect("any");
    settles(&v, &k, Some("203.0.113.1"), Status::Valid);
    let renamed = db
        .store
        .rename_credential(Kind::ApiKey, id, "  nightly harvest ", &actor())
        .expect("rename");
    assert_eq!(renamed.name, "nightly harvest");
    assert!(db
        .store
        .rename_credential(Kind::ApiKey, id, "", &actor())
        .is_err());
}

fn clients_update_and_reactivate(db: &TestDb) {
    let c = client(db);
    let (k, _) = key(db, c);
    let updated = db
        .store
        .update_client(
            c,
            &ClientUpdate {
                email: Some("new@example.org".into()),
                organization: Some(Some("Archive".into())),
                idle_revoke_ms: Some(Some(30 * DAY_MS)),
                ..ClientUpdate::default()
            },
            &actor(),
        )
        .expect("update");
    assert_eq!(updated.email, "new@example.org");
    assert_eq!(updated.name, "lifecycle", "untouched");
    assert_eq!(updated.idle_revoke_ms, Some(30 * DAY_MS));
    assert!(db
        .store
        .update_client(
            c,
            &ClientUpdate {
                email: Some("nope".into()),
                ..ClientUpdate::default()
            },
            &actor()
        )
        .is_err());
    assert!(
        db.store.reactivate_client(c, &actor()).is_err(),
        "active already"
    );
    db.store.deactivate_client(c, &actor()).expect("deactivate");
    let back = db.store.reactivate_client(c, &actor()).expect("reactivate");
    assert!(back.active && back.deactivated_at.is_none());
    let v = Validator::open(&db.dsn, fast()).expect("validator");
    assert_eq!(
        status(&v, &k, None),
        Status::Revoked,
        "its keys stay revoked"
    );
    let (fresh, _) = key(db, c);
    assert_eq!(
        status(&v, &fresh, None),
        Status::Valid,
        "it can hold new ones"
    );
    let audit = db.store.audit_log(20).expect("audit");
    for action in ["client.update", "client.reactivate"] {
        assert!(audit.iter().any(|a| a.action == action), "{action}");
    }
}

fn maintenance_revokes_idle_keys_on_a_moved_clock(db: &TestDb) {
    let c = client(db);
    let (k, id) = key(db, c);
    let quiet = client(db); // no policy: never revoked
    let (kept, _) = key(db, quiet);
    db.store
        .update_client(
            c,
            &ClientUpdate {
                idle_revoke_ms: Some(Some(30 * DAY_MS)),
                ..ClientUpdate::default()
            },
            &actor(),
        )
        .expect("policy");
    let start = now_ms();
    let soon = db
        .store
        .maintain(start + 25 * DAY_MS, true, &actor())
        .expect("maintain");
    assert!(soon.revoked.is_empty());
    assert_eq!(
        soon.revoke_soon.iter().map(|i| i.id).collect::<Vec<_>>(),
        [id]
    );
    let v = Validator::open(&db.dsn, fast()).expect("validator");
    assert_eq!(status(&v, &k, None), Status::Valid);
    let dry = db
        .store
        .maintain(start + 31 * DAY_MS, false, &actor())
        .expect("dry run");
    assert_eq!(dry.revoked.iter().map(|i| i.id).collect::<Vec<_>>(), [id]);
    assert_eq!(
        status(&v, &k, None),
        Status::Valid,
        "a dry run revokes nothing"
    );
    let done = db
        .store
        .maintain(start + 31 * DAY_MS, true, &actor())
        .expect("maintain");
    assert_eq!(done.revoked.iter().map(|i| i.id).collect::<Vec<_>>(), [id]);
    settles(&v, &k, None, Status::Revoked);
    assert_eq!(status(&v, &kept, None), Status::Valid);
    let again = db
        .store
        .maintain(start + 31 * DAY_MS, true, &actor())
        .expect("again");
    assert!(again.revoked.is_empty(), "idempotent");
    // Expiring soon.
    let (_, expiring) = key(db, quiet);
    db.store
        .set_credential_expiry(
            Kind::ApiKey,
            expiring,
            Some(now_ms() + 3 * DAY_MS),
            &actor(),
        )
        .expect("expiry");
    let report = db
        .store
        .maintain(now_ms(), false, &actor())
        .expect("report");
    assert!(report.expiring_soon.iter().any(|i| i.id == expiring));
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
    rotation_keeps_both_for_the_grace,
    allowlists_refuse_outside_and_unknown,
    clients_update_and_reactivate,
    maintenance_revokes_idle_keys_on_a_moved_clock,
);
