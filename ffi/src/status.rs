//! `hk_status` and `hk_kind`: core's [`Status`] and [`Kind`] with their C
//! numbers, and the functions that describe a status. Names, numbers and
//! HTTP codes are core's; this module only carries them across.

use std::ffi::c_char;

use heratio_keys_core::{Kind, Status};

/// Which family a credential belongs to. Values are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum hk_kind {
    /// `hk_api_…`: REST API clients.
    HK_KIND_API_KEY = 1,
    /// `hk_ai_…`: AI servers.
    HK_KIND_AI_TOKEN = 2,
}

/// `hk_kind` as received from C: any 32-bit value, checked before use.
/// (Exported to C under the name `hk_kind`; see cbindgen.toml.)
pub type hk_kind_raw = u32;

/// The outcome of a validation. Values are stable and never reused; later
/// statuses take new numbers after 10, so keep a `default:` branch.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum hk_status {
    /// Accepted (HTTP 200).
    HK_STATUS_VALID = 0,
    /// Wrong length, prefix, alphabet or checksum; also a NULL key (HTTP 401).
    HK_STATUS_MALFORMED = 1,
    /// A well-formed credential of the other kind (HTTP 401).
    HK_STATUS_WRONG_KIND = 2,
    /// Well-formed but unknown (HTTP 401).
    HK_STATUS_NOT_FOUND = 3,
    /// Revoked, by itself or by its client's deactivation (HTTP 401).
    HK_STATUS_REVOKED = 4,
    /// Past its expiry time (HTTP 401).
    HK_STATUS_EXPIRED = 5,
    /// Its client is deactivated (HTTP 401).
    HK_STATUS_CLIENT_INACTIVE = 6,
    /// Valid, but lacks a required scope (HTTP 403).
    HK_STATUS_FORBIDDEN = 7,
    /// The store cannot be reached and no cached answer may be used; also a
    /// NULL validator handle or an internal error (HTTP 503).
    HK_STATUS_UNAVAILABLE = 8,
    /// Over its per-hour request limit (HTTP 429).
    HK_STATUS_RATE_LIMITED = 9,
    /// The key has an IP allowlist and the request's IP is outside it or
    /// unknown (HTTP 403).
    HK_STATUS_IP_DENIED = 10,
}

/// `hk_status` as received from C: any 32-bit value, checked before use.
/// (Exported to C under the name `hk_status`; see cbindgen.toml.)
pub type hk_status_raw = u32;

impl From<Status> for hk_status {
    /// Exhaustive on purpose: a status added to core does not compile here
    /// until the C enum has its value.
    fn from(status: Status) -> Self {
        match status {
            Status::Valid => hk_status::HK_STATUS_VALID,
            Status::Malformed => hk_status::HK_STATUS_MALFORMED,
            Status::WrongKind => hk_status::HK_STATUS_WRONG_KIND,
            Status::NotFound => hk_status::HK_STATUS_NOT_FOUND,
            Status::Revoked => hk_status::HK_STATUS_REVOKED,
            Status::Expired => hk_status::HK_STATUS_EXPIRED,
            Status::ClientInactive => hk_status::HK_STATUS_CLIENT_INACTIVE,
            Status::Forbidden => hk_status::HK_STATUS_FORBIDDEN,
            Status::Unavailable => hk_status::HK_STATUS_UNAVAILABLE,
            Status::RateLimited => hk_status::HK_STATUS_RATE_LIMITED,
            Status::IpDenied => hk_status::HK_STATUS_IP_DENIED,
        }
    }
}

impl From<Kind> for hk_kind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::ApiKey => hk_kind::HK_KIND_API_KEY,
            Kind::AiToken => hk_kind::HK_KIND_AI_TOKEN,
        }
    }
}

/// The kind C passed, if core knows that number.
pub(crate) fn kind_from_raw(kind: hk_kind_raw) -> Option<Kind> {
    Kind::from_code(i64::from(kind))
}

/// The stable name of a status (`"valid"`, `"wrong_kind"`, …), as in the
/// usage log, the CLI and the PHP extension; `"unknown"` for a value this
/// library does not know. Static storage: never free it.
#[no_mangle]
pub extern "C" fn hk_status_name(s: hk_status_raw) -> *const c_char {
    Status::from_code(i64::from(s))
        .map_or(c"unknown", Status::c_name)
        .as_ptr()
}

/// The HTTP status a server should answer with: 200 (valid), 403
/// (forbidden, ip_denied), 429 (rate_limited), 503 (unavailable), 401
/// otherwise; 500 for a value this library does not know.
#[no_mangle]
pub extern "C" fn hk_status_http(s: hk_status_raw) -> u16 {
    Status::from_code(i64::from(s)).map_or(500, Status::http_status)
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn statuses_match_the_core_contract() {
        for status in Status::ALL {
            let code = u32::from(status.code());
            assert_eq!(hk_status::from(status) as u32, code);
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(hk_status_name(code)) };
            assert_eq!(name.to_str().ok(), Some(status.name()));
            assert_eq!(hk_status_http(code), status.http_status());
        }
        // The first number no status has yet.
        assert_eq!(hk_status_http(11), 500);
        // SAFETY: static NUL-terminated string.
        assert_eq!(
            unsafe { CStr::from_ptr(hk_status_name(u32::MAX)) }.to_str(),
            Ok("unknown")
        );
        assert_eq!(hk_kind::HK_KIND_API_KEY as u8, Kind::ApiKey.code());
        assert_eq!(hk_kind::HK_KIND_AI_TOKEN as u8, Kind::AiToken.code());
    }

    #[test]
    fn kinds_match_the_core_contract() {
        for kind in Kind::ALL {
            let code = u32::from(kind.code());
            assert_eq!(hk_kind::from(kind) as u32, code);
            assert_eq!(kind_from_raw(code), Some(kind));
        }
        for unknown in [0, 3, u32::MAX] {
            assert_eq!(kind_from_raw(unknown), None);
        }
    }
}
