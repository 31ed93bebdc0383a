//! `/usage`: the usage log, filtered and paged (filters in `filters`), the
//! per-minute counts of validations that matched no key (kept as counts,
//! not rows, since issue 13), and the same rows exported as CSV or JSON
//! lines (`/usage/export`, in `export`).

use axum::extract::{Query, State};
use heratio_keys_core::model::RejectedUsage;
use heratio_keys_core::{Status, UsageQuery};
use maud::{html, Markup};

use crate::access::{Routes, VIEWER};
use crate::error::Page;
use crate::extract::Admin;
use crate::state::Shared;
use crate::views::{short_time, status_badge, usage_table, Nav};

mod export;
mod filters;

use filters::UsageParams;

/// Rows per usage-log page.
const PAGE_SIZE: u64 = 50;
/// Per-minute rejection counts shown (newest first).
const REJECTED_ROWS: u64 = 50;

pub(crate) fn router() -> Routes {
    Routes::new()
        .get("/usage", VIEWER, usage)
        .get("/usage/export", VIEWER, export::usage_export)
}

/// The rejected counts, or why they do not apply.
fn rejected_section(rejected: Option<&(Vec<RejectedUsage>, u64)>, narrowed: bool) -> Markup {
    html! {
        section.card.mt-4 #rejected {
            div.card-header { "Keys that matched nothing (per minute, newest first, UTC)" }
            div.card-body.pb-0 {
                p.small.text-muted {
                    "Validations of keys that match no stored key are counted per minute, source and outcome "
                    "instead of being logged one row each, so a flood of made-up keys cannot grow the usage log."
                }
            }
            @if narrowed {
                p.small.text-muted.px-3 #rejected-summary { "Not shown while filtering by client or key: these validations have neither." }
            } @else if let Some((rows, total)) = rejected {
                p.small.px-3 #rejected-summary {
                    @if *total == 0 { "None matching." }
                    @else { (total) " validations in all; the latest " (rows.len()) " minutes:" }
                }
                @if !rows.is_empty() {
                    div.table-responsive {
                        table.table.table-sm.table-striped.align-middle.mb-0 #rejected-table {
                            thead { tr { th { "Minute" } th { "Kind" } th { "Source" } th { "Outcome" } th.text-end { "Count" } } }
                            tbody {
                                @for r in rows {
                                    tr {
                                        td.text-nowrap { (short_time(r.minute)) }
                                        td { (r.kind.short_name()) }
                                        td.text-nowrap { @if r.ip.is_empty() { "unknown" } @else { (r.ip) } }
                                        td { (status_badge(r.status)) }
                                        td.text-end { (r.count) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn usage(State(app): State<Shared>, admin: Admin, Query(params): Query<UsageParams>) -> Page {
    let parsed = params.to_query(PAGE_SIZE);
    let query = parsed.as_ref().ok().map(|(q, _)| q.clone());
    let narrowed = query
        .as_ref()
        .is_some_and(|q| q.client_id.is_some() || q.credential.is_some());
    let (clients, log, rejected) = app
        .store(move |s| {
            let clients = s.list_clients()?;
            let (log, rejected) = match query {
                Some(q) => {
                    let log = s.usage_log(&q)?;
                    let rejected = if narrowed {
                        None
                    } else {
                        Some(s.rejected_usage(&UsageQuery {
                            offset: 0,
                            limit: REJECTED_ROWS,
                            ..q
                        })?)
                    };
                    (Some(log), rejected)
                }
                None => (None, None),
            };
            Ok((clients, log, rejected))
        })
        .await?;
    let page = parsed.as_ref().map_or(1, |(_, p)| *p);
    let errors = parsed.err().unwrap_or_default();
    let (rows, total) = log.unwrap_or_default();
    let first = (page - 1) * PAGE_SIZE;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let sel = |a: &str, b: &str| a.trim() == b;
    let filters = params.filter_string();
    let export_query = |format: &str| {
        if filters.is_empty() {
            format!("format={format}")
        } else {
            format!("{filters}&format={format}")
        }
    };
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
            div.col-12.col-sm-4.col-lg-12.d-flex.flex-wrap.gap-2 {
                button.btn.btn-primary.btn-sm type="submit" { "Filter" }
                a.btn.btn-outline-secondary.btn-sm href="/usage" { "Reset" }
                @if errors.is_empty() {
                    span.ms-lg-auto.d-flex.gap-2 {
                        a.btn.btn-outline-success.btn-sm #export-csv href={ "/usage/export?" (export_query("csv")) } { "Export CSV" }
                        a.btn.btn-outline-success.btn-sm #export-json href={ "/usage/export?" (export_query("json")) } { "Export JSON lines" }
                    }
                }
            }
        }
        @for e in &errors {
            div.alert.alert-danger role="alert" { (e) }
        }
        p.small.text-muted #usage-summary {
            @if total == 0 { "No matching validations." }
            @else { "Showing " (first + 1) "–" (first + rows.len() as u64) " of " (total) " validations (newest first, times UTC)." }
        }
        (usage_table("usage-table", &rows))
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
    let body = html! { (body) (rejected_section(rejected.as_ref(), narrowed)) };
    Ok(admin.page(&app, Nav::Usage, "Usage log", body))
}
