//! Where in `usage_log` a time falls, without an index on time.
//!
//! `usage_log` carries one secondary index (by credential, schema 9): every
//! index is paid for by every validation, and its readers are pages,
//! exports and retention. Rows are appended, so their ids grow with the
//! time they were recorded, and a validation is recorded within seconds of
//! happening (the flush interval, a host queue's wait). A time bound is
//! therefore turned into an id bound by a binary search over the primary
//! key, a few dozen point reads however large the table, and the exact time
//! condition is kept beside it. Records written much later than they
//! happened (a queue drained after a long store outage) sit among rows of
//! their write time: up to [`LATE_RECORD_MS`] late, time bounds still find
//! them; later than that, a time-bounded query or retention sees them where
//! they were written.

use std::collections::{BTreeMap, BTreeSet};

use super::Conn;
use crate::error::Result;
use crate::format::Kind;
use crate::model::HOUR_MS;

/// How long after a validation its record may be written and still be
/// found by time-bounded queries and retention.
pub(super) const LATE_RECORD_MS: i64 = HOUR_MS;

/// The lowest and highest id in `usage_log`, if it has rows.
pub(super) fn id_ends(conn: &mut dyn Conn) -> Result<Option<(i64, i64)>> {
    let ends = conn.query("SELECT MIN(id), MAX(id) FROM usage_log", &[])?;
    let Some(row) = ends.first() else {
        return Ok(None);
    };
    Ok(row.opt_int(0)?.zip(row.opt_int(1)?))
}

/// The smallest id from which `usage_log` rows were recorded at or after
/// `at` (one past the last id if none was; 0 for an empty table).
pub(super) fn first_id_recorded_from(conn: &mut dyn Conn, at: i64) -> Result<i64> {
    let Some((mut low, last)) = id_ends(conn)? else {
        return Ok(0);
    };
    // The answer lies in [low, high]; ids may have gaps (pruned rows,
    // rolled-back inserts), so each probe reads the first row at or after
    // the midpoint.
    let mut high = last.saturating_add(1);
    while low < high {
        let mid = low + (high - low) / 2;
        let probe = conn.query(
            "SELECT id, created_at FROM usage_log WHERE id >= ? ORDER BY id LIMIT 1",
            &[mid.into()],
        )?;
        match probe.first() {
            Some(row) if row.int(1)? < at => low = row.int(0)?.saturating_add(1),
            _ => high = mid,
        }
    }
    Ok(low)
}

/// The `usage_log` condition for "recorded between `since` and `until`"
/// (either open): id bounds widened by [`LATE_RECORD_MS`] for the index,
/// and the exact times. Id bounds are inlined: they are integers read from
/// the table.
pub(super) fn time_condition(
    conn: &mut dyn Conn,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<String> {
    let mut condition = String::new();
    if let Some(since) = since {
        let from = first_id_recorded_from(conn, since.saturating_sub(LATE_RECORD_MS))?;
        condition.push_str(&format!(" AND id >= {from} AND created_at >= {since}"));
    }
    if let Some(until) = until {
        let to = first_id_recorded_from(conn, until.saturating_add(LATE_RECORD_MS))?;
        condition.push_str(&format!(" AND id < {to} AND created_at < {until}"));
    }
    Ok(condition)
}

/// The `usage_log` condition for "recorded for client `client`": its
/// credentials (now, and any the daily rollups saw recorded under it, in
/// case one moved between clients), through the credential index, and the
/// recorded client itself. Ids are inlined: a client may hold more
/// credentials than a statement may have placeholders.
pub(super) fn client_condition(conn: &mut dyn Conn, client: i64) -> Result<String> {
    let mut ids: BTreeMap<Kind, BTreeSet<i64>> = BTreeMap::new();
    for kind in Kind::ALL {
        for row in conn.query(
            &format!("SELECT id FROM {} WHERE client_id = ?", kind.table()),
            &[client.into()],
        )? {
            ids.entry(kind).or_default().insert(row.int(0)?);
        }
    }
    for row in conn.query(
        "SELECT credential_kind, credential_id FROM usage_daily WHERE client_id = ? \
         GROUP BY credential_kind, credential_id",
        &[client.into()],
    )? {
        if let Some(kind) = Kind::from_code(row.int(0)?) {
            ids.entry(kind).or_default().insert(row.int(1)?);
        }
    }
    let alternatives: Vec<String> = ids
        .iter()
        .map(|(kind, ids)| {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            format!(
                "(credential_kind = {} AND credential_id IN ({}))",
                kind.code(),
                list.join(", ")
            )
        })
        .collect();
    if alternatives.is_empty() {
        return Ok(" AND 1 = 0".to_owned());
    }
    Ok(format!(
        " AND client_id = {client} AND ({})",
        alternatives.join(" OR ")
    ))
}
