//! Tuning knobs of a [`Validator`](super::Validator): [`Options`] (read with
//! getters) built by [`OptionsBuilder`]. Every value has a documented
//! default.

use std::time::Duration;

use crate::cache::CacheSettings;
use crate::usage::UsageSettings;

/// Tuning knobs of a [`Validator`](super::Validator).
///
/// ```
/// use std::time::Duration;
/// use heratio_keys_core::Options;
///
/// let options = Options::builder().poll_interval(Duration::from_millis(250)).build();
/// assert_eq!(options.poll_interval(), Duration::from_millis(250));
/// assert_eq!(options.cache_ttl(), Options::default().cache_ttl());
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    cache_capacity: u64,
    cache_ttl: Duration,
    negative_ttl: Duration,
    poll_interval: Duration,
    stale_bound: Duration,
    usage_log: bool,
    usage_queue_capacity: usize,
    usage_batch_size: usize,
    usage_flush_interval: Duration,
    shutdown_flush_timeout: Duration,
    shared_cache: bool,
    shared_cache_slots: u64,
    shared_queue_records: u64,
    connections: usize,
    connection_idle: Duration,
    fill_delay: Duration,
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
            usage_batch_size: 5000,
            usage_flush_interval: Duration::from_secs(1),
            shutdown_flush_timeout: Duration::from_secs(5),
            shared_cache: false,
            shared_cache_slots: 131_072,
            shared_queue_records: 65_536,
            connections: 4,
            connection_idle: Duration::from_secs(10),
            fill_delay: Duration::ZERO,
        }
    }
}

/// Shortest feed poll interval honoured (a smaller value is raised to it).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

impl Options {
    /// A builder starting from the defaults.
    pub fn builder() -> OptionsBuilder {
        OptionsBuilder(Options::default())
    }

    /// Most cached digests, positive and negative together (default 100 000).
    #[must_use]
    pub fn cache_capacity(&self) -> u64 {
        self.cache_capacity
    }

    /// Backstop lifetime of a cached credential even if the feed were missed
    /// (default 60 s).
    #[must_use]
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl
    }

    /// Lifetime of a cached "not found" answer (default 60 s). New keys
    /// evict their negative entries through the feed, so this only bounds
    /// memory churn from floods of unknown keys.
    #[must_use]
    pub fn negative_ttl(&self) -> Duration {
        self.negative_ttl
    }

    /// How often the change feed is read (default 500 ms, at least
    /// [`MIN_POLL_INTERVAL`]).
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// Fail-closed bound (default 10 s): when the feed has not been read for
    /// longer than this, cached positive answers older than this are not
    /// served; the store is asked instead, and `unavailable` is returned if
    /// it cannot answer.
    #[must_use]
    pub fn stale_bound(&self) -> Duration {
        self.stale_bound
    }

    /// Whether validations are written to `usage_log` (default on).
    #[must_use]
    pub fn usage_log(&self) -> bool {
        self.usage_log
    }

    /// Records buffered (default 65 536); when they are all waiting, a
    /// validation waits for room while the writer writes (1 s at most).
    #[must_use]
    pub fn usage_queue_capacity(&self) -> usize {
        self.usage_queue_capacity
    }

    /// Records written per transaction at most (default 5000: each
    /// transaction pays a commit and the counter and rollup statements, so
    /// on MariaDB a row cost 3.55 µs of server CPU in batches of 1000 and
    /// 2.8 µs in batches of 5000).
    #[must_use]
    pub fn usage_batch_size(&self) -> usize {
        self.usage_batch_size
    }

    /// Longest time a record waits before being written (default 1 s).
    #[must_use]
    pub fn usage_flush_interval(&self) -> Duration {
        self.usage_flush_interval
    }

    /// How long closing keeps retrying to write buffered usage (default 5 s).
    #[must_use]
    pub fn shutdown_flush_timeout(&self) -> Duration {
        self.shutdown_flush_timeout
    }

    /// Whether this process shares the host's cache, feed poller and usage
    /// writer with every other process of the same OS user on the same DSN
    /// (default off for the library; the PHP extension turns it on). If the
    /// host region cannot be used, the validator runs with its own cache
    /// and its stats say why.
    #[must_use]
    pub fn shared_cache(&self) -> bool {
        self.shared_cache
    }

    /// Slots of the host cache (default 131 072, 512 bytes each: 64 MiB of
    /// shared memory at most, touched only as filled).
    #[must_use]
    pub fn shared_cache_slots(&self) -> u64 {
        self.shared_cache_slots
    }

    /// Records the host usage queue holds (default 65 536, 352 bytes each:
    /// 22 MiB, as many as one process's own queue; the whole host's
    /// bursts wait in it while one leader writes).
    #[must_use]
    pub fn shared_queue_records(&self) -> u64 {
        self.shared_queue_records
    }

    /// Most MySQL connections this validator holds at once (default 4: a
    /// PHP worker validates one request at a time, and a host of 50
    /// workers must not exhaust the server's `max_connections`).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// How long an idle MySQL connection is kept (default 10 s).
    #[must_use]
    pub fn connection_idle(&self) -> Duration {
        self.connection_idle
    }

    pub(crate) fn store_connections(&self) -> crate::store::Connections {
        crate::store::Connections {
            max: self.connections,
            idle: self.connection_idle,
        }
    }

    pub(crate) fn cache_settings(&self) -> CacheSettings {
        CacheSettings {
            capacity: self.cache_capacity,
            positive_ttl: self.cache_ttl,
            negative_ttl: self.negative_ttl,
            stale_bound: self.stale_bound,
            fill_delay: self.fill_delay,
        }
    }

    pub(crate) fn usage_settings(&self) -> UsageSettings {
        UsageSettings {
            queue_capacity: self.usage_queue_capacity.max(1),
            batch_size: self.usage_batch_size.max(1),
            flush_interval: self.usage_flush_interval,
            shutdown_timeout: self.shutdown_flush_timeout,
        }
    }
}

