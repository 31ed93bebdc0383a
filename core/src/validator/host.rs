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

use crate::usage::{UsageHealth, UsageSettings};

/// Cache slots whose checksum the leader verifies per tick.
const DAMAGE_SWEEP_SLOTS: usize = 4096;

/// Usage writers of a host: records are dealt to the lanes by credential
/// (its id modulo [`LANES`]; records without one, the rejected, to lane
/// 0), and the leader writes each lane's records in its own transaction on
/// its own connection, all lanes at once. One writer could not keep up with
/// a busy host: with the CPU saturated it gets one thread's share of it
/// (and the database one for its session), ~10 000 rows/s where the host
/// validated 12 000/s. By credential, because every batch also bumps its
/// credentials' counters and daily rows: lanes dealt by position touched
/// the same rows, waited on each other's locks and wrote less than one
/// lane. Each lane commits its own records in position order with its own
/// cursor (`usage_cursor`), so "the record at `p` is written" stays a single
/// comparison for a successor, who reads the record's lane from the record
/// itself: `p <= cursor[lane(record)]`.
pub(super) const LANES: usize = 2;

fn lane_of(record: &UsageRecord) -> usize {
    record.credential_id.map_or(0, |id| {
        usize::try_from(id.rem_euclid(LANES as i64)).unwrap_or(0)
    })
}

/// The `usage_cursor` queue of a lane (lane 0 keeps the region's own name).
fn lane_queue(region_id: u64, lane: usize) -> String {
    match lane {
        0 => format!("{region_id:016x}"),
        _ => format!("{region_id:016x}.{lane}"),
    }
}

/// Attempts per lane batch before a pass gives up on it: two lanes' upserts
/// of the same counters can deadlock, which the database resolves by
/// failing one of them, and a retry at once then succeeds.
const LANE_ATTEMPTS: usize = 3;

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
}

impl HostQueue {
    pub(super) fn push(&self, record: &ring::UsageRef<'_>) {
        if !ring::push(&self.shared.region(), record) {
            bump(&self.counters.usage_dropped);
        }
    }

