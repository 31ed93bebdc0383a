//! Serialisable views of what the library answers, shaped once for every
//! binding that prints or returns them: the CLI's `--json`, the web verify
//! endpoint, the PHP `Result`. Fields may be added, never renamed or
//! removed. Times are RFC 3339 UTC strings; nothing here ever holds a key,
//! a digest or a password.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{rfc3339, CredentialInfo, Metadata};
use crate::validator::Validation;

/// A validation answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationView {
    /// Whether the credential was accepted.
    pub valid: bool,
    /// The status name (`valid`, `forbidden`, …).
    pub status: &'static str,
    /// The status number (C ABI, `usage_log.status`).
    pub code: u8,
    /// The HTTP status to answer with.
    pub http_status: u16,
    /// The message for the HTTP client.
    pub message: String,
    /// The kind that was asked for (`api` or `ai`).
    pub kind: &'static str,
    /// The matched credential's id.
    pub key_id: Option<i64>,
    /// Its client.
    pub client_id: Option<i64>,
    /// Its label.
    pub name: Option<String>,
    /// Its scopes (empty when none was matched).
    pub scopes: Vec<String>,
    /// Its expiry.
    pub expires_at: Option<String>,
    /// The first required scope it lacks (status `forbidden` only).
    pub missing_scope: Option<String>,
    /// Its metadata object.
    pub metadata: Option<Map<String, Value>>,
    /// Its hourly rate limit (`null`: unlimited).
    pub rate_limit: Option<i64>,
    /// Requests left this hour, for a rate-limited credential.
    pub rate_remaining: Option<i64>,
    /// Seconds until the budget renews, when `rate_limited`.
    pub retry_after: Option<i64>,
}

impl From<&Validation> for ValidationView {
    fn from(v: &Validation) -> Self {
        let c = v.credential.as_deref();
        ValidationView {
            valid: v.is_valid(),
            status: v.status.name(),
            code: v.status.code(),
            http_status: v.status.http_status(),
            message: v.message(),
            kind: v.kind().short_name(),
            key_id: c.map(|c| c.id),
            client_id: c.map(|c| c.client_id),
            name: c.map(|c| c.name.clone()),
            scopes: c.map_or_else(Vec::new, |c| c.scopes.as_slice().to_vec()),
            expires_at: c.and_then(|c| c.expires_at).map(rfc3339),
            missing_scope: v.missing_scope.clone(),
            metadata: c.and_then(|c| c.metadata.as_ref()).map(Metadata::to_object),
            rate_limit: c.and_then(|c| c.rate_limit),
            rate_remaining: v.rate_remaining(),
            retry_after: v.retry_after(),
        }
    }
}

/// A stored credential as listed to administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialView {
    /// Its id.
    pub id: i64,
    /// Its client.
    pub client_id: i64,
    /// `api` or `ai`.
    pub kind: &'static str,
    /// The display prefix (first 12 characters).
    pub prefix: String,
    /// Its label.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// `active`, `revoked` or `expired` at the time of the view.
    pub status: &'static str,
    /// Creation time.
    pub created_at: String,
    /// Expiry.
    pub expires_at: Option<String>,
    /// Revocation time.
    pub revoked_at: Option<String>,
    /// Last accepted use.
    pub last_used_at: Option<String>,
    /// Accepted uses.
    pub usage_count: i64,
    /// Its metadata object.
    pub metadata: Option<Map<String, Value>>,
    /// Its hourly rate limit (`null`: unlimited).
    pub rate_limit: Option<i64>,
    /// `native`, or the Heratio shape it was imported with (`heratio`,
    /// `research`).
    pub shape: &'static str,
    /// The networks it may be used from (`null`: anywhere).
    pub allowed_ips: Option<Vec<String>>,
    /// The credential it replaced, if a rotation made it.
    pub rotated_from: Option<i64>,
    /// Active and expiring within 7 days.
    pub expires_soon: bool,
}

impl CredentialView {
    /// The view of `c` as of `now` (ms).
    #[must_use]
    pub fn new(c: &CredentialInfo, now: i64) -> Self {
        CredentialView {
            id: c.id,
            client_id: c.client_id,
            kind: c.kind.short_name(),
            prefix: c.display_prefix.clone(),
            name: c.name.clone(),
            scopes: c.scopes.as_slice().to_vec(),
            status: c.state(now).as_str(),
            created_at: rfc3339(c.created_at),
            expires_at: c.expires_at.map(rfc3339),
            revoked_at: c.revoked_at.map(rfc3339),
            last_used_at: c.last_used_at.map(rfc3339),
            usage_count: c.usage_count,
            metadata: c.metadata.as_ref().map(Metadata::to_object),
            rate_limit: c.rate_limit,
            shape: c.key_shape.name(),
            allowed_ips: c
                .allowed_ips
                .as_ref()
                .map(|a| a.networks().iter().map(ToString::to_string).collect()),
            rotated_from: c.rotated_from,
            expires_soon: c.expires_soon(now),
        }
    }
}
