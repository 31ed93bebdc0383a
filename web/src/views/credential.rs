//! How credentials are shown wherever they appear: the table of a client's
//! keys or tokens, the form that generates one, the page that shows a new
//! plaintext once (generation and rotation), the maintenance lists, and the
//! anchor of each kind's section (the generate and revoke handlers redirect
//! to it).

use heratio_keys_core::{CredentialInfo, Kind, MaintenanceItem};
use maud::{html, Markup};

use super::widgets::{csrf_field, short_time, state_badge};

/// The key page of a credential.
pub(crate) fn key_path(kind: Kind, id: i64) -> String {
    format!("/credentials/{}/{id}", kind.short_name())
}

/// The badge of an active credential expiring within 7 days.
pub(crate) fn expires_soon_badge() -> Markup {
    html! { span.badge.text-bg-warning.expires-soon { "expires soon" } }
}

/// A credential's state badge, and "expires soon" beside it when it does.
pub(crate) fn credential_badges(c: &CredentialInfo, now: i64) -> Markup {
    html! {
        (state_badge(c.state(now)))
        @if c.expires_soon(now) { " " (expires_soon_badge()) }
    }
}

/// The anchor of a kind's section on the client page.
pub(crate) fn section_id(kind: Kind) -> &'static str {
    match kind {
        Kind::ApiKey => "api-keys",
        Kind::AiToken => "ai-tokens",
    }
}

/// A client's credentials of one kind, with their state as of `now`;
/// `manage` adds the revoke buttons (roles that may revoke).
pub(crate) fn credential_table(
    kind: Kind,
    creds: &[CredentialInfo],
    now: i64,
    manage: bool,
) -> Markup {
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
                        tr data-credential-id=(c.id) {
                            td { a href=(key_path(kind, c.id)) { (c.id) } }
                            td { code.text-nowrap { (c.display_prefix) "…" } }
                            td.text-break { a href=(key_path(kind, c.id)) { (c.name) } }
                            td.d-none.d-md-table-cell { code { (c.scopes.to_stored()) } }
                            td { (credential_badges(c, now)) }
                            td.d-none.d-lg-table-cell.text-nowrap { (c.expires_at.map_or_else(|| "never".to_owned(), short_time)) }
                            td.d-none.d-lg-table-cell.text-nowrap { (c.last_used_at.map_or_else(|| "never".to_owned(), short_time)) }
                            td.d-none.d-md-table-cell { (c.usage_count) }
                            td.text-end.text-nowrap {
                                a.btn.btn-sm.btn-outline-secondary href=(key_path(kind, c.id)) { "Open" }
                                @if manage && c.active {
                                    " "
                                    a.btn.btn-sm.btn-outline-danger
                                        href={ (key_path(kind, c.id)) "/revoke" } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Credentials listed by a maintenance pass (expiring, or due to be
/// revoked for idleness), with `when` naming the time column.
pub(crate) fn maintenance_table(id: &str, when: &str, items: &[MaintenanceItem]) -> Markup {
    html! {
        div.table-responsive {
            table.table.table-sm.align-middle.mb-0 id=(id) {
                thead { tr {
                    th { "Key" } th { "Label" } th { "Client" } th { (when) }
                } }
                tbody {
                    @for i in items {
                        tr {
                            td.text-nowrap {
                                a href=(key_path(i.kind, i.id)) { (i.kind.label()) " " (i.id) }
                                " " code.d-none.d-md-inline { (i.display_prefix) "…" }
                            }
                            td.text-break { (i.name) }
                            td { a href={ "/clients/" (i.client_id) } { (i.client_id) } }
                            td.text-nowrap { (short_time(i.at)) }
                        }
                    }
                }
            }
        }
    }
}

/// The one page that ever shows a plaintext (generation, rotation): a
/// warning, the key with its copy button, what was stored (`facts`), and
/// the way back. Served `no-store` like every page.
pub(crate) fn new_key(
    kind: Kind,
    heading: Markup,
    key: &str,
    facts: Markup,
    back: (&str, &str),
) -> Markup {
    let (back, back_label) = back;
    html! {
        div.row.justify-content-center {
            div.col-lg-9 {
                h1.h3.mb-3 { (heading) }
                div.alert.alert-warning role="alert" {
                    strong { "Copy this " (kind.label()) " now. " }
                    "It is shown only this once: only its SHA-256 digest is stored, so nobody can display it again. "
                    "If it is lost, revoke it and generate a new one."
                }
                label.form-label for="new-key" { "The new " (kind.label()) }
                textarea.form-control.font-monospace.mb-2 #new-key rows="2" readonly
                    autocomplete="off" spellcheck="false" { (key) }
                div.d-flex.align-items-center.gap-3.mb-3 {
                    button.btn.btn-primary #copy-key type="button" data-copy-target="new-key" { "Copy to clipboard" }
                    span.small.text-success #copy-status aria-live="polite" {}
                }
                dl.row { (facts) }
                a.btn.btn-outline-secondary #done href=(back) { "I have stored it: " (back_label) }
            }
        }
    }
}

/// The form that `POST /clients/ID/generate/KIND` reads: label, scopes, and
/// an expiry that is either a duration the core parses (`30d`) or a date.
pub(crate) fn generate_form(client_id: i64, kind: Kind, csrf: &str) -> Markup {
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
