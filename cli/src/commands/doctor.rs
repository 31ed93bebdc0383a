//! `doctor`: checks an installation and explains each finding in plain
//! words with a hint. The facts come from the core (`heratio_keys_core::
//! doctor`); the judgement (what is too broad, how much skew is too much)
//! is here, because only this command makes it.
//!
//! Which checks run depends on the back end: `dsn`, `schema`, `feed`,
//! `retention` and `usage_drops` always; `sqlite_permissions` for SQLite;
//! `privileges`, `max_connections` and `clock` for MySQL/MariaDB. When the
//! database cannot be reached only `dsn` (and, for SQLite, the file
//! permissions, which may be the reason) is reported.

use heratio_keys_core::doctor::{
    sqlite_files, ConnectionFacts, FileFacts, ServerFacts, StoreFacts,
};
use heratio_keys_core::model::{now_ms, DAY_MS};
use heratio_keys_core::retention::{self, MIN_FEED_RETENTION_MS};
use heratio_keys_core::store::SCHEMA_VERSION;
use heratio_keys_core::{Backend, Dsn, ErrorKind, Result as CoreResult};
use serde::Serialize;

use super::{open_store, to_json};
use crate::args::DoctorArgs;
use crate::output::{duration_text, short_time};
use crate::{exit, Failure, Outcome};

mod privileges;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Level {
    Ok,
    Warn,
    Fail,
}

/// One finding.
#[derive(Debug, Serialize)]
pub(super) struct Check {
    name: &'static str,
    status: Level,
    /// What was found, in a sentence.
    message: String,
    /// What to do about it (`null` when nothing).
    hint: Option<String>,
}

fn check(name: &'static str, status: Level, message: String, hint: Option<&str>) -> Check {
    Check {
        name,
        status,
        message,
        hint: hint.map(str::to_owned),
    }
}

/// `keygen doctor --json`.
#[derive(Debug, Serialize)]
struct DoctorJson<'a> {
    /// The worst status of all checks.
    status: Level,
    /// The DSN, password masked.
    dsn: String,
    backend: &'static str,
    checks: &'a [Check],
}

/// Connections one validating process holds at most: the default of
/// `heratio_keys.db_connections` (php-ext/src/ini.rs): the request's own
/// and the host thread's while that process leads its host.
const CONNECTIONS_PER_WORKER: u64 = 2;
/// `keygen serve`'s pool (`Connections::default().max`).
const SERVE_CONNECTIONS: u64 = 16;
/// Skew the clock check tolerates silently, and the skew it fails at.
const SKEW_WARN_MS: i64 = 2_000;
const SKEW_FAIL_MS: i64 = 60_000;

pub(super) fn doctor(dsn: &Dsn, json: bool, a: &DoctorArgs) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let mut checks = Vec::new();
    let backend = store.backend();
    let mut code = exit::OK;
    match store.facts() {
        Ok(facts) => {
            checks.push(check(
                "dsn",
                Level::Ok,
                format!("Reached {}{}.", store.describe(), server_words(&facts)),
                None,
            ));
            checks.push(schema(&facts.schema_version));
            if let Dsn::Sqlite { path } = dsn {
                checks.push(sqlite_permissions(&sqlite_files(path)));
            }
            if let Some(server) = &facts.server {
                checks.push(privileges::check_privileges(&server.privileges));
                checks.push(max_connections(&server.connections, a.workers));
                checks.push(clock(server));
            }
            checks.push(feed(&facts));
            checks.push(retention(&facts));
            checks.push(usage_drops());
        }
        Err(e) => {
            if e.kind() == ErrorKind::Unavailable {
                code = exit::UNREACHABLE;
            }
            checks.push(unreachable(&e));
            if let Dsn::Sqlite { path } = dsn {
                checks.push(sqlite_permissions(&sqlite_files(path)));
            }
        }
    }
    let worst = checks.iter().map(|c| c.status).max().unwrap_or(Level::Ok);
    if code == exit::OK && worst == Level::Fail {
        code = exit::REFUSED;
    }
    let stdout = if json {
        to_json(&DoctorJson {
            status: worst,
            dsn: dsn.to_string(),
            backend: backend_name(backend),
            checks: &checks,
        })?
    } else {
        render(dsn, &checks)
    };
    Ok(Outcome {
        stdout,
        notice: None,
        code,
    })
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite",
        _ => "mysql",
    }
}

fn server_words(facts: &StoreFacts) -> String {
    let Some(s) = &facts.server else {
        return String::new();
    };
    match (&s.version, &s.account) {
        (Ok(v), Ok(a)) => format!(" (server {v}, account {a})"),
        (Ok(v), Err(_)) => format!(" (server {v})"),
        _ => String::new(),
    }
}

