//! Usage recorded and read back: every validation logged or counted,
//! counters and statistics; the log with one secondary index (schema 9):
//! time bounds through the primary key, the client filter through the
//! credential index, newest recorded first, retention by time, and text
//! that must survive MySQL's `LOAD DATA` path byte for byte.

use heratio_keys_core::model::{Retention, UsageRecord, DAY_MS, HOUR_MS, MINUTE_MS};
use heratio_keys_core::store::UsageQuery;
use heratio_keys_core::{model, ErrorKind, Kind, Request, StatsQuery, Status, Validator};
use heratio_keys_testkit::TestDb;

use super::{check, client, fast_options, issue_key};

fn record(kind: Kind, id: i64, client: i64, at: i64, endpoint: Option<&str>) -> UsageRecord {
    UsageRecord {
        kind,
        credential_id: Some(id),
        client_id: Some(client),
        at,
        ip: Some("198.51.100.7".to_owned()),
        endpoint: endpoint.map(str::to_owned),
        status: Status::Valid,
    }
}

/// How many usage-log rows match `query`.
fn total(db: &TestDb, query: UsageQuery) -> u64 {
    ids_at(db, &query).1
}

fn since(at: i64) -> UsageQuery {
    UsageQuery {
        since: Some(at),
        ..UsageQuery::default()
    }
}

fn until(at: i64) -> UsageQuery {
    UsageQuery {
        until: Some(at),
        ..UsageQuery::default()
    }
}

fn of_client(client: i64) -> UsageQuery {
    UsageQuery {
        client_id: Some(client),
        ..UsageQuery::default()
    }
}

fn ids_at(db: &TestDb, query: &UsageQuery) -> (Vec<i64>, u64) {
    let (rows, count) = db
        .store
        .usage_log(&UsageQuery {
            limit: 10_000,
            ..query.clone()
        })
        .expect("usage log");
    (rows.iter().map(|r| r.record.at).collect(), count)
}

