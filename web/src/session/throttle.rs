//! Failed-login counters per user name and per client IP, and the
//! lock-outs they trigger.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bounds the memory an attacker can make us spend by inventing names.
const MAX_THROTTLE_ENTRIES: usize = 100_000;

#[derive(Debug)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Failed-login counters, keyed `user:NAME` and `ip:ADDR`.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    map: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        // A panic while holding the lock leaves counters behind, which are
        // still consistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long the longest lock-out among `keys` still lasts.
    pub(crate) fn locked(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let map = self.lock();
        keys.iter()
            .filter_map(|k| map.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Counts a failure against each of `keys`; the `max`-th failure within
    /// `window` locks that key out for `lockout`.
    pub(crate) fn fail(&self, keys: &[String], max: u32, window: Duration, lockout: Duration) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_THROTTLE_ENTRIES {
            map.retain(|_, f| {
                now.duration_since(f.first) < window.max(lockout)
                    || f.locked_until.is_some_and(|u| u > now)
            });
        }
        for key in keys {
            let f = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                first: now,
                locked_until: None,
            });
            if now.duration_since(f.first) >= window && f.locked_until.is_none_or(|u| u <= now) {
                *f = Failures {
                    count: 0,
                    first: now,
                    locked_until: None,
                };
            }
            f.count += 1;
            if f.count >= max {
                f.locked_until = Some(now + lockout);
            }
        }
    }

    pub(crate) fn clear(&self, key: &str) {
        self.lock().remove(key);
    }
}
