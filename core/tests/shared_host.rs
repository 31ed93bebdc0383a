//! One keygen client per host: validators sharing the host region see each
//! other's fills, one of them leads (polls the feed, writes the usage
//! queue), leadership passes on when the leader is killed, and a region
//! that is corrupted, foreign or unusable never makes a refused key pass.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use heratio_keys_core::{
    issue, IssueRequest, Kind, NewClient, Options, OptionsBuilder, Request, Scopes, Status,
    UsageQuery, Validator,
};
use heratio_keys_testkit::{actor, eventually, TestDb};

/// Every test of this binary keeps its regions in one private directory,
/// under cargo's scratch directory for tests. Regions are fully allocated
/// (tens of MiB each), so the directories of earlier runs whose process is
/// gone are removed first: a killed or failed run leaves nothing behind for
/// the next one.
fn region_dir() -> PathBuf {
    static SET: Once = Once::new();
    if let Some(inherited) = std::env::var_os("HERATIO_KEYS_REGION_DIR") {
        return inherited.into();
    }
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = scratch.join(format!("hk-regions-{}", std::process::id()));
    SET.call_once(|| {
        remove_regions_of_dead_runs(&scratch);
        std::fs::create_dir_all(&dir).expect("region dir");
        // SAFETY: set once, before any validator of this process reads it.
        unsafe { std::env::set_var("HERATIO_KEYS_REGION_DIR", &dir) };
    });
    dir
}