pub(crate) fn usage_and_stats(db: &TestDb) {
    let c = client(db, "usage");
    let quiet = client(db, "quiet");
    let (key, key_id) = issue_key(db, Kind::ApiKey, c, "read", None);
    let (token, _) = issue_key(db, Kind::AiToken, quiet, "*", None);
    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    let n = 250;
    for i in 0..n {
        let scopes: &[&str] = if i % 10 == 0 { &["write"] } else { &["read"] };
        let r = Request::new(Kind::ApiKey, key.as_bytes())
            .scopes(scopes)
            .ip(Some("192.0.2.10"))
            .endpoint(Some("/api/v1/records"));
        let _ = v.validate(&r);
    }
    let _ = check(&v, Kind::ApiKey, "garbage", &[]);
    let _ = check(&v, Kind::AiToken, &token, &[]);
    drop(v); // closing flushes
    let total = n + 2;

    let (rows, count) = db
        .store
        .usage_log(&UsageQuery {
            limit: 1000,
            ..UsageQuery::default()
        })
        .expect("usage log");
    let (rejected, rejected_count) = db
        .store
        .rejected_usage(&UsageQuery {
            limit: 1000,
            ..UsageQuery::default()
        })
        .expect("rejected usage");
    assert_eq!(
        count + rejected_count,
        total as u64,
        "every validation recorded: a row per stored credential's, a count for the rest"
    );
    assert_eq!(rows.len(), total - 1);
    let valid_rows = rows
        .iter()
        .filter(|r| r.record.status == Status::Valid)
        .count();
    assert_eq!(valid_rows, n - n / 10 + 1);
    assert!(rows
        .iter()
        .any(|r| r.record.status == Status::Forbidden && r.record.credential_id == Some(key_id)));
    assert_eq!(
        rejected
            .iter()
            .map(|r| (r.kind, r.status, r.ip.as_str(), r.count))
            .collect::<Vec<_>>(),
        [(Kind::ApiKey, Status::Malformed, "", 1)],
        "the malformed key is counted, not logged"
    );
    let with_ip = rows
        .iter()
        .filter(|r| r.record.ip.as_deref() == Some("192.0.2.10"))
        .count();
    assert_eq!(with_ip, n);
    assert!(rows
        .iter()
        .any(|r| r.record.endpoint.as_deref() == Some("/api/v1/records")));

    let info = db.store.get_credential(Kind::ApiKey, key_id).expect("get");
    assert_eq!(
        info.usage_count,
        (n - n / 10) as i64,
        "usage_count counts accepted uses only"
    );
    assert!(info.last_used_at.is_some_and(|t| t <= model::now_ms()));

    let stats = db
        .store
        .usage_stats(&StatsQuery::last_30_days())
        .expect("stats");
    assert_eq!((stats.clients, stats.active_clients), (2, 2));
    assert_eq!((stats.active_api_keys, stats.active_ai_tokens), (1, 1));
    assert_eq!(stats.validations, total as i64);
    assert_eq!(stats.valid_validations, valid_rows as i64);
    assert_eq!(stats.per_day.len(), 30);
    assert_eq!(
        stats.per_day.last().map(|d| d.total),
        Some(total as i64),
        "all of today's"
    );
    assert_eq!(
        stats.per_day.last().map(|d| d.date.clone()),
        Some(model::utc_date(model::now_ms()))
    );
    assert_eq!(
        stats.top.first().map(|t| (t.kind, t.id)),
        Some((Kind::ApiKey, key_id))
    );

    let narrowed = db
        .store
        .usage_stats(&StatsQuery {
            client_id: Some(quiet),
            ..StatsQuery::last_30_days()
        })
        .expect("stats");
    assert_eq!(
        (
            narrowed.clients,
            narrowed.active_api_keys,
            narrowed.active_ai_tokens
        ),
        (1, 0, 1)
    );
    assert_eq!(narrowed.validations, 1);
    assert_eq!(
        db.store
            .usage_stats(&StatsQuery {
                client_id: Some(424_242),
                ..StatsQuery::last_30_days()
            })
            .expect_err("unknown client")
            .kind(),
        ErrorKind::NotFound
    );

    let ai_only = db
        .store
        .usage_log(&UsageQuery {
            kind: Some(Kind::AiToken),
            limit: 10,
            ..UsageQuery::default()
        })
        .expect("by kind");
    assert_eq!(ai_only.1, 1);
    assert!(ai_only.0.iter().all(|r| r.record.kind == Kind::AiToken));

    let filtered = db
        .store
        .usage_log(&UsageQuery {
            status: Some(Status::Forbidden),
            limit: 5,
            ..UsageQuery::default()
        })
        .expect("filtered");
    assert_eq!(filtered.1, (n / 10) as u64);
    assert_eq!(filtered.0.len(), 5, "limit applies, total counts all");
}

pub(crate) fn usage_counts_per_credential_in_one_batch(db: &TestDb) {
    let c = client(db, "counts");
    let keys = [
        (Kind::ApiKey, issue_key(db, Kind::ApiKey, c, "*", None), 3),
        (Kind::ApiKey, issue_key(db, Kind::ApiKey, c, "*", None), 5),
        (Kind::AiToken, issue_key(db, Kind::AiToken, c, "*", None), 7),
        (Kind::AiToken, issue_key(db, Kind::AiToken, c, "*", None), 0),
    ];
    let before = model::now_ms();
    let v = Validator::open(&db.dsn, fast_options()).expect("open validator");
    for (kind, (key, _), n) in &keys {
        for _ in 0..*n {
            assert_eq!(check(&v, *kind, key, &[]), Status::Valid);
        }
    }
    drop(v); // one flush: all of it in one batch
    for (kind, (_, id), n) in &keys {
        let info = db.store.get_credential(*kind, *id).expect("get");
        assert_eq!(info.usage_count, *n, "{kind} {id}");
        if *n == 0 {
            assert_eq!(info.last_used_at, None);
        } else {
            assert!(info
                .last_used_at
                .is_some_and(|t| t >= before && t <= model::now_ms()));
        }
    }
}

