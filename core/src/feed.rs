//! The revocation feed: its poller, and the freshness it vouches for.
//!
//! Every mutation that can change a validation outcome appends the affected
//! digest to `change_feed` in its own transaction. Each process polls
//! `WHERE id > watermark` and evicts what it reads. [`FeedState`] records
//! when the feed was last read successfully; the cache asks it whether a
//! positive answer may still be served (the fail-closed rule).
//!
//! MySQL hands out auto-increment ids at insert time but transactions commit
//! in any order, so id 11 can become visible before id 10, and 10 may
//! commit much later (a transaction waiting on locks, a slow server). The
//! cursor therefore reads forward from the highest id it has read, and
//! remembers every id it stepped over (a *hole*); each poll re-reads the
//! holes by id until they appear or [`HOLE_WINDOW`] passes (rolled-back
//! transactions leave permanent holes). Reading forward from the highest id
//! read means a hole never makes the poller re-read the same page.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::format::Digest;
use crate::model::FeedEntry;
use crate::shared::region::shared_clock_ms;
use crate::shared::Shared;
use crate::stats::{bump, Counters};
use crate::store::ValidationStore;

/// How long an id stepped over is re-read. A feed row is written late in its
/// transaction and every statement of ours times out after 5 s, so our own
/// transactions commit well within this; the margin covers a stalled
/// server and InnoDB's default 50 s lock wait many times over. A change
/// committed later still ends within the cache TTL (the backstop).
pub(crate) const HOLE_WINDOW: Duration = Duration::from_secs(300);
/// Most holes remembered; the oldest are forgotten first (id jumps from
/// `auto_increment_increment` or a failed bulk insert must not grow memory).
const MAX_HOLES: usize = 10_000;
/// Rows read per query; a full page is followed by another at once.
const PAGE: u32 = 1000;
/// Every this many polls the poller also checks that the row it read last
/// is still there, to notice a feed that went back (see
/// [`Poller::went_back`]): 5 s at the default interval.
const HEAD_CHECK_EVERY: u32 = 10;

/// What the feed vouches for: whether its head is known (before that,
/// nothing may be cached) and when it was last read successfully. Kept in
/// this process, or in the host region where every process of the host
/// sees what the leader read.
#[derive(Debug)]
pub(crate) struct FeedState(Place);

#[derive(Debug)]
enum Place {
    Local {
        /// Monotonic ms at which the last successful poll started: every
        /// change committed before it has been evicted.
        ok_at: AtomicU64,
        ready: AtomicBool,
    },
    Host(Arc<Shared>),
}

impl FeedState {
    /// State of this process only.
    pub(crate) fn local() -> Self {
        FeedState(Place::Local {
            ok_at: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        })
    }

    /// State shared through the host region.
    pub(crate) fn host(shared: Arc<Shared>) -> Self {
        FeedState(Place::Host(shared))
    }

    /// Milliseconds on the monotonic clock every process of the host shares.
    pub(crate) fn clock_ms(&self) -> u64 {
        shared_clock_ms()
    }

    /// Whether the feed's head is known, so fills may be cached.
    pub(crate) fn is_ready(&self) -> bool {
        match &self.0 {
            Place::Local { ready, .. } => ready.load(Ordering::SeqCst),
            Place::Host(shared) => shared.region().header().feed_ready.load(Ordering::SeqCst) != 0,
        }
    }

    /// Clock time of the start of the last successful poll.
    pub(crate) fn read_ok_at(&self) -> u64 {
        match &self.0 {
            Place::Local { ok_at, .. } => ok_at.load(Ordering::SeqCst),
            Place::Host(shared) => shared.region().header().feed_ok_at.load(Ordering::SeqCst),
        }
    }

    /// Milliseconds since the last successful read; `None` before the head
    /// was first read.
    pub(crate) fn lag_ms(&self) -> Option<u64> {
        self.is_ready()
            .then(|| self.clock_ms().saturating_sub(self.read_ok_at()))
    }

