//! Plain data exchanged with the store: actors, clients, credentials,
//! usage rows and statistics (administration records: `admin.rs`).

use crate::format::{Digest, KeyShape, Kind};
use crate::status::Status;

use super::{AllowedIps, Metadata, Scopes};

/// Where a management action came from, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The `keygen` command line (actor: the OS user).
    Cli,
    /// The web administration interface (actor: the admin, with IP).
    Web,
    /// A program using the library directly.
    Library,
}

impl Source {
    /// Stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Web => "web",
            Source::Library => "library",
        }
    }
}

/// Who performed a management action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// OS user, admin user name or program name.
    pub name: String,
    /// Which interface was used.
    pub source: Source,
    /// Remote address, for the web interface.
    pub ip: Option<String>,
}

impl Actor {
    /// An actor with no IP.
    #[must_use]
    pub fn new(name: impl Into<String>, source: Source) -> Self {
        Actor {
            name: name.into(),
            source,
            ip: None,
        }
    }
}

/// Fields of a new client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    /// Display name (required, at most 255 characters).
    pub name: String,
    /// Contact e-mail (required, at most 255 characters).
    pub email: String,
    /// Organisation, optional.
    pub organization: Option<String>,
}

/// A client: an organisation or service holding credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Contact e-mail.
    pub email: String,
    /// Organisation.
    pub organization: Option<String>,
    /// False once deactivated.
    pub active: bool,
    /// Creation time (ms).
    pub created_at: i64,
    /// Deactivation time (ms).
    pub deactivated_at: Option<i64>,
    /// Where the client came from, when imported (`heratio:user:42`).
    pub external_id: Option<String>,
    /// Keys and tokens unused this long (ms) are revoked by `keygen
    /// maintain`; `None`: never.
    pub idle_revoke_ms: Option<i64>,
}

/// Changes to a client; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New contact e-mail.
    pub email: Option<String>,
    /// New organisation (`Some(None)` clears it).
    pub organization: Option<Option<String>>,
    /// New idle-revoke period in ms (`Some(None)`: never).
    pub idle_revoke_ms: Option<Option<i64>>,
}

/// The new key of a rotation: its digest and display prefix (the plaintext
/// stays with the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// SHA-256 of the new plaintext.
    pub digest: Digest,
    /// Its first characters.
    pub display_prefix: String,
}

/// One credential in a maintenance report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceItem {
    /// Kind.
    pub kind: Kind,
    /// Id.
    pub id: i64,
    /// Owning client.
    pub client_id: i64,
    /// Label.
    pub name: String,
    /// Display prefix.
    pub display_prefix: String,
    /// When it was (or will be) revoked for idleness, or when it expires
    /// (ms).
    pub at: i64,
}

/// What a maintenance pass did and what is coming.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Revoked now: idle past their client's policy.
    pub revoked: Vec<MaintenanceItem>,
    /// To be revoked for idleness within 7 days.
    pub revoke_soon: Vec<MaintenanceItem>,
    /// Expiring within 7 days.
    pub expiring_soon: Vec<MaintenanceItem>,
}

/// What a client deactivation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deactivation {
    /// The client.
    pub client_id: i64,
    /// API keys revoked by the cascade.
    pub api_keys_revoked: u64,
    /// AI tokens revoked by the cascade.
    pub ai_tokens_revoked: u64,
}

/// A credential to be stored: everything but the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// Owning client.
    pub client_id: i64,
    /// Label, e.g. `production`.
    pub name: String,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Expiry time (ms), if any.
    pub expires_at: Option<i64>,
    /// SHA-256 of the plaintext.
    pub digest: Digest,
    /// First characters of the plaintext, for identification.
    pub display_prefix: String,
    /// The caller's JSON object, if any.
    pub metadata: Option<Metadata>,
    /// Most accepted validations per clock hour (UTC); `None`: unlimited.
    pub rate_limit: Option<i64>,
}

/// Longest credential label.
pub const MAX_LABEL_LEN: usize = 255;

/// Largest hourly rate limit accepted (a billion: any larger is a typo).
pub const MAX_RATE_LIMIT: i64 = 1_000_000_000;

