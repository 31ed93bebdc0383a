//! A database that exists for one test and is removed afterwards: a SQLite
//! file in a temporary directory, or a fresh database on the test MariaDB.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use heratio_keys_core::{store, Actor, KeyStore, Source};

use crate::mysql::{
    mysql_base, mysql_dump, mysql_exec, mysql_texts, try_mysql_exec, unique_database_name,
    with_database,
};

/// The actor tests use for store mutations.
#[must_use]
pub fn actor() -> Actor {
    Actor::new("test-suite", Source::Library)
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir, PathBuf),
    Mysql { admin_url: String, name: String },
}

/// A throwaway database. The `*_empty` constructors leave it without a
/// schema (a SQLite file that does not exist yet); the others install it.
#[derive(Debug)]
pub struct TestDb {
    /// Its DSN (a MariaDB one carries the test password).
    pub dsn: String,
    /// The library's store on it.
    pub store: Arc<dyn KeyStore>,
    cleanup: Cleanup,
}

fn open(dsn: &str) -> Arc<dyn KeyStore> {
    store::open(&store::Dsn::parse(dsn).expect("dsn")).expect("open store")
}

impl TestDb {
    /// A path in a fresh temporary directory; the file does not exist yet.
    #[must_use]
    pub fn sqlite_empty() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.db");
        let dsn = format!("sqlite:{}", path.display());
        TestDb {
            store: open(&dsn),
            dsn,
            cleanup: Cleanup::Sqlite(dir, path),
        }
    }

    /// A fresh, empty database on the server at `base`.
    #[must_use]
    pub fn mysql_empty_at(base: &str) -> TestDb {
        let name = unique_database_name("t");
        mysql_exec(base, &format!("CREATE DATABASE {name}"));
        let dsn = with_database(base, &name);
        TestDb {
            store: open(&dsn),
            dsn,
            cleanup: Cleanup::Mysql {
                admin_url: base.to_owned(),
                name,
            },
        }
    }

    /// A fresh, empty database on the test MariaDB, or `None` (skipped).
    #[must_use]
    pub fn mysql_empty() -> Option<TestDb> {
        Some(Self::mysql_empty_at(&mysql_base()?))
    }

    /// An installed SQLite database.
    #[must_use]
    pub fn sqlite() -> TestDb {
        Self::sqlite_empty().installed()
    }

    /// An installed database on the test MariaDB, or `None` (skipped).
    #[must_use]
    pub fn mysql() -> Option<TestDb> {
        Self::mysql_empty().map(TestDb::installed)
    }

    /// An installed database on the server at `base`.
    #[must_use]
    pub fn mysql_at(base: &str) -> TestDb {
        Self::mysql_empty_at(base).installed()
    }

    /// Installed databases on both back ends (MariaDB only when configured).
    #[must_use]
    pub fn all() -> Vec<TestDb> {
        let mut v = vec![TestDb::sqlite()];
        v.extend(TestDb::mysql());
        v
    }

    fn installed(self) -> TestDb {
        self.store.install().expect("install");
        self
    }

    /// `sqlite` or `mysql`, for assertion messages.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self.cleanup {
            Cleanup::Sqlite(..) => "sqlite",
            Cleanup::Mysql { .. } => "mysql",
        }
    }

    /// Whether this is a MariaDB database.
    #[must_use]
    pub fn is_mysql(&self) -> bool {
        matches!(self.cleanup, Cleanup::Mysql { .. })
    }

    /// The SQLite file, if this is one.
    #[must_use]
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => Some(path),
            Cleanup::Mysql { .. } => None,
        }
    }

    /// A new store on the same database (its own connections).
    #[must_use]
    pub fn open_store(&self) -> Arc<dyn KeyStore> {
        open(&self.dsn)
    }

    /// Runs SQL directly on the database, bypassing the library.
    pub fn exec(&self, sql: &str) {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .expect("busy timeout");
                conn.execute_batch(sql).expect("run SQL");
            }
            Cleanup::Mysql { .. } => mysql_exec(&self.dsn, sql),
        }
    }

    /// Every value of every row `sql` returns, as text, row after row,
    /// read directly from the database.
    #[must_use]
    pub fn texts(&self, sql: &str) -> Vec<String> {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                let mut statement = conn.prepare(sql).expect("prepare");
                let width = statement.column_count();
                let mut rows = statement.query([]).expect("query");
                let mut out = Vec::new();
                while let Some(row) = rows.next().expect("row") {
                    for i in 0..width {
                        let value: rusqlite::types::Value = row.get(i).expect("value");
                        out.push(match value {
                            rusqlite::types::Value::Text(t) => t,
                            rusqlite::types::Value::Integer(n) => n.to_string(),
                            other => format!("{other:?}"),
                        });
                    }
                }
                out
            }
            Cleanup::Mysql { .. } => mysql_texts(&self.dsn, sql),
        }
    }

    /// Every value stored anywhere in the database, as text (SQLite: the raw
    /// bytes of the database, WAL, shared-memory and journal files).
    #[must_use]
    pub fn everything_stored(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    if let Ok(bytes) = std::fs::read(&p) {
                        all.extend(bytes);
                    }
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            Cleanup::Mysql { .. } => {
                let mut all = String::new();
                for table in [
                    "client",
                    "api_key",
                    "ai_token",
                    "usage_log",
                    "change_feed",
                    "audit_log",
                    "schema_version",
                    "admin_user",
                ] {
                    all.push_str(&mysql_dump(&self.dsn, table).join("\n"));
                    all.push('\n');
                }
                all
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Mysql { admin_url, name } = &self.cleanup {
            // Never panic in a destructor: a test that already failed (or
            // stopped its server) would abort the whole test binary.
            let _ = try_mysql_exec(admin_url, &format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}
