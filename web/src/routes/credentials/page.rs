//! The key page (`GET /credentials/KIND/ID`): everything stored about one
//! key or token, its last 20 uses, its audit trail, and (for roles that may
//! change keys, while it is not revoked) the forms of `edit`.

use axum::extract::{Path, State};
use heratio_keys_core::model::now_ms;
use heratio_keys_core::{AdminRole, AuditQuery, Client, CredentialInfo, UsageQuery};
use maud::{html, Markup};

use crate::error::Page;
use crate::extract::Admin;
use crate::params;
use crate::state::Shared;
use crate::views::{
    audit_table, client_badge, credential_badges, csrf_field, dash, key_path, section_id,
    short_time, usage_table, Nav,
};

/// Usage rows shown on the page.
const LAST_USES: u64 = 20;
/// Audit rows shown on the page.
const TRAIL: u64 = 50;

pub(super) async fn key_page(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
) -> Page {
    let kind = params::kind(&slug)?;
    let id = params::id(&id)?;
    let (c, client, replaced_by, (uses, use_total), (trail, trail_total)) = app
        .store(move |s| {
            let c = s.get_credential(kind, id)?;
            let client = s.get_client(c.client_id)?;
            // The store links a rotation's new key to the old one only;
            // the other direction is one more indexed query.
            let replaced_by = s
                .list_credentials(kind, c.client_id)?
                .into_iter()
                .find(|n| n.rotated_from == Some(id))
                .map(|n| n.id);
            let uses = s.usage_log(&UsageQuery {
                credential: Some((kind, id)),
                limit: LAST_USES,
                ..UsageQuery::default()
            })?;
            let trail = s.audit_query(&AuditQuery {
                target_type: Some(params::target_type(kind).to_owned()),
                target_id: Some(id),
                limit: TRAIL,
                ..AuditQuery::default()
            })?;
            Ok((c, client, replaced_by, uses, trail))
        })
        .await?;
    let now = now_ms();
    let title = format!("{} {}", kind.label(), c.id);
    let manage = admin.can(AdminRole::Operator) && c.active;
    let body = html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb {
                li.breadcrumb-item { a href="/clients" { "Clients" } }
                li.breadcrumb-item { a href={ "/clients/" (client.id) "#" (section_id(kind)) } { (client.name) } }
                li.breadcrumb-item.active aria-current="page" { (title) }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto.text-break {
                (title) " " small.text-muted { (c.name) } " "
                span #key-state { (credential_badges(&c, now)) }
            }
            @if manage {
                a.btn.btn-outline-danger.btn-sm #revoke-link href={ (key_path(kind, c.id)) "/revoke" } { "Revoke…" }
            }
        }
        div.row.g-4 {
            div.col-lg-6 { (facts(&c, &client, replaced_by, now)) }
            div.col-lg-6 {
                @if manage {
                    (forms(&c, &client, &admin.csrf))
                } @else if !c.active {
                    p.text-muted #read-only-note { "Revoked: nothing about it can be changed any more." }
                }
            }
        }
        section.card.my-4 #last-uses {
            div.card-header.d-flex.justify-content-between {
                span { "Last " (LAST_USES) " validations (of " (use_total) ", times UTC)" }
                a href={ "/usage?kind=" (kind.short_name()) "&credential=" (c.id) } { "All in the usage log" }
            }
            (usage_table("key-usage-table", &uses))
        }
        section.card #audit-trail {
            div.card-header { "Audit trail (" (trail.len()) " of " (trail_total) ", newest first)" }
            (audit_table("key-audit-table", &trail))
        }
    };
    Ok(admin.page(&app, Nav::Clients, &title, body))
}

