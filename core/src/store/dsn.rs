//! Data source names: `sqlite:PATH` or `mysql://user:pass@host:port/db`,
//! parsed once, printed only with the password masked.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

use super::mysql;

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
            let url = text.replacen("mariadb://", "mysql://", 1);
            mysql::validate_url(&url)?;
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

/// Replaces the password of a URL-style DSN with `***`.
///
/// The user information ends at the *last* `@`: a password may contain
/// `/`, `:`, `#`, `?` or `@` unencoded, and a URL parser would then split it
/// elsewhere, so everything between the first `:` after the scheme and that
/// `@` is masked (over-masking a strange DSN is the safe mistake).
#[must_use]
pub fn redact(dsn: &str) -> String {
    let Some(scheme_end) = dsn.find("://").map(|i| i + 3) else {
        return dsn.to_owned();
    };
    let rest = &dsn[scheme_end..];
    let Some(at) = rest.rfind('@') else {
        return dsn.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &dsn[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => dsn.to_owned(),
    }
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
}
