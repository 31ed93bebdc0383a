//! `client:*`.

use heratio_keys_core::model::parse_duration;
use heratio_keys_core::{Client, ClientUpdate, Dsn, Kind, NewClient};

use super::{actor, ok, open_store, plural, to_json};
use crate::args::ClientUpdateArgs;
use crate::output::{
    duration_text, fields, short_time, ClientJson, DeactivationJson, ReactivatedJson, Table,
};
use crate::{Failure, Outcome};

pub(super) fn create(
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
        client_fields(&client)
    ))
}

pub(super) fn list(dsn: &Dsn, json: bool) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let clients = store.list_clients()?;
    if json {
        let list: Vec<ClientJson> = clients.iter().map(ClientJson::from).collect();
        return ok(to_json(&list)?);
    }
    if clients.is_empty() {
        return ok("No clients yet: create one with `keygen client:create`.\n".into());
    }
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "EMAIL",
        "ORGANIZATION",
        "STATUS",
        "IDLE REVOKE",
        "CREATED",
    ]);
    for c in &clients {
        table.row(vec![
            c.id.to_string(),
            c.name.clone(),
            c.email.clone(),
            c.organization.clone().unwrap_or_else(|| "-".into()),
            if c.active { "active" } else { "inactive" }.into(),
            idle_text(c),
            short_time(c.created_at),
        ]);
    }
    ok(table.render())
}

pub(super) fn deactivate(dsn: &Dsn, json: bool, id: i64) -> Result<Outcome, Failure> {
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

pub(super) fn update(dsn: &Dsn, json: bool, a: ClientUpdateArgs) -> Result<Outcome, Failure> {
    let idle_revoke_ms = match (a.no_idle_revoke, a.idle_revoke.as_deref()) {
        (true, _) => Some(None),
        (false, Some(d)) => {
            Some(Some(parse_duration(d).map_err(|e| {
                Failure::usage(format!("--idle-revoke: {}", e.message()))
            })?))
        }
        (false, None) => None,
    };
    let update = ClientUpdate {
        name: a.name,
        email: a.email,
        // `--organization ''` removes it.
        organization: a
            .organization
            .map(|o| Some(o).filter(|o| !o.trim().is_empty())),
        idle_revoke_ms,
    };
    let store = open_store(dsn)?;
    let client = store.update_client(a.id, &update, &actor())?;
    if json {
        return ok(to_json(&ClientJson::from(&client))?);
    }
    ok(format!(
        "Updated client {} ({}).\n{}",
        client.id,
        client.name,
        client_fields(&client)
    ))
}

pub(super) fn reactivate(dsn: &Dsn, json: bool, id: i64) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let client = store.reactivate_client(id, &actor())?;
    let revoked = |kind| -> Result<u64, Failure> {
        let all = store.list_credentials(kind, id)?;
        Ok(u64::try_from(all.iter().filter(|c| !c.active).count()).unwrap_or(u64::MAX))
    };
    let (keys, tokens) = (revoked(Kind::ApiKey)?, revoked(Kind::AiToken)?);
    if json {
        return ok(to_json(&ReactivatedJson {
            client: ClientJson::from(&client),
            revoked_api_keys: keys,
            revoked_ai_tokens: tokens,
        })?);
    }
    let stay = if keys + tokens == 0 {
        "It holds no revoked keys or tokens.".to_owned()
    } else {
        format!(
            "Its revoked keys and tokens ({}, {}) stay revoked.",
            plural(keys, "API key", "API keys"),
            plural(tokens, "AI token", "AI tokens"),
        )
    };
    ok(format!(
        "Reactivated client {id} ({}). {stay}\n\
         Generate new ones with `keygen api:generate {id} --name LABEL`.\n",
        client.name,
    ))
}

/// `30d`, or `never`.
fn idle_text(c: &Client) -> String {
    c.idle_revoke_ms
        .map_or_else(|| "never".into(), duration_text)
}

fn client_fields(client: &Client) -> String {
    fields(&[
        ("id", client.id.to_string()),
        ("name", client.name.clone()),
        ("email", client.email.clone()),
        (
            "organization",
            client.organization.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "status",
            if client.active { "active" } else { "inactive" }.into(),
        ),
        ("idle revoke", idle_text(client)),
    ])
}
