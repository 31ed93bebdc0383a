//! The host duties of a validator in shared mode: on one thread per
//! process, compete for the host's leadership and, while leading, poll the
//! change feed for the whole host, write the host's usage queue, and free
//! cache slots a dead process left locked. Every process also re-maps the
//! region when another one rebuilt it.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::feed::{Cursor, Poller};
use crate::model::UsageRecord;
use crate::shared::ring::{self, Drain};
use crate::shared::{table, Shared};
use crate::stats::{bump, Counters};
use crate::store::ValidationStore;

/// Cache slots whose checksum the leader verifies per tick.
const DAMAGE_SWEEP_SLOTS: usize = 4096;
use crate::usage::{RoomWait, UsageHealth, UsageSettings};

use super::filler::Filler;

/// Requests to the host thread.
pub(super) enum HostCommand {
    /// Write the host queue now if leading; answered when done.
    Flush(SyncSender<()>),
    /// Write what is queued (if leading or able to lead), resign, stop.
    Stop,
}

/// Queues usage records into the host ring.
pub(super) struct HostQueue {
    pub(super) shared: Arc<Shared>,
    pub(super) counters: Arc<Counters>,
    pub(super) room: RoomWait,
}

impl HostQueue {
    /// Queues a record, waiting for room while the leader writes (see
    /// [`RoomWait`]), or counts it as dropped.
    pub(super) fn push(&self, record: &ring::UsageRef<'_>) {
        let region = self.shared.region();
        if ring::push(region, record) {
            return;
        }
        let head = || {
            region
                .header()
                .ring_head
                .load(std::sync::atomic::Ordering::Acquire)
        };
        if !self.room.wait(head, || ring::push(region, record)) {
            ring::count_dropped(region);
            bump(&self.counters.usage_dropped);
        }
    }

    /// Records waiting host-wide.
    pub(super) fn queued(&self) -> u64 {
        ring::queued(self.shared.region())
    }
}

/// What a usage pass does with a queue shorter than a batch once it has
/// written one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Leave it for the next tick (the host thread's own cadence).
    Leave,
    /// Write it too (a flush asked for, or shutdown).
    Chase,
}

/// The state of the host thread.
pub(super) struct HostDuties {
    pub(super) shared: Arc<Shared>,
    pub(super) store: Arc<dyn ValidationStore>,
    pub(super) poller: Poller,
    pub(super) counters: Arc<Counters>,
    pub(super) health: Arc<UsageHealth>,
    pub(super) usage: Option<UsageSettings>,
    pub(super) interval: Duration,
    pub(super) cursor: Option<Cursor>,
    drain: Drain,
    written_through: Option<i64>,
    last_write: Instant,
    stuck: HashMap<usize, u64>,
    /// Where the checksum sweep continues.
    damaged_cursor: usize,
    ticks: u64,
    /// The fill desk's server, started on first leading.
    filler: Option<Filler>,
    /// Its stop flag and thread.
    filler_thread: Option<(
        Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    )>,
}

