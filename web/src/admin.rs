//! Admin accounts: the web crate's own `admin_user` table (the core owns the
//! rest of the schema) and argon2id password hashes.
//!
//! The table lives in the keygen database, created idempotently
//! (`CREATE TABLE IF NOT EXISTS`) at start-up and by `keygen admin:create`,
//! for SQLite (rusqlite, one short-lived connection per call: logins are
//! rare) and MySQL (a small mysql_async pool on the server's runtime).

use std::path::PathBuf;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use heratio_keys_core::model::now_ms;
use heratio_keys_core::{Dsn, ErrorKind};
use mysql_async::prelude::Queryable;

use crate::Error;

/// Shortest accepted admin password.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest accepted admin password (bytes).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest user name.
const MAX_USERNAME_LEN: usize = 64;

const SQLITE_DDL: &str = "CREATE TABLE IF NOT EXISTS admin_user (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER NULL
)";

const MYSQL_DDL: &str = "CREATE TABLE IF NOT EXISTS admin_user (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(64) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT NULL,
    UNIQUE KEY uq_admin_user_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/// What `create_admin` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCreated {
    /// Row id.
    pub id: i64,
    /// User name.
    pub username: String,
    /// False when an existing account's password was reset.
    pub created: bool,
}

/// A stored admin account.
#[derive(Debug, Clone)]
pub(crate) struct AdminUser {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

/// Where admin accounts live.
#[derive(Debug)]
pub(crate) enum AdminDb {
    Sqlite(PathBuf),
    Mysql(mysql_async::Pool),
}

fn store_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Store, format!("admin accounts: {what}: {e}"))
}

fn mysql_err(e: mysql_async::Error) -> Error {
    // Driver messages name host and port, never the password.
    let kind = match &e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => ErrorKind::Unavailable,
        _ => ErrorKind::Store,
    };
    Error::new(kind, format!("admin accounts: MySQL error: {e}"))
}

impl AdminDb {
    pub(crate) fn open(dsn: &Dsn) -> Result<AdminDb, Error> {
        Ok(match dsn {
            Dsn::Sqlite { path } => AdminDb::Sqlite(path.clone()),
            Dsn::Mysql { url } => {
                let opts = mysql_async::Opts::from_url(url).map_err(|e| {
                    Error::new(ErrorKind::InvalidDsn, format!("invalid MySQL DSN: {e}"))
                })?;
                let opts = mysql_async::OptsBuilder::from_opts(opts).pool_opts(
                    mysql_async::PoolOpts::default()
                        .with_constraints(
                            mysql_async::PoolConstraints::new(0, 4).unwrap_or_default(),
                        )
                        .with_inactive_connection_ttl(Duration::from_secs(60)),
                );
                AdminDb::Mysql(mysql_async::Pool::new(opts))
            }
        })
    }

