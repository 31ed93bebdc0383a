//! The `privileges` check (MySQL/MariaDB): what the account may do in this
//! database against what validators need (docs/install.md, section 4a).
//!
//! Missing a privilege validators need fails: they would answer
//! `unavailable` or lose usage. Holding more is a warning, not a failure:
//! everything works, only a stolen password reaches further. The owner
//! account that runs `keygen install` and `keygen serve` is meant to hold
//! the whole database, so for it the warning is expected; the validators'
//! DSN should never draw it.

use std::collections::BTreeSet;

use heratio_keys_core::doctor::{GrantLevel, Privilege};
use heratio_keys_core::Result as CoreResult;

use super::{check, Check, Level};

/// What a validating process runs (core/src/store/sql/validation.rs,
/// usage.rs, rates.rs): privilege, table and, for column grants, columns.
/// cli/tests/operations.rs holds this list to docs/install.md's GRANT block.
const NEEDED: &[(&str, &str, &[&str])] = &[
    ("SELECT", "client", &[]),
    ("SELECT", "api_key", &[]),
    ("SELECT", "ai_token", &[]),
    ("SELECT", "change_feed", &[]),
    ("SELECT", "schema_version", &[]),
    ("INSERT", "usage_log", &[]),
    ("UPDATE", "api_key", &["usage_count", "last_used_at"]),
    ("UPDATE", "ai_token", &["usage_count", "last_used_at"]),
    ("INSERT", "usage_daily", &[]),
    ("UPDATE", "usage_daily", &["count"]),
    ("SELECT", "usage_daily", &["count"]),
    ("INSERT", "usage_rejected", &[]),
    ("UPDATE", "usage_rejected", &["count"]),
    ("SELECT", "usage_rejected", &["count"]),
    ("SELECT", "rate_counter", &[]),
    ("INSERT", "rate_counter", &[]),
    ("UPDATE", "rate_counter", &[]),
    // With the shared cache: the host queue's written-up-to position.
    ("SELECT", "usage_cursor", &[]),
    ("INSERT", "usage_cursor", &[]),
    ("UPDATE", "usage_cursor", &[]),
];

/// Whether `held` grants `name` on `table` (every one of `columns`).
fn holds(held: &[Privilege], name: &str, table: &str, columns: &[&str]) -> bool {
    let wide = |p: &Privilege| {
        (p.name == name || p.name == "ALL PRIVILEGES")
            && match &p.level {
                GrantLevel::Global | GrantLevel::Database(_) => true,
                GrantLevel::Table(t) => t == table,
                GrantLevel::Column { .. } => false,
            }
    };
    if held.iter().any(wide) {
        return true;
    }
    !columns.is_empty()
        && columns.iter().all(|col| {
            held.iter().any(|p| {
                p.name == name
                    && matches!(&p.level, GrantLevel::Column { table: t, column: c }
                        if t == table && c == col)
            })
        })
}

