//! Retention as the operators run it (`keygen prune`, the maintenance pass
//! of `keygen serve`): the store's [`ReportStore::prune`] followed by one
//! audit row saying what went and under which policy. Deleting history,
//! audit rows above all, must itself leave a trace; a pass that deleted no
//! history writes nothing, so an hourly timer does not fill the audit log
//! with empty entries (rate counters of past hours are bookkeeping, not
//! history: deleting only those is not recorded).
//!
//! [`ReportStore::prune`]: crate::ReportStore::prune

use crate::error::{Error, Result};
use crate::model::{parse_duration, Actor, Pruned, Retention, DAY_MS};
use crate::store::KeyStore;

/// Environment variable `keygen prune` reads for `--usage-retention`.
pub const USAGE_RETENTION_ENV: &str = "HERATIO_KEYS_USAGE_RETENTION";
/// Environment variable `keygen prune` reads for `--feed-retention`.
pub const FEED_RETENTION_ENV: &str = "HERATIO_KEYS_FEED_RETENTION";
/// Environment variable `keygen prune` reads for `--audit-retention`.
pub const AUDIT_RETENTION_ENV: &str = "HERATIO_KEYS_AUDIT_RETENTION";

pub use crate::model::MIN_FEED_RETENTION_MS;

/// The audit action of a prune.
pub const PRUNE_ACTION: &str = "retention.prune";

/// Runs [`ReportStore::prune`](crate::ReportStore::prune) and, when
/// any history was deleted, records [`PRUNE_ACTION`] (target `database`) with
/// the counts and the retention in the detail.
///
/// # Errors
///
/// Store errors. Batches deleted before an error stay deleted; the audit
/// row is then not written (the error is what the caller reports).
pub fn prune(store: &dyn KeyStore, retention: &Retention, actor: &Actor) -> Result<Pruned> {
    let pruned = store.prune(retention)?;
    if pruned.total() > pruned.rate_rows {
        store.record_audit(
            actor,
            PRUNE_ACTION,
            "database",
            None,
            Some(&audit_detail(&pruned, retention)),
        )?;
    }
    Ok(pruned)
}

/// The retention the environment configures as of `now`: the variables
/// `keygen prune` reads (the packaged timer's `EnvironmentFile` sets them),
/// [`Retention::defaults`] for each one unset or empty; an audit retention
/// of `forever` keeps audit rows. `keygen serve`'s maintenance pass uses
/// this, so it never prunes sooner than the timer was told to.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the
/// variable, for a value that is no duration or a feed retention under
/// [`MIN_FEED_RETENTION_MS`].
pub fn from_env(now: i64) -> Result<Retention> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let duration = |name: &str, text: &str| {
        parse_duration(text).map_err(|e| Error::invalid_input(format!("{name}: {}", e.message())))
    };
    let defaults = Retention::defaults();
    let usage_ms = match var(USAGE_RETENTION_ENV) {
        Some(v) => duration(USAGE_RETENTION_ENV, &v)?,
        None => defaults.usage_ms,
    };
    let feed_ms = match var(FEED_RETENTION_ENV) {
        Some(v) => duration(FEED_RETENTION_ENV, &v)?,
        None => defaults.feed_ms,
    };
    if feed_ms < MIN_FEED_RETENTION_MS {
        return Err(Error::invalid_input(format!(
            "{FEED_RETENTION_ENV}: under the minimum of 1h"
        )));
    }
    let audit_ms = match var(AUDIT_RETENTION_ENV).as_deref() {
        None | Some("forever") => None,
        Some(v) => Some(duration(AUDIT_RETENTION_ENV, v)?),
    };
    Ok(Retention {
        now,
        usage_ms,
        feed_ms,
        audit_ms,
    })
}

impl Pruned {
    /// Rows deleted from every table together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.usage_rows
            .saturating_add(self.rejected_rows)
            .saturating_add(self.feed_rows)
            .saturating_add(self.rate_rows)
            .saturating_add(self.audit_rows)
    }
}

/// `usage_log 12000, usage_rejected 1, …; kept: usage 90d, feed 24h, audit forever`.
fn audit_detail(p: &Pruned, r: &Retention) -> String {
    format!(
        "deleted usage_log {}, usage_rejected {}, change_feed {}, rate_counter {}, audit_log {}; \
         kept: usage {}, feed {}, audit {}",
        p.usage_rows,
        p.rejected_rows,
        p.feed_rows,
        p.rate_rows,
        p.audit_rows,
        period(r.usage_ms),
        period(r.feed_ms.max(MIN_FEED_RETENTION_MS)),
        r.audit_ms.map_or_else(|| "forever".to_owned(), period),
    )
}

/// A period as the duration flags write it: whole days, else hours, else
/// seconds.
fn period(ms: i64) -> String {
    if ms % DAY_MS == 0 {
        format!("{}d", ms / DAY_MS)
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_detail_names_counts_and_policy() {
        let p = Pruned {
            usage_rows: 12,
            rejected_rows: 1,
            feed_rows: 3,
            rate_rows: 0,
            audit_rows: 0,
        };
        assert_eq!(p.total(), 16);
        let r = Retention {
            now: 0,
            usage_ms: 90 * DAY_MS,
            feed_ms: 60_000,
            audit_ms: Some(36 * 3_600_000),
        };
        assert_eq!(
            audit_detail(&p, &r),
            "deleted usage_log 12, usage_rejected 1, change_feed 3, rate_counter 0, audit_log 0; \
             kept: usage 90d, feed 1h, audit 36h"
        );
    }
}
