//! The commands: each calls the library once or twice and renders the answer.

use std::sync::Arc;

use clap::CommandFactory;
use heratio_keys_core::model::{now_ms, parse_rfc3339, rfc3339};
use heratio_keys_core::{
    issue, store, Actor, Dsn, ErrorKind, IssueRequest, KeyStore, Kind, NewClient, Options, Request,
    Scopes, Source, StatsQuery, Status, Validation, Validator,
};

use crate::args::{Cli, Command, GenerateArgs, ServeArgs, ValidateArgs, DEFAULT_DSN, DSN_ENV};
use crate::output::{
    fields, short_time, ClientJson, CredentialJson, DeactivationJson, GeneratedJson, InstallJson,
    StatsJson, Table, ValidationJson,
};
use crate::{code_for, exit, os, Failure, Outcome};

/// The endpoint recorded in `usage_log` for validations made by keygen.
const CLI_ENDPOINT: &str = "cli";

fn ok(stdout: String) -> Result<Outcome, Failure> {
    Ok(Outcome {
        stdout,
        notice: None,
        code: exit::OK,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
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
fn resolve_dsn(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var(DSN_ENV).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_DSN.to_owned())
}

/// Refuses to work on a SQLite file that does not exist (opening it would
/// create an empty database), except for `install`.
fn require_existing(dsn: &Dsn) -> Result<(), Failure> {
    if let Dsn::Sqlite { path } = dsn {
        if !path.exists() {
            return Err(Failure {
                code: exit::STORE,
                message: format!(
                    "no keygen database at {}: run `keygen install` first (or pass --dsn)",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

fn open_store(dsn: &Dsn) -> Result<Arc<dyn KeyStore>, Failure> {
    Ok(store::open(dsn)?)
}

fn actor() -> Actor {
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
    if !matches!(cli.command, Command::Install) {
        require_existing(&dsn)?;
    }
    match cli.command {
        Command::Install => install(&dsn, json),
        Command::ClientCreate {
            name,
            email,
            organization,
        } => client_create(&dsn, json, name, email, organization),
        Command::ClientList => client_list(&dsn, json),
        Command::ClientDeactivate { id } => client_deactivate(&dsn, json, id),
        Command::ApiGenerate(a) => generate(&dsn, json, Kind::ApiKey, a),
        Command::AiGenerate(a) => generate(&dsn, json, Kind::AiToken, a),
        Command::ApiList(a) => list(&dsn, json, Kind::ApiKey, a.client_id),
        Command::AiList(a) => list(&dsn, json, Kind::AiToken, a.client_id),
        Command::ApiRevoke(a) => revoke(&dsn, json, Kind::ApiKey, a.id),
        Command::AiRevoke(a) => revoke(&dsn, json, Kind::AiToken, a.id),
        Command::ApiValidate(a) => validate(&dsn, json, Kind::ApiKey, a),
        Command::AiValidate(a) => validate(&dsn, json, Kind::AiToken, a),
        Command::Stats { client, days, top } => stats(&dsn, json, client, days, top),
        Command::Serve(a) => serve(dsn_text, a),
        Command::AdminCreate {
            user,
            reset_password,
        } => admin_create(&dsn_text, json, &user, reset_password),
        Command::Completions { .. } => ok(String::new()),
    }
}

fn web_failure(e: heratio_keys_web::Error) -> Failure {
    Failure {
        code: code_for(e.kind()),
        message: e.message().to_owned(),
    }
}

fn serve(dsn: String, a: ServeArgs) -> Result<Outcome, Failure> {
    let mut config = heratio_keys_web::Config::new(dsn);
    config.listen = a.listen;
    config.secure_cookies = a.secure_cookies;
    config.trust_proxy = a.trust_proxy;
    heratio_keys_web::serve(&config).map_err(web_failure)?;
    ok(String::new())
}

fn admin_create(dsn: &str, json: bool, user: &str, reset: bool) -> Result<Outcome, Failure> {
    let password = os::read_password(user).map_err(Failure::usage)?;
    let done = heratio_keys_web::create_admin(dsn, user, &password, reset).map_err(web_failure)?;
    if json {
        return ok(to_json(&serde_json::json!({
            "id": done.id,
            "user": done.username,
            "created": done.created,
        }))?);
    }
    ok(if done.created {
        format!("Created admin {} (id {}).\n", done.username, done.id)
    } else {
        format!("Set a new password for admin {}.\n", done.username)
    })
}

fn install(dsn: &Dsn, json: bool) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let report = store.install()?;
    if json {
        return ok(to_json(&InstallJson::new(dsn.to_string(), &report))?);
    }
    let mut out = match report.from_version {
        None => format!(
            "Created the keygen schema (version {}) in {dsn}.\n",
            report.to_version
        ),
        Some(from) if report.applied.is_empty() => {
            format!("Schema already at version {from} in {dsn}: nothing to do.\n")
        }
        Some(from) => format!(
            "Migrated the keygen schema in {dsn} from version {from} to {}.\n",
            report.to_version
        ),
    };
    for step in &report.applied {
        out.push_str(&format!("  applied: {step}\n"));
    }
    ok(out)
}

fn client_create(
    dsn: &Dsn,
    json: bool,
    name: String,
    email: String,
    organization: Option<String>,
) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let organization = organization.filter(|o| !o.trim().is_empty());
    let client = store.create_client(
        &NewClient {
            name,
            email,
            organization,
        },
        &actor(),
    )?;
    if json {
        return ok(to_json(&ClientJson::from(&client))?);
    }
    ok(format!(
        "Created client {} ({}).\n{}",
        client.id,
        client.name,
        fields(&[
            ("id", client.id.to_string()),
            ("name", client.name.clone()),
            ("email", client.email.clone()),
            (
                "organization",
                client.organization.clone().unwrap_or_else(|| "-".into())
            ),
        ])
    ))
}

fn client_list(dsn: &Dsn, json: bool) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let clients = store.list_clients()?;
    if json {
        let list: Vec<ClientJson> = clients.iter().map(ClientJson::from).collect();
        return ok(to_json(&list)?);
    }
    if clients.is_empty() {
        return ok("No clients yet: create one with `keygen client:create`.\n".into());
    }
    let mut table = Table::new(&["ID", "NAME", "EMAIL", "ORGANIZATION", "STATUS", "CREATED"]);
    for c in &clients {
        table.row(vec![
            c.id.to_string(),
            c.name.clone(),
            c.email.clone(),
            c.organization.clone().unwrap_or_else(|| "-".into()),
            if c.active { "active" } else { "inactive" }.into(),
            short_time(c.created_at),
        ]);
    }
    ok(table.render())
}

fn client_deactivate(dsn: &Dsn, json: bool, id: i64) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let d = store.deactivate_client(id, &actor())?;
    if json {
        return ok(to_json(&DeactivationJson::from(&d))?);
    }
    ok(format!(
        "Deactivated client {}: revoked {} and {}.\n",
        d.client_id,
        plural(d.api_keys_revoked, "API key", "API keys"),
        plural(d.ai_tokens_revoked, "AI token", "AI tokens"),
    ))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Parses `90d`, `12h`, `30m`, `45s`, `2w` into milliseconds.
fn parse_duration(text: &str) -> Result<i64, Failure> {
    let bad = || {
        Failure::usage(format!(
            "invalid --expires-in {text:?}: use a number and a unit s, m, h, d or w, e.g. 90d or 12h"
        ))
    };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let unit_ms: i64 = match unit.trim() {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(Failure::usage("--expires-in must be greater than zero"));
    }
    // Cap at 100 years: anything longer is a typo.
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 100 * 366 * 86_400_000)
        .ok_or_else(|| {
            Failure::usage(format!(
                "--expires-in {text:?} is too long (100 years at most)"
            ))
        })
}

fn generate(dsn: &Dsn, json: bool, kind: Kind, a: GenerateArgs) -> Result<Outcome, Failure> {
    let scopes = Scopes::parse(&a.scopes)?;
    let expires_at = match (&a.expires_in, &a.expires_at) {
        (Some(d), _) => Some(now_ms().saturating_add(parse_duration(d)?)),
        (None, Some(t)) => Some(parse_rfc3339(t.trim())?),
        (None, None) => None,
    };
    let store = open_store(dsn)?;
    let issued = issue(
        store.as_ref(),
        kind,
        &IssueRequest {
            client_id: a.client_id,
            name: a.name,
            scopes,
            expires_at,
        },
        &actor(),
    )?;
    let info = &issued.info;
    let key = issued.key.expose();
    let notice = Some(format!(
        "warning: store this {} now: it will not be shown again.",
        kind.label()
    ));
    let stdout = if json {
        to_json(&GeneratedJson {
            id: info.id,
            client_id: info.client_id,
            kind: kind.short_name(),
            key,
            prefix: info.display_prefix.clone(),
            name: info.name.clone(),
            scopes: info.scopes.as_slice().to_vec(),
            expires_at: info.expires_at.map(rfc3339),
            created_at: rfc3339(info.created_at),
        })?
    } else {
        format!(
            "Generated {} {} for client {}:\n\n    {key}\n\n{}",
            kind.label(),
            info.id,
            info.client_id,
            fields(&[
                ("id", info.id.to_string()),
                ("prefix", info.display_prefix.clone()),
                ("name", info.name.clone()),
                ("scopes", info.scopes.to_stored()),
                (
                    "expires",
                    info.expires_at
                        .map_or_else(|| "never".into(), |e| format!("{} UTC", short_time(e)))
                ),
            ])
        )
    };
    Ok(Outcome {
        stdout,
        notice,
        code: exit::OK,
    })
}

fn list(dsn: &Dsn, json: bool, kind: Kind, client_id: i64) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let creds = store.list_credentials(kind, client_id)?;
    let now = now_ms();
    if json {
        let list: Vec<CredentialJson> = creds.iter().map(|c| CredentialJson::new(c, now)).collect();
        return ok(to_json(&list)?);
    }
    if creds.is_empty() {
        return ok(format!("Client {client_id} has no {}s.\n", kind.label()));
    }
    let mut table = Table::new(&[
        "ID",
        "PREFIX",
        "NAME",
        "SCOPES",
        "STATUS",
        "CREATED (UTC)",
        "EXPIRES",
        "LAST USED",
        "USES",
    ]);
    for c in &creds {
        table.row(vec![
            c.id.to_string(),
            format!("{}…", c.display_prefix),
            c.name.clone(),
            c.scopes.to_stored(),
            c.state(now).as_str().into(),
            short_time(c.created_at),
            c.expires_at.map_or_else(|| "never".into(), short_time),
            c.last_used_at.map_or_else(|| "never".into(), short_time),
            c.usage_count.to_string(),
        ]);
    }
    ok(table.render())
}

fn revoke(dsn: &Dsn, json: bool, kind: Kind, id: i64) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let info = store.revoke_credential(kind, id, &actor())?;
    if json {
        return ok(to_json(&CredentialJson::new(&info, now_ms()))?);
    }
    ok(format!(
        "Revoked {} {} ({}…, {}) of client {}.\n",
        kind.label(),
        info.id,
        info.display_prefix,
        info.name,
        info.client_id
    ))
}

fn validate(dsn: &Dsn, json: bool, kind: Kind, a: ValidateArgs) -> Result<Outcome, Failure> {
    let key = match a.key.as_deref() {
        None | Some("-") => os::read_key_from_stdin(kind.label()).map_err(Failure::usage)?,
        Some(k) => k.to_owned(),
    };
    let required = if a.scopes.is_empty() {
        Vec::new()
    } else {
        Scopes::new(&a.scopes)?.as_slice().to_vec()
    };
    let required: Vec<&str> = required.iter().map(String::as_str).collect();
    let validator = match Validator::open_dsn(dsn, Options::default()) {
        Ok(v) => v,
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            return render_validation(json, kind, &Validation::unavailable(kind, e));
        }
        Err(e) => return Err(e.into()),
    };
    let v = validator.validate(
        &Request::new(kind, key.as_bytes())
            .scopes(&required)
            .endpoint(Some(CLI_ENDPOINT)),
    );
    // Dropping the validator flushes the usage record to usage_log.
    drop(validator);
    render_validation(json, kind, &v)
}

fn render_validation(json: bool, kind: Kind, v: &Validation) -> Result<Outcome, Failure> {
    let code = match v.status {
        Status::Valid => exit::OK,
        Status::Unavailable => exit::UNREACHABLE,
        _ => exit::REFUSED,
    };
    let notice = match (&v.error, v.status) {
        (Some(e), Status::Unavailable) => Some(format!("error: {}", e.message())),
        _ => None,
    };
    let stdout = if json {
        to_json(&ValidationJson::new(kind, v))?
    } else {
        let mut pairs = vec![("message", v.message())];
        if let Some(c) = v.credential.as_deref() {
            pairs.push(("client", c.client_id.to_string()));
            pairs.push((
                match kind {
                    Kind::ApiKey => "api key",
                    Kind::AiToken => "ai token",
                },
                format!("{} ({})", c.id, c.name),
            ));
            pairs.push(("scopes", c.scopes.to_stored()));
            pairs.push((
                "expires",
                c.expires_at
                    .map_or_else(|| "never".into(), |e| format!("{} UTC", short_time(e))),
            ));
        }
        format!("{}\n{}", v.status.name(), fields(&pairs))
    };
    Ok(Outcome {
        stdout,
        notice,
        code,
    })
}

fn stats(
    dsn: &Dsn,
    json: bool,
    client_id: Option<i64>,
    days: u32,
    top: u32,
) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let s = store.usage_stats(&StatsQuery {
        client_id,
        now: now_ms(),
        days,
        top,
    })?;
    if json {
        return ok(to_json(&StatsJson::new(client_id, days, &s))?);
    }
    let mut out = String::new();
    if let Some(id) = client_id {
        out.push_str(&format!("Statistics for client {id}\n"));
    }
    out.push_str(&fields(&[
        (
            "clients",
            format!("{} ({} active)", s.clients, s.active_clients),
        ),
        ("active API keys", s.active_api_keys.to_string()),
        ("active AI tokens", s.active_ai_tokens.to_string()),
        (
            "validations",
            format!(
                "{} in the last {} (valid {})",
                s.validations,
                plural(u64::from(days), "day", "days"),
                s.valid_validations
            ),
        ),
        (
            "last used",
            s.last_used_at
                .map_or_else(|| "never".into(), |t| format!("{} UTC", short_time(t))),
        ),
    ]));
    let busy: Vec<_> = s.per_day.iter().filter(|d| d.total > 0).collect();
    if !busy.is_empty() {
        out.push_str("\nValidations per day (days without any omitted):\n");
        let mut table = Table::new(&["DATE", "TOTAL", "VALID"]);
        for d in busy {
            table.row(vec![
                d.date.clone(),
                d.total.to_string(),
                d.valid.to_string(),
            ]);
        }
        out.push_str(&table.render());
    }
    if !s.top.is_empty() {
        out.push_str("\nMost used credentials:\n");
        let mut table = Table::new(&[
            "KIND",
            "ID",
            "CLIENT",
            "PREFIX",
            "NAME",
            "USES",
            "LAST USED",
        ]);
        for u in &s.top {
            table.row(vec![
                u.kind.short_name().into(),
                u.id.to_string(),
                u.client_id.to_string(),
                format!("{}…", u.display_prefix),
                u.name.clone(),
                u.usage_count.to_string(),
                u.last_used_at.map_or_else(|| "never".into(), short_time),
            ]);
        }
        out.push_str(&table.render());
    }
    ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d").unwrap(), 90 * 86_400_000);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3_600_000);
        assert_eq!(parse_duration("2w").unwrap(), 14 * 86_400_000);
        assert_eq!(parse_duration("45s").unwrap(), 45_000);
        for bad in [
            "",
            "d",
            "90",
            "0d",
            "-1d",
            "1y",
            "99999999999999999d",
            "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
