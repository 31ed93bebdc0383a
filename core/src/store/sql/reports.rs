//! Reading back what was recorded: usage statistics, the usage log (a page
//! or a streamed export) and the per-minute counts of rejected keys.

use std::collections::BTreeMap;

use super::{fetch_client, log_order, Conn, Driver, Row, SqlStore, Value};
use crate::error::{Error, Result};
use crate::format::Kind;
use crate::model::{
    rejection_bucket, utc_date, CredentialUsage, DayCount, RejectedUsage, UsageRecord, UsageStats,
    DAY_MS, MINUTE_MS,
};
use crate::model::{Pruned, Retention};
use crate::status::Status;
use crate::store::{ReportStore, StatsQuery, UsageEntry, UsageQuery};

impl<D: Driver> ReportStore for SqlStore<D> {
    fn usage_stats(&self, query: &StatsQuery) -> Result<UsageStats> {
        let dialect = self.driver.dialect();
        let days = i64::from(query.days.max(1));
        let today = query.now.div_euclid(DAY_MS);
        let first_day = today - days + 1;
        let since = first_day * DAY_MS;
        let (client_filter, client_param): (&str, Vec<Value>) = match query.client_id {
            Some(id) => (" AND client_id = ?", vec![id.into()]),
            None => ("", vec![]),
        };
        let with_client = |mut params: Vec<Value>| {
            params.extend(client_param.iter().cloned());
            params
        };
        self.with_conn(|conn| {
            if let Some(id) = query.client_id {
                fetch_client(conn, id, "")?;
            }
            let clients = conn.query(
                &format!("SELECT COUNT(*), COALESCE(SUM(is_active), 0) FROM client WHERE 1 = 1{}", client_filter.replace("client_id", "id")),
                &with_client(vec![]),
            )?;
            let mut active = [0i64; 2];
            for (slot, kind) in active.iter_mut().zip(Kind::ALL) {
                let rows = conn.query(
                    &format!(
                        "SELECT COUNT(*) FROM {} WHERE is_active = 1 AND (expires_at IS NULL OR expires_at > ?){client_filter}",
                        kind.table()
                    ),
                    &with_client(vec![query.now.into()]),
                )?;
                *slot = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
            }
            // The daily rollups, never the raw log: statistics stay cheap
            // however much usage is recorded (and after it is pruned).
            let per_day_rows = conn.query(
                &format!(
                    "SELECT day, SUM(count), COALESCE(SUM(CASE WHEN status = 0 THEN count ELSE 0 END), 0) \
                     FROM usage_daily WHERE day >= ? AND day <= ?{client_filter} GROUP BY day ORDER BY day"
                ),
                &with_client(vec![first_day.into(), today.into()]),
            )?;
            let mut counted: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for row in &per_day_rows {
                counted.insert(row.int(0)?, (row.int(1)?, row.int(2)?));
            }
            if query.client_id.is_none() {
                // Validations that matched no credential belong to no
                // client, and were never valid.
                let day = dialect.int_div("minute", DAY_MS);
                let rejected = conn.query(
                    &format!(
                        "SELECT {day} AS day, SUM(count) FROM usage_rejected \
                         WHERE minute >= ? AND minute <= ? GROUP BY {day}"
                    ),
                    &[since.into(), query.now.into()],
                )?;
                for row in &rejected {
                    counted.entry(row.int(0)?).or_insert((0, 0)).0 += row.int(1)?;
                }
            }
            let per_day: Vec<DayCount> = (first_day..=today)
                .map(|d| {
                    let (total, valid) = counted.get(&d).copied().unwrap_or((0, 0));
                    DayCount {
                        date: utc_date(d * DAY_MS),
                        total,
                        valid,
                    }
                })
                .collect();
            let mut top = Vec::new();
            for kind in Kind::ALL {
                let rows = conn.query(
                    &format!(
                        "SELECT id, client_id, name, key_prefix, usage_count, last_used_at FROM {} \
                         WHERE usage_count > 0{client_filter} ORDER BY usage_count DESC, id LIMIT ?",
                        kind.table()
                    ),
                    &{
                        let mut p = with_client(vec![]);
                        p.push(i64::from(query.top).into());
                        p
                    },
                )?;
                for row in &rows {
                    top.push(CredentialUsage {
                        kind,
                        id: row.int(0)?,
                        client_id: row.int(1)?,
                        name: row.text(2)?,
                        display_prefix: row.text(3)?,
                        usage_count: row.int(4)?,
                        last_used_at: row.opt_int(5)?,
                    });
                }
            }
            top.sort_by(|a, b| b.usage_count.cmp(&a.usage_count).then(a.kind.cmp(&b.kind)).then(a.id.cmp(&b.id)));
            top.truncate(usize::try_from(query.top).unwrap_or(usize::MAX));
            let client_row = clients.first().ok_or_else(|| Error::internal("COUNT returned no row"))?;
            Ok(UsageStats {
                clients: client_row.int(0)?,
                active_clients: client_row.int(1)?,
                active_api_keys: active[0],
                active_ai_tokens: active[1],
                validations: per_day.iter().map(|d| d.total).sum(),
                valid_validations: per_day.iter().map(|d| d.valid).sum(),
                last_used_at: top.iter().filter_map(|t| t.last_used_at).max(),
                per_day,
                top,
            })
        })
    }

