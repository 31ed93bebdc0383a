//! The client page (`GET /clients/ID`): details, its API keys and AI tokens
//! (with the generate forms for roles that may generate), its validations
//! per day and its audit trail.

use axum::extract::{Path, State};
use heratio_keys_core::model::{now_ms, DAY_MS};
use heratio_keys_core::{AdminRole, AuditQuery, Kind, StatsQuery};
use maud::html;

use crate::error::Page;
use crate::extract::Admin;
use crate::params;
use crate::state::Shared;
use crate::views::{
    audit_table, client_badge, credential_table, dash, generate_form, plural_label, section_id,
    short_time, usage_chart, Nav,
};

/// Audit rows shown on the page.
const TRAIL: u64 = 50;

/// An idle-revoke period as a duration the core parses back (`30d`).
pub(super) fn period(ms: i64) -> String {
    for (unit, size) in [
        ("w", 7 * DAY_MS),
        ("d", DAY_MS),
        ("h", 3_600_000),
        ("m", 60_000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{}s", ms / 1000)
}

pub(super) async fn client_view(
    State(app): State<Shared>,
    admin: Admin,
    Path(id): Path<String>,
) -> Page {
    let id = params::id(&id)?;
    let (client, api, ai) = super::with_credentials(&app, id).await?;
    let (stats, (trail, trail_total)) = app
        .store(move |s| {
            let stats = s.usage_stats(&StatsQuery {
                client_id: Some(id),
                ..StatsQuery::last_30_days()
            })?;
            let trail = s.audit_query(&AuditQuery {
                target_type: Some("client".to_owned()),
                target_id: Some(id),
                limit: TRAIL,
                ..AuditQuery::default()
            })?;
            Ok((stats, trail))
        })
        .await?;
    let now = now_ms();
    let manage = admin.can(AdminRole::Operator);
    let any = !api.is_empty() || !ai.is_empty();
    let none_active = api.iter().chain(&ai).all(|c| !c.active);
    let body = html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb {
                li.breadcrumb-item { a href="/clients" { "Clients" } }
                li.breadcrumb-item.active aria-current="page" { (client.name) }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto.text-break { (client.name) " " (client_badge(client.active)) }
            div.d-flex.flex-wrap.gap-2 {
                a.btn.btn-outline-secondary.btn-sm href={ "/usage?client=" (client.id) } { "Usage log" }
                @if manage {
                    a.btn.btn-outline-primary.btn-sm #edit-link href={ "/clients/" (client.id) "/edit" } { "Edit" }
                    @if client.active {
                        a.btn.btn-outline-danger.btn-sm #deactivate-link href={ "/clients/" (client.id) "/deactivate" } { "Deactivate…" }
                    } @else {
                        a.btn.btn-outline-success.btn-sm #reactivate-link href={ "/clients/" (client.id) "/reactivate" } { "Reactivate…" }
                    }
                }
            }
        }
        dl.row.mb-4 #client-facts {
            dt.col-sm-3 { "ID" } dd.col-sm-9 { (client.id) }
            dt.col-sm-3 { "Contact e-mail" } dd.col-sm-9.text-break #client-email { (client.email) }
            dt.col-sm-3 { "Organisation" } dd.col-sm-9 #client-organization { @if let Some(o) = &client.organization { (o) } @else { (dash()) } }
            dt.col-sm-3 { "Idle keys revoked after" }
            dd.col-sm-9 #client-idle-revoke {
                @match client.idle_revoke_ms { Some(ms) => { (period(ms)) " without use" } None => { "never" } }
            }
            dt.col-sm-3 { "Created (UTC)" } dd.col-sm-9 { (short_time(client.created_at)) }
            @if let Some(d) = client.deactivated_at {
                dt.col-sm-3 { "Deactivated (UTC)" } dd.col-sm-9 { (short_time(d)) }
            }
            @if let Some(x) = &client.external_id {
                dt.col-sm-3 { "Imported from" } dd.col-sm-9 { code { (x) } }
            }
        }
        @if client.active && any && none_active {
            div.alert.alert-info #all-revoked-note {
                "None of this client's keys and tokens is active: revoked ones stay revoked, also after a reactivation."
                @if manage { " Generate new ones below." }
            }
        }
        @for (kind, creds) in [(Kind::ApiKey, &api), (Kind::AiToken, &ai)] {
            section.card.mb-4 id=(section_id(kind)) {
                div.card-header { (plural_label(kind)) " " span.badge.text-bg-secondary { (creds.len()) } }
                (credential_table(kind, creds, now, manage))
                @if client.active && manage {
                    div.card-body.border-top {
                        h2.h6 { "Generate a new " (kind.label()) }
                        (generate_form(client.id, kind, &admin.csrf))
                    }
                }
            }
        }
        section.card.mb-4 #client-usage {
            div.card-header { "Validations per day (UTC, last 30 days): " (stats.validations) ", " (stats.valid_validations) " valid" }
            div.card-body { (usage_chart(&stats.per_day)) }
        }
        section.card #client-audit {
            div.card-header { "Audit trail (" (trail.len()) " of " (trail_total) ", newest first)" }
            (audit_table("client-audit-table", &trail))
        }
    };
    Ok(admin.page(&app, Nav::Clients, &client.name, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_back() {
        assert_eq!(period(30 * DAY_MS), "30d");
        assert_eq!(period(14 * DAY_MS), "2w");
        assert_eq!(period(36 * 3_600_000), "36h");
        assert_eq!(period(90_000), "90s");
    }
}
