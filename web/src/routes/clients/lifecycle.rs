//! A client's life: editing (name, e-mail, organisation, idle-revoke
//! policy), deactivation and reactivation, each with a page before the
//! change. The rules are the core's (`update_client`, `deactivate_client`,
//! `reactivate_client`); their refusals come back as messages.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use heratio_keys_core::model::parse_duration;
use heratio_keys_core::{ClientUpdate, ErrorKind, Kind};
use maud::html;
use serde::Deserialize;

use super::page::period;
use super::with_credentials;
use crate::error::{AppError, Page};
use crate::extract::{Admin, CsrfForm};
use crate::params;
use crate::state::Shared;
use crate::views::{csrf_field, plural, section_id, Nav};

pub(super) async fn edit_page(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
) -> Page {
    let id = params::id(&id)?;
    let client = app.store(move |s| s.get_client(id)).await?;
    let idle = client.idle_revoke_ms.map(period).unwrap_or_default();
    let body = html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb {
                li.breadcrumb-item { a href="/clients" { "Clients" } }
                li.breadcrumb-item { a href={ "/clients/" (client.id) } { (client.name) } }
                li.breadcrumb-item.active aria-current="page" { "Edit" }
            }
        }
        div.row.justify-content-center {
            div.col-lg-7 {
                h1.h3.mb-3 { "Edit client " (client.id) }
                form method="post" action={ "/clients/" (client.id) "/edit" } #edit-client {
                    (csrf_field(&admin.csrf))
                    div.mb-3 {
                        label.form-label for="name" { "Name" }
                        input.form-control #name name="name" required maxlength="255" value=(client.name);
                    }
                    div.mb-3 {
                        label.form-label for="email" { "Contact e-mail" }
                        input.form-control #email name="email" type="email" required maxlength="255" value=(client.email);
                    }
                    div.mb-3 {
                        label.form-label for="organization" { "Organisation " span.text-muted { "(optional)" } }
                        input.form-control #organization name="organization" maxlength="255"
                            value=(client.organization.as_deref().unwrap_or(""));
                    }
                    div.mb-3 {
                        label.form-label for="idle_revoke" { "Revoke keys unused for" }
                        input.form-control #idle_revoke name="idle_revoke" value=(idle)
                            placeholder="never" aria-describedby="idle-help";
                        div.form-text #idle-help {
                            "A period (" code { "30d" } ", " code { "12w" } ") or empty for never. "
                            "The maintenance pass (hourly in " code { "keygen serve" } ", or " code { "keygen maintain" }
                            ") revokes this client's keys and tokens unused that long since their last accepted use, or since creation."
                        }
                    }
                    div.d-flex.gap-2 {
                        button.btn.btn-primary type="submit" { "Save" }
                        a.btn.btn-outline-secondary href={ "/clients/" (client.id) } { "Cancel" }
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Clients, "Edit client", body))
}

#[derive(Debug, Deserialize)]
pub(super) struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    idle_revoke: String,
}

/// The idle-revoke policy from the form: empty or `never`, or a period.
fn idle_choice(text: &str) -> Result<Option<i64>, String> {
    match text.trim() {
        "" | "never" => Ok(None),
        t => parse_duration(t)
            .map(Some)
            .map_err(|e| e.message().to_owned()),
    }
}