pub(crate) fn usage_log_filters_without_time_index(db: &TestDb) {
    let a = client(db, "archive-a");
    let b = client(db, "archive-b");
    let (_, key_a) = issue_key(db, Kind::ApiKey, a, "read", None);
    let (_, token_a) = issue_key(db, Kind::AiToken, a, "read", None);
    let (_, key_b) = issue_key(db, Kind::ApiKey, b, "read", None);
    let now = model::now_ms();
    let day = |d: i64| now - d * DAY_MS;

    // Batches as writers append them: one record a minute for each of
    // three days and for 100 days ago; then a record written 39 minutes
    // late (within the documented hour), then today's.
    let block = |d: i64| -> Vec<UsageRecord> {
        (0..60)
            .flat_map(|minute| {
                let at = day(d) - 2 * HOUR_MS + minute * MINUTE_MS;
                [
                    record(Kind::ApiKey, key_a, a, at, None),
                    record(Kind::AiToken, token_a, a, at, None),
                    record(Kind::ApiKey, key_b, b, at, None),
                ]
            })
            .collect()
    };
    let old: Vec<UsageRecord> = (0..60)
        .map(|minute| record(Kind::ApiKey, key_b, b, day(100) + minute * MINUTE_MS, None))
        .collect();
    db.store.write_usage(&old).expect("write");
    db.store.write_usage(&block(2)).expect("write");
    db.store.write_usage(&block(1)).expect("write");
    let late_at = day(1) - 2 * HOUR_MS + 20 * MINUTE_MS;
    db.store
        .write_usage(&[record(Kind::ApiKey, key_a, a, late_at, None)])
        .expect("write late");
    db.store.write_usage(&block(0)).expect("write");
    let newest = day(0) - 2 * HOUR_MS + 59 * MINUTE_MS;

    let all = ids_at(db, &UsageQuery::default());
    assert_eq!(all.1, 60 + 3 * 180 + 1);
    assert_eq!(all.0.first(), Some(&newest), "newest recorded first");

    // Yesterday, by time: its 180 rows and the late one, nothing else.
    let yesterday = UsageQuery {
        since: Some(day(1) - 3 * HOUR_MS),
        until: Some(day(1) + HOUR_MS),
        ..UsageQuery::default()
    };
    let (times, count) = ids_at(db, &yesterday);
    assert_eq!(count, 181);
    assert!(times
        .iter()
        .all(|t| (day(1) - 3 * HOUR_MS..day(1) + HOUR_MS).contains(t)));
    assert!(
        times.contains(&late_at),
        "a record written 39 minutes late is found by time"
    );
    // From the late record's own time: yesterday's last 40 minutes, the
    // late record, and today.
    assert_eq!(total(db, since(late_at)), 40 * 3 + 1 + 180);
    // Up to it: everything before, yesterday's first 21 minutes, and the
    // late record, whose id lies past the rows of its time.
    assert_eq!(total(db, until(late_at + 1)), 60 + 180 + 21 * 3 + 1);

    // Only the open ends.
    assert_eq!(total(db, until(day(50))), 60);
    assert_eq!(total(db, since(day(50))), 3 * 180 + 1);
    // A range before every row and one after it.
    assert_eq!(total(db, until(day(200))), 0);
    assert_eq!(total(db, since(now + DAY_MS)), 0);

    // The client filter (through its credentials), alone and with others.
    let of_a = of_client(a);
    assert_eq!(total(db, of_a.clone()), 3 * 120 + 1);
    assert_eq!(total(db, of_client(b)), 60 + 3 * 60);
    let tokens_of_a = UsageQuery {
        kind: Some(Kind::AiToken),
        ..of_a.clone()
    };
    assert_eq!(total(db, tokens_of_a), 3 * 60);
    let a_yesterday = UsageQuery {
        client_id: Some(a),
        ..yesterday.clone()
    };
    assert_eq!(total(db, a_yesterday), 121);
    let lonely = client(db, "no-credentials");
    assert_eq!(total(db, of_client(lonely)), 0);
    // A credential's own rows, newest recorded first.
    let (times, count) = ids_at(
        db,
        &UsageQuery {
            credential: Some((Kind::ApiKey, key_a)),
            ..UsageQuery::default()
        },
    );
    assert_eq!(count, 3 * 60 + 1);
    assert_eq!(times.first(), Some(&newest));

    // Paging walks the same order without gaps or repeats.
    let mut paged = Vec::new();
    for page in 0..4 {
        let (rows, _) = db
            .store
            .usage_log(&UsageQuery {
                offset: page * 50,
                limit: 50,
                ..of_a.clone()
            })
            .expect("page");
        paged.extend(rows.iter().map(|r| r.id));
    }
    let ids: Vec<i64> = db
        .store
        .usage_log(&UsageQuery {
            limit: 200,
            ..of_a.clone()
        })
        .expect("one page")
        .0
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(paged, ids);
    assert!(ids.windows(2).all(|w| w[0] > w[1]));

    // The export with a time filter agrees with the page.
    let mut exported = 0;
    db.store
        .export_usage(&yesterday, &mut |_| {
            exported += 1;
            Ok(())
        })
        .expect("export");
    assert_eq!(exported, 181);

    // Retention: 50 days drops the 60 old rows and nothing else.
    let pruned = db
        .store
        .prune(&Retention {
            usage_ms: 50 * DAY_MS,
            ..Retention::defaults()
        })
        .expect("prune");
    assert_eq!(pruned.usage_rows, 60);
    assert_eq!(ids_at(db, &UsageQuery::default()).1, 3 * 180 + 1);
    // Yesterday and the day before go at 1 day (the late record with them).
    let pruned = db
        .store
        .prune(&Retention {
            usage_ms: DAY_MS - 4 * HOUR_MS,
            ..Retention::defaults()
        })
        .expect("prune");
    assert_eq!(pruned.usage_rows, 2 * 180 + 1);
    assert_eq!(ids_at(db, &UsageQuery::default()).1, 180);
}

