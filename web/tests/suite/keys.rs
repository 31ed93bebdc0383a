//! The key page and its forms on both back ends: what it shows, rotation
//! (the new plaintext once, both keys valid through the grace), expiry
//! (in, at, never, now), label, metadata, allowlist and rate limit, each
//! checked through `/v1/verify` where it changes an answer, each refusal
//! shown as the core words it; "expires soon" in the tables and on the
//! dashboard.

use crate::common;

use crate::common::{
    alerts, follow, form, form_csrf, keys_in, verify_until, Browser, Server, ADMIN,
};
use heratio_keys_core::model::{now_ms, DAY_MS};
use heratio_keys_core::Kind;
use serde_json::json;

/// Posts a form of the key page and returns the messages shown after it.
fn post(b: &mut Browser, key_page: &str, form_path: &str, fields: &[(&str, &str)]) -> String {
    let page = b.get(key_page).expect(200);
    let action = format!("{key_page}/{form_path}");
    let csrf = form_csrf(&page, &action);
    let mut all = fields.to_vec();
    all.push(("csrf", &csrf));
    let r = b.post_form(&action, &form(&all));
    alerts(&follow(b, &r)).join(" ")
}

#[test]
fn the_key_page_shows_everything_and_its_forms_work() {
    for db in common::all() {
        let label = db.label();
        let client = common::store_client(&db, "Harvester");
        let (id, key) = common::store_key(&db, Kind::ApiKey, client, "harvest");
        // The test names end-user addresses, which only a trusted caller may.
        let server = Server::start_with(&db, |c| {
            c.verify_trusted = heratio_keys_web::parse_trusted("127.0.0.0/8").unwrap();
        });
        let mut b = Browser::new(&server);
        b.login();
        let doc = json!({"key": key, "ip": "192.0.2.10", "endpoint": "/api/items"});
        for _ in 0..3 {
            b.verify(&doc).expect(200);
        }
        let page_path = format!("/credentials/api/{id}");
        assert!(
            heratio_keys_testkit::eventually(std::time::Duration::from_secs(10), || {
                b.get(&page_path).body.contains("id=\"key-uses\">3<")
            })
            .is_some(),
            "{label}: uses counted"
        );
        let page = b.get(&page_path).expect(200);
        for want in [
            "id=\"key-label\">harvest<",
            "id=\"key-shape\">native<",
            "id=\"key-allowed-ips\">any address<",
            "id=\"key-rate-limit\">unlimited<",
            &key[..12],
            "/api/items",
            "api_key.generate",
            "id=\"rotate-form\"",
            "id=\"expiry-form\"",
            "id=\"metadata-form\"",
        ] {
            assert!(
                page.body.contains(want),
                "{label}: {want} missing: {}",
                page.body
            );
        }
        assert_eq!(
            page.body.matches("192.0.2.10").count(),
            3,
            "{label}: last uses"
        );
        assert!(keys_in(&page.body).is_empty(), "{label}: no plaintext");

        // Label.
        let said = post(&mut b, &page_path, "rename", &[("name", "harvest-2027")]);
        assert!(
            said.contains("labelled &quot;harvest-2027&quot;"),
            "{label}: {said}"
        );
        assert!(
            post(&mut b, &page_path, "rename", &[("name", " ")]).contains("label"),
            "{label}"
        );
        // Metadata: the core validates.
        let said = post(
            &mut b,
            &page_path,
            "metadata",
            &[("metadata", "{\"team\": \"harvest\"}")],
        );
        assert!(said.contains("Saved the metadata"), "{label}: {said}");
        // The cache learns it through the change feed (about a second).
        let seen = heratio_keys_testkit::eventually(std::time::Duration::from_secs(5), || {
            b.verify(&doc).json()["metadata"] == json!({"team": "harvest"})
        });
        assert!(seen.is_some(), "{label}: metadata returned");
        let said = post(&mut b, &page_path, "metadata", &[("metadata", "[1, 2]")]);
        assert!(
            said.contains("metadata must be a JSON object"),
            "{label}: {said}"
        );
        assert!(post(&mut b, &page_path, "metadata", &[("metadata", "")]).contains("Removed"));
        // Rate limit.
        assert!(
            post(&mut b, &page_path, "rate-limit", &[("rate_limit", "lots")])
                .contains("not a number")
        );
        assert!(
            post(&mut b, &page_path, "rate-limit", &[("rate_limit", "-5")])
                .contains("rate limit is a number")
        );
        let said = post(&mut b, &page_path, "rate-limit", &[("rate_limit", "1000")]);
        assert!(
            said.contains("at most 1000 requests per hour"),
            "{label}: {said}"
        );
        let seen = heratio_keys_testkit::eventually(std::time::Duration::from_secs(5), || {
            b.verify(&doc).json()["rate_limit"] == 1000
        });
        assert!(seen.is_some(), "{label}: limit returned");
        assert!(
            post(&mut b, &page_path, "rate-limit", &[("rate_limit", "none")])
                .contains("no rate limit")
        );
        // Allowlist: outside is ip_denied, "any" clears it.
        let said = post(
            &mut b,
            &page_path,
            "allowed-ips",
            &[("allowed_ips", "198.51.100.0/24, 2001:db8::/32")],
        );
        assert!(
            said.contains("198.51.100.0/24,2001:db8::/32 only"),
            "{label}: {said}"
        );
        assert_eq!(
            verify_until(&mut b, &doc, "ip_denied").status,
            403,
            "{label}"
        );
        let inside = json!({"key": key, "ip": "198.51.100.7"});
        b.verify(&inside).expect(200);
        assert!(post(
            &mut b,
            &page_path,
            "allowed-ips",
            &[("allowed_ips", "10.0.0.0/33")]
        )
        .contains("is not an IP address"));
        assert!(
            post(&mut b, &page_path, "allowed-ips", &[("allowed_ips", "any")])
                .contains("any address")
        );
        verify_until(&mut b, &doc, "valid").expect(200);

        // Expiry: in a period (expires soon within 7 days), at a date, never, now.
        let said = post(
            &mut b,
            &page_path,
            "expiry",
            &[("mode", "in"), ("duration", "3d")],
        );
        assert!(said.contains("now expires at"), "{label}: {said}");
        let page = b.get(&page_path).body;
        assert!(
            page.contains("expires soon"),
            "{label}: badge on the key page"
        );
        let table = b.get(&format!("/clients/{client}")).body;
        assert!(
            table.contains("expires soon"),
            "{label}: badge in the key table"
        );
        let dash = b.get("/").body;
        assert!(
            dash.contains("id=\"count-expiring-soon\">1<"),
            "{label}: dashboard card"
        );
        assert!(dash.contains("id=\"expiring-table\""), "{label}");
        let said = post(
            &mut b,
            &page_path,
            "expiry",
            &[("mode", "at"), ("date", "2000-01-01")],
        );
        assert!(
            said.contains("the expiry time is in the past"),
            "{label}: {said}"
        );
        let next_year = heratio_keys_core::model::utc_date(now_ms() + 400 * DAY_MS);
        let said = post(
            &mut b,
            &page_path,
            "expiry",
            &[("mode", "at"), ("date", &next_year)],
        );
        assert!(
            said.contains(&format!("now expires at {next_year} 00:00")),
            "{label}: {said}"
        );
        assert!(!b.get(&page_path).body.contains("expires soon"), "{label}");
        assert!(
            b.get("/").body.contains("id=\"count-expiring-soon\">0<"),
            "{label}"
        );
        assert!(post(
            &mut b,
            &page_path,
            "expiry",
            &[("mode", "in"), ("duration", "soon")]
        )
        .contains("invalid duration"));
        assert!(post(&mut b, &page_path, "expiry", &[("mode", "never")]).contains("never expires"));
        assert!(post(&mut b, &page_path, "expiry", &[("mode", "now")]).contains("now expires at"));
        assert_eq!(verify_until(&mut b, &doc, "expired").status, 401, "{label}");
        assert!(post(&mut b, &page_path, "expiry", &[("mode", "never")]).contains("never expires"));
        verify_until(&mut b, &doc, "valid").expect(200);

        // Every change is the core's audit row, on the key's trail.
        let trail = b.get(&page_path).body;
        for action in [
            "api_key.rename",
            "api_key.set_metadata",
            "api_key.set_expiry",
        ] {
            assert!(trail.contains(action), "{label}: {action} not on the trail");
        }
        let audit = db.store.audit_log(200).unwrap();
        assert!(audit
            .iter()
            .filter(|e| e.target_id == Some(id) && e.target_type == "api_key")
            .all(|e| e.action == "api_key.generate" || (e.actor == ADMIN && e.source == "web")));

        // Revoked: no forms any more, and a stale form is refused with the core's words.
        let csrf = form_csrf(&b.get(&page_path), &format!("{page_path}/rename"));
        let r = b.post_form(&format!("{page_path}/revoke"), &form(&[("csrf", &csrf)]));
        follow(&mut b, &r).expect(200);
        let page = b.get(&page_path).body;
        assert!(
            !page.contains("id=\"rotate-form\"") && page.contains("read-only-note"),
            "{label}"
        );
        let r = b.post_form(
            &format!("{page_path}/rename"),
            &form(&[("csrf", &csrf), ("name", "late")]),
        );
        assert!(
            alerts(&follow(&mut b, &r)).join(" ").contains("revoked"),
            "{label}"
        );
        b.get("/credentials/api/999999").expect(404);
        b.get("/credentials/xx/1").expect(404);
    }
}

