//! The validator: format check, digest, cache, one indexed query on a miss,
//! usage recording; kept correct by the change-feed poller.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use moka::sync::Cache;
use moka::Expiry;
use subtle::ConstantTimeEq;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{self, Digest, Kind};
use crate::model::{self, Credential, UsageRecord};
use crate::status::Status;
use crate::store::{self, Dsn, KeyStore, SCHEMA_VERSION};
use crate::usage::{self, UsageQueue};
use crate::{feed, fork};

/// Tuning knobs of a [`Validator`]. Build with [`Options::default`] and the
/// setters; every value has a documented default.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) cache_capacity: u64,
    pub(crate) cache_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) stale_bound: Duration,
    pub(crate) usage_log: bool,
    pub(crate) usage_queue_capacity: usize,
    pub(crate) usage_batch_size: usize,
    pub(crate) usage_flush_interval: Duration,
    pub(crate) shutdown_flush_timeout: Duration,
    pub(crate) fill_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            stale_bound: Duration::from_secs(10),
            usage_log: true,
            usage_queue_capacity: 65_536,
            usage_batch_size: 1000,
            usage_flush_interval: Duration::from_secs(1),
            shutdown_flush_timeout: Duration::from_secs(5),
            fill_delay: Duration::ZERO,
        }
    }
}

impl Options {
    /// See [`Options::cache_capacity`].
    #[must_use]
    pub fn get_cache_capacity(&self) -> u64 {
        self.cache_capacity
    }

    /// See [`Options::cache_ttl`].
    #[must_use]
    pub fn get_cache_ttl(&self) -> Duration {
        self.cache_ttl
    }

    /// See [`Options::negative_ttl`].
    #[must_use]
    pub fn get_negative_ttl(&self) -> Duration {
        self.negative_ttl
    }

    /// See [`Options::poll_interval`].
    #[must_use]
    pub fn get_poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// See [`Options::stale_bound`].
    #[must_use]
    pub fn get_stale_bound(&self) -> Duration {
        self.stale_bound
    }

    /// See [`Options::usage_log`].
    #[must_use]
    pub fn get_usage_log(&self) -> bool {
        self.usage_log
    }

    /// See [`Options::usage_queue_capacity`].
    #[must_use]
    pub fn get_usage_queue_capacity(&self) -> usize {
        self.usage_queue_capacity
    }

    /// See [`Options::usage_batch_size`].
    #[must_use]
    pub fn get_usage_batch_size(&self) -> usize {
        self.usage_batch_size
    }

    /// See [`Options::usage_flush_interval`].
    #[must_use]
    pub fn get_usage_flush_interval(&self) -> Duration {
        self.usage_flush_interval
    }

    /// See [`Options::shutdown_flush_timeout`].
    #[must_use]
    pub fn get_shutdown_flush_timeout(&self) -> Duration {
        self.shutdown_flush_timeout
    }

    /// Most cached digests, positive and negative together (default 100 000).
    #[must_use]
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Backstop lifetime of a cached credential even if the feed were missed
    /// (default 60 s).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Lifetime of a cached "not found" answer (default 60 s). New keys
    /// evict their negative entries through the feed, so this only bounds
    /// memory churn from floods of unknown keys.
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// How often the change feed is read (default 500 ms).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Fail-closed bound (default 10 s): when the feed has not been read for
    /// longer than this, cached positive answers older than this are not
    /// served; the store is asked instead, and `unavailable` is returned if
    /// it cannot answer.
    #[must_use]
    pub fn stale_bound(mut self, bound: Duration) -> Self {
        self.stale_bound = bound;
        self
    }

    /// Whether validations are written to `usage_log` (default on).
    #[must_use]
    pub fn usage_log(mut self, enabled: bool) -> Self {
        self.usage_log = enabled;
        self
    }

    /// Records buffered before new ones are dropped (default 65 536).
    #[must_use]
    pub fn usage_queue_capacity(mut self, records: usize) -> Self {
        self.usage_queue_capacity = records;
        self
    }

