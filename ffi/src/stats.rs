//! `hk_stats`: a snapshot of a validator's counters, member for member
//! core's [`Stats::fields`], and `hk_validator_stats`, which fills it;
//! `hk_host_stats`, the host region as this process sees it, member for
//! member core's [`HostStats::fields`], and `hk_validator_host_stats`.

use std::ffi::c_int;

use heratio_keys_core::{HostStats, Stats};

use crate::error::{fail, hk_error, succeed};
use crate::panic::guard;
use crate::validator::hk_validator;

/// A snapshot of a validator's counters (`hk_validator_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct hk_stats {
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
    /// Successful change-feed polls.
    pub feed_polls: u64,
    /// Failed change-feed polls.
    pub feed_errors: u64,
    /// Digests evicted because of change-feed rows.
    pub feed_evictions: u64,
    /// Milliseconds since the feed was last read successfully; -1 if never.
    pub feed_lag_ms: i64,
    /// Usage records waiting in the queue.
    pub usage_queued: u64,
    /// Usage records written.
    pub usage_written: u64,
    /// Usage records dropped (queue full while its writer had stopped, or
    /// unwritable at shutdown).
    pub usage_dropped: u64,
    /// Failed usage batch writes (retried).
    pub usage_write_errors: u64,
}

impl From<&Stats> for hk_stats {
    fn from(s: &Stats) -> Self {
        hk_stats {
            validations: s.validations,
            cache_hits: s.cache_hits,
            cache_misses: s.cache_misses,
            cache_entries: s.cache_entries,
            store_queries: s.store_queries,
            store_errors: s.store_errors,
            feed_polls: s.feed_polls,
            feed_errors: s.feed_errors,
            feed_evictions: s.feed_evictions,
            feed_lag_ms: s
                .feed_lag_ms
                .map_or(-1, |lag| i64::try_from(lag).unwrap_or(i64::MAX)),
            usage_queued: s.usage_queued,
            usage_written: s.usage_written,
            usage_dropped: s.usage_dropped,
            usage_write_errors: s.usage_write_errors,
        }
    }
}

/// Fills `*out` with a snapshot of the validator's counters. Returns 0, or
/// `HK_ERR_INVALID_ARGUMENT` for a NULL argument (`*out` untouched).
///
/// # Safety
///
/// `v` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_stats(v: *const hk_validator, out: *mut hk_stats) -> c_int {
    const F: &str = "hk_validator_stats";
    guard(F, hk_error::HK_ERR_INTERNAL as c_int, || {
        // SAFETY: checked for NULL; the caller guarantees a live handle.
        let Some(v) = (unsafe { v.as_ref() }) else {
            return fail(
                F,
                hk_error::HK_ERR_INVALID_ARGUMENT,
                "the validator is NULL",
            );
        };
        if out.is_null() {
            return fail(F, hk_error::HK_ERR_INVALID_ARGUMENT, "out is NULL");
        }
        let stats = hk_stats::from(&v.inner.stats());
        // SAFETY: checked non-NULL; the caller guarantees writability.
        unsafe { out.write_unaligned(stats) };
        succeed()
    })
}

/// The host region as this process sees it (`hk_validator_host_stats`):
/// its role, and the counters every process sharing the region adds to.
/// A plain struct the caller owns; its size is fixed: later information
/// comes through a new function, never by growing it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct hk_host_stats {
    /// 1 when this process leads the host now (polls the change feed and
    /// writes the usage queue for every process), else 0.
    pub leader: u32,
    /// The leading process's id, as the region last recorded it.
    pub leader_pid: u32,
    /// Validations answered from the host cache, all processes.
    pub hits: u64,
    /// Validations that needed a store query, all processes.
    pub misses: u64,
    /// Answers stored in the host cache.
    pub fills: u64,
    /// Occupied host cache slots now.
    pub entries: u64,
    /// Host cache slots found damaged (read as misses).
    pub corrupt: u64,
    /// Usage records queued host-wide and not yet written.
    pub queued: u64,
    /// Usage records the host queue could not take (full) or lost (a
    /// process died while writing one).
    pub dropped: u64,
    /// Usage records written from the host queue.
    pub written: u64,
}

impl From<&HostStats> for hk_host_stats {
    fn from(h: &HostStats) -> Self {
        hk_host_stats {
            leader: u32::from(h.leader),
            leader_pid: h.leader_pid,
            hits: h.hits,
            misses: h.misses,
            fills: h.fills,
            entries: h.entries,
            corrupt: h.corrupt,
            queued: h.queued,
            dropped: h.dropped,
            written: h.written,
        }
    }
}