impl HostDuties {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        store: Arc<dyn ValidationStore>,
        poller: Poller,
        counters: Arc<Counters>,
        health: Arc<UsageHealth>,
        usage: Option<UsageSettings>,
        interval: Duration,
        cursor: Option<Cursor>,
        filler: Filler,
    ) -> Self {
        HostDuties {
            shared,
            store,
            poller,
            counters,
            health,
            usage,
            interval,
            cursor,
            drain: Drain::default(),
            written_through: None,
            last_write: Instant::now(),
            stuck: HashMap::new(),
            damaged_cursor: 0,
            ticks: 0,
            filler: Some(filler),
            filler_thread: None,
        }
    }

    /// Starts answering other processes' misses (once, on first leading).
    /// Without the thread (it could not be started) they time out and ask
    /// the store themselves.
    fn serve_the_desk(&mut self) {
        if let Some(filler) = self.filler.take() {
            let stop = Arc::clone(&filler.stop);
            self.filler_thread = std::thread::Builder::new()
                .name("heratio-keys-fill".into())
                .spawn(move || filler.run())
                .ok()
                .map(|thread| (stop, thread));
        }
    }

    /// The thread's body.
    pub(super) fn run(mut self, commands: &Receiver<HostCommand>) {
        loop {
            let started = Instant::now();
            self.tick();
            // The interval is the cadence: a tick that spent time writing
            // usage waits only for the rest of it.
            match commands.recv_timeout(self.interval.saturating_sub(started.elapsed())) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(HostCommand::Flush(done)) => {
                    if self.shared.try_lead() {
                        self.write_usage(Tail::Chase);
                    }
                    let _ = done.send(());
                }
                Ok(HostCommand::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.finish();
                    return;
                }
            }
        }
    }

    fn tick(&mut self) {
        // Another process may have rebuilt the region (corrupted, or of an
        // older layout): follow it to the new file.
        let _ = self.shared.refresh();
        self.shared.publish_hits();
        if !self.shared.try_lead() {
            // Another leader may write meanwhile: re-read its cursor when
            // leading again.
            self.written_through = None;
            return;
        }
        self.serve_the_desk();
        match self.cursor.as_mut() {
            Some(cursor) => {
                if self.poller.poll_once(cursor).is_err() {
                    bump(&self.counters.feed_errors);
                }
            }
            // Just elected (or the store was down): continue from where the
            // host's last leader got to.
            None => self.cursor = self.poller.start(),
        }
        if let Some(settings) = self.usage {
            let due = self.last_write.elapsed() >= settings.flush_interval
                || ring::queued(self.shared.region()) >= settings.batch_size as u64;
            if due {
                self.write_usage(Tail::Leave);
            }
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(10) {
            table::sweep_stuck(self.shared.region(), &mut self.stuck);
        }
        // The default table (131 072 slots) checked in 32 ticks: 16 s at
        // the default poll interval, 2 MiB read per tick.
        table::sweep_damaged(
            self.shared.region(),
            &mut self.damaged_cursor,
            DAMAGE_SWEEP_SLOTS,
        );
    }

    /// Writes the host queue in batches; each batch commits the queue
    /// position it reaches with it. Stops at the first failure (retried at
    /// the next tick; the records stay queued).
    fn write_usage(&mut self, tail: Tail) -> bool {
        let Some(settings) = self.usage else {
            return true;
        };
        self.last_write = Instant::now();
        let region = self.shared.region();
        let queue = format!(
            "{:016x}",
            region
                .header()
                .region_id
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        if self.written_through.is_none() {
            match self.store.usage_written_through(&queue) {
                Ok(position) => self.written_through = Some(position.unwrap_or(-1)),
                Err(e) => {
                    self.health.record(Some(&e));
                    bump(&self.counters.usage_write_errors);
                    return false;
                }
            }
        }
        // At most one poll interval per pass. Under sustained load the ring
        // never empties: a pass that chased it kept this thread from its
        // next feed poll (revocations late; every cached answer past the
        // stale bound refetched by a query: 30 SELECTs a second for 50 hot
        // keys over HTTP). A pass bounded to what was queued when it began
        // was too short instead: the ring (16 384 records) filled during
        // the wait that followed at 10 000 validations a second.
        let deadline = Instant::now() + self.interval;
        loop {
            let batch = ring::peek(region, &mut self.drain, settings.batch_size);
            let Some(&(last, _)) = batch.last() else {
                return true;
            };
            let done = self.written_through.unwrap_or(-1);
            let fresh: Vec<UsageRecord> = batch
                .into_iter()
                .filter(|(pos, _)| (*pos).cast_signed() > done)
                .map(|(_, r)| r)
                .collect();
            if !fresh.is_empty() {
                match self
                    .store
                    .write_usage_through(&fresh, &queue, last.cast_signed())
                {
                    Ok(()) => {
                        self.health.record(None);
                        self.counters
                            .usage_written
                            .fetch_add(fresh.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        region
                            .header()
                            .ring_written
                            .fetch_add(fresh.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.health.record(Some(&e));
                        bump(&self.counters.usage_write_errors);
                        return false;
                    }
                }
            }
            self.written_through = Some(last.cast_signed());
            ring::release(region, last);
            // Under sustained load the ring never empties: chasing its tail
            // wrote batches of the few dozen records that arrived during
            // the last write, back to back, each paying a commit, an fsync
            // and its statements, so MariaDB spent ~3× the CPU per row of
            // full batches over HTTP. A tick's pass writes one batch, then
            // only full ones; the rest waits for the next tick (at most a
            // poll interval, within the flush interval).
            let short = ring::queued(region) < settings.batch_size as u64;
            if Instant::now() >= deadline || (tail == Tail::Leave && short) {
                return true;
            }
        }
    }

    /// At shutdown: if no other process leads, write what is queued
    /// (retrying for a while if the store is down), then resign.
    fn finish(&mut self) {
        self.shared.publish_hits();
        if self.shared.try_lead() {
            let deadline =
                Instant::now() + self.usage.map_or(Duration::ZERO, |u| u.shutdown_timeout);
            // Passes are bounded in time: repeat until what was queued when
            // shutdown began is written (other processes may keep pushing;
            // their records wait for the next leader).
            let target = self
                .shared
                .region()
                .header()
                .ring_tail
                .load(std::sync::atomic::Ordering::Acquire);
            loop {
                let written = self.write_usage(Tail::Chase);
                let head = self
                    .shared
                    .region()
                    .header()
                    .ring_head
                    .load(std::sync::atomic::Ordering::Acquire);
                if (written && head >= target) || Instant::now() >= deadline {
                    break;
                }
                if !written {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        if let Some((stop, thread)) = self.filler_thread.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            crate::shared::desk::ring_bell(self.shared.region());
            let _ = thread.join();
        }
        self.shared.resign();
    }
}