    /// Rows per multi-row insert (default 1000).
    #[must_use]
    pub fn usage_batch_size(mut self, rows: usize) -> Self {
        self.usage_batch_size = rows;
        self
    }

    /// Longest time a record waits before being written (default 1 s).
    #[must_use]
    pub fn usage_flush_interval(mut self, interval: Duration) -> Self {
        self.usage_flush_interval = interval;
        self
    }

    /// Fault injection for tests: waits this long between a miss's store
    /// query and its cache fill, widening the window in which a revocation
    /// can race the fill. Not for production use.
    #[doc(hidden)]
    #[must_use]
    pub fn test_fill_delay(mut self, delay: Duration) -> Self {
        self.fill_delay = delay;
        self
    }

    /// How long closing keeps retrying to write buffered usage (default 5 s).
    #[must_use]
    pub fn shutdown_flush_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_flush_timeout = timeout;
        self
    }
}

/// One validation request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The kind the caller expects.
    pub kind: Kind,
    /// The presented credential, as bytes (non-UTF-8 is simply malformed).
    pub key: &'a [u8],
    /// Scopes the credential must hold.
    pub scopes: &'a [&'a str],
    /// Client IP, for the usage log.
    pub ip: Option<&'a str>,
    /// Endpoint, for the usage log.
    pub endpoint: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A request with no required scopes and no usage details.
    #[must_use]
    pub fn new(kind: Kind, key: &'a [u8]) -> Self {
        Request {
            kind,
            key,
            scopes: &[],
            ip: None,
            endpoint: None,
        }
    }

    /// Requires these scopes.
    #[must_use]
    pub fn scopes(mut self, scopes: &'a [&'a str]) -> Self {
        self.scopes = scopes;
        self
    }

    /// Records this client IP.
    #[must_use]
    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }

    /// Records this endpoint.
    #[must_use]
    pub fn endpoint(mut self, endpoint: Option<&'a str>) -> Self {
        self.endpoint = endpoint;
        self
    }
}

/// The answer to a validation.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The outcome.
    pub status: Status,
    /// The matched credential when one was found (valid, forbidden, expired,
    /// revoked, client inactive).
    pub credential: Option<Arc<Credential>>,
    /// The first required scope not held (status `forbidden`).
    pub missing_scope: Option<String>,
    /// Why the store could not answer (status `unavailable`).
    pub error: Option<Error>,
    kind: Kind,
}

impl Validation {
    fn new(kind: Kind, status: Status) -> Self {
        Validation {
            status,
            credential: None,
            missing_scope: None,
            error: None,
            kind,
        }
    }

    /// The answer when no validator could be opened (or the store failed):
    /// `unavailable`, carrying why.
    #[must_use]
    pub fn unavailable(kind: Kind, error: Error) -> Self {
        let mut v = Validation::new(kind, Status::Unavailable);
        v.error = Some(error);
        v
    }

    /// The kind that was asked for.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the credential was accepted.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.status.is_valid()
    }

    /// A message for the HTTP client, in the words Heratio's middleware has
    /// always used. It never contains the key.
    #[must_use]
    pub fn message(&self) -> String {
        let label = self.kind.label();
        let mut capitalised = label.to_owned();
        match self.status {
            Status::Valid => format!("{capitalised} accepted."),
            Status::Malformed => format!("Invalid {label} format."),
            Status::WrongKind => format!(
                "{} cannot be used as {}.",
                match self.kind.other() {
                    Kind::ApiKey => "An API key",
                    Kind::AiToken => "An AI token",
                },
                match self.kind {
                    Kind::ApiKey => "an API key",
                    Kind::AiToken => "an AI token",
                }
            ),
            Status::NotFound | Status::Revoked | Status::ClientInactive => {
                format!("Invalid or inactive {label}.")
            }
            Status::Expired => {
                capitalised.push_str(" has expired.");
                capitalised
            }
            Status::Forbidden => format!(
                "Scope '{}' required.",
                self.missing_scope.as_deref().unwrap_or("")
            ),
            Status::Unavailable => format!("{capitalised} validation is temporarily unavailable."),
        }
    }
}

