//! Cookies and the random tokens they carry: session ids and CSRF tokens.

use axum::http::{header, HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use crate::config::Config;

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
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Name of the session cookie. Over HTTPS the `__Host-` prefix makes the
/// browser refuse it from any other origin or path.
pub(crate) fn session_cookie(config: &Config) -> &'static str {
    if config.secure_cookies {
        "__Host-hk_session"
    } else {
        "hk_session"
    }
}

/// Name of the login form's CSRF cookie (there is no session yet to hold
/// the token, so the form double-submits it).
pub(crate) fn login_cookie(config: &Config) -> &'static str {
    if config.secure_cookies {
        "__Host-hk_login"
    } else {
        "hk_login"
    }
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(config: &Config, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_tokens() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
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
}
