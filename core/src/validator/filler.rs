//! The leader's side of the fill desk: a thread, started when this process
//! becomes the host's leader, that answers the misses and refreshes other
//! processes post. Each wake-up takes every posted request, skips those the
//! table already answers, asks the store once per kind for the rest (an
//! `IN` list), fills the table under the same race rule as any fill, and
//! wakes the posters.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{fill_host, host_answer, Ages};
use crate::feed::FeedState;
use crate::format::{Digest, Kind};
use crate::shared::desk::{self, Taken};
use crate::shared::region::Region;
use crate::shared::table::{self, Cached};
use crate::shared::Shared;
use crate::stats::{bump, Counters};
use crate::store::ValidationStore;

/// Digests per store query (the largest `IN` list shape).
const QUERY_CHUNK: usize = 64;
/// Longest sleep between looks at the desk (posters ring; this bounds a
/// lost wake-up and how late a stop is noticed).
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How often abandoned desk slots are looked for.
const SWEEP_EVERY_MS: u64 = 1000;

pub(super) struct Filler {
    pub(super) shared: Arc<Shared>,
    pub(super) store: Arc<dyn ValidationStore>,
    pub(super) feed: Arc<FeedState>,
    pub(super) counters: Arc<Counters>,
    pub(super) ages: Ages,
    /// Test-only pause between a query and its fill.
    pub(super) fill_delay: Duration,
    pub(super) stop: Arc<AtomicBool>,
}

impl Filler {
    pub(super) fn run(self) {
        let decoded = table::Decoded::default();
        let mut abandoned = HashMap::new();
        let mut swept_at = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let region = self.shared.region();
            let bell = desk::bell(region);
            let taken = desk::take_posted(region);
            let now = self.feed.clock_ms();
            if now.saturating_sub(swept_at) >= SWEEP_EVERY_MS {
                desk::sweep(region, &mut abandoned, now);
                swept_at = now;
            }
            if taken.is_empty() {
                desk::sleep(region, bell, IDLE_WAIT);
            } else {
                self.serve(region, &decoded, &taken);
            }
        }
    }

    fn serve(&self, region: &Region, decoded: &table::Decoded, taken: &[Taken]) {
        let now = self.feed.clock_ms();
        let mut wanted: BTreeMap<Kind, Vec<Digest>> = BTreeMap::new();
        for request in taken {
            let cached = host_answer(
                region,
                decoded,
                &self.ages,
                &self.feed,
                request.kind,
                &request.digest,
                now,
            );
            // Another request (or a process of its own accord) filled it
            // already; a refresh is done when the answer is young again.
            let answered = match cached {
                Some(Cached::Found { filled_at, .. }) if request.refresh => {
                    now.saturating_sub(filled_at) < self.ages.refresh_after_ms
                }
                Some(_) => !request.refresh,
                None => false,
            };
            let digests = wanted.entry(request.kind).or_default();
            if !answered && !digests.contains(&request.digest) {
                digests.push(request.digest);
            }
        }
        for (kind, digests) in wanted {
            for chunk in digests.chunks(QUERY_CHUNK) {
                let generations: Vec<u64> = chunk
                    .iter()
                    .map(|d| table::stripe(region, d).load(Ordering::SeqCst))
                    .collect();
                bump(&self.counters.store_queries);
                let Ok(found) = self.store.find_credentials(kind, chunk) else {
                    // The posters ask the store themselves and see the error.
                    bump(&self.counters.store_errors);
                    continue;
                };
                if !self.fill_delay.is_zero() {
                    std::thread::sleep(self.fill_delay);
                }
                for (digest, generation) in chunk.iter().zip(generations) {
                    let answer = found.iter().find(|c| c.digest == *digest);
                    fill_host(region, &self.feed, digest, answer, now, generation);
                }
            }
        }
        let header = region.header();
        for request in taken {
            desk::answer(region, request);
            bump(if request.refresh {
                &header.refreshed
            } else {
                &header.forwarded
            });
        }
    }
}
