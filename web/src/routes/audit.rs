//! `/audit`: management actions from every source (CLI, this interface,
//! programs, the maintenance pass) as the core's audit log records them,
//! searched by actor, action (exact, or a prefix ending in `.`), target and
//! UTC date range, 50 per page; and `/audit/export`, the same rows as CSV,
//! streamed (see `crate::export`).

use axum::extract::{Query, State};
use heratio_keys_core::model::now_ms;
use heratio_keys_core::{AuditEntry, AuditQuery};
use maud::html;
use serde::Deserialize;

use crate::access::{Routes, VIEWER};
use crate::error::{AppError, Page};
use crate::export::{csv_record, download, time_ms, Producer};
use crate::extract::Admin;
use crate::params;
use crate::state::Shared;
use crate::views::{audit_table, Nav};

/// Rows per page.
const PAGE_SIZE: u64 = 50;
/// Rows per store call while exporting.
const EXPORT_PAGE: u64 = 1000;
/// Target types the filter offers (any other can still be typed in a URL).
const TARGETS: &[&str] = &["client", "api_key", "ai_token", "admin_user", "maintenance"];

pub(crate) fn router() -> Routes {
    Routes::new()
        .get("/audit", VIEWER, audit)
        .get("/audit/export", VIEWER, audit_export)
}

