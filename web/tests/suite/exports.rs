//! The audit page (filters, pages, CSV export) and the usage page's
//! exports (CSV, JSON lines, streamed) and rejected-key counts, on both
//! back ends; and (ignored by default, run in release) a 1 000 000-row
//! export in bounded memory.

use crate::common;

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::{Browser, Server};
use heratio_keys_core::{Actor, Kind, Source, UsageQuery};
use serde_json::json;

fn summary(b: &mut Browser, path: &str, id: &str) -> String {
    let r = b.get(path).expect(200);
    common::between(&r.body, &format!("id=\"{id}\">"), "</p>").unwrap_or_default()
}

#[test]
fn audit_filters_pages_and_csv_export() {
    for db in common::all() {
        let label = db.label();
        for i in 0..60 {
            common::store_client(&db, &format!("Archive {i}"));
        }
        // Outside text, written as a spreadsheet would run it.
        db.store
            .record_audit(
                &Actor::new("=SUM(1)", Source::Library),
                "test.event",
                "client",
                Some(5),
                Some("a,b \"q\""),
            )
            .unwrap();
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        b.login();
        // 60 clients, the odd row, the test admin's creation and login.
        let total = db
            .store
            .audit_query(&heratio_keys_core::AuditQuery {
                limit: 1,
                ..Default::default()
            })
            .unwrap()
            .1;
        assert_eq!(total, 63, "{label}");
        let s = summary(&mut b, "/audit", "audit-summary");
        assert!(s.contains("1–50 of 63 actions"), "{label}: {s}");
        let page2 = b.get("/audit?page=2").expect(200);
        assert!(page2.body.contains("51–63 of 63"), "{label}");
        let s = summary(&mut b, "/audit?action=client.create", "audit-summary");
        assert!(s.contains("of 60 actions"), "{label}: {s}");
        let s = summary(&mut b, "/audit?action=admin.", "audit-summary");
        assert!(s.contains("of 2 actions"), "{label}: prefix: {s}"); // create, login
        let s = summary(
            &mut b,
            "/audit?actor=test-suite&target=client&target_id=5",
            "audit-summary",
        );
        assert!(s.contains("of 1 actions"), "{label}: {s}");
        let today = heratio_keys_core::model::utc_date(heratio_keys_core::model::now_ms());
        let s = summary(
            &mut b,
            &format!("/audit?from={today}&to={today}&action=client.create"),
            "audit-summary",
        );
        assert!(s.contains("of 60 "), "{label}: {s}");
        let s = summary(&mut b, "/audit?to=2000-01-01", "audit-summary");
        assert!(s.contains("No matching"), "{label}: {s}");
        let r = b.get("/audit?target_id=x&from=soon").expect(200);
        assert!(r.body.contains("Target id must be") && r.body.contains("From must be a date"));
        // The pages keep the filters.
        let r = b.get("/audit?action=client.create").expect(200);
        assert!(
            r.body
                .contains("href=\"/audit?action=client.create&amp;page=2\""),
            "{label}"
        );
        assert!(
            r.body
                .contains("href=\"/audit/export?action=client.create\""),
            "{label}"
        );

        // CSV of the filtered rows, all of them (not one page).
        let csv = b.get("/audit/export?action=client.create").expect(200);
        assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
        let disposition = csv.header("content-disposition").unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"audit-")
                && disposition.ends_with(".csv\"")
        );
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(
            lines[0],
            "id,time,actor,source,ip,action,target_type,target_id,detail"
        );
        assert_eq!(lines.len(), 61, "{label}");
        assert!(lines[1..]
            .iter()
            .all(|l| l.contains(",test-suite,cli,,client.create,client,")));
        assert!(
            lines[1].contains("name=Archive 59"),
            "{label}: newest first"
        );
        let evil = b.get("/audit/export?action=test.event").expect(200);
        assert!(
            evil.body
                .contains(",'=SUM(1),library,,test.event,client,5,\"a,b \"\"q\"\"\""),
            "{label}: {}",
            evil.body
        );
        b.get("/audit/export?from=soon").expect(400);
    }
}

