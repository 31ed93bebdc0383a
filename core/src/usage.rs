//! Usage recording off the hot path.
//!
//! Validations push records into a bounded queue with `try_send`; a flusher
//! thread writes them in multi-row batches at most every flush interval or
//! whenever a batch fills. A validation finding the queue full waits for
//! room while the writer makes progress ([`RoomWait`]): under a load the
//! store cannot record, validations slow down to the rate it can, instead
//! of losing rows. Records that still find no room, that meet a writer
//! which stopped making progress (a store that is down or refuses writes),
//! or that cannot be written before shutdown gives up, are counted as
//! dropped. Nothing else is dropped: a failed write is retried with
//! backoff, keeping the batch, until the store comes back.
//!
//! The flusher never blocks on the record queue itself: a receiver parked in
//! `recv` would be woken (a futex syscall and a cross-core hand-off) by every
//! single validation. It sleeps with `park_timeout` instead and is unparked
//! only when a batch's worth of records is waiting or a control request
//! (flush, shutdown) arrives, so a burst of N validations costs N lock-free
//! pushes and N / batch wake-ups.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::model::UsageRecord;
use crate::stats::Counters;
use crate::store::ValidationStore;

/// How the queue and the flusher are sized and paced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsageSettings {
    pub(crate) queue_capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) shutdown_timeout: Duration,
}

/// Requests to the flusher, answered with whether everything got written.
pub(crate) enum Control {
    /// Write everything queued so far.
    Flush(SyncSender<bool>),
    /// Write everything (retrying until the deadline), then stop.
    Shutdown(SyncSender<bool>),
}

/// Longest a validation waits for room in a full usage queue.
const ROOM_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting validation tries again.
const ROOM_RETRY: Duration = Duration::from_millis(1);

/// Waiting for room in a full usage queue (this process's, or the host's),
/// with the memory of a writer seen stalled: after one wait in which the
/// writer wrote nothing, records are dropped at once until it writes again,
/// so a store that is down costs one wait, not one per validation.
#[derive(Debug, Default)]
pub(crate) struct RoomWait {
    /// `progress + 1` when a wait ended with the writer stalled there; 0
    /// while it is not known to be stalled.
    stalled_at: AtomicU64,
}

impl RoomWait {
    /// Retries `try_push` every millisecond for up to a second; true once it
    /// succeeds. `progress` is a count the writer advances as it writes.
    pub(crate) fn wait(
        &self,
        progress: impl Fn() -> u64,
        mut try_push: impl FnMut() -> bool,
    ) -> bool {
        let start = progress();
        if self.stalled_at.load(Ordering::Relaxed) == start.wrapping_add(1) {
            return false;
        }
        let deadline = Instant::now() + ROOM_WAIT;
        while Instant::now() < deadline {
            std::thread::sleep(ROOM_RETRY);
            if try_push() {
                self.stalled_at.store(0, Ordering::Relaxed);
                return true;
            }
        }
        if progress() == start {
            self.stalled_at
                .store(start.wrapping_add(1), Ordering::Relaxed);
        }
        false
    }
}

/// The producing side, held by the engine.
pub(crate) struct UsageQueue {
    records: SyncSender<UsageRecord>,
    control: Sender<Control>,
    flusher: Thread,
    counters: Arc<Counters>,
    batch_size: u64,
    room: RoomWait,
}

impl UsageQueue {
    pub(crate) fn new(
        records: SyncSender<UsageRecord>,
        control: Sender<Control>,
        flusher: Thread,
        counters: Arc<Counters>,
        settings: &UsageSettings,
    ) -> Self {
        UsageQueue {
            records,
            control,
            flusher,
            counters,
            batch_size: settings.batch_size.max(1) as u64,
            room: RoomWait::default(),
        }
    }

    /// Queues a record, waiting for room while the flusher writes (see
    /// [`RoomWait`]), or counts it as dropped.
    pub(crate) fn push(&self, record: UsageRecord) {
        // Counted before the send, so the flusher never takes a record the
        // gauge does not yet include.
        let before = self.counters.usage_queued.fetch_add(1, Ordering::Relaxed);
        let queued = match self.records.try_send(record) {
            Ok(()) => {
                if before + 1 == self.batch_size {
                    self.flusher.unpark();
                }
                true
            }
            Err(TrySendError::Full(record)) => {
                // A full queue is a batch's worth at least: the flusher may
                // be asleep until its interval ends.
                self.flusher.unpark();
                let mut waiting = Some(record);
                self.room.wait(
                    || self.counters.usage_written.load(Ordering::Relaxed),
                    || match waiting.take().map(|r| self.records.try_send(r)) {
                        Some(Ok(())) => true,
                        Some(Err(TrySendError::Full(r))) => {
                            waiting = Some(r);
                            false
                        }
                        Some(Err(TrySendError::Disconnected(_))) | None => false,
                    },
                )
            }
            Err(TrySendError::Disconnected(_)) => false,
        };
        if !queued {
            self.counters.usage_queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.usage_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Blocks until everything queued before this call is written; false if
    /// that failed (store down: records stay queued) or took over `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.request(Control::Flush, timeout)
    }

    /// Asks the flusher to write everything and stop.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        self.request(Control::Shutdown, timeout)
    }

