//! The validator's queries: the indexed lookup by digest, the change feed,
//! and usage batches (rows plus per-credential counters).

use super::{
    allowed_from_stored, metadata_from_stored, scopes_from_stored, Driver, Row, SqlStore, Value,
};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{digest_hex, parse_digest_hex, Digest, KeyShape, Kind};
use crate::model::{Credential, FeedEntry, UsageRecord};
use crate::store::{Backend, ValidationStore};

/// Lengths of the `id IN (…)` lists `feed_rows` sends, ascending.
const FEED_ROWS_SHAPES: [usize; 3] = [8, 64, 512];
/// Lengths of the `key_hash IN (…)` lists `find_credentials` sends.
const LOOKUP_SHAPES: [usize; 3] = [1, 8, 64];

/// `?, ?, …` for the smallest of `shapes` that holds `items` (a non-empty
/// chunk no longer than the largest), and its parameters padded by
/// repeating the last item: a statement shape per list length would fill
/// the server's prepared-statement cache.
fn padded_list<T>(
    shapes: &[usize],
    items: &[T],
    value: impl Fn(&T) -> Value,
) -> (String, Vec<Value>) {
    let shape = shapes
        .iter()
        .copied()
        .find(|&n| n >= items.len())
        .unwrap_or(items.len());
    let params = items
        .iter()
        .chain(std::iter::repeat(&items[items.len() - 1]))
        .take(shape)
        .map(value)
        .collect();
    (vec!["?"; shape].join(", "), params)
}

fn credential_select(kind: Kind) -> String {
    format!(
        "SELECT k.id, k.client_id, k.name, k.scopes, k.expires_at, k.is_active, c.is_active, k.key_hash, k.metadata, k.rate_limit, k.allowed_ips \
         FROM {} k JOIN client c ON c.id = k.client_id",
        kind.table()
    )
}

fn credential(kind: Kind, row: &Row) -> Result<Credential> {
    let stored = parse_digest_hex(&row.text(7)?)
        .ok_or_else(|| Error::internal("stored key_hash is not hex"))?;
    Ok(Credential {
        kind,
        id: row.int(0)?,
        client_id: row.int(1)?,
        name: row.text(2)?,
        scopes: scopes_from_stored(&row.text(3)?)?,
        expires_at: row.opt_int(4)?,
        active: row.bool(5)?,
        client_active: row.bool(6)?,
        metadata: metadata_from_stored(row.opt_text(8)?)?,
        rate_limit: row.opt_int(9)?,
        allowed_ips: allowed_from_stored(row.opt_text(10)?)?,
        digest: stored,
    })
}

fn feed_entry(row: &Row) -> Result<FeedEntry> {
    Ok(FeedEntry {
        id: row.int(0)?,
        kind: Kind::from_code(row.int(1)?)
            .ok_or_else(|| Error::internal("unknown credential_kind in change_feed"))?,
        digest: parse_digest_hex(&row.text(2)?)
            .ok_or_else(|| Error::internal("change_feed key_hash is not hex"))?,
    })
}

impl<D: Driver> ValidationStore for SqlStore<D> {
    fn backend(&self) -> Backend {
        self.driver.backend()
    }

    fn describe(&self) -> String {
        self.driver.describe()
    }

    fn schema_version(&self) -> Result<Option<u32>> {
        self.with_conn(|conn| match super::install::read_version(conn) {
            Err(e) if e.kind() == ErrorKind::SchemaOutdated => Ok(None),
            other => other,
        })
    }

    fn find_credential(&self, kind: Kind, digest: &Digest) -> Result<Option<Credential>> {
        let sql = format!("{} WHERE k.key_hash = ?", credential_select(kind));
        let hex = digest_hex(digest);
        let rows = self.with_conn(|conn| conn.query(&sql, &[hex.as_str().into()]))?;
        rows.first().map(|row| credential(kind, row)).transpose()
    }

    fn find_credentials(&self, kind: Kind, digests: &[Digest]) -> Result<Vec<Credential>> {
        let mut out = Vec::with_capacity(digests.len());
        for chunk in digests.chunks(LOOKUP_SHAPES[LOOKUP_SHAPES.len() - 1]) {
            let (placeholders, params) = padded_list(
                &LOOKUP_SHAPES,
                &chunk.iter().map(digest_hex).collect::<Vec<_>>(),
                |hex| hex.as_str().into(),
            );
            let sql = format!(
                "{} WHERE k.key_hash IN ({placeholders})",
                credential_select(kind)
            );
            // The padding repeats a digest; `IN` still returns its row once.
            let rows = self.with_conn(|conn| conn.query(&sql, &params))?;
            for row in &rows {
                out.push(credential(kind, row)?);
            }
        }
        Ok(out)
    }

    fn feed_head(&self) -> Result<i64> {
        let rows = self.with_conn(|conn| conn.query("SELECT MAX(id) FROM change_feed", &[]))?;
        Ok(rows
            .first()
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }

    fn feed_since(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                "SELECT id, credential_kind, key_hash FROM change_feed WHERE id > ? ORDER BY id LIMIT ?",
                &[after.into(), i64::from(limit).into()],
            )
        })?;
        rows.iter().map(feed_entry).collect()
    }

    fn feed_rows(&self, ids: &[i64]) -> Result<Vec<FeedEntry>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(FEED_ROWS_SHAPES[FEED_ROWS_SHAPES.len() - 1]) {
            let (placeholders, params) = padded_list(&FEED_ROWS_SHAPES, chunk, |&id| id.into());
            let rows = self.with_conn(|conn| {
                conn.query(
                    &format!("SELECT id, credential_kind, key_hash FROM change_feed WHERE id IN ({placeholders})"),
                    &params,
                )
            })?;
            for row in &rows {
                out.push(feed_entry(row)?);
            }
        }
        Ok(out)
    }

    fn write_usage(&self, batch: &[UsageRecord]) -> Result<()> {
        self.record_usage(batch, None)
    }

    fn write_usage_through(&self, batch: &[UsageRecord], queue: &str, last: i64) -> Result<()> {
        self.record_usage(batch, Some((queue, last)))
    }

    fn usage_written_through(&self, queue: &str) -> Result<Option<i64>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                "SELECT position FROM usage_cursor WHERE queue = ?",
                &[queue.into()],
            )
        })?;
        rows.first().map(|r| r.int(0)).transpose()
    }

    fn reserve_rate(
        &self,
        kind: Kind,
        id: i64,
        window: i64,
        limit: i64,
        want: i64,
    ) -> Result<(i64, i64)> {
        self.reserve(kind, id, window, limit, want)
    }

    fn release_rate(&self, kind: Kind, id: i64, window: i64, unused: i64) -> Result<()> {
        self.release(kind, id, window, unused)
    }

    fn legacy_shapes(&self) -> Result<Vec<KeyShape>> {
        self.shapes()
    }
}