fn remove_regions_of_dead_runs(scratch: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hk-regions-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Host options with a small region (a few MiB instead of the default's
/// ~85): the tests need a handful of keys, and every open of one DSN must
/// agree on the geometry or it replaces the region.
fn host() -> OptionsBuilder {
    region_dir();
    Options::builder()
        .shared_cache(true)
        .shared_cache_slots(8192)
        .shared_queue_records(4096)
        .poll_interval(Duration::from_millis(100))
}

fn shared() -> Options {
    host()
        .usage_flush_interval(Duration::from_millis(200))
        .build()
}

fn new_key(db: &TestDb) -> (String, i64) {
    let client = db
        .store
        .create_client(
            &NewClient {
                name: "host".into(),
                email: "ops@example.org".into(),
                organization: None,
            },
            &actor(),
        )
        .expect("client");
    let issued = issue(
        db.store.as_ref(),
        Kind::ApiKey,
        &IssueRequest {
            client_id: client.id,
            name: "production".into(),
            scopes: Scopes::all(),
            expires_at: None,
            rate_limit: None,
            metadata: None,
        },
        &actor(),
    )
    .expect("issue");
    (issued.key.expose().to_owned(), issued.info.id)
}

fn status(v: &Validator, key: &str) -> Status {
    v.validate(&Request::new(Kind::ApiKey, key.as_bytes()).ip(Some("192.0.2.1")))
        .status
}

fn recorded(db: &TestDb) -> u64 {
    let all = UsageQuery {
        limit: 1,
        ..UsageQuery::default()
    };
    db.store.usage_log(&all).expect("log").1 + db.store.rejected_usage(&all).expect("rejected").1
}

fn processes_share_fills_revocations_and_usage(db: &TestDb) {
    let (key, id) = new_key(db);
    let a = Validator::open(&db.dsn, shared()).expect("a");
    let b = Validator::open(&db.dsn, shared()).expect("b");
    let (sa, sb) = (a.stats(), b.stats());
    let (ha, hb) = (sa.host.expect("a shares"), sb.host.expect("b shares"));
    assert!(ha.leader != hb.leader, "exactly one leads: {ha:?} {hb:?}");
    assert_eq!(status(&a, &key), Status::Valid);
    let before = b.stats().store_queries;
    assert_eq!(status(&b, &key), Status::Valid);
    assert_eq!(
        b.stats().store_queries,
        before,
        "b found a's fill in the host cache"
    );
    let mut validations = 2u64;
    for _ in 0..50 {
        assert_eq!(status(&a, &key), Status::Valid);
        assert_eq!(status(&b, &key), Status::Valid);
        validations += 2;
    }
    db.store
        .revoke_credential(Kind::ApiKey, id, &actor())
        .expect("revoke");
    let refused = Instant::now();
    for v in [&a, &b] {
        assert!(eventually(Duration::from_secs(5), || {
            validations += 1;
            status(v, &key) == Status::Revoked
        })
        .is_some());
    }
    eprintln!(
        "{}: revocation refused by both after {:?}",
        db.label(),
        refused.elapsed()
    );
    assert!(a.flush(Duration::from_secs(10)) && b.flush(Duration::from_secs(10)));
    drop((a, b));
    assert_eq!(
        recorded(db),
        validations,
        "every validation recorded exactly once"
    );
}

/// A process that logs no usage of its own (`usage_log` off) may lead the
/// host: it must still write the records the other processes queue, or
/// they would wait in the ring until it fills and then be dropped.
fn a_leader_without_usage_logging_writes_the_hosts_queue(db: &TestDb) {
    let (key, _) = new_key(db);
    let quiet = host()
        .usage_flush_interval(Duration::from_millis(200))
        .usage_log(false)
        .build();
    region_dir();
    let leader = Validator::open(&db.dsn, quiet).expect("leader");
    let logging = Validator::open(&db.dsn, shared()).expect("logging");
    assert!(
        leader.stats().host.expect("shares").leader,
        "the first opened leads"
    );
    let before = recorded(db);
    for _ in 0..40 {
        assert_eq!(status(&logging, &key), Status::Valid);
    }
    assert_eq!(
        status(&leader, &key),
        Status::Valid,
        "not recorded: its log is off"
    );
    assert!(
        logging.flush(Duration::from_secs(10)),
        "the leader wrote the queue"
    );
    assert_eq!(
        recorded(db) - before,
        40,
        "each of the 40 validations recorded once"
    );
    assert_eq!(logging.stats().usage_dropped, 0);
}

fn a_killed_leader_is_replaced(db: &TestDb) {
    let (key, id) = new_key(db);
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_leads_until_killed", "--nocapture"])
        .env("HK_T_CHILD_DSN", &db.dsn)
        .env("HK_T_CHILD_KEY", &key)
        .env("HERATIO_KEYS_REGION_DIR", region_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.find(|l| l.as_deref().is_ok_and(|l| l.starts_with("leading")));
    assert!(ready.is_some(), "the child became the leader");
    let v = Validator::open(&db.dsn, shared()).expect("follower");
    assert!(!v.stats().host.expect("shares").leader, "the child leads");
    assert_eq!(status(&v, &key), Status::Valid);
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(i32::try_from(child.id()).expect("pid"), libc::SIGKILL) };
    let _ = child.wait();
    let killed = Instant::now();
    // A miss while nobody may lead yet: answered all the same (by the new
    // leader's desk, or by the process itself after the desk's timeout).
    let (fresh, _) = new_key(db);
    assert_eq!(status(&v, &fresh), Status::Valid);
    let took_over = eventually(Duration::from_secs(5), || {
        v.stats().host.is_some_and(|h| h.leader)
    });
    eprintln!(
        "{}: leadership taken over {:?} after SIGKILL",
        db.label(),
        took_over
    );
    assert!(took_over.is_some(), "nobody took over");
    db.store
        .revoke_credential(Kind::ApiKey, id, &actor())
        .expect("revoke");
    assert!(
        eventually(Duration::from_secs(5), || status(&v, &key)
            == Status::Revoked)
        .is_some(),
        "the new leader polls the feed"
    );
    assert!(killed.elapsed() < Duration::from_secs(30));
    assert!(v.flush(Duration::from_secs(10)));
}

/// Followers' misses go to the leader's desk: the host asks the store once
/// per key (batched), over the leader's connections, however many
/// processes miss it at once.
fn misses_are_answered_by_the_leader_once_per_key(db: &TestDb) {
    let keys: Vec<String> = (0..20).map(|_| new_key(db).0).collect();
    let never_stored = heratio_keys_core::generate(Kind::ApiKey).expect("a key");
    let unknown = never_stored.expose();
    let leader = Validator::open(&db.dsn, shared()).expect("leader");
    assert!(leader.stats().host.expect("shares").leader);
    let followers: Vec<Validator> = (0..3)
        .map(|_| Validator::open(&db.dsn, shared()).expect("follower"))
        .collect();
    let before = leader.stats().store_queries;
    std::thread::scope(|s| {
        for v in &followers {
            let keys = &keys;
            s.spawn(move || {
                for key in keys {
                    assert_eq!(status(v, key), Status::Valid);
                }
                assert_ne!(status(v, unknown), Status::Valid);
            });
        }
    });
    let asked: u64 = followers.iter().map(|v| v.stats().store_queries).sum();
    assert_eq!(asked, 0, "no follower queried the store itself");
    let by_leader = leader.stats().store_queries - before;
    assert!(
        (1..=21).contains(&by_leader),
        "at most one query per key for three processes: {by_leader}"
    );
    eprintln!(
        "{}: 3 followers × 21 keys answered with {by_leader} store queries",
        db.label()
    );
    // The forwarded answers obey the feed like any other.
    let (key, id) = new_key(db);
    assert_eq!(status(&followers[0], &key), Status::Valid);
    db.store
        .revoke_credential(Kind::ApiKey, id, &actor())
        .expect("revoke");
    assert!(
        eventually(Duration::from_secs(5), || status(&followers[1], &key)
            == Status::Revoked)
        .is_some()
    );
}

/// Nobody answers the desk (the leader's lock is held by something that is
/// not a validator, so no fill thread runs): a miss waits out the desk's
/// timeout, is answered by the process itself, and the next miss goes
/// straight to the store.
fn an_unanswered_desk_falls_back_to_the_store(db: &TestDb) {
    let (first, _) = new_key(db);
    let (second, _) = new_key(db);
    // A leader reads the feed's head once, so the region says fills may be
    // cached (forwarding is skipped before that), then goes away.
    let earlier = Validator::open(&db.dsn, shared()).expect("earlier leader");
    let region = earlier.shared_region_path().expect("shared");
    drop(earlier);
    let lock = std::fs::File::open(region.with_extension("leader")).expect("leader file");
    // SAFETY: flock(2) on a descriptor we own.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    assert_eq!(locked, 0, "the test holds the leader's lock");
    let v = Validator::open(&db.dsn, shared()).expect("follower");
    assert!(!v.stats().host.expect("shares").leader);
    let asked_at = Instant::now();
    assert_eq!(status(&v, &first), Status::Valid);
    // A lower bound, not a speed: the miss was posted and waited for.
    assert!(
        asked_at.elapsed() >= Duration::from_millis(250),
        "forwarded first ({:?})",
        asked_at.elapsed()
    );
    assert_eq!(v.stats().store_queries, 1, "then asked the store itself");
    // Within the back-off: straight to the store.
    assert_eq!(status(&v, &second), Status::Valid);
    assert_eq!(v.stats().store_queries, 2);
    drop(lock);
}

/// A hot answer nearing the end of its lifetime is renewed by the leader
/// before it expires: a key in use never misses again, and the renewed
/// answer still obeys the feed.
fn hot_answers_are_renewed_before_they_expire(db: &TestDb) {
    let (key, id) = new_key(db);
    let short = || {
        host()
            .cache_ttl(Duration::from_secs(2))
            .usage_log(false)
            .build()
    };
    region_dir();
    let leader = Validator::open(&db.dsn, short()).expect("leader");
    let follower = Validator::open(&db.dsn, short()).expect("follower");
    assert!(leader.stats().host.expect("shares").leader);
    assert_eq!(status(&follower, &key), Status::Valid);
    let misses = follower.stats().cache_misses;
    let until = Instant::now() + Duration::from_secs(5);
    let mut hits = 0;
    while Instant::now() < until {
        assert_eq!(status(&follower, &key), Status::Valid);
        hits += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        follower.stats().cache_misses,
        misses,
        "{hits} validations over 2.5 lifetimes, none missed"
    );
    db.store
        .revoke_credential(Kind::ApiKey, id, &actor())
        .expect("revoke");
    assert!(
        eventually(Duration::from_secs(5), || status(&follower, &key)
            == Status::Revoked)
        .is_some()
    );
}

/// Run by `a_killed_leader_is_replaced` in a child process.
#[test]
fn child_leads_until_killed() {
    let (Ok(dsn), Ok(key)) = (
        std::env::var("HK_T_CHILD_DSN"),
        std::env::var("HK_T_CHILD_KEY"),
    ) else {
        return;
    };
    let v = Validator::open(&dsn, shared()).expect("child validator");
    assert_eq!(status(&v, &key), Status::Valid);
    assert!(v.stats().host.expect("shares").leader);
    println!("leading");
    loop {
        let _ = status(&v, &key);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Scribbles over every cache slot of the region (not the header): a
/// revoked key must never come back valid, whatever the bytes say.
fn scribbled_slots_never_accept_a_refused_key(db: &TestDb) {
    let (key, id) = new_key(db);
    let v = Validator::open(&db.dsn, shared()).expect("validator");
    assert_eq!(status(&v, &key), Status::Valid);
    db.store
        .revoke_credential(Kind::ApiKey, id, &actor())
        .expect("revoke");
    assert!(eventually(Duration::from_secs(5), || status(&v, &key)
        == Status::Revoked)
    .is_some());
    {
        let path = v.shared_region_path().expect("shared");
        {
            // In place: truncating a mapped file would be another test.
            use std::io::{Seek, SeekFrom, Write};
            let len = std::fs::metadata(&path).expect("stat").len();
            let mut bytes = vec![0u8; usize::try_from(len).expect("size") - 4096];
            let mut state = 0x9e37_79b9_7f4a_7c15u64;
            for b in &mut bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open region");
            file.seek(SeekFrom::Start(4096)).expect("seek");
            file.write_all(&bytes).expect("scribble");
        }
    }
    // A second process forwards its misses through the scribbled desk.
    let follower = Validator::open(&db.dsn, shared()).expect("follower");
    for _ in 0..200 {
        assert_ne!(status(&v, &key), Status::Valid, "a revoked key passed");
        assert_ne!(
            status(&follower, &key),
            Status::Valid,
            "a revoked key passed a follower"
        );
    }
}

/// A region file of another user (or open to others) is refused: the
/// validator runs with its own cache and says why.
fn a_foreign_region_is_refused(db: &TestDb) {
    let probe = Validator::open(&db.dsn, shared()).expect("probe");
    let region = probe.shared_region_path().expect("shared");
    drop(probe);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&region, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let v = Validator::open(&db.dsn, shared()).expect("validator");
    assert!(
        v.stats().host.is_none(),
        "a region others can read is not used"
    );
    let why = v.shared_cache_error().expect("the reason is kept");
    assert!(why.contains("private"), "{why}");
    let (key, _) = new_key(db);
    assert_eq!(status(&v, &key), Status::Valid, "validation still works");
}

/// The database behind the DSN goes back to an earlier state (restored from
/// a backup) while the host region remembers a later feed: the next
/// revocation gets an id the region has already passed. The running leader
/// notices within its head check, a new leader when it takes over; both drop
/// every cached answer instead of serving them.
fn a_restored_database_drops_the_host_cache(db: &TestDb) {
    let restore_feed_to = |head: i64| {
        db.exec(&format!("DELETE FROM change_feed WHERE id > {head}"));
        if db.is_mysql() {
            db.exec(&format!(
                "ALTER TABLE change_feed AUTO_INCREMENT = {}",
                head + 1
            ));
        } else {
            db.exec(&format!(
                "UPDATE sqlite_sequence SET seq = {head} WHERE name = 'change_feed'"
            ));
        }
    };
    // The restored database writes as many rows as it lost, the last of
    // them a revocation: its head is back at the id the host read last, so
    // only the row there (another digest) tells the two databases apart.
    let revoke_at = |id: i64, head: i64| {
        while db.store.feed_head().expect("head") < head - 1 {
            db.exec(&format!(
                "INSERT INTO change_feed (credential_kind, key_hash, reason, created_at) \
                 VALUES (1, '{}', 'padding', 0)",
                "0".repeat(64)
            ));
        }
        db.store
            .revoke_credential(Kind::ApiKey, id, &actor())
            .expect("revoke");
        assert_eq!(
            db.store.feed_head().expect("head"),
            head,
            "back at the old head"
        );
    };
    let (running, running_id) = new_key(db);
    let (later, later_id) = new_key(db);
    let backup = db.store.feed_head().expect("head");
    for _ in 0..3 {
        new_key(db);
    }

    // A leader that keeps running through the restore.
    let v = Validator::open(&db.dsn, shared()).expect("leader");
    assert_eq!(status(&v, &running), Status::Valid);
    assert_eq!(status(&v, &later), Status::Valid);
    let evicted_before = v.stats().feed_evictions;
    let read_up_to = db.store.feed_head().expect("head");
    restore_feed_to(backup);
    revoke_at(running_id, read_up_to);
    assert!(
        eventually(Duration::from_secs(10), || status(&v, &running)
            == Status::Revoked)
        .is_some(),
        "the running leader noticed the feed going back"
    );
    // Counted once the poller is through the whole region.
    assert!(
        eventually(Duration::from_secs(5), || v.stats().feed_evictions
            >= evicted_before + 2)
        .is_some(),
        "the two cached answers count as evicted: {:?}",
        v.stats()
    );
    assert_eq!(
        status(&v, &later),
        Status::Valid,
        "refilled from the restored store"
    );
    drop(v);

    // A new leader that resumes where the region says the host stopped.
    let resumed_from = db.store.feed_head().expect("head");
    for _ in 0..3 {
        new_key(db);
    }
    let v = Validator::open(&db.dsn, shared()).expect("leader");
    assert_eq!(status(&v, &later), Status::Valid, "cached in the region");
    drop(v);
    let read_up_to = db.store.feed_head().expect("head");
    restore_feed_to(resumed_from);
    revoke_at(later_id, read_up_to);
    let v = Validator::open(&db.dsn, shared()).expect("new leader");
    assert!(v.stats().host.is_some_and(|h| h.leader), "it leads");
    assert_eq!(
        status(&v, &later),
        Status::Revoked,
        "nothing served from before the restore"
    );
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
    processes_share_fills_revocations_and_usage,
    a_leader_without_usage_logging_writes_the_hosts_queue,
    a_killed_leader_is_replaced,
    scribbled_slots_never_accept_a_refused_key,
    a_restored_database_drops_the_host_cache,
    misses_are_answered_by_the_leader_once_per_key,
    hot_answers_are_renewed_before_they_expire,
    an_unanswered_desk_falls_back_to_the_store,
);

/// The region's file system has less room than the region (a small
/// tmpfs, mounted in a private mount namespace): the validator must not
/// die of SIGBUS on the first page the disk cannot back, but open with its
/// own cache, say why, and validate and record as usual.
#[test]
fn a_full_region_file_system_falls_back_to_a_private_cache() {
    if let Some(dsn) = std::env::var_os("HK_T_FULL_DSN") {
        let dsn = dsn.into_string().expect("utf-8");
        let key = std::env::var("HK_T_FULL_KEY").expect("key");
        let v = Validator::open(&dsn, shared()).expect("validator");
        let why = v.shared_cache_error().expect("the reason is kept");
        assert!(why.contains("No space left"), "{why}");
        assert!(v.stats().host.is_none(), "runs on its own cache");
        for _ in 0..50 {
            assert_eq!(status(&v, &key), Status::Valid);
        }
        assert!(v.flush(Duration::from_secs(10)), "usage written");
        println!("fell back");
        return;
    }
    let db = TestDb::sqlite();
    let (key, _) = new_key(&db);
    let before = recorded(&db);
    let small = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hk-small-fs-{}", std::process::id()));
    std::fs::create_dir_all(&small).expect("mount point");
    let script = r#"mount -t tmpfs -o size=1m,mode=0700 hk-small "$1" && shift && exec "$@""#;
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(&small)
        .arg(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_full_region_file_system_falls_back_to_a_private_cache",
            "--nocapture",
        ])
        .env("HK_T_FULL_DSN", &db.dsn)
        .env("HK_T_FULL_KEY", &key)
        .env("HERATIO_KEYS_REGION_DIR", &small)
        .output()
        .expect("unshare (util-linux) runs");
    let _ = std::fs::remove_dir(&small);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("fell back"),
        "the child on a 1 MiB tmpfs: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(recorded(&db) - before, 50, "every validation recorded");
}

#[test]
fn sqlite_foreign_region() {
    a_foreign_region_is_refused(&TestDb::sqlite());
}
