//! `Dsn::parse` and `redact` on arbitrary UTF-8.
//!
//! Never panics. The secret is defined as `redact` documents it: in a
//! URL-style DSN, the text between the first `:` after `scheme://` and the
//! *last* `@` after it. The invariants are sound (no false alarms) because
//! they compare with the same input where only the secret is replaced by a
//! canary of the same length (its letters and digits replaced, its other
//! characters kept):
//! - non-interference: `redact`, and `Display` / `Debug` of a parsed MySQL
//!   DSN, are byte-for-byte the same for the secret and for the canary (so
//!   they cannot depend on the password at all);
//! - no leak: a secret of 3 or more bytes appears in no output (`redact`,
//!   `Display`, `Debug`, the parse error's message, `Display` and `Debug`),
//!   unless it also appears in the canary input (the secret is also in the
//!   user, host or path) or in the canary's output (it is text the program
//!   writes anyway, such as `DSN` or `***`).
//!
//! - a MySQL DSN keeps the URL as given (`mariadb://` becomes `mysql://`,
//!   nothing else changes).
//!
//! A SQLite DSN's text is a file path, not a URL: it has no password, and it
//! is printed as given.
#![no_main]

use heratio_keys_core::store::redact;
use heratio_keys_core::Dsn;
use libfuzzer_sys::fuzz_target;

/// Byte range of the secret in `text`, by `redact`'s documented rule.
fn secret_span(text: &str) -> Option<(usize, usize)> {
    let scheme_end = text.find("://")? + 3;
    let rest = &text[scheme_end..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some((scheme_end + colon + 1, scheme_end + at))
}

/// Everything the program prints about `text`.
fn outputs(text: &str) -> (Vec<String>, bool) {
    let mut out = vec![redact(text)];
    let parsed = Dsn::parse(text);
    let mysql = matches!(parsed, Ok(Dsn::Mysql { .. }));
    match parsed {
        Ok(dsn @ Dsn::Mysql { .. }) => {
            out.push(dsn.to_string());
            out.push(format!("{dsn:?}"));
        }
        // A path, printed as given: not a secret.
        Ok(Dsn::Sqlite { .. }) => {}
        Err(e) => {
            out.push(e.message().to_owned());
            out.push(e.to_string());
            out.push(format!("{e:?}"));
        }
    }
    (out, mysql)
}

fuzz_target!(|text: &str| {
    // What `Dsn::parse` works on (it trims first); the secret span is found
    // in that.
    let text = text.trim();
    let (outs, mysql) = outputs(text);
    if let Ok(Dsn::Mysql { url }) = Dsn::parse(text) {
        match text.strip_prefix("mariadb://") {
            Some(rest) => assert_eq!(url, format!("mysql://{rest}")),
            None => assert_eq!(url, text),
        }
    }
    let Some((start, end)) = secret_span(text) else {
        return;
    };
    let secret = &text[start..end];
    // Letters and digits become `x`; every other character stays, so the
    // canary takes the same path as the secret where the program treats
    // them differently (the hint to percent-encode reserved characters).
    let canary: String = secret
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { 'x' } else { c })
        .collect();
    let canary_text = format!("{}{canary}{}", &text[..start], &text[end..]);
    let (canary_outs, canary_mysql) = outputs(&canary_text);

    assert_eq!(outs[0], canary_outs[0], "redact depends on the password");
    if mysql && canary_mysql {
        assert_eq!(outs[1..], canary_outs[1..], "a MySQL DSN's Display/Debug depends on the password");
    }
    if secret.len() >= 3 && !canary_text.contains(secret) {
        for (i, out) in outs.iter().enumerate() {
            let written_anyway = canary_outs.iter().any(|c| c.contains(secret));
            assert!(
                !out.contains(secret) || written_anyway,
                "output {i} leaks the password {secret:?}: {out:?}"
            );
        }
    }
});
