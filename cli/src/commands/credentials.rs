//! `api:*` / `ai:*` management: generate, list, revoke, rate limits and
//! metadata (rotation, expiry, names and allowlists: `lifecycle`).

use heratio_keys_core::model::{check_rate_limit, now_ms, parse_duration, parse_rfc3339};
use heratio_keys_core::{
    issue, AllowedIps, CredentialInfo, CredentialState, CredentialView, Dsn, IssueRequest, Kind,
    Metadata, Scopes,
};

use super::{actor, ok, open_store, to_json};
use crate::args::{GenerateArgs, LimitArgs, MetadataArgs};
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
    if let Some(limit) = a.rate_limit {
        check_rate_limit(limit).map_err(|e| Failure::usage(format!("--rate-limit: {e}")))?;
    }
    let metadata = a
        .metadata
        .as_deref()
        .map(Metadata::parse)
        .transpose()
        .map_err(|e| Failure::usage(format!("--metadata: {e}")))?;
    let allowed = a
        .allow_ip
        .as_deref()
        .map(AllowedIps::parse)
        .transpose()
        .map_err(|e| Failure::usage(format!("--allow-ip: {}", e.message())))?;
    let store = open_store(dsn)?;
    let mut issued = issue(
        store.as_ref(),
        kind,
        &IssueRequest {
            client_id: a.client_id,
            name: a.name,
            scopes,
            expires_at,
            rate_limit: a.rate_limit,
            metadata,
        },
        &actor(),
    )?;
    if let Some(allowed) = &allowed {
        // A second transaction: the plaintext has not left this process yet,
        // so nobody can use the key in between. Should it fail, the key is
        // revoked rather than left usable from anywhere.
        match store.set_credential_allowed_ips(kind, issued.info.id, Some(allowed), &actor()) {
            Ok(info) => issued.info = info,
            Err(e) => {
                let _ = store.revoke_credential(kind, issued.info.id, &actor());
                return Err(Failure::from(e));
            }
        }
    }
    let info = &issued.info;
    let key = issued.key.expose();
    let notice = Some(format!(
        "warning: store this {} now: it will not be shown again.",
        kind.label()
    ));
    let stdout = if json {
        to_json(&GeneratedJson {
            view: CredentialView::new(info, now_ms()),
            key,
        })?
    } else {
        format!(
            "Generated {} {} for client {}:\n\n    {key}\n\n{}",
            kind.label(),
            info.id,
            info.client_id,
            details_text(info)
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
        "LIMIT",
        "SHAPE",
        "ALLOWED IPS",
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
            scopes_text(c),
            status_text(c, now),
            limit_text(c.rate_limit),
            c.key_shape.name().into(),
            allowlist_text(c.allowed_ips.as_ref()),
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

pub(super) fn limit(dsn: &Dsn, json: bool, kind: Kind, a: LimitArgs) -> Result<Outcome, Failure> {
    let limit = if a.none { None } else { a.limit };
    if let Some(limit) = limit {
        check_rate_limit(limit)?;
    }
    let store = open_store(dsn)?;
    let info = store.set_credential_rate_limit(kind, a.id, limit, &actor())?;
    if json {
        return ok(to_json(&CredentialView::new(&info, now_ms()))?);
    }
    ok(format!(
        "{} {} ({}…, {}): {}.\n",
        kind.label(),
        info.id,
        info.display_prefix,
        info.name,
        info.rate_limit.map_or_else(
            || "no rate limit".to_owned(),
            |n| format!("at most {n} validations per clock hour (UTC)")
        )
    ))
}

pub(super) fn metadata(
    dsn: &Dsn,
    json: bool,
    kind: Kind,
    a: MetadataArgs,
) -> Result<Outcome, Failure> {
    let metadata = match (a.none, a.metadata.as_deref()) {
        (false, Some(text)) => Some(Metadata::parse(text)?),
        _ => None,
    };
    let store = open_store(dsn)?;
    let info = store.set_credential_metadata(kind, a.id, metadata.as_ref(), &actor())?;
    if json {
        return ok(to_json(&CredentialView::new(&info, now_ms()))?);
    }
    ok(format!(
        "{} {} ({}…, {}): metadata {}.\n",
        kind.label(),
        info.id,
        info.display_prefix,
        info.name,
        info.metadata
            .as_ref()
            .map_or_else(|| "removed".to_owned(), |m| format!("set to {m}"))
    ))
}

/// Scopes for a table: `(none)` for a key that holds none (imported from
/// Heratio with `NULL` or `[]` scopes).
fn scopes_text(c: &CredentialInfo) -> String {
    if c.scopes.as_slice().is_empty() {
        "(none)".into()
    } else {
        c.scopes.to_stored()
    }
}

/// The state for a table: `active`, `expires soon` (active, expiring
/// within 7 days), `expired` or `revoked`.
fn status_text(c: &CredentialInfo, now: i64) -> String {
    match c.state(now) {
        CredentialState::Active if c.expires_soon(now) => "expires soon".into(),
        state => state.as_str().into(),
    }
}

/// `192.0.2.0/24,2001:db8::/32`, or `any`.
fn allowlist_text(allowed: Option<&AllowedIps>) -> String {
    allowed.map_or_else(|| "any".into(), ToString::to_string)
}

/// `1000/h`, or `-` for unlimited.
fn limit_text(limit: Option<i64>) -> String {
    limit.map_or_else(|| "-".into(), |n| format!("{n}/h"))
}

/// The `key  value` lines shown after a generation or rotation.
pub(super) fn details_text(info: &CredentialInfo) -> String {
    fields(&details(info))
}

fn details(info: &CredentialInfo) -> Vec<(&'static str, String)> {
    let mut pairs = vec![
        ("id", info.id.to_string()),
        ("prefix", info.display_prefix.clone()),
        ("name", info.name.clone()),
        ("scopes", scopes_text(info)),
        (
            "expires",
            info.expires_at
                .map_or_else(|| "never".into(), |e| format!("{} UTC", short_time(e))),
        ),
        (
            "rate limit",
            info.rate_limit
                .map_or_else(|| "none".into(), |n| format!("{n} per hour")),
        ),
    ];
    if let Some(a) = &info.allowed_ips {
        pairs.push(("allowed ips", a.to_string()));
    }
    if let Some(m) = &info.metadata {
        pairs.push(("metadata", m.to_string()));
    }
    if let Some(old) = info.rotated_from {
        pairs.push(("replaces", old.to_string()));
    }
    pairs
}
