//! `/`: the dashboard. Counts, the validations chart and the latest
//! administration, all from the core's reports.

use axum::extract::State;
use heratio_keys_core::model::now_ms;
use heratio_keys_core::{Actor, Source, StatsQuery};
use maud::{html, Markup};

use crate::access::{Routes, VIEWER};
use crate::error::Page;
use crate::extract::Admin;
use crate::state::Shared;
use crate::views::{maintenance_table, short_time, usage_chart, Nav};

pub(crate) fn router() -> Routes {
    Routes::new().get("/", VIEWER, dashboard)
}

fn stat_card(id: &str, title: &str, value: i64, note: &str, href: &str) -> Markup {
    html! {
        div.col-6.col-lg {
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

async fn dashboard(State(app): State<Shared>, admin: Admin) -> Page {
    let (stats, audit, soon) = app
        .store(|s| {
            let stats = s.usage_stats(&StatsQuery::last_30_days())?;
            let audit = s.audit_log(8)?;
            // The maintenance pass as a dry run: it lists what expires or
            // will be revoked for idleness within 7 days and writes nothing
            // (the actor is never recorded).
            let soon = s.maintain(now_ms(), false, &Actor::new("dashboard", Source::Web))?;
            Ok((stats, audit, soon))
        })
        .await?;
    let expiring = i64::try_from(soon.expiring_soon.len()).unwrap_or(i64::MAX);
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
            (stat_card("count-expiring-soon", "Expiring within 7 days", expiring,
                "keys and tokens, still active", "/#expiring-soon"))
        }
        @if !soon.expiring_soon.is_empty() || !soon.revoke_soon.is_empty() {
            div.card.mb-4 #expiring-soon {
                div.card-header { "Coming up within 7 days (UTC)" }
                @if !soon.expiring_soon.is_empty() {
                    (maintenance_table("expiring-table", "Expires", &soon.expiring_soon))
                }
                @if !soon.revoke_soon.is_empty() {
                    (maintenance_table("idle-table", "Revoked for idleness", &soon.revoke_soon))
                }
            }
        }
        div.card.mb-4 {
            div.card-header { "Validations per day (UTC, last 30 days)" }
            div.card-body { (usage_chart(&stats.per_day)) }
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
    Ok(admin.page(&app, Nav::Dashboard, "Dashboard", body))
}
