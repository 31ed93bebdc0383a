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
//! IP), so every change lands in the audit log in its own transaction, and
//! `/v1/verify` calls the same [`Validator`](heratio_keys_core::Validator)
//! as the PHP extension.
//!
//! The crate owns two things the core does not: the `admin_user` table
//! (created idempotently at start-up in the keygen database, SQLite or
//! MySQL) and login sessions, which are kept in memory (see `docs/web.md`).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use heratio_keys_core::{store, Dsn, ErrorKind, Options, Validator};

mod admin;
mod app;
mod assets;
mod auth;
mod pages;
mod pool;
mod util;
mod verify;
mod views;

pub use admin::{AdminCreated, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};

/// Server configuration. [`Config::new`] gives the documented defaults.
#[derive(Clone)]
pub struct Config {
    /// DSN of the keygen database (may contain a password: never printed).
    pub dsn: String,
    /// Address to listen on (`127.0.0.1:8080` by default).
    pub listen: SocketAddr,
    /// Mark cookies `Secure` and name the session cookie `__Host-…`: set
    /// this when browsers reach the server over HTTPS (behind a TLS proxy).
    pub secure_cookies: bool,
    /// Take the client IP from the last `X-Forwarded-For` entry when the
    /// connection comes from a loopback address (a local reverse proxy).
    pub trust_proxy: bool,
    /// A session ends this long after login, whatever happens.
    pub session_lifetime: Duration,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// Failed logins (per user name, and per client IP) before a lock-out.
    pub login_max_failures: u32,
    /// Window in which failed logins are counted.
    pub login_window: Duration,
    /// How long a user name or IP stays locked out.
    pub login_lockout: Duration,
    /// Largest request body accepted by `/v1/verify`.
    pub verify_body_limit: usize,
    /// Largest request body accepted by the admin forms.
    pub form_body_limit: usize,
    /// Threads running blocking store calls.
    pub store_threads: usize,
    /// Write one access-log line per request to standard error (method,
    /// path without query, status, duration; never a body).
    pub access_log: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("dsn", &store::redact(&self.dsn))
            .field("listen", &self.listen)
            .field("secure_cookies", &self.secure_cookies)
            .field("trust_proxy", &self.trust_proxy)
            .field("session_lifetime", &self.session_lifetime)
            .field("session_idle", &self.session_idle)
            .field("login_max_failures", &self.login_max_failures)
            .field("login_window", &self.login_window)
            .field("login_lockout", &self.login_lockout)
            .field("verify_body_limit", &self.verify_body_limit)
            .field("form_body_limit", &self.form_body_limit)
            .field("store_threads", &self.store_threads)
            .field("access_log", &self.access_log)
            .finish()
    }
}

/// Default listening address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Config {
    /// The defaults, for the database `dsn`.
    #[must_use]
    pub fn new(dsn: impl Into<String>) -> Self {
        Config {
            dsn: dsn.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            secure_cookies: false,
            trust_proxy: false,
            session_lifetime: Duration::from_secs(8 * 3600),
            session_idle: Duration::from_secs(30 * 60),
            login_max_failures: 5,
            login_window: Duration::from_secs(15 * 60),
            login_lockout: Duration::from_secs(15 * 60),
            verify_body_limit: 8 * 1024,
            form_body_limit: 64 * 1024,
            store_threads: 8,
            access_log: true,
        }
    }
}

/// An error starting or running the server, or managing admin accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// The kind, in the core's terms (so callers map it to exit codes the
    /// same way): `Conflict` also means "cannot listen on that address".
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message; never contains a password or a key.
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

impl From<heratio_keys_core::Error> for Error {
    fn from(e: heratio_keys_core::Error) -> Self {
        Error::new(e.kind(), e.message())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hk-web")
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start the runtime: {e}"),
            )
        })
}

/// Opens everything the server needs, outside any async runtime (the core's
/// store API is blocking).
fn open_backends(config: &Config) -> Result<(app::Backends, Dsn), Error> {
    let dsn = Dsn::parse(&config.dsn)?;
    let store = store::open(&dsn)?;
    match store.schema_version()? {
        Some(_) => {}
        None => {
            return Err(Error::new(
                ErrorKind::SchemaOutdated,
                format!("no keygen schema in {dsn}: run `keygen install` first"),
            ))
        }
    }
    let validator = Validator::open(&config.dsn, Options::default())?;
    Ok((
        app::Backends {
            store,
            validator: Arc::new(validator),
        },
        dsn,
    ))
}

