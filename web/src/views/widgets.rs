//! Small pieces used across pages: badges, the CSRF field, placeholders,
//! counts and times.

use heratio_keys_core::model::rfc3339;
use heratio_keys_core::{CredentialState, Kind, Status};
use maud::{html, Markup, PreEscaped};

/// A coloured badge for a validation outcome.
pub(crate) fn status_badge(status: Status) -> Markup {
    let class = match status {
        Status::Valid => "text-bg-success",
        Status::Forbidden => "text-bg-warning",
        Status::Unavailable => "text-bg-secondary",
        _ => "text-bg-danger",
    };
    html! { span class={ "badge " (class) } { (status.name()) } }
}

/// A badge for a credential's state, named as the core names it.
pub(crate) fn state_badge(state: CredentialState) -> Markup {
    let class = match state {
        CredentialState::Active => "text-bg-success",
        CredentialState::Expired => "text-bg-warning",
        CredentialState::Revoked => "text-bg-secondary",
    };
    html! { span class={ "badge " (class) } { (state.as_str()) } }
}

/// A badge for a client's state.
pub(crate) fn client_badge(active: bool) -> Markup {
    if active {
        html! { span.badge.text-bg-success { "active" } }
    } else {
        html! { span.badge.text-bg-secondary { "inactive" } }
    }
}

/// A hidden CSRF field.
pub(crate) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// Placeholder for an empty cell.
pub(crate) fn dash() -> Markup {
    PreEscaped("&ndash;".to_owned())
}

/// `1 API key`, `2 AI tokens`: the core's label, counted.
pub(crate) fn plural(n: u64, kind: Kind) -> String {
    if n == 1 {
        format!("{n} {}", kind.label())
    } else {
        format!("{n} {}", plural_label(kind))
    }
}

/// `API keys`, `AI tokens`.
pub(crate) fn plural_label(kind: Kind) -> String {
    format!("{}s", kind.label())
}

/// `YYYY-MM-DD HH:MM` (UTC) of a millisecond timestamp: the core's RFC 3339
/// form, shortened for tables.
pub(crate) fn short_time(ms: i64) -> String {
    let full = rfc3339(ms);
    format!("{} {}", &full[..10], &full[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::model::DAY_MS;

    #[test]
    fn times_and_counts() {
        assert_eq!(short_time(DAY_MS + 61_000), "1970-01-02 00:01");
        assert_eq!(plural(1, Kind::ApiKey), "1 API key");
        assert_eq!(plural(0, Kind::AiToken), "0 AI tokens");
    }
}
