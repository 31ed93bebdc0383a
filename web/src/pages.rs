//! The administration pages. Every handler takes an [`Admin`] (no session:
//! redirect to `/login`), every POST checks the session's CSRF token first,
//! and every change goes through the core's store with the admin as actor,
//! so it is written to the audit log in the change's own transaction.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use heratio_keys_core::model::{now_ms, DAY_MS};
use heratio_keys_core::store::UsageEntry;
use heratio_keys_core::{
    issue, Client, CredentialInfo, ErrorKind, IssueRequest, Kind, NewClient, Scopes, StatsQuery,
    Status, UsageQuery,
};
use maud::{html, Markup};
use serde::Deserialize;

use crate::app::{AppError, Shared};
use crate::auth::{Admin, CsrfForm};
use crate::util::{parse_date, parse_date_end, short_time};
use crate::views::{self, csrf_field, dash, state_badge, status_badge, Ctx, Nav};

/// Rows per usage-log page.
const PAGE_SIZE: u64 = 50;

type Page = Result<Response, AppError>;

fn render(app: &Shared, admin: &Admin, nav: Nav, title: &str, body: Markup) -> Page {
    let flash = admin.take_flash(app);
    let ctx = Ctx {
        user: &admin.user,
        csrf: &admin.csrf,
        flash: &flash,
        nav,
    };
    Ok(Html(views::page(&ctx, title, body).into_string()).into_response())
}

fn parse_id(text: &str) -> Result<i64, AppError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)
}

fn kind_from_slug(slug: &str) -> Result<Kind, AppError> {
    match slug {
        "api" => Ok(Kind::ApiKey),
        "ai" => Ok(Kind::AiToken),
        _ => Err(AppError::NotFound),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn plural_label(kind: Kind) -> &'static str {
    match kind {
        Kind::ApiKey => "API keys",
        Kind::AiToken => "AI tokens",
    }
}

fn section_id(kind: Kind) -> &'static str {
    match kind {
        Kind::ApiKey => "api-keys",
        Kind::AiToken => "ai-tokens",
    }
}

