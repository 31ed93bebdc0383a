//! The revocation feed poller.
//!
//! Every mutation that can change a validation outcome appends the affected
//! digest to `change_feed` in its own transaction. Each process polls
//! `WHERE id > watermark` and evicts what it reads.
//!
//! MySQL hands out auto-increment ids at insert time but transactions commit
//! in any order, so id 11 can become visible before id 10. A plain
//! "highest id seen" cursor would skip 10 forever. The cursor therefore keeps
//! a *watermark* below which every id has been seen, plus the ids seen above
//! it; a hole is waited for up to [`GAP_TIMEOUT`] (rolled-back transactions
//! leave permanent holes) and then stepped over. Evicting twice is harmless,
//! so the cost of a hole is only re-reading a few rows.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::validator::Shared;

/// How long a hole in the feed ids is waited for.
pub(crate) const GAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows read per query; a full page is followed by another at once.
const PAGE: u32 = 1000;

#[derive(Debug)]
pub(crate) struct Cursor {
    watermark: i64,
    seen_above: BTreeSet<i64>,
    hole_since: Option<Instant>,
}

impl Cursor {
    pub(crate) fn new(head: i64) -> Self {
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

/// One poll: reads every new feed row and evicts its digest.
///
/// # Errors
///
/// The store error, leaving the cursor as it was.
pub(crate) fn poll_once(shared: &Shared, cursor: &mut Cursor) -> crate::Result<usize> {
    let started = shared.clock_ms();
    let mut evicted = 0;
    loop {
        let rows = shared.store.feed_since(cursor.watermark, PAGE)?;
        for row in &rows {
            if cursor.mark(row.id) {
                shared.invalidate(&row.digest);
                evicted += 1;
            }
        }
        if rows.len() < PAGE as usize {
            break;
        }
        cursor.advance(Instant::now());
    }
    cursor.advance(Instant::now());
    shared.feed_ok_at.fetch_max(started, Ordering::SeqCst);
    shared.counters.feed_polls.fetch_add(1, Ordering::Relaxed);
    shared
        .counters
        .feed_evictions
        .fetch_add(evicted as u64, Ordering::Relaxed);
    Ok(evicted)
}

/// The poller thread's body: polls every `interval` until told to stop.
/// Before the feed's head is known, it keeps trying to read it; until then
/// the validator caches nothing.
pub(crate) fn run(
    shared: &Arc<Shared>,
    mut cursor: Option<Cursor>,
    interval: Duration,
    stop: &Receiver<()>,
) {
    loop {
        match cursor.as_mut() {
            Some(c) => {
                if poll_once(shared, c).is_err() {
                    shared.counters.feed_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                let started = shared.clock_ms();
                match shared.store.feed_head() {
                    Ok(head) => {
                        cursor = Some(Cursor::new(head));
                        shared.feed_ok_at.fetch_max(started, Ordering::SeqCst);
                        shared.feed_ready.store(true, Ordering::SeqCst);
                    }
                    Err(_) => {
                        shared.counters.feed_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
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