fn render(dsn: &Dsn, checks: &[Check]) -> String {
    let mut out = format!("keygen doctor: {dsn}\n\n");
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        let label = match c.status {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{label}  {:<width$}  {}\n", c.name, c.message));
        if let Some(hint) = &c.hint {
            out.push_str(&format!("      {:<width$}  → {hint}\n", ""));
        }
    }
    let n = |l: Level| checks.iter().filter(|c| c.status == l).count();
    out.push_str(&format!(
        "\n{} ok, {} warning(s), {} failed.\n",
        n(Level::Ok),
        n(Level::Warn),
        n(Level::Fail)
    ));
    out
}

fn unreachable(e: &heratio_keys_core::Error) -> Check {
    let hint = match e.kind() {
        ErrorKind::Unavailable => {
            "Check the DSN's host, port, user and password, that the server runs and accepts TCP \
             connections from this host, and (SQLite) that this user may read the file."
        }
        ErrorKind::SchemaOutdated => {
            "Run `keygen install` with this DSN, or correct the path if the database is elsewhere."
        }
        _ => "Read the message; `keygen install` creates or migrates the schema.",
    };
    // The core's messages name the host or file, never the password.
    check(
        "dsn",
        Level::Fail,
        format!("Cannot use the database: {}", e.message()),
        Some(hint),
    )
}

fn schema(version: &CoreResult<Option<u32>>) -> Check {
    match version {
        Ok(Some(v)) if *v == SCHEMA_VERSION => check(
            "schema",
            Level::Ok,
            format!("Schema version {v}, the one this keygen writes."),
            None,
        ),
        Ok(Some(v)) if *v < SCHEMA_VERSION => check(
            "schema",
            Level::Fail,
            format!("Schema version {v} is older than this keygen's ({SCHEMA_VERSION})."),
            Some("Run `keygen install` (as the owner account): it migrates in place and is idempotent."),
        ),
        Ok(Some(v)) => check(
            "schema",
            Level::Fail,
            format!(
                "Schema version {v} is newer than this keygen's ({SCHEMA_VERSION}): a newer release installed it."
            ),
            Some("Upgrade keygen, the PHP extension and libheratio_keys on this host to that release."),
        ),
        Ok(None) => check(
            "schema",
            Level::Fail,
            "The database is reachable but holds no heratio-keys schema.".to_owned(),
            Some("Run `keygen install` with this DSN."),
        ),
        Err(e) => check(
            "schema",
            Level::Fail,
            format!("Cannot read the schema version: {}", e.message()),
            Some("Run `keygen install`; if it is installed, grant this account SELECT on schema_version."),
        ),
    }
}

fn sqlite_permissions(files: &[FileFacts]) -> Check {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut level = Level::Ok;
    for f in files {
        let Some(mode) = f.mode else {
            if !f.is_dir {
                notes.push(format!("{} does not exist", f.path.display()));
            }
            continue;
        };
        let shown = format!("{} (mode {mode:04o})", f.path.display());
        if f.is_dir {
            if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                problems.push(format!("{shown}: any user may replace the database in it"));
                level = Level::Fail;
            } else if mode & 0o002 != 0 {
                problems.push(format!(
                    "{shown}: any user may create files in it (the -wal and -shm files before SQLite does)"
                ));
                level = level.max(Level::Warn);
            }
        } else if mode & 0o006 != 0 {
            problems.push(format!(
                "{shown}: any user on this host may {} it",
                if mode & 0o002 != 0 { "change" } else { "read" }
            ));
            level = Level::Fail;
        } else if mode & 0o020 != 0 {
            notes.push(format!("{shown} is writable by its group"));
        }
    }
    let (message, hint) = if problems.is_empty() {
        let mut m = "Only the owner (and at most its group) can read the database file".to_owned();
        if !notes.is_empty() {
            m.push_str(&format!("; {}", notes.join("; ")));
        }
        m.push('.');
        (m, None)
    } else {
        (
            format!(
                "The database holds key digests, admin password hashes and client addresses, but {}.",
                problems.join("; ")
            ),
            Some(
                "chmod 0600 (or 0640 for a group such as www-data) the file and its -wal/-shm files, \
                 and chmod 0700 (or 0750) its directory; see docs/install.md, section 4b.",
            ),
        )
    };
    check("sqlite_permissions", level, message, hint)
}