pub(super) async fn edit(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let id = params::id(&id)?;
    let again = format!("/clients/{id}/edit");
    let idle = match idle_choice(&form.idle_revoke) {
        Ok(i) => i,
        Err(m) => {
            admin.flash(&app, "danger", m);
            return Ok(Redirect::to(&again).into_response());
        }
    };
    let org = form.organization.trim().to_owned();
    let update = ClientUpdate {
        name: Some(form.name.trim().to_owned()),
        email: Some(form.email.trim().to_owned()),
        organization: Some((!org.is_empty()).then_some(org)),
        idle_revoke_ms: Some(idle),
    };
    let actor = admin.actor();
    match app
        .store(move |s| s.update_client(id, &update, &actor))
        .await
    {
        Ok(c) => {
            admin.flash(
                &app,
                "success",
                format!("Saved client {} ({}).", c.id, c.name),
            );
            Ok(Redirect::to(&format!("/clients/{id}")).into_response())
        }
        Err(AppError::Core(e)) if e.kind() == ErrorKind::InvalidInput => {
            admin.flash(&app, "danger", e.message().to_owned());
            Ok(Redirect::to(&again).into_response())
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn deactivate_confirm(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
) -> Page {
    let id = params::id(&id)?;
    let (client, api, ai) = with_credentials(&app, id).await?;
    let api_n = api.iter().filter(|c| c.active).count() as u64;
    let ai_n = ai.iter().filter(|c| c.active).count() as u64;
    let body = html! {
        div.row.justify-content-center {
            div.col-lg-7 {
                div.card.border-danger {
                    div.card-header.text-bg-danger { "Deactivate client" }
                    div.card-body {
                        p.lead { "Deactivate " strong { (client.name) } " (client " (client.id) ")?" }
                        p #deactivate-summary {
                            "This revokes "
                            strong #revoke-count-api { (plural(api_n, Kind::ApiKey)) }
                            " and "
                            strong #revoke-count-ai { (plural(ai_n, Kind::AiToken)) }
                            " in the same transaction. Every validating process refuses them within about a second. "
                            "The client can be reactivated later, but its keys and tokens stay revoked."
                        }
                        @if !client.active {
                            p.text-muted { "The client is already inactive; confirming revokes whatever is still active." }
                        }
                        form.d-flex.gap-2 method="post" action={ "/clients/" (client.id) "/deactivate" } {
                            (csrf_field(&admin.csrf))
                            button.btn.btn-danger type="submit" #confirm-deactivate { "Deactivate and revoke" }
                            a.btn.btn-outline-secondary href={ "/clients/" (client.id) } { "Cancel" }
                        }
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Clients, "Deactivate client", body))
}

pub(super) async fn deactivate(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let id = params::id(&id)?;
    let actor = admin.actor();
    let d = app.store(move |s| s.deactivate_client(id, &actor)).await?;
    admin.flash(
        &app,
        "success",
        format!(
            "Deactivated client {}: revoked {} and {}.",
            d.client_id,
            plural(d.api_keys_revoked, Kind::ApiKey),
            plural(d.ai_tokens_revoked, Kind::AiToken)
        ),
    );
    Ok(Redirect::to(&format!("/clients/{id}")).into_response())
}

pub(super) async fn reactivate_confirm(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
) -> Page {
    let id = params::id(&id)?;
    let (client, api, ai) = with_credentials(&app, id).await?;
    if client.active {
        admin.flash(
            &app,
            "info",
            format!("Client {} is active already.", client.id),
        );
        return Ok(Redirect::to(&format!("/clients/{id}")).into_response());
    }
    let body = html! {
        div.row.justify-content-center {
            div.col-lg-7 {
                div.card.border-success {
                    div.card-header.text-bg-success { "Reactivate client" }
                    div.card-body {
                        p.lead { "Reactivate " strong { (client.name) } " (client " (client.id) ")?" }
                        p #reactivate-summary {
                            "Its " strong #stay-revoked-api { (plural(api.len() as u64, Kind::ApiKey)) }
                            " and " strong #stay-revoked-ai { (plural(ai.len() as u64, Kind::AiToken)) }
                            " stay revoked: nothing that was refused comes back to life unseen. "
                            "After reactivating, generate new ones on the client's page."
                        }
                        form.d-flex.gap-2 method="post" action={ "/clients/" (client.id) "/reactivate" } {
                            (csrf_field(&admin.csrf))
                            button.btn.btn-success type="submit" #confirm-reactivate { "Reactivate" }
                            a.btn.btn-outline-secondary href={ "/clients/" (client.id) } { "Cancel" }
                        }
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Clients, "Reactivate client", body))
}

pub(super) async fn reactivate(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let id = params::id(&id)?;
    let actor = admin.actor();
    match app.store(move |s| s.reactivate_client(id, &actor)).await {
        Ok(c) => {
            admin.flash(
                &app,
                "success",
                format!(
                    "Reactivated client {} ({}). Its old keys and tokens stay revoked: generate new ones below.",
                    c.id, c.name
                ),
            );
            Ok(
                Redirect::to(&format!("/clients/{id}#{}", section_id(Kind::ApiKey)))
                    .into_response(),
            )
        }
        Err(AppError::Core(e)) if e.kind() == ErrorKind::Conflict => {
            admin.flash(&app, "info", e.message().to_owned());
            Ok(Redirect::to(&format!("/clients/{id}")).into_response())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::model::DAY_MS;

    #[test]
    fn idle_policies() {
        assert_eq!(idle_choice(""), Ok(None));
        assert_eq!(idle_choice("never"), Ok(None));
        assert_eq!(idle_choice("30d"), Ok(Some(30 * DAY_MS)));
        assert!(idle_choice("monthly").is_err());
    }
}
