//! `GET /readyz`: can this server answer from its database right now?
//!
//! Each check opens the store afresh and reads its schema version, as a
//! restarted `keygen serve` would. The server's own pooled connections
//! would hide exactly what an operator needs to hear about: a SQLite file
//! deleted or replaced under a running server (an open connection keeps
//! reading the unlinked file), a password changed, a database dropped, a
//! server at `max_connections`.
//!
//! The endpoint needs no login, so it must not let anyone make us open
//! connections at will: one check runs at a time (the permit is held by
//! the check itself, on its store thread, until the store really answers,
//! even after the caller gave up), and an answer is reused for a second.
//! A reason is one of a few fixed codes and sentences; the store's own
//! message (which names a host, port or file, never a password) goes to
//! standard error only, when readiness changes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use heratio_keys_core::{Dsn, ErrorKind};
use tokio::sync::Semaphore;

use crate::backend;
use crate::blocking::Blocking;

/// How long a check may take before the answer is "not ready".
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an answer is reused.
const REUSE: Duration = Duration::from_secs(1);

/// Why the server is not ready: a stable code and a fixed sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotReady {
    pub reason: &'static str,
    pub message: &'static str,
}

const UNREACHABLE: NotReady = NotReady {
    reason: "store_unavailable",
    message: "the keygen database cannot be reached or opened",
};
const SCHEMA_OUTDATED: NotReady = NotReady {
    reason: "schema_outdated",
    message: "the keygen database has no schema or an older one: run `keygen install`",
};
const SCHEMA_TOO_NEW: NotReady = NotReady {
    reason: "schema_too_new",
    message: "the keygen database was upgraded by a newer heratio-keys",
};
const TIMEOUT: NotReady = NotReady {
    reason: "timeout",
    message: "the keygen database did not answer in time",
};
const STORE_ERROR: NotReady = NotReady {
    reason: "store_error",
    message: "the keygen database answered with an error",
};

type Answer = Result<(), NotReady>;

/// The readiness check's state.
#[derive(Debug)]
pub(crate) struct Readiness {
    /// Parsed: its `Debug` masks the password.
    dsn: Dsn,
    one_at_a_time: Arc<Semaphore>,
    last: Mutex<Option<(Instant, Answer)>>,
}

impl Readiness {
    pub(crate) fn new(dsn: Dsn) -> Readiness {
        Readiness {
            dsn,
            one_at_a_time: Arc::new(Semaphore::new(1)),
            last: Mutex::new(None),
        }
    }

    fn recent(&self) -> Option<Answer> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < REUSE)
            .map(|(_, answer)| *answer)
    }

    /// Ready, or why not; at most [`CHECK_TIMEOUT`] (plus a moment).
    pub(crate) async fn check(&self, pool: &Blocking) -> Answer {
        if let Some(answer) = self.recent() {
            return answer;
        }
        let deadline = tokio::time::Instant::now() + CHECK_TIMEOUT;
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(deadline, Arc::clone(&self.one_at_a_time).acquire_owned())
                .await
        else {
            // The check before ours is still waiting for the store.
            return Err(TIMEOUT);
        };
        // Another caller may have finished a check while we waited.
        if let Some(answer) = self.recent() {
            return answer;
        }
        let dsn = self.dsn.clone();
        let run = pool.run(move || {
            let _permit = permit;
            probe(&dsn)
        });
        let (answer, detail) = match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(Ok(()))) => (Ok(()), String::new()),
            Ok(Ok(Err((why, detail)))) => (Err(why), detail),
            Ok(Err(_)) => (Err(STORE_ERROR), "the check failed".to_owned()),
            Err(_) => (Err(TIMEOUT), format!("no answer in {CHECK_TIMEOUT:?}")),
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        // Logged when readiness changes, not at every probe.
        let was = last.as_ref().map_or(Ok(()), |(_, a)| *a);
        if was != answer {
            match answer {
                Ok(()) => eprintln!("keygen serve: ready: the database answers again"),
                Err(e) => eprintln!("keygen serve: not ready ({}): {detail}", e.reason),
            }
        }
        *last = Some((Instant::now(), answer));
        answer
    }
}

/// Opens the store afresh and checks its schema version (blocking); on
/// failure, the reason and the store's message for the log.
fn probe(dsn: &Dsn) -> Result<(), (NotReady, String)> {
    backend::open_store(dsn).map(drop).map_err(|e| {
        // The core's message never holds a password (DSNs are printed
        // masked); it still stays off the unauthenticated answer, which
        // needs no host names or paths either.
        let why = match e.kind() {
            ErrorKind::Unavailable => UNREACHABLE,
            ErrorKind::SchemaOutdated => SCHEMA_OUTDATED,
            ErrorKind::SchemaTooNew => SCHEMA_TOO_NEW,
            _ => STORE_ERROR,
        };
        (why, e.message().to_owned())
    })
}