fn max_connections(facts: &CoreResult<ConnectionFacts>, workers: Option<u32>) -> Check {
    let c = match facts {
        Ok(c) => c,
        Err(e) => {
            return check(
                "max_connections",
                Level::Warn,
                format!(
                    "Cannot read the server's connection limits: {}",
                    e.message()
                ),
                None,
            )
        }
    };
    let now = format!(
        "max_connections is {}{}, {} open now, at most {} since the server started",
        c.max_connections,
        if c.max_user_connections > 0 {
            format!(" ({} for this account)", c.max_user_connections)
        } else {
            String::new()
        },
        c.connected,
        c.max_used
    );
    let Some(workers) = workers else {
        return check(
            "max_connections",
            Level::Ok,
            format!("{now}."),
            Some("Run `keygen doctor --workers N` with the php-fpm workers of every host together to check the limit against them."),
        );
    };
    let validators = u64::from(workers) * CONNECTIONS_PER_WORKER;
    let need = validators + SERVE_CONNECTIONS;
    let sizing = format!(
        "{workers} workers × {CONNECTIONS_PER_WORKER} connections (heratio_keys.db_connections' default) \
         + {SERVE_CONNECTIONS} for keygen serve = {need}"
    );
    let hint = "Raise max_connections (and max_user_connections, if set) to the worst case plus \
                AtoM's own connections and some headroom, or lower heratio_keys.db_connections \
                or the workers; docs/shared-cache.md, section Connections, has the formula.";
    let account_limit = c.max_user_connections > 0 && c.max_user_connections < need;
    if need > c.max_connections || account_limit {
        check(
            "max_connections",
            Level::Fail,
            format!("At worst {sizing} connections, over the limit: {now}."),
            Some(hint),
        )
    } else if need.saturating_mul(10) > c.max_connections.saturating_mul(8) {
        check(
            "max_connections",
            Level::Warn,
            format!("At worst {sizing} connections, more than 80 % of the limit, before AtoM's own: {now}."),
            Some(hint),
        )
    } else {
        check(
            "max_connections",
            Level::Ok,
            format!("At worst {sizing} connections, within the limit: {now}."),
            None,
        )
    }
}

fn clock(server: &ServerFacts) -> Check {
    let r = match &server.clock {
        Ok(r) => r,
        Err(e) => {
            return check(
                "clock",
                Level::Warn,
                format!("Cannot read the database's clock: {}", e.message()),
                None,
            )
        }
    };
    let skew = r.skew_ms();
    // Only what the round trip cannot explain counts.
    let sure = skew.abs().saturating_sub(r.uncertainty_ms());
    let said = format!(
        "The database's clock is {} ms {} this host's (± {} ms)",
        skew.abs(),
        if skew >= 0 { "ahead of" } else { "behind" },
        r.uncertainty_ms()
    );
    let why = "Every host stamps expiry, rate-limit hours and usage with its own clock, and the \
               database's is the reference they share";
    let hint =
        "Run an NTP client (systemd-timesyncd, chrony) on this host and on the database server.";
    if sure > SKEW_FAIL_MS {
        check(
            "clock",
            Level::Fail,
            format!("{said}. {why}: keys expire and rate limits reset at different times on different hosts."),
            Some(hint),
        )
    } else if sure > SKEW_WARN_MS {
        check(
            "clock",
            Level::Warn,
            format!("{said}. {why}, so hosts disagree by this much on expiry and hourly limits."),
            Some(hint),
        )
    } else {
        check("clock", Level::Ok, format!("{said}."), None)
    }
}

fn feed(facts: &StoreFacts) -> Check {
    match &facts.feed {
        Ok(f) => {
            let kept = match (f.oldest_at, f.newest_at) {
                (Some(old), Some(new)) => format!(
                    ", {} rows kept from {} to {} UTC",
                    f.rows,
                    short_time(old),
                    short_time(new)
                ),
                _ => ", no rows kept".to_owned(),
            };
            check(
                "feed",
                Level::Ok,
                format!(
                    "The change feed can be read (newest id {}{kept}). Its age says nothing about lag: \
                     rows are written only when keys change. Each validating process polls it every \
                     500 ms and reports how long ago its last successful poll was.",
                    f.head
                ),
                Some("For a process's lag read feed_lag_ms from heratio_keys_stats() (PHP) or the C stats call."),
            )
        }
        Err(e) => check(
            "feed",
            Level::Fail,
            format!(
                "The change feed cannot be read: {}. Validators with this account would never hear of revocations and stop serving cached keys after the fail-closed bound.",
                e.message()
            ),
            Some("Grant the account SELECT on change_feed (docs/install.md, section 4a)."),
        ),
    }
}

