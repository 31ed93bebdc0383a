//! The validator: format check, digest, cache, one indexed query on a miss,
//! usage recording; kept correct by the change-feed poller.
//!
//! - [`options`]: tuning knobs and their defaults;
//! - [`answer`]: the request and the answer, with its client-facing message;
//! - `engine`: the per-process threads and connections behind a validator.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::error::{Error, ErrorKind, Result};
use crate::fork;
use crate::format::{self, Kind};
use crate::model;
use crate::shared::ring::UsageRef;
use crate::stats::{bump, Counters, HostStats, Stats};
use crate::status::Status;
use crate::store::{Dsn, SCHEMA_VERSION};
use crate::usage::UsageHealth;

pub mod answer;
mod engine;
mod filler;
mod host;
pub mod options;

pub use answer::{request_text, Request, Validation};
pub use options::{Options, OptionsBuilder};

use engine::{lock, Engine};

/// Validates credentials against a store, behind a cache kept correct by the
/// change feed. Thread-safe; share one per process.
///
/// Background threads and connections belong to the process that created
/// them. After `fork()`, the child's first call starts its own (the parent's
/// are left to the parent), so a validator may be opened before a
/// pre-forking server forks, though opening it lazily in the worker is best.
pub struct Validator {
    dsn: Dsn,
    options: Options,
    counters: Arc<Counters>,
    /// Whether usage writes fail, kept across engines: bindings ask after
    /// every validation, and this answers without loading the engine.
    usage_health: Arc<UsageHealth>,
    engine: ArcSwapOption<Engine>,
    restart: Mutex<()>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("dsn", &self.dsn)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Opens a validator on the store named by `dsn`, checking that it is
    /// reachable and its schema current.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidDsn`]; [`ErrorKind::Unavailable`] when the store
    /// cannot be reached; [`ErrorKind::SchemaOutdated`] when `keygen install`
    /// has not been run; [`ErrorKind::SchemaTooNew`].
    pub fn open(dsn: &str, options: Options) -> Result<Validator> {
        Self::open_dsn(&Dsn::parse(dsn)?, options)
    }

    /// As [`Validator::open`], with a DSN parsed already.
    ///
    /// # Errors
    ///
    /// As [`Validator::open`], except [`ErrorKind::InvalidDsn`].
    pub fn open_dsn(dsn: &Dsn, options: Options) -> Result<Validator> {
        let dsn = dsn.clone();
        fork::register();
        let counters = Arc::new(Counters::default());
        let usage_health = Arc::new(UsageHealth::default());
        let engine = Engine::start(&dsn, &options, &counters, &usage_health)?;
        let refused = match engine.store.schema_version() {
            Ok(Some(v)) if v == SCHEMA_VERSION => None,
            Ok(Some(v)) if v > SCHEMA_VERSION => Some(Error::new(
                ErrorKind::SchemaTooNew,
                format!("{dsn}: schema version {v} is newer than this library ({SCHEMA_VERSION})"),
            )),
            Ok(_) => Some(Error::new(
                ErrorKind::SchemaOutdated,
                format!("{dsn}: schema missing or outdated; run `keygen install`"),
            )),
            Err(e) => Some(e),
        };
        if let Some(error) = refused {
            engine.shutdown();
            return Err(error);
        }
        Ok(Validator {
            dsn,
            options,
            counters,
            usage_health,
            engine: ArcSwapOption::from_pointee(engine),
            restart: Mutex::new(()),
        })
    }

    /// The store this validator reads, password masked.
    #[must_use]
    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    fn engine(&self) -> Result<arc_swap::Guard<Option<Arc<Engine>>>> {
        let generation = fork::generation();
        let current_here = || {
            let current = self.engine.load();
            current
                .as_ref()
                .is_some_and(|e| e.fork_generation == generation)
                .then_some(current)
        };
        if let Some(current) = current_here() {
            return Ok(current);
        }
        let _restarting = lock(&self.restart);
        if let Some(current) = current_here() {
            return Ok(current);
        }
        let fresh = Engine::start(&self.dsn, &self.options, &self.counters, &self.usage_health)?;
        if let Some(inherited) = self.engine.swap(Some(Arc::new(fresh))) {
            if inherited.fork_generation != generation {
                // The parent's threads do not exist here and its sockets are
                // the parent's: dropping would join ghosts and close the
                // parent's connections. Leak it instead (once per fork).
                std::mem::forget(inherited);
            }
        }
        Ok(self.engine.load())
    }

    /// Validates one credential. Never panics. Blocks on the store only on
    /// a cache miss, and on usage recording only while the usage queue is
    /// full and its writer writing, for a second at most (`docs/ARCHITECTURE.md`,
    /// "Usage recording").
    #[must_use]
    pub fn validate(&self, request: &Request<'_>) -> Validation {
        bump(&self.counters.validations);
        let engine = match self.engine() {
            Ok(guard) => guard,
            Err(error) => return Validation::unavailable(request.kind, Some(error)),
        };
        let Some(engine) = engine.as_ref() else {
            return Validation::unavailable(request.kind, None);
        };
        let now = model::now_ms();
        let validation = self.decide(engine, request, now);
        engine.usage.push(UsageRef {
            kind: request.kind,
            credential_id: validation.credential.as_ref().map(|c| c.id),
            client_id: validation.credential.as_ref().map(|c| c.client_id),
            at: now,
            ip: request.ip,
            endpoint: request.endpoint,
            status: validation.status,
        });
        validation
    }

