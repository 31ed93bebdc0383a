//! The commands: each calls the library once or twice and renders the answer;
//! one module per group (`clients`, `credentials`, `validate`, `stats`,
//! `import` for Heratio's keys, `admin` for the schema, the web server and
//! admin accounts).

use std::sync::Arc;

use clap::CommandFactory;
use heratio_keys_core::{store, Actor, Dsn, KeyStore, Kind, Source};

use crate::args::{Cli, Command, DEFAULT_DSN, DSN_ENV};
use crate::{exit, os, Failure, Outcome};

mod admin;
mod clients;
mod credentials;
mod import;
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
    if let Command::Completions { shell } = cli.command {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "keygen", &mut buf);
        return ok(String::from_utf8_lossy(&buf).into_owned());
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
        Command::ImportHeratio(a) => import::heratio(&dsn, json, a),
        Command::Stats { client, days, top } => stats::stats(&dsn, json, client, days, top),
        Command::Serve(a) => admin::serve(dsn_text, a),
        Command::AdminCreate {
            user,
            reset_password,
        } => admin::admin_create(&dsn_text, json, &user, reset_password),
        Command::Completions { .. } => ok(String::new()),
    }
}

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
