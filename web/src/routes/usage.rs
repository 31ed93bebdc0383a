//! `/usage`: the usage log, filtered and paged. Filters come from the query
//! string and are checked here; a bad one is explained on the page rather
//! than refused, so the form can be corrected.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use heratio_keys_core::store::UsageEntry;
use heratio_keys_core::{Kind, Status, UsageQuery};
use maud::{html, Markup};
use serde::Deserialize;

use crate::error::Page;
use crate::extract::Admin;
use crate::params;
use crate::state::Shared;
use crate::views::{dash, short_time, status_badge, Nav};

/// Rows per usage-log page.
const PAGE_SIZE: u64 = 50;

pub(crate) fn router() -> Router<Shared> {
    Router::new().route("/usage", get(usage))
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

#[derive(Debug, Default, Deserialize)]
struct UsageParams {
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
            text => match text.parse::<Kind>() {
                Ok(kind) => Some(kind),
                Err(_) => {
                    errors.push("Kind must be API key or AI token.".to_owned());
                    None
                }
            },
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
            match params::date(from) {
                Some(t) => q.since = Some(t),
                None => errors.push("From must be a date (YYYY-MM-DD).".to_owned()),
            }
        }
        let to = self.to.trim();
        if !to.is_empty() {
            match params::date_end(to) {
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

async fn usage(State(app): State<Shared>, admin: Admin, Query(params): Query<UsageParams>) -> Page {
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
    Ok(admin.page(&app, Nav::Usage, "Usage log", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(enc("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(enc("192.0.2.1"), "192.0.2.1");
    }
}
