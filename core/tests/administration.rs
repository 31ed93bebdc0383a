//! Administration in the store: admin accounts with roles (and the last
//! admin protected), audit-log search, and usage exported as a stream.

use heratio_keys_core::model::now_ms;
use heratio_keys_core::{
    Actor, AdminRole, AuditQuery, ErrorKind, Kind, NewClient, Source, Status, UsageQuery,
    UsageRecord,
};
use heratio_keys_testkit::{actor, TestDb};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn admins_have_roles_and_the_last_admin_stays(db: &TestDb) {
    let s = &db.store;
    let alice = s
        .create_admin("alice", HASH, AdminRole::Admin, &actor())
        .expect("alice");
    let bob = s
        .create_admin("bob", HASH, AdminRole::Viewer, &actor())
        .expect("bob");
    assert_eq!(
        (alice.role, bob.role),
        (AdminRole::Admin, AdminRole::Viewer)
    );
    assert!(alice.active && bob.active);
    let names: Vec<_> = s
        .list_admins()
        .expect("list")
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let last = s
        .set_admin_role("alice", AdminRole::Operator, &actor())
        .expect_err("refused");
    assert_eq!(last.kind(), ErrorKind::Conflict, "{last}");
    let last = s
        .set_admin_active("alice", false, &actor())
        .expect_err("refused");
    assert_eq!(last.kind(), ErrorKind::Conflict, "{last}");
    s.set_admin_role("bob", AdminRole::Admin, &actor())
        .expect("promote bob");
    let demoted = s
        .set_admin_role("alice", AdminRole::Viewer, &actor())
        .expect("now allowed");
    assert!(
        demoted.updated_at > alice.updated_at,
        "sessions end on a role change"
    );
    let disabled = s
        .set_admin_active("alice", false, &actor())
        .expect("disable");
    assert!(!disabled.active);
    assert!(
        s.set_admin_active("bob", false, &actor()).is_err(),
        "bob is the last active admin"
    );
    assert_eq!(
        s.set_admin_role("nobody", AdminRole::Admin, &actor())
            .expect_err("refused")
            .kind(),
        ErrorKind::NotFound
    );
    assert!(
        AdminRole::Admin.allows(AdminRole::Operator)
            && !AdminRole::Viewer.allows(AdminRole::Operator)
    );
    let actions: Vec<_> = s
        .audit_query(&AuditQuery {
            target_type: Some("admin_user".into()),
            limit: 50,
            ..AuditQuery::default()
        })
        .expect("audit")
        .0
        .into_iter()
        .map(|a| a.action)
        .collect();
    for action in ["admin.create", "admin.role", "admin.disable"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

fn the_audit_log_can_be_searched(db: &TestDb) {
    let s = &db.store;
    let web = Actor {
        name: "carol".into(),
        source: Source::Web,
        ip: Some("192.0.2.4".into()),
    };
    let c = s
        .create_client(
            &NewClient {
                name: "searched".into(),
                email: "a@example.org".into(),
                organization: None,
            },
            &web,
        )
        .expect("client");
    s.deactivate_client(c.id, &actor()).expect("deactivate");
    for i in 0..5 {
        s.record_audit(&web, "admin.login", "admin_user", Some(i), None)
            .expect("row");
    }
    let search = |q: AuditQuery| {
        s.audit_query(&AuditQuery { limit: 100, ..q })
            .expect("query")
    };
    let (rows, total) = search(AuditQuery {
        actor: Some("carol".into()),
        ..AuditQuery::default()
    });
    assert_eq!(total, 6);
    assert!(rows.iter().all(|r| r.actor == "carol"));
    assert_eq!(
        search(AuditQuery {
            action: Some("client.".into()),
            ..AuditQuery::default()
        })
        .1,
        2
    );
    assert_eq!(
        search(AuditQuery {
            action: Some("client.deactivate".into()),
            ..AuditQuery::default()
        })
        .1,
        1
    );
    assert_eq!(
        search(AuditQuery {
            target_type: Some("client".into()),
            target_id: Some(c.id),
            ..AuditQuery::default()
        })
        .1,
        2
    );
    assert_eq!(
        search(AuditQuery {
            until: Some(0),
            ..AuditQuery::default()
        })
        .1,
        0
    );
    let (page, total) = s
        .audit_query(&AuditQuery {
            action: Some("admin.login".into()),
            limit: 2,
            offset: 2,
            ..AuditQuery::default()
        })
        .expect("page");
    assert_eq!((page.len(), total), (2, 5));
    assert!(page[0].id > page[1].id, "newest first");
}

fn usage_exports_as_a_stream(db: &TestDb) {
    let at = now_ms();
    let batch: Vec<UsageRecord> = (0..2500)
        .map(|i| UsageRecord {
            kind: Kind::ApiKey,
            credential_id: Some(1 + i % 3),
            client_id: Some(1),
            at: at + i,
            ip: Some("192.0.2.1".into()),
            endpoint: Some(format!("/api/{i}")),
            status: if i % 10 == 0 {
                Status::Forbidden
            } else {
                Status::Valid
            },
        })
        .collect();
    db.store.write_usage(&batch).expect("rows");
    let mut seen = Vec::new();
    let n = db
        .store
        .export_usage(&UsageQuery::default(), &mut |e| {
            seen.push(e.record.at);
            Ok(())
        })
        .expect("export");
    assert_eq!(n, 2500);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "oldest first, each once"
    );
    let forbidden = db
        .store
        .export_usage(
            &UsageQuery {
                status: Some(Status::Forbidden),
                ..UsageQuery::default()
            },
            &mut |_| Ok(()),
        )
        .expect("filtered");
    assert_eq!(forbidden, 250);
    let mut count = 0;
    let stopped = db.store.export_usage(&UsageQuery::default(), &mut |_| {
        count += 1;
        if count == 10 {
            Err(heratio_keys_core::Error::new(
                ErrorKind::Internal,
                "sink closed",
            ))
        } else {
            Ok(())
        }
    });
    assert!(
        stopped.is_err() && count == 10,
        "a failing sink stops the export"
    );
}

/// A batch large enough to be sent as one statement with inlined values
/// (MySQL) keeps every byte of IPs and endpoints: quotes, backslashes,
/// placeholders and non-ASCII text are data, never SQL.
fn usage_text_survives_large_batches(db: &TestDb) {
    let at = now_ms();
    let endpoints = [
        "/it's",
        "/a\\'b",
        "/q?x=1&y='?'",
        "/caf\u{e9}/\u{1f511}",
        "",
        "/--;DROP TABLE x",
    ];
    let batch: Vec<UsageRecord> = (0..60)
        .map(|i| UsageRecord {
            kind: Kind::ApiKey,
            credential_id: Some(1),
            client_id: Some(1),
            at: at + i,
            ip: (i % 2 == 0).then(|| "2001:db8::'1".to_owned()),
            endpoint: Some(
                endpoints[usize::try_from(i).expect("small") % endpoints.len()].to_owned(),
            ),
            status: Status::Valid,
        })
        .collect();
    db.store.write_usage(&batch).expect("rows");
    let mut seen = Vec::new();
    db.store
        .export_usage(&UsageQuery::default(), &mut |e| {
            seen.push((e.record.at, e.record.ip, e.record.endpoint));
            Ok(())
        })
        .expect("export");
    let wanted: Vec<_> = batch
        .into_iter()
        .map(|r| (r.at, r.ip, r.endpoint))
        .collect();
    assert_eq!(seen, wanted);
}

fn retention_prunes_raw_rows_and_keeps_statistics(db: &TestDb) {
    let now = now_ms();
    let day = heratio_keys_core::model::DAY_MS;
    let row = |at: i64, credential: Option<i64>| UsageRecord {
        kind: Kind::ApiKey,
        credential_id: credential,
        client_id: credential.map(|_| 1),
        at,
        ip: Some("192.0.2.1".into()),
        endpoint: None,
        status: if credential.is_some() {
            Status::Valid
        } else {
            Status::NotFound
        },
    };
    let mut batch: Vec<UsageRecord> = (0..12_000)
        .map(|i| row(now - 100 * day + i, Some(1)))
        .collect();
    batch.extend((0..300).map(|i| row(now - 10 * day + i, Some(1))));
    batch.extend((0..50).map(|i| row(now - 100 * day + i, None)));
    db.store.write_usage(&batch).expect("rows");
    let stats = |days: u32| {
        db.store
            .usage_stats(&heratio_keys_core::StatsQuery {
                client_id: None,
                now,
                days,
                top: 5,
            })
            .expect("stats")
    };
    let before = stats(120);
    assert_eq!(before.validations, 12_350);
    let pruned = db
        .store
        .prune(&heratio_keys_core::Retention::defaults())
        .expect("prune");
    assert_eq!(pruned.usage_rows, 12_000, "{pruned:?}");
    assert_eq!(pruned.rejected_rows, 1, "one minute of rejections");
    assert_eq!(pruned.audit_rows, 0, "audit kept unless asked");
    let left = db
        .store
        .usage_log(&UsageQuery {
            limit: 1,
            ..UsageQuery::default()
        })
        .expect("log")
        .1;
    assert_eq!(left, 300);
    let after = stats(120);
    assert_eq!(
        after.validations, 12_300,
        "rollups keep the statistics (rejections are raw)"
    );
    assert_eq!(after.valid_validations, before.valid_validations);
    let again = db
        .store
        .prune(&heratio_keys_core::Retention::defaults())
        .expect("again");
    assert_eq!(again.usage_rows, 0, "idempotent");
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
    admins_have_roles_and_the_last_admin_stays,
    the_audit_log_can_be_searched,
    usage_exports_as_a_stream,
    usage_text_survives_large_batches,
    retention_prunes_raw_rows_and_keeps_statistics,
);
