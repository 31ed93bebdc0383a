//! The schema (`install`), the web server (`serve`) and admin accounts.

use heratio_keys_core::Dsn;

use super::{actor, ok, open_store, to_json};
use crate::args::ServeArgs;
use crate::output::InstallJson;
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
    heratio_keys_web::serve(&config)?;
    ok(String::new())
}

pub(super) fn admin_create(
    dsn: &str,
    json: bool,
    user: &str,
    reset: bool,
) -> Result<Outcome, Failure> {
    let password = os::read_password(user).map_err(Failure::usage)?;
    let done = heratio_keys_web::create_admin(dsn, user, &password, reset, &actor())?;
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