/// Counters shared by the hot path and the background threads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) validations: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) store_queries: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) feed_polls: AtomicU64,
    pub(crate) feed_errors: AtomicU64,
    pub(crate) feed_evictions: AtomicU64,
    pub(crate) usage_queued: AtomicU64,
    pub(crate) usage_written: AtomicU64,
    pub(crate) usage_dropped: AtomicU64,
    pub(crate) usage_write_errors: AtomicU64,
}

/// A snapshot of a validator's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Validations answered.
    pub validations: u64,
    /// Answers served from the cache.
    pub cache_hits: u64,
    /// Answers that needed a store query.
    pub cache_misses: u64,
    /// Entries cached now (approximate).
    pub cache_entries: u64,
    /// Store lookups issued.
    pub store_queries: u64,
    /// Store lookups that failed.
    pub store_errors: u64,
    /// Successful feed polls.
    pub feed_polls: u64,
    /// Failed feed polls.
    pub feed_errors: u64,
    /// Digests evicted because of feed rows.
    pub feed_evictions: u64,
    /// Milliseconds since the feed was last read successfully (`None`: never).
    pub feed_lag_ms: Option<u64>,
    /// Usage records waiting in the queue.
    pub usage_queued: u64,
    /// Usage records written.
    pub usage_written: u64,
    /// Usage records dropped (queue full, or unwritable at shutdown).
    pub usage_dropped: u64,
    /// Failed usage batch writes (retried).
    pub usage_write_errors: u64,
}

#[derive(Debug)]
enum Entry {
    Found {
        credential: Arc<Credential>,
        filled_at: u64,
    },
    Missing,
}

struct EntryExpiry {
    positive: Duration,
    negative: Duration,
}

impl EntryExpiry {
    fn ttl(&self, entry: &Entry) -> Duration {
        match entry {
            Entry::Found { .. } => self.positive,
            Entry::Missing => self.negative,
        }
    }
}

impl Expiry<Digest, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(&self, _: &Digest, value: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(self.ttl(value))
    }

    fn expire_after_update(
        &self,
        _: &Digest,
        value: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }
}

/// Fill generations are striped by the digest's first byte: a fill only has
/// to notice invalidations of digests that share its stripe.
const STRIPES: usize = 64;

/// State shared between the hot path and the poller thread.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn KeyStore>,
    cache: Cache<Digest, Arc<Entry>>,
    stripes: Box<[AtomicU64; STRIPES]>,
    epoch: Instant,
    /// Clock time (ms since `epoch`) at which the last successful feed poll
    /// started: every change committed before it has been evicted.
    pub(crate) feed_ok_at: AtomicU64,
    /// The feed's head is known; fills may be cached.
    pub(crate) feed_ready: AtomicBool,
    pub(crate) counters: Arc<Counters>,
    stale_bound_ms: u64,
    fill_delay: Duration,
}

impl Shared {
    pub(crate) fn clock_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn stripe(&self, digest: &Digest) -> &AtomicU64 {
        &self.stripes[usize::from(digest[0]) % STRIPES]
    }

    /// Evicts a digest. The stripe is bumped *before* the eviction so that a
    /// concurrent fill either lands before the eviction (and is evicted) or
    /// sees the bump and withdraws its own insert.
    pub(crate) fn invalidate(&self, digest: &Digest) {
        self.stripe(digest).fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(digest);
    }

    /// Whether a positive entry filled at `filled_at` may still be served:
    /// the newer of its fill and the last good poll is within the bound.
    fn fresh_enough(&self, filled_at: u64, now: u64) -> bool {
        let known_good_at = filled_at.max(self.feed_ok_at.load(Ordering::SeqCst));
        now.saturating_sub(known_good_at) <= self.stale_bound_ms
    }

