//! Facts about an installation, for `keygen doctor`: what the database
//! says about itself ([`DiagnosticStore::facts`], both back ends) and what
//! the file system says about a SQLite file ([`sqlite_files`]). Only facts
//! live here; judging them (what is too broad, how much skew is too much)
//! is the doctor's. Nothing here carries a password: privileges are read
//! from `information_schema` rather than `SHOW GRANTS`, whose text holds
//! the account's password hash.

use std::path::{Path, PathBuf};

use super::dsn::Backend;
use crate::error::Result;

/// What the store reports about itself. Each fact is read on its own, so
/// one that the account may not read (a runtime account cannot count
/// usage rows) does not hide the others.
#[derive(Debug)]
pub struct StoreFacts {
    /// Which engine.
    pub backend: Backend,
    /// The installed schema version (`None`: not installed).
    pub schema_version: Result<Option<u32>>,
    /// The change feed as this account reads it.
    pub feed: Result<FeedFacts>,
    /// The oldest and newest raw usage rows.
    pub usage: Result<UsageFacts>,
    /// MySQL/MariaDB only: the server's view (`None` for SQLite).
    pub server: Option<ServerFacts>,
}

/// The change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedFacts {
    /// Highest id (0 when empty): where every poller's cursor ends up.
    pub head: i64,
    /// Rows kept.
    pub rows: u64,
    /// Time of the oldest row kept (ms), if any.
    pub oldest_at: Option<i64>,
    /// Time of the newest row (ms), if any.
    pub newest_at: Option<i64>,
}

/// The raw usage log, by its lowest and highest ids (rows are written in
/// time order, so these are the oldest and newest without a scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageFacts {
    /// Time of the oldest row kept (ms), if any.
    pub oldest_at: Option<i64>,
    /// Time of the newest row (ms), if any.
    pub newest_at: Option<i64>,
}

/// What a MySQL/MariaDB server says.
#[derive(Debug)]
pub struct ServerFacts {
    /// `VERSION()`.
    pub version: Result<String>,
    /// The account as the server matched it (`CURRENT_USER()`, `user@host`).
    pub account: Result<String>,
    /// The server's clock against ours.
    pub clock: Result<ClockReading>,
    /// Connection limits and use.
    pub connections: Result<ConnectionFacts>,
    /// Privileges of the account that apply to this database (global ones,
    /// database ones whose name pattern matches it, and its table and
    /// column grants).
    pub privileges: Result<Vec<Privilege>>,
}

/// The server's time read between two readings of ours, all in ms since
/// the epoch: the server's clock is ahead by about
/// `server - (sent + received) / 2`, give or take half the round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// Our clock when the query was sent.
    pub sent: i64,
    /// The server's clock.
    pub server: i64,
    /// Our clock when the answer arrived.
    pub received: i64,
}

impl ClockReading {
    /// How far the server's clock is ahead of ours (negative: behind), ms.
    #[must_use]
    pub fn skew_ms(&self) -> i64 {
        self.server - (self.sent + (self.received - self.sent) / 2)
    }

    /// How uncertain [`skew_ms`](Self::skew_ms) is: half the round trip, ms.
    #[must_use]
    pub fn uncertainty_ms(&self) -> i64 {
        (self.received - self.sent + 1) / 2
    }
}

/// `max_connections` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// `@@max_connections`: the server's limit for all accounts together.
    pub max_connections: u64,
    /// `@@max_user_connections`: this account's limit (0: none).
    pub max_user_connections: u64,
    /// Connections open now (`Threads_connected`).
    pub connected: u64,
    /// The most open at once since the server started
    /// (`Max_used_connections`).
    pub max_used: u64,
}

/// Where a privilege applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantLevel {
    /// Every database on the server (`ON *.*`).
    Global,
    /// Every table of databases matching this pattern (`ON db.*`).
    Database(String),
    /// One table of this database.
    Table(String),
    /// Some columns of one table of this database.
    Column {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
}

/// One privilege held, as `information_schema` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Privilege {
    /// Where it applies.
    pub level: GrantLevel,
    /// `SELECT`, `INSERT`, `DROP`, … (`USAGE` means none).
    pub name: String,
    /// Held `WITH GRANT OPTION`: the account may hand it to others.
    pub grantable: bool,
}

/// The store's self-description.
pub trait DiagnosticStore {
    /// Reaches the database (one round trip) and then reads every fact.
    ///
    /// # Errors
    ///
    /// Only when the database cannot be reached or opened at all
    /// ([`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable), or
    /// [`ErrorKind::SchemaOutdated`](crate::ErrorKind::SchemaOutdated) for a
    /// SQLite file that does not exist); a fact that cannot be read is an
    /// `Err` inside [`StoreFacts`].
    fn facts(&self) -> Result<StoreFacts>;
}

/// A file or directory as `stat` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Its path.
    pub path: PathBuf,
    /// Permission bits (`0o640`), `None` if it does not exist.
    pub mode: Option<u32>,
    /// Owner's uid.
    pub uid: Option<u32>,
    /// Whether it is a directory.
    pub is_dir: bool,
}

fn stat(path: PathBuf) -> FileFacts {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(&path) {
        Ok(m) => FileFacts {
            mode: Some(m.mode() & 0o7777),
            uid: Some(m.uid()),
            is_dir: m.is_dir(),
            path,
        },
        Err(_) => FileFacts {
            path,
            mode: None,
            uid: None,
            is_dir: false,
        },
    }
}

/// The SQLite database file, its `-wal` and `-shm` files (SQLite gives
/// them the database's mode, but a copy or a restore may not) and its
/// directory (whoever may write there may replace the database).
#[must_use]
pub fn sqlite_files(path: &Path) -> Vec<FileFacts> {
    let mut out = vec![stat(path.to_path_buf())];
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let facts = stat(PathBuf::from(p));
        if facts.mode.is_some() {
            out.push(facts);
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    out.push(stat(dir));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_measured_from_the_middle_of_the_round_trip() {
        let r = ClockReading {
            sent: 1_000,
            server: 6_010,
            received: 1_020,
        };
        assert_eq!(r.skew_ms(), 5_000);
        assert_eq!(r.uncertainty_ms(), 10);
        let behind = ClockReading {
            sent: 1_000,
            server: 900,
            received: 1_000,
        };
        assert_eq!(behind.skew_ms(), -100);
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn sqlite_files_lists_the_file_its_companions_and_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("k.db");
        std::fs::write(&db, b"").expect("file");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::write(&wal, b"").expect("wal");
        let facts = sqlite_files(&db);
        assert_eq!(facts.len(), 3, "{facts:?}");
        assert_eq!(facts[0].mode, Some(0o640));
        assert_eq!(facts[1].path, PathBuf::from(wal));
        assert!(facts[2].is_dir);
        let missing = sqlite_files(&dir.path().join("absent.db"));
        assert_eq!(missing[0].mode, None);
        assert_eq!(missing.len(), 2);
    }
}