    fn decide(&self, engine: &Engine, request: &Request<'_>, now: i64) -> Validation {
        let kind = request.kind;
        if !request.presented {
            return Validation::absent(kind);
        }
        let format_status = format::check_format(kind, request.key);
        if format_status != Status::Valid {
            // Heratio's own key shapes are looked up only when the store
            // holds some: otherwise garbage still costs no query.
            let legacy = (format_status == Status::Malformed && kind == Kind::ApiKey)
                .then(|| format::legacy_shape(request.key))
                .flatten()
                .is_some_and(|shape| engine.legacy.contains(shape));
            if !legacy {
                return Validation::new(kind, format_status);
            }
        }
        let digest = format::digest(request.key);
        let found = engine.cache.lookup(
            engine.store.as_ref(),
            &engine.feed,
            &self.counters,
            kind,
            &digest,
        );
        let credential = match found {
            Ok(Some(credential)) => credential,
            Ok(None) => return Validation::new(kind, Status::NotFound),
            Err(error) => return Validation::unavailable(kind, Some(error)),
        };
        // The cache and the index matched on the digest already; this
        // constant-time comparison is the authoritative check, so a hash
        // collision in either could never let a different key through.
        if !format::digests_equal(&credential.digest, &digest) {
            return Validation::new(kind, Status::NotFound);
        }
        let mut status = credential.status_at(now, request.scopes, request.ip);
        let mut v = Validation::new(kind, status);
        if status == Status::Forbidden {
            v.missing_scope = credential
                .scopes
                .first_missing(request.scopes)
                .map(str::to_owned);
        }
        if let (Status::Valid, Some(limit)) = (status, credential.rate_limit) {
            let rate = engine.rate.admit(
                engine.store.as_ref(),
                &self.counters,
                kind,
                credential.id,
                limit,
                now,
            );
            if !rate.admitted {
                status = Status::RateLimited;
                v.status = status;
            }
            v.rate = Some(rate);
        }
        v.credential = Some(credential);
        v
    }

    /// Writes every usage record queued so far; false if that did not finish
    /// within `timeout` (the store may be down; records stay queued).
    #[must_use]
    pub fn flush(&self, timeout: Duration) -> bool {
        match self.engine() {
            Ok(guard) => guard.as_ref().is_none_or(|e| e.flush(timeout)),
            Err(_) => false,
        }
    }

    /// Stops background threads after writing buffered usage (retrying up to
    /// the shutdown timeout). A later validation starts them again.
    pub fn shutdown(&self) {
        let _restarting = lock(&self.restart);
        if let Some(engine) = self.engine.swap(None) {
            if engine.fork_generation == fork::generation() {
                engine.shutdown();
            } else {
                std::mem::forget(engine);
            }
        }
    }

    /// Why usage records cannot be written, while that is so (the store
    /// refuses writes: a user without INSERT/UPDATE grants, a read-only
    /// SQLite file). Cheap enough to call after every validation, so a
    /// binding can warn once when recording stops and again if it resumes
    /// and stops.
    #[must_use]
    pub fn usage_failure(&self) -> Option<String> {
        self.usage_health.failure()
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let guard = self.engine.load();
        let Some(engine) = guard.as_ref() else {
            return self.counters.snapshot(0, None, None);
        };
        let host = engine.host.as_ref().map(|shared| {
            let region = shared.region();
            let h = region.header();
            let get =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            HostStats {
                leader: shared.leading(),
                leader_pid: h.leader_pid.load(std::sync::atomic::Ordering::Relaxed),
                hits: shared.hits(),
                misses: get(&h.misses),
                fills: get(&h.fills),
                entries: engine.cache.len(),
                corrupt: get(&h.corrupt),
                queued: engine.queued().unwrap_or(0),
                dropped: get(&h.ring_dropped),
                written: get(&h.ring_written),
            }
        });
        let entries = if host.is_some() {
            0
        } else {
            engine.cache.len()
        };
        self.counters.snapshot(entries, engine.feed.lag_ms(), host)
    }

    /// The host region file this validator shares, if it runs in shared
    /// mode (for operators: its size and owner; for tests).
    #[must_use]
    pub fn shared_region_path(&self) -> Option<std::path::PathBuf> {
        Some(
            self.engine
                .load()
                .as_ref()?
                .host
                .as_ref()?
                .region_path()
                .to_owned(),
        )
    }

    /// Why this validator runs with a private cache although the shared
    /// host cache was asked for (`None` when shared, or not asked for).
    #[must_use]
    pub fn shared_cache_error(&self) -> Option<String> {
        self.engine.load().as_ref()?.host_error.clone()
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.shutdown();
    }
}
