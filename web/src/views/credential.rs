//! How credentials are shown wherever they appear: the table of a client's
//! keys or tokens, the form that generates one, and the anchor of each
//! kind's section (the generate and revoke handlers redirect to it).

use heratio_keys_core::{CredentialInfo, Kind};
use maud::{html, Markup};

use super::widgets::{csrf_field, short_time, state_badge};

/// The anchor of a kind's section on the client page.
pub(crate) fn section_id(kind: Kind) -> &'static str {
    match kind {
        Kind::ApiKey => "api-keys",
        Kind::AiToken => "ai-tokens",
    }
}

/// A client's credentials of one kind, with their state as of `now`.
pub(crate) fn credential_table(kind: Kind, creds: &[CredentialInfo], now: i64) -> Markup {
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
                        @let state = c.state(now);
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
