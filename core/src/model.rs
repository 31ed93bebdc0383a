//! Plain data exchanged with the store: clients, credentials, scopes, actors
//! and statistics. Timestamps are milliseconds since the Unix epoch (UTC),
//! taken from the application clock so both back ends agree.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::format::{Digest, Kind};
use crate::status::Status;

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// `YYYY-MM-DD` of the UTC day containing `ms`.
#[must_use]
pub fn utc_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 UTC rendering of `ms`, second precision (`2026-11-23T11:34:27Z`).
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (h, mi, s) = (
        secs.rem_euclid(86_400) / 3600,
        secs.rem_euclid(3600) / 60,
        secs.rem_euclid(60),
    );
    format!("{}T{h:02}:{mi:02}:{s:02}Z", utc_date(ms))
}

/// Parses an RFC 3339 timestamp (`2027-01-31T00:00:00Z`,
/// `2027-01-31T01:00:00+01:00`, fractional seconds allowed) to milliseconds.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the
/// expected form.
pub fn parse_rfc3339(text: &str) -> Result<i64> {
    let bad = || {
        Error::invalid_input(format!(
            "{text:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"
        ))
    };
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64> {
        let part = text.get(range).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse::<i64>().map_err(|_| bad())?;
        rest = &frac[digits..];
    }
    let offset_ms = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let hh = num(text.len() - 5..text.len() - 3)?;
            let mm = num(text.len() - 2..text.len())?;
            sign * (hh * 3600 + mm * 60) * 1000
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    Ok(days * DAY_MS + (hour * 3600 + minute * 60 + second) * 1000 + millis - offset_ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Longest accepted scope name.
pub const MAX_SCOPE_LEN: usize = 64;
/// Most scopes one credential may hold.
pub const MAX_SCOPES: usize = 64;

/// Whether `scope` is a well-formed scope name: `*`, or 1–64 characters of
/// `A-Z a-z 0-9 _ . : -` (an alphabet without a comma keeps the stored
/// comma-separated form unambiguous).
#[must_use]
pub fn is_scope_name(scope: &str) -> bool {
    scope == "*"
        || (!scope.is_empty()
            && scope.len() <= MAX_SCOPE_LEN
            && scope
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_.:-".contains(&c)))
}

/// The scopes a credential holds. `*` grants every scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// The scope list holding only `*`, the default for new credentials.
    #[must_use]
    pub fn all() -> Self {
        Scopes(vec!["*".to_owned()])
    }

    /// Builds a scope list, dropping duplicates and keeping order.
    ///
    /// A scope is `*` or 1–64 characters of `A-Z a-z 0-9 _ . : -`; that
    /// alphabet keeps the stored comma-separated form unambiguous.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an
    /// empty list, an empty scope or a character outside the alphabet.
    pub fn new<I, S>(scopes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<String> = Vec::new();
        for scope in scopes {
            let scope = scope.as_ref().trim();
            if !is_scope_name(scope) {
                return Err(Error::invalid_input(format!(
                    "invalid scope {scope:?}: use `*` or 1-{MAX_SCOPE_LEN} characters of A-Z a-z 0-9 _ . : -"
                )));
            }
            if !out.iter().any(|s| s == scope) {
                out.push(scope.to_owned());
            }
        }
        if out.is_empty() {
            return Err(Error::invalid_input(
                "a credential needs at least one scope (use `*` for all)",
            ));
        }
        if out.len() > MAX_SCOPES {
            return Err(Error::invalid_input(format!(
                "at most {MAX_SCOPES} scopes per credential"
            )));
        }
        Ok(Scopes(out))
    }

    /// Parses the comma-separated form (`read,write`).
    ///
    /// # Errors
    ///
    /// As [`Scopes::new`].
    pub fn parse(list: &str) -> Result<Self> {
        Scopes::new(list.split(','))
    }

    /// Whether this list grants `required` (held literally, or `*` held).
    #[must_use]
    pub fn grants(&self, required: &str) -> bool {
        self.0.iter().any(|s| s == "*" || s == required)
    }

    /// The first of `required` not granted, if any.
    #[must_use]
    pub fn first_missing<'a, S: AsRef<str>>(&self, required: &'a [S]) -> Option<&'a str> {
        required.iter().map(AsRef::as_ref).find(|r| !self.grants(r))
    }

    /// The scopes, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The stored comma-separated form.
    #[must_use]
    pub fn to_stored(&self) -> String {
        self.0.join(",")
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

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
}

impl CredentialInfo {
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
    pub(crate) digest: Digest,
}

impl Credential {
    /// The outcome for this credential at time `now` (ms), given the scopes
    /// the caller requires. The digest must already have been matched.
    #[must_use]
    pub fn status_at<S: AsRef<str>>(&self, now: i64, required: &[S]) -> Status {
        if !self.active {
            Status::Revoked
        } else if !self.client_active {
            Status::ClientInactive
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Status::Expired
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

/// Longest IP stored (an IPv6 address with an IPv4 tail).
pub const MAX_IP_LEN: usize = 45;
/// Longest endpoint stored.
pub const MAX_ENDPOINT_LEN: usize = 255;

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
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

/// An audit-log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Id.
    pub id: i64,
    /// Time (ms).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// Through what (`cli`, `web`, `library`).
    pub source: String,
    /// Remote address.
    pub ip: Option<String>,
    /// What (`client.create`, `api_key.revoke`, …).
    pub action: String,
    /// Target table.
    pub target_type: String,
    /// Target id.
    pub target_id: Option<i64>,
    /// Extra detail (never a secret).
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_grant_literally_or_by_star() {
        let s = Scopes::parse("read, write,read").unwrap();
        assert_eq!(s.as_slice(), ["read", "write"]);
        assert!(s.grants("read") && !s.grants("delete"));
        assert_eq!(s.first_missing(&["read", "delete"]), Some("delete"));
        assert!(Scopes::all().grants("anything"));
        assert!(Scopes::parse("").is_err());
        assert!(Scopes::parse("a b").is_err());
        assert!(Scopes::parse("read,").is_err());
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40Z").unwrap(),
            1_795_000_000_000
        );
        assert_eq!(
            parse_rfc3339("2026-11-18T12:06:40.5+01:00").unwrap(),
            1_795_000_000_500
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z").unwrap() % DAY_MS, 0);
        assert!(parse_rfc3339("2023-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("tomorrow").is_err());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("aé".to_owned(), 2), "a");
        assert_eq!(truncate("abc".to_owned(), 5), "abc");
    }
}