    fn usage_log(&self, query: &UsageQuery) -> Result<(Vec<UsageEntry>, u64)> {
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (rows, total) = self.with_conn(|conn| {
            let (filter, params) = usage_filter(conn, query)?;
            let total = conn.query(&format!("SELECT COUNT(*) FROM usage_log{filter}"), &params)?;
            let mut page_params = params.clone();
            page_params.extend([to_i64(query.limit).into(), to_i64(query.offset).into()]);
            let rows = conn.query(
                &format!(
                    "SELECT {USAGE_COLUMNS} FROM usage_log{filter} \
                     ORDER BY id DESC LIMIT ? OFFSET ?"
                ),
                &page_params,
            )?;
            Ok((
                rows,
                total.first().map(|r| r.int(0)).transpose()?.unwrap_or(0),
            ))
        })?;
        let entries = rows.iter().map(usage_entry).collect::<Result<Vec<_>>>()?;
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }

    fn rejected_usage(&self, query: &UsageQuery) -> Result<(Vec<RejectedUsage>, u64)> {
        if query.client_id.is_some() || query.credential.is_some() {
            return Ok((Vec::new(), 0));
        }
        let mut filter = String::from(" WHERE 1 = 1");
        let mut params: Vec<Value> = Vec::new();
        if let Some(kind) = query.kind {
            filter.push_str(" AND credential_kind = ?");
            params.push(i64::from(kind.code()).into());
        }
        if let Some(status) = query.status {
            filter.push_str(" AND status = ?");
            params.push(i64::from(status.code()).into());
        }
        if let Some(ip) = &query.ip {
            filter.push_str(" AND ip = ?");
            params.push(rejection_bucket(Some(ip)).into());
        }
        if let Some(since) = query.since {
            filter.push_str(" AND minute >= ?");
            params.push((since - since.rem_euclid(MINUTE_MS)).into());
        }
        if let Some(until) = query.until {
            filter.push_str(" AND minute < ?");
            params.push(until.into());
        }
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (rows, total) = self.with_conn(|conn| {
            let total = conn.query(
                &format!("SELECT COALESCE(SUM(count), 0) FROM usage_rejected{filter}"),
                &params,
            )?;
            let mut page_params = params.clone();
            page_params.extend([to_i64(query.limit).into(), to_i64(query.offset).into()]);
            let rows = conn.query(
                &format!(
                    "SELECT minute, credential_kind, ip, status, count FROM usage_rejected{filter} \
                     ORDER BY minute DESC, count DESC, ip LIMIT ? OFFSET ?"
                ),
                &page_params,
            )?;
            Ok((
                rows,
                total.first().map(|r| r.int(0)).transpose()?.unwrap_or(0),
            ))
        })?;
        let rejected = rows
            .iter()
            .map(|row| {
                Ok(RejectedUsage {
                    minute: row.int(0)?,
                    kind: Kind::from_code(row.int(1)?).ok_or_else(|| {
                        Error::internal("unknown credential_kind in usage_rejected")
                    })?,
                    ip: row.text(2)?,
                    status: Status::from_code(row.int(3)?)
                        .ok_or_else(|| Error::internal("unknown status in usage_rejected"))?,
                    count: row.int(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((rejected, u64::try_from(total).unwrap_or(0)))
    }

    fn export_usage(
        &self,
        query: &UsageQuery,
        sink: &mut dyn FnMut(UsageEntry) -> Result<()>,
    ) -> Result<u64> {
        let (filter, params) = self.with_conn(|conn| usage_filter(conn, query))?;
        let mut after = -1i64;
        let mut written = 0;
        loop {
            // Pages by id (the primary key): each query starts where the
            // last ended, so memory stays one page whatever the range.
            let mut page_params = params.clone();
            page_params.extend([after.into(), EXPORT_PAGE.into()]);
            let rows = self.with_conn(|conn| {
                conn.query(
                    &format!(
                        "SELECT {USAGE_COLUMNS} FROM usage_log{filter} AND id > ? ORDER BY id LIMIT ?"
                    ),
                    &page_params,
                )
            })?;
            for row in &rows {
                let entry = usage_entry(row)?;
                after = entry.id;
                sink(entry)?;
                written += 1;
            }
            if rows.len() < usize::try_from(EXPORT_PAGE).unwrap_or(usize::MAX) {
                return Ok(written);
            }
        }
    }

    fn prune(&self, retention: &Retention) -> Result<Pruned> {
        self.run_prune(retention)
    }
}

/// The `WHERE` clause and parameters of a usage-log query. The client and
/// time filters go through the credential index and the primary key
/// (`log_order`): `usage_log` has no index on either.
fn usage_filter(conn: &mut dyn Conn, query: &UsageQuery) -> Result<(String, Vec<Value>)> {
    let mut filter = String::from(" WHERE 1 = 1");
    let mut params: Vec<Value> = Vec::new();
    if let Some(id) = query.client_id {
        filter.push_str(&log_order::client_condition(conn, id)?);
    }
    if let Some(kind) = query.kind {
        filter.push_str(" AND credential_kind = ?");
        params.push(i64::from(kind.code()).into());
    }
    if let Some((kind, id)) = query.credential {
        filter.push_str(" AND credential_kind = ? AND credential_id = ?");
        params.extend([i64::from(kind.code()).into(), id.into()]);
    }
    if let Some(status) = query.status {
        filter.push_str(" AND status = ?");
        params.push(i64::from(status.code()).into());
    }
    if let Some(ip) = &query.ip {
        filter.push_str(" AND ip = ?");
        params.push(ip.as_str().into());
    }
    filter.push_str(&log_order::time_condition(conn, query.since, query.until)?);
    Ok((filter, params))
}

/// A usage-log row, in the column order of `USAGE_COLUMNS`.
fn usage_entry(row: &Row) -> Result<UsageEntry> {
    Ok(UsageEntry {
        id: row.int(0)?,
        record: UsageRecord {
            kind: Kind::from_code(row.int(1)?)
                .ok_or_else(|| Error::internal("unknown credential_kind in usage_log"))?,
            credential_id: row.opt_int(2)?,
            client_id: row.opt_int(3)?,
            at: row.int(4)?,
            ip: row.opt_text(5)?,
            endpoint: row.opt_text(6)?,
            status: Status::from_code(row.int(7)?)
                .ok_or_else(|| Error::internal("unknown status in usage_log"))?,
        },
    })
}

/// Rows per page of an export.
const EXPORT_PAGE: i64 = 1000;

const USAGE_COLUMNS: &str =
    "id, credential_kind, credential_id, client_id, created_at, ip, endpoint, status";
