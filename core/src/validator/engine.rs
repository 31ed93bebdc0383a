//! The per-process machinery behind a validator: store connections, cache,
//! feed poller and usage recording, started together and stopped together.
//! Private (this process's cache, poller and flusher) or host-shared (the
//! region's cache and queue, and a thread that leads the host when its
//! turn comes).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cache::{Ages, Cache, CredentialCache, HostCache};
use crate::error::{Error, Result};
use crate::feed::{FeedState, Poller};
use crate::fork;
use crate::format::KeyShape;
use crate::ratelimit::RateLimiter;
use crate::shared::ring::UsageRef;
use crate::shared::{Shared, SharedSettings};
use crate::stats::Counters;
use crate::store::{self, Dsn, ValidationStore};
use crate::usage::{self, RoomWait, UsageHealth, UsageQueue};

use super::filler::Filler;
use super::host::{HostCommand, HostDuties, HostQueue};
use super::Options;

/// Where usage records go.
pub(super) enum Recording {
    Off,
    Private(UsageQueue),
    Host(HostQueue),
}

impl Recording {
    pub(super) fn push(&self, record: UsageRef<'_>) {
        match self {
            Recording::Off => {}
            Recording::Private(q) => q.push(record.to_owned_record()),
            Recording::Host(q) => q.push(&record),
        }
    }
}

/// What stops the background threads.
enum Stopper {
    Private(SyncSender<()>),
    Host(Sender<HostCommand>),
}

pub(super) struct Engine {
    pub(super) fork_generation: u64,
    pub(super) store: Arc<dyn ValidationStore>,
    pub(super) cache: Arc<Cache>,
    pub(super) feed: Arc<FeedState>,
    pub(super) usage: Recording,
    pub(super) legacy: Arc<LegacyShapes>,
    pub(super) rate: RateLimiter,
    /// The host region, in shared mode.
    pub(super) host: Option<Arc<Shared>>,
    /// Why shared mode was asked for but not used.
    pub(super) host_error: Option<String>,
    stopper: Mutex<Option<Stopper>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shutdown_timeout: Duration,
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(|e| Error::internal(format!("cannot start the {name} thread: {e}")))
}

