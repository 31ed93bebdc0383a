//! Running the server: open the database, start a runtime, serve until told
//! to stop, then flush what `/v1/verify` queued.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use heratio_keys_core::ErrorKind;

use crate::backend;
use crate::config::Config;
use crate::error::Error;
use crate::maintenance;
use crate::routes;
use crate::state::App;

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

/// Runs the server on `config.listen` until SIGINT or SIGTERM.
///
/// # Errors
///
/// Store errors (unreachable, schema missing or outdated), or `Conflict`
/// when the address cannot be bound.
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
    // Blocking store calls happen here, before the runtime exists: the
    // core's MySQL store refuses to run inside one.
    let (backends, dsn) = backend::open(&config.dsn)?;
    let admin_count = backends.store.admin_count()?;
    // Keep the store and validator alive outside the runtime: the core's
    // MySQL store owns a runtime of its own, which must not be dropped from
    // inside this one.
    let validator = Arc::clone(&backends.validator);
    let store = Arc::clone(&backends.store);
    let rt = runtime()?;
    let result = rt.block_on(async move {
        // Installed before the first request, so a signal during start-up is
        // not lost.
        let shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = match shutdown {
            Some(f) => Box::pin(f),
            None => Box::pin(shutdown_signals()?),
        };
        let app = App::new(config.clone(), backends)?;
        // Zero would make the timer spin (tokio refuses it): taken as off.
        if let Some(every) = config.maintenance_interval.filter(|d| !d.is_zero()) {
            maintenance::start(&app, every);
        }
        let socket_error = |e: std::io::Error| {
            Error::new(ErrorKind::Internal, format!("cannot configure socket: {e}"))
        };
        listener.set_nonblocking(true).map_err(socket_error)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(socket_error)?;
        let local = listener
            .local_addr()
            .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
        eprintln!("keygen serve: listening on http://{local}/ (database {dsn}; log in at /login)");
        if admin_count == 0 {
            eprintln!(
                "keygen serve: warning: no admin account yet: create one with `keygen admin:create USER`"
            );
        }
        axum::serve(
            listener,
            routes::router(app).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("server error: {e}")))
    });
    drop(rt);
    // Usage records of /v1/verify still queued would otherwise be lost.
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
