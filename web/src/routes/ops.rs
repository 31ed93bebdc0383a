//! What operators' tools call: `GET /readyz` (the database answers),
//! `GET /metrics` (Prometheus text format) and `GET /openapi.json` (the
//! description of the machine endpoints). `/healthz` lives with
//! `/v1/verify`. See `docs/metrics.md`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::access::{Routes, PUBLIC};
use crate::state::Shared;

/// The OpenAPI 3.1 description, written by hand and checked in: a small,
/// stable surface reads best as the document itself, and the HTTP tests
/// validate every documented answer against it (`tests/ops.rs`).
const OPENAPI: &str = include_str!("../../openapi.json");

/// `/readyz` and `/openapi.json`, always on the main listener.
pub(crate) fn router() -> Routes {
    Routes::new()
        .get("/readyz", PUBLIC, readyz)
        .get("/openapi.json", PUBLIC, openapi)
}

/// `/metrics`, on the main listener or on its own (`Config::metrics_listen`).
pub(crate) fn metrics_router() -> Routes {
    Routes::new().get("/metrics", PUBLIC, metrics)
}

async fn readyz(State(app): State<Shared>) -> Response {
    match app.readiness.check(&app.pool).await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "reason": why.reason,
                "message": why.message,
            })),
        )
            .into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn metrics(State(app): State<Shared>) -> Response {
    match app.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => {
            eprintln!("keygen serve: cannot render metrics: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
