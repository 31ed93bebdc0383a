//! `import:heratio`'s row mapping: `import::map_key` on arbitrary
//! `ahg_api_key` rows.
//!
//! Invariants:
//! - never panics;
//! - a refusal never quotes the digest column (`api_key`), unless the same
//!   text was also given in a column that is quoted on purpose (raw, or as
//!   the refusal renders it, escaped);
//! - an accepted row keeps exactly what Heratio stored: the digest is the
//!   `api_key` hex (any case) decoded, the display prefix is
//!   `api_key_prefix` unchanged, the shape follows the prefix (`rk_` + hex:
//!   research, else 8 letters and digits), `active` exactly when
//!   `is_active = 1`, the rate limit is the row's or Heratio's default and
//!   passes the core's check, every scope is a scope name, the name is
//!   non-empty, at most MAX_LABEL_LEN characters and has no control
//!   character, and there is an expiry exactly when the row has one.
#![no_main]

use heratio_keys_core::format::{digest_hex, KeyShape};
use heratio_keys_core::import::{map_key, SourceKey, HERATIO_DEFAULT_RATE_LIMIT};
use heratio_keys_core::model::{check_rate_limit, is_scope_name, MAX_LABEL_LEN};
use libfuzzer_sys::fuzz_target;

/// The row, one column a line, in table order after `id` and `user_id`:
/// name, api_key, api_key_prefix, scopes, rate_limit, expires_at,
/// last_used_at, is_active, created_at. `\N` is SQL NULL (as in
/// `mysqldump --tab`); a number column that does not parse is NULL. Seeds
/// are readable text.
fn row(text: &str) -> SourceKey {
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or_default();
    let id = next().trim().parse().unwrap_or(1);
    let user_id = next().trim().parse().unwrap_or(1);
    let name = next().to_owned();
    let api_key = next().to_owned();
    let api_key_prefix = next().to_owned();
    let mut nullable = || Some(next()).filter(|c| *c != "\\N").map(str::to_owned);
    let scopes = nullable();
    let rate_limit = nullable().and_then(|n| n.trim().parse().ok());
    let expires_at = nullable();
    let last_used_at = nullable();
    let is_active = nullable().and_then(|n| n.trim().parse().ok());
    let created_at = nullable();
    SourceKey {
        id,
        user_id,
        name,
        api_key,
        api_key_prefix,
        scopes,
        rate_limit,
        expires_at,
        last_used_at,
        is_active,
        created_at,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let r = row(&text);
    match map_key(&r) {
        Err(why) => {
            let quoted_elsewhere = [&r.api_key_prefix, &r.name]
                .into_iter()
                .chain(&r.scopes)
                .chain(&r.expires_at)
                .chain(&r.last_used_at)
                .chain(&r.created_at)
                // As the refusal quotes them too (`{:?}`): an escape such
                // as `\0` before a run of digits can spell the digest
                // where the raw column does not.
                .any(|c| {
                    c.contains(r.api_key.as_str()) || format!("{c:?}").contains(r.api_key.as_str())
                });
            assert!(
                r.api_key.len() < 4 || quoted_elsewhere || !why.contains(r.api_key.as_str()),
                "the refusal quotes the digest: {why}"
            );
        }
        Ok(k) => {
            assert_eq!(digest_hex(&k.digest), r.api_key.to_ascii_lowercase());
            assert_eq!(k.display_prefix, r.api_key_prefix);
            let p = r.api_key_prefix.as_bytes();
            let research = p.len() == 8
                && p.starts_with(b"rk_")
                && p[3..]
                    .iter()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
            let random = p.len() == 8 && p.iter().all(u8::is_ascii_alphanumeric);
            let expected = if research {
                KeyShape::HeratioResearch
            } else {
                assert!(random, "accepted prefix {:?}", r.api_key_prefix);
                KeyShape::HeratioRandom
            };
            assert_eq!(k.shape, expected);
            assert_eq!(k.active, r.is_active == Some(1));
            assert_eq!(
                k.rate_limit,
                Some(r.rate_limit.unwrap_or(HERATIO_DEFAULT_RATE_LIMIT))
            );
            assert!(check_rate_limit(k.rate_limit.unwrap_or_default()).is_ok());
            assert!(k.scopes.as_slice().iter().all(|s| is_scope_name(s)));
            assert!(!k.name.is_empty() && k.name.chars().count() <= MAX_LABEL_LEN);
            assert!(!k.name.chars().any(char::is_control), "{:?}", k.name);
            assert_eq!(k.expires_at.is_some(), r.expires_at.is_some());
            assert_eq!((k.heratio_key_id, k.heratio_user_id), (r.id, r.user_id));
        }
    }
});
