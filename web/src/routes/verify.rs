//! `POST /v1/verify` (key verification for services that cannot link the
//! library) and `GET /healthz`.
//!
//! The request body is read as bytes under a size limit and parsed here, so
//! every malformed request gets a small JSON error with a 4xx status. The
//! key is never logged: the access log has method, path and status only.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use heratio_keys_core::model::MAX_SCOPES;
use heratio_keys_core::{Kind, Request, Status};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::{ClientIp, Shared};

/// The endpoint recorded in `usage_log` unless the caller names one.
const VERIFY_ENDPOINT: &str = "/v1/verify";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    key: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    /// The end user's IP as seen by the calling service (recorded as given).
    #[serde(default)]
    ip: Option<String>,
    /// The endpoint the end user called (recorded as given).
    #[serde(default)]
    endpoint: Option<String>,
}

#[derive(Debug, Serialize)]
struct VerifyResponse {
    valid: bool,
    status: &'static str,
    client_id: Option<i64>,
    key_id: Option<i64>,
    name: Option<String>,
    scopes: Vec<String>,
    message: String,
}

fn bad_request(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(crate) async fn verify(
    State(app): State<Shared>,
    ClientIp(peer_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return bad_request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        );
    }
    let req: VerifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        // serde's own messages can quote values (the key): never echo them.
        Err(e) => {
            let what = match e.classify() {
                serde_json::error::Category::Syntax => "malformed JSON",
                serde_json::error::Category::Eof => "truncated JSON",
                _ => "wrong or missing fields",
            };
            return bad_request(
                StatusCode::BAD_REQUEST,
                &format!(
                    "invalid request body ({what}): expected {{\"key\": string, \"kind\": \"api\"|\"ai\", \"scopes\": [string]}}"
                ),
            );
        }
    };
    let kind = match req.kind.as_deref() {
        None | Some("api") => Kind::ApiKey,
        Some("ai") => Kind::AiToken,
        Some(_) => {
            return bad_request(
                StatusCode::BAD_REQUEST,
                "\"kind\" must be \"api\" or \"ai\"",
            )
        }
    };
    if req.scopes.len() > MAX_SCOPES {
        return bad_request(
            StatusCode::BAD_REQUEST,
            &format!("at most {MAX_SCOPES} scopes may be required"),
        );
    }
    let ip = req.ip.filter(|s| !s.trim().is_empty()).unwrap_or(peer_ip);
    let endpoint = req
        .endpoint
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| VERIFY_ENDPOINT.to_owned());
    let validator = std::sync::Arc::clone(&app.validator);
    let key = req.key;
    let scopes = req.scopes;
    let answer = app
        .pool
        .run(move || {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let v = validator.validate(
                &Request::new(kind, key.as_bytes())
                    .scopes(&scopes)
                    .ip(Some(&ip))
                    .endpoint(Some(&endpoint)),
            );
            drop(key);
            v
        })
        .await;
    let v = match answer {
        Ok(v) => v,
        Err(_) => {
            return bad_request(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    if let Some(e) = &v.error {
        eprintln!("keygen serve: verify: store unavailable: {}", e.message());
    }
    let cred = v.credential.as_deref();
    let body = VerifyResponse {
        valid: v.is_valid(),
        status: v.status.name(),
        client_id: cred.map(|c| c.client_id),
        key_id: cred.map(|c| c.id),
        name: cred.map(|c| c.name.clone()),
        scopes: cred.map_or_else(Vec::new, |c| c.scopes.as_slice().to_vec()),
        message: v.message(),
    };
    let status =
        StatusCode::from_u16(v.status.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, Json(body)).into_response();
    if matches!(
        v.status,
        Status::Malformed
            | Status::WrongKind
            | Status::NotFound
            | Status::Revoked
            | Status::Expired
            | Status::ClientInactive
    ) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"heratio-keys\""),
        );
    }
    resp
}

/// Liveness: `{"status":"ok"}` and nothing else (no version, no database).
pub(crate) async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}