/// Runs the server on `config.listen` until SIGINT or SIGTERM.
///
/// # Errors
///
/// Store errors (unreachable, schema missing), or `Conflict` when the
/// address cannot be bound.
pub fn serve(config: &Config) -> Result<(), Error> {
    let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
        Error::new(
            ErrorKind::Conflict,
            format!("cannot listen on {}: {e}", config.listen),
        )
    })?;
    run(config, listener, None::<std::future::Pending<()>>)
}

/// Runs the server on an already bound listener until `shutdown` completes
/// (tests bind port 0 and pass the listener).
///
/// # Errors
///
/// As [`serve`].
pub fn serve_listener<F>(
    config: &Config,
    listener: std::net::TcpListener,
    shutdown: F,
) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    run(config, listener, Some(shutdown))
}

/// Runs until `shutdown` completes, or with `None` until SIGINT/SIGTERM.
fn run<F>(
    config: &Config,
    listener: std::net::TcpListener,
    shutdown: Option<F>,
) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (backends, dsn) = open_backends(config)?;
    // Keep the store and validator alive outside the runtime: the core's
    // MySQL store owns a runtime of its own, which must not be dropped from
    // inside this one.
    let validator = Arc::clone(&backends.validator);
    let store = Arc::clone(&backends.store);
    let rt = runtime()?;
    let result = rt.block_on(async move {
        // Signal handlers are installed before the first request is served.
        let shutdown: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match shutdown {
            Some(f) => Box::pin(f),
            None => Box::pin(shutdown_signals()?),
        };
        let admins = admin::AdminDb::open(&dsn)?;
        admins.ensure_schema().await?;
        let admin_count = admins.count().await?;
        let app = app::App::new(config.clone(), backends, admins)?;
        listener.set_nonblocking(true).map_err(|e| {
            Error::new(ErrorKind::Internal, format!("cannot configure socket: {e}"))
        })?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| {
            Error::new(ErrorKind::Internal, format!("cannot configure socket: {e}"))
        })?;
        let local = listener
            .local_addr()
            .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
        eprintln!("keygen serve: listening on http://{local}/ (database {dsn}; log in at /login)");
        if admin_count == 0 {
            eprintln!(
                "keygen serve: warning: no admin account yet: create one with `keygen admin:create USER`"
            );
        }
        let router = app::router(Arc::clone(&app));
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        app.admins.close().await;
        served.map_err(|e| Error::new(ErrorKind::Internal, format!("server error: {e}")))
    });
    drop(rt);
    // Flush the usage records of /v1/verify before returning.
    validator.shutdown();
    drop(validator);
    drop(store);
    result
}

/// Registers SIGINT and SIGTERM handlers now (inside the runtime) and
/// returns a future that completes on either.
fn shutdown_signals() -> Result<impl Future<Output = ()> + Send, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let register = |kind| {
        signal(kind).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot install a signal handler: {e}"),
            )
        })
    };
    let mut int = register(SignalKind::interrupt())?;
    let mut term = register(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        eprintln!("keygen serve: shutting down");
    })
}

/// Creates an admin account (or, with `reset`, sets the password of an
/// existing one). Creates the `admin_user` table if needed.
///
/// # Errors
///
/// `InvalidInput` for a bad user name or password, `Conflict` when the user
/// exists and `reset` is false, `NotFound` when it does not and `reset` is
/// true; store errors.
pub fn create_admin(
    dsn: &str,
    user: &str,
    password: &str,
    reset: bool,
) -> Result<AdminCreated, Error> {
    admin::validate_username(user)?;
    admin::validate_password(password)?;
    let dsn = Dsn::parse(dsn)?;
    let hash = admin::hash_password(password)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start the runtime: {e}"),
            )
        })?;
    rt.block_on(async {
        let admins = admin::AdminDb::open(&dsn)?;
        let result = async {
            admins.ensure_schema().await?;
            admins.create_user(user, &hash, reset).await
        }
        .await;
        admins.close().await;
        result
    })
}
