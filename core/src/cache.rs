//! The credential cache: digest → answer (found or not found), with
//! per-entry lifetimes, fills guarded against racing revocations, and the
//! fail-closed rule for positive answers. Either this process's own
//! (bounded moka) or the host's (the shared region's table): one set of
//! rules for both.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache as Moka;
use moka::Expiry;

use crate::error::Result;
use crate::feed::FeedState;
use crate::format::{Digest, Kind};
use crate::model::Credential;
use crate::shared::desk;
use crate::shared::region::Region;
use crate::shared::table::{self, Cached};
use crate::shared::Shared;
use crate::stats::{bump, Counters};
use crate::store::ValidationStore;

#[derive(Debug)]
enum Entry {
    Found {
        credential: Arc<Credential>,
        /// Feed clock (ms) when the answer was read from the store.
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

/// How the cache is sized and aged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheSettings {
    pub(crate) capacity: u64,
    pub(crate) positive_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) stale_bound: Duration,
    /// Test-only pause between a miss's query and its fill.
    pub(crate) fill_delay: Duration,
}

/// The cache a validator uses.
pub(crate) enum Cache {
    /// This process's own.
    Private(CredentialCache),
    /// The host region's, shared by every process of the host.
    Host(HostCache),
}

impl Cache {
    pub(crate) fn invalidate(&self, digest: &Digest) {
        match self {
            Cache::Private(c) => c.invalidate(digest),
            Cache::Host(c) => table::invalidate(c.shared.region(), digest),
        }
    }

    /// Drops every cached answer (the store behind the DSN is no longer the
    /// one they came from); returns how many there were.
    pub(crate) fn invalidate_all(&self) -> u64 {
        match self {
            Cache::Private(c) => c.invalidate_all(),
            Cache::Host(c) => table::clear_all(c.shared.region()),
        }
    }

    /// Entries cached now (a count for statistics).
    pub(crate) fn len(&self) -> u64 {
        match self {
            Cache::Private(c) => c.len(),
            Cache::Host(c) => table::occupied(c.shared.region()),
        }
    }

    /// The credential with this digest: from the cache, or from one store
    /// query whose answer is then cached (unless the feed's head is not yet
    /// known, or an invalidation raced the query).
    pub(crate) fn lookup(
        &self,
        store: &dyn ValidationStore,
        feed: &FeedState,
        counters: &Counters,
        kind: Kind,
        digest: &Digest,
    ) -> Result<Option<Arc<Credential>>> {
        match self {
            Cache::Private(c) => c.lookup(store, feed, counters, kind, digest),
            Cache::Host(c) => c.lookup(store, feed, counters, kind, digest),
        }
    }
}

/// Whether a positive answer filled at `filled_at` may still be served:
/// the newer of its fill and the last good feed read is within the bound.
fn fresh_enough(feed: &FeedState, stale_bound_ms: u64, filled_at: u64, now: u64) -> bool {
    let known_good_at = filled_at.max(feed.read_ok_at());
    now.saturating_sub(known_good_at) <= stale_bound_ms
}

/// How long a process waits for the leader to answer a forwarded miss
/// before asking the store itself. A query takes well under a millisecond
/// unloaded; this covers a busy store and a leader's batch of a few hundred.
const FORWARD_TIMEOUT: Duration = Duration::from_millis(250);
/// After a forwarded miss went unanswered (no leader yet, a hung store),
/// misses go straight to the store for this long.
const FORWARD_BACKOFF_MS: u64 = 1000;
/// Per-process memory of refreshes asked for (direct-mapped by digest), so
/// a hot key's hits ask the leader about once a second, not on every hit.
const REFRESH_MEMO: usize = 256;
const REFRESH_REPEAT_MS: u32 = 1000;

/// The host region's table, with this process's settings for reading it.
pub(crate) struct HostCache {
    pub(crate) shared: Arc<Shared>,
    decoded: table::Decoded,
    ages: Ages,
    fill_delay: Duration,
    /// Shared-clock ms until which misses are not forwarded.
    forward_backoff_until: AtomicU64,
    /// `digest tag << 32 | low 32 bits of the ms` of the last refresh asked.
    refresh_asked: Box<[AtomicU64; REFRESH_MEMO]>,
}

/// The lifetimes a host cache reads answers with (the leader's fill desk
/// uses the same).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ages {
    pub(crate) positive_ttl_ms: u64,
    pub(crate) negative_ttl_ms: u64,
    pub(crate) stale_bound_ms: u64,
    /// A positive answer this old is renewed by the leader before it
    /// expires (three quarters of its lifetime).
    pub(crate) refresh_after_ms: u64,
}