/// Builds [`Options`]; each method sets the option of the same name (see
/// the getter of that name on [`Options`] for its meaning and default).
#[derive(Debug, Clone)]
#[must_use]
pub struct OptionsBuilder(Options);

impl OptionsBuilder {
    /// See [`Options::cache_capacity`].
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.0.cache_capacity = entries;
        self
    }

    /// See [`Options::cache_ttl`].
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.0.cache_ttl = ttl;
        self
    }

    /// See [`Options::negative_ttl`].
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.0.negative_ttl = ttl;
        self
    }

    /// See [`Options::poll_interval`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.0.poll_interval = interval.max(MIN_POLL_INTERVAL);
        self
    }

    /// See [`Options::stale_bound`].
    pub fn stale_bound(mut self, bound: Duration) -> Self {
        self.0.stale_bound = bound;
        self
    }

    /// See [`Options::usage_log`].
    pub fn usage_log(mut self, enabled: bool) -> Self {
        self.0.usage_log = enabled;
        self
    }

    /// See [`Options::usage_queue_capacity`] (at least 1).
    pub fn usage_queue_capacity(mut self, records: usize) -> Self {
        self.0.usage_queue_capacity = records.max(1);
        self
    }

    /// See [`Options::usage_batch_size`] (at least 1).
    pub fn usage_batch_size(mut self, rows: usize) -> Self {
        self.0.usage_batch_size = rows.max(1);
        self
    }

    /// See [`Options::usage_flush_interval`].
    pub fn usage_flush_interval(mut self, interval: Duration) -> Self {
        self.0.usage_flush_interval = interval;
        self
    }

    /// See [`Options::shutdown_flush_timeout`].
    pub fn shutdown_flush_timeout(mut self, timeout: Duration) -> Self {
        self.0.shutdown_flush_timeout = timeout;
        self
    }

    /// See [`Options::shared_cache`].
    pub fn shared_cache(mut self, enabled: bool) -> Self {
        self.0.shared_cache = enabled;
        self
    }

    /// See [`Options::shared_cache_slots`] (at least 16).
    pub fn shared_cache_slots(mut self, slots: u64) -> Self {
        self.0.shared_cache_slots = slots.max(16);
        self
    }

    /// See [`Options::shared_queue_records`] (at least 16).
    pub fn shared_queue_records(mut self, records: u64) -> Self {
        self.0.shared_queue_records = records.max(16);
        self
    }

    /// See [`Options::connections`] (at least 1).
    pub fn connections(mut self, max: usize) -> Self {
        self.0.connections = max.max(1);
        self
    }

    /// See [`Options::connection_idle`].
    pub fn connection_idle(mut self, idle: Duration) -> Self {
        self.0.connection_idle = idle;
        self
    }

    /// Fault injection for tests: waits this long between a miss's store
    /// query and its cache fill, widening the window in which a revocation
    /// can race the fill. Not for production use.
    #[doc(hidden)]
    pub fn test_fill_delay(mut self, delay: Duration) -> Self {
        self.0.fill_delay = delay;
        self
    }

    /// The options.
    #[must_use]
    pub fn build(self) -> Options {
        self.0
    }
}
