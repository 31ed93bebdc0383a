//! # heratio-keys-web
//!
//! The web administration interface and the HTTP verify endpoint of
//! heratio-keys, run by `keygen serve`. Server-rendered pages (maud) on
//! axum, Bootstrap 5 embedded in the binary, no JavaScript beyond Bootstrap's
//! bundle and one small file for the copy button.
//!
//! Everything that decides an outcome stays in `heratio-keys-core`: pages
//! call the [`KeyStore`](heratio_keys_core::KeyStore) with an
//! [`Actor`](heratio_keys_core::Actor) of source `web` (admin name and client
//! IP), so every change lands in the audit log in its own transaction;
//! admin accounts are the core's `admin_user` table; `/v1/verify` calls the
//! same [`Validator`](heratio_keys_core::Validator) as the PHP extension and
//! answers with the core's view of the result. This crate owns only what a
//! web server adds: password hashing, login sessions (in memory, see
//! `docs/web.md`), pages.
//!
//! Layout: `routes/` holds one module per resource, each with its own
//! router; everything at this level is shared by them (state, errors,
//! extractors, sessions, views, parameter parsing) or runs the server.

mod access;
mod accounts;
mod backend;
mod blocking;
mod config;
mod error;
mod export;
mod extract;
mod maintenance;
mod metrics;
mod middleware;
mod params;
mod password;
mod rate;
mod readiness;
mod routes;
mod server;
mod session;
mod source;
mod state;
mod views;

pub use access::{Access, RouteInfo};
pub use accounts::{create_admin, create_admin_with_role, AdminCreated};
pub use config::{parse_trusted, Config, DEFAULT_LISTEN};
pub use error::Error;
/// The network type of [`Config::verify_trusted`].
pub use ipnet::IpNet;
pub use password::{peak_password_checks, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
pub use routes::route_table;
pub use server::{serve, serve_listener, serve_listeners};
