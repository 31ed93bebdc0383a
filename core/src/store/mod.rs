//! Persistent storage: the store traits, DSN parsing and the two back ends
//! (SQLite, embedded default; MySQL/MariaDB, production).
//!
//! The traits are split by who needs them: a validator holds only a
//! [`ValidationStore`] (lookup, feed, usage writes); management interfaces
//! use a [`KeyStore`], which is every trait together plus `install`. Both
//! back ends share one implementation of every query (`sql`, one file per
//! concern); they differ only in how a statement reaches the database and in
//! DDL (`schema`).
//!
//! Methods block; call them from ordinary threads (inside an async runtime
//! use `spawn_blocking`). Every mutation that can change a validation
//! outcome appends to the change feed in the same transaction, and every
//! management mutation writes an audit row in that transaction too.

use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::format::{Digest, KeyShape, Kind};
use crate::import::{HeratioSource, ImportPlan, ImportReport};
use crate::model::{
    Actor, AdminAccount, AdminCredentials, AdminRole, AllowedIps, AuditEntry, Client, ClientUpdate,
    Credential, CredentialInfo, Deactivation, FeedEntry, InstallReport, Maintenance, Metadata,
    NewClient, NewCredential, Pruned, RejectedUsage, Replacement, Retention, UsageRecord,
    UsageStats,
};

pub mod diagnostics;
mod dsn;
mod mysql;
mod queries;
mod schema;
mod sql;
mod sqlite;

pub use dsn::{redact, Backend, Dsn};
pub use queries::{AuditQuery, StatsQuery, UsageEntry, UsageQuery};
pub use schema::SCHEMA_VERSION;

/// Opens the store a DSN names. Connections are made lazily and nothing is
/// created: a SQLite file that does not exist stays absent until
/// [`KeyStore::install`] creates it (every other call reports
/// [`ErrorKind::SchemaOutdated`](crate::ErrorKind::SchemaOutdated)).
///
/// # Errors
///
/// [`ErrorKind::InvalidDsn`](crate::ErrorKind::InvalidDsn) for a bad DSN,
/// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when the MySQL
/// I/O thread cannot start.
pub fn open(dsn: &Dsn) -> Result<Arc<dyn KeyStore>> {
    open_with(dsn, &Connections::default())
}

/// How many server connections one process may hold, and for how long an
/// idle one is kept (MySQL/MariaDB; SQLite keeps a few file handles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Most connections at once (default 16).
    pub max: usize,
    /// An idle connection is closed after this long (default 60 s).
    pub idle: std::time::Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            max: 16,
            idle: std::time::Duration::from_secs(60),
        }
    }
}

/// As [`open`], with a connection budget (validators in many worker
/// processes want few connections each, closed soon when idle).
///
/// # Errors
///
/// As [`open`].
pub fn open_with(dsn: &Dsn, connections: &Connections) -> Result<Arc<dyn KeyStore>> {
    Ok(match dsn {
        Dsn::Sqlite { path } => Arc::new(sql::SqlStore::new(sqlite::SqliteDriver::open(path)?)),
        Dsn::Mysql { url } => Arc::new(sql::SqlStore::new(mysql::MysqlDriver::open(
            url,
            connections,
        )?)),
    })
}

/// What a validator needs: the hot path's lookup, the change feed, and
/// usage writes.
pub trait ValidationStore: Send + Sync + fmt::Debug {
    /// Which engine this is.
    fn backend(&self) -> Backend;

    /// Where it points, password masked.
    fn describe(&self) -> String;

    /// The installed schema version, `None` on an empty database.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) or
    /// [`ErrorKind::Store`](crate::ErrorKind::Store).
    fn schema_version(&self) -> Result<Option<u32>>;

    /// The hot path's one indexed query: the credential with this digest,
    /// with its client's status.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable),
    /// [`ErrorKind::Store`](crate::ErrorKind::Store),
    /// [`ErrorKind::SchemaOutdated`](crate::ErrorKind::SchemaOutdated).
    fn find_credential(&self, kind: Kind, digest: &Digest) -> Result<Option<Credential>>;

