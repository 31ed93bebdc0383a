//! Where `heratio_keys_authenticate()` finds the credential in `$_SERVER`.

/// `$_SERVER` entries holding a key, in the order they are consulted.
/// `REDIRECT_HTTP_AUTHORIZATION` is where Apache's mod_rewrite leaves the
/// `Authorization` header when it rewrites to `index.php`.
pub const KEY_HEADERS: [&str; 2] = ["HTTP_X_API_KEY", "HTTP_X_REST_API_KEY"];
/// `$_SERVER` entries holding an `Authorization` header.
pub const AUTHORIZATION: [&str; 2] = ["HTTP_AUTHORIZATION", "REDIRECT_HTTP_AUTHORIZATION"];

/// The presented credential: `X-API-Key`, then `X-REST-API-Key`, then
/// `Authorization: Bearer …`. Empty (whitespace-only) values count as absent;
/// surrounding whitespace is removed. `get` looks a `$_SERVER` entry up.
pub fn find_key<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> Option<&'a [u8]> {
    for name in KEY_HEADERS {
        if let Some(value) = get(name).map(trim).filter(|v| !v.is_empty()) {
            return Some(value);
        }
    }
    for name in AUTHORIZATION {
        if let Some(value) = get(name).map(trim).filter(|v| !v.is_empty()) {
            return bearer(value);
        }
    }
    None
}

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive, RFC 7235); `None` for other schemes or no token.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = b"bearer";
    if value.len() <= scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = &value[scheme.len()..];
    if !matches!(rest.first(), Some(b' ' | b'\t')) {
        return None;
    }
    Some(trim(rest)).filter(|t| !t.is_empty())
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_bytes())
        }
    }

    #[test]
    fn header_precedence() {
        let all = [
            ("HTTP_AUTHORIZATION", "Bearer c"),
            ("HTTP_X_REST_API_KEY", "b"),
            ("HTTP_X_API_KEY", "a"),
        ];
        assert_eq!(find_key(lookup(&all)), Some(&b"a"[..]));
        assert_eq!(find_key(lookup(&all[..2])), Some(&b"b"[..]));
        assert_eq!(find_key(lookup(&all[..1])), Some(&b"c"[..]));
        assert_eq!(find_key(lookup(&[])), None);
    }

    #[test]
    fn bearer_forms() {
        let get = |v: &'static str| {
            find_key(move |n| (n == "HTTP_AUTHORIZATION").then_some(v.as_bytes()))
        };
        assert_eq!(get("bearer  tok "), Some(&b"tok"[..]));
        assert_eq!(get("BEARER\ttok"), Some(&b"tok"[..]));
        assert_eq!(get("Basic dXNlcjpwYXNz"), None);
        assert_eq!(get("Bearer"), None);
        assert_eq!(get("Bearer   "), None);
        assert_eq!(get("Bearertok"), None);
        // Empty X-API-Key falls through to the next source.
        let pairs = [("HTTP_X_API_KEY", "  "), ("HTTP_AUTHORIZATION", "Bearer t")];
        assert_eq!(find_key(lookup(&pairs)), Some(&b"t"[..]));
        let redirected = [("REDIRECT_HTTP_AUTHORIZATION", "Bearer r")];
        assert_eq!(find_key(lookup(&redirected)), Some(&b"r"[..]));
    }
}
