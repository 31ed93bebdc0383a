//! The revocation feed: its poller, and the freshness it vouches for.
//!
//! Every mutation that can change a validation outcome appends the affected
//! digest to `change_feed` in its own transaction. Each process polls
//! `WHERE id > watermark` and evicts what it reads. [`FeedState`] records
//! when the feed was last read successfully; the cache asks it whether a
//! positive answer may still be served (the fail-closed rule).
//!
//! MySQL hands out auto-increment ids at insert time but transactions commit
//! in any order, so id 11 can become visible before id 10. A plain
//! "highest id seen" cursor would skip 10 forever. The cursor therefore keeps
//! a *watermark* below which every id has been seen, plus the ids seen above
//! it; a hole is waited for up to [`GAP_TIMEOUT`] (rolled-back transactions
//! leave permanent holes) and then stepped over. Evicting twice is harmless,
//! so the cost of a hole is only re-reading a few rows.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::format::Digest;
use crate::stats::{bump, Counters};
use crate::store::ValidationStore;

/// How long a hole in the feed ids is waited for.
pub(crate) const GAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows read per query; a full page is followed by another at once.
const PAGE: u32 = 1000;

/// What the feed vouches for: whether its head is known (before that,
/// nothing may be cached) and when it was last read successfully.
#[derive(Debug)]
pub(crate) struct FeedState {
    epoch: Instant,
    /// Clock time (ms since `epoch`) at which the last successful poll
    /// started: every change committed before it has been evicted.
    ok_at: AtomicU64,
    ready: AtomicBool,
}

impl FeedState {
    pub(crate) fn new() -> Self {
        FeedState {
            epoch: Instant::now(),
            ok_at: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Milliseconds on this process's monotonic clock.
    pub(crate) fn clock_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the feed's head is known, so fills may be cached.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Clock time of the start of the last successful poll.
    pub(crate) fn read_ok_at(&self) -> u64 {
        self.ok_at.load(Ordering::SeqCst)
    }

    /// Milliseconds since the last successful read; `None` before the head
    /// was first read.
    pub(crate) fn lag_ms(&self) -> Option<u64> {
        self.is_ready()
            .then(|| self.clock_ms().saturating_sub(self.read_ok_at()))
    }

    fn read_ok(&self, started: u64) {
        self.ok_at.fetch_max(started, Ordering::SeqCst);
        self.ready.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub(crate) struct Cursor {
    watermark: i64,
    seen_above: BTreeSet<i64>,
    hole_since: Option<Instant>,
}

impl Cursor {
    fn new(head: i64) -> Self {
        Cursor {
            watermark: head,
            seen_above: BTreeSet::new(),
            hole_since: None,
        }
    }

    /// Records that `id` was read; returns false if it had been already.
    fn mark(&mut self, id: i64) -> bool {
        id > self.watermark && self.seen_above.insert(id)
    }

    /// Moves the watermark over contiguous ids, and over a hole older than
    /// [`GAP_TIMEOUT`].
    fn advance(&mut self, now: Instant) {
        loop {
            while self.seen_above.remove(&(self.watermark + 1)) {
                self.watermark += 1;
            }
            let Some(&next) = self.seen_above.first() else {
                self.hole_since = None;
                return;
            };
            let since = *self.hole_since.get_or_insert(now);
            if now.duration_since(since) < GAP_TIMEOUT {
                return;
            }
            self.watermark = next - 1;
            self.hole_since = None;
        }
    }
}

/// Reads the feed and evicts what changed, on its own thread.
pub(crate) struct Poller {
    pub(crate) store: Arc<dyn ValidationStore>,
    pub(crate) state: Arc<FeedState>,
    pub(crate) counters: Arc<Counters>,
    /// Evicts one digest from every cache this process keeps.
    pub(crate) evict: Box<dyn Fn(&Digest) + Send + Sync>,
}

impl Poller {
    /// Reads the feed's head; until this succeeds nothing may be cached, or
    /// a revocation committed between a fill and the first poll would be
    /// missed.
    pub(crate) fn start(&self) -> Option<Cursor> {
        let started = self.state.clock_ms();
        match self.store.feed_head() {
            Ok(head) => {
                self.state.read_ok(started);
                Some(Cursor::new(head))
            }
            Err(_) => {
                bump(&self.counters.feed_errors);
                None
            }
        }
    }

    /// One poll: reads every new feed row and evicts its digest.
    ///
    /// # Errors
    ///
    /// The store error, leaving the cursor as it was.
    pub(crate) fn poll_once(&self, cursor: &mut Cursor) -> crate::Result<usize> {
        let started = self.state.clock_ms();
        let mut evicted = 0;
        loop {
            let rows = self.store.feed_since(cursor.watermark, PAGE)?;
            for row in &rows {
                if cursor.mark(row.id) {
                    (self.evict)(&row.digest);
                    evicted += 1;
                }
            }
            if rows.len() < PAGE as usize {
                break;
            }
            cursor.advance(Instant::now());
        }
        cursor.advance(Instant::now());
        self.state.read_ok(started);
        bump(&self.counters.feed_polls);
        self.counters
            .feed_evictions
            .fetch_add(evicted as u64, Ordering::Relaxed);
        Ok(evicted)
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
    fn cursor_waits_for_holes_then_steps_over_them() {
        let t0 = Instant::now();
        let mut c = Cursor::new(10);
        assert!(c.mark(12));
        c.advance(t0);
        assert_eq!(c.watermark, 10, "11 may still commit");
        assert!(!c.mark(12), "already seen");
        assert!(c.mark(11));
        c.advance(t0);
        assert_eq!(c.watermark, 12);
        assert!(c.mark(14));
        c.advance(t0);
        assert_eq!(c.watermark, 12);
        c.advance(t0 + GAP_TIMEOUT);
        assert_eq!(c.watermark, 14, "a hole older than the timeout is skipped");
        assert!(!c.mark(13), "ids below the watermark are ignored");
    }
}
