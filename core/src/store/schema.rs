//! Schema and migrations, one DDL text per dialect and version.
//!
//! Timestamps are `BIGINT` milliseconds since the epoch (UTC) in both back
//! ends; digests are 64 lowercase hex characters (`key_hash`), exactly what
//! PHP's `hash('sha256', $key)` returns, so existing PHP code can still look
//! a key up by hand.

/// The schema version this library writes and expects.
pub const SCHEMA_VERSION: u32 = 9;

/// One step of a migration. MySQL commits DDL implicitly, so an
/// interrupted install re-runs steps: each must be idempotent. Tables and
/// indexes say `IF NOT EXISTS`; a column is added only if absent (neither
/// MySQL 8 nor SQLite has `ADD COLUMN IF NOT EXISTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Sql(String),
    AddColumn {
        table: &'static str,
        column: &'static str,
        definition: String,
    },
    /// `CREATE {definition}` unless an index of that name exists (MySQL 8
    /// has no `CREATE INDEX IF NOT EXISTS`).
    AddIndex {
        table: &'static str,
        name: &'static str,
        definition: &'static str,
    },
    /// Drops index `name` of `table` if it exists (MySQL 8 has no `DROP
    /// INDEX IF EXISTS`).
    DropIndex {
        table: &'static str,
        name: &'static str,
    },
}

impl Step {
    fn add_column(table: &'static str, column: &'static str, definition: String) -> Step {
        Step::AddColumn {
            table,
            column,
            definition,
        }
    }
}

/// SQL dialect of a back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Mysql,
}

