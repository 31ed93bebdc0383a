//! The commands: each calls the library once or twice and renders the answer;
//! one module per group (`clients`, `credentials`, `lifecycle` for rotation,
//! expiry, names, allowlists and the maintenance pass, `validate`, `stats`,
//! `logs` for the audit log and the usage export, `import` for Heratio's
//! keys, `admin` for the schema, the web server and admin accounts, `prune`
//! for retention, `doctor` for the installation checks).

use std::sync::Arc;

use heratio_keys_core::model::{parse_duration, parse_rfc3339};
use heratio_keys_core::{store, Actor, Dsn, KeyStore, Kind, Source};

use crate::args::{Cli, Command, DEFAULT_DSN, DSN_ENV};
use crate::{exit, generate, os, Failure, Outcome};

mod admin;
mod clients;
mod credentials;
mod doctor;
mod import;
mod lifecycle;
mod logs;
mod prune;
mod stats;
mod validate;

pub(super) fn ok(stdout: String) -> Result<Outcome, Failure> {
    Ok(Outcome {
        stdout,
        notice: None,
        code: exit::OK,
    })
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Failure {
            code: exit::INTERNAL,
            message: format!("cannot encode JSON: {e}"),
        })
}

/// `--dsn`, else `$HERATIO_KEYS_DSN` (if not empty), else the default.
pub(super) fn resolve_dsn(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var(DSN_ENV).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_DSN.to_owned())
}

pub(super) fn open_store(dsn: &Dsn) -> Result<Arc<dyn KeyStore>, Failure> {
    Ok(store::open(dsn)?)
}

pub(super) fn actor() -> Actor {
    Actor::new(os::user_name(), Source::Cli)
}

pub fn run(cli: Cli) -> Result<Outcome, Failure> {
    let json = cli.json;
    // Generated from the grammar alone: no store, so no DSN to resolve.
    match cli.command {
        Command::Completions { shell } => return ok(generate::completions(shell)),
        Command::Man => return ok(generate::man_page()),
        _ => {}
    }
    let dsn_text = resolve_dsn(cli.dsn);
    let dsn = Dsn::parse(&dsn_text)?;
    match cli.command {
        Command::Install => admin::install(&dsn, json),
        Command::ClientCreate {
            name,
            email,
            organization,
        } => clients::create(&dsn, json, name, email, organization),
        Command::ClientList => clients::list(&dsn, json),
        Command::ClientDeactivate { id } => clients::deactivate(&dsn, json, id),
        Command::ApiGenerate(a) => credentials::generate(&dsn, json, Kind::ApiKey, a),
        Command::AiGenerate(a) => credentials::generate(&dsn, json, Kind::AiToken, a),
        Command::ApiList(a) => credentials::list(&dsn, json, Kind::ApiKey, a.client_id),
        Command::AiList(a) => credentials::list(&dsn, json, Kind::AiToken, a.client_id),
        Command::ApiRevoke(a) => credentials::revoke(&dsn, json, Kind::ApiKey, a.id),
        Command::AiRevoke(a) => credentials::revoke(&dsn, json, Kind::AiToken, a.id),
        Command::ApiValidate(a) => validate::validate(&dsn, json, Kind::ApiKey, a),
        Command::AiValidate(a) => validate::validate(&dsn, json, Kind::AiToken, a),
        Command::ApiLimit(a) => credentials::limit(&dsn, json, Kind::ApiKey, a),
        Command::AiLimit(a) => credentials::limit(&dsn, json, Kind::AiToken, a),
        Command::ApiMetadata(a) => credentials::metadata(&dsn, json, Kind::ApiKey, a),
        Command::AiMetadata(a) => credentials::metadata(&dsn, json, Kind::AiToken, a),
        Command::ApiRotate(a) => lifecycle::rotate(&dsn, json, Kind::ApiKey, a),
        Command::AiRotate(a) => lifecycle::rotate(&dsn, json, Kind::AiToken, a),
        Command::ApiExpire(a) => lifecycle::expire(&dsn, json, Kind::ApiKey, a),
        Command::AiExpire(a) => lifecycle::expire(&dsn, json, Kind::AiToken, a),
        Command::ApiRename(a) => lifecycle::rename(&dsn, json, Kind::ApiKey, a),
        Command::AiRename(a) => lifecycle::rename(&dsn, json, Kind::AiToken, a),
        Command::ApiAllowIp(a) => lifecycle::allow_ip(&dsn, json, Kind::ApiKey, a),
        Command::AiAllowIp(a) => lifecycle::allow_ip(&dsn, json, Kind::AiToken, a),
        Command::ClientUpdate(a) => clients::update(&dsn, json, a),
        Command::ClientReactivate { id } => clients::reactivate(&dsn, json, id),
        Command::Maintain { now, dry_run } => {
            lifecycle::maintain(&dsn, json, now.as_deref(), dry_run)
        }
        Command::Prune(a) => prune::prune(&dsn, json, &a),
        Command::Doctor(a) => doctor::doctor(&dsn, json, &a),
        Command::Audit(a) => logs::audit(&dsn, json, a),
        Command::UsageExport(a) => logs::usage_export(&dsn, json, a),
        Command::ImportHeratio(a) => import::heratio(&dsn, json, a),
        Command::Stats { client, days, top } => stats::stats(&dsn, json, client, days, top),
        Command::Serve(a) => admin::serve(dsn_text, a),
        Command::AdminCreate {
            user,
            reset_password,
            role,
        } => admin::admin_create(&dsn_text, json, &user, reset_password, role),
        Command::AdminList => admin::admin_list(&dsn, json),
        Command::AdminDisable { user } => admin::admin_set_active(&dsn, json, &user, false),
        Command::AdminEnable { user } => admin::admin_set_active(&dsn, json, &user, true),
        Command::AdminRole { user, role } => admin::admin_role(&dsn, json, &user, role),
        Command::Completions { .. } | Command::Man => ok(String::new()),
    }
}

