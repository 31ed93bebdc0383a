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
use crate::middleware::{count_requests, headers_and_log};
use crate::state::Shared;

mod admins;
mod assets;
mod audit;
mod clients;
mod credentials;
mod dashboard;
mod login;
mod ops;
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

/// Every route, as [`route_table`] lists them.
pub(crate) fn all() -> Routes {
    pages()
        .merge(verify::router())
        .merge(assets::router())
        .merge(ops::router())
        .merge(ops::metrics_router())
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
    let mut site = Router::new()
        .merge(pages)
        .merge(api)
        .merge(assets::router().into_parts().0)
        .merge(ops::router().into_parts().0);
    // Off (`--no-metrics`) or moved (`--metrics-listen`): a 404 here.
    if app.config.metrics && app.config.metrics_listen.is_none() {
        site = site.merge(ops::metrics_router().into_parts().0);
    }
    finish(site, app)
}

/// `/metrics` alone, for its own listener (`Config::metrics_listen`).
pub(crate) fn metrics_only(app: Shared) -> Router {
    finish(ops::metrics_router().into_parts().0, app)
}

/// The 404 fallback, the request counter (inside routing, where the
/// matched route template is known) and the headers and access log.
fn finish(routes: Router<Shared>, app: Shared) -> Router {
    routes
        .fallback(not_found)
        .layer(from_fn_with_state(Arc::clone(&app), count_requests))
        .layer(from_fn_with_state(Arc::clone(&app), headers_and_log))
        .with_state(app)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// Every route of the site with who may use it, in the order they were
/// added: the same table the router is built from.
#[must_use]
pub fn route_table() -> Vec<crate::access::RouteInfo> {
    all().into_parts().1
}
