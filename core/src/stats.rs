//! Counters shared by the hot path and the background threads, and the
//! snapshot every binding reports ([`Stats`]), with its field names listed
//! once ([`Stats::fields`]) so bindings never list them again.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters. Relaxed atomics: each is an independent tally.
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

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// A snapshot; `cache_entries`, `feed_lag_ms` and `host` come from the
    /// engine.
    pub(crate) fn snapshot(
        &self,
        cache_entries: u64,
        feed_lag_ms: Option<u64>,
        host: Option<HostStats>,
    ) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            validations: get(&self.validations),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            cache_entries,
            store_queries: get(&self.store_queries),
            store_errors: get(&self.store_errors),
            feed_polls: get(&self.feed_polls),
            feed_errors: get(&self.feed_errors),
            feed_evictions: get(&self.feed_evictions),
            feed_lag_ms,
            usage_queued: get(&self.usage_queued),
            usage_written: get(&self.usage_written),
            usage_dropped: get(&self.usage_dropped),
            usage_write_errors: get(&self.usage_write_errors),
            host,
        }
    }
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
    /// Usage records dropped (queue full while its writer had stopped, or
    /// unwritable at shutdown).
    pub usage_dropped: u64,
    /// Failed usage batch writes (retried).
    pub usage_write_errors: u64,
    /// The host region, when this process uses one (shared mode).
    pub host: Option<HostStats>,
}

/// The host region as one process sees it: its role and the host-wide
/// counters every process of the host shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HostStats {
    /// Whether this process leads the host now (polls the feed, writes
    /// the usage queue).
    pub leader: bool,
    /// The leading process, as the region last recorded it.
    pub leader_pid: u32,
    /// Validations answered from the host cache, all processes.
    pub hits: u64,
    /// Validations that needed a store query, all processes.
    pub misses: u64,
    /// Answers stored in the host cache.
    pub fills: u64,
    /// Occupied cache slots now.
    pub entries: u64,
    /// Slots found damaged (read as misses).
    pub corrupt: u64,
    /// Usage records queued host-wide and not yet written.
    pub queued: u64,
    /// Usage records the host queue could not take (full) or lost (a
    /// process died while writing one).
    pub dropped: u64,
    /// Usage records written from the host queue.
    pub written: u64,
}

impl HostStats {
    /// Every field as `(stable snake_case name, value)`, for bindings.
    #[must_use]
    pub fn fields(&self) -> [(&'static str, u64); 10] {
        [
            ("host_leader", u64::from(self.leader)),
            ("host_leader_pid", u64::from(self.leader_pid)),
            ("host_hits", self.hits),
            ("host_misses", self.misses),
            ("host_fills", self.fills),
            ("host_entries", self.entries),
            ("host_corrupt", self.corrupt),
            ("host_queued", self.queued),
            ("host_dropped", self.dropped),
            ("host_written", self.written),
        ]
    }
}

impl Stats {
    /// Every counter as `(stable snake_case name, value)`, in a fixed order:
    /// the one list bindings render (PHP's `heratio_keys_stats()` array,
    /// `php --ri`, the C struct's test). `None` only for `feed_lag_ms`
    /// before the feed was ever read.
    #[must_use]
    pub fn fields(&self) -> [(&'static str, Option<u64>); 14] {
        [
            ("validations", Some(self.validations)),
            ("cache_hits", Some(self.cache_hits)),
            ("cache_misses", Some(self.cache_misses)),
            ("cache_entries", Some(self.cache_entries)),
            ("store_queries", Some(self.store_queries)),
            ("store_errors", Some(self.store_errors)),
            ("feed_polls", Some(self.feed_polls)),
            ("feed_errors", Some(self.feed_errors)),
            ("feed_evictions", Some(self.feed_evictions)),
            ("feed_lag_ms", self.feed_lag_ms),
            ("usage_queued", Some(self.usage_queued)),
            ("usage_written", Some(self.usage_written)),
            ("usage_dropped", Some(self.usage_dropped)),
            ("usage_write_errors", Some(self.usage_write_errors)),
        ]
    }
}
