//! Clients: the list with search and the create form (`/clients`), one
//! client with its keys and tokens (`/clients/ID`), and deactivation with
//! its confirmation (`/clients/ID/deactivate`).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::{Form, Router};
use heratio_keys_core::model::now_ms;
use heratio_keys_core::{Client, CredentialInfo, ErrorKind, Kind, NewClient};
use maud::html;
use serde::Deserialize;

use crate::error::{AppError, Page};
use crate::extract::{Admin, CsrfForm};
use crate::params;
use crate::state::Shared;
use crate::views::{
    client_badge, credential_table, csrf_field, dash, generate_form, plural, plural_label,
    section_id, short_time, Nav,
};

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/clients", get(clients).post(client_create))
        .route("/clients/{id}", get(client_view))
        .route(
            "/clients/{id}/deactivate",
            get(deactivate_confirm).post(deactivate),
        )
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn matches(c: &Client, q: &str) -> bool {
    if q.is_empty() {
        return true;
    }
    let q = q.to_lowercase();
    c.id.to_string() == q
        || c.name.to_lowercase().contains(&q)
        || c.email.to_lowercase().contains(&q)
        || c.organization
            .as_deref()
            .is_some_and(|o| o.to_lowercase().contains(&q))
}

async fn clients(
    State(app): State<Shared>,
    admin: Admin,
    Query(search): Query<SearchQuery>,
) -> Page {
    let q = search.q.trim().to_owned();
    let all = app.store(|s| s.list_clients()).await?;
    let total = all.len();
    let shown: Vec<&Client> = all.iter().filter(|c| matches(c, &q)).collect();
    let body = html! {
        h1.h3.mb-4 { "Clients" }
        div.row.g-4 {
            div.col-lg-8 {
                form.row.g-2.mb-3 method="get" action="/clients" role="search" {
                    div.col {
                        input.form-control #client-search type="search" name="q" value=(q)
                            placeholder="Search name, e-mail, organisation or id" aria-label="Search clients";
                    }
                    div.col-auto { button.btn.btn-outline-primary type="submit" { "Search" } }
                }
                p.text-muted.small {
                    @if q.is_empty() { (total) " clients" } @else { (shown.len()) " of " (total) " clients match" }
                }
                div.table-responsive {
                    table.table.table-hover.align-middle #clients-table {
                        thead { tr {
                            th { "ID" } th { "Name" } th.d-none.d-md-table-cell { "E-mail" }
                            th.d-none.d-lg-table-cell { "Organisation" } th { "Status" } th {}
                        } }
                        tbody {
                            @for c in &shown {
                                tr {
                                    td { (c.id) }
                                    td { a href={ "/clients/" (c.id) } { (c.name) } }
                                    td.d-none.d-md-table-cell { (c.email) }
                                    td.d-none.d-lg-table-cell { @if let Some(o) = &c.organization { (o) } @else { (dash()) } }
                                    td { (client_badge(c.active)) }
                                    td.text-end { a.btn.btn-sm.btn-outline-secondary href={ "/clients/" (c.id) } { "View" } }
                                }
                            }
                            @if shown.is_empty() {
                                tr { td colspan="6" .text-muted { "No clients." } }
                            }
                        }
                    }
                }
            }
            div.col-lg-4 {
                div.card {
                    div.card-header { "New client" }
                    div.card-body {
                        form method="post" action="/clients" #new-client {
                            (csrf_field(&admin.csrf))
                            div.mb-3 {
                                label.form-label for="name" { "Name" }
                                input.form-control #name name="name" required maxlength="255";
                            }
                            div.mb-3 {
                                label.form-label for="email" { "Contact e-mail" }
                                input.form-control #email name="email" type="email" required maxlength="255";
                            }
                            div.mb-3 {
                                label.form-label for="organization" { "Organisation " span.text-muted { "(optional)" } }
                                input.form-control #organization name="organization" maxlength="255";
                            }
                            button.btn.btn-primary type="submit" { "Create client" }
                        }
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Clients, "Clients", body))
}

#[derive(Debug, Deserialize)]
struct ClientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    organization: String,
}

async fn client_create(
    State(app): State<Shared>,
    admin: Admin,
    Form(form): Form<ClientForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let org = form.organization.trim().to_owned();
    let new = NewClient {
        name: form.name.trim().to_owned(),
        email: form.email.trim().to_owned(),
        organization: (!org.is_empty()).then_some(org),
    };
    let actor = admin.actor();
    match app.store(move |s| s.create_client(&new, &actor)).await {
        Ok(c) => {
            admin.flash(
                &app,
                "success",
                format!("Created client {} ({}).", c.id, c.name),
            );
            Ok(Redirect::to(&format!("/clients/{}", c.id)).into_response())
        }
        Err(AppError::Core(e)) if e.kind() == ErrorKind::InvalidInput => {
            admin.flash(&app, "danger", e.message().to_owned());
            Ok(Redirect::to("/clients").into_response())
        }
        Err(e) => Err(e),
    }
}

/// A client with its API keys and AI tokens.
async fn with_credentials(
    app: &Shared,
    id: i64,
) -> Result<(Client, Vec<CredentialInfo>, Vec<CredentialInfo>), AppError> {
    app.store(move |s| {
        let client = s.get_client(id)?;
        let api = s.list_credentials(Kind::ApiKey, id)?;
        let ai = s.list_credentials(Kind::AiToken, id)?;
        Ok((client, api, ai))
    })
    .await
}

async fn client_view(State(app): State<Shared>, admin: Admin, Path(id): Path<String>) -> Page {
    let id = params::id(&id)?;
    let (client, api, ai) = with_credentials(&app, id).await?;
    let now = now_ms();
    let body = html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb {
                li.breadcrumb-item { a href="/clients" { "Clients" } }
                li.breadcrumb-item.active aria-current="page" { (client.name) }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto.text-break { (client.name) " " (client_badge(client.active)) }
            div.d-flex.gap-2 {
                a.btn.btn-outline-secondary.btn-sm href={ "/usage?client=" (client.id) } { "Usage log" }
                @if client.active {
                    a.btn.btn-outline-danger.btn-sm #deactivate-link href={ "/clients/" (client.id) "/deactivate" } { "Deactivate…" }
                }
            }
        }
        dl.row.mb-4 {
            dt.col-sm-3 { "ID" } dd.col-sm-9 { (client.id) }
            dt.col-sm-3 { "Contact e-mail" } dd.col-sm-9.text-break { (client.email) }
            dt.col-sm-3 { "Organisation" } dd.col-sm-9 { @if let Some(o) = &client.organization { (o) } @else { (dash()) } }
            dt.col-sm-3 { "Created (UTC)" } dd.col-sm-9 { (short_time(client.created_at)) }
            @if let Some(d) = client.deactivated_at {
                dt.col-sm-3 { "Deactivated (UTC)" } dd.col-sm-9 { (short_time(d)) }
            }
        }
        @for (kind, creds) in [(Kind::ApiKey, &api), (Kind::AiToken, &ai)] {
            section.card.mb-4 id=(section_id(kind)) {
                div.card-header { (plural_label(kind)) " " span.badge.text-bg-secondary { (creds.len()) } }
                (credential_table(kind, creds, now))
                @if client.active {
                    div.card-body.border-top {
                        h2.h6 { "Generate a new " (kind.label()) }
                        (generate_form(client.id, kind, &admin.csrf))
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Clients, &client.name, body))
}

async fn deactivate_confirm(
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
                            " in the same transaction. Every validating process refuses them within about a second. This cannot be undone."
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

async fn deactivate(
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