/// Checks an hourly rate limit: 0 (nothing accepted) to [`MAX_RATE_LIMIT`].
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
pub fn check_rate_limit(limit: i64) -> crate::Result<()> {
    if (0..=MAX_RATE_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(crate::Error::invalid_input(format!(
            "a rate limit is a number of requests per hour from 0 to {MAX_RATE_LIMIT}"
        )))
    }
}

/// Lifecycle state of a credential at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    /// Usable.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl CredentialState {
    /// Lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Active => "active",
            CredentialState::Revoked => "revoked",
            CredentialState::Expired => "expired",
        }
    }
}

/// A stored credential as listed to administrators: never a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    /// API key or AI token.
    pub kind: Kind,
    /// Primary key within its table.
    pub id: i64,
    /// Owning client.
    pub client_id: i64,
    /// Label.
    pub name: String,
    /// Display prefix (first 12 characters).
    pub display_prefix: String,
    /// Granted scopes.
    pub scopes: Scopes,
    /// False once revoked.
    pub active: bool,
    /// Creation time (ms).
    pub created_at: i64,
    /// Expiry (ms).
    pub expires_at: Option<i64>,
    /// Revocation time (ms).
    pub revoked_at: Option<i64>,
    /// Last accepted use (ms).
    pub last_used_at: Option<i64>,
    /// Accepted uses.
    pub usage_count: i64,
    /// The caller's JSON object, if any.
    pub metadata: Option<Metadata>,
    /// Most accepted validations per clock hour (UTC); `None`: unlimited.
    pub rate_limit: Option<i64>,
    /// Ours, or a shape imported from Heratio.
    pub key_shape: KeyShape,
    /// The networks it may be used from; `None`: anywhere.
    pub allowed_ips: Option<AllowedIps>,
    /// The credential this one replaced, if it was made by a rotation.
    pub rotated_from: Option<i64>,
}

impl CredentialInfo {
    /// Whether it is active and expires within 7 days of `now` (ms).
    #[must_use]
    pub fn expires_soon(&self, now: i64) -> bool {
        self.state(now) == CredentialState::Active
            && self
                .expires_at
                .is_some_and(|e| e <= now + 7 * super::DAY_MS)
    }

    /// State at time `now` (ms).
    #[must_use]
    pub fn state(&self, now: i64) -> CredentialState {
        if !self.active {
            CredentialState::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            CredentialState::Expired
        } else {
            CredentialState::Active
        }
    }
}

/// A credential as the validator sees it: what decides the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// API key or AI token.
    pub kind: Kind,
    /// Primary key within its table.
    pub id: i64,
    /// Owning client.
    pub client_id: i64,
    /// Label.
    pub name: String,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Expiry (ms).
    pub expires_at: Option<i64>,
    /// False once revoked.
    pub active: bool,
    /// False once the client is deactivated.
    pub client_active: bool,
    /// The caller's JSON object, if any.
    pub metadata: Option<Metadata>,
    /// Most accepted validations per clock hour (UTC); `None`: unlimited.
    pub rate_limit: Option<i64>,
    /// The networks it may be used from; `None`: anywhere.
    pub allowed_ips: Option<AllowedIps>,
    pub(crate) digest: Digest,
}

impl Credential {
    /// The outcome for this credential at time `now` (ms), given the scopes
    /// the caller requires and the address it came from. The digest must
    /// already have been matched.
    #[must_use]
    pub fn status_at<S: AsRef<str>>(&self, now: i64, required: &[S], ip: Option<&str>) -> Status {
        if !self.active {
            Status::Revoked
        } else if !self.client_active {
            Status::ClientInactive
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Status::Expired
        } else if self.allowed_ips.as_ref().is_some_and(|a| !a.admits(ip)) {
            Status::IpDenied
        } else if self.scopes.first_missing(required).is_some() {
            Status::Forbidden
        } else {
            Status::Valid
        }
    }
}

/// One row of the usage log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// Kind the caller asked to validate.
    pub kind: Kind,
    /// Matched credential, if one was found.
    pub credential_id: Option<i64>,
    /// Its client.
    pub client_id: Option<i64>,
    /// Time of validation (ms).
    pub at: i64,
    /// Client IP (at most 45 characters).
    pub ip: Option<String>,
    /// Endpoint (at most 255 characters).
    pub endpoint: Option<String>,
    /// Outcome.
    pub status: Status,
}

