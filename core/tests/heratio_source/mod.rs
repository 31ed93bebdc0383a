//! A Heratio-shaped source database for import tests: AtoM Heratio's
//! `ahg_api_key` exactly as `packages/ahg-api/database/install.sql`
//! creates it (adapted for SQLite), and AtoM's `user` table (without its
//! foreign key to `actor`). Shared by core's and cli's import tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use heratio_keys_core::{digest, digest_hex};
use heratio_keys_testkit::TestDb;

/// `ahg_api_key` on MySQL/MariaDB: Heratio's DDL, verbatim.
pub const MYSQL_AHG_API_KEY: &str = "CREATE TABLE IF NOT EXISTS ahg_api_key (
    id INT AUTO_INCREMENT PRIMARY KEY,
    user_id INT NOT NULL,
    name VARCHAR(100) NOT NULL,
    api_key VARCHAR(64) NOT NULL UNIQUE,
    api_key_prefix VARCHAR(8) NOT NULL,
    scopes JSON DEFAULT NULL,
    rate_limit INT DEFAULT 1000,
    expires_at DATETIME DEFAULT NULL,
    last_used_at DATETIME DEFAULT NULL,
    is_active TINYINT(1) DEFAULT 1,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    INDEX idx_api_key (api_key),
    INDEX idx_api_key_prefix (api_key_prefix),
    INDEX idx_user_id (user_id),
    INDEX idx_is_active (is_active)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

/// AtoM's `user` on MySQL/MariaDB (`database/core/00_core_schema.sql`,
/// less the foreign key to `actor`).
pub const MYSQL_USER: &str = "CREATE TABLE user (
    id int NOT NULL,
    username varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
    email varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
    password_hash varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
    salt varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
    active tinyint DEFAULT 1,
    email_bounced_at datetime DEFAULT NULL,
    preferred_locale varchar(10) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

/// The same tables for SQLite: `AUTO_INCREMENT` → `AUTOINCREMENT`, indexes
/// as statements, no engine, no `ON UPDATE`.
pub const SQLITE_TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ahg_api_key (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INT NOT NULL,
    name VARCHAR(100) NOT NULL,
    api_key VARCHAR(64) NOT NULL UNIQUE,
    api_key_prefix VARCHAR(8) NOT NULL,
    scopes JSON DEFAULT NULL,
    rate_limit INT DEFAULT 1000,
    expires_at DATETIME DEFAULT NULL,
    last_used_at DATETIME DEFAULT NULL,
    is_active TINYINT(1) DEFAULT 1,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX idx_api_key ON ahg_api_key (api_key)",
    "CREATE INDEX idx_api_key_prefix ON ahg_api_key (api_key_prefix)",
    "CREATE INDEX idx_user_id ON ahg_api_key (user_id)",
    "CREATE INDEX idx_is_active ON ahg_api_key (is_active)",
];

pub const SQLITE_USER: &str = "CREATE TABLE user (
    id int NOT NULL PRIMARY KEY,
    username varchar(255) DEFAULT NULL,
    email varchar(255) DEFAULT NULL,
    password_hash varchar(255) DEFAULT NULL,
    salt varchar(255) DEFAULT NULL,
    active tinyint DEFAULT 1,
    email_bounced_at datetime DEFAULT NULL,
    preferred_locale varchar(10) DEFAULT NULL)";

/// An empty Heratio database of the same engine as `like` (`None` when
/// MariaDB is not configured), with `ahg_api_key` and, if `with_users`,
/// `user`.
pub fn heratio_db(mysql: bool, with_users: bool) -> Option<TestDb> {
    let db = if mysql {
        TestDb::mysql_empty()?
    } else {
        TestDb::sqlite_empty()
    };
    if mysql {
        db.exec(MYSQL_AHG_API_KEY);
        if with_users {
            db.exec(MYSQL_USER);
        }
    } else {
        for sql in SQLITE_TABLES {
            db.exec(sql);
        }
        if with_users {
            db.exec(SQLITE_USER);
        }
    }
    Some(db)
}

fn seed() -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
    .into_bytes()
}

/// A fresh `Str::random(48)` key: 48 characters of `[A-Za-z0-9]`.
pub fn random_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = digest(&seed()).to_vec();
    bytes.extend(digest(&bytes));
    bytes[..48]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A fresh research key: `rk_` and 64 lowercase hex digits.
pub fn research_key() -> String {
    format!("rk_{}", digest_hex(&digest(&seed())))
}

/// The digest Heratio stores for a raw key.
pub fn hex(raw: &str) -> String {
    digest_hex(&digest(raw.as_bytes()))
}

/// One `ahg_api_key` row; `new` gives Heratio's defaults (scopes
/// `["read"]`, limit 1000, active, created 2025-06-01 10:00:00).
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub api_key: String,
    pub prefix: String,
    pub scopes: Option<String>,
    pub rate_limit: Option<i64>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub is_active: Option<i64>,
    pub created_at: Option<String>,
}

impl KeyRow {
    /// A row for the raw key `raw` (digest and prefix derived from it).
    pub fn new(id: i64, user_id: i64, raw: &str) -> KeyRow {
        KeyRow {
            id,
            user_id,
            name: format!("key {id}"),
            api_key: hex(raw),
            prefix: raw[..8].to_owned(),
            scopes: Some(r#"["read"]"#.into()),
            rate_limit: Some(1000),
            expires_at: None,
            last_used_at: None,
            is_active: Some(1),
            created_at: Some("2025-06-01 10:00:00".into()),
        }
    }

    fn values(&self) -> String {
        fn text(v: Option<&str>) -> String {
            v.map_or_else(|| "NULL".into(), |t| format!("'{}'", t.replace('\'', "''")))
        }
        fn int(v: Option<i64>) -> String {
            v.map_or_else(|| "NULL".into(), |n| n.to_string())
        }
        format!(
            "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            self.id,
            self.user_id,
            text(Some(&self.name)),
            text(Some(&self.api_key)),
            text(Some(&self.prefix)),
            text(self.scopes.as_deref()),
            int(self.rate_limit),
            text(self.expires_at.as_deref()),
            text(self.last_used_at.as_deref()),
            int(self.is_active),
            text(self.created_at.as_deref()),
        )
    }
}

/// Inserts rows into `ahg_api_key` (one multi-row statement per 1000).
pub fn insert_keys(db: &TestDb, rows: &[KeyRow]) {
    for chunk in rows.chunks(1000) {
        let values: Vec<String> = chunk.iter().map(KeyRow::values).collect();
        db.exec(&format!(
            "INSERT INTO ahg_api_key (id, user_id, name, api_key, api_key_prefix, scopes, rate_limit, expires_at, last_used_at, is_active, created_at) VALUES {}",
            values.join(", ")
        ));
    }
}

/// Inserts an AtoM user.
pub fn insert_user(db: &TestDb, id: i64, username: Option<&str>, email: Option<&str>) {
    let text = |v: Option<&str>| v.map_or_else(|| "NULL".into(), |t| format!("'{t}'"));
    db.exec(&format!(
        "INSERT INTO user (id, username, email) VALUES ({id}, {}, {})",
        text(username),
        text(email)
    ));
}
