//! `POST /v1/verify` (key verification for services that cannot link the
//! library) and `GET /healthz`.
//!
//! A valid answer is the core's whole view; any other says only what
//! happened. Each source has a token bucket (`Config::verify_rate`), and
//! only trusted callers (`Config::verify_trusted`) may name the end user's
//! address and endpoint for the usage log.
//!
//! The request body is read as bytes under a size limit and parsed here, so
//! every malformed request gets a small JSON error with a 4xx status. Kinds
//! and required scopes are checked by the core's rules. The key is never
//! logged or echoed: error messages never quote the request.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use heratio_keys_core::{Request, ValidationView, VerifyRequest};
use serde::Serialize;
use serde_json::json;

use crate::access::{Routes, PUBLIC};
use crate::error::AppError;
use crate::extract::ClientIp;
use crate::source;
use crate::state::Shared;

/// The endpoint recorded in `usage_log` unless the caller names one.
const VERIFY_ENDPOINT: &str = "/v1/verify";

pub(crate) fn router() -> Routes {
    Routes::new()
        .post("/v1/verify", PUBLIC, verify)
        .get("/healthz", PUBLIC, healthz)
}

fn bad_request(message: impl Into<String>) -> AppError {
    AppError::api(StatusCode::BAD_REQUEST, message)
}

/// The body, if it is JSON, parsed and checked by the core's rules.
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<VerifyRequest, AppError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(AppError::api(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        ));
    }
    VerifyRequest::from_json(body).map_err(bad_request)
}

/// The answer when the credential is not accepted: what happened, and
/// nothing about the credential (no ids, name, scopes or expiry: a revoked
/// or expired key must not tell whoever holds it whose it was).
#[derive(Debug, Serialize)]
struct Refusal {
    valid: bool,
    status: &'static str,
    code: u8,
    http_status: u16,
    message: String,
}

impl From<ValidationView> for Refusal {
    fn from(v: ValidationView) -> Self {
        Refusal {
            valid: false,
            status: v.status,
            code: v.code,
            http_status: v.http_status,
            message: v.message,
        }
    }
}

/// 429 for a source over its rate, before anything else is done.
fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0);
    let mut resp = AppError::api(
        StatusCode::TOO_MANY_REQUESTS,
        "too many verification requests from this address",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{secs:.0}")) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn verify(
    State(app): State<Shared>,
    client: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    if let Err(wait) = app.verify_buckets.take(client.source()) {
        app.metrics.verify_throttled.inc();
        return Ok(too_many(wait));
    }
    let req = parse(&headers, &body)?;
    let kind = req.kind;
    // What a caller says about its end user is recorded only when the
    // operator trusts that caller; anyone else could write any address
    // into the usage log.
    let trusted = source::trusted(client.0, &app.config.verify_trusted);
    let given = |field: Option<String>| field.filter(|s| trusted && !s.trim().is_empty());
    let ip = given(req.ip).unwrap_or_else(|| client.text());
    let endpoint = given(req.endpoint).unwrap_or_else(|| VERIFY_ENDPOINT.to_owned());
    let validator = Arc::clone(&app.validator);
    let key = req.key;
    let scopes = req.scopes;
    // A cache miss queries the store, which blocks: run on the store threads.
    let v = app
        .pool
        .run(move || {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            validator.validate(
                &Request::new(kind, key.as_bytes())
                    .scopes(&scopes)
                    .ip(Some(&ip))
                    .endpoint(Some(&endpoint)),
            )
        })
        .await
        .map_err(|_| AppError::api(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    if let Some(e) = &v.error {
        eprintln!("keygen serve: verify: store unavailable: {}", e.message());
    }
    app.metrics.validation(kind, v.status);
    let view = ValidationView::from(&v);
    let status =
        StatusCode::from_u16(view.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = view.retry_after;
    let mut resp = if view.valid {
        (status, Json(view)).into_response()
    } else {
        (status, Json(Refusal::from(view))).into_response()
    };
    // `rate_limited`: when the key's hourly budget renews, as HTTP says it.
    if let Some(secs) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    // RFC 9110: a 401 carries the scheme the client should use.
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"heratio-keys\""),
        );
    }
    Ok(resp)
}

/// Liveness: `{"status":"ok"}` and nothing else (no version, no database).
async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}
