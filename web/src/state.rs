//! What every handler can reach ([`App`], shared as [`Shared`]), and the one
//! way a handler calls the blocking store.

use std::sync::Arc;

use heratio_keys_core::{ErrorKind, KeyStore, Validator};

use crate::backend::Backends;
use crate::blocking::Blocking;
use crate::config::Config;
use crate::error::{AppError, Error};
use crate::export::Exports;
use crate::metrics::Metrics;
use crate::password::{self, Checks};
use crate::rate::SourceBuckets;
use crate::readiness::Readiness;
use crate::session::{Sessions, Throttle};

/// The server's state.
#[derive(Debug)]
pub(crate) struct App {
    pub config: Config,
    pub store: Arc<dyn KeyStore>,
    pub validator: Arc<Validator>,
    pub pool: Blocking,
    pub sessions: Sessions,
    pub throttle: Throttle,
    /// Bounds the login password checks running at once.
    pub checks: Checks,
    /// `/v1/verify` requests per source.
    pub verify_buckets: SourceBuckets,
    /// Verified against when a login names an unknown user (equal timing).
    pub dummy_hash: String,
    /// Bounds the streamed exports running at once.
    pub exports: Exports,
    /// What `/metrics` reports.
    pub metrics: Metrics,
    /// `/readyz`'s check.
    pub readiness: Readiness,
}

pub(crate) type Shared = Arc<App>;

impl App {
    pub(crate) fn new(config: Config, backends: Backends) -> Result<Shared, Error> {
        let threads_error = |e: std::io::Error| {
            Error::new(ErrorKind::Internal, format!("cannot start threads: {e}"))
        };
        let pool = Blocking::new("store", config.store_threads).map_err(threads_error)?;
        let checks = Checks::new(config.login_concurrency).map_err(threads_error)?;
        let metrics = Metrics::new(Arc::clone(&backends.validator))
            .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot set up metrics: {e}")))?;
        Ok(Arc::new(App {
            readiness: Readiness::new(heratio_keys_core::Dsn::parse(&config.dsn)?),
            checks,
            verify_buckets: SourceBuckets::new(config.verify_rate, config.verify_burst),
            config,
            store: backends.store,
            validator: backends.validator,
            pool,
            sessions: Sessions::default(),
            throttle: Throttle::default(),
            dummy_hash: password::dummy_hash(),
            exports: Exports::default(),
            metrics,
        }))
    }

    /// Runs a blocking store call on the store threads.
    pub(crate) async fn store<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn KeyStore) -> heratio_keys_core::Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        Ok(self.pool.run(move || f(store.as_ref())).await??)
    }
}