#[derive(Debug, Default, Deserialize)]
struct AuditParams {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    target_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: String,
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

impl AuditParams {
    /// The filters (no page) as a query string.
    fn filter_string(&self) -> String {
        [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("target_id", &self.target_id),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }

    fn link(&self, page: u64) -> String {
        let f = self.filter_string();
        if f.is_empty() {
            format!("/audit?page={page}")
        } else {
            format!("/audit?{f}&page={page}")
        }
    }

    /// The store query and page, or what is wrong with the filters.
    fn to_query(&self) -> Result<(AuditQuery, u64), Vec<String>> {
        let mut errors = Vec::new();
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut q = AuditQuery {
            actor: text(&self.actor),
            action: text(&self.action),
            target_type: text(&self.target),
            limit: PAGE_SIZE,
            ..AuditQuery::default()
        };
        let id = self.target_id.trim();
        if !id.is_empty() {
            match id.parse::<i64>() {
                Ok(id) if id > 0 => q.target_id = Some(id),
                _ => errors.push("Target id must be a positive number.".to_owned()),
            }
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
                .filter(|p| (1..=1_000_000).contains(p))
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

async fn audit(State(app): State<Shared>, admin: Admin, Query(params): Query<AuditParams>) -> Page {
    let parsed = params.to_query();
    let query = parsed.as_ref().ok().map(|(q, _)| q.clone());
    let (rows, total) = match query {
        Some(q) => app.store(move |s| s.audit_query(&q)).await?,
        None => (Vec::new(), 0),
    };
    let page = parsed.as_ref().map_or(1, |(_, p)| *p);
    let errors = parsed.err().unwrap_or_default();
    let first = (page - 1) * PAGE_SIZE;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let filters = params.filter_string();
    let body = html! {
        h1.h3.mb-3 { "Audit log" }
        form.row.g-2.mb-3.align-items-end method="get" action="/audit" #audit-filters {
            div.col-6.col-lg-2 {
                label.form-label.small for="a-actor" { "Who" }
                input.form-control.form-control-sm #a-actor name="actor" value=(params.actor.trim()) placeholder="alice, maintenance";
            }
            div.col-6.col-lg-2 {
                label.form-label.small for="a-action" { "Action" }
                input.form-control.form-control-sm #a-action name="action" value=(params.action.trim())
                    placeholder="api_key. or api_key.revoke" title="An action, or a prefix ending in a dot";
            }
            div.col-6.col-lg-2 {
                label.form-label.small for="a-target" { "Target" }
                select.form-select.form-select-sm #a-target name="target" {
                    option value="" { "any" }
                    @for t in TARGETS {
                        option value=(t) selected[params.target.trim() == *t] { (t) }
                    }
                }
            }
            div.col-6.col-lg-1 {
                label.form-label.small for="a-target-id" { "Target id" }
                input.form-control.form-control-sm #a-target-id name="target_id" inputmode="numeric" value=(params.target_id.trim());
            }
            div.col-6.col-lg-2 {
                label.form-label.small for="a-from" { "From (UTC)" }
                input.form-control.form-control-sm #a-from name="from" type="date" value=(params.from.trim());
            }
            div.col-6.col-lg-2 {
                label.form-label.small for="a-to" { "To (UTC)" }
                input.form-control.form-control-sm #a-to name="to" type="date" value=(params.to.trim());
            }
            div.col-12.d-flex.flex-wrap.gap-2 {
                button.btn.btn-primary.btn-sm type="submit" { "Filter" }
                a.btn.btn-outline-secondary.btn-sm href="/audit" { "Reset" }
                @if errors.is_empty() {
                    a.btn.btn-outline-success.btn-sm.ms-lg-auto #audit-export
                        href={ "/audit/export" @if !filters.is_empty() { "?" (filters) } } { "Export CSV" }
                }
            }
        }
        @for e in &errors {
            div.alert.alert-danger role="alert" { (e) }
        }
        p.small.text-muted #audit-summary {
            @if total == 0 { "No matching actions." }
            @else { "Showing " (first + 1) "–" (first + rows.len() as u64) " of " (total) " actions (newest first, times UTC)." }
        }
        (audit_table("audit-table", &rows))
        @if pages > 1 {
            nav.mt-3 aria-label="Audit log pages" {
                ul.pagination.pagination-sm.flex-wrap {
                    li.page-item.disabled[page <= 1] {
                        a.page-link href=(params.link(page.saturating_sub(1).max(1))) { "Previous" }
                    }
                    li.page-item.disabled { span.page-link { "Page " (page) " of " (pages) } }
                    li.page-item.disabled[page >= pages] {
                        a.page-link #audit-next href=(params.link(page + 1)) { "Next" }
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Audit, "Audit log", body))
}

fn csv_line(a: &AuditEntry) -> String {
    csv_record(&[
        &a.id.to_string(),
        &time_ms(a.at),
        &a.actor,
        &a.source,
        a.ip.as_deref().unwrap_or(""),
        &a.action,
        &a.target_type,
        &a.target_id.map(|i| i.to_string()).unwrap_or_default(),
        a.detail.as_deref().unwrap_or(""),
    ])
}

/// The filtered rows as CSV, newest first, read a page at a time. The
/// window is closed at the start (`until` no later than now), so rows
/// written during the export do not shift the pages under it.
async fn audit_export(
    State(app): State<Shared>,
    _admin: Admin,
    Query(params): Query<AuditParams>,
) -> Page {
    let (mut query, _) = params
        .to_query()
        .map_err(|errors| AppError::invalid(errors.join(" ")))?;
    let now = now_ms();
    query.until = Some(query.until.map_or(now, |u| u.min(now)));
    let produce: Producer = Box::new(move |store, sink| {
        sink.line("id,time,actor,source,ip,action,target_type,target_id,detail")?;
        let mut n = 0u64;
        loop {
            let (rows, _) = store.audit_query(&AuditQuery {
                offset: n,
                limit: EXPORT_PAGE,
                ..query.clone()
            })?;
            for a in &rows {
                sink.line(&csv_line(a))?;
            }
            n += rows.len() as u64;
            if (rows.len() as u64) < EXPORT_PAGE {
                return Ok(n);
            }
        }
    });
    download(
        &app.exports,
        &app.store,
        "text/csv; charset=utf-8",
        "audit",
        "csv",
        produce,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_links() {
        let p = AuditParams {
            actor: "alice".into(),
            action: "api_key.".into(),
            target_id: "3".into(),
            from: "2026-01-01".into(),
            page: "2".into(),
            ..AuditParams::default()
        };
        let (q, page) = p.to_query().unwrap();
        assert_eq!(page, 2);
        assert_eq!(q.offset, PAGE_SIZE);
        assert_eq!(q.action.as_deref(), Some("api_key."));
        assert_eq!(q.target_id, Some(3));
        assert!(q.since.is_some() && q.until.is_none());
        assert_eq!(
            p.link(3),
            "/audit?actor=alice&action=api_key.&target_id=3&from=2026-01-01&page=3"
        );
        let bad = AuditParams {
            target_id: "x".into(),
            to: "soon".into(),
            page: "0".into(),
            ..AuditParams::default()
        };
        assert_eq!(bad.to_query().unwrap_err().len(), 3);
    }
}
