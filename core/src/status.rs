//! Validation outcomes. Numbers and names are a contract with the C ABI, the
//! PHP extension and the `usage_log.status` column: never renumber, never
//! reuse a number.

use std::ffi::CStr;
use std::fmt;

/// The outcome of a validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Status {
    /// Accepted.
    Valid = 0,
    /// Wrong length, prefix, alphabet or checksum.
    Malformed = 1,
    /// A well-formed credential of the other kind.
    WrongKind = 2,
    /// Well-formed but unknown.
    NotFound = 3,
    /// Revoked, by itself or by its client's deactivation.
    Revoked = 4,
    /// Past its expiry time.
    Expired = 5,
    /// Its client is deactivated.
    ClientInactive = 6,
    /// Valid, but lacks a required scope.
    Forbidden = 7,
    /// The store cannot be reached and no cached answer may be used.
    Unavailable = 8,
    /// Over its per-hour request limit.
    RateLimited = 9,
    /// The key has an IP allowlist and the request's IP is outside it or
    /// unknown.
    IpDenied = 10,
}

impl Status {
    /// Every status, in numeric order.
    pub const ALL: [Status; 11] = [
        Status::Valid,
        Status::Malformed,
        Status::WrongKind,
        Status::NotFound,
        Status::Revoked,
        Status::Expired,
        Status::ClientInactive,
        Status::Forbidden,
        Status::Unavailable,
        Status::RateLimited,
        Status::IpDenied,
    ];

    /// The stable numeric code.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status with that code, if any.
    #[must_use]
    pub fn from_code(code: i64) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|s| i64::from(s.code()) == code)
    }

    /// The stable snake_case name (`valid`, `wrong_kind`, …).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Malformed => "malformed",
            Status::WrongKind => "wrong_kind",
            Status::NotFound => "not_found",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
            Status::ClientInactive => "client_inactive",
            Status::Forbidden => "forbidden",
            Status::Unavailable => "unavailable",
            Status::RateLimited => "rate_limited",
            Status::IpDenied => "ip_denied",
        }
    }

    /// The stable name as a C string, for the C ABI (static storage).
    #[must_use]
    pub fn c_name(self) -> &'static CStr {
        match self {
            Status::Valid => c"valid",
            Status::Malformed => c"malformed",
            Status::WrongKind => c"wrong_kind",
            Status::NotFound => c"not_found",
            Status::Revoked => c"revoked",
            Status::Expired => c"expired",
            Status::ClientInactive => c"client_inactive",
            Status::Forbidden => c"forbidden",
            Status::Unavailable => c"unavailable",
            Status::RateLimited => c"rate_limited",
            Status::IpDenied => c"ip_denied",
        }
    }

    /// The status with that name, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The HTTP status code a server should answer with.
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            Status::Valid => 200,
            Status::Forbidden | Status::IpDenied => 403,
            Status::RateLimited => 429,
            Status::Unavailable => 503,
            _ => 401,
        }
    }

    /// Whether the credential was accepted.
    #[must_use]
    pub fn is_valid(self) -> bool {
        self == Status::Valid
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_and_http_are_the_contract() {
        let expected = [
            (0, "valid", 200),
            (1, "malformed", 401),
            (2, "wrong_kind", 401),
            (3, "not_found", 401),
            (4, "revoked", 401),
            (5, "expired", 401),
            (6, "client_inactive", 401),
            (7, "forbidden", 403),
            (8, "unavailable", 503),
            (9, "rate_limited", 429),
            (10, "ip_denied", 403),
        ];
        for (status, (code, name, http)) in Status::ALL.into_iter().zip(expected) {
            assert_eq!(status.code(), code);
            assert_eq!(status.name(), name);
            assert_eq!(status.c_name().to_str(), Ok(name));
            assert_eq!(status.http_status(), http);
            assert_eq!(Status::from_code(i64::from(code)), Some(status));
            assert_eq!(Status::from_name(name), Some(status));
        }
        assert_eq!(Status::from_code(11), None);
    }
}
