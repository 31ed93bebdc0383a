//! `GET /usage/export?format=csv|json&<the page's filters>`: every usage
//! row the filters match (paging aside), oldest first, streamed from the
//! core's `export_usage` as it pages through the log, so memory does not
//! grow with the range (see `crate::export`).
//!
//! Columns (CSV header, JSON-lines keys): `id`, `time` (RFC 3339 UTC with
//! milliseconds), `kind` (`api`, `ai`), `credential_id`, `client_id`, `ip`,
//! `endpoint`, `status` (the status name).

use axum::extract::{Query, State};
use heratio_keys_core::store::UsageEntry;
use serde_json::json;

use super::filters::UsageParams;
use crate::error::{AppError, Page};
use crate::export::{csv_record, download, time_ms, Producer};
use crate::extract::Admin;
use crate::state::Shared;

const CSV_HEADER: &str = "id,time,kind,credential_id,client_id,ip,endpoint,status";

fn csv_line(e: &UsageEntry) -> String {
    let r = &e.record;
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    csv_record(&[
        &e.id.to_string(),
        &time_ms(r.at),
        r.kind.short_name(),
        &opt(r.credential_id),
        &opt(r.client_id),
        r.ip.as_deref().unwrap_or(""),
        r.endpoint.as_deref().unwrap_or(""),
        r.status.name(),
    ])
}

fn json_line(e: &UsageEntry) -> String {
    let r = &e.record;
    json!({
        "id": e.id,
        "time": time_ms(r.at),
        "kind": r.kind.short_name(),
        "credential_id": r.credential_id,
        "client_id": r.client_id,
        "ip": r.ip,
        "endpoint": r.endpoint,
        "status": r.status.name(),
    })
    .to_string()
}

pub(super) async fn usage_export(
    State(app): State<Shared>,
    // Read access is all an export needs; the route table says so.
    _admin: Admin,
    Query(params): Query<UsageParams>,
) -> Page {
    let json = match params.format.trim() {
        "" | "csv" => false,
        "json" | "jsonl" => true,
        other => {
            return Err(AppError::invalid(format!(
                "Unknown export format {other:?}: use csv or json."
            )))
        }
    };
    let (query, _) = params
        .to_query(0)
        .map_err(|errors| AppError::invalid(errors.join(" ")))?;
    let produce: Producer = Box::new(move |store, sink| {
        if !json {
            sink.line(CSV_HEADER)?;
        }
        store.export_usage(&query, &mut |entry| {
            sink.line(&if json {
                json_line(&entry)
            } else {
                csv_line(&entry)
            })
        })
    });
    let (content_type, ext) = if json {
        ("application/x-ndjson; charset=utf-8", "jsonl")
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    download(
        &app.exports,
        &app.store,
        content_type,
        "usage",
        ext,
        produce,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::{Kind, Status, UsageRecord};

    #[test]
    fn rows_in_both_formats() {
        let e = UsageEntry {
            id: 7,
            record: UsageRecord {
                kind: Kind::ApiKey,
                credential_id: Some(3),
                client_id: Some(1),
                at: 1_500,
                ip: Some("192.0.2.1".into()),
                endpoint: Some("/api/items,all".into()),
                status: Status::Valid,
            },
        };
        assert_eq!(
            csv_line(&e),
            "7,1970-01-01T00:00:01.500Z,api,3,1,192.0.2.1,\"/api/items,all\",valid"
        );
        let v: serde_json::Value = serde_json::from_str(&json_line(&e)).unwrap();
        assert_eq!(v["credential_id"], 3);
        assert_eq!(v["status"], "valid");
        assert_eq!(v["endpoint"], "/api/items,all");
    }
}
