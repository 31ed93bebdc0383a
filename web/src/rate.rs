//! Per-source token buckets for `/v1/verify`.
//!
//! The table of sources is a bounded moka cache: a source idle long enough
//! for its bucket to refill completely is dropped (a full bucket is the same
//! as none), and beyond the capacity moka evicts the least useful entries.
//! Its admission policy favours frequent keys, so a source that floods stays
//! in the table and stays throttled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::source::SourceAddr;

/// Sources tracked at once (a bucket is a few dozen bytes).
const MAX_SOURCES: u64 = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets, one per source: `burst` requests at once, refilled at
/// `rate` per second.
#[derive(Debug)]
pub(crate) struct SourceBuckets {
    rate: f64,
    burst: f64,
    table: Option<Cache<SourceAddr, Arc<Mutex<Bucket>>>>,
}

impl SourceBuckets {
    /// `rate` 0 means no limit.
    pub(crate) fn new(rate: u32, burst: u32) -> SourceBuckets {
        let rate = f64::from(rate);
        let burst = f64::from(burst.max(1));
        let table = (rate > 0.0).then(|| {
            let refill = Duration::from_secs_f64((burst / rate).max(1.0));
            Cache::builder()
                .max_capacity(MAX_SOURCES)
                .time_to_idle(refill)
                .build()
        });
        SourceBuckets { rate, burst, table }
    }

    /// Takes one token for `source`, or says how long until one is there.
    pub(crate) fn take(&self, source: SourceAddr) -> Result<(), Duration> {
        let Some(table) = &self.table else {
            return Ok(());
        };
        let now = Instant::now();
        let bucket = table.get_with(source, || {
            Arc::new(Mutex::new(Bucket {
                tokens: self.burst,
                at: now,
            }))
        });
        let mut b = bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> SourceAddr {
        SourceAddr::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn a_burst_then_the_rate() {
        // One token a second: these few calls take far less.
        let buckets = SourceBuckets::new(1, 3);
        let a = src("192.0.2.1");
        for _ in 0..3 {
            buckets.take(a).unwrap();
        }
        let wait = buckets.take(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        buckets.take(src("192.0.2.2")).unwrap();
        let off = SourceBuckets::new(0, 1);
        for _ in 0..100 {
            off.take(a).unwrap();
        }
    }
}
