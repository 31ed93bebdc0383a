//! The usage log's filters, from the query string: checked here, and a bad
//! one is explained on the page rather than refused, so the form can be
//! corrected. The page, its export and the rejected counts share them.

use heratio_keys_core::{Kind, Status, UsageQuery};
use serde::Deserialize;

use crate::params;

/// Percent-encodes a query-string value.
pub(super) fn enc(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct UsageParams {
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub credential: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub page: String,
    /// Exports only: `csv` (the default) or `json` (JSON lines).
    #[serde(default)]
    pub format: String,
}

impl UsageParams {
    /// The filters (no page) as a query string, for links that keep them.
    pub(super) fn filter_string(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("client", &self.client),
            ("kind", &self.kind),
            ("credential", &self.credential),
            ("outcome", &self.outcome),
            ("ip", &self.ip),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            let v = v.trim();
            if !v.is_empty() {
                parts.push(format!("{k}={}", enc(v)));
            }
        }
        parts.join("&")
    }

    /// The filters and a page, as a query string.
    pub(super) fn query_string(&self, page: u64) -> String {
        let filters = self.filter_string();
        if filters.is_empty() {
            format!("page={page}")
        } else {
            format!("{filters}&page={page}")
        }
    }

    /// The store query for pages of `page_size` rows and the page number,
    /// or the messages explaining which filters are wrong.
    pub(super) fn to_query(&self, page_size: u64) -> Result<(UsageQuery, u64), Vec<String>> {
        let mut errors = Vec::new();
        let mut q = UsageQuery {
            limit: page_size,
            ..UsageQuery::default()
        };
        let client = self.client.trim();
        if !client.is_empty() {
            match client.parse::<i64>() {
                Ok(id) if id > 0 => q.client_id = Some(id),
                _ => errors.push("Client must be a client id.".to_owned()),
            }
        }
        let kind = match self.kind.trim() {
            "" => None,
            text => match text.parse::<Kind>() {
                Ok(kind) => Some(kind),
                Err(_) => {
                    errors.push("Kind must be API key or AI token.".to_owned());
                    None
                }
            },
        };
        let cred = self.credential.trim();
        if kind.is_some() && cred.is_empty() {
            errors
                .push("The kind filters together with a key id: enter the key id too.".to_owned());
        }
        if !cred.is_empty() {
            match (cred.parse::<i64>(), kind) {
                (Ok(id), Some(kind)) if id > 0 => q.credential = Some((kind, id)),
                (Ok(id), None) if id > 0 => {
                    errors.push(
                        "Choose the kind (API key or AI token) of the credential id.".to_owned(),
                    );
                }
                _ => errors.push("Credential must be a credential id.".to_owned()),
            }
        }
        let outcome = self.outcome.trim();
        if !outcome.is_empty() {
            match Status::from_name(outcome) {
                Some(s) => q.status = Some(s),
                None => errors.push(format!("Unknown outcome {outcome:?}.")),
            }
        }
        let ip = self.ip.trim();
        if !ip.is_empty() {
            q.ip = Some(ip.to_owned());
        }
        let from = self.from.trim();
        if !from.is_empty() {
            match params::date(from) {
                Some(t) => q.since = Some(t),
                None => errors.push("From must be a date (YYYY-MM-DD).".to_owned()),
            }
        }
        let to = self.to.trim();
        if !to.is_empty() {
            match params::date_end(to) {
                Some(t) => q.until = Some(t),
                None => errors.push("To must be a date (YYYY-MM-DD).".to_owned()),
            }
        }
        let page = match self.page.trim() {
            "" => 1,
            p => p
                .parse::<u64>()
                .ok()
                .filter(|p| *p >= 1 && *p <= 1_000_000)
                .unwrap_or_else(|| {
                    errors.push("Page must be a positive number.".to_owned());
                    1
                }),
        };
        q.offset = (page - 1) * page_size;
        if errors.is_empty() {
            Ok((q, page))
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(enc("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(enc("192.0.2.1"), "192.0.2.1");
    }

    #[test]
    fn links_keep_the_filters() {
        let p = UsageParams {
            outcome: "valid".into(),
            ip: " 192.0.2.1 ".into(),
            page: "3".into(),
            ..UsageParams::default()
        };
        assert_eq!(p.filter_string(), "outcome=valid&ip=192.0.2.1");
        assert_eq!(p.query_string(2), "outcome=valid&ip=192.0.2.1&page=2");
        assert_eq!(UsageParams::default().query_string(2), "page=2");
        let (q, page) = p.to_query(50).unwrap();
        assert_eq!((q.offset, q.limit, page), (100, 50, 3));
    }
}
