//! How many login password checks run at once, and what they cost in
//! memory. Alone in its test binary (not in `suite/`): the count of checks
//! is per process, and so is the peak memory measured.

#[path = "suite/common/mod.rs"]
mod common;

use common::{audit_count, parallel_logins, Browser, Server, ADMIN};

/// The process's peak resident memory so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn parallel_logins_from_many_sources_check_a_bounded_number_at_once() {
    let db = common::sqlite();
    let concurrency = 4;
    let server = Server::start_with(&db, |c| {
        c.trust_proxy = true;
        c.login_concurrency = concurrency;
    });
    // Started (its own start-up hash done) before the baseline is taken.
    Browser::new(&server).get("/healthz").expect(200);
    let before = peak_rss_kib();
    // 200 guesses at once from 200 sources: no throttle applies, so only
    // the bound on concurrent checks stands between them and 200 × 19 MiB.
    let statuses = parallel_logins(
        &server,
        200,
        |_| ADMIN.to_owned(),
        |i| Some(format!("198.51.100.{}", i + 1)),
    );
    let after = peak_rss_kib();
    drop(server);
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    let peak = heratio_keys_web::peak_password_checks();
    eprintln!(
        "200 parallel wrong logins from 200 sources: {checked} checked, {busy} refused as busy, \
         at most {peak} checks at once, peak RSS {} MiB -> {} MiB",
        before / 1024,
        after / 1024
    );
    assert_eq!(checked + busy, 200, "{statuses:?}");
    assert!(checked >= 1, "some were checked");
    assert!(peak <= concurrency, "{peak} checks ran at once");
    assert_eq!(audit_count(&db, "admin.login_failed"), checked);
    // argon2 takes 19 MiB per check: four at once are 76 MiB; 200 would be
    // 3.8 GiB (before the bound, 62 ran at once here: +1.2 GiB). The margin
    // covers the 200 client threads of this test and their sockets.
    let grew_mib = after.saturating_sub(before) / 1024;
    let bound = 19 * concurrency as u64 + 128;
    assert!(
        grew_mib < bound,
        "peak RSS grew by {grew_mib} MiB (bound {bound})"
    );
}
