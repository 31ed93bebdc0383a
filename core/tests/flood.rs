//! A flood of keys that match nothing must not grow the database at line
//! rate: validations of stored credentials keep one row each, the rest are
//! counted per minute, source and status.

use std::time::{Duration, Instant};

use heratio_keys_core::{generate, Kind, Options, Request, Status, UsageQuery, Validator};
use heratio_keys_testkit::TestDb;

fn flood(db: &TestDb) {
    let v = Validator::open(&db.dsn, Options::default()).expect("validator");
    let started = Instant::now();
    // Pairs of validations; the measurement used 50 000 (100 000
    // keys): HK_FLOOD_PAIRS=50000. CI keeps it short.
    let n: u64 = std::env::var("HK_FLOOD_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let mut junk = [0u8; 53];
    for i in 0..n {
        let unknown = generate(Kind::ApiKey).expect("key");
        let r = Request::new(Kind::ApiKey, unknown.expose().as_bytes()).ip(Some("198.51.100.7"));
        assert_eq!(v.validate(&r).status, Status::NotFound);
        getrandom::fill(&mut junk).expect("random bytes");
        junk[0] = b'x'; // never the prefix
        let r = Request::new(Kind::ApiKey, &junk).ip(Some("2001:db8:7:7::1234"));
        assert_eq!(v.validate(&r).status, Status::Malformed, "{i}");
    }
    assert!(v.flush(Duration::from_secs(30)));
    let minutes = started.elapsed().as_secs() / 60 + 2;
    let everything = UsageQuery {
        limit: 10_000,
        ..UsageQuery::default()
    };
    let (logged, logged_total) = db.store.usage_log(&everything).expect("usage log");
    let (rejected, rejected_total) = db.store.rejected_usage(&everything).expect("rejected");
    eprintln!(
        "{}: {} validations of unknown and malformed keys wrote {} usage_log rows and {} usage_rejected rows",
        db.label(),
        2 * n,
        logged.len(),
        rejected.len()
    );
    assert_eq!(logged_total, 0, "nothing matched a credential");
    assert_eq!(rejected_total, 2 * n, "every validation counted");
    assert!(
        rejected.len() as u64 <= 2 * minutes,
        "{} rows for {minutes} minutes",
        rejected.len()
    );
    assert!(rejected.iter().any(|r| r.ip == "2001:db8:7:7::/64"));
    let stats = db
        .store
        .usage_stats(&heratio_keys_core::StatsQuery::last_30_days())
        .expect("stats");
    assert_eq!(stats.validations, i64::try_from(2 * n).expect("fits"));
}

#[test]
fn sqlite_flood_of_unknown_keys() {
    flood(&TestDb::sqlite());
}

#[test]
fn mysql_flood_of_unknown_keys() {
    if let Some(db) = TestDb::mysql() {
        flood(&db);
    }
}
