//! A credential's life after issue (`*:rotate`, `*:expire`, `*:rename`,
//! `*:allow-ip`) and the maintenance pass (`maintain`).

use heratio_keys_core::model::{check_expiry, now_ms, parse_duration, parse_rfc3339};
use heratio_keys_core::{
    rotate as rotate_credential, Actor, AllowedIps, CredentialInfo, CredentialView, Dsn, Kind,
    Maintenance, MaintenanceItem, Source,
};

use super::{actor, ok, open_store, plural, to_json};
use crate::args::{AllowIpArgs, ExpireArgs, RenameArgs, RotateArgs};
use crate::output::{short_time, MaintenanceJson, RotatedJson, Table};
use crate::{exit, Failure, Outcome};

/// The audit actor of `keygen maintain`.
pub const MAINTENANCE_ACTOR: &str = "maintenance";

/// `--grace`: a duration, or zero (`0`, `0s`, `0h`, …) for none.
fn parse_grace(text: &str) -> Result<i64, Failure> {
    let t = text.trim();
    let digits = t.trim_end_matches(['s', 'm', 'h', 'd', 'w']);
    if !digits.is_empty() && digits.bytes().all(|c| c == b'0') && t.len() - digits.len() <= 1 {
        return Ok(0);
    }
    parse_duration(t).map_err(|e| Failure::usage(format!("--grace: {}", e.message())))
}

pub(super) fn rotate(dsn: &Dsn, json: bool, kind: Kind, a: RotateArgs) -> Result<Outcome, Failure> {
    let grace = parse_grace(&a.grace)?;
    let store = open_store(dsn)?;
    let rotated = rotate_credential(store.as_ref(), kind, a.id, grace, &actor())?;
    let (new, old) = (&rotated.info, &rotated.replaced);
    let key = rotated.key.expose();
    let now = now_ms();
    let stdout = if json {
        to_json(&RotatedJson {
            view: CredentialView::new(new, now),
            key,
            replaces: old.id,
            replaces_expires_at: old.expires_at.map(heratio_keys_core::model::rfc3339),
        })?
    } else {
        let ends = old
            .expires_at
            .map_or_else(|| "never".to_owned(), |e| format!("{} UTC", short_time(e)));
        format!(
            "Rotated {label} {old_id} of client {client}: new {label} {new_id}:\n\n    {key}\n\n{details}\n\
             {label} {old_id} ({old_prefix}…) keeps working until {ends}, then answers expired.\n",
            label = kind.label(),
            old_id = old.id,
            new_id = new.id,
            client = new.client_id,
            details = super::credentials::details_text(new),
            old_prefix = old.display_prefix,
        )
    };
    Ok(Outcome {
        stdout,
        notice: Some(format!(
            "warning: store this {} now: it will not be shown again.",
            kind.label()
        )),
        code: exit::OK,
    })
}

pub(super) fn expire(dsn: &Dsn, json: bool, kind: Kind, a: ExpireArgs) -> Result<Outcome, Failure> {
    let now = now_ms();
    let expires_at = match (&a.in_, &a.at, a.never) {
        (Some(d), _, _) => Some(now.saturating_add(
            parse_duration(d).map_err(|e| Failure::usage(format!("--in: {}", e.message())))?,
        )),
        (None, Some(t), _) => {
            Some(parse_rfc3339(t).map_err(|e| Failure::usage(format!("--at: {}", e.message())))?)
        }
        _ => None,
    };
    if let Some(at) = expires_at {
        check_expiry(at, now)?;
    }
    let store = open_store(dsn)?;
    let info = store.set_credential_expiry(kind, a.id, expires_at, &actor())?;
    if json {
        return ok(to_json(&CredentialView::new(&info, now_ms()))?);
    }
    ok(format!(
        "{}: {}.\n",
        title(&info),
        info.expires_at.map_or_else(
            || "never expires".to_owned(),
            |e| format!("expires {} UTC", short_time(e))
        )
    ))
}

