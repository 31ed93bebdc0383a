//! SQLite back end (the embedded default): rusqlite with bundled SQLite, WAL
//! journal so validators read while the CLI writes, a busy timeout so writers
//! queue instead of failing, and a small pool of connections.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};

use super::schema::Dialect;
use super::sql::{Conn, Driver, Exec, Row, Value};
use super::Backend;
use crate::error::{Error, ErrorKind, Result};
use crate::fork::SqliteSection;

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;

pub(crate) struct SqliteDriver {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteDriver {
    /// Opens nothing that does not exist: a missing file is reported by the
    /// first call (schema missing), and only `install` creates it.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let driver = SqliteDriver {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        if path.exists() {
            // Open one connection now so an unreadable file is reported at
            // open time.
            let _sqlite = SqliteSection::enter();
            let first = driver.connect()?;
            driver.lock_idle().push(first);
        }
        Ok(driver)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock leaves only a list of idle
        // connections behind, which is still consistent.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn connect(&self) -> Result<Connection> {
        if !self.path.exists() {
            // A missing directory is a wrong path or an unmounted volume:
            // unavailable. A missing file in an existing one is a database
            // nobody installed yet.
            let dir_exists = self
                .path
                .parent()
                .is_none_or(|d| d.as_os_str().is_empty() || d.is_dir());
            return Err(if dir_exists {
                Error::new(
                    ErrorKind::SchemaOutdated,
                    format!(
                        "no keygen database at {}: run `keygen install` first",
                        self.path.display()
                    ),
                )
            } else {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "cannot open the SQLite database {}: its directory does not exist",
                        self.path.display()
                    ),
                )
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(|e| self.error(&e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.error(&e))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )
        .map_err(|e| self.error(&e))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn error(&self, err: &rusqlite::Error) -> Error {
        let path = self.path.display();
        let text = err.to_string();
        let kind = match err.sqlite_error_code() {
            Some(
                ErrorCode::CannotOpen
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::NotADatabase,
            ) => ErrorKind::Unavailable,
            Some(
                ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure,
            ) => ErrorKind::Unavailable,
            _ if text.contains("no such table") || text.contains("no such column") => {
                ErrorKind::SchemaOutdated
            }
            _ => ErrorKind::Store,
        };
        let hint = match err.sqlite_error_code() {
            _ if kind == ErrorKind::SchemaOutdated => " (run `keygen install`)",
            Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
                " (the user running this process needs read and write access to the database file and its directory: see docs/install.md)"
            }
            _ => "",
        };
        Error::new(kind, format!("SQLite database {path}: {text}{hint}"))
    }
}

struct SqliteConn<'a> {
    conn: &'a Connection,
    driver: &'a SqliteDriver,
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

impl Conn for SqliteConn<'_> {
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<Exec> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.driver.error(&e))?;
        let affected = stmt
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| self.driver.error(&e))?;
        Ok(Exec {
            affected: affected as u64,
            last_id: self.conn.last_insert_rowid(),
        })
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.driver.error(&e))?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| self.driver.error(&e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.driver.error(&e))? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(|e| self.driver.error(&e))? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    // Whole-number aggregates only; never fractional here.
                    #[allow(clippy::cast_possible_truncation)]
                    ValueRef::Real(v) => Value::Int(v as i64),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| self.driver.error(&e))
    }
}

impl Driver for SqliteDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn create_if_missing(&self) -> Result<()> {
        // Created here, owner-only, because the file holds key digests,
        // admin password hashes and client IPs; SQLite gives its -wal and
        // -shm files the same mode as the database file.
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path);
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot create the SQLite database {}: {e}",
                    self.path.display()
                ),
            )),
        }
    }

    fn with_conn<T>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<T>) -> Result<T> {
        // Declared first so it ends last: closing a connection is SQLite too.
        let _sqlite = SqliteSection::enter();
        let pooled = self.lock_idle().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = f(&mut SqliteConn {
            conn: &conn,
            driver: self,
        });
        // A connection left inside a transaction (failed COMMIT/ROLLBACK)
        // must not be reused: drop it.
        if conn.is_autocommit() {
            let mut idle = self.lock_idle();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result
    }
}

impl Drop for SqliteDriver {
    fn drop(&mut self) {
        let _sqlite = SqliteSection::enter();
        self.lock_idle().clear();
    }
}
