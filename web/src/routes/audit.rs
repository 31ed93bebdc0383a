//! `/audit`: the latest management actions from every source (CLI, this
//! interface, programs), as the core's audit log records them.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maud::html;

use crate::error::Page;
use crate::extract::Admin;
use crate::state::Shared;
use crate::views::{dash, short_time, Nav};

pub(crate) fn router() -> Router<Shared> {
    Router::new().route("/audit", get(audit))
}

async fn audit(State(app): State<Shared>, admin: Admin) -> Page {
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
    Ok(admin.page(&app, Nav::Audit, "Audit log", body))
}