    /// The credentials of `kind` among `digests` (the host leader answers
    /// the misses other processes forward in one query each; absent ones
    /// are simply not returned).
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`].
    fn find_credentials(&self, kind: Kind, digests: &[Digest]) -> Result<Vec<Credential>> {
        let mut found = Vec::new();
        for digest in digests {
            found.extend(self.find_credential(kind, digest)?);
        }
        Ok(found)
    }

    /// Highest change-feed id (0 when empty).
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`].
    fn feed_head(&self) -> Result<i64>;

    /// Change-feed rows with `id > after`, ascending, at most `limit`.
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`].
    fn feed_since(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>>;

    /// The change-feed rows with these ids that exist (committed) now, in
    /// any order: the poller re-reads ids it saw skipped, which belong to
    /// transactions that may still commit.
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`].
    fn feed_rows(&self, ids: &[i64]) -> Result<Vec<FeedEntry>>;

    /// Writes usage rows in one transaction and bumps `usage_count` and
    /// `last_used_at` of each credential accepted in the batch.
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`]; nothing is written on error.
    fn write_usage(&self, batch: &[UsageRecord]) -> Result<()>;

    /// As [`ValidationStore::write_usage`], and records in the same
    /// transaction that the host queue `queue` has been written up to
    /// position `last` (so a later writer never writes those records again).
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::write_usage`].
    fn write_usage_through(&self, batch: &[UsageRecord], queue: &str, last: i64) -> Result<()>;

    /// The position up to which the host queue `queue` has been written.
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`].
    fn usage_written_through(&self, queue: &str) -> Result<Option<i64>>;

    /// Reserves up to `want` requests of a credential's budget for the
    /// clock hour starting at `window` (ms), never taking the shared count
    /// past `limit`. Returns how many were granted and the count after.
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`]; nothing is reserved on
    /// error.
    fn reserve_rate(
        &self,
        kind: Kind,
        id: i64,
        window: i64,
        limit: i64,
        want: i64,
    ) -> Result<(i64, i64)>;

    /// Returns `unused` reserved requests of the hour at `window`.
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`].
    fn release_rate(&self, kind: Kind, id: i64, window: i64, unused: i64) -> Result<()>;

    /// The legacy key shapes (Heratio's) that stored API keys have. A
    /// presented key of such a shape is looked up by digest; one of a shape
    /// no stored key has is `malformed` without a query.
    ///
    /// # Errors
    ///
    /// As [`ValidationStore::find_credential`].
    fn legacy_shapes(&self) -> Result<Vec<KeyShape>>;
}

/// Clients: the organisations and services holding credentials.
pub trait ClientStore {
    /// Creates a client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty or over-long name or e-mail; store errors.
    fn create_client(&self, client: &NewClient, actor: &Actor) -> Result<Client>;

    /// One client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); store errors.
    fn get_client(&self, id: i64) -> Result<Client>;

    /// All clients, by id.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn list_clients(&self) -> Result<Vec<Client>>;

    /// Deactivates a client and revokes all its keys and tokens, in one
    /// transaction with their change-feed rows. Deactivating an inactive
    /// client revokes whatever is still active and reports it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); store errors.
    fn deactivate_client(&self, id: i64, actor: &Actor) -> Result<Deactivation>;
}

/// API keys and AI tokens (their digests, never their plaintext).
pub trait CredentialStore {
    /// Stores a credential generated elsewhere (only its digest).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown
    /// client, [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) for an
    /// inactive client or a digest already stored,
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty or over-long label.
    fn insert_credential(
        &self,
        kind: Kind,
        credential: &NewCredential,
        actor: &Actor,
    ) -> Result<CredentialInfo>;

    /// One credential.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); store errors.
    fn get_credential(&self, kind: Kind, id: i64) -> Result<CredentialInfo>;

    /// Credentials of a client, by id.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown
    /// client; store errors.
    fn list_credentials(&self, kind: Kind, client_id: i64) -> Result<Vec<CredentialInfo>>;

    /// Revokes a credential.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if already revoked.
    fn revoke_credential(&self, kind: Kind, id: i64, actor: &Actor) -> Result<CredentialInfo>;

    /// Changes (or clears) a credential's expiry.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if revoked.
    fn set_credential_expiry(
        &self,
        kind: Kind,
        id: i64,
        expires_at: Option<i64>,
        actor: &Actor,
    ) -> Result<CredentialInfo>;

    /// Sets (or clears: unlimited) a credential's hourly rate limit; through
    /// the change feed, since it changes what validations answer.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// limit outside [`check_rate_limit`](crate::model::check_rate_limit);
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if revoked.
    fn set_credential_rate_limit(
        &self,
        kind: Kind,
        id: i64,
        rate_limit: Option<i64>,
        actor: &Actor,
    ) -> Result<CredentialInfo>;

    /// Replaces (or clears) a credential's metadata; through the change
    /// feed, so every cache returns the new document.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if revoked.
    fn set_credential_metadata(
        &self,
        kind: Kind,
        id: i64,
        metadata: Option<&Metadata>,
        actor: &Actor,
    ) -> Result<CredentialInfo>;
}

/// Reading usage back: statistics and the raw log.
pub trait ReportStore {
    /// Totals, per-day counts and top credentials.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown
    /// client; store errors.
    fn usage_stats(&self, query: &StatsQuery) -> Result<UsageStats>;

    /// Usage-log rows, newest recorded first (by id: a record written late
    /// stands where it was written), and the number matching in all.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn usage_log(&self, query: &UsageQuery) -> Result<(Vec<UsageEntry>, u64)>;

    /// Validations that matched no credential, as per-minute counts, newest
    /// first, and the number of validations matching in all (the sum of the
    /// counts). The query's kind, status, IP (by its bucket) and time
    /// window apply; a client or credential filter matches nothing.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn rejected_usage(&self, query: &UsageQuery) -> Result<(Vec<RejectedUsage>, u64)>;

    /// Every usage-log row matching `query` (its offset and limit aside),
    /// oldest first, handed to `sink` one at a time: memory stays one page
    /// whatever the range. Returns how many rows were handed over; a `sink`
    /// error stops the export and is returned.
    ///
    /// # Errors
    ///
    /// Store errors, or the sink's.
    fn export_usage(
        &self,
        query: &UsageQuery,
        sink: &mut dyn FnMut(UsageEntry) -> Result<()>,
    ) -> Result<u64>;

    /// Deletes what `retention` says is no longer kept, in small batches
    /// that each commit on their own. Statistics are unaffected (they read
    /// the daily rollups).
    ///
    /// # Errors
    ///
    /// Store errors (batches already deleted stay deleted).
    fn prune(&self, retention: &Retention) -> Result<Pruned>;
}

/// The audit log.
pub trait AuditStore {
    /// Writes one audit row for an action that is not itself a store
    /// mutation (an administrator's login or logout). `detail` must never
    /// contain a secret.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn record_audit(
        &self,
        actor: &Actor,
        action: &str,
        target_type: &str,
        target_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<()>;

    /// Audit-log rows, newest first.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>>;

    /// Audit-log rows matching `query`, newest first, and how many match in
    /// all.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn audit_query(&self, query: &AuditQuery) -> Result<(Vec<AuditEntry>, u64)>;
}

/// Administrator accounts of the web interface. Password hashing is the
/// caller's; the store keeps the hash string as given.
pub trait AdminStore {
    /// How many accounts exist.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn admin_count(&self) -> Result<u64>;

    /// The account with this user name and its password hash, for a login
    /// check.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn find_admin(&self, username: &str) -> Result<Option<AdminCredentials>>;

    /// The account with this id (sessions re-check it on every request, so
    /// a password reset or any account change made elsewhere, the CLI
    /// included, ends them: compare `updated_at`).
    ///
    /// # Errors
    ///
    /// Store errors.
    fn get_admin(&self, id: i64) -> Result<Option<AdminAccount>>;

    /// Creates an account with `role` (audited as `admin.create`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a bad
    /// user name, [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if it
    /// exists; store errors.
    fn create_admin(
        &self,
        username: &str,
        password_hash: &str,
        role: AdminRole,
        actor: &Actor,
    ) -> Result<AdminAccount>;

    /// Every account, by user name.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn list_admins(&self) -> Result<Vec<AdminAccount>>;

    /// Changes an account's role (audited as `admin.role`); its sessions
    /// end.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) when it would
    /// leave no active admin.
    fn set_admin_role(
        &self,
        username: &str,
        role: AdminRole,
        actor: &Actor,
    ) -> Result<AdminAccount>;

    /// Enables or disables an account (audited as `admin.enable` /
    /// `admin.disable`); a disabled account cannot log in and its sessions
    /// end.
    ///
    /// # Errors
    ///
    /// As [`AdminStore::set_admin_role`].
    fn set_admin_active(&self, username: &str, active: bool, actor: &Actor)
        -> Result<AdminAccount>;

    /// Replaces an account's password hash (audited as
    /// `admin.reset_password`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); store errors.
    fn set_admin_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &Actor,
    ) -> Result<AdminAccount>;

    /// Records a successful login.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn record_admin_login(&self, id: i64) -> Result<()>;
}

/// A credential's life after issue, and clients' policies.
pub trait LifecycleStore {
    /// Replaces a credential: stores the new one (same client, label,
    /// scopes, rate limit, allowlist and metadata, no expiry, linked to the
    /// old one) and makes the old one expire at `now + grace_ms`, or at its
    /// own earlier expiry. Both go through the change feed in one
    /// transaction. Returns (new, old).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if it is revoked
    /// or its client deactivated;
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// negative grace.
    fn rotate_credential(
        &self,
        kind: Kind,
        id: i64,
        replacement: &Replacement,
        grace_ms: i64,
        actor: &Actor,
    ) -> Result<(CredentialInfo, CredentialInfo)>;

    /// Sets (or clears: usable from anywhere) a credential's IP allowlist.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if revoked.
    fn set_credential_allowed_ips(
        &self,
        kind: Kind,
        id: i64,
        allowed: Option<&AllowedIps>,
        actor: &Actor,
    ) -> Result<CredentialInfo>;

    /// Changes a credential's label.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty or over-long label; as
    /// [`LifecycleStore::set_credential_allowed_ips`].
    fn rename_credential(
        &self,
        kind: Kind,
        id: i64,
        name: &str,
        actor: &Actor,
    ) -> Result<CredentialInfo>;

    /// Changes a client's name, e-mail, organisation or idle-revoke policy.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
    fn update_client(&self, id: i64, update: &ClientUpdate, actor: &Actor) -> Result<Client>;

    /// Reactivates a deactivated client. Its keys and tokens stay revoked.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound);
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if it is active.
    fn reactivate_client(&self, id: i64, actor: &Actor) -> Result<Client>;

    /// The maintenance pass as of `now` (ms): revokes (when `apply`) keys
    /// and tokens unused longer than their client's idle-revoke period —
    /// "unused" counting from the last accepted use, or from creation if
    /// never used — and lists those due within 7 days and those expiring
    /// within 7 days. Idempotent.
    ///
    /// # Errors
    ///
    /// Store errors (nothing is revoked then).
    fn maintain(&self, now: i64, apply: bool, actor: &Actor) -> Result<Maintenance>;
}

/// The whole store: everything a management interface (CLI, web) uses.
pub trait KeyStore:
    ValidationStore
    + ClientStore
    + CredentialStore
    + LifecycleStore
    + ReportStore
    + AuditStore
    + AdminStore
    + diagnostics::DiagnosticStore
{
    /// Creates or migrates the schema; idempotent. The one call that may
    /// create a SQLite file (mode 0600).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) or
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) from the database;
    /// [`ErrorKind::SchemaTooNew`](crate::ErrorKind::SchemaTooNew) if a newer
    /// version installed it.
    fn install(&self) -> Result<InstallReport>;

    /// Reads this database as the source of a Heratio import: every row of
    /// AtoM Heratio's `ahg_api_key`, by id, and its `user` table if it has
    /// one. Reads only; the database need not hold our schema.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when there is no
    /// `ahg_api_key` table; store errors.
    fn read_heratio_source(&self) -> Result<HeratioSource>;

    /// Applies an import plan (see [`crate::import`]) in one transaction:
    /// creates the clients it needs, stores new keys, updates changed ones,
    /// each with its change-feed and audit rows, plus one `import.heratio`
    /// audit row. With `dry_run`, reads only and reports what it would do.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) or
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) for a target
    /// client that does not exist or is deactivated; store errors. Nothing
    /// is written on error.
    fn apply_heratio_import(
        &self,
        plan: &ImportPlan,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<ImportReport>;
}
