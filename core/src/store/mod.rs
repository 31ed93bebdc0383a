//! Persistent storage: the [`KeyStore`] trait, DSN parsing and the two back
//! ends (SQLite, embedded default; MySQL/MariaDB, production).
//!
//! Both back ends share one implementation of every query ([`sql`]); they
//! differ only in how a statement reaches the database and in DDL.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{Digest, Kind};
use crate::model::Credential;
use crate::model::{
    Actor, AuditEntry, Client, CredentialInfo, Deactivation, FeedEntry, InstallReport, NewClient,
    NewCredential, UsageRecord, UsageStats,
};

mod mysql;
mod schema;
mod sql;
mod sqlite;

pub use schema::SCHEMA_VERSION;

/// Which database engine a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite through rusqlite (bundled).
    Sqlite,
    /// MySQL 8 / MariaDB 10.11 through mysql_async.
    Mysql,
}

/// A parsed data source name.
///
/// `sqlite:PATH` (relative or absolute) or `mysql://user:pass@host:port/db`.
/// `Display` and `Debug` mask the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Dsn {
    /// A SQLite database file.
    Sqlite {
        /// File path.
        path: std::path::PathBuf,
    },
    /// A MySQL/MariaDB server.
    Mysql {
        /// The URL as given (contains the password: never print it).
        url: String,
    },
}

impl Dsn {
    /// Parses a DSN.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidDsn`] for an empty path, an unknown scheme or a
    /// MySQL URL without host or database; the message masks the password.
    pub fn parse(text: &str) -> Result<Dsn> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                return Err(Error::new(
                    ErrorKind::InvalidDsn,
                    "sqlite DSN needs a file path, e.g. sqlite:/var/lib/heratio/keys.db (in-memory databases cannot be shared between connections)",
                ));
            }
            return Ok(Dsn::Sqlite { path: path.into() });
        }
        if text.starts_with("mysql://") || text.starts_with("mariadb://") {
            let url = text.replacen("mariadb://", "mysql://", 1);
            mysql::validate_url(&url)?;
            return Ok(Dsn::Mysql { url });
        }
        Err(Error::new(
            ErrorKind::InvalidDsn,
            format!(
                "unsupported DSN {:?}: expected sqlite:PATH or mysql://user:pass@host:port/db",
                redact(text)
            ),
        ))
    }

    /// The back end this DSN selects.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self {
            Dsn::Sqlite { .. } => Backend::Sqlite,
            Dsn::Mysql { .. } => Backend::Mysql,
        }
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dsn::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            Dsn::Mysql { url } => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

/// Replaces the password of a URL-style DSN with `***`.
#[must_use]
pub fn redact(dsn: &str) -> String {
    let Some(scheme_end) = dsn.find("://") else {
        return dsn.to_owned();
    };
    let rest = &dsn[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return dsn.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &dsn[..scheme_end + 3],
            &rest[..colon],
            &rest[at..]
        ),
        None => dsn.to_owned(),
    }
}

/// Opens the store a DSN names. Connections are made lazily; nothing is
/// created: call [`KeyStore::install`] for that.
///
/// # Errors
///
/// [`ErrorKind::InvalidDsn`] for a bad DSN, [`ErrorKind::Unavailable`] when a
/// SQLite file cannot be opened.
pub fn open(dsn: &Dsn) -> Result<Arc<dyn KeyStore>> {
    Ok(match dsn {
        Dsn::Sqlite { path } => Arc::new(sql::SqlStore::new(sqlite::SqliteDriver::open(path)?)),
        Dsn::Mysql { url } => Arc::new(sql::SqlStore::new(mysql::MysqlDriver::open(url)?)),
    })
}

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