/// A point in time given on the command line (`--since`, `--until`): RFC
/// 3339, a UTC date (`2026-03-01`, its midnight), or a duration meaning that
/// long before `now` (`7d`).
pub(super) fn parse_when(flag: &str, text: &str, now: i64) -> Result<i64, Failure> {
    let t = text.trim();
    let is_date = t.len() == 10
        && t.bytes().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    let parsed = if is_date {
        parse_rfc3339(&format!("{t}T00:00:00Z"))
    } else if t.ends_with(|c: char| c.is_ascii_alphabetic()) && !t.contains(':') {
        parse_duration(t).map(|d| now.saturating_sub(d))
    } else {
        parse_rfc3339(t)
    };
    parsed.map_err(|e| {
        Failure::usage(format!(
            "{flag}: {} (use RFC 3339, YYYY-MM-DD or a duration such as 7d)",
            e.message()
        ))
    })
}

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_dates_or_durations_ago() {
        let now = parse_rfc3339("2026-11-23T12:00:00Z").expect("now");
        let at = |t: &str| parse_when("--since", t, now).map_err(|f| f.message);
        assert_eq!(
            at("2026-03-01"),
            Ok(parse_rfc3339("2026-03-01T00:00:00Z").expect("t"))
        );
        assert_eq!(
            at("2026-03-01T10:00:00+01:00"),
            Ok(parse_rfc3339("2026-03-01T09:00:00Z").expect("t"))
        );
        assert_eq!(at("7d"), Ok(now - 7 * 86_400_000));
        assert_eq!(at("12h"), Ok(now - 12 * 3_600_000));
        for bad in ["", "yesterday", "2026-13-01", "2026-3-1", "0d", "7y"] {
            let e = at(bad).expect_err(bad);
            assert!(e.starts_with("--since: "), "{e}");
        }
    }
}
