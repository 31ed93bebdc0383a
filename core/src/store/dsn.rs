//! Data source names: `sqlite:PATH` or `mysql://user:pass@host:port/db`,
//! parsed once, printed only with the password masked.

use std::fmt;

use mysql_async::Opts;

use crate::error::{Error, ErrorKind, Result};

/// Which database engine a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite through rusqlite (bundled).
    Sqlite,
    /// MySQL 8 / MariaDB 10.11 through mysql_async.
    Mysql,
}

/// A parsed data source name.
///
/// `sqlite:PATH` (relative or absolute) or `mysql://user:pass@host:port/db`.
/// `Display` and `Debug` mask the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Dsn {
    /// A SQLite database file.
    Sqlite {
        /// File path.
        path: std::path::PathBuf,
    },
    /// A MySQL/MariaDB server.
    Mysql {
        /// The URL as given (contains the password: never print it).
        url: String,
    },
}

impl Dsn {
    /// Parses a DSN.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidDsn`] for an empty path, an unknown scheme or a
    /// MySQL URL without host or database; the message masks the password.
    pub fn parse(text: &str) -> Result<Dsn> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                return Err(Error::new(
                    ErrorKind::InvalidDsn,
                    "sqlite DSN needs a file path, e.g. sqlite:/var/lib/heratio/keys.db (in-memory databases cannot be shared between connections)",
                ));
            }
            return Ok(Dsn::Sqlite { path: path.into() });
        }
        if text.starts_with("mysql://") || text.starts_with("mariadb://") {
            // Only the scheme: `replacen` rewrote the first `mariadb://`
            // anywhere, in the password or path too (found by the `dsn`
            // fuzz target).
            let url = match text.strip_prefix("mariadb://") {
                Some(rest) => format!("mysql://{rest}"),
                None => text.to_owned(),
            };
            validate_url(&url)?;
            return Ok(Dsn::Mysql { url });
        }
        Err(Error::new(
            ErrorKind::InvalidDsn,
            format!(
                "unsupported DSN {:?}: expected sqlite:PATH or mysql://user:pass@host:port/db",
                redact(text)
            ),
        ))
    }

    /// The full text that names this store, password included (for keying
    /// shared state by store and credentials; never for display): the
    /// absolute path of a SQLite file, or the MySQL URL.
    pub(crate) fn identity(&self) -> String {
        match self {
            Dsn::Sqlite { path } => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("sqlite:{}", absolute.display())
            }
            Dsn::Mysql { url } => url.clone(),
        }
    }

    /// The back end this DSN selects.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self {
            Dsn::Sqlite { .. } => Backend::Sqlite,
            Dsn::Mysql { .. } => Backend::Mysql,
        }
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dsn::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            Dsn::Mysql { url } => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

/// The driver's options for a MySQL URL, or why it is not one: the
/// driver's own URL parser decides, so what is accepted here is exactly
/// what the driver can connect with.
pub(crate) fn validate_url(url: &str) -> Result<Opts> {
    let opts = Opts::from_url(url).map_err(|e| {
        // The driver's words quote parts of the URL (an unknown query
        // parameter's name). With an unencoded `/`, `?` or `#` in the user
        // name or password the URL parser splits the URL before the end of
        // the password, so those words may quote it: give a hint instead
        // (found by the `dsn` fuzz target).
        let why = if password_is_split(url) {
            "the user name or password contains an unencoded '/', '?' or '#' (percent-encode it)"
                .to_owned()
        } else {
            redact(&e.to_string())
        };
        Error::new(
            ErrorKind::InvalidDsn,
            format!("invalid MySQL DSN {}: {why}", redact(url)),
        )
    })?;
    if opts.db_name().is_none_or(str::is_empty) {
        return Err(Error::new(
            ErrorKind::InvalidDsn,
            format!(
                "MySQL DSN {} names no database (mysql://user:pass@host:port/db)",
                redact(url)
            ),
        ));
    }
    Ok(opts)
}