#[test]
fn usage_exports_and_rejected_counts() {
    for db in common::all() {
        let label = db.label();
        let client = common::store_client(&db, "Harvester");
        let issued = heratio_keys_core::issue(
            db.store.as_ref(),
            Kind::ApiKey,
            &heratio_keys_core::IssueRequest {
                client_id: client,
                name: "harvest".into(),
                scopes: heratio_keys_core::Scopes::parse("read").unwrap(),
                expires_at: None,
                rate_limit: None,
                metadata: None,
            },
            &common::cli_actor(),
        )
        .unwrap();
        let (key_id, key) = (issued.info.id, issued.key.expose().to_owned());
        let server = Server::start_with(&db, |c| {
            c.verify_trusted = heratio_keys_web::parse_trusted("127.0.0.0/8").unwrap();
        });
        let mut b = Browser::new(&server);
        b.login();
        for i in 0..20 {
            b.verify(
                &json!({"key": key, "ip": "192.0.2.1", "endpoint": format!("/api/items/{i},x")}),
            )
            .expect(200);
        }
        for _ in 0..5 {
            b.verify(&json!({"key": key, "ip": "192.0.2.2", "scopes": ["write"]}));
        }
        for _ in 0..7 {
            b.verify(&json!({"key": "hk_api_nonsense", "ip": "198.51.100.9"}));
        }
        let all = UsageQuery {
            limit: 1,
            ..UsageQuery::default()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while db.store.usage_log(&all).unwrap().1 < 25
            || db.store.rejected_usage(&all).unwrap().1 < 7
        {
            assert!(Instant::now() < deadline, "{label}: usage not flushed");
            std::thread::sleep(Duration::from_millis(100));
        }
        // CSV, oldest first, every row, streamed (no length known ahead).
        let csv = b.get("/usage/export?format=csv").expect(200);
        assert_eq!(csv.header("content-length"), None, "{label}: streamed");
        assert!(csv
            .header("content-disposition")
            .unwrap()
            .contains("usage-"));
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(
            lines[0],
            "id,time,kind,credential_id,client_id,ip,endpoint,status"
        );
        assert_eq!(lines.len(), 26, "{label}: {}", csv.body);
        assert!(
            lines[1].contains(&format!(
                ",api,{key_id},{client},192.0.2.1,\"/api/items/0,x\",valid"
            )),
            "{label}: {}",
            lines[1]
        );
        // JSON lines, with the page's filters.
        let json = b
            .get("/usage/export?format=json&outcome=forbidden")
            .expect(200);
        assert!(json
            .header("content-type")
            .unwrap()
            .starts_with("application/x-ndjson"));
        let rows: Vec<serde_json::Value> = json
            .body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 5, "{label}");
        assert!(rows.iter().all(|r| r["status"] == "forbidden"
            && r["ip"] == "192.0.2.2"
            && r["credential_id"] == key_id));
        assert!(rows[0]["time"].as_str().unwrap().ends_with('Z'));
        let ip = b
            .get(&format!("/usage/export?ip=192.0.2.1&client={client}"))
            .expect(200);
        assert_eq!(ip.body.lines().count(), 21, "{label}");
        b.get("/usage/export?format=xml").expect(400);
        b.get("/usage/export?outcome=bogus").expect(400);
        // The page links the exports with its filters.
        let page = b.get("/usage?outcome=valid").expect(200);
        assert!(
            page.body
                .contains("href=\"/usage/export?outcome=valid&amp;format=csv\""),
            "{label}"
        );
        // Rejected keys: counted per minute, shown with the filters that apply.
        let s = summary(&mut b, "/usage", "rejected-summary");
        assert!(s.contains("7 validations in all"), "{label}: {s}");
        assert!(
            b.get("/usage").body.contains("id=\"rejected-table\""),
            "{label}"
        );
        let s = summary(&mut b, "/usage?outcome=valid", "rejected-summary");
        assert!(s.contains("None matching"), "{label}: {s}");
        let s = summary(
            &mut b,
            "/usage?outcome=malformed&ip=198.51.100.9",
            "rejected-summary",
        );
        assert!(s.contains("7 validations"), "{label}: {s}");
        assert!(
            b.get("/usage").body.contains("198.51.100.9"),
            "{label}: its source"
        );
        let s = summary(
            &mut b,
            &format!("/usage?client={client}"),
            "rejected-summary",
        );
        assert!(s.contains("Not shown while filtering"), "{label}: {s}");
    }
}

/// Peak resident memory of this process since the last reset, in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in KiB")
}

#[test]
#[ignore = "writes 1 000 000 usage rows; run with --release -- --ignored --nocapture"]
fn a_million_row_export_streams_in_bounded_memory() {
    let rows: u64 = std::env::var("HK_EXPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = common::sqlite();
    let client = common::store_client(&db, "Busy");
    let (key_id, _) = common::store_key(&db, Kind::ApiKey, client, "busy");
    let start = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..rows {
        batch.push(heratio_keys_core::UsageRecord {
            kind: Kind::ApiKey,
            credential_id: Some(key_id),
            client_id: Some(client),
            at: 1_700_000_000_000 + i64::try_from(i).unwrap(),
            ip: Some("192.0.2.1".into()),
            endpoint: Some("/api/informationobjects/a-long-slug".into()),
            status: heratio_keys_core::Status::Valid,
        });
        if batch.len() == 10_000 {
            db.store.write_usage(&batch).unwrap();
            batch.clear();
        }
    }
    db.store.write_usage(&batch).unwrap();
    eprintln!("wrote {rows} rows in {:?}", start.elapsed());
    let server = Server::start(&db);
    let mut b = Browser::new(&server);
    b.login();
    // Peak memory from here on: reset it, then export.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_kib();
    let start = Instant::now();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let resp = agent
        .get(server.url("/usage/export?format=csv"))
        .header("Cookie", cookies.join("; "))
        .call()
        .unwrap();
    let mut reader = resp.into_body().into_reader();
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|c| **c == b'\n').count() as u64;
    }
    let took = start.elapsed();
    let grew = peak_kib().saturating_sub(before);
    eprintln!(
        "exported {} rows ({} MiB) in {took:?}; peak RSS {} MiB, {} KiB above the start of the export",
        lines - 1,
        bytes / (1 << 20),
        peak_kib() / 1024,
        grew
    );
    assert_eq!(lines, rows + 1);
    assert!(grew < 64 * 1024, "memory grew {grew} KiB during the export");
}
