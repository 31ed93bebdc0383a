//! The site, one module per resource. Each module owns its paths and
//! returns them as a `router()`; this file merges them, puts each group
//! under its body limit, and wraps everything in the response headers and
//! access log. Resources use the shared modules (`state`, `error`,
//! `extract`, `session`, `views`, `params`), never each other.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;

use crate::error::AppError;
use crate::middleware::headers_and_log;
use crate::state::Shared;

mod assets;
mod audit;
mod clients;
mod credentials;
mod dashboard;
mod login;
mod usage;
mod verify;

/// The whole site.
pub(crate) fn router(app: Shared) -> Router {
    let pages = Router::new()
        .merge(login::router())
        .merge(dashboard::router())
        .merge(clients::router())
        .merge(credentials::router())
        .merge(usage::router())
        .merge(audit::router())
        .layer(DefaultBodyLimit::max(app.config.form_body_limit));
    let api = verify::router().layer(DefaultBodyLimit::max(app.config.verify_body_limit));
    Router::new()
        .merge(pages)
        .merge(api)
        .merge(assets::router())
        .fallback(not_found)
        .layer(from_fn_with_state(Arc::clone(&app), headers_and_log))
        .with_state(app)
}

async fn not_found() -> AppError {
    AppError::NotFound
}