impl Ages {
    pub(crate) fn new(settings: &CacheSettings) -> Self {
        let positive_ttl_ms = ms(settings.positive_ttl);
        Ages {
            positive_ttl_ms,
            negative_ttl_ms: ms(settings.negative_ttl),
            stale_bound_ms: ms(settings.stale_bound),
            refresh_after_ms: positive_ttl_ms / 4 * 3,
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The answer the host table holds for `digest` as a validation of `kind`
/// may use it: fresh, and of that kind.
pub(crate) fn host_answer(
    region: &Region,
    decoded: &table::Decoded,
    ages: &Ages,
    feed: &FeedState,
    kind: Kind,
    digest: &Digest,
    now: u64,
) -> Option<Cached> {
    match table::lookup(
        region,
        digest,
        now,
        ages.positive_ttl_ms,
        ages.negative_ttl_ms,
        decoded,
    )? {
        Cached::Found {
            credential,
            filled_at,
        } if credential.kind == kind && fresh_enough(feed, ages.stale_bound_ms, filled_at, now) => {
            Some(Cached::Found {
                credential,
                filled_at,
            })
        }
        Cached::Missing => Some(Cached::Missing),
        Cached::Found { .. } => None,
    }
}

impl Cached {
    /// What a validation gets from it.
    fn credential(self) -> Option<Arc<Credential>> {
        match self {
            Cached::Found { credential, .. } => Some(credential),
            Cached::Missing => None,
        }
    }
}

/// Caches a store's answer in the host table, read when the digest's stripe
/// was at `generation`: not before the feed's head is known, and withdrawn
/// if an invalidation bumped the stripe meanwhile (the answer may predate a
/// revocation). Every host fill goes through here, a process's own and the
/// leader's for the desk.
pub(crate) fn fill_host(
    region: &Region,
    feed: &FeedState,
    digest: &Digest,
    answer: Option<&Credential>,
    filled_at: u64,
    generation: u64,
) {
    if feed.is_ready() && table::insert(region, digest, answer, filled_at) {
        bump(&region.header().fills);
        if table::stripe(region, digest).load(Ordering::SeqCst) != generation {
            table::invalidate(region, digest);
        }
    }
}

impl HostCache {
    pub(crate) fn new(shared: Arc<Shared>, settings: &CacheSettings) -> Self {
        HostCache {
            shared,
            decoded: table::Decoded::default(),
            ages: Ages::new(settings),
            fill_delay: settings.fill_delay,
            forward_backoff_until: AtomicU64::new(0),
            refresh_asked: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }

    fn lookup(
        &self,
        store: &dyn ValidationStore,
        feed: &FeedState,
        counters: &Counters,
        kind: Kind,
        digest: &Digest,
    ) -> Result<Option<Arc<Credential>>> {
        let region = self.shared.region();
        let header = region.header();
        let now = feed.clock_ms();
        if let Some(answer) =
            host_answer(region, &self.decoded, &self.ages, feed, kind, digest, now)
        {
            bump(&counters.cache_hits);
            self.shared.count_hit();
            if let Cached::Found { filled_at, .. } = answer {
                if now.saturating_sub(filled_at) >= self.ages.refresh_after_ms {
                    self.ask_refresh(region, kind, digest, now);
                }
            }
            return Ok(answer.credential());
        }
        bump(&counters.cache_misses);
        bump(&header.misses);
        if let Some(answer) = self.forward(region, feed, kind, digest, now) {
            return Ok(answer);
        }
        let generation = table::stripe(region, digest).load(Ordering::SeqCst);
        bump(&counters.store_queries);
        let found = store
            .find_credential(kind, digest)
            .inspect_err(|_| bump(&counters.store_errors))?
            .map(Arc::new);
        if !self.fill_delay.is_zero() {
            std::thread::sleep(self.fill_delay);
        }
        fill_host(region, feed, digest, found.as_deref(), now, generation);
        Ok(found)
    }

    /// Asks the leader for the answer (it queries once for every process
    /// that missed the same key, over its own connections); `None` when
    /// this process should ask the store itself: it leads, the feed is not
    /// read yet (nothing would be cached), the desk is full, or the leader
    /// did not answer in time.
    fn forward(
        &self,
        region: &Region,
        feed: &FeedState,
        kind: Kind,
        digest: &Digest,
        now: u64,
    ) -> Option<Option<Arc<Credential>>> {
        if self.shared.leading()
            || !feed.is_ready()
            || now < self.forward_backoff_until.load(Ordering::Relaxed)
        {
            return None;
        }
        let ticket = desk::post(region, kind, digest, false)?;
        if !desk::wait(region, ticket, FORWARD_TIMEOUT) {
            self.forward_backoff_until
                .store(now + FORWARD_BACKOFF_MS, Ordering::Relaxed);
            return None;
        }
        // Answered: the table has it, unless a revocation withdrew it or
        // it did not fit (then the store is asked directly).
        host_answer(
            region,
            &self.decoded,
            &self.ages,
            feed,
            kind,
            digest,
            feed.clock_ms(),
        )
        .map(Cached::credential)
    }

    /// Posts a refresh of a hot answer nearing its end, at most about once
    /// a second per key from this process.
    fn ask_refresh(&self, region: &Region, kind: Kind, digest: &Digest, now: u64) {
        let tag = u64::from(u32::from_le_bytes([
            digest[2], digest[3], digest[4], digest[5],
        ]));
        let memo = &self.refresh_asked[usize::from(digest[1]) % REFRESH_MEMO];
        let last = memo.load(Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation)] // the low 32 bits, on purpose
        let now32 = now as u32;
        if last >> 32 == tag && now32.wrapping_sub(last as u32) < REFRESH_REPEAT_MS {
            return;
        }
        memo.store(tag << 32 | u64::from(now32), Ordering::Relaxed);
        let _ = desk::post(region, kind, digest, true);
    }
}

/// How the private cache hashes its keys. They are SHA-256 digests, which a
/// client cannot choose without a preimage and can only grind to collide by
/// guessing a per-process random seed, so the default SipHash (a third of
/// a cached lookup's instructions) buys nothing a seeded fast hash does
/// not.
type DigestHasher = foldhash::fast::RandomState;

/// This process's own cache and the state that keeps its fills honest.
pub(crate) struct CredentialCache {
    entries: Moka<Digest, Arc<Entry>, DigestHasher>,
    stripes: Box<[AtomicU64; STRIPES]>,
    stale_bound_ms: u64,
    fill_delay: Duration,
}

impl CredentialCache {
    pub(crate) fn new(settings: &CacheSettings) -> Self {
        CredentialCache {
            entries: Moka::builder()
                .max_capacity(settings.capacity)
                .expire_after(EntryExpiry {
                    positive: settings.positive_ttl,
                    negative: settings.negative_ttl,
                })
                .build_with_hasher(DigestHasher::default()),
            stripes: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            stale_bound_ms: u64::try_from(settings.stale_bound.as_millis()).unwrap_or(u64::MAX),
            fill_delay: settings.fill_delay,
        }
    }

    /// Entries cached now (approximate).
    pub(crate) fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    fn stripe(&self, digest: &Digest) -> &AtomicU64 {
        &self.stripes[usize::from(digest[0]) % STRIPES]
    }

    /// Evicts a digest. The stripe is bumped *before* the eviction so that a
    /// concurrent fill either lands before the eviction (and is evicted) or
    /// sees the bump and withdraws its own insert.
    pub(crate) fn invalidate(&self, digest: &Digest) {
        self.stripe(digest).fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(digest);
    }

    /// Evicts everything, every stripe bumped first (as in `invalidate`);
    /// returns the entries there were.
    pub(crate) fn invalidate_all(&self) -> u64 {
        for stripe in self.stripes.iter() {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
        let count = self.len();
        self.entries.invalidate_all();
        count
    }

    fn lookup(
        &self,
        store: &dyn ValidationStore,
        feed: &FeedState,
        counters: &Counters,
        kind: Kind,
        digest: &Digest,
    ) -> Result<Option<Arc<Credential>>> {
        let now = feed.clock_ms();
        if let Some(entry) = self.entries.get(digest) {
            match &*entry {
                Entry::Found {
                    credential,
                    filled_at,
                } if credential.kind == kind
                    && fresh_enough(feed, self.stale_bound_ms, *filled_at, now) =>
                {
                    bump(&counters.cache_hits);
                    return Ok(Some(Arc::clone(credential)));
                }
                Entry::Missing => {
                    bump(&counters.cache_hits);
                    return Ok(None);
                }
                Entry::Found { .. } => {}
            }
        }
        bump(&counters.cache_misses);
        let stripe = self.stripe(digest);
        let generation = stripe.load(Ordering::SeqCst);
        bump(&counters.store_queries);
        let found = store
            .find_credential(kind, digest)
            .inspect_err(|_| bump(&counters.store_errors))?
            .map(Arc::new);
        if !self.fill_delay.is_zero() {
            std::thread::sleep(self.fill_delay);
        }
        if feed.is_ready() {
            let entry = match &found {
                Some(credential) => Entry::Found {
                    credential: Arc::clone(credential),
                    filled_at: now,
                },
                None => Entry::Missing,
            };
            self.entries.insert(*digest, Arc::new(entry));
            if stripe.load(Ordering::SeqCst) != generation {
                // An invalidation raced this fill: the answer may predate a
                // revocation, so it must not stay cached.
                self.entries.invalidate(digest);
            }
        }
        Ok(found)
    }
}