/// Replaces the password of a URL-style DSN with `***`.
///
/// The user information ends at the *last* `@`: a password may contain
/// `/`, `:`, `#`, `?` or `@` unencoded, and a URL parser would then split it
/// elsewhere, so everything between the first `:` after the scheme and that
/// `@` is masked (over-masking a strange DSN is the safe mistake).
#[must_use]
pub fn redact(dsn: &str) -> String {
    match password_span(dsn) {
        Some((start, end)) => format!("{}***{}", &dsn[..start], &dsn[end..]),
        None => dsn.to_owned(),
    }
}

/// Byte range of the password as [`redact`] sees it: after the first `:`
/// following `scheme://`, up to the last `@`.
fn password_span(dsn: &str) -> Option<(usize, usize)> {
    let scheme_end = dsn.find("://")? + 3;
    let rest = &dsn[scheme_end..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some((scheme_end + colon + 1, scheme_end + at))
}

/// Whether a URL parser would cut this DSN before the end of its password
/// (an unencoded `/`, `?` or `#` in the user name or password), so that
/// parts of the password end up in the host, path or query, and in the
/// parser's error messages.
pub(crate) fn password_is_split(dsn: &str) -> bool {
    let user_start = dsn.find("://").map_or(0, |i| i + 3);
    password_span(dsn).is_some_and(|(_, end)| dsn[user_start..end].contains(['/', '?', '#']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_masks_only_the_password() {
        assert_eq!(
            redact("mysql://hk:s3cret@db:3306/keys"),
            "mysql://hk:***@db:3306/keys"
        );
        assert_eq!(redact("mysql://hk@db/keys"), "mysql://hk@db/keys");
        // Unencoded URL-special characters in the password (the integration
        // test `secrets` follows such DSNs through every error path).
        assert_eq!(
            redact("mysql://hk:a/b@c:d#e?f@127.0.0.1:1/keys"),
            "mysql://hk:***@127.0.0.1:1/keys"
        );
        assert_eq!(redact("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
        let err = Dsn::parse("postgres://u:s3cret@h/d").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidDsn);
        assert!(!err.message().contains("s3cret"));
        assert!(Dsn::parse("sqlite:").is_err());
        let dsn = Dsn::parse("mysql://hk:s3cret@127.0.0.1:3306/keys").unwrap();
        assert!(!format!("{dsn} {dsn:?}").contains("s3cret"));
    }

    /// Found by the `dsn` fuzz target: with `?` in the password the URL
    /// parser reads the rest of the password as a query parameter, and the
    /// driver's "unknown parameter" error quoted it.
    #[test]
    fn a_password_the_url_parser_splits_stays_out_of_errors() {
        for (dsn, secret) in [
            (
                "mysql://hys?pk:pa\0\0\0*s@db:3306/keys?pool_max=4",
                "pa\0\0\0*s",
            ),
            ("mysql://hk:123?secret=x@db/keys", "secret"),
            ("mysql://hk:a#secret@db/keys", "secret"),
        ] {
            let err = Dsn::parse(dsn).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidDsn);
            assert!(!err.message().contains(secret), "{err}");
        }
        // An unknown parameter is still named when the password is whole.
        let err = Dsn::parse("mysql://hk:s3cret@db/keys?pool_mx=4").unwrap_err();
        assert!(err.message().contains("pool_mx"), "{err}");
        assert!(!err.message().contains("s3cret"), "{err}");
    }

    /// Found by the `dsn` fuzz target: `mariadb://` was replaced wherever
    /// it first occurred, not only as the scheme.
    #[test]
    fn only_the_scheme_of_a_mariadb_dsn_is_rewritten() {
        let kept = "mysql://hk:s;1re@ct%2,.0.0.1:36/tmariadb://ys";
        assert_eq!(Dsn::parse(kept), Ok(Dsn::Mysql { url: kept.into() }));
        assert_eq!(
            Dsn::parse("mariadb://hk:pw@db:36/tmariadb://ys"),
            Ok(Dsn::Mysql {
                url: "mysql://hk:pw@db:36/tmariadb://ys".into()
            })
        );
    }
}