    fn lookup(&self, kind: Kind, digest: &Digest) -> Result<Option<Arc<Credential>>> {
        let now = self.clock_ms();
        if let Some(entry) = self.cache.get(digest) {
            match &*entry {
                Entry::Found {
                    credential,
                    filled_at,
                } if credential.kind == kind && self.fresh_enough(*filled_at, now) => {
                    self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(Arc::clone(credential)));
                }
                Entry::Missing => {
                    self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                }
                Entry::Found { .. } => {}
            }
        }
        self.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        let stripe = self.stripe(digest);
        let generation = stripe.load(Ordering::SeqCst);
        self.counters.store_queries.fetch_add(1, Ordering::Relaxed);
        let found = self.store.find_credential(kind, digest).inspect_err(|_| {
            self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
        })?;
        let found = found.map(Arc::new);
        if !self.fill_delay.is_zero() {
            std::thread::sleep(self.fill_delay);
        }
        if self.feed_ready.load(Ordering::SeqCst) {
            let entry = match &found {
                Some(credential) => Entry::Found {
                    credential: Arc::clone(credential),
                    filled_at: now,
                },
                None => Entry::Missing,
            };
            self.cache.insert(*digest, Arc::new(entry));
            if stripe.load(Ordering::SeqCst) != generation {
                // An invalidation raced this fill: the answer may predate a
                // revocation, so it must not stay cached.
                self.cache.invalidate(digest);
            }
        }
        Ok(found)
    }
}

/// The per-process machinery: store connections, cache, threads.
struct Engine {
    fork_generation: u64,
    shared: Arc<Shared>,
    usage: Option<UsageQueue>,
    stop_poller: Mutex<Option<SyncSender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shutdown_timeout: Duration,
}

