//! Rendering: aligned tables for people, stable JSON documents for scripts.
//!
//! The JSON shapes here are a documented contract (docs/cli.md): fields may
//! be added, never renamed or removed. Ids are integers, times are RFC 3339
//! UTC strings (or `null`), scopes are arrays of strings.

use heratio_keys_core::model::{rfc3339, CredentialUsage, DayCount};
use heratio_keys_core::{
    Client, CredentialView, Deactivation, InstallReport, UsageStats, Validation, ValidationView,
};
use serde::Serialize;

/// `2026-11-23 11:49` (UTC), for tables.
pub fn short_time(ms: i64) -> String {
    let full = rfc3339(ms);
    // 2026-11-23T11:49:05Z -> 2026-11-23 11:49
    full.get(..16)
        .map_or(full.clone(), |s| s.replacen('T', " ", 1))
}

fn opt_time(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}

/// Column-aligned text table; the last column is not padded.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Aligned `key  value` lines, indented by two spaces.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        out.push_str(&format!("  {key:<width$}  {value}\n"));
    }
    out
}

/// `client:create`, `client:list` entries.
#[derive(Debug, Serialize)]
pub struct ClientJson {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub organization: Option<String>,
    pub active: bool,
    pub created_at: String,
    pub deactivated_at: Option<String>,
    /// Where an imported client came from (`heratio:user:42`), else `null`.
    pub external_id: Option<String>,
}

impl From<&Client> for ClientJson {
    fn from(c: &Client) -> Self {
        ClientJson {
            id: c.id,
            name: c.name.clone(),
            email: c.email.clone(),
            organization: c.organization.clone(),
            active: c.active,
            created_at: rfc3339(c.created_at),
            deactivated_at: opt_time(c.deactivated_at),
            external_id: c.external_id.clone(),
        }
    }
}

/// `*:generate`: the one place the plaintext appears. The library's view of
/// the stored credential (`CredentialView`: id, client_id, kind, prefix,
/// name, scopes, status, times, metadata, rate_limit, shape) plus `key`.
#[derive(Debug, Serialize)]
pub struct GeneratedJson<'a> {
    #[serde(flatten)]
    pub view: CredentialView,
    pub key: &'a str,
}

/// `client:deactivate`.
#[derive(Debug, Serialize)]
pub struct DeactivationJson {
    pub client_id: i64,
    pub active: bool,
    pub api_keys_revoked: u64,
    pub ai_tokens_revoked: u64,
}

impl From<&Deactivation> for DeactivationJson {
    fn from(d: &Deactivation) -> Self {
        DeactivationJson {
            client_id: d.client_id,
            active: false,
            api_keys_revoked: d.api_keys_revoked,
            ai_tokens_revoked: d.ai_tokens_revoked,
        }
    }
}

/// `install`.
#[derive(Debug, Serialize)]
pub struct InstallJson {
    pub dsn: String,
    pub created: bool,
    pub from_version: Option<u32>,
    pub to_version: u32,
    pub applied: Vec<String>,
}

impl InstallJson {
    pub fn new(dsn: String, r: &InstallReport) -> Self {
        InstallJson {
            dsn,
            created: r.from_version.is_none(),
            from_version: r.from_version,
            to_version: r.to_version,
            applied: r.applied.clone(),
        }
    }
}

/// `*:validate`: the library's view of the answer, plus `id` (the same as
/// `key_id`), which this command has always printed.
#[derive(Debug, Serialize)]
pub struct ValidationJson {
    #[serde(flatten)]
    pub view: ValidationView,
    pub id: Option<i64>,
}

impl From<&Validation> for ValidationJson {
    fn from(v: &Validation) -> Self {
        let view = ValidationView::from(v);
        ValidationJson {
            id: view.key_id,
            view,
        }
    }
}

/// `stats`.
#[derive(Debug, Serialize)]
pub struct StatsJson {
    pub client_id: Option<i64>,
    pub days: u32,
    pub clients: i64,
    pub active_clients: i64,
    pub active_api_keys: i64,
    pub active_ai_tokens: i64,
    pub validations: ValidationsJson,
    pub top: Vec<TopJson>,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ValidationsJson {
    pub total: i64,
    pub valid: i64,
    pub per_day: Vec<DayJson>,
}

#[derive(Debug, Serialize)]
pub struct DayJson {
    pub date: String,
    pub total: i64,
    pub valid: i64,
}

impl From<&DayCount> for DayJson {
    fn from(d: &DayCount) -> Self {
        DayJson {
            date: d.date.clone(),
            total: d.total,
            valid: d.valid,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TopJson {
    pub kind: &'static str,
    pub id: i64,
    pub client_id: i64,
    pub prefix: String,
    pub name: String,
    pub usage_count: i64,
    pub last_used_at: Option<String>,
}

impl From<&CredentialUsage> for TopJson {
    fn from(u: &CredentialUsage) -> Self {
        TopJson {
            kind: u.kind.short_name(),
            id: u.id,
            client_id: u.client_id,
            prefix: u.display_prefix.clone(),
            name: u.name.clone(),
            usage_count: u.usage_count,
            last_used_at: opt_time(u.last_used_at),
        }
    }
}

impl StatsJson {
    pub fn new(client_id: Option<i64>, days: u32, s: &UsageStats) -> Self {
        StatsJson {
            client_id,
            days,
            clients: s.clients,
            active_clients: s.active_clients,
            active_api_keys: s.active_api_keys,
            active_ai_tokens: s.active_ai_tokens,
            validations: ValidationsJson {
                total: s.validations,
                valid: s.valid_validations,
                per_day: s.per_day.iter().map(DayJson::from).collect(),
            },
            top: s.top.iter().map(TopJson::from).collect(),
            last_used_at: opt_time(s.last_used_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_characters() {
        let mut t = Table::new(&["ID", "NAME", "X"]);
        t.row(vec!["1".into(), "é".into(), "a".into()]);
        t.row(vec!["10".into(), "long name".into(), "".into()]);
        assert_eq!(
            t.render(),
            "ID  NAME       X\n1   é          a\n10  long name\n"
        );
    }

    #[test]
    fn short_times_drop_seconds() {
        assert_eq!(short_time(1_795_000_000_000), "2026-11-18 11:06");
    }
}
