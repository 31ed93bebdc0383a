//! The maintenance pass on a timer ([`Config::maintenance_interval`]):
//! `keygen serve` does what `keygen maintain` does, at start and then every
//! interval, so idle-revoke policies hold without a cron job. The pass is
//! the core's (`LifecycleStore::maintain`): idempotent, one transaction,
//! audit rows (actor `maintenance`) and change-feed rows written by the
//! core. Running it at start too means a server restarted more often than
//! the interval still runs it. Each pass then prunes with the retention
//! `keygen prune` would use: the `HERATIO_KEYS_*_RETENTION` variables of
//! the environment (the packaged units share one `EnvironmentFile`), else
//! its defaults (90 days of raw usage, a day of change feed, audit kept).
//! So a server left alone never grows its usage log without bound, and
//! never prunes sooner than the timer was told to; whichever runs first
//! does the work. A malformed variable skips pruning (and says so) rather
//! than falling back to shorter defaults.
//!
//! [`Config::maintenance_interval`]: crate::Config::maintenance_interval

use std::time::Duration;

use heratio_keys_core::model::now_ms;
use heratio_keys_core::{retention, Actor, Source};
use tokio::time::MissedTickBehavior;

use crate::state::Shared;

/// The audit log's actor for every pass, as for `keygen maintain`.
pub(crate) const ACTOR: &str = "maintenance";

/// Runs the pass every `every`, starting now, until the runtime stops.
pub(crate) fn start(app: &Shared, every: Duration) {
    let app = std::sync::Arc::clone(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        // A pass that overran (a slow database) is not caught up in a burst.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&app).await;
        }
    });
}

async fn run_once(app: &Shared) {
    let actor = Actor::new(ACTOR, Source::Web);
    match app.store(move |s| s.maintain(now_ms(), true, &actor)).await {
        Ok(report) => {
            if !report.revoked.is_empty() {
                let ids: Vec<String> = report
                    .revoked
                    .iter()
                    .map(|i| format!("{} {}", i.kind.short_name(), i.id))
                    .collect();
                eprintln!(
                    "keygen serve: maintenance revoked {} idle key(s): {}",
                    ids.len(),
                    ids.join(", ")
                );
            }
        }
        // The next tick tries again; a failed pass changed nothing.
        Err(e) => eprintln!("keygen serve: maintenance pass failed: {e}"),
    }
    let policy = match retention::from_env(now_ms()) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("keygen serve: not pruning: {e}");
            return;
        }
    };
    let actor = Actor::new(ACTOR, Source::Web);
    // Batches of a few thousand rows on the blocking pool: requests keep
    // being served while it runs.
    match app
        .store(move |s| retention::prune(s, &policy, &actor))
        .await
    {
        Ok(p) if p.total() > 0 => eprintln!(
            "keygen serve: pruned {} usage, {} rejection, {} feed, {} rate-counter rows",
            p.usage_rows, p.rejected_rows, p.feed_rows, p.rate_rows
        ),
        Ok(_) => {}
        // Batches already deleted stay deleted; the next pass goes on.
        Err(e) => eprintln!("keygen serve: pruning failed: {e}"),
    }
}
