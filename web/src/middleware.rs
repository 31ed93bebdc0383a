//! What every response carries: security headers, the cache policy, and
//! one access-log line per request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::extract::client_ip;
use crate::metrics::UNMATCHED;
use crate::state::Shared;

// No inline script or style anywhere, so 'self' is all any page needs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every response, `no-store` on everything but the
/// static assets, and one access-log line (never a body or query string).
pub(crate) async fn headers_and_log(
    State(app): State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(200).collect();
    let ip = client_ip(&app.config, req.extensions(), req.headers());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    if app.config.secure_cookies {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if !path.starts_with("/assets/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    if app.config.access_log {
        eprintln!(
            "{ip} {method} {path:?} {} {}ms",
            resp.status().as_u16(),
            start.elapsed().as_millis()
        );
    }
    resp
}

/// Counts every answer by method, route template and status. Added with
/// `Router::layer`, so it runs inside routing and sees [`MatchedPath`].
pub(crate) async fn count_requests(
    State(app): State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    // An `Arc<str>` inside: cloning it allocates nothing.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    app.metrics.request(&method, route, resp.status().as_u16());
    resp
}
