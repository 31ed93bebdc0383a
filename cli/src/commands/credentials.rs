//! `api:*` / `ai:*` management: generate, list, revoke.

use heratio_keys_core::model::{now_ms, parse_duration, parse_rfc3339, rfc3339};
use heratio_keys_core::{issue, CredentialView, Dsn, IssueRequest, Kind, Scopes};

use super::{actor, ok, open_store, to_json};
use crate::args::GenerateArgs;
use crate::output::{fields, short_time, GeneratedJson, Table};
use crate::{exit, Failure, Outcome};

pub(super) fn generate(
    dsn: &Dsn,
    json: bool,
    kind: Kind,
    a: GenerateArgs,
) -> Result<Outcome, Failure> {
    let scopes = Scopes::parse(&a.scopes)?;
    let expires_at = match (&a.expires_in, &a.expires_at) {
        (Some(d), _) => Some(now_ms().saturating_add(
            parse_duration(d).map_err(|e| Failure::usage(format!("--expires-in: {e}")))?,
        )),
        (None, Some(t)) => Some(parse_rfc3339(t)?),
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
            rate_limit: None,
            metadata: None,
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

pub(super) fn list(dsn: &Dsn, json: bool, kind: Kind, client_id: i64) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let creds = store.list_credentials(kind, client_id)?;
    let now = now_ms();
    if json {
        let list: Vec<CredentialView> = creds.iter().map(|c| CredentialView::new(c, now)).collect();
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

pub(super) fn revoke(dsn: &Dsn, json: bool, kind: Kind, id: i64) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let info = store.revoke_credential(kind, id, &actor())?;
    if json {
        return ok(to_json(&CredentialView::new(&info, now_ms()))?);
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
