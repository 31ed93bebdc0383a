//! Retention: deleting raw usage, rejection counts, change-feed rows, old
//! rate counters and (only when asked) audit rows, in small batches that
//! each commit on their own, so validation and the usage flusher never
//! wait behind one long delete. Statistics read the daily rollups, which
//! are kept.

use super::{log_order, Driver, SqlStore};
use crate::error::Result;
use crate::model::HOUR_MS;
use crate::model::MIN_FEED_RETENTION_MS;
use crate::model::{Pruned, Retention};

/// Rows deleted per statement.
const BATCH: i64 = 5000;

impl<D: Driver> SqlStore<D> {
    /// Deletes rows of `table` older than `cutoff` (column `time`), by
    /// ranges of the id, `BATCH` at a time, and with `keep_newest` never the
    /// row with the highest id. Returns how many went.
    fn prune_by_id(&self, table: &str, time: &str, cutoff: i64, keep_newest: bool) -> Result<u64> {
        let below_newest = if keep_newest {
            format!(" AND id < (SELECT MAX(id) FROM {table})")
        } else {
            String::new()
        };
        let upto = self.with_conn(|conn| {
            conn.query(
                &format!("SELECT MIN(id), MAX(id) FROM {table} WHERE {time} < ?{below_newest}"),
                &[cutoff.into()],
            )
        })?;
        match (
            upto.first().map(|r| r.opt_int(0)).transpose()?.flatten(),
            upto.first().map(|r| r.opt_int(1)).transpose()?.flatten(),
        ) {
            (Some(low), Some(high)) => self.delete_id_range(table, time, cutoff, low, high),
            _ => Ok(0),
        }
    }

    /// Deletes `usage_log` rows older than `cutoff`. The table has no index
    /// on time: the ids recorded before the cutoff (and up to
    /// `LATE_RECORD_MS` after it, for records written late) are found by
    /// `log_order`, then deleted by id range on the exact time.
    fn prune_usage_log(&self, cutoff: i64) -> Result<u64> {
        let (low, end) = self.with_conn(|conn| {
            let low = log_order::id_ends(conn)?.map(|(low, _)| low);
            let end = log_order::first_id_recorded_from(
                conn,
                cutoff.saturating_add(log_order::LATE_RECORD_MS),
            )?;
            Ok((low, end))
        })?;
        match low {
            Some(low) if low < end => {
                self.delete_id_range("usage_log", "created_at", cutoff, low, end - 1)
            }
            _ => Ok(0),
        }
    }

    /// Deletes the rows of `table` with ids in `low..=high` older than
    /// `cutoff`, `BATCH` ids per statement, each committing on its own.
    fn delete_id_range(
        &self,
        table: &str,
        time: &str,
        cutoff: i64,
        low: i64,
        high: i64,
    ) -> Result<u64> {
        let mut deleted = 0;
        let mut from = low - 1;
        while from < high {
            let to = (from + BATCH).min(high);
            deleted += self.with_conn(|conn| {
                conn.exec(
                    &format!("DELETE FROM {table} WHERE id > ? AND id <= ? AND {time} < ?"),
                    &[from.into(), to.into(), cutoff.into()],
                )
                .map(|e| e.affected)
            })?;
            from = to;
            // Let the flusher's and the validators' statements in.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(deleted)
    }

    fn prune_where(&self, sql: &str, cutoff: i64) -> Result<u64> {
        self.with_conn(|conn| conn.exec(sql, &[cutoff.into()]).map(|e| e.affected))
    }

    pub(super) fn run_prune(&self, retention: &Retention) -> Result<Pruned> {
        let now = retention.now;
        let usage_cutoff = now - retention.usage_ms;
        let feed_cutoff = now - retention.feed_ms.max(MIN_FEED_RETENTION_MS);
        Ok(Pruned {
            usage_rows: self.prune_usage_log(usage_cutoff)?,
            rejected_rows: self
                .prune_where("DELETE FROM usage_rejected WHERE minute < ?", usage_cutoff)?,
            // The feed's head (its highest id) must never go back: validators
            // take a head below what they have read for a restored database
            // and drop their caches (feed.rs).
            feed_rows: self.prune_by_id("change_feed", "created_at", feed_cutoff, true)?,
            rate_rows: self.prune_where(
                "DELETE FROM rate_counter WHERE window_start < ?",
                now - 2 * HOUR_MS,
            )?,
            audit_rows: match retention.audit_ms {
                Some(keep) => self.prune_by_id("audit_log", "created_at", now - keep, false)?,
                None => 0,
            },
        })
    }
}
