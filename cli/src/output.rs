//! Rendering: aligned tables for people, stable JSON documents for scripts.
//!
//! The JSON shapes here are a documented contract (docs/cli.md): fields may
//! be added, never renamed or removed. Ids are integers, times are RFC 3339
//! UTC strings (or `null`), scopes are arrays of strings.

use heratio_keys_core::model::{rfc3339, CredentialUsage, DayCount};
use heratio_keys_core::store::UsageEntry;
use heratio_keys_core::{
    AdminAccount, AuditEntry, Client, CredentialView, Deactivation, InstallReport, Maintenance,
    MaintenanceItem, UsageStats, Validation, ValidationView,
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

/// A period in the form `--idle-revoke` takes: the largest of `d`, `h`, `m`,
/// `s` that divides it (`30d`, `36h`), else milliseconds (`1500ms`).
pub fn duration_text(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
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
    /// Keys and tokens unused this long are revoked by `keygen maintain`
    /// (`30d`), `null`: never.
    pub idle_revoke: Option<String>,
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
            idle_revoke: c.idle_revoke_ms.map(duration_text),
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

/// `*:rotate`: the new credential as `*:generate` prints it, plus the
/// one it replaces and when that one now expires.
#[derive(Debug, Serialize)]
pub struct RotatedJson<'a> {
    #[serde(flatten)]
    pub view: CredentialView,
    pub key: &'a str,
    /// The old credential's id.
    pub replaces: i64,
    /// The old credential's new expiry: the end of the grace period, or its
    /// own earlier expiry.
    pub replaces_expires_at: Option<String>,
}

/// `client:reactivate`: the client, and how many of its credentials stay
/// revoked.
#[derive(Debug, Serialize)]
pub struct ReactivatedJson {
    #[serde(flatten)]
    pub client: ClientJson,
    pub revoked_api_keys: u64,
    pub revoked_ai_tokens: u64,
}

/// One credential of a `maintain` report.
#[derive(Debug, Serialize)]
pub struct MaintenanceItemJson {
    pub kind: &'static str,
    pub id: i64,
    pub client_id: i64,
    pub name: String,
    pub prefix: String,
    /// When it was (or will be) revoked for idleness, or when it expires.
    pub at: String,
}

impl From<&MaintenanceItem> for MaintenanceItemJson {
    fn from(i: &MaintenanceItem) -> Self {
        MaintenanceItemJson {
            kind: i.kind.short_name(),
            id: i.id,
            client_id: i.client_id,
            name: i.name.clone(),
            prefix: i.display_prefix.clone(),
            at: rfc3339(i.at),
        }
    }
}

/// `maintain`.
#[derive(Debug, Serialize)]
pub struct MaintenanceJson {
    /// The instant every policy was evaluated at.
    pub now: String,
    pub dry_run: bool,
    pub revoked: Vec<MaintenanceItemJson>,
    pub revoke_soon: Vec<MaintenanceItemJson>,
    pub expiring_soon: Vec<MaintenanceItemJson>,
}

impl MaintenanceJson {
    pub fn new(now: i64, dry_run: bool, m: &Maintenance) -> Self {
        let items = |v: &[MaintenanceItem]| v.iter().map(MaintenanceItemJson::from).collect();
        MaintenanceJson {
            now: rfc3339(now),
            dry_run,
            revoked: items(&m.revoked),
            revoke_soon: items(&m.revoke_soon),
            expiring_soon: items(&m.expiring_soon),
        }
    }
}

/// `admin:list` entries, `admin:disable`, `admin:enable`, `admin:role`.
#[derive(Debug, Serialize)]
pub struct AdminJson {
    pub id: i64,
    pub user: String,
    pub role: &'static str,
    pub active: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

impl From<&AdminAccount> for AdminJson {
    fn from(a: &AdminAccount) -> Self {
        AdminJson {
            id: a.id,
            user: a.username.clone(),
            role: a.role.as_str(),
            active: a.active,
            created_at: rfc3339(a.created_at),
            last_login_at: opt_time(a.last_login_at),
        }
    }
}

/// `audit` entries.
#[derive(Debug, Serialize)]
pub struct AuditJson {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub source: String,
    pub ip: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub detail: Option<String>,
}

impl From<&AuditEntry> for AuditJson {
    fn from(e: &AuditEntry) -> Self {
        AuditJson {
            id: e.id,
            at: rfc3339(e.at),
            actor: e.actor.clone(),
            source: e.source.clone(),
            ip: e.ip.clone(),
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id,
            detail: e.detail.clone(),
        }
    }
}

/// One line of `usage:export --format json`; the CSV columns are the same,
/// in this order.
#[derive(Debug, Serialize)]
pub struct UsageRowJson<'a> {
    pub id: i64,
    pub at: String,
    pub kind: &'static str,
    pub credential_id: Option<i64>,
    pub client_id: Option<i64>,
    pub status: &'static str,
    pub ip: Option<&'a str>,
    pub endpoint: Option<&'a str>,
}

/// The CSV header of `usage:export`.
pub const USAGE_CSV_HEADER: &str = "id,at,kind,credential_id,client_id,status,ip,endpoint\n";

impl<'a> From<&'a UsageEntry> for UsageRowJson<'a> {
    fn from(e: &'a UsageEntry) -> Self {
        let r = &e.record;
        UsageRowJson {
            id: e.id,
            at: rfc3339(r.at),
            kind: r.kind.short_name(),
            credential_id: r.credential_id,
            client_id: r.client_id,
            status: r.status.name(),
            ip: r.ip.as_deref(),
            endpoint: r.endpoint.as_deref(),
        }
    }
}

impl UsageRowJson<'_> {
    /// The row as one CSV line (RFC 4180: a field holding a comma, quote or
    /// line break is quoted, quotes doubled), ending in `\n`.
    pub fn push_csv(&self, line: &mut String) {
        use std::fmt::Write;
        let opt = |v: Option<i64>| v.map_or_else(String::new, |v| v.to_string());
        let _ = write!(
            line,
            "{},{},{},{},{},{},",
            self.id,
            self.at,
            self.kind,
            opt(self.credential_id),
            opt(self.client_id),
            self.status
        );
        push_csv_field(line, self.ip.unwrap_or(""));
        line.push(',');
        push_csv_field(line, self.endpoint.unwrap_or(""));
        line.push('\n');
    }
}

fn push_csv_field(line: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&value.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(value);
    }
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
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(duration_text(30 * 86_400_000), "30d");
        assert_eq!(duration_text(36 * 3_600_000), "36h");
        assert_eq!(duration_text(90_000), "90s");
        assert_eq!(duration_text(1_500), "1500ms");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut line = String::new();
        let row = UsageRowJson {
            id: 3,
            at: "2026-11-23T11:52:56Z".into(),
            kind: "api",
            credential_id: Some(7),
            client_id: None,
            status: "valid",
            ip: Some("2001:db8::1"),
            endpoint: Some("/a,b \"c\"\nd"),
        };
        row.push_csv(&mut line);
        assert_eq!(
            line,
            "3,2026-11-23T11:52:56Z,api,7,,valid,2001:db8::1,\"/a,b \"\"c\"\"\nd\"\n"
        );
    }

    #[test]
    fn short_times_drop_seconds() {
        assert_eq!(short_time(1_795_000_000_000), "2026-11-18 11:06");
    }
}