/// The store of clients, credentials, usage, change feed and audit log.
///
/// Methods block; call them from ordinary threads (inside an async runtime
/// use `spawn_blocking`). Every mutation that can change a validation outcome
/// appends to the change feed in the same transaction, and every management
/// mutation writes an audit row in that transaction too.
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// Which engine this is.
    fn backend(&self) -> Backend;

    /// Where it points, password masked.
    fn describe(&self) -> String;

    /// Creates or migrates the schema; idempotent.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] or [`ErrorKind::Store`] from the database;
    /// [`ErrorKind::SchemaTooNew`] if a newer version installed it.
    fn install(&self) -> Result<InstallReport>;

    /// The installed schema version, `None` on an empty database.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] or [`ErrorKind::Store`].
    fn schema_version(&self) -> Result<Option<u32>>;

    /// The hot path's one indexed query: the credential with this digest,
    /// with its client's status.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`], [`ErrorKind::Store`],
    /// [`ErrorKind::SchemaOutdated`].
    fn find_credential(&self, kind: Kind, digest: &Digest) -> Result<Option<Credential>>;

    /// Highest change-feed id (0 when empty).
    ///
    /// # Errors
    ///
    /// As [`KeyStore::find_credential`].
    fn feed_head(&self) -> Result<i64>;

    /// Change-feed rows with `id > after`, ascending, at most `limit`.
    ///
    /// # Errors
    ///
    /// As [`KeyStore::find_credential`].
    fn feed_since(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>>;

    /// Writes usage rows in one transaction and bumps `usage_count` and
    /// `last_used_at` of each credential accepted in the batch.
    ///
    /// # Errors
    ///
    /// As [`KeyStore::find_credential`]; nothing is written on error.
    fn write_usage(&self, batch: &[UsageRecord]) -> Result<()>;

    /// Creates a client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an empty or over-long name or e-mail;
    /// store errors.
    fn create_client(&self, client: &NewClient, actor: &Actor) -> Result<Client>;

    /// One client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`]; store errors.
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
    /// [`ErrorKind::NotFound`]; store errors.
    fn deactivate_client(&self, id: i64, actor: &Actor) -> Result<Deactivation>;

    /// Stores a credential generated elsewhere (only its digest).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for an unknown client,
    /// [`ErrorKind::Conflict`] for an inactive client or a digest already
    /// stored, [`ErrorKind::InvalidInput`] for an empty or over-long label.
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
    /// [`ErrorKind::NotFound`]; store errors.
    fn get_credential(&self, kind: Kind, id: i64) -> Result<CredentialInfo>;

    /// Credentials of a client, by id.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for an unknown client; store errors.
    fn list_credentials(&self, kind: Kind, client_id: i64) -> Result<Vec<CredentialInfo>>;

    /// Revokes a credential.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Conflict`] if already revoked.
    fn revoke_credential(&self, kind: Kind, id: i64, actor: &Actor) -> Result<CredentialInfo>;

    /// Changes (or clears) a credential's expiry.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Conflict`] if revoked.
    fn set_credential_expiry(
        &self,
        kind: Kind,
        id: i64,
        expires_at: Option<i64>,
        actor: &Actor,
    ) -> Result<CredentialInfo>;

    /// Totals, per-day counts and top credentials.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for an unknown client; store errors.
    fn usage_stats(&self, query: &StatsQuery) -> Result<UsageStats>;

    /// Usage-log rows, newest first, and the number matching in all.
    ///
    /// # Errors
    ///
    /// Store errors.
    fn usage_log(&self, query: &UsageQuery) -> Result<(Vec<UsageEntry>, u64)>;

    /// Writes one audit row for an action that is not itself a store
    /// mutation (an administrator's login or logout, an account change).
    /// `detail` must never contain a secret.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_masks_only_the_password() {
        assert_eq!(
            redact("mysql://hk:s3cret@db:3306/keys"),
            "mysql://hk:***@db:3306/keys"
        );
        assert_eq!(redact("mysql://hk@db/keys"), "mysql://hk@db/keys");
        assert_eq!(redact("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
        let err = Dsn::parse("postgres://u:s3cret@h/d").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidDsn);
        assert!(!err.message().contains("s3cret"));
        assert!(Dsn::parse("sqlite:").is_err());
        let dsn = Dsn::parse("mysql://hk:s3cret@127.0.0.1:3306/keys").unwrap();
        assert!(!format!("{dsn} {dsn:?}").contains("s3cret"));
    }
}