    /// Records waiting host-wide.
    pub(super) fn queued(&self) -> u64 {
        ring::queued(&self.shared.region())
    }
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
    /// Per lane, the last position written (read from the store on first
    /// writing after gaining the lead).
    written_through: Option<[i64; LANES]>,
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
                        self.write_usage();
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
            // Another leader may write meanwhile: re-read its cursors when
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
                || ring::queued(&self.shared.region()) >= settings.batch_size as u64;
            if due {
                self.write_usage();
            }
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(10) {
            table::sweep_stuck(&self.shared.region(), &mut self.stuck);
        }
        // The default table (131 072 slots) checked in 32 ticks: 16 s at
        // the default poll interval, 2 MiB read per tick.
        table::sweep_damaged(
            &self.shared.region(),
            &mut self.damaged_cursor,
            DAMAGE_SWEEP_SLOTS,
        );
    }

    /// Writes the host queue in batches; each batch commits the queue
    /// position it reaches with it. Stops at the first failure (retried at
    /// the next tick; the records stay queued).
    fn write_usage(&mut self) -> bool {
        let Some(settings) = self.usage else {
            return true;
        };
        self.last_write = Instant::now();
        let region = self.shared.region();
        let region_id = region
            .header()
            .region_id
            .load(std::sync::atomic::Ordering::Relaxed);
        let queues: [String; LANES] = std::array::from_fn(|lane| lane_queue(region_id, lane));
        if self.written_through.is_none() {
            let mut through = [-1; LANES];
            for (done, queue) in through.iter_mut().zip(&queues) {
                match self.store.usage_written_through(queue) {
                    Ok(position) => *done = position.unwrap_or(-1),
                    Err(e) => {
                        self.health.record(Some(&e));
                        bump(&self.counters.usage_write_errors);
                        return false;
                    }
                }
            }
            self.written_through = Some(through);
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
            let batch = ring::peek(&region, &mut self.drain, settings.batch_size * LANES);
            let Some(&(last, _)) = batch.last() else {
                return true;
            };
            let mut done = self.written_through.unwrap_or([-1; LANES]);
            let mut lanes: [LaneBatch; LANES] = Default::default();
            // The ring frees a prefix: everything before this position.
            let mut release_before = last + 1;
            for (position, record) in batch {
                let lane_index = lane_of(&record);
                if position.cast_signed() <= done[lane_index] {
                    continue;
                }
                let lane = &mut lanes[lane_index];
                if lane.records.len() == settings.batch_size {
                    // Left for the next pass (the window is two batches,
                    // this lane's share of it more than one).
                    release_before = release_before.min(position);
                    continue;
                }
                lane.first.get_or_insert(position);
                lane.last = position;
                lane.records.push(record);
            }
            let results = self.write_lanes(&lanes, &queues);
            let mut failure = None;
            for ((lane, result), done) in lanes.iter().zip(results).zip(&mut done) {
                match result {
                    Ok(()) if !lane.records.is_empty() => {
                        *done = lane.last.cast_signed();
                        let n = lane.records.len() as u64;
                        let relaxed = std::sync::atomic::Ordering::Relaxed;
                        self.counters.usage_written.fetch_add(n, relaxed);
                        region.header().ring_written.fetch_add(n, relaxed);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        // Its records stay queued, and so does everything
                        // after its first: the ring frees only a prefix.
                        if let Some(first) = lane.first {
                            release_before = release_before.min(first);
                        }
                        failure = Some(e);
                    }
                }
            }
            self.written_through = Some(done);
            let head = region
                .header()
                .ring_head
                .load(std::sync::atomic::Ordering::Acquire);
            if release_before > head {
                ring::release(&region, release_before - 1);
            }
            if let Some(e) = failure {
                self.health.record(Some(&e));
                bump(&self.counters.usage_write_errors);
                return false;
            }
            self.health.record(None);
            if Instant::now() >= deadline {
                return true;
            }
        }
    }

    /// Writes each lane's records with the lane's cursor, the lanes at once
    /// (lane 0 on this thread), each retried a few times.
    fn write_lanes(
        &self,
        lanes: &[LaneBatch; LANES],
        queues: &[String; LANES],
    ) -> [crate::error::Result<()>; LANES] {
        let store = self.store.as_ref();
        let write = |lane: &LaneBatch, queue: &str| {
            if lane.records.is_empty() {
                return Ok(());
            }
            let mut attempt = 1;
            loop {
                match store.write_usage_through(&lane.records, queue, lane.last.cast_signed()) {
                    Err(_) if attempt < LANE_ATTEMPTS => attempt += 1,
                    result => return result,
                }
            }
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = lanes[1..]
                .iter()
                .zip(&queues[1..])
                .map(|(lane, queue)| {
                    (!lane.records.is_empty()).then(|| scope.spawn(move || write(lane, queue)))
                })
                .collect();
            let mut first = Some(write(&lanes[0], &queues[0]));
            let mut results = others.into_iter().map(|handle| match handle {
                None => Ok(()),
                Some(handle) => handle.join().unwrap_or_else(|_| {
                    Err(crate::error::Error::internal("a usage lane panicked"))
                }),
            });
            std::array::from_fn(|lane| match lane {
                0 => first.take().unwrap_or(Ok(())),
                _ => results.next().unwrap_or(Ok(())),
            })
        })
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
                let written = self.write_usage();
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
            crate::shared::desk::ring_bell(&self.shared.region());
            let _ = thread.join();
        }
        self.shared.resign();
    }
}

/// One lane's share of a pass: its records not yet written, in position
/// order, and the first and last of their positions.
#[derive(Default)]
struct LaneBatch {
    records: Vec<UsageRecord>,
    first: Option<u64>,
    last: u64,
}
