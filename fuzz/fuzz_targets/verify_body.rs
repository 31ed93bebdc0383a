//! The `POST /v1/verify` body: `VerifyRequest::from_json` on arbitrary
//! bytes.
//!
//! Invariants:
//! - never panics;
//! - a refusal is one of the fixed messages (so it cannot repeat anything
//!   from the body, a key pasted into the wrong field included);
//! - an accepted body is a JSON object whose `key` is the request's key
//!   exactly, whose `kind` is absent (API key) or names the request's kind,
//!   whose `scopes` are the request's, each a scope name, at most
//!   MAX_SCOPES of them; `ip` and `endpoint` are carried as given;
//! - `Debug` depends only on the key's length, never its text.
#![no_main]

use heratio_keys_core::model::{is_scope_name, MAX_SCOPES};
use heratio_keys_core::verify_request::VERIFY_BODY_SHAPE;
use heratio_keys_core::{Kind, VerifyRequest};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn is_fixed_message(why: &str) -> bool {
    let shapes = ["malformed JSON", "truncated JSON", "wrong or missing fields"]
        .map(|what| format!("invalid request body ({what}): {VERIFY_BODY_SHAPE}"));
    if shapes.iter().any(|m| m == why) || why == "\"kind\" must be \"api\" or \"ai\"" {
        return true;
    }
    if let Some(rest) = why.strip_prefix("\"scopes\"[") {
        if let Some((index, tail)) = rest.split_once(']') {
            return index.bytes().all(|b| b.is_ascii_digit())
                && !index.is_empty()
                && tail == " is not a valid scope name (the value is not repeated here)";
        }
    }
    // The core's own count rule names no value.
    why == format!("at most {MAX_SCOPES} scopes may be required")
}

fuzz_target!(|data: &[u8]| {
    match VerifyRequest::from_json(data) {
        Err(why) => assert!(is_fixed_message(&why), "an unexpected message: {why}"),
        Ok(r) => {
            let value: Value = serde_json::from_slice(data).expect("accepted, so JSON");
            let object = value.as_object().expect("accepted, so an object");
            assert_eq!(object.get("key").and_then(Value::as_str), Some(r.key.as_str()));
            let kind = match object.get("kind") {
                None | Some(Value::Null) => Kind::ApiKey,
                Some(k) => k.as_str().expect("a string").parse().expect("a kind"),
            };
            assert_eq!(r.kind, kind);
            let scopes: Vec<&str> = object
                .get("scopes")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|s| s.as_str().expect("strings")).collect())
                .unwrap_or_default();
            assert_eq!(r.scopes, scopes);
            assert!(r.scopes.len() <= MAX_SCOPES && r.scopes.iter().all(|s| is_scope_name(s)));
            for (field, got) in [("ip", &r.ip), ("endpoint", &r.endpoint)] {
                assert_eq!(object.get(field).and_then(Value::as_str), got.as_deref());
            }
            // Debug depends on the key's length only: the same request
            // with another key of that length prints the same.
            let canary = VerifyRequest {
                key: "x".repeat(r.key.len()),
                ..r.clone()
            };
            assert_eq!(format!("{r:?}"), format!("{canary:?}"), "Debug shows the key");
        }
    }
});
