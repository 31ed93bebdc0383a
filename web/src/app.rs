//! Shared state, the router, security headers and error pages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use heratio_keys_core::{ErrorKind, KeyStore, Validator};

use crate::admin::AdminDb;
use crate::auth::{Sessions, Throttle};
use crate::pool::Blocking;
use crate::{assets, auth, pages, verify, views, Config, Error};

/// The store and the validator, opened before the runtime starts.
#[derive(Debug)]
pub(crate) struct Backends {
    pub store: Arc<dyn KeyStore>,
    pub validator: Arc<Validator>,
}

/// Everything a handler can reach.
#[derive(Debug)]
pub(crate) struct App {
    pub config: Config,
    pub store: Arc<dyn KeyStore>,
    pub validator: Arc<Validator>,
    pub admins: AdminDb,
    pub pool: Blocking,
    pub sessions: Sessions,
    pub throttle: Throttle,
    /// Verified against when a login names an unknown user (equal timing).
    pub dummy_hash: String,
}

pub(crate) type Shared = Arc<App>;

impl App {
    pub(crate) fn new(
        config: Config,
        backends: Backends,
        admins: AdminDb,
    ) -> Result<Shared, Error> {
        let pool = Blocking::new(config.store_threads).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start store threads: {e}"),
            )
        })?;
        Ok(Arc::new(App {
            config,
            store: backends.store,
            validator: backends.validator,
            admins,
            pool,
            sessions: Sessions::default(),
            throttle: Throttle::default(),
            dummy_hash: crate::admin::dummy_hash(),
        }))
    }

    /// Runs a blocking store call on the store threads.
    pub(crate) async fn store<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn KeyStore) -> heratio_keys_core::Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        self.pool
            .run(move || f(store.as_ref()))
            .await
            .map_err(|_| AppError::Internal)?
            .map_err(AppError::Core)
    }

    /// The client's address: the peer, or with `trust_proxy` and a loopback
    /// peer, the last `X-Forwarded-For` entry (the one the proxy added).
    pub(crate) fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
        let peer_ip = peer.map(|p| p.ip());
        if self.config.trust_proxy && peer_ip.is_some_and(|ip| ip.is_loopback()) {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|s| !s.is_empty())
                .and_then(|s| s.parse::<std::net::IpAddr>().ok());
            if let Some(ip) = forwarded {
                return ip.to_string();
            }
        }
        peer_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    pub(crate) fn ip_of(&self, parts_ext: &axum::http::Extensions, headers: &HeaderMap) -> String {
        let peer = parts_ext
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| *a);
        self.client_ip(peer, headers)
    }
}

/// The client's IP (see [`App::client_ip`]) as an extractor.
#[derive(Debug)]
pub(crate) struct ClientIp(pub String);

impl axum::extract::FromRequestParts<Shared> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Shared,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(app.ip_of(&parts.extensions, &parts.headers)))
    }
}

/// An error a page handler can return; rendered as an error page.
#[derive(Debug)]
pub(crate) enum AppError {
    Core(heratio_keys_core::Error),
    NotFound,
    Csrf,
    Internal,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            AppError::Core(e) => {
                let status = match e.kind() {
                    ErrorKind::NotFound => StatusCode::NOT_FOUND,
                    ErrorKind::Conflict => StatusCode::CONFLICT,
                    ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
                    ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let title = match e.kind() {
                    ErrorKind::NotFound => "Not found",
                    ErrorKind::Conflict => "Not possible",
                    ErrorKind::InvalidInput => "Invalid input",
                    ErrorKind::Unavailable => "Database unavailable",
                    _ => "Database error",
                };
                (status, title, e.message().to_owned())
            }
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page.".to_owned(),
            ),
            AppError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form was not accepted (missing or stale security token). Go back, reload the page and try again.".to_owned(),
            ),
            AppError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "Something went wrong; the server log may say more.".to_owned(),
            ),
        };
        (
            status,
            axum::response::Html(views::error_page(status, title, &message).into_string()),
        )
            .into_response()
    }
}

async fn not_found() -> AppError {
    AppError::NotFound
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every response, `no-store` on everything but the
/// static assets, and one access-log line (never a body or query string).
async fn headers_and_log(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(200).collect();
    let ip = app.ip_of(req.extensions(), req.headers());
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

pub(crate) fn router(app: Shared) -> Router {
    let pages = Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(auth::login_page).post(auth::login_submit))
        .route("/logout", post(auth::logout))
        .route("/clients", get(pages::clients).post(pages::client_create))
        .route("/clients/{id}", get(pages::client_view))
        .route(
            "/clients/{id}/deactivate",
            get(pages::deactivate_confirm).post(pages::deactivate),
        )
        .route("/clients/{id}/generate/{kind}", post(pages::generate))
        .route(
            "/credentials/{kind}/{id}/revoke",
            get(pages::revoke_confirm).post(pages::revoke),
        )
        .route("/usage", get(pages::usage))
        .route("/audit", get(pages::audit))
        .layer(DefaultBodyLimit::max(app.config.form_body_limit));
    let api = Router::new()
        .route("/v1/verify", post(verify::verify))
        .route("/healthz", get(verify::healthz))
        .layer(DefaultBodyLimit::max(app.config.verify_body_limit));
    Router::new()
        .merge(pages)
        .merge(api)
        .route("/assets/{file}", get(assets::serve))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            headers_and_log,
        ))
        .with_state(app)
}
