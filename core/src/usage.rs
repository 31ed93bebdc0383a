//! Usage recording off the hot path.
//!
//! Validations push records into a bounded queue with `try_send` (never
//! blocking the caller); a flusher thread writes them in multi-row batches at
//! most every flush interval or whenever a batch fills. Records that cannot be
//! queued, or that cannot be written before shutdown gives up, are counted
//! as dropped. Nothing else is dropped: a failed write is retried with
//! backoff, keeping the batch, until the store comes back.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::UsageRecord;
use crate::store::KeyStore;
use crate::validator::{Counters, Options};

pub(crate) enum Message {
    Record(UsageRecord),
    /// Write everything queued so far, then acknowledge whether it worked.
    Flush(SyncSender<bool>),
    /// Write everything (retrying until the deadline), then stop.
    Shutdown(SyncSender<bool>),
}

/// The producing side, held by the engine.
pub(crate) struct UsageQueue {
    sender: SyncSender<Message>,
    counters: Arc<Counters>,
}

impl UsageQueue {
    pub(crate) fn new(sender: SyncSender<Message>, counters: Arc<Counters>) -> Self {
        UsageQueue { sender, counters }
    }

    /// Queues a record, or counts it as dropped if the queue is full.
    pub(crate) fn push(&self, record: UsageRecord) {
        match self.sender.try_send(Message::Record(record)) {
            Ok(()) => {
                self.counters.usage_queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.usage_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Blocks until everything queued before this call is written or the
    /// flusher gave up on it for now; false on timeout.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.request(Message::Flush, timeout)
    }

    /// Asks the flusher to write everything and stop.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        self.request(Message::Shutdown, timeout)
    }

    fn request(&self, make: fn(SyncSender<bool>) -> Message, timeout: Duration) -> bool {
        let (ack, done) = std::sync::mpsc::sync_channel(1);
        // A blocking send: the flusher drains continuously, so this waits at
        // most for the queue ahead of it.
        if self.sender.send(make(ack)).is_err() {
            return false;
        }
        done.recv_timeout(timeout).unwrap_or(false)
    }
}

struct Flusher {
    store: Arc<dyn KeyStore>,
    counters: Arc<Counters>,
    pending: VecDeque<UsageRecord>,
    batch_size: usize,
    capacity: usize,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Flusher {
    fn take(&mut self, record: UsageRecord) {
        self.counters.usage_queued.fetch_sub(1, Ordering::Relaxed);
        if self.pending.len() >= self.capacity {
            // The store has been down long enough to fill a whole queue's
            // worth of backlog: keep the newest, count the oldest as dropped.
            self.pending.pop_front();
            self.counters.usage_dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.pending.push_back(record);
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
                }
                Err(_) => {
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
}

/// The flusher thread's body.
pub(crate) fn run(
    store: Arc<dyn KeyStore>,
    counters: Arc<Counters>,
    options: &Options,
    receiver: &Receiver<Message>,
) {
    let mut flusher = Flusher {
        store,
        counters,
        pending: VecDeque::new(),
        batch_size: options.usage_batch_size.max(1),
        capacity: options.usage_queue_capacity.max(1),
        retry_at: None,
        backoff: Duration::from_millis(100),
    };
    let interval = options.usage_flush_interval;
    let mut deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let wake = match (deadline, flusher.retry_at) {
            (Some(d), Some(r)) => Some(d.max(r)),
            (d, r) => d.or(r),
        };
        let message = match wake {
            Some(at) if at <= now => Err(RecvTimeoutError::Timeout),
            Some(at) => receiver.recv_timeout(at - now),
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match message {
            Ok(Message::Record(record)) => {
                flusher.take(record);
                deadline.get_or_insert(now + interval);
                if flusher.pending.len() >= flusher.batch_size
                    && flusher.retry_at.is_none_or(|r| r <= now)
                {
                    flusher.write_pending();
                    deadline = (!flusher.pending.is_empty()).then_some(now + interval);
                }
            }
            Ok(Message::Flush(ack)) => {
                let mut waiting = vec![ack];
                let shutdown = drain(&mut flusher, receiver, &mut waiting);
                let written = flusher.write_pending();
                for ack in waiting {
                    let _ = ack.send(written);
                }
                deadline = (!flusher.pending.is_empty()).then_some(now + interval);
                if let Some(ack) = shutdown {
                    let _ = ack.send(finish(&mut flusher, options));
                    return;
                }
            }
            Ok(Message::Shutdown(ack)) => {
                let mut waiting = vec![ack];
                let _ = drain(&mut flusher, receiver, &mut waiting);
                let written = finish(&mut flusher, options);
                for ack in waiting {
                    let _ = ack.send(written);
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                if flusher.retry_at.is_none_or(|r| r <= Instant::now()) {
                    flusher.write_pending();
                }
                deadline = (!flusher.pending.is_empty()).then_some(Instant::now() + interval);
            }
            Err(RecvTimeoutError::Disconnected) => {
                finish(&mut flusher, options);
                return;
            }
        }
    }
}

/// Writes everything, retrying until the shutdown deadline, then counts
/// what is still unwritten as dropped. True if nothing was dropped.
fn finish(flusher: &mut Flusher, options: &Options) -> bool {
    let give_up = Instant::now() + options.shutdown_flush_timeout;
    while !flusher.write_pending() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(100));
    }
    let lost = flusher.pending.len() as u64;
    flusher
        .counters
        .usage_dropped
        .fetch_add(lost, Ordering::Relaxed);
    flusher.pending.clear();
    lost == 0
}

/// Moves every record already queued into the pending list. Flush
/// requests found on the way join `waiting` (the flush in progress answers
/// them); a shutdown request is returned, to be honoured after the flush.
fn drain(
    flusher: &mut Flusher,
    receiver: &Receiver<Message>,
    waiting: &mut Vec<SyncSender<bool>>,
) -> Option<SyncSender<bool>> {
    let mut shutdown = None;
    while let Ok(message) = receiver.try_recv() {
        match message {
            Message::Record(record) => flusher.take(record),
            Message::Flush(ack) => waiting.push(ack),
            Message::Shutdown(ack) => shutdown = Some(ack),
        }
    }
    shutdown
}
