//! Clients: the list with search and the create form (`/clients`), one
//! client with its keys, tokens, usage and audit trail (`/clients/ID`, in
//! `page`), and its life: editing, deactivation and reactivation, each with
//! its page (in `lifecycle`).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use heratio_keys_core::{AdminRole, Client, CredentialInfo, ErrorKind, Kind, NewClient};
use maud::html;
use serde::Deserialize;

use crate::access::{Routes, OPERATOR, VIEWER};
use crate::error::{AppError, Page};
use crate::extract::Admin;
use crate::state::Shared;
use crate::views::{client_badge, csrf_field, dash, Nav};

mod lifecycle;
mod page;

pub(crate) fn router() -> Routes {
    Routes::new()
        .get("/clients", VIEWER, clients)
        .post("/clients", OPERATOR, client_create)
        .get("/clients/{id}", VIEWER, page::client_view)
        .get("/clients/{id}/edit", OPERATOR, lifecycle::edit_page)
        .post("/clients/{id}/edit", OPERATOR, lifecycle::edit)
        .get(
            "/clients/{id}/deactivate",
            OPERATOR,
            lifecycle::deactivate_confirm,
        )
        .post("/clients/{id}/deactivate", OPERATOR, lifecycle::deactivate)
        .get(
            "/clients/{id}/reactivate",
            OPERATOR,
            lifecycle::reactivate_confirm,
        )
        .post("/clients/{id}/reactivate", OPERATOR, lifecycle::reactivate)
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
            div.col-lg-8[admin.can(AdminRole::Operator)].col-12[!admin.can(AdminRole::Operator)] {
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
            @if admin.can(AdminRole::Operator) { div.col-lg-4 {
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
            } }
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
