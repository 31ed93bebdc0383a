//! The one validator of this PHP process: opened lazily on the first call in
//! the process that validates (an FPM worker, never the master), reused by
//! every later request, shut down (usage flushed) at module shutdown.
//!
//! Opening can fail (no DSN, bad DSN, store down, schema missing). The caller
//! then answers `unavailable`; later calls retry, at most once per backoff
//! interval (1 s, doubling, capped at 30 s), so a down store costs one
//! connection attempt per interval per worker instead of one per request.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use heratio_keys_core::Validator;

use crate::ini::Settings;

/// First retry delay after a failed open.
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why no validator is available right now.
#[derive(Debug, Clone)]
pub struct OpenFailure {
    /// Operator-facing reason (DSN password masked, never a key).
    pub reason: String,
    /// Whether this failure should be reported as a PHP warning (the first
    /// failure of an episode, or a different reason than last reported).
    pub warn: bool,
}

#[derive(Debug, Default)]
struct Opening {
    /// When the next open may be attempted.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// The reason last reported as a warning in the current failure episode.
    warned: Option<String>,
    /// The reason of the last failure (for stats), until an open succeeds.
    last_error: Option<String>,
    failures: u64,
}

/// The process-wide validator slot.
#[derive(Debug)]
pub struct Slot {
    current: ArcSwapOption<Validator>,
    opening: Mutex<Opening>,
}

fn lock(m: &Mutex<Opening>) -> MutexGuard<'_, Opening> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slot {
    /// An empty slot (nothing opened).
    pub const fn new() -> Slot {
        Slot {
            current: ArcSwapOption::const_empty(),
            opening: Mutex::new(Opening {
                retry_at: None,
                backoff: Duration::ZERO,
                warned: None,
                last_error: None,
                failures: 0,
            }),
        }
    }

    /// The open validator, if any, without trying to open one.
    pub fn peek(&self) -> Option<Arc<Validator>> {
        self.current.load_full()
    }

    /// The validator, opening it with `settings()` if needed. `settings` is
    /// only called when an open is attempted.
    pub fn get(
        &self,
        settings: impl FnOnce() -> Result<Settings, String>,
    ) -> Result<Arc<Validator>, OpenFailure> {
        if let Some(v) = self.current.load_full() {
            return Ok(v);
        }
        let mut opening = lock(&self.opening);
        if let Some(v) = self.current.load_full() {
            return Ok(v);
        }
        let now = Instant::now();
        if opening.retry_at.is_some_and(|t| now < t) {
            return Err(OpenFailure {
                reason: opening.last_error.clone().unwrap_or_default(),
                warn: false,
            });
        }
        let opened = settings().and_then(|s| {
            Validator::open(&s.dsn, s.options()).map_err(|e| {
                // Core messages name the store with the password masked.
                format!("cannot open the key store: {e}")
            })
        });
        match opened {
            Ok(v) => {
                let v = Arc::new(v);
                self.current.store(Some(Arc::clone(&v)));
                opening.retry_at = None;
                opening.backoff = Duration::ZERO;
                opening.warned = None;
                opening.last_error = None;
                Ok(v)
            }
            Err(reason) => {
                opening.failures += 1;
                opening.backoff = if opening.backoff.is_zero() {
                    BACKOFF_START
                } else {
                    (opening.backoff * 2).min(BACKOFF_MAX)
                };
                opening.retry_at = Some(now + opening.backoff);
                let warn = opening.warned.as_deref() != Some(reason.as_str());
                if warn {
                    opening.warned = Some(reason.clone());
                }
                opening.last_error = Some(reason.clone());
                Err(OpenFailure { reason, warn })
            }
        }
    }

    /// The last open failure not yet cured, and how many opens failed.
    pub fn failures(&self) -> (Option<String>, u64) {
        let opening = lock(&self.opening);
        (opening.last_error.clone(), opening.failures)
    }

    /// Takes the validator out and shuts it down (flushing usage). Called at
    /// module shutdown; a later call would open a fresh one.
    pub fn shutdown(&self) {
        let _opening = lock(&self.opening);
        if let Some(v) = self.current.swap(None) {
            v.shutdown();
            // Dropping the last reference joins nothing further: shutdown
            // already stopped the threads.
            drop(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_and_warn_once_per_reason() {
        let slot = Slot::new();
        let first = slot.get(|| Err("nope".to_owned())).expect_err("must fail");
        assert!(first.warn);
        // Within the backoff: no attempt, no warning.
        let mut called = false;
        let second = slot
            .get(|| {
                called = true;
                Err("nope".to_owned())
            })
            .expect_err("still failing");
        assert!(!called);
        assert!(!second.warn);
        assert_eq!(second.reason, "nope");
        assert_eq!(slot.failures().1, 1);
    }
}