pub(super) fn rename(dsn: &Dsn, json: bool, kind: Kind, a: RenameArgs) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let info = store.rename_credential(kind, a.id, &a.name, &actor())?;
    if json {
        return ok(to_json(&CredentialView::new(&info, now_ms()))?);
    }
    ok(format!("{}: renamed.\n", title(&info)))
}

pub(super) fn allow_ip(
    dsn: &Dsn,
    json: bool,
    kind: Kind,
    a: AllowIpArgs,
) -> Result<Outcome, Failure> {
    let allowed = match (a.any, a.networks.as_deref()) {
        (false, Some(list)) => Some(AllowedIps::parse(list)?),
        _ => None,
    };
    let store = open_store(dsn)?;
    let info = store.set_credential_allowed_ips(kind, a.id, allowed.as_ref(), &actor())?;
    if json {
        return ok(to_json(&CredentialView::new(&info, now_ms()))?);
    }
    ok(format!(
        "{}: {}.\n",
        title(&info),
        info.allowed_ips.as_ref().map_or_else(
            || "usable from any address".to_owned(),
            |n| format!("usable only from {n}")
        )
    ))
}

pub(super) fn maintain(
    dsn: &Dsn,
    json: bool,
    now: Option<&str>,
    dry_run: bool,
) -> Result<Outcome, Failure> {
    let now = match now {
        Some(t) => {
            parse_rfc3339(t).map_err(|e| Failure::usage(format!("--now: {}", e.message())))?
        }
        None => now_ms(),
    };
    let store = open_store(dsn)?;
    let actor = Actor::new(MAINTENANCE_ACTOR, Source::Cli);
    let report = store.maintain(now, !dry_run, &actor)?;
    if json {
        return ok(to_json(&MaintenanceJson::new(now, dry_run, &report))?);
    }
    ok(render_maintenance(now, dry_run, &report))
}

fn render_maintenance(now: i64, dry_run: bool, r: &Maintenance) -> String {
    let count = u64::try_from(r.revoked.len()).unwrap_or(u64::MAX);
    let mut out = if dry_run {
        format!(
            "Dry run as of {} UTC, nothing revoked: would revoke {} idle past their client's policy.\n",
            short_time(now),
            plural(count, "credential", "credentials")
        )
    } else {
        format!(
            "Maintenance as of {} UTC: revoked {} idle past their client's policy.\n",
            short_time(now),
            plural(count, "credential", "credentials")
        )
    };
    let sections: [(&str, &str, &[MaintenanceItem]); 3] = [
        (
            if dry_run {
                "Would be revoked now (idle)"
            } else {
                "Revoked (idle)"
            },
            "DUE (UTC)",
            &r.revoked,
        ),
        (
            "To be revoked within 7 days unless used",
            "DUE (UTC)",
            &r.revoke_soon,
        ),
        ("Expiring within 7 days", "EXPIRES (UTC)", &r.expiring_soon),
    ];
    for (heading, at, items) in sections {
        if items.is_empty() {
            out.push_str(&format!("\n{heading}: none.\n"));
            continue;
        }
        out.push_str(&format!("\n{heading}:\n"));
        let mut table = Table::new(&["KIND", "ID", "CLIENT", "PREFIX", "NAME", at]);
        for i in items {
            table.row(vec![
                i.kind.short_name().into(),
                i.id.to_string(),
                i.client_id.to_string(),
                format!("{}…", i.display_prefix),
                i.name.clone(),
                short_time(i.at),
            ]);
        }
        out.push_str(&table.render());
    }
    out
}

/// `API key 7 (hk_api_kNz5d…, production)`.
fn title(info: &CredentialInfo) -> String {
    format!(
        "{} {} ({}…, {})",
        info.kind.label(),
        info.id,
        info.display_prefix,
        info.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grace_of_zero_ends_the_old_key_now() {
        assert_eq!(parse_grace("0").ok(), Some(0));
        assert_eq!(parse_grace("0s").ok(), Some(0));
        assert_eq!(parse_grace("0h").ok(), Some(0));
        assert_eq!(parse_grace("24h").ok(), Some(86_400_000));
        for bad in ["", "0x", "0hh", "-1h", "soon", "1y"] {
            assert!(parse_grace(bad).is_err(), "{bad}");
        }
    }
}
