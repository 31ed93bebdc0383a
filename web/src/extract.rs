//! What handlers pull out of a request: the client's IP ([`ClientIp`]), the
//! logged-in administrator ([`Admin`], or a redirect to `/login`), and the
//! bare CSRF form ([`CsrfForm`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use heratio_keys_core::{Actor, AdminRole, Source};
use maud::Markup;
use serde::Deserialize;

use crate::access::Needed;
use crate::config::Config;
use crate::error::AppError;
use crate::session::cookie::{session_cookie, set_cookie, token_eq};
use crate::source::SourceAddr;
use crate::state::Shared;
use crate::views::{self, Ctx, Nav};

/// The client's address: the peer, or with `trust_proxy` and a loopback
/// peer, the last `X-Forwarded-For` entry (the one the local proxy added;
/// earlier entries are whatever the client claimed).
pub(crate) fn client_addr(
    config: &Config,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer_ip = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    if config.trust_proxy && peer_ip.is_some_and(|ip| ip.is_loopback()) {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|s| !s.is_empty())
            .and_then(|s| s.parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer_ip
}

/// [`client_addr`] as text for logs (`unknown` without one).
pub(crate) fn client_ip(config: &Config, extensions: &Extensions, headers: &HeaderMap) -> String {
    ip_text(client_addr(config, extensions, headers))
}

fn ip_text(addr: Option<IpAddr>) -> String {
    addr.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The client's address (see [`client_addr`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// As text for logs (`unknown` without one).
    pub(crate) fn text(self) -> String {
        ip_text(self.0)
    }

    /// As a throttling source.
    pub(crate) fn source(self) -> SourceAddr {
        SourceAddr::of(self.0)
    }
}

impl FromRequestParts<Shared> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_addr(
            &app.config,
            &parts.extensions,
            &parts.headers,
        )))
    }
}

/// A logged-in administrator whose role allows the route. Without a live
/// session (or with a disabled or changed account) the extractor answers
/// with a redirect to `/login`; with a role too weak for the route
/// ([`Needed`], put there by the route table) with a 403 page. So no
/// handler taking one can run for a stranger or for a role the route
/// refuses, and the check comes before the form is even read.
#[derive(Debug)]
pub(crate) struct Admin {
    pub user: String,
    pub role: AdminRole,
    pub csrf: String,
    pub ip: String,
    pub session_id: String,
}

impl FromRequestParts<Shared> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Response> {
        let Some(session) = app.sessions.current(&app.config, &parts.headers) else {
            return Err(Redirect::to("/login").into_response());
        };
        // The account may have changed in another process (the CLI) since
        // the login: one indexed query per request, which an admin
        // interface can afford, ends the session at once when it did. A
        // role change or a disabled account moves `updated_at` too; the
        // `active` test is a second line should a store ever not.
        let id = session.account.id;
        let now = app
            .store(move |s| s.get_admin(id))
            .await
            .map_err(IntoResponse::into_response)?;
        let account = now.filter(|a| {
            a.active && a.updated_at == session.account.updated_at && a.username == session.user
        });
        let Some(account) = account else {
            app.sessions.remove(&session.id);
            eprintln!(
                "keygen serve: session of {:?} ended: the account was changed, disabled or removed",
                session.user
            );
            let mut resp = Redirect::to("/login").into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&app.config, session_cookie(&app.config), "", 0),
            );
            return Err(resp);
        };
        // No `Needed`: a route added outside the route table. Nobody may
        // use it until it is listed there with its role.
        let needed = parts.extensions.get::<Needed>().map(|n| n.0);
        if !needed.is_some_and(|n| account.role.allows(n)) {
            let ip = client_ip(&app.config, &parts.extensions, &parts.headers);
            eprintln!(
                "keygen serve: {:?} ({}) from {ip} refused {} {}",
                session.user,
                account.role,
                parts.method,
                parts.uri.path()
            );
            return Err(AppError::Forbidden {
                needed,
                role: account.role,
            }
            .into_response());
        }
        Ok(Admin {
            user: session.user,
            role: account.role,
            csrf: session.csrf,
            ip: client_ip(&app.config, &parts.extensions, &parts.headers),
            session_id: session.id,
        })
    }
}

impl Admin {
    /// The audit-log actor: this admin, from the web, at this IP.
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            name: self.user.clone(),
            source: Source::Web,
            ip: Some(self.ip.clone()),
        }
    }

    /// Whether this admin's role includes `role`'s rights (pages show
    /// forms only to those who may send them).
    pub(crate) fn can(&self, role: AdminRole) -> bool {
        self.role.allows(role)
    }

    /// Checks a form's CSRF token against the session's.
    pub(crate) fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        if token_eq(token, &self.csrf) {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }

    /// Queues a message for the next page this admin sees.
    pub(crate) fn flash(&self, app: &Shared, level: &'static str, text: String) {
        app.sessions.push_flash(&self.session_id, level, text);
    }

    /// A full page for this admin, with the messages queued for them.
    pub(crate) fn page(&self, app: &Shared, nav: Nav, title: &str, body: Markup) -> Response {
        let flash = app.sessions.take_flash(&self.session_id);
        let ctx = Ctx {
            user: &self.user,
            role: self.role,
            csrf: &self.csrf,
            flash: &flash,
            nav,
        };
        Html(views::page(&ctx, title, body).into_string()).into_response()
    }
}

/// A form that carries nothing but its CSRF token (confirmations, logout).
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}
