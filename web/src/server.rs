//! Running the server: open the database, start a runtime, serve until told
//! to stop, then flush what `/v1/verify` queued.

use std::future::{Future, IntoFuture};
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
    let listener = bind(config.listen)?;
    let metrics = metrics_listener(config)?;
    run(config, listener, metrics, None::<std::future::Pending<()>>)
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    std::net::TcpListener::bind(addr)
        .map_err(|e| Error::new(ErrorKind::Conflict, format!("cannot listen on {addr}: {e}")))
}

/// The listener of `/metrics` when it has its own address.
fn metrics_listener(config: &Config) -> Result<Option<std::net::TcpListener>, Error> {
    match config.metrics_listen {
        Some(addr) if config.metrics => bind(addr).map(Some),
        _ => Ok(None),
    }
}

/// Runs the server on an already bound listener until `shutdown` completes
/// (tests bind port 0 and pass the listener). `/metrics` gets its own
/// listener if `config.metrics_listen` says so.
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
    let metrics = metrics_listener(config)?;
    run(config, listener, metrics, Some(shutdown))
}

/// As [`serve_listener`], with `/metrics` on `metrics` (already bound)
/// instead of on `listener`, unless `config.metrics` is off.
///
/// # Errors
///
/// As [`serve`].
pub fn serve_listeners<F>(
    config: &Config,
    listener: std::net::TcpListener,
    metrics: std::net::TcpListener,
    shutdown: F,
) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut config = config.clone();
    config.metrics_listen = Some(metrics.local_addr().map_err(socket_error)?);
    let metrics = config.metrics.then_some(metrics);
    run(&config, listener, metrics, Some(shutdown))
}

fn socket_error(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Internal, format!("cannot configure socket: {e}"))
}

/// A std listener made ready for tokio, and the address it listens on.
fn to_tokio(
    listener: std::net::TcpListener,
    configured: SocketAddr,
) -> Result<(tokio::net::TcpListener, String), Error> {
    listener.set_nonblocking(true).map_err(socket_error)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(socket_error)?;
    let local = listener
        .local_addr()
        .map_or_else(|_| configured.to_string(), |a| a.to_string());
    Ok((listener, local))
}

/// Runs until `shutdown` completes, or with `None` until SIGINT/SIGTERM.
fn run<F>(
    config: &Config,
    listener: std::net::TcpListener,
    metrics: Option<std::net::TcpListener>,
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
        let (listener, local) = to_tokio(listener, config.listen)?;
        eprintln!("keygen serve: listening on http://{local}/ (database {dsn}; log in at /login)");
        if admin_count == 0 {
            eprintln!(
                "keygen serve: warning: no admin account yet: create one with `keygen admin:create USER`"
            );
        }
        // One shutdown signal, seen by both servers.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(());
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
            // Also ends if the sender is gone.
            let _ = rx.changed().await;
        };
        let server_error = |e: std::io::Error| {
            Error::new(ErrorKind::Internal, format!("server error: {e}"))
        };
        let metrics_server = match metrics {
            Some(metrics) => {
                let (metrics, local) =
                    to_tokio(metrics, config.metrics_listen.unwrap_or(config.listen))?;
                eprintln!("keygen serve: metrics on http://{local}/metrics");
                let router = routes::metrics_only(std::sync::Arc::clone(&app));
                Some(tokio::spawn(
                    axum::serve(
                        metrics,
                        router.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
                ))
            }
            None => None,
        };
        let main = axum::serve(
            listener,
            routes::router(app).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopped(stop_rx))
        .await
        .map_err(server_error);
        if let Some(task) = metrics_server {
            match task.await {
                Ok(result) => result.map_err(server_error)?,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!("metrics server failed: {e}"),
                    ))
                }
            }
        }
        main
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
