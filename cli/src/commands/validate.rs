//! `api:validate` / `ai:validate`: one validation through the library, as a
//! PHP request would make it, with the documented exit codes.

use heratio_keys_core::model::check_required;
use heratio_keys_core::{Dsn, ErrorKind, Kind, Options, Request, Status, Validation, Validator};

use super::to_json;
use crate::args::ValidateArgs;
use crate::output::{fields, short_time, ValidationJson};
use crate::{exit, os, Failure, Outcome};

/// The endpoint recorded in `usage_log` for validations made by keygen.
const CLI_ENDPOINT: &str = "cli";

pub(super) fn validate(
    dsn: &Dsn,
    json: bool,
    kind: Kind,
    a: ValidateArgs,
) -> Result<Outcome, Failure> {
    let key = match a.key.as_deref() {
        None | Some("-") => os::read_key_from_stdin(kind.label()).map_err(Failure::usage)?,
        Some(k) => k.to_owned(),
    };
    check_required(&a.scopes)?;
    let required: Vec<&str> = a.scopes.iter().map(String::as_str).collect();
    let validator = match Validator::open_dsn(dsn, Options::default()) {
        Ok(v) => v,
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            return render_validation(json, kind, &Validation::unavailable(kind, Some(e)));
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
        to_json(&ValidationJson::from(v))?
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
            if let Some(rate) = v.rate {
                let mut text = format!("{} per hour, {} left", rate.limit, rate.remaining);
                if !rate.admitted {
                    text.push_str(&format!(", renews in {} s", rate.reset_after));
                }
                pairs.push(("rate limit", text));
            }
            if let Some(m) = &c.metadata {
                pairs.push(("metadata", m.to_string()));
            }
        }
        format!("{}\n{}", v.status.name(), fields(&pairs))
    };
    Ok(Outcome {
        stdout,
        notice,
        code,
    })
}
