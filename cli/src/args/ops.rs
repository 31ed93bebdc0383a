//! Grammar of the operations commands: `prune` (retention) and `doctor`
//! (checks of an installation). Their flags can also come from the
//! environment because the packaged systemd timer sets them through an
//! `EnvironmentFile`.

use clap::Args;
// The names live in the core: `keygen serve`'s maintenance pass reads them too.
pub use heratio_keys_core::retention::{
    AUDIT_RETENTION_ENV, FEED_RETENTION_ENV, USAGE_RETENTION_ENV,
};

pub const PRUNE_HELP: &str = "\
Example:
  keygen prune
  keygen prune --usage-retention 30d --audit-retention 730d --json

Deletes raw usage-log rows and per-minute rejection counts older than the usage
retention, change-feed rows older than the feed retention (at least 1h: a
stalled validator may still need them), rate counters of past hours, and audit
rows only when --audit-retention is given. Daily statistics (the rollups that
`keygen stats` and the dashboard read) are kept. Deletes in batches of 5000
rows, each its own transaction, so validation and usage writes never wait long.
Records one audit row (actor `maintenance`, action retention.prune) when it
deleted any history.";

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep raw usage rows this long: a number and a unit s, m, h, d or w
    #[arg(long, value_name = "DURATION", env = USAGE_RETENTION_ENV, default_value = "90d")]
    pub usage_retention: String,
    /// Keep change-feed rows this long (at least 1h)
    #[arg(long, value_name = "DURATION", env = FEED_RETENTION_ENV, default_value = "24h")]
    pub feed_retention: String,
    /// Keep audit rows this long (default: forever; `forever` says so)
    #[arg(long, value_name = "DURATION", env = AUDIT_RETENTION_ENV)]
    pub audit_retention: Option<String>,
    /// Count back from this instant instead of now (RFC 3339)
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
}

pub const DOCTOR_HELP: &str = "\
Example:
  keygen doctor
  keygen doctor --workers 40 --json

Checks, and explains in plain words: the database can be reached, its schema is
this keygen's, the database user holds no more privileges than needed (MariaDB),
the SQLite file is not readable by other users, MariaDB's max_connections fits
--workers validating processes, the host's clock agrees with the database's,
the change feed can be read, and where usage drops are counted. Each check is
ok, warn or fail, with a hint.

Exit status: 0 every check ok or warn, 1 a check failed, 2 usage error,
3 the database cannot be reached (the report is printed all the same).";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Processes validating against this database at once: php-fpm workers
    /// (pm.max_children) of every host together, plus C programs; each
    /// keeps its own small pool, with or without the shared cache. Checked
    /// against MariaDB's max_connections
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub workers: Option<u32>,
}
