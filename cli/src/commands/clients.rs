//! `client:*`.

use heratio_keys_core::{Dsn, NewClient};

use super::{actor, ok, open_store, plural, to_json};
use crate::output::{fields, short_time, ClientJson, DeactivationJson, Table};
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
