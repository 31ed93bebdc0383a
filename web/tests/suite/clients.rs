//! Clients on both back ends: the edit form (name, e-mail, organisation,
//! idle-revoke policy, the core's checks), reactivation (its keys stay
//! revoked; the page says so and generating works again), the client page's
//! chart and audit trail, and the maintenance pass on `keygen serve`'s
//! timer.

use crate::common;

use std::time::Duration;

use crate::common::{
    alerts, follow, form, form_csrf, keys_in, verify_until, Browser, Server, ADMIN,
};
use heratio_keys_core::model::DAY_MS;
use heratio_keys_core::Kind;
use serde_json::json;

#[test]
fn edit_deactivate_reactivate_and_generate_again() {
    for db in common::all() {
        let label = db.label();
        let client = common::store_client(&db, "Digitisation partner");
        let (_, key) = common::store_key(&db, Kind::ApiKey, client, "scanner");
        let server = Server::start(&db);
        let mut b = Browser::new(&server);
        b.login();
        let path = format!("/clients/{client}");
        let edit = b.get(&format!("{path}/edit")).expect(200);
        assert!(
            edit.body.contains("value=\"Digitisation partner\""),
            "{label}"
        );
        let csrf = form_csrf(&edit, &format!("{path}/edit"));
        let save = |b: &mut Browser, name: &str, email: &str, org: &str, idle: &str| {
            let r = b.post_form(
                &format!("{path}/edit"),
                &form(&[
                    ("csrf", &csrf),
                    ("name", name),
                    ("email", email),
                    ("organization", org),
                    ("idle_revoke", idle),
                ]),
            );
            follow(b, &r)
        };
        let page = save(&mut b, "Partner Ltd", "new@example.org", "Scan & Co", "30d");
        assert!(alerts(&page).join(" ").contains("Saved client"), "{label}");
        for want in [
            "Partner Ltd",
            "id=\"client-email\">new@example.org<",
            "id=\"client-organization\">Scan &amp; Co<",
            "id=\"client-idle-revoke\">30d without use<",
        ] {
            assert!(page.body.contains(want), "{label}: {want}");
        }
        let c = db.store.get_client(client).unwrap();
        assert_eq!(c.idle_revoke_ms, Some(30 * DAY_MS), "{label}");
        assert_eq!(c.organization.as_deref(), Some("Scan & Co"));
        // The core's checks, and ours, come back as messages on the form.
        let again = save(&mut b, "", "new@example.org", "", "30d");
        assert!(
            again.body.contains("id=\"edit-client\""),
            "{label}: back on the form"
        );
        assert!(!alerts(&again).is_empty(), "{label}: says why");
        assert!(alerts(&save(&mut b, "P", "e@example.org", "", "monthly"))
            .join(" ")
            .contains("invalid duration"));
        let page = save(&mut b, "Partner Ltd", "new@example.org", "", "");
        assert!(
            page.body.contains("id=\"client-idle-revoke\">never<"),
            "{label}"
        );
        assert_eq!(db.store.get_client(client).unwrap().organization, None);

        // Deactivate (the page warns the keys stay revoked), then reactivate.
        let confirm = b.get(&format!("{path}/deactivate")).expect(200);
        assert!(confirm.body.contains("stay revoked"), "{label}");
        let r = b.post_form(
            &format!("{path}/deactivate"),
            &form(&[("csrf", &confirm.csrf())]),
        );
        follow(&mut b, &r).expect(200);
        let doc = json!({"key": key});
        assert_eq!(verify_until(&mut b, &doc, "revoked").status, 401, "{label}");
        let confirm = b.get(&format!("{path}/reactivate")).expect(200);
        assert!(
            confirm.body.contains("id=\"stay-revoked-api\">1 API key<"),
            "{label}"
        );
        assert!(confirm.body.contains("stay revoked"), "{label}");
        let r = b.post_form(
            &format!("{path}/reactivate"),
            &form(&[("csrf", &confirm.csrf())]),
        );
        assert!(r.location().unwrap().ends_with("#api-keys"), "{label}");
        let page = follow(&mut b, &r);
        let said = alerts(&page).join(" ");
        assert!(
            said.contains("stay revoked: generate new ones below"),
            "{label}: {said}"
        );
        assert!(page.body.contains("id=\"all-revoked-note\""), "{label}");
        assert!(page.body.contains(">active<"), "{label}");
        assert!(db.store.get_client(client).unwrap().active);
        // Still revoked; a new key works.
        assert_eq!(b.verify(&doc).json()["status"], "revoked", "{label}");
        let csrf = form_csrf(&page, &format!("{path}/generate/api"));
        let r = b
            .post_form(
                &format!("{path}/generate/api"),
                &form(&[
                    ("csrf", &csrf),
                    ("name", "scanner-2"),
                    ("scopes", "*"),
                    ("expires", "never"),
                ]),
            )
            .expect(200);
        let fresh = keys_in(&r.body);
        assert_eq!(fresh.len(), 1, "{label}");
        b.verify(&json!({"key": fresh[0]})).expect(200);
        // Reactivating an active client is a message, not an error.
        let r = b.post_form(&format!("{path}/reactivate"), &form(&[("csrf", &csrf)]));
        assert!(
            alerts(&follow(&mut b, &r))
                .join(" ")
                .contains("active already"),
            "{label}"
        );

        // The page: chart and audit trail with every step.
        let page = b.get(&path).expect(200);
        assert!(
            page.body.contains("class=\"usage-chart\""),
            "{label}: chart"
        );
        for action in [
            "client.create",
            "client.update",
            "client.deactivate",
            "client.reactivate",
        ] {
            assert!(page.body.contains(action), "{label}: {action} on the trail");
        }
        let audit = db.store.audit_log(100).unwrap();
        let update = audit.iter().find(|e| e.action == "client.update").unwrap();
        assert_eq!(
            (update.actor.as_str(), update.source.as_str()),
            (ADMIN, "web")
        );
        b.get("/clients/999999/edit").expect(404);
    }
}

