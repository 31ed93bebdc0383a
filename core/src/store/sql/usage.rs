//! Writing usage: one `usage_log` row per validation of a stored credential,
//! per-credential counters (`usage_count`, `last_used_at`) bumped once per
//! batch, and validations that matched no credential (malformed, wrong
//! kind, unknown) folded into per-minute counts in `usage_rejected`, so a
//! flood of random keys costs a few rows a minute instead of one per
//! request.

use std::collections::BTreeMap;

use super::{multi_row_statements, Driver, SqlStore, Value};
use crate::error::Result;
use crate::format::Kind;
use crate::model::{rejection_bucket, UsageRecord, DAY_MS, MINUTE_MS};
use crate::status::Status;

/// Credentials per usage-count UPDATE (5 placeholders each, well under
/// both engines' limits).
const USAGE_UPDATE_CHUNK: usize = 500;

/// `(minute, kind, ip bucket, status)` → validations.
type Rejections = BTreeMap<(i64, Kind, String, Status), i64>;

impl<D: Driver> SqlStore<D> {
    /// Writes one batch in one transaction (with the queue position it
    /// reaches, if from a host queue); nothing is written on error.
    pub(super) fn record_usage(
        &self,
        batch: &[UsageRecord],
        through: Option<(&str, i64)>,
    ) -> Result<()> {
        let (logged, rejected): (Vec<&UsageRecord>, Vec<&UsageRecord>) =
            batch.iter().partition(|r| r.credential_id.is_some());
        let rows = log_values(&logged);
        let mut statements = Vec::new();
        statements.extend(self.counter_updates(&logged));
        statements.extend(self.rejection_upsert(&rejected));
        statements.extend(self.daily_upsert(&logged));
        if let Some((queue, last)) = through {
            let dialect = self.driver.dialect();
            statements.push((
                format!(
                    "{} INTO usage_cursor (queue, position) VALUES (?, ?)",
                    dialect.insert_ignore()
                ),
                vec![queue.into(), (-1i64).into()],
            ));
            statements.push((
                "UPDATE usage_cursor SET position = ? WHERE queue = ?".to_owned(),
                vec![last.into(), queue.into()],
            ));
        }
        if statements.is_empty() && rows.is_empty() {
            return Ok(());
        }
        self.transaction(|conn| {
            if !rows.is_empty() {
                conn.append_rows("usage_log", &LOG_COLUMNS, &rows)?;
            }
            for (sql, params) in &statements {
                conn.exec(sql, params)?;
            }
            Ok(())
        })
    }