/// Whether `keygen prune` seems to run: the oldest rows against the
/// retention the timer is configured with (the same environment variables).
fn retention(facts: &StoreFacts) -> Check {
    let now = now_ms();
    let policy = match retention::from_env(now) {
        Ok(policy) => policy,
        Err(e) => {
            return check(
                "retention",
                Level::Warn,
                format!("The retention in this environment is not valid: {}", e.message()),
                Some("Fix it where the timer's environment file sets it (/etc/heratio-keys/keygen.env in the package): keygen prune refuses it and keygen serve does not prune."),
            )
        }
    };
    let usage_keep = policy.usage_ms;
    let feed_keep = policy.feed_ms.max(MIN_FEED_RETENTION_MS);
    // A day of slack: the timer may not have run yet today.
    let overdue = |oldest: Option<i64>, keep: i64| oldest.filter(|t| now - t > keep + DAY_MS);
    let usage_old = facts
        .usage
        .as_ref()
        .ok()
        .and_then(|u| overdue(u.oldest_at, usage_keep));
    let feed_old = facts
        .feed
        .as_ref()
        .ok()
        .and_then(|f| overdue(f.oldest_at, feed_keep));
    let mut late = Vec::new();
    if let Some(t) = usage_old {
        late.push(format!(
            "raw usage from {} UTC (kept {})",
            short_time(t),
            duration_text(usage_keep)
        ));
    }
    if let Some(t) = feed_old {
        late.push(format!(
            "change-feed rows from {} UTC (kept {})",
            short_time(t),
            duration_text(feed_keep)
        ));
    }
    if late.is_empty() {
        let usage = match &facts.usage {
            Ok(u) => u.oldest_at.map_or_else(
                || "no raw usage rows".to_owned(),
                |t| format!("oldest raw usage from {} UTC", short_time(t)),
            ),
            Err(_) => "raw usage not readable by this account".to_owned(),
        };
        check(
            "retention",
            Level::Ok,
            format!(
                "Nothing is older than its retention ({usage}; usage kept {}, feed {}).",
                duration_text(usage_keep),
                duration_text(feed_keep)
            ),
            None,
        )
    } else {
        check(
            "retention",
            Level::Warn,
            format!(
                "The database keeps {}: `keygen prune` does not seem to run.",
                late.join(" and ")
            ),
            Some("Enable the heratio-keys prune timer, or run `keygen prune` daily from cron (as the owner account); `keygen serve` also prunes on its maintenance pass."),
        )
    }
}

fn usage_drops() -> Check {
    check(
        "usage_drops",
        Level::Ok,
        "Dropped usage records are counted in the memory of each validating process, not in the \
         database, so keygen cannot see them from here."
            .to_owned(),
        Some("Read usage_dropped (and host_dropped with the shared cache) from heratio_keys_stats() in PHP, or the C stats call; a growing count means the database is too slow or unreachable."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(mode: u32, is_dir: bool) -> FileFacts {
        FileFacts {
            path: PathBuf::from(if is_dir { "/d" } else { "/d/k.db" }),
            mode: Some(mode),
            uid: Some(0),
            is_dir,
        }
    }

    #[test]
    fn sqlite_modes_are_judged() {
        let level = |f: &[FileFacts]| sqlite_permissions(f).status;
        assert_eq!(level(&[file(0o600, false), file(0o700, true)]), Level::Ok);
        assert_eq!(level(&[file(0o640, false), file(0o750, true)]), Level::Ok);
        assert_eq!(level(&[file(0o644, false), file(0o700, true)]), Level::Fail);
        assert_eq!(level(&[file(0o602, false), file(0o700, true)]), Level::Fail);
        assert_eq!(level(&[file(0o600, false), file(0o777, true)]), Level::Fail);
        assert_eq!(
            level(&[file(0o600, false), file(0o1777, true)]),
            Level::Warn
        );
    }

    #[test]
    fn connections_are_weighed_against_workers() {
        let server = ConnectionFacts {
            max_connections: 151,
            max_user_connections: 0,
            connected: 3,
            max_used: 10,
        };
        let facts = Ok(server);
        let level = |w| max_connections(&facts, w).status;
        assert_eq!(level(None), Level::Ok);
        assert_eq!(level(Some(40)), Level::Ok); // 96
        assert_eq!(level(Some(55)), Level::Warn); // 126 > 120.8
        assert_eq!(level(Some(68)), Level::Fail); // 152
        let limited = Ok(ConnectionFacts {
            max_user_connections: 20,
            ..server
        });
        assert_eq!(max_connections(&limited, Some(4)).status, Level::Fail);
    }
}
