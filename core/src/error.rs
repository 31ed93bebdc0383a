//! The one error type of the crate.
//!
//! Storage back ends keep their own error types private: every driver error is
//! translated here into an [`ErrorKind`] plus a message that names what failed
//! (host and port, file path, table) and never carries a key, a digest or a
//! password.

use std::fmt;

/// What went wrong, in a form callers can branch on.
///
/// New kinds may be added in minor releases, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The DSN could not be parsed or names an unsupported scheme.
    InvalidDsn,
    /// The store could not be reached (connection refused, timeout, file not
    /// openable). Retrying later may succeed.
    Unavailable,
    /// The store answered with an error other than an outage.
    Store,
    /// The schema is missing or older than this library: run `keygen install`.
    SchemaOutdated,
    /// The schema is newer than this library understands.
    SchemaTooNew,
    /// A client, key or token with that id does not exist.
    NotFound,
    /// The operation conflicts with the current state (e.g. generating a key
    /// for a deactivated client).
    Conflict,
    /// An argument is out of its documented range (bad scope, empty name, …).
    InvalidInput,
    /// A bug or an impossible state; the message says where.
    Internal,
}

impl ErrorKind {
    /// A stable, lowercase, snake_case name for logs and JSON output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidDsn => "invalid_dsn",
            Self::Unavailable => "unavailable",
            Self::Store => "store",
            Self::SchemaOutdated => "schema_outdated",
            Self::SchemaTooNew => "schema_too_new",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::InvalidInput => "invalid_input",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from this crate: a kind to branch on and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind`. For the crates built on this one (the web server,
    /// the CLI) to report their own failures in the same terms, so callers
    /// map every error to exit codes or statuses one way. The message must
    /// never contain a key, a digest or a password.
    #[must_use]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The kind of failure.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the kind prefix.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