    /// One UPDATE per kind and chunk rather than one per credential: a
    /// batch touching 1000 keys would otherwise cost 1000 round trips,
    /// which capped the sustainable usage rate on MySQL at ~20k/s.
    fn counter_updates(&self, logged: &[&UsageRecord]) -> Vec<(String, Vec<Value>)> {
        // Per credential: accepted uses and the latest accepted use.
        let mut accepted: BTreeMap<(Kind, i64), (i64, i64)> = BTreeMap::new();
        for record in logged.iter().filter(|r| r.status == Status::Valid) {
            if let Some(id) = record.credential_id {
                let entry = accepted.entry((record.kind, id)).or_insert((0, record.at));
                entry.0 += 1;
                entry.1 = entry.1.max(record.at);
            }
        }
        let dialect = self.driver.dialect();
        let mut updates = Vec::new();
        for kind in Kind::ALL {
            let of_kind: Vec<(i64, i64, i64)> = accepted
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|(&(_, id), &(count, last))| (id, count, last))
                .collect();
            for chunk in of_kind.chunks(USAGE_UPDATE_CHUNK) {
                let cases = vec!["WHEN ? THEN ?"; chunk.len()].join(" ");
                let ids = vec!["?"; chunk.len()].join(", ");
                let last_used =
                    dialect.greatest("COALESCE(last_used_at, 0)", &format!("CASE id {cases} END"));
                let sql = format!(
                    "UPDATE {} SET usage_count = usage_count + CASE id {cases} END, last_used_at = {last_used} WHERE id IN ({ids})",
                    kind.table()
                );
                let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
                params.extend(
                    chunk
                        .iter()
                        .flat_map(|&(id, count, _)| [id.into(), count.into()]),
                );
                params.extend(
                    chunk
                        .iter()
                        .flat_map(|&(id, _, last)| [id.into(), last.into()]),
                );
                params.extend(chunk.iter().map(|&(id, _, _)| id.into()));
                updates.push((sql, params));
            }
        }
        updates
    }

    /// Adds the batch to the per-day, per-credential, per-status counts.
    fn daily_upsert(&self, logged: &[&UsageRecord]) -> Vec<(String, Vec<Value>)> {
        let mut counts: BTreeMap<(i64, Kind, i64, Status), (i64, i64)> = BTreeMap::new();
        for r in logged {
            let (Some(id), client) = (r.credential_id, r.client_id.unwrap_or(0)) else {
                continue;
            };
            let entry = counts
                .entry((r.at.div_euclid(DAY_MS), r.kind, id, r.status))
                .or_insert((client, 0));
            entry.1 += 1;
        }
        chunked_inserts(
            "INSERT INTO usage_daily (day, credential_kind, credential_id, client_id, status, count)",
            &self.driver.dialect().add_on_conflict(
                &["day", "credential_kind", "credential_id", "status"],
                "count",
            ),
            counts.into_iter().map(|((day, kind, id, status), (client, n))| {
                [
                    day.into(),
                    i64::from(kind.code()).into(),
                    id.into(),
                    client.into(),
                    i64::from(status.code()).into(),
                    n.into(),
                ]
            }),
        )
    }

    fn rejection_upsert(&self, rejected: &[&UsageRecord]) -> Vec<(String, Vec<Value>)> {
        let mut counts = Rejections::new();
        for r in rejected {
            let minute = r.at - r.at.rem_euclid(MINUTE_MS);
            let bucket = rejection_bucket(r.ip.as_deref());
            *counts
                .entry((minute, r.kind, bucket, r.status))
                .or_insert(0) += 1;
        }
        chunked_inserts(
            "INSERT INTO usage_rejected (minute, credential_kind, ip, status, count)",
            &self
                .driver
                .dialect()
                .add_on_conflict(&["minute", "credential_kind", "ip", "status"], "count"),
            counts.into_iter().map(|((minute, kind, ip, status), n)| {
                [
                    minute.into(),
                    i64::from(kind.code()).into(),
                    ip.into(),
                    i64::from(status.code()).into(),
                    n.into(),
                ]
            }),
        )
    }
}

/// The columns of a `usage_log` row, in [`log_values`]' order.
const LOG_COLUMNS: [&str; 7] = [
    "credential_kind",
    "credential_id",
    "client_id",
    "created_at",
    "ip",
    "endpoint",
    "status",
];

/// The logged validations as `usage_log` rows, flattened.
fn log_values(logged: &[&UsageRecord]) -> Vec<Value> {
    let mut values = Vec::with_capacity(logged.len() * LOG_COLUMNS.len());
    for r in logged {
        values.extend([
            i64::from(r.kind.code()).into(),
            r.credential_id.into(),
            r.client_id.into(),
            r.at.into(),
            r.ip.clone().into(),
            r.endpoint.clone().into(),
            i64::from(r.status.code()).into(),
        ]);
    }
    values
}

/// Multi-row statements of `rows` (each `N` values).
fn chunked_inserts<const N: usize>(
    head: &str,
    tail: &str,
    rows: impl IntoIterator<Item = [Value; N]>,
) -> Vec<(String, Vec<Value>)> {
    let values: Vec<Value> = rows.into_iter().flatten().collect();
    multi_row_statements(head, tail, N, &values)
}
