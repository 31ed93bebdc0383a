//! Per-credential hourly rate limits, shared by every process and host
//! that validates against one database, without a database write per
//! request.
//!
//! The budget of a credential for a clock hour (UTC) lives in one
//! `rate_counter` row. A process takes *leases* from it: it reserves a
//! block of requests at once (`reserve_rate`, one transaction with a row
//! lock), then accepts that many locally. Because requests are reserved
//! before they are accepted, no combination of processes can accept more
//! than the limit: the overshoot is zero. The price is the opposite error:
//! requests reserved by a process that then stops receiving traffic sit
//! unused until the hour ends — at most the block size per idle process,
//! and a process that shuts down (PHP-FPM recycling a worker, a C program
//! calling `hk_validator_free`) hands its unused requests back. Blocks
//! shrink as the budget runs out (an eighth of what is left, 1 to 64), so
//! the last requests of an hour are reserved one at a time.
//!
//! A store that cannot be reached does not refuse requests: rate limiting
//! fails open (the request is accepted and not counted), like Kong's
//! `fault_tolerant` default, because the validation itself already
//! answered from the cache. The outage is visible in `store_errors`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::format::Kind;
use crate::model::HOUR_MS;
use crate::stats::{bump, Counters};
use crate::store::ValidationStore;

/// Largest block of requests reserved at once.
const MAX_BLOCK: i64 = 64;

/// What a rate-limited credential's request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    /// Most accepted requests per clock hour.
    pub limit: i64,
    /// Requests left this hour, as far as this process knows (others may
    /// hold reserved requests of their own).
    pub remaining: i64,
    /// Seconds until the budget renews (the next clock hour, UTC); the
    /// `Retry-After` of a refused request.
    pub reset_after: i64,
    /// Whether the request was within the limit.
    pub admitted: bool,
}

#[derive(Debug, Default)]
struct Lease {
    /// Start of the hour this lease belongs to (ms).
    window: i64,
    /// Reserved here and not used yet.
    tokens: i64,
    /// The shared count after this process's last reservation.
    seen: i64,
}

/// One lease per limited credential in use, each behind its own lock.
type Leases = HashMap<(Kind, i64), Arc<Mutex<Lease>>>;

/// Leases of this process.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    leases: Mutex<Leases>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RateLimiter {
    fn lease(&self, kind: Kind, id: i64) -> Arc<Mutex<Lease>> {
        Arc::clone(lock(&self.leases).entry((kind, id)).or_default())
    }

    /// Admits one request of credential `id` with hourly `limit` at `now`
    /// (ms), reserving a new block from the store when this process's lease
    /// is used up.
    pub(crate) fn admit(
        &self,
        store: &dyn ValidationStore,
        counters: &Counters,
        kind: Kind,
        id: i64,
        limit: i64,
        now: i64,
    ) -> RateInfo {
        let window = now - now.rem_euclid(HOUR_MS);
        let reset_after = (window + HOUR_MS - now + 999) / 1000;
        let lease = self.lease(kind, id);
        // Per credential: one credential's reservation does not hold up
        // validations of others.
        let mut lease = lock(&lease);
        if lease.window != window {
            *lease = Lease {
                window,
                ..Lease::default()
            };
        }
        if lease.tokens == 0 && lease.seen < limit {
            let want = ((limit - lease.seen) / 8).clamp(1, MAX_BLOCK);
            bump(&counters.store_queries);
            // One retry: a reservation that lost a lock race is worth a
            // second try before failing open.
            let reserved = store
                .reserve_rate(kind, id, window, limit, want)
                .or_else(|_| store.reserve_rate(kind, id, window, limit, want));
            match reserved {
                Ok((granted, count)) => {
                    lease.tokens = granted;
                    lease.seen = count;
                }
                Err(_) => {
                    bump(&counters.store_errors);
                    return RateInfo {
                        limit,
                        remaining: (limit - lease.seen).max(0),
                        reset_after,
                        admitted: true,
                    };
                }
            }
        }
        let admitted = lease.tokens > 0;
        if admitted {
            lease.tokens -= 1;
        }
        RateInfo {
            limit,
            remaining: (limit - (lease.seen - lease.tokens)).max(0),
            reset_after,
            admitted,
        }
    }

    /// Hands unused reserved requests of the current hour back to the
    /// store (at shutdown). Best effort: a process killed outright loses
    /// at most one block per credential until the hour ends.
    pub(crate) fn release(&self, store: &dyn ValidationStore, now: i64) {
        let window = now - now.rem_euclid(HOUR_MS);
        let leases: Vec<_> = lock(&self.leases).drain().collect();
        for ((kind, id), lease) in leases {
            let mut lease = lock(&lease);
            if lease.window == window && lease.tokens > 0 {
                let _ = store.release_rate(kind, id, window, lease.tokens);
                lease.tokens = 0;
            }
        }
    }
}