impl Engine {
    pub(super) fn start(
        dsn: &Dsn,
        options: &Options,
        counters: &Arc<Counters>,
        usage_health: &Arc<UsageHealth>,
    ) -> Result<Engine> {
        let store: Arc<dyn ValidationStore> = store::open_with(dsn, &options.store_connections())?;
        let (host, host_error) = if options.shared_cache() {
            let settings = SharedSettings {
                table_slots: options.shared_cache_slots(),
                ring_slots: options.shared_queue_records(),
            };
            match Shared::open(&dsn.identity(), settings) {
                Ok(shared) => (Some(Arc::new(shared)), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        let cache_settings = options.cache_settings();
        let (cache, feed, legacy) = match &host {
            Some(shared) => (
                Cache::Host(HostCache::new(Arc::clone(shared), &cache_settings)),
                FeedState::host(Arc::clone(shared)),
                LegacyShapes::Host(Arc::clone(shared)),
            ),
            None => (
                Cache::Private(CredentialCache::new(&cache_settings)),
                FeedState::local(),
                LegacyShapes::Local(AtomicU8::new(0)),
            ),
        };
        let (cache, feed, legacy) = (Arc::new(cache), Arc::new(feed), Arc::new(legacy));
        let (evicting, emptying) = (Arc::clone(&cache), Arc::clone(&cache));
        let (refreshing, shapes_store) = (Arc::clone(&legacy), Arc::clone(&store));
        let poller = Poller {
            store: Arc::clone(&store),
            state: Arc::clone(&feed),
            counters: Arc::clone(counters),
            evict: Box::new(move |digest| evicting.invalidate(digest)),
            changed: Box::new(move || refreshing.refresh(shapes_store.as_ref())),
            evict_all: Box::new(move || emptying.invalidate_all()),
        };
        // A new engine's writer has not failed yet.
        usage_health.record(None);
        let mut threads = Vec::new();
        let interval = options.poll_interval();
        let (usage, stopper) = match &host {
            Some(shared) => {
                // Lead now if nobody does, so the first validation already
                // finds the feed read and the legacy shapes known.
                let cursor = if shared.try_lead() {
                    legacy.refresh(store.as_ref());
                    poller.start()
                } else {
                    None
                };
                // Whoever leads writes the host's queue, even a process that
                // records nothing itself (`usage_log` off): the queue holds
                // the other processes' records, which would otherwise wait
                // until the ring filled and then be dropped.
                let usage_settings = Some(options.usage_settings());
                let filler = Filler {
                    shared: Arc::clone(shared),
                    store: Arc::clone(&store),
                    feed: Arc::clone(&feed),
                    counters: Arc::clone(counters),
                    ages: Ages::new(&cache_settings),
                    fill_delay: cache_settings.fill_delay,
                    stop: Arc::new(AtomicBool::new(false)),
                };
                let duties = HostDuties::new(
                    Arc::clone(shared),
                    Arc::clone(&store),
                    poller,
                    Arc::clone(counters),
                    Arc::clone(usage_health),
                    usage_settings,
                    interval,
                    cursor,
                    filler,
                );
                let (commands, inbox) = std::sync::mpsc::channel();
                threads.push(spawn("heratio-keys-host", move || duties.run(&inbox))?);
                let usage = if options.usage_log() {
                    Recording::Host(HostQueue {
                        shared: Arc::clone(shared),
                        counters: Arc::clone(counters),
                        room: RoomWait::default(),
                    })
                } else {
                    Recording::Off
                };
                (usage, Stopper::Host(commands))
            }
            None => {
                legacy.refresh(store.as_ref());
                // If the store is down now, the poller keeps trying and the
                // validator answers uncached meanwhile.
                let cursor = poller.start();
                let (stop_tx, stop_rx) = std::sync::mpsc::sync_channel::<()>(1);
                threads.push(spawn("heratio-keys-feed", move || {
                    poller.run(cursor, interval, &stop_rx);
                })?);
                let usage = if options.usage_log() {
                    let settings = options.usage_settings();
                    let (records_tx, records_rx) =
                        std::sync::mpsc::sync_channel(settings.queue_capacity);
                    let (control_tx, control_rx) = std::sync::mpsc::channel();
                    let flusher_store = Arc::clone(&store);
                    let flusher_counters = Arc::clone(counters);
                    let flusher_health = Arc::clone(usage_health);
                    let flusher = spawn("heratio-keys-usage", move || {
                        usage::run(
                            flusher_store,
                            flusher_counters,
                            flusher_health,
                            &settings,
                            &records_rx,
                            &control_rx,
                        );
                    })?;
                    let queue = UsageQueue::new(
                        records_tx,
                        control_tx,
                        flusher.thread().clone(),
                        Arc::clone(counters),
                        &settings,
                    );
                    threads.push(flusher);
                    Recording::Private(queue)
                } else {
                    Recording::Off
                };
                (usage, Stopper::Private(stop_tx))
            }
        };
        Ok(Engine {
            fork_generation: fork::generation(),
            store,
            cache,
            feed,
            usage,
            legacy,
            rate: RateLimiter::default(),
            host,
            host_error,
            stopper: Mutex::new(Some(stopper)),
            threads: Mutex::new(threads),
            shutdown_timeout: options.shutdown_flush_timeout() + Duration::from_secs(1),
        })
    }

    /// Writes every usage record queued so far; false if that did not
    /// finish within `timeout`.
    pub(super) fn flush(&self, timeout: Duration) -> bool {
        match &self.usage {
            Recording::Off => true,
            Recording::Private(q) => q.flush(timeout),
            Recording::Host(q) => {
                // Ask our host thread to write now (it does if it leads),
                // then wait for whoever leads to have written past what
                // was queued when we were asked.
                let region = q.shared.region();
                let target = region.header().ring_tail.load(Ordering::Acquire);
                let deadline = std::time::Instant::now() + timeout;
                loop {
                    if region.header().ring_head.load(Ordering::Acquire) >= target {
                        return true;
                    }
                    if std::time::Instant::now() >= deadline {
                        return false;
                    }
                    if let Some(Stopper::Host(commands)) = lock(&self.stopper).as_ref() {
                        let (done, wait) = std::sync::mpsc::sync_channel(1);
                        if commands.send(HostCommand::Flush(done)).is_ok() {
                            let _ = wait.recv_timeout(deadline - std::time::Instant::now());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// Records queued and not yet written (host-wide in shared mode).
    pub(super) fn queued(&self) -> Option<u64> {
        match &self.usage {
            Recording::Host(q) => Some(q.queued()),
            _ => None,
        }
    }

    pub(super) fn shutdown(&self) {
        self.rate
            .release(self.store.as_ref(), crate::model::now_ms());
        if let Recording::Private(usage) = &self.usage {
            usage.shutdown(self.shutdown_timeout);
        }
        match lock(&self.stopper).take() {
            Some(Stopper::Private(stop)) => {
                let _ = stop.try_send(());
            }
            Some(Stopper::Host(commands)) => {
                let _ = commands.send(HostCommand::Stop);
            }
            None => {}
        }
        for thread in lock(&self.threads).drain(..) {
            let _ = thread.join();
        }
    }
}

/// Which legacy key shapes stored API keys have (a bit per shape): read at
/// start and again after any feed change, so an import is noticed within a
/// poll, and a process whose store holds none spends no query on a
/// malformed key. In shared mode the leader keeps the host's copy.
#[derive(Debug)]
pub(super) enum LegacyShapes {
    Local(AtomicU8),
    Host(Arc<Shared>),
}

impl LegacyShapes {
    fn refresh(&self, store: &dyn ValidationStore) {
        // On error the last known set stays: a transient failure must not
        // make imported keys malformed.
        if let Ok(shapes) = store.legacy_shapes() {
            let bits = shapes.iter().fold(0u8, |bits, s| bits | 1 << s.code());
            match self {
                LegacyShapes::Local(b) => b.store(bits, Ordering::Relaxed),
                LegacyShapes::Host(shared) => shared
                    .region()
                    .header()
                    .legacy_shapes
                    .store(u32::from(bits), Ordering::Relaxed),
            }
        }
    }

    pub(super) fn contains(&self, shape: KeyShape) -> bool {
        let bits = match self {
            LegacyShapes::Local(b) => u32::from(b.load(Ordering::Relaxed)),
            LegacyShapes::Host(shared) => shared
                .region()
                .header()
                .legacy_shapes
                .load(Ordering::Relaxed),
        };
        bits & (1 << shape.code()) != 0
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