impl Dialect {
    /// Statement that opens a write transaction.
    pub(crate) fn begin(self) -> &'static str {
        match self {
            // IMMEDIATE takes the write lock up front, so two writers never
            // deadlock upgrading from a read lock.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Mysql => "START TRANSACTION",
        }
    }

    /// Suffix that locks the rows a `SELECT` reads until commit. SQLite needs
    /// none: `BEGIN IMMEDIATE` already serialises writers.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Mysql => " FOR UPDATE",
        }
    }

    /// The tail of a multi-row `INSERT` that adds `column` of a row whose
    /// `key` columns already exist to the stored value instead of failing.
    pub(crate) fn add_on_conflict(self, key: &[&str], column: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "ON CONFLICT ({}) DO UPDATE SET {column} = {column} + excluded.{column}",
                key.join(", ")
            ),
            Dialect::Mysql => {
                format!("ON DUPLICATE KEY UPDATE {column} = {column} + VALUES({column})")
            }
        }
    }

    /// The tail of an `INSERT` that leaves an existing row as it is but
    /// (on MySQL) locks it exclusively, as an update would.
    pub(crate) fn keep_on_conflict(self, key: &[&str], column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("ON CONFLICT ({}) DO NOTHING", key.join(", ")),
            Dialect::Mysql => format!("ON DUPLICATE KEY UPDATE {column} = {column}"),
        }
    }

    /// `INSERT` that skips a row whose key exists.
    pub(crate) fn insert_ignore(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT OR IGNORE",
            Dialect::Mysql => "INSERT IGNORE",
        }
    }

    /// Integer division of a column by a constant.
    pub(crate) fn int_div(self, column: &str, divisor: i64) -> String {
        match self {
            Dialect::Sqlite => format!("({column} / {divisor})"),
            Dialect::Mysql => format!("({column} DIV {divisor})"),
        }
    }

    /// The larger of two integer expressions.
    pub(crate) fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("MAX({a}, {b})"),
            Dialect::Mysql => format!("GREATEST({a}, {b})"),
        }
    }

    /// `CREATE TABLE schema_version`, run before anything else.
    pub(crate) fn version_table(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "CREATE TABLE IF NOT EXISTS schema_version (
                    version INTEGER PRIMARY KEY,
                    description TEXT NOT NULL,
                    applied_at INTEGER NOT NULL)"
            }
            Dialect::Mysql => {
                "CREATE TABLE IF NOT EXISTS schema_version (
                    version INT NOT NULL PRIMARY KEY,
                    description VARCHAR(255) NOT NULL,
                    applied_at BIGINT NOT NULL
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            }
        }
    }

    /// Migrations in order: (version, description, statements).
    pub(crate) fn migrations(self) -> Vec<(u32, &'static str, Vec<Step>)> {
        let sql = |statements: Vec<String>| statements.into_iter().map(Step::Sql).collect();
        vec![
            (1, "initial schema", sql(self.v1())),
            (2, "admin accounts", sql(self.v2())),
            (3, "rejected validations counted per minute", sql(self.v3())),
            (
                4,
                "credential metadata, rate limits, key shapes; client external ids; rate counters",
                self.v4(),
            ),
            (
                5,
                "positions written from host usage queues",
                vec![Step::Sql(self.v5())],
            ),
            (
                6,
                "IP allowlists, rotation links, idle-revoke policies",
                self.v6(),
            ),
            (
                7,
                "admin roles and disabled accounts; audit search indexes",
                self.v7(),
            ),
            (8, "daily usage rollups", self.v8()),
            (
                9,
                "usage_log keeps one secondary index, by credential",
                Self::v9(),
            ),
        ]
    }

    /// Whether column `column` of `table` exists (a query returning one
    /// count).
    pub(crate) fn column_exists_query(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?",
            Dialect::Mysql => {
                "SELECT COUNT(*) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?"
            }
        }
    }

    /// Whether index `name` of `table` exists (a query returning one count).
    pub(crate) fn index_exists_query(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT COUNT(*) FROM pragma_index_list(?) WHERE name = ?",
            Dialect::Mysql => {
                "SELECT COUNT(*) FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?"
            }
        }
    }

    /// Heratio-fit columns and the shared hourly rate counters.
    fn v4(self) -> Vec<Step> {
        let (text, int, tiny) = match self {
            Dialect::Sqlite => ("TEXT", "INTEGER", "INTEGER"),
            Dialect::Mysql => ("TEXT", "BIGINT", "TINYINT"),
        };
        let mut steps = Vec::new();
        for table in ["api_key", "ai_token"] {
            steps.push(Step::add_column(table, "metadata", format!("{text} NULL")));
            steps.push(Step::add_column(table, "rate_limit", format!("{int} NULL")));
            steps.push(Step::add_column(
                table,
                "key_shape",
                format!("{tiny} NOT NULL DEFAULT 0"),
            ));
        }
        steps.push(Step::add_column(
            "client",
            "external_id",
            match self {
                Dialect::Sqlite => "TEXT NULL".to_owned(),
                Dialect::Mysql => "VARCHAR(64) CHARACTER SET ascii NULL".to_owned(),
            },
        ));
        steps.push(Step::AddIndex {
            table: "client",
            name: "client_external_id",
            definition: "UNIQUE INDEX client_external_id ON client(external_id)",
        });
        steps.push(Step::AddIndex {
            table: "api_key",
            name: "api_key_shape",
            definition: "INDEX api_key_shape ON api_key(key_shape)",
        });
        steps.push(Step::Sql(match self {
            Dialect::Sqlite => "CREATE TABLE IF NOT EXISTS rate_counter (
                credential_kind INTEGER NOT NULL,
                credential_id INTEGER NOT NULL,
                window_start INTEGER NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (credential_kind, credential_id, window_start))"
                .to_owned(),
            Dialect::Mysql => "CREATE TABLE IF NOT EXISTS rate_counter (
                credential_kind TINYINT NOT NULL,
                credential_id BIGINT NOT NULL,
                window_start BIGINT NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (credential_kind, credential_id, window_start)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                .to_owned(),
        }));
        steps
    }

    fn v1(self) -> Vec<String> {
        let credential_table = |table: &str| match self {
            Dialect::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {table} (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        client_id INTEGER NOT NULL REFERENCES client(id),
                        name TEXT NOT NULL,
                        key_hash TEXT NOT NULL UNIQUE,
                        key_prefix TEXT NOT NULL,
                        scopes TEXT NOT NULL,
                        is_active INTEGER NOT NULL DEFAULT 1,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER,
                        revoked_at INTEGER,
                        last_used_at INTEGER,
                        usage_count INTEGER NOT NULL DEFAULT 0)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {table}_client ON {table}(client_id)"),
            ],
            Dialect::Mysql => vec![format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                    client_id BIGINT NOT NULL,
                    name VARCHAR(255) NOT NULL,
                    key_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    key_prefix VARCHAR(16) CHARACTER SET ascii NOT NULL,
                    scopes VARCHAR(4200) CHARACTER SET ascii NOT NULL,
                    is_active TINYINT NOT NULL DEFAULT 1,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NULL,
                    revoked_at BIGINT NULL,
                    last_used_at BIGINT NULL,
                    usage_count BIGINT NOT NULL DEFAULT 0,
                    UNIQUE KEY {table}_hash (key_hash),
                    KEY {table}_client (client_id),
                    CONSTRAINT {table}_client_fk FOREIGN KEY (client_id) REFERENCES client(id)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            )],
        };
        let mut statements = Vec::new();
        match self {
            Dialect::Sqlite => {
                statements.push(
                    "CREATE TABLE IF NOT EXISTS client (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        name TEXT NOT NULL,
                        email TEXT NOT NULL,
                        organization TEXT,
                        is_active INTEGER NOT NULL DEFAULT 1,
                        created_at INTEGER NOT NULL,
                        deactivated_at INTEGER)"
                        .to_owned(),
                );
                statements.extend(credential_table("api_key"));
                statements.extend(credential_table("ai_token"));
                statements.extend(
                    [
                        "CREATE TABLE IF NOT EXISTS usage_log (
                            id INTEGER PRIMARY KEY AUTOINCREMENT,
                            credential_kind INTEGER NOT NULL,
                            credential_id INTEGER,
                            client_id INTEGER,
                            created_at INTEGER NOT NULL,
                            ip TEXT,
                            endpoint TEXT,
                            status INTEGER NOT NULL)",
                        "CREATE INDEX IF NOT EXISTS usage_log_time ON usage_log(created_at)",
                        "CREATE INDEX IF NOT EXISTS usage_log_client ON usage_log(client_id, created_at)",
                        "CREATE INDEX IF NOT EXISTS usage_log_credential ON usage_log(credential_kind, credential_id, created_at)",
                        "CREATE TABLE IF NOT EXISTS change_feed (
                            id INTEGER PRIMARY KEY AUTOINCREMENT,
                            credential_kind INTEGER NOT NULL,
                            key_hash TEXT NOT NULL,
                            reason TEXT NOT NULL,
                            created_at INTEGER NOT NULL)",
                        "CREATE TABLE IF NOT EXISTS audit_log (
                            id INTEGER PRIMARY KEY AUTOINCREMENT,
                            created_at INTEGER NOT NULL,
                            actor TEXT NOT NULL,
                            source TEXT NOT NULL,
                            ip TEXT,
                            action TEXT NOT NULL,
                            target_type TEXT NOT NULL,
                            target_id INTEGER,
                            detail TEXT)",
                        "CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(created_at)",
                    ]
                    .map(str::to_owned),
                );
            }
            Dialect::Mysql => {
                statements.push(
                    "CREATE TABLE IF NOT EXISTS client (
                        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                        name VARCHAR(255) NOT NULL,
                        email VARCHAR(255) NOT NULL,
                        organization VARCHAR(255) NULL,
                        is_active TINYINT NOT NULL DEFAULT 1,
                        created_at BIGINT NOT NULL,
                        deactivated_at BIGINT NULL
                    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                        .to_owned(),
                );
                statements.extend(credential_table("api_key"));
                statements.extend(credential_table("ai_token"));
                statements.extend(
                    [
                        "CREATE TABLE IF NOT EXISTS usage_log (
                            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                            credential_kind TINYINT NOT NULL,
                            credential_id BIGINT NULL,
                            client_id BIGINT NULL,
                            created_at BIGINT NOT NULL,
                            ip VARCHAR(45) NULL,
                            endpoint VARCHAR(255) NULL,
                            status TINYINT NOT NULL,
                            KEY usage_log_time (created_at),
                            KEY usage_log_client (client_id, created_at),
                            KEY usage_log_credential (credential_kind, credential_id, created_at)
                        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                        "CREATE TABLE IF NOT EXISTS change_feed (
                            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                            credential_kind TINYINT NOT NULL,
                            key_hash CHAR(64) CHARACTER SET ascii NOT NULL,
                            reason VARCHAR(32) NOT NULL,
                            created_at BIGINT NOT NULL
                        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                        "CREATE TABLE IF NOT EXISTS audit_log (
                            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                            created_at BIGINT NOT NULL,
                            actor VARCHAR(255) NOT NULL,
                            source VARCHAR(16) NOT NULL,
                            ip VARCHAR(45) NULL,
                            action VARCHAR(64) NOT NULL,
                            target_type VARCHAR(32) NOT NULL,
                            target_id BIGINT NULL,
                            detail VARCHAR(1024) NULL,
                            KEY audit_log_time (created_at)
                        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                    ]
                    .map(str::to_owned),
                );
            }
        }
        statements
    }

    /// Admin accounts of the web interface. Until version 2 the web crate
    /// created this table itself with the same definition, so `IF NOT
    /// EXISTS` adopts such a table as it is.
    fn v2(self) -> Vec<String> {
        vec![match self {
            Dialect::Sqlite => "CREATE TABLE IF NOT EXISTS admin_user (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                last_login_at INTEGER NULL)"
                .to_owned(),
            Dialect::Mysql => "CREATE TABLE IF NOT EXISTS admin_user (
                id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                username VARCHAR(64) NOT NULL,
                password_hash VARCHAR(255) NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                last_login_at BIGINT NULL,
                UNIQUE KEY uq_admin_user_username (username)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
                .to_owned(),
        }]
    }

    /// Validations that matched no stored credential, counted per minute,
    /// kind, source (see `model::rejection_bucket`) and status instead of a
    /// row each.
    fn v3(self) -> Vec<String> {
        vec![match self {
            Dialect::Sqlite => "CREATE TABLE IF NOT EXISTS usage_rejected (
                minute INTEGER NOT NULL,
                credential_kind INTEGER NOT NULL,
                ip TEXT NOT NULL,
                status INTEGER NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (minute, credential_kind, ip, status))"
                .to_owned(),
            Dialect::Mysql => "CREATE TABLE IF NOT EXISTS usage_rejected (
                minute BIGINT NOT NULL,
                credential_kind TINYINT NOT NULL,
                ip VARCHAR(45) CHARACTER SET ascii NOT NULL,
                status TINYINT NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (minute, credential_kind, ip, status)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                .to_owned(),
        }]
    }

    /// Where each host's shared usage queue has been written up to, so a
    /// new leader never writes a record twice.
    fn v5(self) -> String {
        match self {
            Dialect::Sqlite => "CREATE TABLE IF NOT EXISTS usage_cursor (
                queue TEXT NOT NULL PRIMARY KEY,
                position INTEGER NOT NULL)"
                .to_owned(),
            Dialect::Mysql => "CREATE TABLE IF NOT EXISTS usage_cursor (
                queue VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
                position BIGINT NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                .to_owned(),
        }
    }

    /// Key lifecycle: IP allowlists and rotation links on credentials, an
    /// idle-revoke policy on clients.
    fn v6(self) -> Vec<Step> {
        let int = match self {
            Dialect::Sqlite => "INTEGER",
            Dialect::Mysql => "BIGINT",
        };
        let mut steps = Vec::new();
        for table in ["api_key", "ai_token"] {
            steps.push(Step::add_column(
                table,
                "allowed_ips",
                match self {
                    Dialect::Sqlite => "TEXT NULL".to_owned(),
                    Dialect::Mysql => "VARCHAR(4096) CHARACTER SET ascii NULL".to_owned(),
                },
            ));
            steps.push(Step::add_column(
                table,
                "rotated_from",
                format!("{int} NULL"),
            ));
        }
        steps.push(Step::add_column(
            "client",
            "idle_revoke_ms",
            format!("{int} NULL"),
        ));
        steps
    }

    /// Admin roles (existing accounts stay admins) and disabled accounts;
    /// indexes for searching the audit log by actor and action.
    fn v7(self) -> Vec<Step> {
        let (role, tiny) = match self {
            Dialect::Sqlite => (
                "TEXT NOT NULL DEFAULT 'admin'",
                "INTEGER NOT NULL DEFAULT 1",
            ),
            Dialect::Mysql => (
                "VARCHAR(16) NOT NULL DEFAULT 'admin'",
                "TINYINT NOT NULL DEFAULT 1",
            ),
        };
        vec![
            Step::add_column("admin_user", "role", role.to_owned()),
            Step::add_column("admin_user", "is_active", tiny.to_owned()),
            Step::AddIndex {
                table: "audit_log",
                name: "audit_log_actor",
                definition: "INDEX audit_log_actor ON audit_log(actor, created_at)",
            },
            Step::AddIndex {
                table: "audit_log",
                name: "audit_log_action",
                definition: "INDEX audit_log_action ON audit_log(action, created_at)",
            },
        ]
    }

    /// Daily counts per credential and status, kept by every usage batch,
    /// so statistics never scan the raw log (which `keygen prune` trims).
    /// Filled from the existing log once, when the table is made.
    fn v8(self) -> Vec<Step> {
        let table = match self {
            Dialect::Sqlite => {
                "CREATE TABLE IF NOT EXISTS usage_daily (
                day INTEGER NOT NULL,
                credential_kind INTEGER NOT NULL,
                credential_id INTEGER NOT NULL,
                client_id INTEGER NOT NULL,
                status INTEGER NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (day, credential_kind, credential_id, status))"
            }
            Dialect::Mysql => {
                "CREATE TABLE IF NOT EXISTS usage_daily (
                day INT NOT NULL,
                credential_kind TINYINT NOT NULL,
                credential_id BIGINT NOT NULL,
                client_id BIGINT NOT NULL,
                status TINYINT NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (day, credential_kind, credential_id, status),
                KEY usage_daily_client (client_id, day)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            }
        };
        let day = self.int_div("created_at", crate::model::DAY_MS);
        let mut steps = vec![Step::Sql(table.to_owned())];
        if self == Dialect::Sqlite {
            steps.push(Step::Sql(
                "CREATE INDEX IF NOT EXISTS usage_daily_client ON usage_daily(client_id, day)"
                    .to_owned(),
            ));
        }
        steps.push(Step::Sql(format!(
            "{} INTO usage_daily (day, credential_kind, credential_id, client_id, status, count) \
             SELECT {day}, credential_kind, credential_id, MAX(client_id), status, COUNT(*) FROM usage_log \
             WHERE credential_id IS NOT NULL GROUP BY {day}, credential_kind, credential_id, status",
            self.insert_ignore()
        )));
        steps
    }

    /// Every index on `usage_log` is paid for by every validation (~1 µs
    /// of MariaDB CPU per row each, docs/BENCHMARKS.md), while its readers
    /// are pages and exports. One index is kept, by credential, with the
    /// primary key (the order rows were recorded in) as its tail: it serves
    /// the credential and client filters in id order. Time bounds become id
    /// bounds (ids grow with time, see `sql/log_order.rs`), so the time and
    /// client indexes go. The new index is built before the old go, so no
    /// query loses its index halfway.
    fn v9() -> Vec<Step> {
        vec![
            Step::AddIndex {
                table: "usage_log",
                name: "usage_log_by_credential",
                definition:
                    "INDEX usage_log_by_credential ON usage_log(credential_kind, credential_id)",
            },
            Step::DropIndex {
                table: "usage_log",
                name: "usage_log_credential",
            },
            Step::DropIndex {
                table: "usage_log",
                name: "usage_log_client",
            },
            Step::DropIndex {
                table: "usage_log",
                name: "usage_log_time",
            },
        ]
    }
}
