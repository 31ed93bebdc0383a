//! Scope lists: what a credential holds ([`Scopes`]) and what a caller may
//! require ([`check_required`]). One alphabet for both, so a typo in a
//! required scope is a caller error, never a silent `forbidden`.

use std::fmt;

use crate::error::{Error, Result};
use crate::model::records::quoted;

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
        let scopes = Scopes::held(scopes)?;
        if scopes.0.is_empty() {
            return Err(Error::invalid_input(
                "a credential needs at least one scope (use `*` for all)",
            ));
        }
        Ok(scopes)
    }

    /// Builds a scope list that may be empty: a credential imported from
    /// Heratio with `NULL` or `[]` scopes holds none (it passes routes that
    /// only authenticate, and no scoped route). Otherwise as [`Scopes::new`].
    ///
    /// # Errors
    ///
    /// As [`Scopes::new`], except for an empty list.
    pub fn held<I, S>(scopes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<String> = Vec::new();
        for scope in scopes {
            let scope = scope.as_ref().trim();
            if !is_scope_name(scope) {
                return Err(Error::invalid_input(format!(
                    "invalid scope {}: use `*` or 1-{MAX_SCOPE_LEN} characters of A-Z a-z 0-9 _ . : -",
                    quoted(scope, MAX_SCOPE_LEN)
                )));
            }
            if !out.iter().any(|s| s == scope) {
                out.push(scope.to_owned());
            }
        }
        if out.len() > MAX_SCOPES {
            return Err(Error::invalid_input(format!(
                "at most {MAX_SCOPES} scopes per credential"
            )));
        }
        Ok(Scopes(out))
    }

    /// The list from its stored form (`""` for none).
    ///
    /// # Errors
    ///
    /// As [`Scopes::held`].
    pub fn from_stored(stored: &str) -> Result<Self> {
        if stored.is_empty() {
            return Ok(Scopes(Vec::new()));
        }
        Scopes::held(stored.split(','))
    }

    /// The list from a stored form this library wrote and checksummed
    /// itself (the host table's slots): split, not validated again. Run on
    /// every shared-cache decode, where validating each name cost more
    /// than the rest of the decode together (callgrind).
    pub(crate) fn from_trusted_stored(stored: &str) -> Self {
        if stored.is_empty() {
            return Scopes(Vec::new());
        }
        Scopes(stored.split(',').map(str::to_owned).collect())
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

/// Checks the scopes a caller requires: at most [`MAX_SCOPES`], each a
/// well-formed scope name ([`is_scope_name`]). Every binding calls this and
/// reports a failure in its own idiom (PHP exception, C status and message,
/// HTTP 400, CLI usage error).
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the
/// first bad scope.
pub fn check_required<S: AsRef<str>>(required: &[S]) -> Result<()> {
    if required.len() > MAX_SCOPES {
        return Err(Error::invalid_input(format!(
            "at most {MAX_SCOPES} scopes may be required"
        )));
    }
    match required.iter().map(AsRef::as_ref).find(|s| !is_scope_name(s)) {
        Some(bad) => Err(Error::invalid_input(format!(
            "invalid scope {}: a scope is `*` or 1-{MAX_SCOPE_LEN} characters of A-Z a-z 0-9 _ . : -",
            quoted(bad, MAX_SCOPE_LEN)
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_bad_scope_is_quoted_cut() {
        let huge = format!("{}é ", "a".repeat(1 << 20));
        let message = check_required(&[huge.as_str()])
            .expect_err("invalid")
            .to_string();
        assert!(
            message.contains(&format!("\"{}\"…", "a".repeat(MAX_SCOPE_LEN))),
            "{message}"
        );
        assert!(message.len() < 4 * MAX_SCOPE_LEN, "{} bytes", message.len());
        let short = check_required(&["read "]).expect_err("invalid").to_string();
        assert!(short.contains("\"read \":"), "{short}");
    }

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
    fn required_scopes_are_checked_by_name_and_count() {
        assert!(check_required::<&str>(&[]).is_ok());
        assert!(check_required(&["read", "*", "ai:describe"]).is_ok());
        let err = check_required(&["read "]).unwrap_err();
        assert!(err.message().contains("\"read \""), "{err}");
        assert!(check_required(&[""]).is_err());
        assert!(check_required(&vec!["read"; MAX_SCOPES + 1]).is_err());
    }
}
