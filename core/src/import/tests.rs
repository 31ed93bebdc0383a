//! The import's mapping and plan on hand-made rows (no store).

use super::*;

fn row(id: i64) -> SourceKey {
    SourceKey {
        id,
        user_id: 3,
        name: "harvester".into(),
        api_key: "ab".repeat(32),
        api_key_prefix: "Ab3dEfGh".into(),
        scopes: Some(r#"["read","write"]"#.into()),
        rate_limit: Some(500),
        expires_at: Some("2027-01-31 12:00:00".into()),
        last_used_at: None,
        is_active: Some(1),
        created_at: Some("2026-01-02 03:04:05".into()),
    }
}

#[test]
fn a_row_maps_field_by_field() {
    let k = map_key(&row(7)).unwrap();
    assert_eq!(k.name, "harvester");
    assert_eq!(k.shape, KeyShape::HeratioRandom);
    assert_eq!(k.scopes.as_slice(), ["read", "write"]);
    assert_eq!(k.rate_limit, Some(500));
    // 2027-01-31T12:00:00Z is 1 801 396 800 s; accepted through its second.
    assert_eq!(k.expires_at, Some(1_801_396_801_000));
    assert_eq!(k.created_at, Some(1_767_323_045_000));
    assert!(k.active && k.last_used_at.is_none());
    assert_eq!(
        k.metadata(None).unwrap().as_str(),
        r#"{"heratio_key_id":7,"heratio_user_id":3}"#
    );
    let research = SourceKey {
        api_key_prefix: "rk_0a9f3".into(),
        scopes: None,
        rate_limit: None,
        is_active: Some(0),
        ..row(8)
    };
    let k = map_key(&research).unwrap();
    assert_eq!(k.shape, KeyShape::HeratioResearch);
    assert!(k.scopes.as_slice().is_empty());
    assert_eq!(k.rate_limit, Some(HERATIO_DEFAULT_RATE_LIMIT));
    assert!(!k.active);
    for inactive in [None, Some(2)] {
        assert!(
            !map_key(&SourceKey {
                is_active: inactive,
                ..row(9)
            })
            .unwrap()
            .active
        );
    }
    for empty in ["[]", "null"] {
        let k = map_key(&SourceKey {
            scopes: Some(empty.into()),
            ..row(9)
        })
        .unwrap();
        assert!(k.scopes.as_slice().is_empty());
    }
    let blank = map_key(&SourceKey {
        name: "  ".into(),
        ..row(10)
    })
    .unwrap();
    assert_eq!(blank.name, "Heratio key 10");
    let upper = map_key(&SourceKey {
        api_key: "AB".repeat(32),
        ..row(11)
    })
    .unwrap();
    assert_eq!(upper.digest, map_key(&row(11)).unwrap().digest);
}

#[test]
fn bad_rows_say_why_without_the_digest() {
    let cases = [
        (
            SourceKey {
                api_key: "ab".repeat(31),
                ..row(1)
            },
            "SHA-256",
        ),
        (
            SourceKey {
                api_key: "zz".repeat(32),
                ..row(1)
            },
            "SHA-256",
        ),
        (
            SourceKey {
                scopes: Some(r#""read""#.into()),
                ..row(1)
            },
            "array",
        ),
        (
            SourceKey {
                scopes: Some(r#"{"a":"read"}"#.into()),
                ..row(1)
            },
            "array",
        ),
        (
            SourceKey {
                scopes: Some("[true]".into()),
                ..row(1)
            },
            "array",
        ),
        (
            SourceKey {
                scopes: Some("[read".into()),
                ..row(1)
            },
            "not JSON",
        ),
        (
            SourceKey {
                scopes: Some(r#"["read write"]"#.into()),
                ..row(1)
            },
            "valid scope",
        ),
        (
            SourceKey {
                scopes: Some(r#"["*"]"#.into()),
                ..row(1)
            },
            "every scope",
        ),
        (
            SourceKey {
                rate_limit: Some(-1),
                ..row(1)
            },
            "rate_limit",
        ),
        (
            SourceKey {
                expires_at: Some("soon".into()),
                ..row(1)
            },
            "expires_at",
        ),
        (
            SourceKey {
                api_key_prefix: "rk_xyz12".into(),
                ..row(1)
            },
            "prefix",
        ),
        (
            SourceKey {
                api_key_prefix: "hk_api_k".into(),
                ..row(1)
            },
            "prefix",
        ),
    ];
    for (bad, why) in cases {
        let reason = map_key(&bad).unwrap_err();
        assert!(reason.contains(why), "{reason}");
        assert!(!reason.contains(&bad.api_key), "{reason}");
    }
    assert!(!format!("{:?}", row(1)).contains(&"ab".repeat(32)));
}

#[test]
fn datetimes_are_naive_utc() {
    assert_eq!(
        parse_datetime("x", "1970-01-01 00:00:01"),
        Ok(Some((1000, 0)))
    );
    assert_eq!(
        parse_datetime("x", "1970-01-01T00:00:01.25"),
        Ok(Some((1000, 250)))
    );
    assert_eq!(parse_datetime("x", "0000-00-00 00:00:00"), Ok(None));
    for bad in [
        "2026-02-30 00:00:00",
        "2026-01-01",
        "2026-01-01 25:00:00",
        "",
    ] {
        assert!(parse_datetime("x", bad).is_err(), "{bad}");
    }
}

#[test]
fn plans_skip_unknown_users_and_duplicates_and_name_clients() {
    let source = HeratioSource {
        describe: "sqlite:/tmp/h.db".into(),
        keys: vec![
            row(1),
            SourceKey {
                user_id: 4,
                api_key: "cd".repeat(32),
                ..row(2)
            },
            SourceKey {
                user_id: 99,
                api_key: "ef".repeat(32),
                ..row(3)
            },
            row(4),
        ],
        users: Some(vec![
            SourceUser {
                id: 3,
                username: Some("alice".into()),
                email: Some("a@example.org".into()),
            },
            SourceUser {
                id: 4,
                username: None,
                email: Some("not-an-address".into()),
            },
        ]),
    };
    let p = plan(&source, None);
    assert_eq!(p.rows, 4);
    assert_eq!(p.keys.len(), 2);
    let reasons: Vec<_> = p
        .skipped
        .iter()
        .map(|s| (s.heratio_key_id, s.reason.as_str()))
        .collect();
    assert!(
        reasons[0].0 == 3 && reasons[0].1.contains("unknown user"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].0 == 4 && reasons[1].1.contains("Heratio key 1"),
        "{reasons:?}"
    );
    let ImportTarget::PerUser(clients) = &p.target else {
        panic!("per user");
    };
    assert_eq!(clients[&3].name, "alice");
    assert_eq!(clients[&3].email, "a@example.org");
    assert_eq!(clients[&4].name, "Heratio user 4");
    assert_eq!(clients[&4].email, "heratio-user-4@heratio.invalid");
    // Without a user table, every user is known and gets placeholders.
    let p = plan(
        &HeratioSource {
            users: None,
            ..source
        },
        Some(5),
    );
    assert_eq!(p.keys.len(), 3);
    assert_eq!(p.target, ImportTarget::Client(5));
}