pub(crate) fn usage_text_round_trips(db: &TestDb) {
    let c = client(db, "texts");
    let (_, key) = issue_key(db, Kind::ApiKey, c, "read", None);
    let now = model::now_ms();
    // What the bulk path's escaping must carry: its own separators and
    // escape, the NULL marker as text, and characters outside ASCII.
    let texts = [
        "/a\tb\nc\rd",
        "\\N",
        "back\\slash\\",
        "nul\0inside",
        "\\t literally",
        "é 漢字 🙂",
        "",
    ];
    let mut batch: Vec<UsageRecord> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| record(Kind::ApiKey, key, c, now + i as i64, Some(t)))
        .collect();
    batch.push(UsageRecord {
        ip: None,
        ..record(Kind::ApiKey, key, c, now + 100, None)
    });
    db.store.write_usage(&batch).expect("write");
    let (rows, count) = db
        .store
        .usage_log(&UsageQuery {
            credential: Some((Kind::ApiKey, key)),
            limit: 100,
            ..UsageQuery::default()
        })
        .expect("read");
    assert_eq!(count, batch.len() as u64);
    let mut read: Vec<UsageRecord> = rows.into_iter().map(|r| r.record).collect();
    read.reverse();
    assert_eq!(read, batch);
}

/// Runs SQL as the test MariaDB's root, through the socket of the server
/// `scripts/mariadb.sh` started (`HK_MARIADB_DIR`); `None` without one.
fn as_mariadb_root(sql: &str) -> Option<()> {
    let dir = std::env::var("HK_MARIADB_DIR").ok()?;
    let status = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            &format!("--socket={dir}/sock"),
            "-uroot",
            "-e",
            sql,
        ])
        .status()
        .expect("run the mariadb client");
    assert!(status.success(), "mariadb -uroot -e {sql:?}");
    Some(())
}

/// Turns `LOAD DATA LOCAL` back on however the test ends.
struct LocalInfileBackOn;

