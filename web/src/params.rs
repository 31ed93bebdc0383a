//! Path segments and form fields turned into values: ids, credential kinds,
//! and the `YYYY-MM-DD` dates of HTML date inputs. The rules themselves
//! (kind names, time parsing) are the core's.

use heratio_keys_core::model::{parse_rfc3339, DAY_MS};
use heratio_keys_core::Kind;

use crate::error::AppError;

/// A row id from the path; anything else is a page that does not exist.
pub(crate) fn id(text: &str) -> Result<i64, AppError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)
}

/// A credential kind from the path (`api`, `ai`: the core's names).
pub(crate) fn kind(text: &str) -> Result<Kind, AppError> {
    text.parse::<Kind>().map_err(|_| AppError::NotFound)
}

/// The audit log's target type for a kind (the core's table names, which
/// its `Kind` keeps to itself).
pub(crate) fn target_type(kind: Kind) -> &'static str {
    match kind {
        Kind::ApiKey => "api_key",
        Kind::AiToken => "ai_token",
    }
}

/// Milliseconds at 00:00 UTC of a `YYYY-MM-DD` date.
pub(crate) fn date(text: &str) -> Option<i64> {
    let text = text.trim();
    // Only a bare date: the core's parser would also take a full timestamp.
    if text.len() != 10 {
        return None;
    }
    parse_rfc3339(&format!("{text}T00:00:00Z")).ok()
}

/// The end (exclusive) of the UTC day `text`.
pub(crate) fn date_end(text: &str) -> Option<i64> {
    date(text).map(|d| d + DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-02"), Some(DAY_MS));
        assert_eq!(date_end("1970-01-01"), Some(DAY_MS));
        assert_eq!(date("1970-1-2"), None);
        assert_eq!(date("nonsense!!"), None);
    }

    #[test]
    fn ids_and_kinds() {
        assert_eq!(id("7").ok(), Some(7));
        assert!(id("0").is_err() && id("-1").is_err() && id("x").is_err());
        assert_eq!(kind("api").ok(), Some(Kind::ApiKey));
        assert_eq!(kind("ai").ok(), Some(Kind::AiToken));
        assert!(kind("xx").is_err());
    }
}