/// What is stored about it.
fn facts(c: &CredentialInfo, client: &Client, replaced_by: Option<i64>, now: i64) -> Markup {
    let kind = c.kind;
    html! {
        dl.row.mb-0 #key-facts {
            dt.col-sm-4 { "Client" }
            dd.col-sm-8 { a href={ "/clients/" (client.id) } { (client.name) } " " (client_badge(client.active)) }
            dt.col-sm-4 { "Label" } dd.col-sm-8.text-break #key-label { (c.name) }
            dt.col-sm-4 { "Prefix" } dd.col-sm-8 { code { (c.display_prefix) "…" } }
            dt.col-sm-4 { "Shape" } dd.col-sm-8 #key-shape { (c.key_shape.name()) }
            dt.col-sm-4 { "Scopes" } dd.col-sm-8 { code { (c.scopes.to_stored()) } }
            dt.col-sm-4 { "Created (UTC)" } dd.col-sm-8 { (short_time(c.created_at)) }
            dt.col-sm-4 { "Last used (UTC)" } dd.col-sm-8 #key-last-used { (c.last_used_at.map_or_else(|| "never".to_owned(), short_time)) }
            dt.col-sm-4 { "Uses" } dd.col-sm-8 #key-uses { (c.usage_count) }
            dt.col-sm-4 { "Expires (UTC)" }
            dd.col-sm-8 #key-expires {
                (c.expires_at.map_or_else(|| "never".to_owned(), short_time))
                @if c.expires_soon(now) { " " span.text-warning-emphasis { "(within 7 days)" } }
            }
            @if let Some(r) = c.revoked_at {
                dt.col-sm-4 { "Revoked (UTC)" } dd.col-sm-8 { (short_time(r)) }
            }
            dt.col-sm-4 { "Allowed IPs" }
            dd.col-sm-8.text-break #key-allowed-ips {
                @match &c.allowed_ips {
                    Some(a) => { code { (a.to_stored()) } }
                    None => { "any address" }
                }
            }
            dt.col-sm-4 { "Rate limit" }
            dd.col-sm-8 #key-rate-limit {
                @match c.rate_limit { Some(n) => { (n) " per hour (UTC)" } None => { "unlimited" } }
            }
            dt.col-sm-4 { "Metadata" }
            dd.col-sm-8 {
                @match &c.metadata {
                    Some(m) => { pre.small.mb-0.text-break #key-metadata { (m.as_str()) } }
                    None => { (dash()) }
                }
            }
            @if let Some(from) = c.rotated_from {
                dt.col-sm-4 { "Rotated from" }
                dd.col-sm-8 { a #rotated-from href=(key_path(kind, from)) { (kind.label()) " " (from) } }
            }
            @if let Some(to) = replaced_by {
                dt.col-sm-4 { "Replaced by" }
                dd.col-sm-8 { a #replaced-by href=(key_path(kind, to)) { (kind.label()) " " (to) } }
            }
        }
    }
}

fn pretty_metadata(c: &CredentialInfo) -> String {
    c.metadata.as_ref().map_or_else(String::new, |m| {
        serde_json::to_string_pretty(&serde_json::Value::Object(m.to_object()))
            .unwrap_or_else(|_| m.as_str().to_owned())
    })
}