#[test]
fn serve_runs_the_maintenance_pass_on_its_timer() {
    for db in common::all() {
        let label = db.label();
        let client = common::store_client(&db, "Idle partner");
        let (idle_id, idle) = common::store_key(&db, Kind::ApiKey, client, "idle");
        db.store
            .update_client(
                client,
                &heratio_keys_core::ClientUpdate {
                    idle_revoke_ms: Some(Some(30 * DAY_MS)),
                    ..Default::default()
                },
                &common::cli_actor(),
            )
            .unwrap();
        // Created (and never used) 40 days ago: idle past the policy. The
        // clock does not move; the key's age does.
        let old = heratio_keys_core::model::now_ms() - 40 * DAY_MS;
        db.exec(&format!(
            "UPDATE api_key SET created_at = {old} WHERE id = {idle_id}"
        ));
        // Usage of another key, 100 days old: past the default retention,
        // so the pass prunes it after maintaining.
        let (busy_id, _) = common::store_key(&db, Kind::ApiKey, client, "busy");
        let aged = heratio_keys_core::model::now_ms() - 100 * DAY_MS;
        let rows: Vec<heratio_keys_core::UsageRecord> = (0..30)
            .map(|i| heratio_keys_core::UsageRecord {
                kind: Kind::ApiKey,
                credential_id: Some(busy_id),
                client_id: Some(client),
                at: aged + i,
                ip: None,
                endpoint: None,
                status: heratio_keys_core::Status::Valid,
            })
            .collect();
        db.store.write_usage(&rows).unwrap();
        let raw_usage = || {
            db.store
                .usage_log(&heratio_keys_core::UsageQuery {
                    limit: 1,
                    ..Default::default()
                })
                .unwrap()
                .1
        };
        assert_eq!(raw_usage(), 30, "{label}");
        // Off (the tests' default): nothing happens. (No validation here:
        // a use would make the key not idle.)
        {
            let _server = Server::start(&db);
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            db.store
                .get_credential(Kind::ApiKey, idle_id)
                .unwrap()
                .active,
            "{label}"
        );
        // On: the pass runs at start and then every interval.
        let server = Server::start_with(&db, |c| {
            c.maintenance_interval = Some(Duration::from_millis(200));
        });
        let revoked = heratio_keys_testkit::eventually(Duration::from_secs(10), || {
            !db.store
                .get_credential(Kind::ApiKey, idle_id)
                .unwrap()
                .active
        });
        assert!(revoked.is_some(), "{label}: the timer revoked the idle key");
        let mut b = Browser::new(&server);
        assert_eq!(
            verify_until(&mut b, &json!({"key": idle}), "revoked").status,
            401
        );
        let audit = db.store.audit_log(100).unwrap();
        let row = audit
            .iter()
            .find(|e| e.action == "api_key.revoke" && e.target_id == Some(idle_id))
            .expect("audited");
        assert_eq!(row.actor, "maintenance", "{label}");
        assert!(
            audit.iter().any(|e| e.action == "maintenance.run"),
            "{label}"
        );
        // Idempotent: later passes revoke nothing more and write no rows.
        std::thread::sleep(Duration::from_millis(500));
        let runs = db
            .store
            .audit_log(100)
            .unwrap()
            .iter()
            .filter(|e| e.action == "maintenance.run")
            .count();
        assert_eq!(runs, 1, "{label}");
        // The same passes pruned the aged usage, once, with an audit row.
        assert_eq!(raw_usage(), 0, "{label}");
        let prunes: Vec<_> = db
            .store
            .audit_log(100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == heratio_keys_core::retention::PRUNE_ACTION)
            .collect();
        assert_eq!(prunes.len(), 1, "{label}: {prunes:?}");
        assert_eq!(prunes[0].actor, "maintenance", "{label}");
        assert_eq!(
            heratio_keys_web::Config::new("sqlite:x").maintenance_interval,
            Some(Duration::from_secs(3600))
        );
    }
}