#[test]
fn rotation_shows_the_new_key_once_and_keeps_the_old_for_the_grace() {
    for db in common::all() {
        let label = db.label();
        let client = common::store_client(&db, "AI server");
        let (old_id, old) = common::store_key(&db, Kind::AiToken, client, "describe");
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        b.login();
        let page_path = format!("/credentials/ai/{old_id}");
        db.store
            .set_credential_metadata(
                Kind::AiToken,
                old_id,
                Some(&heratio_keys_core::Metadata::parse("{\"host\":\"gpu-1\"}").unwrap()),
                &common::cli_actor(),
            )
            .unwrap();
        let csrf = form_csrf(&b.get(&page_path), &format!("{page_path}/rotate"));
        let before = now_ms();
        let r = b
            .post_form(
                &format!("{page_path}/rotate"),
                &form(&[("csrf", &csrf), ("grace", "1h")]),
            )
            .expect(200);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{label}");
        assert!(r.body.contains("data-copy-target=\"new-key\""), "{label}");
        let shown = keys_in(&r.body);
        assert_eq!(shown.len(), 1, "{label}: exactly the new key");
        let new = shown[0].clone();
        assert_ne!(new, old);
        let new_id: i64 = common::between(&r.body, "id=\"new-key-id\">", "<")
            .unwrap()
            .parse()
            .unwrap();
        // Both work during the grace; the new one inherits the metadata.
        let v = b
            .verify(&json!({"key": new, "kind": "ai"}))
            .expect(200)
            .json();
        assert_eq!(v["metadata"], json!({"host": "gpu-1"}), "{label}");
        b.verify(&json!({"key": old, "kind": "ai"})).expect(200);
        let info = db.store.get_credential(Kind::AiToken, old_id).unwrap();
        let ends = info.expires_at.expect("old one expires");
        assert!(
            ends >= before + 3_600_000 && ends <= now_ms() + 3_600_000,
            "{label}"
        );
        // The pages link them and never show a plaintext again.
        let new_page = b.get(&format!("/credentials/ai/{new_id}")).body;
        assert!(
            new_page.contains(&format!("id=\"rotated-from\" href=\"{page_path}\"")),
            "{label}"
        );
        let old_page = b.get(&page_path).body;
        assert!(old_page.contains("id=\"replaced-by\""), "{label}");
        assert!(old_page.contains("expires soon"), "{label}");
        for p in [&page_path, "/", "/audit", &format!("/clients/{client}")] {
            assert!(keys_in(&b.get(p).body).is_empty(), "{label}: {p}");
        }
        assert!(
            db.store
                .audit_log(50)
                .unwrap()
                .iter()
                .any(|e| e.action.starts_with("ai_token.rotate")),
            "{label}"
        );
        // No grace: the old one stops at once.
        let csrf = form_csrf(
            &b.get(&format!("/credentials/ai/{new_id}")),
            &format!("/credentials/ai/{new_id}/rotate"),
        );
        let r = b
            .post_form(
                &format!("/credentials/ai/{new_id}/rotate"),
                &form(&[("csrf", &csrf), ("grace", "0")]),
            )
            .expect(200);
        assert_eq!(keys_in(&r.body).len(), 1);
        assert_eq!(
            verify_until(&mut b, &json!({"key": new, "kind": "ai"}), "expired").status,
            401,
            "{label}"
        );
        // A bad grace, and a revoked key, are refused with a message.
        let said = {
            let r = b.post_form(
                &format!("{page_path}/rotate"),
                &form(&[("csrf", &csrf), ("grace", "-1h")]),
            );
            alerts(&follow(&mut b, &r)).join(" ")
        };
        assert!(said.contains("invalid duration"), "{label}: {said}");
        db.store
            .revoke_credential(Kind::AiToken, old_id, &common::cli_actor())
            .unwrap();
        let r = b.post_form(
            &format!("{page_path}/rotate"),
            &form(&[("csrf", &csrf), ("grace", "1h")]),
        );
        let said = alerts(&follow(&mut b, &r)).join(" ");
        assert!(said.contains("revoked"), "{label}: {said}");
        assert!(keys_in(&said).is_empty());
    }
}
