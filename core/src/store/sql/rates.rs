//! The shared hourly budgets of rate-limited credentials (`rate_counter`)
//! and the legacy key shapes a validator must look up.

use super::{Driver, SqlStore};
use crate::error::{Error, Result};
use crate::format::{KeyShape, Kind};

impl<D: Driver> SqlStore<D> {
    pub(super) fn reserve(
        &self,
        kind: Kind,
        id: i64,
        window: i64,
        limit: i64,
        want: i64,
    ) -> Result<(i64, i64)> {
        let dialect = self.driver.dialect();
        let key = [i64::from(kind.code()).into(), id.into(), window.into()];
        self.transaction(|conn| {
            // The row is created *and locked exclusively* by one statement:
            // `INSERT IGNORE` would take a shared lock that the `FOR UPDATE`
            // below then upgrades, and two reservations upgrading at once
            // deadlock (seen on MariaDB with four workers on one key).
            conn.exec(
                &format!(
                    "INSERT INTO rate_counter (credential_kind, credential_id, window_start, count) VALUES (?, ?, ?, 0) {}",
                    dialect.keep_on_conflict(&["credential_kind", "credential_id", "window_start"], "count")
                ),
                &key,
            )?;
            let count = conn
                .query(
                    &format!(
                        "SELECT count FROM rate_counter WHERE credential_kind = ? AND credential_id = ? AND window_start = ?{}",
                        dialect.for_update()
                    ),
                    &key,
                )?
                .first()
                .map(|r| r.int(0))
                .transpose()?
                .ok_or_else(|| Error::internal("rate_counter row vanished"))?;
            let granted = want.min(limit - count).max(0);
            if granted > 0 {
                let mut params = vec![granted.into()];
                params.extend(key.iter().cloned());
                conn.exec(
                    "UPDATE rate_counter SET count = count + ? WHERE credential_kind = ? AND credential_id = ? AND window_start = ?",
                    &params,
                )?;
            }
            Ok((granted, count + granted))
        })
    }

    pub(super) fn release(&self, kind: Kind, id: i64, window: i64, unused: i64) -> Result<()> {
        let greatest = self.driver.dialect().greatest("count - ?", "0");
        self.with_conn(|conn| {
            conn.exec(
                &format!(
                    "UPDATE rate_counter SET count = {greatest} WHERE credential_kind = ? AND credential_id = ? AND window_start = ?"
                ),
                &[
                    unused.into(),
                    i64::from(kind.code()).into(),
                    id.into(),
                    window.into(),
                ],
            )
            .map(|_| ())
        })
    }

    pub(super) fn shapes(&self) -> Result<Vec<KeyShape>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                "SELECT DISTINCT key_shape FROM api_key WHERE key_shape <> 0",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                KeyShape::from_code(r.int(0)?).ok_or_else(|| Error::internal("unknown key_shape"))
            })
            .collect()
    }
}
