//! What a caller asks ([`Request`]) and what it is told ([`Validation`]),
//! including the message for the HTTP client, worded once for every binding.

use std::sync::Arc;

use crate::error::Error;
use crate::format::Kind;
use crate::model::Credential;
use crate::ratelimit::RateInfo;
use crate::status::Status;

/// Request text (a client IP, an endpoint) from a binding's bytes, for the
/// usage log: borrowed when it is UTF-8, and with invalid sequences
/// replaced otherwise (`String::from_utf8_lossy` alone walks the bytes the
/// slow way on every request). IPs and paths are nearly always ASCII, which
/// is checked a word at a time; the general UTF-8 check cost twice that for
/// such short strings, on every request.
#[must_use]
pub fn request_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// One validation request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The kind the caller expects.
    pub kind: Kind,
    /// The presented credential, as bytes (non-UTF-8 is simply malformed).
    pub key: &'a [u8],
    /// Scopes the credential must hold.
    pub scopes: &'a [&'a str],
    /// Client IP, for the usage log.
    pub ip: Option<&'a str>,
    /// Endpoint, for the usage log.
    pub endpoint: Option<&'a str>,
    /// False when the caller found no credential at all in the request
    /// (no header): the answer is `malformed` and says a key is required.
    pub presented: bool,
}

impl<'a> Request<'a> {
    /// A request with no required scopes and no usage details.
    #[must_use]
    pub fn new(kind: Kind, key: &'a [u8]) -> Self {
        Request {
            kind,
            key,
            scopes: &[],
            ip: None,
            endpoint: None,
            presented: true,
        }
    }

    /// A request that carried no credential at all. It is still a
    /// validation (counted and logged, `malformed`), answered with a message
    /// saying where the key belongs.
    #[must_use]
    pub fn absent(kind: Kind) -> Self {
        Request {
            presented: false,
            ..Request::new(kind, b"")
        }
    }

    /// Requires these scopes.
    #[must_use]
    pub fn scopes(mut self, scopes: &'a [&'a str]) -> Self {
        self.scopes = scopes;
        self
    }

    /// Records this client IP.
    #[must_use]
    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }

    /// Records this endpoint.
    #[must_use]
    pub fn endpoint(mut self, endpoint: Option<&'a str>) -> Self {
        self.endpoint = endpoint;
        self
    }
}

/// The answer to a validation.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The outcome.
    pub status: Status,
    /// The matched credential when one was found (valid, forbidden, expired,
    /// revoked, client inactive).
    pub credential: Option<Arc<Credential>>,
    /// The first required scope not held (status `forbidden`).
    pub missing_scope: Option<String>,
    /// Why the store could not answer (status `unavailable`).
    pub error: Option<Error>,
    /// The hourly budget, when the matched credential has a rate limit and
    /// was otherwise valid.
    pub rate: Option<RateInfo>,
    kind: Kind,
    presented: bool,
}

impl Validation {
    pub(crate) fn new(kind: Kind, status: Status) -> Self {
        Validation {
            status,
            credential: None,
            missing_scope: None,
            error: None,
            rate: None,
            kind,
            presented: true,
        }
    }

    pub(crate) fn absent(kind: Kind) -> Self {
        Validation {
            presented: false,
            ..Validation::new(kind, Status::Malformed)
        }
    }

    /// The answer when no validator could be opened (or the store failed):
    /// `unavailable`, carrying why when known.
    #[must_use]
    pub fn unavailable(kind: Kind, error: Option<Error>) -> Self {
        Validation {
            error,
            ..Validation::new(kind, Status::Unavailable)
        }
    }

    /// The kind that was asked for.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the credential was accepted.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.status.is_valid()
    }

    /// Requests left this hour, when the matched credential's limit
    /// counted this validation.
    #[must_use]
    pub fn rate_remaining(&self) -> Option<i64> {
        self.rate.map(|r| r.remaining)
    }

    /// Seconds until the hourly budget renews, when `rate_limited`.
    #[must_use]
    pub fn retry_after(&self) -> Option<i64> {
        self.rate.filter(|r| !r.admitted).map(|r| r.reset_after)
    }

    /// A message for the HTTP client, in the words Heratio's middleware has
    /// always used. It never contains the key, and never says why the store
    /// failed (that is [`Validation::error`], for operators).
    #[must_use]
    pub fn message(&self) -> String {
        let label = self.kind.label();
        match self.status {
            Status::Malformed if !self.presented => {
                format!("{label} required. Use X-API-Key header or Authorization: Bearer.")
            }
            Status::Valid => format!("{label} accepted."),
            Status::Malformed => format!("Invalid {label} format."),
            Status::WrongKind => format!(
                "{} cannot be used as {}.",
                self.kind.other().article_label_capitalised(),
                self.kind.article_label()
            ),
            Status::NotFound | Status::Revoked | Status::ClientInactive => {
                format!("Invalid or inactive {label}.")
            }
            Status::Expired => format!("{label} has expired."),
            Status::Forbidden => format!(
                "Scope '{}' required.",
                self.missing_scope.as_deref().unwrap_or("")
            ),
            Status::Unavailable => format!("{label} validation is temporarily unavailable."),
            Status::RateLimited => format!(
                "Rate limit of {} requests per hour exceeded.",
                self.rate.map_or(0, |r| r.limit)
            ),
            Status::IpDenied => format!("{label} not allowed from this IP address."),
        }
    }
}

#[cfg(test)]
mod request_text_tests {
    use super::request_text;
    use std::borrow::Cow;

    #[test]
    fn valid_text_is_borrowed_and_invalid_bytes_replaced() {
        assert!(matches!(
            request_text(b"/api/\xc3\xa9"),
            Cow::Borrowed("/api/é")
        ));
        assert_eq!(request_text(b"10.0.0.1\xff"), "10.0.0.1\u{fffd}");
        assert_eq!(request_text(b""), "");
    }
}