pub(super) fn check_privileges(privileges: &CoreResult<Vec<Privilege>>) -> Check {
    let held = match privileges {
        Ok(p) => p,
        Err(e) => {
            return check(
                "privileges",
                Level::Warn,
                format!("Cannot read this account's privileges: {}", e.message()),
                None,
            )
        }
    };
    let missing: Vec<String> = NEEDED
        .iter()
        .filter(|(name, table, columns)| !holds(held, name, table, columns))
        .map(|(name, table, columns)| {
            if columns.is_empty() {
                format!("{name} on {table}")
            } else {
                format!("{name} ({}) on {table}", columns.join(", "))
            }
        })
        .collect();
    if !missing.is_empty() {
        return check(
            "privileges",
            Level::Fail,
            format!(
                "This account lacks what validators need: {}. Validators using it would answer \
                 unavailable or fail to record usage.",
                missing.join(", ")
            ),
            Some("Run the runtime account's GRANT block of docs/install.md, section 4a (again after every upgrade)."),
        );
    }
    let mut broad = Vec::new();
    let global: BTreeSet<&str> = held
        .iter()
        .filter(|p| p.level == GrantLevel::Global && p.name != "USAGE")
        .map(|p| p.name.as_str())
        .collect();
    if !global.is_empty() {
        broad.push(format!(
            "global privileges ({}) that reach every database on the server",
            summary(&global)
        ));
    }
    let mut patterns: BTreeSet<&str> = BTreeSet::new();
    let database: BTreeSet<&str> = held
        .iter()
        .filter_map(|p| match &p.level {
            GrantLevel::Database(pattern) => {
                patterns.insert(pattern);
                Some(p.name.as_str())
            }
            _ => None,
        })
        .collect();
    if !database.is_empty() {
        let on: Vec<String> = patterns.iter().map(|p| format!("`{p}`.*")).collect();
        broad.push(format!(
            "{} on {} (every table, present and future)",
            summary(&database),
            on.join(", ")
        ));
    }
    if held.iter().any(|p| p.grantable) {
        broad.push("GRANT OPTION (it can hand its privileges to other accounts)".to_owned());
    }
    if broad.is_empty() {
        return check(
            "privileges",
            Level::Ok,
            "This account holds what validators need, by table and column, and nothing wider."
                .to_owned(),
            None,
        );
    }
    check(
        "privileges",
        Level::Warn,
        format!(
            "This account holds more than validators need: {}. That suits the owner account that \
             runs `keygen install` and `keygen serve`, not the DSN of php-fpm or C programs.",
            broad.join("; ")
        ),
        Some("Give validators the runtime account of docs/install.md, section 4a; never give them a global privilege or GRANT OPTION."),
    )
}

/// `ALL PRIVILEGES` when the set is every table privilege there is, else
/// the names.
fn summary(names: &BTreeSet<&str>) -> String {
    let all = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX",
    ];
    if names.contains("ALL PRIVILEGES")
        || (names.len() >= 15 && all.iter().all(|n| names.contains(n)))
    {
        "ALL PRIVILEGES".to_owned()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, level: GrantLevel) -> Privilege {
        Privilege {
            level,
            name: name.to_owned(),
            grantable: false,
        }
    }

    /// The runtime account of docs/install.md, plus what schema 8 added.
    fn runtime() -> Vec<Privilege> {
        let mut v = vec![p("USAGE", GrantLevel::Global)];
        for (name, table, columns) in NEEDED {
            if columns.is_empty() {
                v.push(p(name, GrantLevel::Table((*table).to_owned())));
            }
            for c in *columns {
                v.push(p(
                    name,
                    GrantLevel::Column {
                        table: (*table).to_owned(),
                        column: (*c).to_owned(),
                    },
                ));
            }
        }
        v
    }

    #[test]
    fn the_runtime_account_is_exactly_enough() {
        assert_eq!(check_privileges(&Ok(runtime())).status, Level::Ok);
        let mut less = runtime();
        less.retain(|x| x.level != GrantLevel::Table("change_feed".into()));
        let c = check_privileges(&Ok(less));
        assert_eq!(c.status, Level::Fail);
        assert!(c.message.contains("SELECT on change_feed"), "{}", c.message);
    }

    #[test]
    fn wide_grants_warn() {
        let mut owner = vec![p("USAGE", GrantLevel::Global)];
        for n in [
            "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX",
        ] {
            owner.push(p(n, GrantLevel::Database("heratio_keys".into())));
        }
        let c = check_privileges(&Ok(owner));
        assert_eq!(c.status, Level::Warn);
        assert!(c.message.contains("`heratio_keys`.*"), "{}", c.message);
        let mut root = runtime();
        root.push(Privilege {
            level: GrantLevel::Global,
            name: "SUPER".into(),
            grantable: true,
        });
        let c = check_privileges(&Ok(root));
        assert_eq!(c.status, Level::Warn);
        assert!(
            c.message.contains("global privileges (SUPER)"),
            "{}",
            c.message
        );
        assert!(c.message.contains("GRANT OPTION"), "{}", c.message);
    }
}
