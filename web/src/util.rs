//! Small helpers: random tokens, cookies, constant-time comparison, dates.

use axum::http::HeaderMap;
use heratio_keys_core::model::{parse_rfc3339, rfc3339, DAY_MS};
use subtle::ConstantTimeEq;

/// 32 random bytes from the OS, as 64 lowercase hex characters.
pub(crate) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Constant-time equality of two tokens (length leaks, content does not).
pub(crate) fn token_eq(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request, if present.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// `YYYY-MM-DD HH:MM` (UTC) of a millisecond timestamp.
pub(crate) fn short_time(ms: i64) -> String {
    let full = rfc3339(ms);
    format!("{} {}", &full[..10], &full[11..16])
}

/// Milliseconds at 00:00 UTC of a `YYYY-MM-DD` date (an HTML date input).
pub(crate) fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() != 10 {
        return None;
    }
    parse_rfc3339(&format!("{text}T00:00:00Z")).ok()
}

/// The end (exclusive) of the UTC day `text`.
pub(crate) fn parse_date_end(text: &str) -> Option<i64> {
    parse_date(text).map(|d| d + DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_and_tokens() {
        let mut h = HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            HeaderValue::from_static("a=1; hk_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, "hk_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let t = random_token().unwrap();
        assert_eq!(t.len(), 64);
        assert!(token_eq(&t, &t.clone()));
        assert!(!token_eq(&t, &random_token().unwrap()));
        assert!(!token_eq("", ""));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02"), Some(DAY_MS));
        assert_eq!(parse_date_end("1970-01-01"), Some(DAY_MS));
        assert_eq!(parse_date("1970-1-2"), None);
        assert_eq!(parse_date("nonsense!!"), None);
        assert_eq!(short_time(DAY_MS + 61_000), "1970-01-02 00:01");
    }
}