impl Drop for LocalInfileBackOn {
    fn drop(&mut self) {
        let _ = as_mariadb_root("SET GLOBAL local_infile = 1");
    }
}

/// A server that refuses `LOAD DATA LOCAL` (MySQL 8's default) gets the
/// same rows by multi-row INSERTs, from the first batch on.
#[test]
fn mysql_refusing_load_data_gets_every_row() {
    let Some(db) = TestDb::mysql() else { return };
    if as_mariadb_root("SET GLOBAL local_infile = 0").is_none() {
        assert!(
            std::env::var_os("HERATIO_KEYS_REQUIRE_MYSQL").is_none(),
            "HK_MARIADB_DIR is needed to switch the test server's local_infile"
        );
        eprintln!("skipped: no HK_MARIADB_DIR (root access to the test MariaDB)");
        return;
    }
    let _back_on = LocalInfileBackOn;
    let c = client(&db, "refused");
    let (_, key) = issue_key(&db, Kind::ApiKey, c, "read", None);
    let now = model::now_ms();
    for round in 0..2 {
        let batch: Vec<UsageRecord> = (0..500)
            .map(|i| {
                record(
                    Kind::ApiKey,
                    key,
                    c,
                    now + round * 1000 + i,
                    Some("/a\tb\\N"),
                )
            })
            .collect();
        db.store
            .write_usage(&batch)
            .expect("write falls back to INSERT");
    }
    let (rows, count) = db
        .store
        .usage_log(&UsageQuery {
            limit: 2000,
            ..UsageQuery::default()
        })
        .expect("read");
    assert_eq!(count, 1000);
    assert!(rows
        .iter()
        .all(|r| r.record.endpoint.as_deref() == Some("/a\tb\\N")));
    assert_eq!(
        db.store
            .get_credential(Kind::ApiKey, key)
            .expect("get")
            .usage_count,
        1000
    );
}

/// The indexes of `usage_log` other than its primary key, by name.
fn usage_log_indexes(db: &TestDb) -> Vec<String> {
    db.texts(if db.is_mysql() {
        "SELECT DISTINCT index_name FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = 'usage_log' \
         AND index_name <> 'PRIMARY' ORDER BY index_name"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_log' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name"
    })
}

/// A database as schema 8 left it (three indexes on the raw log, rows in
/// it) upgrades to the one credential index, its rows still found.
pub(crate) fn upgrade_to_one_usage_log_index(db: &TestDb) {
    assert_eq!(
        usage_log_indexes(db),
        ["usage_log_by_credential"],
        "fresh install"
    );
    let c = client(db, "upgraded");
    let (_, key) = issue_key(db, Kind::ApiKey, c, "read", None);
    let now = model::now_ms();
    let batch: Vec<UsageRecord> = (0..100)
        .map(|i| record(Kind::ApiKey, key, c, now + i, None))
        .collect();
    db.store.write_usage(&batch).expect("write");
    let drop_new = if db.is_mysql() {
        "DROP INDEX usage_log_by_credential ON usage_log"
    } else {
        "DROP INDEX usage_log_by_credential"
    };
    db.exec(&format!(
        "{drop_new}; \
         CREATE INDEX usage_log_time ON usage_log(created_at); \
         CREATE INDEX usage_log_client ON usage_log(client_id, created_at); \
         CREATE INDEX usage_log_credential ON usage_log(credential_kind, credential_id, created_at); \
         DELETE FROM schema_version WHERE version = 9"
    ));
    let report = db.store.install().expect("upgrade");
    assert_eq!(report.from_version, Some(8));
    assert_eq!(report.applied.len(), 1, "{:?}", report.applied);
    assert_eq!(
        usage_log_indexes(db),
        ["usage_log_by_credential"],
        "upgraded"
    );
    let of_key = UsageQuery {
        credential: Some((Kind::ApiKey, key)),
        since: Some(now + 50),
        ..UsageQuery::default()
    };
    assert_eq!(ids_at(db, &of_key).1, 50);
    assert_eq!(db.store.install().expect("again").applied.len(), 0);
}