    async fn sqlite<T, F>(path: &std::path::Path, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open(&path)
                .map_err(|e| store_err(&format!("cannot open {}", path.display()), e))?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(|e| store_err("busy timeout", e))?;
            f(&conn).map_err(|e| store_err("SQLite error", e))
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("admin accounts: {e}")))?
    }

    async fn mysql_conn(pool: &mysql_async::Pool) -> Result<mysql_async::Conn, Error> {
        tokio::time::timeout(Duration::from_secs(5), pool.get_conn())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Unavailable,
                    "admin accounts: MySQL connection timed out",
                )
            })?
            .map_err(mysql_err)
    }

    /// Creates the `admin_user` table if it does not exist.
    pub(crate) async fn ensure_schema(&self) -> Result<(), Error> {
        match self {
            AdminDb::Sqlite(path) => Self::sqlite(path, |c| c.execute_batch(SQLITE_DDL)).await,
            AdminDb::Mysql(pool) => {
                let mut conn = Self::mysql_conn(pool).await?;
                conn.query_drop(MYSQL_DDL).await.map_err(mysql_err)
            }
        }
    }

    /// Number of admin accounts.
    pub(crate) async fn count(&self) -> Result<i64, Error> {
        const SQL: &str = "SELECT COUNT(*) FROM admin_user";
        match self {
            AdminDb::Sqlite(path) => {
                Self::sqlite(path, |c| c.query_row(SQL, [], |r| r.get(0))).await
            }
            AdminDb::Mysql(pool) => {
                let mut conn = Self::mysql_conn(pool).await?;
                let n: Option<i64> = conn.query_first(SQL).await.map_err(mysql_err)?;
                Ok(n.unwrap_or(0))
            }
        }
    }

    pub(crate) async fn find(&self, username: &str) -> Result<Option<AdminUser>, Error> {
        const SQL: &str = "SELECT id, username, password_hash FROM admin_user WHERE username = ?";
        let name = username.to_owned();
        match self {
            AdminDb::Sqlite(path) => {
                Self::sqlite(path, move |c| {
                    let mut stmt = c.prepare(SQL)?;
                    let mut rows = stmt.query([&name])?;
                    match rows.next()? {
                        Some(r) => Ok(Some(AdminUser {
                            id: r.get(0)?,
                            username: r.get(1)?,
                            password_hash: r.get(2)?,
                        })),
                        None => Ok(None),
                    }
                })
                .await
            }
            AdminDb::Mysql(pool) => {
                let mut conn = Self::mysql_conn(pool).await?;
                let row: Option<(i64, String, String)> =
                    conn.exec_first(SQL, (name,)).await.map_err(mysql_err)?;
                Ok(row.map(|(id, username, password_hash)| AdminUser {
                    id,
                    username,
                    password_hash,
                }))
            }
        }
    }

    pub(crate) async fn touch_login(&self, id: i64) -> Result<(), Error> {
        const SQL: &str = "UPDATE admin_user SET last_login_at = ? WHERE id = ?";
        let now = now_ms();
        match self {
            AdminDb::Sqlite(path) => {
                Self::sqlite(path, move |c| c.execute(SQL, [now, id]).map(|_| ())).await
            }
            AdminDb::Mysql(pool) => {
                let mut conn = Self::mysql_conn(pool).await?;
                conn.exec_drop(SQL, (now, id)).await.map_err(mysql_err)
            }
        }
    }

    pub(crate) async fn create_user(
        &self,
        username: &str,
        hash: &str,
        reset: bool,
    ) -> Result<AdminCreated, Error> {
        let existing = self.find(username).await?;
        let now = now_ms();
        let name = username.to_owned();
        let hash = hash.to_owned();
        match (existing, reset) {
            (Some(_), false) => Err(Error::new(
                ErrorKind::Conflict,
                format!("admin {username:?} already exists (use --reset-password to change its password)"),
            )),
            (None, true) => Err(Error::new(
                ErrorKind::NotFound,
                format!("no admin named {username:?}"),
            )),
            (Some(user), true) => {
                const SQL: &str =
                    "UPDATE admin_user SET password_hash = ?, updated_at = ? WHERE id = ?";
                let id = user.id;
                match self {
                    AdminDb::Sqlite(path) => {
                        Self::sqlite(path, move |c| {
                            c.execute(SQL, rusqlite::params![hash, now, id]).map(|_| ())
                        })
                        .await?;
                    }
                    AdminDb::Mysql(pool) => {
                        let mut conn = Self::mysql_conn(pool).await?;
                        conn.exec_drop(SQL, (hash, now, id))
                            .await
                            .map_err(mysql_err)?;
                    }
                }
                Ok(AdminCreated {
                    id,
                    username: user.username,
                    created: false,
                })
            }
            (None, false) => {
                const SQL: &str = "INSERT INTO admin_user (username, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)";
                let id = match self {
                    AdminDb::Sqlite(path) => {
                        let name = name.clone();
                        Self::sqlite(path, move |c| {
                            c.execute(SQL, rusqlite::params![name, hash, now, now])?;
                            Ok(c.last_insert_rowid())
                        })
                        .await?
                    }
                    AdminDb::Mysql(pool) => {
                        let mut conn = Self::mysql_conn(pool).await?;
                        conn.exec_drop(SQL, (name.clone(), hash, now, now))
                            .await
                            .map_err(mysql_err)?;
                        i64::try_from(conn.last_insert_id().unwrap_or(0)).unwrap_or(0)
                    }
                };
                Ok(AdminCreated {
                    id,
                    username: name,
                    created: true,
                })
            }
        }
    }

    /// Closes the MySQL pool (no-op for SQLite).
    pub(crate) async fn close(&self) {
        if let AdminDb::Mysql(pool) = self {
            let _ = pool.clone().disconnect().await;
        }
    }
}

/// User names: 1–64 characters of `A-Z a-z 0-9 . _ @ -`.
pub(crate) fn validate_username(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USERNAME_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._@-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid admin user name {name:?}: use 1-{MAX_USERNAME_LEN} characters of A-Z a-z 0-9 . _ @ -"),
        ))
    }
}

pub(crate) fn validate_password(password: &str) -> Result<(), Error> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the password must have at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the password must have at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

/// argon2id with the OWASP-recommended parameters (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random salt.
pub(crate) fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("OS random generator: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("salt: {e}")))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::new(ErrorKind::Internal, format!("password hash: {e}")))
}

/// Whether `password` matches the stored PHC string. The parameters are read
/// from the string, so hashes made with older parameters still verify.
pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that the
/// answer takes as long as for a real account.
pub(crate) fn dummy_hash() -> String {
    hash_password("heratio-keys dummy password").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a.b_c@d-e").is_ok());
        for bad in ["", "a b", "ä", &"x".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("twelve chars").is_ok());
        assert!(validate_password(&"x".repeat(1025)).is_err());
    }
}
