//! Grammar of the reporting and data commands: `audit`, `usage:export`
//! and `import:heratio`, with the value parsers they (and `admin:*`) share.

use clap::Args;
use heratio_keys_core::{AdminRole, Kind, Status};

use super::id_parser;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// From this time (inclusive): RFC 3339, YYYY-MM-DD (UTC) or a duration ago (7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Until this time (exclusive), same forms as --since
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only this actor: an OS user, an admin name or `maintenance`
    #[arg(long, value_name = "A")]
    pub actor: Option<String>,
    /// Only this action (api_key.revoke), or with a trailing `.` every
    /// action with that prefix (api_key.)
    #[arg(long, value_name = "X")]
    pub action: Option<String>,
    /// Only this target: api_key, ai_token, client, admin_user, … (api and
    /// ai are short for api_key and ai_token), optionally with :ID
    #[arg(long, value_name = "TYPE[:ID]", value_parser = target_parser)]
    pub target: Option<(String, Option<i64>)>,
    /// Most rows to show
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub limit: u64,
    /// Rows to skip (newest first), for the next page
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
}

/// Output format of `usage:export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row (RFC 4180)
    Csv,
    /// One JSON object per line
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// From this time (inclusive): RFC 3339, YYYY-MM-DD (UTC) or a duration ago (7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Until this time (exclusive), same forms as --since
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only this client's credentials
    #[arg(long, value_name = "ID", value_parser = id_parser())]
    pub client: Option<i64>,
    /// Only API keys (api) or AI tokens (ai)
    #[arg(long, value_name = "api|ai", value_parser = kind_parser)]
    pub kind: Option<Kind>,
    /// Only this outcome: valid, forbidden, expired, revoked, ip_denied, …
    #[arg(long, value_name = "S", value_parser = status_parser)]
    pub status: Option<Status>,
    /// csv (with a header row) or json (one object per line); --json is
    /// the same as --format json
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ExportFormat>,
}

pub(super) fn role_parser(text: &str) -> Result<AdminRole, String> {
    text.parse::<AdminRole>()
        .map_err(|e| e.message().to_owned())
}

pub(super) fn kind_parser(text: &str) -> Result<Kind, String> {
    Kind::ALL
        .into_iter()
        .find(|k| k.short_name() == text)
        .ok_or_else(|| format!("invalid kind {text:?}: expected api or ai"))
}

pub(super) fn status_parser(text: &str) -> Result<Status, String> {
    Status::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
        format!(
            "invalid status {text:?}: expected one of {}",
            names.join(", ")
        )
    })
}

/// `TYPE` or `TYPE:ID`; `api` and `ai` stand for `api_key` and `ai_token`.
pub(super) fn target_parser(text: &str) -> Result<(String, Option<i64>), String> {
    let (kind, id) = match text.split_once(':') {
        Some((kind, id)) => {
            let id =
                id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                    format!("invalid target id {id:?}: expected a positive integer")
                })?;
            (kind, Some(id))
        }
        None => (text, None),
    };
    let kind = match kind {
        "api" => "api_key",
        "ai" => "ai_token",
        other => other,
    };
    if kind.is_empty() || !kind.bytes().all(|c| c.is_ascii_lowercase() || c == b'_') {
        return Err(format!(
            "invalid target type {kind:?}: expected api_key, ai_token, client, admin_user, …"
        ));
    }
    Ok((kind.to_owned(), id))
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The Heratio database: mysql://USER:PASS@HOST:PORT/DB or sqlite:PATH
    #[arg(long, value_name = "DSN")]
    pub from: String,
    /// Put every key under this client instead of one client per Heratio user
    #[arg(long, value_name = "ID", value_parser = id_parser())]
    pub client: Option<i64>,
    /// Report what would be imported, updated and skipped; write nothing
    #[arg(long)]
    pub dry_run: bool,
}