/// Fills `*out` with the host region's counters as this process sees them.
/// Returns 0; `HK_ERR_NOT_SHARED` when the validator does not share the
/// host region (opened without `HK_OPEN_SHARED_CACHE`, or the region could
/// not be used and it runs with its own cache: `hk_last_error_message` says
/// which, with the reason); `HK_ERR_INVALID_ARGUMENT` for a NULL argument.
/// `*out` is written only on success.
///
/// # Safety
///
/// `v` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_host_stats(
    v: *const hk_validator,
    out: *mut hk_host_stats,
) -> c_int {
    const F: &str = "hk_validator_host_stats";
    guard(F, hk_error::HK_ERR_INTERNAL as c_int, || {
        // SAFETY: checked for NULL; the caller guarantees a live handle.
        let Some(v) = (unsafe { v.as_ref() }) else {
            return fail(
                F,
                hk_error::HK_ERR_INVALID_ARGUMENT,
                "the validator is NULL",
            );
        };
        if out.is_null() {
            return fail(F, hk_error::HK_ERR_INVALID_ARGUMENT, "out is NULL");
        }
        let Some(host) = v.inner.stats().host else {
            return match v.inner.shared_cache_error() {
                Some(why) => fail(
                    F,
                    hk_error::HK_ERR_NOT_SHARED,
                    format_args!("the host region could not be used, this validator runs with its own cache: {why}"),
                ),
                None => fail(
                    F,
                    hk_error::HK_ERR_NOT_SHARED,
                    "the validator was opened without HK_OPEN_SHARED_CACHE",
                ),
            };
        };
        let stats = hk_host_stats::from(&host);
        // SAFETY: checked non-NULL; the caller guarantees writability.
        unsafe { out.write_unaligned(stats) };
        succeed()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ptr;

    use super::*;

    /// An `hk_stats` as member name → value, read from its derived `Debug`
    /// form (`hk_stats { validations: 1, … }`), so the comparison below
    /// sees every member without this test listing them.
    fn members(s: &hk_stats) -> BTreeMap<String, i64> {
        debug_members(&format!("{s:?}"), "hk_stats")
    }

    /// The members of a derived `Debug` form of the struct `name`.
    fn debug_members(debug: &str, name: &str) -> BTreeMap<String, i64> {
        let body = debug
            .strip_prefix(&format!("{name} {{ "))
            .and_then(|b| b.strip_suffix(" }"))
            .expect("derived Debug of a struct");
        body.split(", ")
            .map(|member| {
                let (name, value) = member.split_once(": ").expect("name: value");
                (name.to_owned(), value.parse().expect("an integer"))
            })
            .collect()
    }

    #[test]
    fn hk_stats_has_exactly_the_core_fields() {
        // Distinct values, so a member filled from the wrong field shows.
        let mut core = Stats::default();
        core.validations = 1;
        core.cache_hits = 2;
        core.cache_misses = 3;
        core.cache_entries = 4;
        core.store_queries = 5;
        core.store_errors = 6;
        core.feed_polls = 7;
        core.feed_errors = 8;
        core.feed_evictions = 9;
        core.usage_queued = 11;
        core.usage_written = 12;
        core.usage_dropped = 13;
        core.usage_write_errors = 14;
        for lag in [Some(10), None, Some(u64::MAX)] {
            core.feed_lag_ms = lag;
            let expected: BTreeMap<String, i64> = core
                .fields()
                .into_iter()
                .map(|(name, value)| {
                    let value = value.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
                    (name.to_owned(), value)
                })
                .collect();
            assert_eq!(expected.len(), core.fields().len(), "names are unique");
            assert_eq!(members(&hk_stats::from(&core)), expected);
        }
    }

    #[test]
    fn hk_host_stats_has_exactly_the_core_fields() {
        let mut core = HostStats::default();
        core.leader = true;
        core.leader_pid = 4_000_000;
        core.hits = 3;
        core.misses = 4;
        core.fills = 5;
        core.entries = 6;
        core.corrupt = 7;
        core.queued = 8;
        core.dropped = 9;
        core.written = u64::from(u32::MAX) + 10;
        let expected: BTreeMap<String, i64> = core
            .fields()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), i64::try_from(value).expect("small")))
            .collect();
        assert_eq!(expected.len(), core.fields().len(), "names are unique");
        let c = hk_host_stats::from(&core);
        let got: BTreeMap<String, i64> = debug_members(&format!("{c:?}"), "hk_host_stats")
            .into_iter()
            .map(|(member, value)| (format!("host_{member}"), value))
            .collect();
        assert_eq!(got, expected);
        // The C layout: two 32-bit members, then eight 64-bit counters.
        assert_eq!(std::mem::size_of::<hk_host_stats>(), 72);
    }

    #[test]
    fn null_arguments_are_refused() {
        // SAFETY: NULL is allowed.
        assert_eq!(
            unsafe { hk_validator_stats(ptr::null(), ptr::null_mut()) },
            hk_error::HK_ERR_INVALID_ARGUMENT as c_int
        );
        // SAFETY: NULL is allowed.
        assert_eq!(
            unsafe { hk_validator_host_stats(ptr::null(), ptr::null_mut()) },
            hk_error::HK_ERR_INVALID_ARGUMENT as c_int
        );
    }
}
