//! `prune`: retention of raw usage, change-feed and (if asked) audit rows.

use std::time::Instant;

use heratio_keys_core::model::{now_ms, parse_duration, parse_rfc3339, rfc3339};
use heratio_keys_core::retention::{self, MIN_FEED_RETENTION_MS};
use heratio_keys_core::{Actor, Dsn, Pruned, Retention, Source};
use serde::Serialize;

use super::lifecycle::MAINTENANCE_ACTOR;
use super::{ok, open_store, to_json};
use crate::args::{PruneArgs, AUDIT_RETENTION_ENV, FEED_RETENTION_ENV, USAGE_RETENTION_ENV};
use crate::output::{duration_text, fields, short_time};
use crate::{Failure, Outcome};

/// `keygen prune --json`: the counts per table, the policy applied and how
/// long it took.
#[derive(Debug, Serialize)]
struct PruneJson {
    now: String,
    usage_rows: u64,
    rejected_rows: u64,
    feed_rows: u64,
    rate_rows: u64,
    audit_rows: u64,
    usage_retention: String,
    feed_retention: String,
    /// `null`: audit rows are kept forever.
    audit_retention: Option<String>,
    elapsed_ms: u64,
}

fn duration_flag(flag: &str, env: &str, text: &str) -> Result<i64, Failure> {
    parse_duration(text).map_err(|e| Failure::usage(format!("{flag} (or {env}): {}", e.message())))
}

/// The retention the flags (or their environment variables) ask for.
fn retention(a: &PruneArgs) -> Result<Retention, Failure> {
    let usage_ms = duration_flag("--usage-retention", USAGE_RETENTION_ENV, &a.usage_retention)?;
    let feed_ms = duration_flag("--feed-retention", FEED_RETENTION_ENV, &a.feed_retention)?;
    // The store would silently keep an hour anyway; refusing says so to
    // whoever wrote the smaller number instead of pretending to obey it.
    if feed_ms < MIN_FEED_RETENTION_MS {
        return Err(Failure::usage(format!(
            "--feed-retention (or {FEED_RETENTION_ENV}): {} is under the minimum of 1h: \
             a validator that stalled must still find the revocations it missed",
            a.feed_retention.trim()
        )));
    }
    let audit_ms = match a.audit_retention.as_deref().map(str::trim) {
        None | Some("" | "forever") => None,
        Some(t) => Some(duration_flag("--audit-retention", AUDIT_RETENTION_ENV, t)?),
    };
    let now = match &a.now {
        Some(t) => {
            parse_rfc3339(t).map_err(|e| Failure::usage(format!("--now: {}", e.message())))?
        }
        None => now_ms(),
    };
    Ok(Retention {
        now,
        usage_ms,
        feed_ms,
        audit_ms,
    })
}

pub(super) fn prune(dsn: &Dsn, json: bool, a: &PruneArgs) -> Result<Outcome, Failure> {
    let r = retention(a)?;
    let store = open_store(dsn)?;
    let started = Instant::now();
    let actor = Actor::new(MAINTENANCE_ACTOR, Source::Cli);
    let p = retention::prune(store.as_ref(), &r, &actor)?;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if json {
        return ok(to_json(&PruneJson {
            now: rfc3339(r.now),
            usage_rows: p.usage_rows,
            rejected_rows: p.rejected_rows,
            feed_rows: p.feed_rows,
            rate_rows: p.rate_rows,
            audit_rows: p.audit_rows,
            usage_retention: duration_text(r.usage_ms),
            feed_retention: duration_text(r.feed_ms),
            audit_retention: r.audit_ms.map(duration_text),
            elapsed_ms,
        })?);
    }
    ok(render(&r, &p, elapsed_ms))
}

fn render(r: &Retention, p: &Pruned, elapsed_ms: u64) -> String {
    let before = |keep: i64| format!("before {} UTC", short_time(r.now.saturating_sub(keep)));
    let mut out = format!(
        "Pruned {} rows in {}.{} s (as of {} UTC):\n",
        p.total(),
        elapsed_ms / 1000,
        elapsed_ms % 1000 / 100,
        short_time(r.now)
    );
    out.push_str(&fields(&[
        (
            "usage_log",
            format!(
                "{} (kept {}: {})",
                p.usage_rows,
                duration_text(r.usage_ms),
                before(r.usage_ms)
            ),
        ),
        (
            "usage_rejected",
            format!("{} (per-minute counts, same retention)", p.rejected_rows),
        ),
        (
            "change_feed",
            format!(
                "{} (kept {}: {})",
                p.feed_rows,
                duration_text(r.feed_ms),
                before(r.feed_ms)
            ),
        ),
        (
            "rate_counter",
            format!("{} (hours that are over)", p.rate_rows),
        ),
        (
            "audit_log",
            match r.audit_ms {
                Some(keep) => format!(
                    "{} (kept {}: {})",
                    p.audit_rows,
                    duration_text(keep),
                    before(keep)
                ),
                None => format!("{} (kept forever)", p.audit_rows),
            },
        ),
    ]));
    out.push_str("Daily statistics (usage_daily) are kept.\n");
    out
}
