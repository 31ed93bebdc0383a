//! The audit log: rows for events that are not store mutations (logins),
//! the latest rows, and searching by actor, action, target and time.

use super::{audit, check_text, Driver, Row, SqlStore, Value};
use crate::error::Result;
use crate::model::{Actor, AuditEntry};
use crate::store::{AuditQuery, AuditStore};

const AUDIT_COLUMNS: &str =
    "id, created_at, actor, source, ip, action, target_type, target_id, detail";

fn audit_entry(row: &Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.int(0)?,
        at: row.int(1)?,
        actor: row.text(2)?,
        source: row.text(3)?,
        ip: row.opt_text(4)?,
        action: row.text(5)?,
        target_type: row.text(6)?,
        target_id: row.opt_int(7)?,
        detail: row.opt_text(8)?,
    })
}

impl<D: Driver> AuditStore for SqlStore<D> {
    fn record_audit(
        &self,
        actor: &Actor,
        action: &str,
        target_type: &str,
        target_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<()> {
        check_text("audit action", action, 64)?;
        check_text("audit target type", target_type, 32)?;
        self.with_conn(|conn| {
            audit(
                conn,
                actor,
                action,
                target_type,
                target_id,
                detail.map(str::to_owned),
            )
        })
    }

    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(self
            .audit_query(&AuditQuery {
                limit: u64::from(limit),
                ..AuditQuery::default()
            })?
            .0)
    }

    fn audit_query(&self, query: &AuditQuery) -> Result<(Vec<AuditEntry>, u64)> {
        let mut filter = String::from(" WHERE 1 = 1");
        let mut params: Vec<Value> = Vec::new();
        let mut add = |clause: &str, value: Value| {
            filter.push_str(clause);
            params.push(value);
        };
        if let Some(actor) = &query.actor {
            add(" AND actor = ?", actor.as_str().into());
        }
        if let Some(action) = &query.action {
            // `api_key.revoke` exactly, or `api_key.` for every action on keys.
            if action.ends_with('.') {
                let len = i64::try_from(action.chars().count()).unwrap_or(i64::MAX);
                add(
                    &format!(" AND SUBSTR(action, 1, {len}) = ?"),
                    action.as_str().into(),
                );
            } else {
                add(" AND action = ?", action.as_str().into());
            }
        }
        if let Some(target_type) = &query.target_type {
            add(" AND target_type = ?", target_type.as_str().into());
        }
        if let Some(id) = query.target_id {
            add(" AND target_id = ?", id.into());
        }
        if let Some(since) = query.since {
            add(" AND created_at >= ?", since.into());
        }
        if let Some(until) = query.until {
            add(" AND created_at < ?", until.into());
        }
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (rows, total) = self.with_conn(|conn| {
            let total = conn.query(&format!("SELECT COUNT(*) FROM audit_log{filter}"), &params)?;
            let mut page = params.clone();
            page.extend([to_i64(query.limit).into(), to_i64(query.offset).into()]);
            let rows = conn.query(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log{filter} ORDER BY id DESC LIMIT ? OFFSET ?"
                ),
                &page,
            )?;
            Ok((rows, total.first().map(|r| r.int(0)).transpose()?.unwrap_or(0)))
        })?;
        let entries = rows.iter().map(audit_entry).collect::<Result<Vec<_>>>()?;
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }
}
