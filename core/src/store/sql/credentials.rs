//! API keys and AI tokens: insertion (digest only), listing, and the
//! changes that go through the change feed (revocation, expiry).

use super::{
    audit, check_text, credential_info_from_row, feed, feed_credential, fetch_client,
    fetch_credential, Driver, SqlStore, Value, CREDENTIAL_COLUMNS,
};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{digest_hex, Kind};
use crate::model::{
    check_rate_limit, now_ms, rfc3339, Actor, CredentialInfo, Metadata, NewCredential,
    MAX_LABEL_LEN,
};
use crate::store::CredentialStore;

/// One change to an active credential, applied by
/// [`SqlStore::change_active_credential`].
pub(super) struct CredentialChange {
    /// Why a revoked credential refuses the change (`"is revoked"`).
    pub(super) refused: &'static str,
    /// The `SET` clause, with one placeholder.
    pub(super) set: &'static str,
    pub(super) value: Value,
    /// Change-feed reason.
    pub(super) reason: &'static str,
    /// Audit action, after the table name (`revoke` → `api_key.revoke`).
    pub(super) action: &'static str,
    pub(super) detail: Option<String>,
}

impl<D: Driver> SqlStore<D> {
    /// Locks an active credential, applies `change`, and records it in the
    /// change feed and the audit log, all in one transaction.
    pub(super) fn change_active_credential(
        &self,
        kind: Kind,
        id: i64,
        actor: &Actor,
        change: CredentialChange,
    ) -> Result<CredentialInfo> {
        let lock = self.driver.dialect().for_update();
        let table = kind.table();
        self.transaction(|conn| {
            if !fetch_credential(conn, kind, id, lock)?.active {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{} {id} {}", kind.label(), change.refused),
                ));
            }
            conn.exec(
                &format!("UPDATE {table} SET {} WHERE id = ?", change.set),
                &[change.value.clone(), id.into()],
            )?;
            feed_credential(conn, kind, id, change.reason)?;
            let action = format!("{table}.{}", change.action);
            audit(conn, actor, &action, table, Some(id), change.detail.clone())?;
            fetch_credential(conn, kind, id, "")
        })
    }
}

impl<D: Driver> CredentialStore for SqlStore<D> {
    fn insert_credential(
        &self,
        kind: Kind,
        credential: &NewCredential,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        check_text("label", &credential.name, MAX_LABEL_LEN)?;
        if let Some(limit) = credential.rate_limit {
            check_rate_limit(limit)?;
        }
        let hex = digest_hex(&credential.digest);
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            let client = fetch_client(conn, credential.client_id, lock)?;
            if !client.active {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("client {} is deactivated; it cannot receive new credentials", client.id),
                ));
            }
            let clash = conn.query(&format!("SELECT id FROM {} WHERE key_hash = ?", kind.table()), &[hex.as_str().into()])?;
            if !clash.is_empty() {
                return Err(Error::new(ErrorKind::Conflict, format!("this {} is already stored", kind.label())));
            }
            let id = conn
                .exec(
                    &format!(
                        "INSERT INTO {} (client_id, name, key_hash, key_prefix, scopes, is_active, created_at, expires_at, usage_count, metadata, rate_limit, key_shape) \
                         VALUES (?, ?, ?, ?, ?, 1, ?, ?, 0, ?, ?, 0)",
                        kind.table()
                    ),
                    &[
                        credential.client_id.into(),
                        credential.name.trim().into(),
                        hex.as_str().into(),
                        credential.display_prefix.as_str().into(),
                        credential.scopes.to_stored().into(),
                        now_ms().into(),
                        credential.expires_at.into(),
                        credential.metadata.as_ref().map(Metadata::as_str).into(),
                        credential.rate_limit.into(),
                    ],
                )?
                .last_id;
            // A process may hold a negative cache entry for this digest.
            feed(conn, kind, &hex, "created")?;
            audit(
                conn,
                actor,
                &format!("{}.generate", kind.table()),
                kind.table(),
                Some(id),
                Some(format!("client_id={} name={} scopes={}", credential.client_id, credential.name.trim(), credential.scopes)),
            )?;
            fetch_credential(conn, kind, id, "")
        })
    }

    fn get_credential(&self, kind: Kind, id: i64) -> Result<CredentialInfo> {
        self.with_conn(|conn| fetch_credential(conn, kind, id, ""))
    }

    fn list_credentials(&self, kind: Kind, client_id: i64) -> Result<Vec<CredentialInfo>> {
        let rows = self.with_conn(|conn| {
            fetch_client(conn, client_id, "")?;
            conn.query(
                &format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM {} WHERE client_id = ? ORDER BY id",
                    kind.table()
                ),
                &[client_id.into()],
            )
        })?;
        rows.iter()
            .map(|r| credential_info_from_row(kind, r))
            .collect()
    }

    fn revoke_credential(&self, kind: Kind, id: i64, actor: &Actor) -> Result<CredentialInfo> {
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is already revoked",
                set: "is_active = 0, revoked_at = ?",
                value: now_ms().into(),
                reason: "revoked",
                action: "revoke",
                detail: None,
            },
        )
    }

    fn set_credential_expiry(
        &self,
        kind: Kind,
        id: i64,
        expires_at: Option<i64>,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is revoked",
                set: "expires_at = ?",
                value: expires_at.into(),
                reason: "expiry_changed",
                action: "set_expiry",
                detail: Some(expires_at.map_or_else(
                    || "expires_at=never".to_owned(),
                    |e| format!("expires_at={}", rfc3339(e)),
                )),
            },
        )
    }

    fn set_credential_rate_limit(
        &self,
        kind: Kind,
        id: i64,
        rate_limit: Option<i64>,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        if let Some(limit) = rate_limit {
            check_rate_limit(limit)?;
        }
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is revoked",
                set: "rate_limit = ?",
                value: rate_limit.into(),
                reason: "rate_limit_changed",
                action: "set_rate_limit",
                detail: Some(rate_limit.map_or_else(
                    || "rate_limit=none".to_owned(),
                    |n| format!("rate_limit={n}"),
                )),
            },
        )
    }

    fn set_credential_metadata(
        &self,
        kind: Kind,
        id: i64,
        metadata: Option<&Metadata>,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is revoked",
                set: "metadata = ?",
                value: metadata.map(Metadata::as_str).into(),
                reason: "metadata_changed",
                action: "set_metadata",
                // The document may be up to 4 KiB and is the caller's: the
                // audit row says that it changed, not what it says.
                detail: Some(metadata.map_or_else(
                    || "metadata=none".to_owned(),
                    |m| format!("metadata_bytes={}", m.as_str().len()),
                )),
            },
        )
    }
}
