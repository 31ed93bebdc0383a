//! Who may use which route. Every route of the site is added through
//! [`Routes`], which records its method, path and [`Access`] in a table and
//! puts the role it needs on the request ([`Needed`]) for the
//! [`Admin`](crate::extract::Admin) extractor to check. The table is public
//! ([`route_table`](crate::routes::route_table)), so a test can try every route with every role: a route
//! added any other way carries no [`Needed`], and the extractor refuses it to
//! everyone (fail closed), so it cannot be forgotten silently either.

use axum::handler::Handler;
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use heratio_keys_core::AdminRole;

use crate::state::Shared;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No login: the login form, `/v1/verify`, `/healthz`, static assets.
    Public,
    /// A logged-in, enabled account whose role
    /// [`allows`](AdminRole::allows) this one.
    Role(AdminRole),
}

/// One route of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path as the router matches it (`/clients/{id}`).
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
}

/// The role a route needs, put on its requests by [`Routes`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needed(pub AdminRole);

/// A router that records every route it is given, with who may use it.
#[derive(Debug)]
pub(crate) struct Routes {
    router: Router<Shared>,
    table: Vec<RouteInfo>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        access: Access,
        route: MethodRouter<Shared>,
    ) -> Self {
        let route = match access {
            Access::Public => route,
            Access::Role(role) => route.layer(Extension(Needed(role))),
        };
        self.router = self.router.route(path, route);
        self.table.push(RouteInfo {
            method,
            path,
            access,
        });
        self
    }

    /// A `GET` route (axum answers `HEAD` with it).
    pub(crate) fn get<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, Shared>,
        T: 'static,
    {
        self.add("GET", path, access, get(handler))
    }

    /// A `POST` route.
    pub(crate) fn post<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, Shared>,
        T: 'static,
    {
        self.add("POST", path, access, post(handler))
    }

    pub(crate) fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub(crate) fn into_parts(self) -> (Router<Shared>, Vec<RouteInfo>) {
        (self.router, self.table)
    }
}

/// Shorthands for the roles, as route tables read best.
pub(crate) const PUBLIC: Access = Access::Public;
pub(crate) const VIEWER: Access = Access::Role(AdminRole::Viewer);
pub(crate) const OPERATOR: Access = Access::Role(AdminRole::Operator);
pub(crate) const ADMIN: Access = Access::Role(AdminRole::Admin);