impl Engine {
    fn start(dsn: &Dsn, options: &Options, counters: &Arc<Counters>) -> Result<Engine> {
        let store = store::open(dsn)?;
        let cache = Cache::builder()
            .max_capacity(options.cache_capacity)
            .expire_after(EntryExpiry {
                positive: options.cache_ttl,
                negative: options.negative_ttl,
            })
            .build();
        let shared = Arc::new(Shared {
            store: Arc::clone(&store),
            cache,
            stripes: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            epoch: Instant::now(),
            feed_ok_at: AtomicU64::new(0),
            feed_ready: AtomicBool::new(false),
            counters: Arc::clone(counters),
            stale_bound_ms: u64::try_from(options.stale_bound.as_millis()).unwrap_or(u64::MAX),
            fill_delay: options.fill_delay,
        });
        // The feed's head must be read before anything is cached, or a
        // revocation committed between the fill and the first poll would be
        // missed. If the store is down now, the poller keeps trying and the
        // validator answers uncached meanwhile.
        let cursor = match store.feed_head() {
            Ok(head) => {
                shared.feed_ready.store(true, Ordering::SeqCst);
                Some(feed::Cursor::new(head))
            }
            Err(_) => None,
        };
        let mut threads = Vec::new();
        let (stop_tx, stop_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let poller_shared = Arc::clone(&shared);
        let interval = options.poll_interval.max(Duration::from_millis(10));
        threads.push(
            std::thread::Builder::new()
                .name("heratio-keys-feed".into())
                .spawn(move || feed::run(&poller_shared, cursor, interval, &stop_rx))
                .map_err(|e| Error::internal(format!("cannot start the feed thread: {e}")))?,
        );
        let usage = if options.usage_log {
            let (records_tx, records_rx) =
                std::sync::mpsc::sync_channel(options.usage_queue_capacity.max(1));
            let (control_tx, control_rx) = std::sync::mpsc::channel();
            let flusher_store = Arc::clone(&store);
            let flusher_counters = Arc::clone(counters);
            let flusher_options = options.clone();
            let flusher = std::thread::Builder::new()
                .name("heratio-keys-usage".into())
                .spawn(move || {
                    usage::run(
                        flusher_store,
                        flusher_counters,
                        &flusher_options,
                        &records_rx,
                        &control_rx,
                    );
                })
                .map_err(|e| Error::internal(format!("cannot start the usage thread: {e}")))?;
            let queue = UsageQueue::new(
                records_tx,
                control_tx,
                flusher.thread().clone(),
                Arc::clone(counters),
                options,
            );
            threads.push(flusher);
            Some(queue)
        } else {
            None
        };
        Ok(Engine {
            fork_generation: fork::generation(),
            shared,
            usage,
            stop_poller: Mutex::new(Some(stop_tx)),
            threads: Mutex::new(threads),
            shutdown_timeout: options.shutdown_flush_timeout + Duration::from_secs(1),
        })
    }

    fn shutdown(&self) {
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Validates credentials against a store, behind a cache kept correct by the
/// change feed. Thread-safe; share one per process.
///
/// Background threads and connections belong to the process that created
/// them. After `fork()`, the child's first call starts its own (the parent's
/// are left to the parent), so a validator may be opened before a
/// pre-forking server forks, though opening it lazily in the worker is best.
pub struct Validator {
    dsn: Dsn,
    options: Options,
    counters: Arc<Counters>,
    engine: ArcSwapOption<Engine>,
    restart: Mutex<()>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("dsn", &self.dsn)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Opens a validator on the store named by `dsn`, checking that it is
    /// reachable and its schema current.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidDsn`]; [`ErrorKind::Unavailable`] when the store
    /// cannot be reached; [`ErrorKind::SchemaOutdated`] when `keygen install`
    /// has not been run; [`ErrorKind::SchemaTooNew`].
    pub fn open(dsn: &str, options: Options) -> Result<Validator> {
        Self::open_dsn(&Dsn::parse(dsn)?, options)
    }

    /// As [`Validator::open`], with a DSN parsed already.
    ///
    /// # Errors
    ///
    /// As [`Validator::open`], except [`ErrorKind::InvalidDsn`].
    pub fn open_dsn(dsn: &Dsn, options: Options) -> Result<Validator> {
        let dsn = dsn.clone();
        fork::register();
        let counters = Arc::new(Counters::default());
        let engine = Engine::start(&dsn, &options, &counters)?;
        match engine.shared.store.schema_version() {
            Ok(Some(v)) if v == SCHEMA_VERSION => {}
            Ok(Some(v)) if v > SCHEMA_VERSION => {
                engine.shutdown();
                return Err(Error::new(
                    ErrorKind::SchemaTooNew,
                    format!(
                        "{dsn}: schema version {v} is newer than this library ({SCHEMA_VERSION})"
                    ),
                ));
            }
            Ok(_) => {
                engine.shutdown();
                return Err(Error::new(
                    ErrorKind::SchemaOutdated,
                    format!("{dsn}: schema missing or outdated; run `keygen install`"),
                ));
            }
            Err(e) => {
                engine.shutdown();
                return Err(e);
            }
        }
        Ok(Validator {
            dsn,
            options,
            counters,
            engine: ArcSwapOption::from_pointee(engine),
            restart: Mutex::new(()),
        })
    }

    /// The store this validator reads, password masked.
    #[must_use]
    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    fn engine(&self) -> Result<arc_swap::Guard<Option<Arc<Engine>>>> {
        let generation = fork::generation();
        let current_here = || {
            let current = self.engine.load();
            current
                .as_ref()
                .is_some_and(|e| e.fork_generation == generation)
                .then_some(current)
        };
        if let Some(current) = current_here() {
            return Ok(current);
        }
        let _restarting = lock(&self.restart);
        if let Some(current) = current_here() {
            return Ok(current);
        }
        let fresh = Engine::start(&self.dsn, &self.options, &self.counters)?;
        if let Some(inherited) = self.engine.swap(Some(Arc::new(fresh))) {
            if inherited.fork_generation != generation {
                // The parent's threads do not exist here and its sockets are
                // the parent's: dropping would join ghosts and close the
                // parent's connections. Leak it instead (once per fork).
                std::mem::forget(inherited);
            }
        }
        Ok(self.engine.load())
    }

    /// Validates one credential. Never panics, never blocks on usage
    /// recording; blocks on the store only on a cache miss.
    #[must_use]
    pub fn validate(&self, request: &Request<'_>) -> Validation {
        self.counters.validations.fetch_add(1, Ordering::Relaxed);
        let engine = match self.engine() {
            Ok(guard) => guard,
            Err(error) => return Validation::unavailable(request.kind, error),
        };
        let Some(engine) = engine.as_ref() else {
            return Validation::new(request.kind, Status::Unavailable);
        };
        let now = model::now_ms();
        let validation = Self::decide(&engine.shared, request, now);
        if let Some(usage) = &engine.usage {
            usage.push(UsageRecord {
                kind: request.kind,
                credential_id: validation.credential.as_ref().map(|c| c.id),
                client_id: validation.credential.as_ref().map(|c| c.client_id),
                at: now,
                ip: request
                    .ip
                    .map(|ip| model::truncate(ip.to_owned(), model::MAX_IP_LEN)),
                endpoint: request
                    .endpoint
                    .map(|e| model::truncate(e.to_owned(), model::MAX_ENDPOINT_LEN)),
                status: validation.status,
            });
        }
        validation
    }

    fn decide(shared: &Shared, request: &Request<'_>, now: i64) -> Validation {
        let kind = request.kind;
        let format_status = format::check_format(kind, request.key);
        if format_status != Status::Valid {
            return Validation::new(kind, format_status);
        }
        let digest = format::digest(request.key);
        let credential = match shared.lookup(kind, &digest) {
            Ok(Some(credential)) => credential,
            Ok(None) => return Validation::new(kind, Status::NotFound),
            Err(error) => return Validation::unavailable(kind, error),
        };
        // The cache and the index matched on the digest already; this
        // constant-time comparison is the authoritative check, so a hash
        // collision in either could never let a different key through.
        if !bool::from(credential.digest.ct_eq(&digest)) {
            return Validation::new(kind, Status::NotFound);
        }
        let status = credential.status_at(now, request.scopes);
        let mut v = Validation::new(kind, status);
        if status == Status::Forbidden {
            v.missing_scope = credential
                .scopes
                .first_missing(request.scopes)
                .map(str::to_owned);
        }
        v.credential = Some(credential);
        v
    }

    /// Writes every usage record queued so far; false if that did not finish
    /// within `timeout` (the store may be down; records stay queued).
    #[must_use]
    pub fn flush(&self, timeout: Duration) -> bool {
        match self.engine() {
            Ok(guard) => guard
                .as_ref()
                .and_then(|e| e.usage.as_ref())
                .is_none_or(|u| u.flush(timeout)),
            Err(_) => false,
        }
    }

    /// Stops background threads after writing buffered usage (retrying up to
    /// the shutdown timeout). A later validation starts them again.
    pub fn shutdown(&self) {
        let _restarting = lock(&self.restart);
        if let Some(engine) = self.engine.swap(None) {
            if engine.fork_generation == fork::generation() {
                engine.shutdown();
            } else {
                std::mem::forget(engine);
            }
        }
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let guard = self.engine.load();
        let (cache_entries, feed_lag_ms) = match guard.as_ref() {
            Some(engine) => {
                let shared = &engine.shared;
                let lag = shared.feed_ready.load(Ordering::SeqCst).then(|| {
                    shared
                        .clock_ms()
                        .saturating_sub(shared.feed_ok_at.load(Ordering::SeqCst))
                });
                (shared.cache.entry_count(), lag)
            }
            None => (0, None),
        };
        Stats {
            validations: c.validations.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cache_misses: c.cache_misses.load(Ordering::Relaxed),
            cache_entries,
            store_queries: c.store_queries.load(Ordering::Relaxed),
            store_errors: c.store_errors.load(Ordering::Relaxed),
            feed_polls: c.feed_polls.load(Ordering::Relaxed),
            feed_errors: c.feed_errors.load(Ordering::Relaxed),
            feed_evictions: c.feed_evictions.load(Ordering::Relaxed),
            feed_lag_ms,
            usage_queued: c.usage_queued.load(Ordering::Relaxed),
            usage_written: c.usage_written.load(Ordering::Relaxed),
            usage_dropped: c.usage_dropped.load(Ordering::Relaxed),
            usage_write_errors: c.usage_write_errors.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.shutdown();
    }
}