    fn request(&self, make: fn(SyncSender<bool>) -> Control, timeout: Duration) -> bool {
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        if self.control.send(make(ack)).is_err() {
            return false;
        }
        self.flusher.unpark();
        done.recv_timeout(timeout).unwrap_or(false)
    }
}

/// Whether usage writes are failing now, and why: read by bindings after
/// each validation (one relaxed load while all is well) so that a store
/// refusing writes — a SELECT-only user, a read-only SQLite file — is
/// reported instead of silently counted.
#[derive(Debug, Default)]
pub(crate) struct UsageHealth {
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl UsageHealth {
    /// Why the last write failed, while writes are failing.
    pub(crate) fn failure(&self) -> Option<String> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn record(&self, error: Option<&crate::Error>) {
        if let Some(e) = error {
            *self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
        }
        self.failing.store(error.is_some(), Ordering::Relaxed);
    }
}

struct Flusher {
    store: Arc<dyn ValidationStore>,
    counters: Arc<Counters>,
    health: Arc<UsageHealth>,
    pending: VecDeque<UsageRecord>,
    batch_size: usize,
    capacity: usize,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Flusher {
    /// Moves every queued record into the pending list.
    fn drain(&mut self, records: &Receiver<UsageRecord>) {
        let mut taken = 0;
        while let Ok(record) = records.try_recv() {
            taken += 1;
            if self.pending.len() >= self.capacity {
                // The store has been down long enough to fill a whole queue's
                // worth of backlog: keep the newest, count the oldest as dropped.
                self.pending.pop_front();
                self.counters.usage_dropped.fetch_add(1, Ordering::Relaxed);
            }
            self.pending.push_back(record);
        }
        self.counters
            .usage_queued
            .fetch_sub(taken, Ordering::Relaxed);
    }

    /// Writes pending records in batches; stops at the first failure.
    fn write_pending(&mut self) -> bool {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(self.batch_size);
            let batch: Vec<UsageRecord> = self.pending.range(..n).cloned().collect();
            match self.store.write_usage(&batch) {
                Ok(()) => {
                    self.pending.drain(..n);
                    self.counters
                        .usage_written
                        .fetch_add(n as u64, Ordering::Relaxed);
                    self.retry_at = None;
                    self.backoff = Duration::from_millis(100);
                    self.health.record(None);
                }
                Err(e) => {
                    self.health.record(Some(&e));
                    self.counters
                        .usage_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                    return false;
                }
            }
        }
        true
    }

    /// Writes everything, retrying until the shutdown deadline, then counts
    /// what is still unwritten as dropped. True if nothing was dropped.
    fn finish(&mut self, records: &Receiver<UsageRecord>, timeout: Duration) -> bool {
        self.drain(records);
        let give_up = Instant::now() + timeout;
        while !self.write_pending() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(100));
        }
        let lost = self.pending.len() as u64;
        self.counters
            .usage_dropped
            .fetch_add(lost, Ordering::Relaxed);
        self.pending.clear();
        lost == 0
    }
}

/// The flusher thread's body.
pub(crate) fn run(
    store: Arc<dyn ValidationStore>,
    counters: Arc<Counters>,
    health: Arc<UsageHealth>,
    settings: &UsageSettings,
    records: &Receiver<UsageRecord>,
    control: &Receiver<Control>,
) {
    let mut flusher = Flusher {
        store,
        counters,
        health,
        pending: VecDeque::new(),
        batch_size: settings.batch_size.max(1),
        capacity: settings.queue_capacity.max(1),
        retry_at: None,
        backoff: Duration::from_millis(100),
    };
    let interval = settings.flush_interval;
    // Records are written at most `interval` after the first of them arrived;
    // sleeping a fraction of it bounds that delay without busy polling.
    let tick = (interval / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
    let mut oldest: Option<Instant> = None;
    loop {
        let mut acks = Vec::new();
        let mut stop = None;
        loop {
            match control.try_recv() {
                Ok(Control::Flush(ack)) => acks.push(ack),
                Ok(Control::Shutdown(ack)) => stop = Some(ack),
                Err(TryRecvError::Empty) => break,
                // The engine is gone without a shutdown request.
                Err(TryRecvError::Disconnected) => {
                    flusher.finish(records, settings.shutdown_timeout);
                    return;
                }
            }
        }
        if let Some(ack) = stop {
            let written = flusher.finish(records, settings.shutdown_timeout);
            for ack in acks.into_iter().chain([ack]) {
                let _ = ack.send(written);
            }
            return;
        }
        flusher.drain(records);
        let now = Instant::now();
        if flusher.pending.is_empty() {
            oldest = None;
        } else {
            oldest.get_or_insert(now);
        }
        let due = !acks.is_empty()
            || flusher.pending.len() >= flusher.batch_size
            || oldest.is_some_and(|t| now.duration_since(t) >= interval);
        let may_retry = !acks.is_empty() || flusher.retry_at.is_none_or(|r| r <= now);
        if due && may_retry {
            let written = flusher.write_pending();
            for ack in acks {
                let _ = ack.send(written);
            }
            oldest = (!flusher.pending.is_empty()).then_some(now);
        }
        std::thread::park_timeout(tick);
    }
}