/// Percent-encodes a query-string value.
fn enc(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------- dashboard

fn stat_card(id: &str, title: &str, value: i64, note: &str, href: &str) -> Markup {
    html! {
        div.col-6.col-lg-3 {
            a.card.h-100.text-decoration-none.stat-card href=(href) {
                div.card-body {
                    div.text-muted.small.text-uppercase { (title) }
                    div.display-6.fw-semibold id=(id) { (value) }
                    div.small.text-muted { (note) }
                }
            }
        }
    }
}

pub(crate) async fn dashboard(State(app): State<Shared>, admin: Admin) -> Page {
    let (stats, audit) = app
        .store(|s| {
            let stats = s.usage_stats(&StatsQuery::last_30_days())?;
            let audit = s.audit_log(8)?;
            Ok((stats, audit))
        })
        .await?;
    let body = html! {
        h1.h3.mb-4 { "Dashboard" }
        div.row.g-3.mb-4 {
            (stat_card("count-clients", "Clients", stats.clients,
                &format!("{} active", stats.active_clients), "/clients"))
            (stat_card("count-api-keys", "Active API keys", stats.active_api_keys,
                "not revoked, not expired", "/clients"))
            (stat_card("count-ai-tokens", "Active AI tokens", stats.active_ai_tokens,
                "not revoked, not expired", "/clients"))
            (stat_card("count-validations", "Validations, 30 days", stats.validations,
                &format!("{} valid", stats.valid_validations), "/usage"))
        }
        div.card.mb-4 {
            div.card-header { "Validations per day (UTC, last 30 days)" }
            div.card-body { (views::usage_chart(&stats.per_day)) }
        }
        div.card {
            div.card-header.d-flex.justify-content-between {
                span { "Recent administration" }
                a href="/audit" { "Audit log" }
            }
            div.table-responsive {
                table.table.table-sm.mb-0.align-middle {
                    thead { tr { th { "Time (UTC)" } th { "Who" } th { "Action" } th.d-none.d-md-table-cell { "Target" } } }
                    tbody {
                        @if audit.is_empty() {
                            tr { td colspan="4" .text-muted { "Nothing yet." } }
                        }
                        @for a in &audit {
                            tr {
                                td.text-nowrap { (short_time(a.at)) }
                                td { (a.actor) " " span.badge.text-bg-light { (a.source) } }
                                td { code { (a.action) } }
                                td.d-none.d-md-table-cell { (a.target_type) @if let Some(id) = a.target_id { " " (id) } }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&app, &admin, Nav::Dashboard, "Dashboard", body)
}

// ---------------------------------------------------------------- clients

#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
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

pub(crate) async fn clients(
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
                                    td { (state_badge(if c.active { "active" } else { "inactive" })) }
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
    render(&app, &admin, Nav::Clients, "Clients", body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ClientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    organization: String,
}

pub(crate) async fn client_create(
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

fn credential_table(kind: Kind, creds: &[CredentialInfo], now: i64) -> Markup {
    html! {
        div.table-responsive {
            table.table.table-sm.align-middle.mb-0 id={ (section_id(kind)) "-table" } {
                thead { tr {
                    th { "ID" } th { "Prefix" } th { "Label" } th.d-none.d-md-table-cell { "Scopes" }
                    th { "Status" } th.d-none.d-lg-table-cell { "Expires" }
                    th.d-none.d-lg-table-cell { "Last used" } th.d-none.d-md-table-cell { "Uses" } th {}
                } }
                tbody {
                    @if creds.is_empty() {
                        tr { td colspan="9" .text-muted { "None yet." } }
                    }
                    @for c in creds {
                        @let state = c.state(now).as_str();
                        tr data-credential-id=(c.id) {
                            td { (c.id) }
                            td { code.text-nowrap { (c.display_prefix) "…" } }
                            td { (c.name) }
                            td.d-none.d-md-table-cell { code { (c.scopes.to_stored()) } }
                            td { (state_badge(state)) }
                            td.d-none.d-lg-table-cell.text-nowrap { (c.expires_at.map_or_else(|| "never".to_owned(), short_time)) }
                            td.d-none.d-lg-table-cell.text-nowrap { (c.last_used_at.map_or_else(|| "never".to_owned(), short_time)) }
                            td.d-none.d-md-table-cell { (c.usage_count) }
                            td.text-end {
                                @if c.active {
                                    a.btn.btn-sm.btn-outline-danger
                                        href={ "/credentials/" (kind.short_name()) "/" (c.id) "/revoke" } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn generate_form(client_id: i64, kind: Kind, csrf: &str) -> Markup {
    let slug = kind.short_name();
    html! {
        form.row.g-2.align-items-end method="post" action={ "/clients/" (client_id) "/generate/" (slug) }
            id={ "generate-" (slug) } {
            (csrf_field(csrf))
            div.col-12.col-md-3 {
                label.form-label.small for={ (slug) "-label" } { "Label" }
                input.form-control.form-control-sm id={ (slug) "-label" } name="name" required maxlength="255"
                    placeholder="production";
            }
            div.col-12.col-md-3 {
                label.form-label.small for={ (slug) "-scopes" } { "Scopes" }
                input.form-control.form-control-sm id={ (slug) "-scopes" } name="scopes" value="*"
                    placeholder="read,write" aria-describedby={ (slug) "-scopes-help" };
            }
            div.col-6.col-md-2 {
                label.form-label.small for={ (slug) "-expires" } { "Expires" }
                select.form-select.form-select-sm id={ (slug) "-expires" } name="expires" {
                    option value="never" selected { "never" }
                    option value="7d" { "in 7 days" }
                    option value="30d" { "in 30 days" }
                    option value="90d" { "in 90 days" }
                    option value="365d" { "in 1 year" }
                    option value="date" { "on date…" }
                }
            }
            div.col-6.col-md-2 {
                label.form-label.small for={ (slug) "-expires-on" } { "Date (UTC)" }
                input.form-control.form-control-sm id={ (slug) "-expires-on" } name="expires_on" type="date";
            }
            div.col-12.col-md-2 {
                button.btn.btn-primary.btn-sm.w-100 type="submit" { "Generate" }
            }
            div.col-12.form-text id={ (slug) "-scopes-help" } {
                "Comma-separated, e.g. " code { "read,write" } "; " code { "*" } " grants every scope."
            }
        }
    }
}

pub(crate) async fn client_view(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let (client, api, ai) = app
        .store(move |s| {
            let client = s.get_client(id)?;
            let api = s.list_credentials(Kind::ApiKey, id)?;
            let ai = s.list_credentials(Kind::AiToken, id)?;
            Ok((client, api, ai))
        })
        .await?;
    let now = now_ms();
    let body = html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb {
                li.breadcrumb-item { a href="/clients" { "Clients" } }
                li.breadcrumb-item.active aria-current="page" { (client.name) }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto.text-break { (client.name) " " (state_badge(if client.active { "active" } else { "inactive" })) }
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
    render(&app, &admin, Nav::Clients, &client.name, body)
}

pub(crate) async fn deactivate_confirm(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
) -> Page {
    let id = parse_id(&id)?;
    let (client, api, ai) = app
        .store(move |s| {
            let client = s.get_client(id)?;
            let api = s.list_credentials(Kind::ApiKey, id)?;
            let ai = s.list_credentials(Kind::AiToken, id)?;
            Ok((client, api, ai))
        })
        .await?;
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
                            strong #revoke-count-api { (plural(api_n, "API key", "API keys")) }
                            " and "
                            strong #revoke-count-ai { (plural(ai_n, "AI token", "AI tokens")) }
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
    render(&app, &admin, Nav::Clients, "Deactivate client", body)
}

pub(crate) async fn deactivate(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let id = parse_id(&id)?;
    let actor = admin.actor();
    let d = app.store(move |s| s.deactivate_client(id, &actor)).await?;
    admin.flash(
        &app,
        "success",
        format!(
            "Deactivated client {}: revoked {} and {}.",
            d.client_id,
            plural(d.api_keys_revoked, "API key", "API keys"),
            plural(d.ai_tokens_revoked, "AI token", "AI tokens")
        ),
    );
    Ok(Redirect::to(&format!("/clients/{id}")).into_response())
}

// ---------------------------------------------------------------- credentials

#[derive(Debug, Deserialize)]
pub(crate) struct GenerateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    expires_on: String,
}

fn expiry(form: &GenerateForm, now: i64) -> Result<Option<i64>, String> {
    let date = form.expires_on.trim();
    match form.expires.trim() {
        "" | "never" if date.is_empty() => Ok(None),
        "" | "never" | "date" => {
            let at = parse_date(date)
                .ok_or_else(|| "Choose an expiry date (YYYY-MM-DD), or \"never\".".to_owned())?;
            if at <= now {
                return Err("The expiry date must be in the future.".to_owned());
            }
            Ok(Some(at))
        }
        other => {
            let days: i64 = other
                .strip_suffix('d')
                .and_then(|d| d.parse().ok())
                .filter(|d| (1..=3660).contains(d))
                .ok_or_else(|| format!("Unknown expiry choice {other:?}."))?;
            if !date.is_empty() {
                return Err("Choose either a period or a date, not both.".to_owned());
            }
            Ok(Some(now + days * DAY_MS))
        }
    }
}

pub(crate) async fn generate(
    State(app): State<Shared>,
    admin: Admin,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<GenerateForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let client_id = parse_id(&id)?;
    let kind = kind_from_slug(&slug)?;
    let back = format!("/clients/{client_id}#{}", section_id(kind));
    let scopes_text = form.scopes.trim();
    let scopes = if scopes_text.is_empty() {
        Ok(Scopes::all())
    } else {
        Scopes::parse(scopes_text).map_err(|e| e.message().to_owned())
    };
    let request = scopes.and_then(|scopes| {
        Ok(IssueRequest {
            client_id,
            name: form.name.trim().to_owned(),
            scopes,
            expires_at: expiry(&form, now_ms())?,
        })
    });
    let request = match request {
        Ok(r) => r,
        Err(message) => {
            admin.flash(&app, "danger", message);
            return Ok(Redirect::to(&back).into_response());
        }
    };
    let actor = admin.actor();
    let issued = match app.store(move |s| issue(s, kind, &request, &actor)).await {
        Ok(i) => i,
        Err(AppError::Core(e))
            if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict) =>
        {
            admin.flash(&app, "danger", e.message().to_owned());
            return Ok(Redirect::to(&back).into_response());
        }
        Err(e) => return Err(e),
    };
    let info = &issued.info;
    let body = html! {
        div.row.justify-content-center {
            div.col-lg-9 {
                h1.h3.mb-3 { "New " (kind.label()) " for client " (info.client_id) }
                div.alert.alert-warning role="alert" {
                    strong { "Copy this " (kind.label()) " now. " }
                    "It is shown only this once: only its SHA-256 digest is stored, so nobody can display it again. "
                    "If it is lost, revoke it and generate a new one."
                }
                label.form-label for="new-key" { "The new " (kind.label()) }
                textarea.form-control.font-monospace.mb-2 #new-key rows="2" readonly
                    autocomplete="off" spellcheck="false" { (issued.key.expose()) }
                div.d-flex.align-items-center.gap-3.mb-3 {
                    button.btn.btn-primary #copy-key type="button" data-copy-target="new-key" { "Copy to clipboard" }
                    span.small.text-success #copy-status aria-live="polite" {}
                }
                dl.row {
                    dt.col-sm-3 { "ID" } dd.col-sm-9 #new-key-id { (info.id) }
                    dt.col-sm-3 { "Label" } dd.col-sm-9 { (info.name) }
                    dt.col-sm-3 { "Scopes" } dd.col-sm-9 { code { (info.scopes.to_stored()) } }
                    dt.col-sm-3 { "Expires (UTC)" } dd.col-sm-9 { (info.expires_at.map_or_else(|| "never".to_owned(), short_time)) }
                }
                a.btn.btn-outline-secondary #done href=(back) { "I have stored it: back to the client" }
            }
        }
    };
    render(
        &app,
        &admin,
        Nav::Clients,
        &format!("New {}", kind.label()),
        body,
    )
}

pub(crate) async fn revoke_confirm(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
) -> Page {
    let kind = kind_from_slug(&slug)?;
    let id = parse_id(&id)?;
    let (c, client) = app
        .store(move |s| {
            let c = s.get_credential(kind, id)?;
            let client = s.get_client(c.client_id)?;
            Ok((c, client))
        })
        .await?;
    if !c.active {
        admin.flash(
            &app,
            "info",
            format!("{} {} is already revoked.", kind.label(), c.id),
        );
        return Ok(Redirect::to(&format!("/clients/{}", c.client_id)).into_response());
    }
    let body = html! {
        div.row.justify-content-center {
            div.col-lg-7 {
                div.card.border-danger {
                    div.card-header.text-bg-danger { "Revoke " (kind.label()) }
                    div.card-body {
                        p.lead {
                            "Revoke " (kind.label()) " " strong { (c.id) } " ("
                            code { (c.display_prefix) "…" } ", " (c.name) ") of client "
                            a href={ "/clients/" (client.id) } { (client.name) } "?"
                        }
                        p { "Every validating process refuses it within about a second. This cannot be undone." }
                        form.d-flex.gap-2 method="post" action={ "/credentials/" (slug) "/" (c.id) "/revoke" } {
                            (csrf_field(&admin.csrf))
                            button.btn.btn-danger type="submit" #confirm-revoke { "Revoke" }
                            a.btn.btn-outline-secondary href={ "/clients/" (client.id) } { "Cancel" }
                        }
                    }
                }
            }
        }
    };
    render(&app, &admin, Nav::Clients, "Revoke", body)
}

pub(crate) async fn revoke(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let kind = kind_from_slug(&slug)?;
    let id = parse_id(&id)?;
    let actor = admin.actor();
    match app
        .store(move |s| s.revoke_credential(kind, id, &actor))
        .await
    {
        Ok(c) => {
            admin.flash(
                &app,
                "success",
                format!(
                    "Revoked {} {} ({}…, {}).",
                    kind.label(),
                    c.id,
                    c.display_prefix,
                    c.name
                ),
            );
            Ok(
                Redirect::to(&format!("/clients/{}#{}", c.client_id, section_id(kind)))
                    .into_response(),
            )
        }
        Err(AppError::Core(e)) if e.kind() == ErrorKind::Conflict => {
            admin.flash(&app, "info", e.message().to_owned());
            let client = app
                .store(move |s| s.get_credential(kind, id))
                .await?
                .client_id;
            Ok(Redirect::to(&format!("/clients/{client}")).into_response())
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- usage

#[derive(Debug, Default, Deserialize)]
pub(crate) struct UsageParams {
    #[serde(default)]
    client: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: String,
}

impl UsageParams {
    fn query_string(&self, page: u64) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("client", &self.client),
            ("kind", &self.kind),
            ("credential", &self.credential),
            ("outcome", &self.outcome),
            ("ip", &self.ip),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            let v = v.trim();
            if !v.is_empty() {
                parts.push(format!("{k}={}", enc(v)));
            }
        }
        parts.push(format!("page={page}"));
        parts.join("&")
    }

    /// The store query, or the messages explaining which filters are wrong.
    fn to_query(&self) -> Result<(UsageQuery, u64), Vec<String>> {
        let mut errors = Vec::new();
        let mut q = UsageQuery {
            limit: PAGE_SIZE,
            ..UsageQuery::default()
        };
        let client = self.client.trim();
        if !client.is_empty() {
            match client.parse::<i64>() {
                Ok(id) if id > 0 => q.client_id = Some(id),
                _ => errors.push("Client must be a client id.".to_owned()),
            }
        }
        let kind = match self.kind.trim() {
            "" => None,
            "api" => Some(Kind::ApiKey),
            "ai" => Some(Kind::AiToken),
            _ => {
                errors.push("Kind must be API key or AI token.".to_owned());
                None
            }
        };
        let cred = self.credential.trim();
        if kind.is_some() && cred.is_empty() {
            errors
                .push("The kind filters together with a key id: enter the key id too.".to_owned());
        }
        if !cred.is_empty() {
            match (cred.parse::<i64>(), kind) {
                (Ok(id), Some(kind)) if id > 0 => q.credential = Some((kind, id)),
                (Ok(id), None) if id > 0 => {
                    errors.push(
                        "Choose the kind (API key or AI token) of the credential id.".to_owned(),
                    );
                }
                _ => errors.push("Credential must be a credential id.".to_owned()),
            }
        }
        let outcome = self.outcome.trim();
        if !outcome.is_empty() {
            match Status::from_name(outcome) {
                Some(s) => q.status = Some(s),
                None => errors.push(format!("Unknown outcome {outcome:?}.")),
            }
        }
        let ip = self.ip.trim();
        if !ip.is_empty() {
            q.ip = Some(ip.to_owned());
        }
        let from = self.from.trim();
        if !from.is_empty() {
            match parse_date(from) {
                Some(t) => q.since = Some(t),
                None => errors.push("From must be a date (YYYY-MM-DD).".to_owned()),
            }
        }
        let to = self.to.trim();
        if !to.is_empty() {
            match parse_date_end(to) {
                Some(t) => q.until = Some(t),
                None => errors.push("To must be a date (YYYY-MM-DD).".to_owned()),
            }
        }
        let page = match self.page.trim() {
            "" => 1,
            p => p
                .parse::<u64>()
                .ok()
                .filter(|p| *p >= 1 && *p <= 1_000_000)
                .unwrap_or_else(|| {
                    errors.push("Page must be a positive number.".to_owned());
                    1
                }),
        };
        q.offset = (page - 1) * PAGE_SIZE;
        if errors.is_empty() {
            Ok((q, page))
        } else {
            Err(errors)
        }
    }
}

fn usage_row(e: &UsageEntry) -> Markup {
    let r = &e.record;
    html! {
        tr {
            td.text-nowrap { (short_time(r.at)) }
            td { (status_badge(r.status)) }
            td { (r.kind.short_name()) }
            td { @if let Some(id) = r.credential_id { (id) } @else { (dash()) } }
            td { @if let Some(id) = r.client_id { a href={ "/clients/" (id) } { (id) } } @else { (dash()) } }
            td.text-nowrap { @if let Some(ip) = &r.ip { (ip) } @else { (dash()) } }
            td.d-none.d-md-table-cell { @if let Some(ep) = &r.endpoint { code { (ep) } } @else { (dash()) } }
        }
    }
}

pub(crate) async fn usage(
    State(app): State<Shared>,
    admin: Admin,
    Query(params): Query<UsageParams>,
) -> Page {
    let parsed = params.to_query();
    let query = parsed.as_ref().ok().map(|(q, _)| q.clone());
    let (clients, log) = app
        .store(move |s| {
            let clients = s.list_clients()?;
            let log = match query {
                Some(q) => Some(s.usage_log(&q)?),
                None => None,
            };
            Ok((clients, log))
        })
        .await?;
    let page = parsed.as_ref().map_or(1, |(_, p)| *p);
    let errors = parsed.err().unwrap_or_default();
    let (rows, total) = log.unwrap_or_default();
    let first = (page - 1) * PAGE_SIZE;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let sel = |a: &str, b: &str| a.trim() == b;
    let body = html! {
        h1.h3.mb-3 { "Usage log" }
        form.row.g-2.mb-3.align-items-end method="get" action="/usage" #usage-filters {
            div.col-12.col-sm-6.col-lg-3 {
                label.form-label.small for="f-client" { "Client" }
                select.form-select.form-select-sm #f-client name="client" {
                    option value="" { "any" }
                    @for c in &clients {
                        option value=(c.id) selected[sel(&params.client, &c.id.to_string())] { (c.id) " · " (c.name) }
                    }
                }
            }
            div.col-6.col-sm-3.col-lg-2 {
                label.form-label.small for="f-kind" { "Kind" }
                select.form-select.form-select-sm #f-kind name="kind" {
                    option value="" { "any" }
                    option value="api" selected[sel(&params.kind, "api")] { "API key" }
                    option value="ai" selected[sel(&params.kind, "ai")] { "AI token" }
                }
            }
            div.col-6.col-sm-3.col-lg-1 {
                label.form-label.small for="f-credential" { "Key id" }
                input.form-control.form-control-sm #f-credential name="credential" inputmode="numeric" value=(params.credential.trim());
            }
            div.col-6.col-sm-4.col-lg-2 {
                label.form-label.small for="f-outcome" { "Outcome" }
                select.form-select.form-select-sm #f-outcome name="outcome" {
                    option value="" { "any" }
                    @for s in Status::ALL {
                        option value=(s.name()) selected[sel(&params.outcome, s.name())] { (s.name()) }
                    }
                }
            }
            div.col-6.col-sm-4.col-lg-2 {
                label.form-label.small for="f-ip" { "IP" }
                input.form-control.form-control-sm #f-ip name="ip" value=(params.ip.trim());
            }
            div.col-6.col-sm-4.col-lg-1 {
                label.form-label.small for="f-from" { "From" }
                input.form-control.form-control-sm #f-from name="from" type="date" value=(params.from.trim());
            }
            div.col-6.col-sm-4.col-lg-1 {
                label.form-label.small for="f-to" { "To" }
                input.form-control.form-control-sm #f-to name="to" type="date" value=(params.to.trim());
            }
            div.col-12.col-sm-4.col-lg-12.d-flex.gap-2 {
                button.btn.btn-primary.btn-sm type="submit" { "Filter" }
                a.btn.btn-outline-secondary.btn-sm href="/usage" { "Reset" }
            }
        }
        @for e in &errors {
            div.alert.alert-danger role="alert" { (e) }
        }
        p.small.text-muted #usage-summary {
            @if total == 0 { "No matching validations." }
            @else { "Showing " (first + 1) "–" (first + rows.len() as u64) " of " (total) " validations (newest first, times UTC)." }
        }
        div.table-responsive {
            table.table.table-sm.table-striped.align-middle #usage-table {
                thead { tr {
                    th { "Time" } th { "Outcome" } th { "Kind" } th { "Key" } th { "Client" } th { "IP" }
                    th.d-none.d-md-table-cell { "Endpoint" }
                } }
                tbody { @for e in &rows { (usage_row(e)) } }
            }
        }
        @if pages > 1 {
            nav aria-label="Usage log pages" {
                ul.pagination.pagination-sm.flex-wrap {
                    li.page-item.disabled[page <= 1] {
                        a.page-link href={ "/usage?" (params.query_string(page.saturating_sub(1).max(1))) } { "Previous" }
                    }
                    li.page-item.disabled { span.page-link { "Page " (page) " of " (pages) } }
                    li.page-item.disabled[page >= pages] {
                        a.page-link #next-page href={ "/usage?" (params.query_string(page + 1)) } { "Next" }
                    }
                }
            }
        }
    };
    render(&app, &admin, Nav::Usage, "Usage log", body)
}

// ---------------------------------------------------------------- audit

pub(crate) async fn audit(State(app): State<Shared>, admin: Admin) -> Page {
    let entries = app.store(|s| s.audit_log(200)).await?;
    let body = html! {
        h1.h3.mb-3 { "Audit log" }
        p.small.text-muted { "The 200 most recent management actions, from the CLI, this interface and programs (times UTC)." }
        div.table-responsive {
            table.table.table-sm.table-striped.align-middle #audit-table {
                thead { tr {
                    th { "Time" } th { "Who" } th { "Source" } th.d-none.d-md-table-cell { "IP" }
                    th { "Action" } th { "Target" } th.d-none.d-lg-table-cell { "Detail" }
                } }
                tbody {
                    @for a in &entries {
                        tr {
                            td.text-nowrap { (short_time(a.at)) }
                            td { (a.actor) }
                            td { (a.source) }
                            td.d-none.d-md-table-cell { @if let Some(ip) = &a.ip { (ip) } @else { (dash()) } }
                            td { code { (a.action) } }
                            td { (a.target_type) @if let Some(id) = a.target_id { " " (id) } }
                            td.d-none.d-lg-table-cell { @if let Some(d) = &a.detail { (d) } }
                        }
                    }
                }
            }
        }
    };
    render(&app, &admin, Nav::Audit, "Audit log", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::model::parse_rfc3339;

    #[test]
    fn percent_encoding() {
        assert_eq!(enc("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(enc("192.0.2.1"), "192.0.2.1");
    }

    #[test]
    fn expiry_choices() {
        let form = |expires: &str, on: &str| GenerateForm {
            csrf: String::new(),
            name: String::new(),
            scopes: String::new(),
            expires: expires.to_owned(),
            expires_on: on.to_owned(),
        };
        let now = 1_000 * DAY_MS;
        assert_eq!(expiry(&form("never", ""), now), Ok(None));
        assert_eq!(expiry(&form("30d", ""), now), Ok(Some(now + 30 * DAY_MS)));
        assert_eq!(
            expiry(&form("date", "1973-01-01"), now),
            Ok(Some(parse_rfc3339("1973-01-01T00:00:00Z").unwrap()))
        );
        assert!(expiry(&form("date", "1970-01-01"), now).is_err());
        assert!(expiry(&form("date", ""), now).is_err());
        assert!(expiry(&form("30d", "1973-01-01"), now).is_err());
        assert!(expiry(&form("1y", ""), now).is_err());
    }
}
