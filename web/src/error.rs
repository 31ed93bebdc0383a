//! Errors. [`Error`] crosses the crate boundary (starting the server,
//! managing accounts) as a core [`ErrorKind`] plus a message, so the CLI maps
//! it to exit codes exactly as it maps core errors. [`AppError`] is what a
//! handler returns; it becomes an HTML error page, or a JSON error on the
//! API, and converts from the core's and the store pool's errors so `?`
//! works in every handler.

use std::fmt;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use heratio_keys_core::{AdminRole, ErrorKind};
use serde_json::json;

use crate::blocking::PoolError;
use crate::views;

/// An error starting or running the server, or managing admin accounts:
/// the core's own error type, so callers map it to exit codes exactly as
/// they map core errors (`Conflict` also means "cannot listen on that
/// address").
pub use heratio_keys_core::Error;

/// What a page handler answers.
pub(crate) type Page = Result<Response, AppError>;

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum AppError {
    /// The store refused or failed; the page says what, in its words.
    Core(heratio_keys_core::Error),
    NotFound,
    /// The form's CSRF token is missing or not this session's.
    Csrf,
    /// The admin's role does not allow the route (`needed` is `None` for
    /// a route missing from the route table: nobody may use it).
    Forbidden {
        needed: Option<AdminRole>,
        role: AdminRole,
    },
    Internal,
    /// Too much of something is running (exports); try again shortly.
    Busy(String),
    /// A refused API request: `{"error": …}`. The message must never quote
    /// the request (it may carry a key).
    Api(StatusCode, String),
}

impl AppError {
    pub(crate) fn api(status: StatusCode, message: impl Into<String>) -> Self {
        AppError::Api(status, message.into())
    }

    /// A request the page cannot serve as asked (a 400 page saying why).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        AppError::Core(heratio_keys_core::Error::new(
            ErrorKind::InvalidInput,
            message.into(),
        ))
    }
}

impl From<heratio_keys_core::Error> for AppError {
    fn from(e: heratio_keys_core::Error) -> Self {
        AppError::Core(e)
    }
}

impl From<PoolError> for AppError {
    fn from(_: PoolError) -> Self {
        AppError::Internal
    }
}

/// For the server log.
impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Core(e) => f.write_str(e.message()),
            AppError::NotFound => f.write_str("not found"),
            AppError::Csrf => f.write_str("CSRF token refused"),
            AppError::Forbidden { needed, role } => {
                write!(f, "role {role} refused (route needs {needed:?})")
            }
            AppError::Internal => f.write_str("store thread failed"),
            AppError::Busy(message) => f.write_str(message),
            AppError::Api(status, message) => write!(f, "{status}: {message}"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            AppError::Api(status, message) => {
                return (status, Json(json!({ "error": message }))).into_response();
            }
            AppError::Busy(message) => {
                let status = StatusCode::SERVICE_UNAVAILABLE;
                let page = views::error_page(status, "Busy", &message).into_string();
                return (status, [(header::RETRY_AFTER, "5")], Html(page)).into_response();
            }
            AppError::Core(e) => {
                let (status, title) = match e.kind() {
                    ErrorKind::NotFound => (StatusCode::NOT_FOUND, "Not found"),
                    ErrorKind::Conflict => (StatusCode::CONFLICT, "Not possible"),
                    ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "Invalid input"),
                    ErrorKind::Unavailable => {
                        (StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
                    }
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "Database error"),
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
            AppError::Forbidden { needed, role } => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                match needed {
                    Some(needed) => format!(
                        "Your account's role ({role}) cannot do this: it needs the {needed} role. An administrator can change roles on the Accounts page."
                    ),
                    None => "This page is not open to any role.".to_owned(),
                },
            ),
            AppError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "Something went wrong; the server log may say more.".to_owned(),
            ),
        };
        (
            status,
            Html(views::error_page(status, title, &message).into_string()),
        )
            .into_response()
    }
}
