//! The schema (`install`), the web server (`serve`) and admin accounts.

use heratio_keys_core::{AdminAccount, AdminRole, Dsn};

use super::{actor, ok, open_store, to_json};
use crate::args::ServeArgs;
use crate::output::{short_time, AdminJson, InstallJson, Table};
use crate::{os, Failure, Outcome};

pub(super) fn serve(dsn: String, a: ServeArgs) -> Result<Outcome, Failure> {
    let mut config = heratio_keys_web::Config::new(dsn);
    config.listen = a.listen;
    config.secure_cookies = a.secure_cookies;
    config.trust_proxy = a.trust_proxy;
    if let Some(nets) = a.verify_trust {
        config.verify_trusted = nets;
    }
    config.verify_rate = a.verify_rate;
    config.verify_burst = a.verify_burst;
    config.login_source_max_failures = a.login_source_max_failures;
    config.login_concurrency = a.login_concurrency;
    config.maintenance_interval = (!a.no_maintenance).then_some(a.maintenance_interval);
    config.metrics = !a.no_metrics;
    config.metrics_listen = a.metrics_listen;
    heratio_keys_web::serve(&config)?;
    ok(String::new())
}

pub(super) fn admin_create(
    dsn: &str,
    json: bool,
    user: &str,
    reset: bool,
    role: Option<AdminRole>,
) -> Result<Outcome, Failure> {
    let role = role.unwrap_or(AdminRole::Admin);
    let password = os::read_password(user).map_err(Failure::usage)?;
    let done =
        heratio_keys_web::create_admin_with_role(dsn, user, &password, reset, role, &actor())?;
    if json {
        return ok(to_json(&serde_json::json!({
            "id": done.id,
            "user": done.username,
            "created": done.created,
            "role": done.role.as_str(),
        }))?);
    }
    ok(if done.created {
        format!(
            "Created admin {} (id {}, role {}).\n",
            done.username, done.id, done.role
        )
    } else {
        format!("Set a new password for admin {}.\n", done.username)
    })
}

pub(super) fn admin_list(dsn: &Dsn, json: bool) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let admins = store.list_admins()?;
    if json {
        let list: Vec<AdminJson> = admins.iter().map(AdminJson::from).collect();
        return ok(to_json(&list)?);
    }
    if admins.is_empty() {
        return ok(
            "No web administrators yet: create one with `keygen admin:create USER`.\n".into(),
        );
    }
    let mut table = Table::new(&[
        "ID",
        "USER",
        "ROLE",
        "ACTIVE",
        "CREATED (UTC)",
        "LAST LOGIN",
    ]);
    for a in &admins {
        table.row(vec![
            a.id.to_string(),
            a.username.clone(),
            a.role.as_str().into(),
            if a.active { "yes" } else { "no" }.into(),
            short_time(a.created_at),
            a.last_login_at.map_or_else(|| "never".into(), short_time),
        ]);
    }
    ok(table.render())
}

pub(super) fn admin_set_active(
    dsn: &Dsn,
    json: bool,
    user: &str,
    active: bool,
) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let account = store.set_admin_active(user, active, &actor())?;
    admin_changed(
        json,
        &account,
        if active {
            "enabled"
        } else {
            "disabled; its sessions ended"
        },
    )
}

pub(super) fn admin_role(
    dsn: &Dsn,
    json: bool,
    user: &str,
    role: AdminRole,
) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let account = store.set_admin_role(user, role, &actor())?;
    admin_changed(
        json,
        &account,
        &format!("role {}; its sessions ended", account.role),
    )
}

fn admin_changed(json: bool, account: &AdminAccount, what: &str) -> Result<Outcome, Failure> {
    if json {
        return ok(to_json(&AdminJson::from(account))?);
    }
    ok(format!("Admin {}: {what}.\n", account.username))
}

pub(super) fn install(dsn: &Dsn, json: bool) -> Result<Outcome, Failure> {
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
