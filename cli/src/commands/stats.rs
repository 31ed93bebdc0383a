//! `stats`.

use heratio_keys_core::model::now_ms;
use heratio_keys_core::{Dsn, StatsQuery};

use super::{ok, open_store, plural, to_json};
use crate::output::{fields, short_time, StatsJson, Table};
use crate::{Failure, Outcome};

pub(super) fn stats(
    dsn: &Dsn,
    json: bool,
    client_id: Option<i64>,
    days: u32,
    top: u32,
) -> Result<Outcome, Failure> {
    let store = open_store(dsn)?;
    let s = store.usage_stats(&StatsQuery {
        client_id,
        now: now_ms(),
        days,
        top,
    })?;
    if json {
        return ok(to_json(&StatsJson::new(client_id, days, &s))?);
    }
    let mut out = String::new();
    if let Some(id) = client_id {
        out.push_str(&format!("Statistics for client {id}\n"));
    }
    out.push_str(&fields(&[
        (
            "clients",
            format!("{} ({} active)", s.clients, s.active_clients),
        ),
        ("active API keys", s.active_api_keys.to_string()),
        ("active AI tokens", s.active_ai_tokens.to_string()),
        (
            "validations",
            format!(
                "{} in the last {} (valid {})",
                s.validations,
                plural(u64::from(days), "day", "days"),
                s.valid_validations
            ),
        ),
        (
            "last used",
            s.last_used_at
                .map_or_else(|| "never".into(), |t| format!("{} UTC", short_time(t))),
        ),
    ]));
    let busy: Vec<_> = s.per_day.iter().filter(|d| d.total > 0).collect();
    if !busy.is_empty() {
        out.push_str("\nValidations per day (days without any omitted):\n");
        let mut table = Table::new(&["DATE", "TOTAL", "VALID"]);
        for d in busy {
            table.row(vec![
                d.date.clone(),
                d.total.to_string(),
                d.valid.to_string(),
            ]);
        }
        out.push_str(&table.render());
    }
    if !s.top.is_empty() {
        out.push_str("\nMost used credentials:\n");
        let mut table = Table::new(&[
            "KIND",
            "ID",
            "CLIENT",
            "PREFIX",
            "NAME",
            "USES",
            "LAST USED",
        ]);
        for u in &s.top {
            table.row(vec![
                u.kind.short_name().into(),
                u.id.to_string(),
                u.client_id.to_string(),
                format!("{}…", u.display_prefix),
                u.name.clone(),
                u.usage_count.to_string(),
                u.last_used_at.map_or_else(|| "never".into(), short_time),
            ]);
        }
        out.push_str(&table.render());
    }
    ok(out)
}