/// The forms that change it (see `edit`).
fn forms(c: &CredentialInfo, client: &Client, csrf: &str) -> Markup {
    let path = key_path(c.kind, c.id);
    let card = |id: &str, title: &str, inner: Markup| {
        html! {
            div.card.mb-3 id=(id) {
                div.card-header.small { (title) }
                div.card-body { (inner) }
            }
        }
    };
    html! {
        @if client.active {
            (card("rotate-card", "Rotate", html! {
                form.row.g-2.align-items-end method="post" action={ (path) "/rotate" } #rotate-form {
                    (csrf_field(csrf))
                    div.col-sm-8 {
                        label.form-label.small for="rotate-grace" { "The old one keeps working for" }
                        select.form-select.form-select-sm #rotate-grace name="grace" {
                            option value="0" { "no grace: it stops at once" }
                            option value="1h" { "1 hour" }
                            option value="24h" selected { "24 hours" }
                            option value="7d" { "7 days" }
                            option value="30d" { "30 days" }
                        }
                    }
                    div.col-sm-4 { button.btn.btn-warning.btn-sm.w-100 #rotate type="submit" { "Rotate" } }
                    div.col-12.form-text {
                        "A new " (c.kind.label()) " with the same client, label, scopes, limit, allowlist and metadata; "
                        "its plaintext is shown once. The old one then expires at the end of the grace (or its own earlier expiry)."
                    }
                }
            }))
        }
        (card("expiry-card", "Expiry", html! {
            form.row.g-2.align-items-end method="post" action={ (path) "/expiry" } #expiry-form {
                (csrf_field(csrf))
                div.col-sm-4 {
                    label.form-label.small for="expiry-mode" { "Expires" }
                    select.form-select.form-select-sm #expiry-mode name="mode" {
                        option value="in" selected { "in…" }
                        option value="at" { "on date (UTC)…" }
                        option value="never" { "never" }
                        option value="now" { "now" }
                    }
                }
                div.col-6.col-sm-3 {
                    label.form-label.small for="expiry-duration" { "Period" }
                    input.form-control.form-control-sm #expiry-duration name="duration" placeholder="30d";
                }
                div.col-6.col-sm-3 {
                    label.form-label.small for="expiry-date" { "Date" }
                    input.form-control.form-control-sm #expiry-date name="date" type="date";
                }
                div.col-sm-2 { button.btn.btn-primary.btn-sm.w-100 type="submit" { "Set" } }
                div.col-12.form-text { "A period is a number and s, m, h, d or w (" code { "90d" } "). " "\"now\" ends it at once but, unlike revoking, can be undone." }
            }
        }))
        (card("rename-card", "Label", html! {
            form.d-flex.gap-2 method="post" action={ (path) "/rename" } #rename-form {
                (csrf_field(csrf))
                input.form-control.form-control-sm #rename-name name="name" value=(c.name) required maxlength="255" aria-label="Label";
                button.btn.btn-primary.btn-sm type="submit" { "Rename" }
            }
        }))
        (card("allowed-ips-card", "IP allowlist", html! {
            form method="post" action={ (path) "/allowed-ips" } #allowed-ips-form {
                (csrf_field(csrf))
                div.d-flex.gap-2 {
                    input.form-control.form-control-sm #allowed-ips name="allowed_ips" aria-label="Allowed networks"
                        value=(c.allowed_ips.as_ref().map(|a| a.to_stored()).unwrap_or_default())
                        placeholder="any";
                    button.btn.btn-primary.btn-sm type="submit" { "Save" }
                }
                div.form-text { "Networks, comma-separated (" code { "192.0.2.0/24, 2001:db8::/32" } "); empty or " code { "any" } ": from anywhere." }
            }
        }))
        (card("rate-limit-card", "Rate limit", html! {
            form method="post" action={ (path) "/rate-limit" } #rate-limit-form {
                (csrf_field(csrf))
                div.d-flex.gap-2 {
                    input.form-control.form-control-sm #rate-limit name="rate_limit" inputmode="numeric" aria-label="Requests per hour"
                        value=(c.rate_limit.map(|n| n.to_string()).unwrap_or_default()) placeholder="none";
                    button.btn.btn-primary.btn-sm type="submit" { "Save" }
                }
                div.form-text { "Accepted requests per clock hour (UTC); empty or " code { "none" } ": unlimited." }
            }
        }))
        (card("metadata-card", "Metadata", html! {
            form method="post" action={ (path) "/metadata" } #metadata-form {
                (csrf_field(csrf))
                textarea.form-control.form-control-sm.font-monospace.mb-2 #metadata-json name="metadata" rows="4"
                    aria-label="Metadata (JSON object)" spellcheck="false" { (pretty_metadata(c)) }
                div.d-flex.align-items-center.gap-2 {
                    button.btn.btn-primary.btn-sm type="submit" { "Save" }
                    span.form-text { "A JSON object of at most 4 KiB, returned with every validation; empty removes it." }
                }
            }
        }))
        @if !client.active {
            p.text-muted.small #client-inactive-note { "Its client is deactivated: it cannot be rotated." }
        }
        p.small.text-muted { "Every change is audited and reaches every validating process within about a second." }
    }
}
