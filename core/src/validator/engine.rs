//! The per-process machinery behind a validator: store connections, cache,
//! feed poller and usage flusher, started together and stopped together.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cache::CredentialCache;
use crate::error::{Error, Result};
use crate::feed::{FeedState, Poller};
use crate::fork;
use crate::format::KeyShape;
use crate::ratelimit::RateLimiter;
use crate::stats::Counters;
use crate::store::{self, Dsn, ValidationStore};
use crate::usage::{self, UsageHealth, UsageQueue};

use super::Options;

pub(super) struct Engine {
    pub(super) fork_generation: u64,
    pub(super) store: Arc<dyn ValidationStore>,
    pub(super) cache: Arc<CredentialCache>,
    pub(super) feed: Arc<FeedState>,
    pub(super) usage: Option<UsageQueue>,
    pub(super) usage_health: Arc<UsageHealth>,
    pub(super) legacy: Arc<LegacyShapes>,
    pub(super) rate: RateLimiter,
    stop_poller: Mutex<Option<SyncSender<()>>>,
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
    pub(super) fn start(dsn: &Dsn, options: &Options, counters: &Arc<Counters>) -> Result<Engine> {
        let store: Arc<dyn ValidationStore> = store::open(dsn)?;
        let cache = Arc::new(CredentialCache::new(&options.cache_settings()));
        let feed = Arc::new(FeedState::new());
        let evicting = Arc::clone(&cache);
        let legacy = Arc::new(LegacyShapes::default());
        legacy.refresh(store.as_ref());
        let (refreshing, shapes_store) = (Arc::clone(&legacy), Arc::clone(&store));
        let poller = Poller {
            store: Arc::clone(&store),
            state: Arc::clone(&feed),
            counters: Arc::clone(counters),
            evict: Box::new(move |digest| evicting.invalidate(digest)),
            changed: Box::new(move || refreshing.refresh(shapes_store.as_ref())),
        };
        // If the store is down now, the poller keeps trying and the
        // validator answers uncached meanwhile.
        let cursor = poller.start();
        let mut threads = Vec::new();
        let (stop_tx, stop_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let interval = options.poll_interval();
        threads.push(spawn("heratio-keys-feed", move || {
            poller.run(cursor, interval, &stop_rx);
        })?);
        let usage_health = Arc::new(UsageHealth::default());
        let usage = if options.usage_log() {
            let settings = options.usage_settings();
            let (records_tx, records_rx) = std::sync::mpsc::sync_channel(settings.queue_capacity);
            let (control_tx, control_rx) = std::sync::mpsc::channel();
            let flusher_store = Arc::clone(&store);
            let flusher_counters = Arc::clone(counters);
            let flusher_health = Arc::clone(&usage_health);
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
            Some(queue)
        } else {
            None
        };
        Ok(Engine {
            fork_generation: fork::generation(),
            store,
            cache,
            feed,
            usage,
            usage_health,
            legacy,
            rate: RateLimiter::default(),
            stop_poller: Mutex::new(Some(stop_tx)),
            threads: Mutex::new(threads),
            shutdown_timeout: options.shutdown_flush_timeout() + Duration::from_secs(1),
        })
    }

    pub(super) fn shutdown(&self) {
        self.rate
            .release(self.store.as_ref(), crate::model::now_ms());
        if let Some(usage) = &self.usage {
            usage.shutdown(self.shutdown_timeout);
        }
        if let Some(stop) = lock(&self.stop_poller).take() {
            let _ = stop.try_send(());
        }
        for thread in lock(&self.threads).drain(..) {
            let _ = thread.join();
        }
    }
}

/// Which legacy key shapes stored API keys have (a bit per shape): read at
/// start and again after any feed change, so an import is noticed within a
/// poll, and a process whose store holds none spends no query on a
/// malformed key.
#[derive(Debug, Default)]
pub(super) struct LegacyShapes(AtomicU8);

impl LegacyShapes {
    fn refresh(&self, store: &dyn ValidationStore) {
        // On error the last known set stays: a transient failure must not
        // make imported keys malformed.
        if let Ok(shapes) = store.legacy_shapes() {
            let bits = shapes.iter().fold(0u8, |bits, s| bits | 1 << s.code());
            self.0.store(bits, Ordering::Relaxed);
        }
    }

    pub(super) fn contains(&self, shape: KeyShape) -> bool {
        self.0.load(Ordering::Relaxed) & (1 << shape.code()) != 0
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