    fn read_ok(&self, started: u64, cursor: &Cursor) {
        match &self.0 {
            Place::Local { ok_at, ready } => {
                ok_at.fetch_max(started, Ordering::SeqCst);
                ready.store(true, Ordering::SeqCst);
            }
            Place::Host(shared) => {
                let region = shared.region();
                let h = region.header();
                h.feed_high.store(cursor.high, Ordering::SeqCst);
                h.feed_high_tag.store(cursor.high_tag, Ordering::SeqCst);
                h.feed_ok_at.fetch_max(started, Ordering::SeqCst);
                h.feed_ready.store(1, Ordering::SeqCst);
            }
        }
    }

    /// Where a new leader continues: the highest id the host has read (and
    /// its row's tag), so nothing committed while leadership changed hands
    /// is skipped.
    fn resume_from(&self) -> Option<(i64, u64)> {
        match &self.0 {
            Place::Local { .. } => None,
            Place::Host(shared) => {
                let region = shared.region();
                let h = region.header();
                (h.feed_ready.load(Ordering::SeqCst) != 0).then(|| {
                    (
                        h.feed_high.load(Ordering::SeqCst),
                        h.feed_high_tag.load(Ordering::SeqCst),
                    )
                })
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Cursor {
    /// The highest id read.
    high: i64,
    /// [`row_tag`] of the row at `high` (0: not known), so a feed whose
    /// head went back and then forward past `high` again is told apart.
    high_tag: u64,
    /// Ids below `high` not read yet, with when they were first missed.
    holes: BTreeMap<i64, Instant>,
    /// Polls since the head was last compared with `high`.
    polls: u32,
}

impl Cursor {
    fn new(head: i64) -> Self {
        Cursor {
            high: head,
            high_tag: 0,
            holes: BTreeMap::new(),
            polls: 0,
        }
    }

    /// Records a row read past `high`, remembering the ids it steps over.
    fn read_ahead(&mut self, id: i64, now: Instant) {
        if id <= self.high {
            return;
        }
        let first_missing = (self.high + 1).max(id - MAX_HOLES as i64);
        for missing in first_missing..id {
            if self.holes.len() >= MAX_HOLES {
                self.holes.pop_first();
            }
            self.holes.insert(missing, now);
        }
        self.high = id;
        // Not known unless this came from a row ([`Cursor::read_row`]).
        self.high_tag = 0;
    }

    /// Records a row read, and its tag if it is the new highest.
    fn read_row(&mut self, row: &FeedEntry, now: Instant) {
        if row.id > self.high {
            self.read_ahead(row.id, now);
            self.high_tag = row_tag(&row.digest);
        }
    }

    /// Records that a hole's row has appeared; false if it was not a hole.
    fn fill(&mut self, id: i64) -> bool {
        self.holes.remove(&id).is_some()
    }

    /// Forgets holes older than [`HOLE_WINDOW`].
    fn expire(&mut self, now: Instant) {
        self.holes
            .retain(|_, since| now.duration_since(*since) < HOLE_WINDOW);
    }

    fn hole_ids(&self) -> Vec<i64> {
        self.holes.keys().copied().collect()
    }
}

/// The first 8 bytes of a feed row's digest: enough to tell that the row at
/// an id is not the one read there before.
fn row_tag(digest: &Digest) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
}

/// Reads the feed and evicts what changed, on its own thread.
pub(crate) struct Poller {
    pub(crate) store: Arc<dyn ValidationStore>,
    pub(crate) state: Arc<FeedState>,
    pub(crate) counters: Arc<Counters>,
    /// Evicts one digest from every cache this process keeps.
    pub(crate) evict: Box<dyn Fn(&Digest) + Send + Sync>,
    /// Called after a poll that found changes (state derived from the
    /// whole store, such as which legacy key shapes exist, is re-read).
    pub(crate) changed: Box<dyn Fn() + Send + Sync>,
    /// Drops every answer every cache this process keeps (or the host's);
    /// returns how many went.
    pub(crate) evict_all: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Poller {
    /// Reads the feed's head; until this succeeds nothing may be cached, or
    /// a revocation committed between a fill and the first poll would be
    /// missed.
    pub(crate) fn start(&self) -> Option<Cursor> {
        let started = self.state.clock_ms();
        match self.open_cursor() {
            Ok(cursor) => {
                self.state.read_ok(started, &cursor);
                Some(cursor)
            }
            Err(_) => {
                bump(&self.counters.feed_errors);
                None
            }
        }
    }

    /// The cursor to start from: where the host's last leader got to, or
    /// the feed's head (also when the feed went back since).
    fn open_cursor(&self) -> crate::Result<Cursor> {
        match self.state.resume_from() {
            Some((high, tag)) if !self.went_back_from(high, tag)? => self.cursor_at(high),
            resumed => {
                if resumed.is_some() {
                    self.went_back();
                }
                self.cursor_at(self.store.feed_head()?)
            }
        }
    }

    /// A cursor at `head` that also knows the holes just below it: ids of
    /// transactions in flight now (or while leadership changed hands). The
    /// rows present were committed before anything was cached, or were
    /// read by the host's last leader, so they need no eviction.
    fn cursor_at(&self, head: i64) -> crate::Result<Cursor> {
        let floor = (head - i64::from(PAGE)).max(0);
        let present = self.store.feed_since(floor, PAGE)?;
        let mut cursor = Cursor::new(floor);
        let now = Instant::now();
        for row in present.iter().filter(|r| r.id <= head) {
            cursor.read_row(row, now);
        }
        cursor.read_ahead(head, now);
        Ok(cursor)
    }

    /// Whether the feed is no longer the one read up to `high`: the row
    /// read there is gone or another (its tag differs), or, with no tag
    /// known, the head is below it. A head count alone misses a database
    /// restored a few rows back that has since written as many again.
    fn went_back_from(&self, high: i64, tag: u64) -> crate::Result<bool> {
        if tag == 0 {
            return Ok(self.store.feed_head()? < high);
        }
        let rows = self.store.feed_rows(&[high])?;
        Ok(rows.first().is_none_or(|row| row_tag(&row.digest) != tag))
    }

    /// One poll: reads every new feed row and every hole that has appeared,
    /// and evicts their digests.
    ///
    /// # Errors
    ///
    /// The store error; rows read before it stay evicted and recorded.
    pub(crate) fn poll_once(&self, cursor: &mut Cursor) -> crate::Result<usize> {
        let started = self.state.clock_ms();
        let now = Instant::now();
        let mut evicted = 0;
        loop {
            let rows = self.store.feed_since(cursor.high, PAGE)?;
            for row in &rows {
                cursor.read_row(row, now);
                (self.evict)(&row.digest);
                evicted += 1;
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        if !cursor.holes.is_empty() {
            for row in self.store.feed_rows(&cursor.hole_ids())? {
                if cursor.fill(row.id) {
                    (self.evict)(&row.digest);
                    evicted += 1;
                }
            }
            cursor.expire(now);
        }
        cursor.polls += 1;
        if cursor.polls >= HEAD_CHECK_EVERY {
            cursor.polls = 0;
            if self.went_back_from(cursor.high, cursor.high_tag)? {
                self.went_back();
                *cursor = self.cursor_at(self.store.feed_head()?)?;
            }
        }
        if evicted > 0 {
            (self.changed)();
        }
        self.state.read_ok(started, cursor);
        bump(&self.counters.feed_polls);
        self.counters
            .feed_evictions
            .fetch_add(evicted as u64, Ordering::Relaxed);
        Ok(evicted)
    }

    /// The feed's head is below the highest id read: the database behind
    /// the DSN is not the one that was read (restored from a backup,
    /// recreated), and its new rows would have ids already passed over. A
    /// feed never goes back otherwise: ids are never reused (AUTOINCREMENT,
    /// InnoDB's persistent counter) and pruning keeps the newest row. So
    /// every cached answer goes, and reading continues from the new head.
    fn went_back(&self) {
        let dropped = (self.evict_all)();
        self.counters
            .feed_evictions
            .fetch_add(dropped, Ordering::Relaxed);
        (self.changed)();
    }

    /// The poller thread's body: polls every `interval` until told to stop.
    /// Before the feed's head is known, it keeps trying to read it.
    pub(crate) fn run(&self, mut cursor: Option<Cursor>, interval: Duration, stop: &Receiver<()>) {
        loop {
            match cursor.as_mut() {
                Some(c) => {
                    if self.poll_once(c).is_err() {
                        bump(&self.counters.feed_errors);
                    }
                }
                None => cursor = self.start(),
            }
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_remembered_until_filled_or_expired() {
        let t0 = Instant::now();
        let mut c = Cursor::new(10);
        c.read_ahead(12, t0);
        assert_eq!(c.high, 12);
        assert_eq!(c.hole_ids(), [11], "11 may still commit");
        c.read_ahead(14, t0 + Duration::from_secs(1));
        assert_eq!(c.hole_ids(), [11, 13]);
        assert!(c.fill(11));
        assert!(!c.fill(11), "filled once");
        assert!(!c.fill(12), "12 was read, never a hole");
        c.expire(t0 + HOLE_WINDOW);
        assert_eq!(c.hole_ids(), [13], "11 gone, 13 still within the window");
        c.expire(t0 + HOLE_WINDOW + Duration::from_secs(1));
        assert!(c.hole_ids().is_empty());
        c.read_ahead(13, t0);
        assert_eq!(c.high, 14, "reading an old id never moves back");
    }

    #[test]
    // 10 000 map inserts: minutes under Miri, and no unsafe code on the way.
    #[cfg_attr(miri, ignore)]
    fn id_jumps_remember_a_bounded_number_of_holes() {
        let t0 = Instant::now();
        let mut c = Cursor::new(0);
        c.read_ahead(1_000_000_000, t0);
        assert_eq!(c.holes.len(), MAX_HOLES);
        assert_eq!(c.hole_ids().last(), Some(&999_999_999));
        c.read_ahead(1_000_000_002, t0);
        assert_eq!(c.holes.len(), MAX_HOLES, "oldest forgotten first");
        assert_eq!(c.hole_ids().last(), Some(&1_000_000_001));
    }

    /// Counts the feed queries a real store answers.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn crate::store::KeyStore>,
        forward: std::sync::atomic::AtomicU64,
        by_id: std::sync::atomic::AtomicU64,
    }

    impl ValidationStore for Counting {
        fn backend(&self) -> crate::store::Backend {
            self.inner.backend()
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn schema_version(&self) -> crate::Result<Option<u32>> {
            self.inner.schema_version()
        }
        fn find_credential(
            &self,
            kind: crate::Kind,
            digest: &Digest,
        ) -> crate::Result<Option<crate::Credential>> {
            self.inner.find_credential(kind, digest)
        }
        fn feed_head(&self) -> crate::Result<i64> {
            self.inner.feed_head()
        }
        fn feed_since(
            &self,
            after: i64,
            limit: u32,
        ) -> crate::Result<Vec<crate::model::FeedEntry>> {
            self.forward.fetch_add(1, Ordering::SeqCst);
            self.inner.feed_since(after, limit)
        }
        fn feed_rows(&self, ids: &[i64]) -> crate::Result<Vec<crate::model::FeedEntry>> {
            self.by_id.fetch_add(1, Ordering::SeqCst);
            self.inner.feed_rows(ids)
        }
        fn write_usage(&self, batch: &[crate::UsageRecord]) -> crate::Result<()> {
            self.inner.write_usage(batch)
        }
        fn reserve_rate(
            &self,
            kind: crate::Kind,
            id: i64,
            window: i64,
            limit: i64,
            want: i64,
        ) -> crate::Result<(i64, i64)> {
            self.inner.reserve_rate(kind, id, window, limit, want)
        }
        fn release_rate(
            &self,
            kind: crate::Kind,
            id: i64,
            window: i64,
            unused: i64,
        ) -> crate::Result<()> {
            self.inner.release_rate(kind, id, window, unused)
        }
        fn legacy_shapes(&self) -> crate::Result<Vec<crate::KeyShape>> {
            self.inner.legacy_shapes()
        }
        fn write_usage_through(
            &self,
            batch: &[crate::UsageRecord],
            queue: &str,
            last: i64,
        ) -> crate::Result<()> {
            self.inner.write_usage_through(batch, queue, last)
        }
        fn usage_written_through(&self, queue: &str) -> crate::Result<Option<i64>> {
            self.inner.usage_written_through(queue)
        }
    }

    fn feed_rows_sql(ids: impl Iterator<Item = i64>) -> String {
        let values: Vec<String> = ids
            .map(|id| format!("({id}, 1, '{}', 'test', 0)", "ab".repeat(32)))
            .collect();
        format!(
            "INSERT INTO change_feed (id, credential_kind, key_hash, reason, created_at) VALUES {}",
            values.join(", ")
        )
    }

    /// A hole under more than a page of rows: each poll reads every page
    /// once and the hole once, instead of re-reading the first page until
    /// the hole times out.
    #[test]
    fn a_hole_under_full_pages_costs_one_read_per_page() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.db");
        let store = crate::store::open(&crate::Dsn::Sqlite { path: path.clone() }).expect("open");
        store.install().expect("install");
        let raw = rusqlite::Connection::open(&path).expect("raw connection");
        // Id 1 is missing: a transaction that has not committed yet.
        raw.execute_batch(&feed_rows_sql(2..=2501)).expect("rows");
        let counting = Arc::new(Counting {
            inner: store,
            forward: 0.into(),
            by_id: 0.into(),
        });
        let evicted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&evicted);
        let poller = Poller {
            store: counting.clone(),
            state: Arc::new(FeedState::local()),
            counters: Arc::new(Counters::default()),
            evict: Box::new(move |d| sink.lock().expect("lock").push(*d)),
            changed: Box::new(|| {}),
            evict_all: Box::new(|| 0),
        };
        let mut cursor = Cursor::new(0);
        assert_eq!(poller.poll_once(&mut cursor).expect("poll"), 2500);
        assert_eq!(counting.forward.load(Ordering::SeqCst), 3, "three pages");
        assert_eq!(counting.by_id.load(Ordering::SeqCst), 1, "one hole read");
        assert_eq!(cursor.hole_ids(), [1]);
        assert_eq!(poller.poll_once(&mut cursor).expect("poll"), 0);
        assert_eq!(counting.forward.load(Ordering::SeqCst), 4);
        assert_eq!(counting.by_id.load(Ordering::SeqCst), 2);
        raw.execute_batch(&feed_rows_sql(1..=1))
            .expect("late commit");
        assert_eq!(
            poller.poll_once(&mut cursor).expect("poll"),
            1,
            "the late row is evicted"
        );
        assert!(cursor.hole_ids().is_empty());
        assert_eq!(evicted.lock().expect("lock").len(), 2501);
    }

    /// Ids in flight when the process starts are holes from the first
    /// poll on; rows already committed are not evicted again (the cache is
    /// filled right after start, and evicting those would only cost misses).
    #[test]
    fn start_knows_the_holes_below_the_head() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.db");
        let store = crate::store::open(&crate::Dsn::Sqlite { path: path.clone() }).expect("open");
        store.install().expect("install");
        let raw = rusqlite::Connection::open(&path).expect("raw connection");
        raw.execute_batch(&feed_rows_sql((1..=10).filter(|&id| id != 5)))
            .expect("rows");
        let evicted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&evicted);
        let poller = Poller {
            store,
            state: Arc::new(FeedState::local()),
            counters: Arc::new(Counters::default()),
            evict: Box::new(move |d| sink.lock().expect("lock").push(*d)),
            changed: Box::new(|| {}),
            evict_all: Box::new(|| 0),
        };
        let mut cursor = poller.start().expect("started");
        assert_eq!(cursor.high, 10);
        assert_eq!(cursor.hole_ids(), [5]);
        assert_eq!(poller.poll_once(&mut cursor).expect("poll"), 0);
        raw.execute_batch(&feed_rows_sql(5..=5))
            .expect("late commit");
        assert_eq!(poller.poll_once(&mut cursor).expect("poll"), 1);
        assert_eq!(evicted.lock().expect("lock").len(), 1, "only the late row");
    }
}