/// Milliseconds in one minute: the period of `usage_rejected` counts.
pub const MINUTE_MS: i64 = 60_000;

/// Where a validation that matched no credential is counted: the IPv4
/// address, or the IPv6 /64 (one host or subscriber typically holds a whole
/// /64, and rotating addresses inside it must not multiply rows), `invalid`
/// for text that is no address, and `""` when none was given.
#[must_use]
pub fn rejection_bucket(ip: Option<&str>) -> String {
    use std::net::IpAddr;
    let Some(text) = ip else {
        return String::new();
    };
    match text.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
        Err(_) => "invalid".to_owned(),
    }
}

/// Validations that matched no credential in one minute from one source,
/// with one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedUsage {
    /// Start of the minute (ms).
    pub minute: i64,
    /// Kind asked for.
    pub kind: Kind,
    /// Source (see [`rejection_bucket`]).
    pub ip: String,
    /// Outcome.
    pub status: Status,
    /// How many.
    pub count: i64,
}

/// Longest IP stored (an IPv6 address with an IPv4 tail).
pub const MAX_IP_LEN: usize = 45;
/// Longest endpoint stored.
pub const MAX_ENDPOINT_LEN: usize = 255;

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    let len = clip(&text, max).len();
    text.truncate(len);
    text
}

/// `text` quoted for an error message, cut after `max` bytes (marked `…`):
/// a caller's megabyte of input must not become a megabyte of message.
pub(crate) fn quoted(text: &str, max: usize) -> String {
    let shown = clip(text, max);
    let more = if shown.len() < text.len() { "…" } else { "" };
    format!("{shown:?}{more}")
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// Schema version found before (`None`: empty database).
    pub from_version: Option<u32>,
    /// Schema version now.
    pub to_version: u32,
    /// Descriptions of the migrations applied, in order; empty if none.
    pub applied: Vec<String>,
}

/// A change-feed row: a digest whose validation outcome may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Monotonic id (may commit out of order on MySQL).
    pub id: i64,
    /// Credential kind.
    pub kind: Kind,
    /// The affected digest.
    pub digest: Digest,
}

/// Usage of one credential, for statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialUsage {
    /// Kind.
    pub kind: Kind,
    /// Id.
    pub id: i64,
    /// Owning client.
    pub client_id: i64,
    /// Label.
    pub name: String,
    /// Display prefix.
    pub display_prefix: String,
    /// Accepted uses.
    pub usage_count: i64,
    /// Last accepted use (ms).
    pub last_used_at: Option<i64>,
}

/// Validations on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// All validations recorded that day.
    pub total: i64,
    /// Of which accepted.
    pub valid: i64,
}

/// Aggregate statistics, optionally for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageStats {
    /// Clients (or 1 when narrowed to a client).
    pub clients: i64,
    /// Of which active.
    pub active_clients: i64,
    /// Active, unexpired API keys.
    pub active_api_keys: i64,
    /// Active, unexpired AI tokens.
    pub active_ai_tokens: i64,
    /// Validations recorded in the window.
    pub validations: i64,
    /// Of which accepted.
    pub valid_validations: i64,
    /// One entry per day of the window, oldest first, zero days included.
    pub per_day: Vec<DayCount>,
    /// Most used credentials, most used first.
    pub top: Vec<CredentialUsage>,
    /// Most recent accepted use of any credential (ms).
    pub last_used_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_bucketed_by_source() {
        assert_eq!(rejection_bucket(None), "");
        assert_eq!(rejection_bucket(Some("192.0.2.7")), "192.0.2.7");
        assert_eq!(rejection_bucket(Some("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(
            rejection_bucket(Some("2001:db8:1:2:aaaa::1")),
            rejection_bucket(Some("2001:db8:1:2:ffff::9"))
        );
        assert_eq!(
            rejection_bucket(Some("2001:db8:1:2::1")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(rejection_bucket(Some("\u{ff}garbage")), "invalid");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("aé".to_owned(), 2), "a");
        assert_eq!(truncate("abc".to_owned(), 5), "abc");
    }
}
