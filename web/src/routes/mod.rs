//! The site, one module per resource. Each module owns its paths and
//! returns them as a `router()`; this file merges them, puts each group
//! under its body limit, and wraps everything in the response headers and
//! access log. Resources use the shared modules (`state`, `error`,
//! `extract`, `session`, `views`, `params`), never each other.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;

use crate::access::Routes;
use crate::error::AppError;
use crate::middleware::headers_and_log;
use crate::state::Shared;

mod admins;
mod assets;
mod audit;
mod clients;
mod credentials;
mod dashboard;
mod login;
mod usage;
mod verify;

/// The pages and their forms (the form body limit applies).
fn pages() -> Routes {
    Routes::new()
        .merge(login::router())
        .merge(dashboard::router())
        .merge(clients::router())
        .merge(credentials::router())
        .merge(usage::router())
        .merge(audit::router())
        .merge(admins::router())
}

/// Every route, as [`crate::access::route_table`] lists them.
pub(crate) fn all() -> Routes {
    pages().merge(verify::router()).merge(assets::router())
}

/// The whole site.
pub(crate) fn router(app: Shared) -> Router {
    let pages = pages()
        .into_parts()
        .0
        .layer(DefaultBodyLimit::max(app.config.form_body_limit));
    let api = verify::router()
        .into_parts()
        .0
        .layer(DefaultBodyLimit::max(app.config.verify_body_limit));
    Router::new()
        .merge(pages)
        .merge(api)
        .merge(assets::router().into_parts().0)
        .fallback(not_found)
        .layer(from_fn_with_state(Arc::clone(&app), headers_and_log))
        .with_state(app)
}

async fn not_found() -> AppError {
    AppError::NotFound
}
