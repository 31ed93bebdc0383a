//! Tables of log rows shown on several pages: usage rows (the usage log, a
//! key's last uses) and audit rows (the audit log, a key's or client's
//! trail).

use heratio_keys_core::store::UsageEntry;
use heratio_keys_core::AuditEntry;
use maud::{html, Markup};

use super::credential::key_path;
use super::widgets::{dash, short_time, status_badge};

/// Usage-log rows, newest first (times UTC). An empty table keeps an
/// empty body (tests and scripts count its rows) and says so below it.
pub(crate) fn usage_table(id: &str, rows: &[UsageEntry]) -> Markup {
    html! {
        @if rows.is_empty() { p.text-muted.small.px-3.pt-2.mb-0 { "No validations." } }
        div.table-responsive {
            table.table.table-sm.table-striped.align-middle.mb-0 id=(id) {
                thead { tr {
                    th { "Time" } th { "Outcome" } th { "Kind" } th { "Key" } th { "Client" } th { "IP" }
                    th.d-none.d-md-table-cell { "Endpoint" }
                } }
                tbody {
                    @for e in rows {
                        @let r = &e.record;
                        tr {
                            td.text-nowrap { (short_time(r.at)) }
                            td { (status_badge(r.status)) }
                            td { (r.kind.short_name()) }
                            td { @if let Some(id) = r.credential_id { a href=(key_path(r.kind, id)) { (id) } } @else { (dash()) } }
                            td { @if let Some(id) = r.client_id { a href={ "/clients/" (id) } { (id) } } @else { (dash()) } }
                            td.text-nowrap { @if let Some(ip) = &r.ip { (ip) } @else { (dash()) } }
                            td.d-none.d-md-table-cell.text-break { @if let Some(ep) = &r.endpoint { code { (ep) } } @else { (dash()) } }
                        }
                    }
                }
            }
        }
    }
}

/// Where an audit row's target lives in this interface, if anywhere.
fn target_link(a: &AuditEntry) -> Option<String> {
    let id = a.target_id?;
    match a.target_type.as_str() {
        "client" => Some(format!("/clients/{id}")),
        "api_key" => Some(format!("/credentials/api/{id}")),
        "ai_token" => Some(format!("/credentials/ai/{id}")),
        _ => None,
    }
}

/// Audit rows, newest first (times UTC); empty as [`usage_table`].
pub(crate) fn audit_table(id: &str, entries: &[AuditEntry]) -> Markup {
    html! {
        @if entries.is_empty() { p.text-muted.small.px-3.pt-2.mb-0 { "Nothing recorded." } }
        div.table-responsive {
            table.table.table-sm.table-striped.align-middle.mb-0 id=(id) {
                thead { tr {
                    th { "Time" } th { "Who" } th { "Source" } th.d-none.d-md-table-cell { "IP" }
                    th { "Action" } th { "Target" } th.d-none.d-lg-table-cell { "Detail" }
                } }
                tbody {
                    @for a in entries {
                        tr {
                            td.text-nowrap { (short_time(a.at)) }
                            td.text-break { (a.actor) }
                            td { (a.source) }
                            td.d-none.d-md-table-cell { @if let Some(ip) = &a.ip { (ip) } @else { (dash()) } }
                            td { code { (a.action) } }
                            td.text-nowrap {
                                @match target_link(a) {
                                    Some(href) => { a href=(href) { (a.target_type) " " (a.target_id.unwrap_or_default()) } }
                                    None => { (a.target_type) @if let Some(id) = a.target_id { " " (id) } }
                                }
                            }
                            td.d-none.d-lg-table-cell.text-break { @if let Some(d) = &a.detail { (d) } }
                        }
                    }
                }
            }
        }
    }
}
