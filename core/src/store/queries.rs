//! Filters and windows for reading usage and statistics back.

use crate::format::Kind;
use crate::model::UsageRecord;

/// Options for usage statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    /// Narrow to one client.
    pub client_id: Option<i64>,
    /// End of the window (ms), normally now.
    pub now: i64,
    /// Days in the per-day window (30 by default).
    pub days: u32,
    /// How many top credentials to return.
    pub top: u32,
}

impl StatsQuery {
    /// The last 30 days up to now, top 10, all clients.
    #[must_use]
    pub fn last_30_days() -> Self {
        StatsQuery {
            client_id: None,
            now: crate::model::now_ms(),
            days: 30,
            top: 10,
        }
    }
}

/// Filter for reading the usage log back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only this client.
    pub client_id: Option<i64>,
    /// Only this kind of credential.
    pub kind: Option<Kind>,
    /// Only this credential (kind and id).
    pub credential: Option<(Kind, i64)>,
    /// Only this outcome.
    pub status: Option<crate::Status>,
    /// Only this IP.
    pub ip: Option<String>,
    /// From this time (ms, inclusive).
    pub since: Option<i64>,
    /// Until this time (ms, exclusive).
    pub until: Option<i64>,
    /// Rows to skip (newest first).
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u64,
}

/// A usage-log row read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEntry {
    /// Row id.
    pub id: i64,
    /// The record.
    pub record: UsageRecord,
}

/// Filter for searching the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this actor (admin or OS user name, `maintenance`).
    pub actor: Option<String>,
    /// Only this action (`api_key.revoke`), or, ending in `.`, every action
    /// with that prefix (`api_key.`).
    pub action: Option<String>,
    /// Only this target type (`api_key`, `client`, `admin_user`).
    pub target_type: Option<String>,
    /// Only this target id.
    pub target_id: Option<i64>,
    /// From this time (ms, inclusive).
    pub since: Option<i64>,
    /// Until this time (ms, exclusive).
    pub until: Option<i64>,
    /// Rows to skip (newest first).
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u64,
}
