//! The body of `POST /v1/verify` (`keygen serve`): a JSON object
//! `{"key": string, "kind": "api"|"ai", "scopes": [string], "ip": string,
//! "endpoint": string}`, of which only `key` is required. Parsed here, with
//! the core's kind and scope rules, so that the rule exists once and can be
//! fuzzed without a web server.
//!
//! A caller may paste a key into the wrong field, so no refusal ever
//! repeats a value from the body: every message is one of a fixed set
//! (serde's own messages quote values, and are never passed on), and the
//! `Debug` form leaves the key out.

use std::fmt;

use serde::Deserialize;

use crate::format::Kind;
use crate::model::{check_required, is_scope_name};

/// A parsed, checked verify request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    key: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// What a verify request asks.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// The presented credential (never printed by `Debug`).
    pub key: String,
    /// The kind asked for; API keys unless named.
    pub kind: Kind,
    /// Scopes the credential must hold, each a scope name.
    pub scopes: Vec<String>,
    /// The end user's address as the calling service saw it.
    pub ip: Option<String>,
    /// The endpoint the end user called.
    pub endpoint: Option<String>,
}

impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("kind", &self.kind)
            .field("scopes", &self.scopes)
            .field("ip", &self.ip)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// The shape every "invalid request body" message states.
pub const VERIFY_BODY_SHAPE: &str =
    "expected {\"key\": string, \"kind\": \"api\"|\"ai\", \"scopes\": [string]}";

impl VerifyRequest {
    /// Parses a JSON body and checks its kind and scopes.
    ///
    /// # Errors
    ///
    /// A message for the caller (an HTTP 400), from a fixed set that never
    /// quotes the body: malformed, truncated or wrongly shaped JSON, a
    /// kind other than `"api"`/`"ai"`, or a required scope that is not a
    /// scope name (named by its position) or too many of them.
    pub fn from_json(body: &[u8]) -> Result<VerifyRequest, String> {
        let refuse = |what: &str| format!("invalid request body ({what}): {VERIFY_BODY_SHAPE}");
        // serde's derive also takes a struct as an array of its fields in
        // order (`["hk_api_…"]`): an undocumented second shape, refused.
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(refuse("wrong or missing fields"));
        }
        let body: Body = serde_json::from_slice(body).map_err(|e| {
            refuse(match e.classify() {
                serde_json::error::Category::Syntax => "malformed JSON",
                serde_json::error::Category::Eof => "truncated JSON",
                _ => "wrong or missing fields",
            })
        })?;
        // The core's kind error quotes its input, which may be a key pasted
        // into the wrong field, so only the fact is reported.
        let kind = match body.kind.as_deref() {
            None => Kind::ApiKey,
            Some(text) => text
                .parse()
                .map_err(|_| "\"kind\" must be \"api\" or \"ai\"".to_owned())?,
        };
        check_required(&body.scopes).map_err(|e| {
            // Likewise the scope rule names the offending scope: point at
            // its position instead.
            match body.scopes.iter().position(|s| !is_scope_name(s)) {
                Some(i) => format!(
                    "\"scopes\"[{i}] is not a valid scope name (the value is not repeated here)"
                ),
                None => e.message().to_owned(),
            }
        })?;
        Ok(VerifyRequest {
            key: body.key,
            kind,
            scopes: body.scopes,
            ip: body.ip,
            endpoint: body.endpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_never_repeat_the_body() {
        let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
        for body in [
            format!(r#"{{"key": 1, "kind": "{key}"}}"#),
            format!(r#"{{"key": "x", "kind": "{key}"}}"#),
            format!(r#"{{"key": "x", "scopes": ["read", "{key}!"]}}"#),
            format!(r#"{{"key": "x", "{key}": 1}}"#),
            format!(r#"{{"key": "{key}""#),
            format!(r#"{{"kee": "{key}"}}"#),
        ] {
            let why = VerifyRequest::from_json(body.as_bytes()).expect_err(&body);
            assert!(!why.contains(key), "{why}");
        }
        let why = VerifyRequest::from_json(br#"{"key": "x", "scopes": ["read", "no way"]}"#)
            .expect_err("bad scope");
        assert!(why.starts_with("\"scopes\"[1]"), "{why}");
    }

    /// Found by the verify_body fuzz target.
    #[test]
    fn only_an_object_is_a_request() {
        for body in [
            &b"[\"ip [ad ocope\"]"[..],
            b" [\"k\", \"api\"]",
            b"\"k\"",
            b"1",
        ] {
            let why = VerifyRequest::from_json(body).expect_err("not an object");
            assert!(why.starts_with("invalid request body"), "{why}");
        }
    }

    #[test]
    fn a_request_parses_with_defaults_and_hides_its_key_from_debug() {
        let r = VerifyRequest::from_json(br#"{"key": "hk_ai_secret-ish", "kind": "ai"}"#)
            .expect("parses");
        assert_eq!(r.kind, Kind::AiToken);
        assert!(r.scopes.is_empty() && r.ip.is_none() && r.endpoint.is_none());
        assert!(!format!("{r:?}").contains("secret-ish"));
        let r = VerifyRequest::from_json(br#"{"key": "k", "scopes": ["read"], "ip": "::1"}"#)
            .expect("parses");
        assert_eq!(
            (r.kind, r.scopes.len(), r.ip.as_deref()),
            (Kind::ApiKey, 1, Some("::1"))
        );
    }
}
