//! Login throttling, counted per (user name, source) and per source.
//!
//! Keying by the pair, as mature login systems do, means a guesser locks
//! out only themselves: the real admin, from anywhere else, logs in as
//! usual. A looser per-source count across all names stops one source
//! spraying user names. An attempt is counted when it starts, under the
//! same lock as the check, so parallel attempts cannot all slip past the
//! limit while their password checks run; a successful login gives its
//! count back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use heratio_keys_core::model::check_admin_name;

use crate::config::Config;
use crate::source::SourceAddr;

/// Bounds the memory an attacker can make us spend by inventing names or
/// addresses. When full of live counters, logins are refused (fail closed)
/// rather than left uncounted.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Source(SourceAddr),
    Pair(SourceAddr, String),
}

#[derive(Debug)]
struct Entry {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
    /// Whether a refusal was already reported since this entry started
    /// afresh, so that a locked-out source writes one audit row per
    /// lock-out, not one per try (nor one more each time a cancelled
    /// attempt lifts and re-sets the lock).
    refusal_reported: bool,
}

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            count: 0,
            since: now,
            locked_until: None,
            refusal_reported: false,
        }
    }

    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Still worth keeping: counting within its window, or locked.
    fn live(&self, now: Instant, window: Duration) -> bool {
        self.locked(now).is_some() || now.duration_since(self.since) < window
    }
}

/// An attempt counted by [`Throttle::begin`].
#[derive(Debug)]
pub(crate) struct Attempt {
    pair: Key,
    source: Key,
}

/// What [`Throttle::begin`] decided.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Counted: go on and check the password.
    Go(Attempt),
    /// Locked out for `wait`; `report` is true for the first refusal of
    /// this lock-out (write it to the audit log), false after.
    Locked { wait: Duration, report: bool },
    /// Too many live counters to count one more: refuse.
    Full,
}

/// The counters.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    map: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding the lock leaves counters behind, which are
        // still consistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks the lock-outs of `user` from `source` and, when there is
    /// none, counts the attempt as a failure until told otherwise.
    pub(crate) fn begin(&self, config: &Config, user: &str, source: SourceAddr) -> Begin {
        // A name that cannot exist shares one counter, so megabyte-long
        // made-up names cost no memory.
        let user = if check_admin_name(user).is_ok() {
            user
        } else {
            ""
        };
        let pair = Key::Pair(source, user.to_owned());
        let src = Key::Source(source);
        let window = config.login_window;
        let now = Instant::now();
        let mut map = self.lock();
        for key in [&pair, &src] {
            if let Some(e) = map.get_mut(key) {
                if let Some(wait) = e.locked(now) {
                    let report = !e.refusal_reported;
                    e.refusal_reported = true;
                    return Begin::Locked { wait, report };
                }
            }
        }
        if map.len() + 2 > MAX_ENTRIES {
            map.retain(|_, e| e.live(now, window));
            if map.len() + 2 > MAX_ENTRIES {
                return Begin::Full;
            }
        }
        for (key, max) in [
            (&pair, config.login_max_failures),
            (&src, config.login_source_max_failures),
        ] {
            let e = map.entry(key.clone()).or_insert_with(|| Entry::fresh(now));
            // A lock-out that ended, or a window that passed, starts afresh.
            if e.locked_until.is_some() || now.duration_since(e.since) >= window {
                *e = Entry::fresh(now);
            }
            e.count += 1;
            if e.count >= max.max(1) {
                e.locked_until = Some(now + config.login_lockout);
            }
        }
        Begin::Go(Attempt { pair, source: src })
    }

    /// The attempt logged in: its user name from its source starts afresh,
    /// and the source gets its count back.
    pub(crate) fn succeeded(&self, config: &Config, attempt: Attempt) {
        let mut map = self.lock();
        map.remove(&attempt.pair);
        give_back(&mut map, &attempt.source, config.login_source_max_failures);
    }

    /// The attempt's password was never checked (the server was busy):
    /// it does not count.
    pub(crate) fn cancel(&self, config: &Config, attempt: Attempt) {
        let mut map = self.lock();
        give_back(&mut map, &attempt.pair, config.login_max_failures);
        give_back(&mut map, &attempt.source, config.login_source_max_failures);
    }
}

fn give_back(map: &mut HashMap<Key, Entry>, key: &Key, max: u32) {
    if let Some(e) = map.get_mut(key) {
        e.count = e.count.saturating_sub(1);
        if e.count < max.max(1) {
            e.locked_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::new("sqlite:x");
        c.login_max_failures = 3;
        c.login_source_max_failures = 5;
        c
    }

    fn src(s: &str) -> SourceAddr {
        SourceAddr::of(Some(s.parse().unwrap()))
    }

    fn go(t: &Throttle, c: &Config, user: &str, s: SourceAddr) -> Attempt {
        match t.begin(c, user, s) {
            Begin::Go(a) => a,
            other => panic!("{user} from {s}: {other:?}"),
        }
    }

    #[test]
    fn pairs_lock_themselves_out_only() {
        let (t, c) = (Throttle::default(), config());
        let (a, b) = (src("192.0.2.1"), src("198.51.100.1"));
        for _ in 0..3 {
            go(&t, &c, "admin", a);
        }
        assert!(matches!(
            t.begin(&c, "admin", a),
            Begin::Locked { report: true, .. }
        ));
        assert!(matches!(
            t.begin(&c, "admin", a),
            Begin::Locked { report: false, .. }
        ));
        // The same name from elsewhere, and another name from here.
        go(&t, &c, "admin", b);
        go(&t, &c, "bob", a);
    }

    #[test]
    fn a_source_spraying_names_is_locked_out() {
        let (t, c) = (Throttle::default(), config());
        let a = src("2001:db8::1");
        for i in 0..5 {
            go(&t, &c, &format!("user{i}"), a);
        }
        // Another address in the same /64 is the same source.
        let same = src("2001:db8::ffff");
        assert!(matches!(
            t.begin(&c, "admin", same),
            Begin::Locked { report: true, .. }
        ));
        assert!(matches!(
            t.begin(&c, "other", same),
            Begin::Locked { report: false, .. }
        ));
        go(&t, &c, "admin", src("2001:db8:0:1::1"));
    }

    #[test]
    fn success_and_cancel_give_counts_back() {
        let (t, c) = (Throttle::default(), config());
        let a = src("192.0.2.1");
        go(&t, &c, "admin", a);
        go(&t, &c, "admin", a);
        let third = go(&t, &c, "admin", a);
        // The third attempt locked the pair while in flight; it turned out
        // to be the right password.
        assert!(matches!(t.begin(&c, "admin", a), Begin::Locked { .. }));
        t.succeeded(&c, third);
        let again = go(&t, &c, "admin", a);
        t.cancel(&c, again);
        for _ in 0..3 {
            go(&t, &c, "admin", a);
        }
        assert!(matches!(t.begin(&c, "admin", a), Begin::Locked { .. }));
    }

    #[test]
    fn a_lockout_is_reported_once_even_when_lifted_and_set_again() {
        let (t, c) = (Throttle::default(), config());
        let a = src("192.0.2.1");
        go(&t, &c, "admin", a);
        go(&t, &c, "admin", a);
        let third = go(&t, &c, "admin", a);
        assert!(matches!(
            t.begin(&c, "admin", a),
            Begin::Locked { report: true, .. }
        ));
        // The third was refused as busy: the lock lifts, the next attempt
        // sets it again, and its refusals are not reported anew.
        t.cancel(&c, third);
        go(&t, &c, "admin", a);
        assert!(matches!(
            t.begin(&c, "admin", a),
            Begin::Locked { report: false, .. }
        ));
    }

    #[test]
    fn lockouts_end_and_counting_starts_afresh() {
        let (t, mut c) = (Throttle::default(), config());
        c.login_lockout = Duration::from_millis(30);
        let a = src("192.0.2.1");
        for _ in 0..3 {
            go(&t, &c, "admin", a);
        }
        assert!(matches!(t.begin(&c, "admin", a), Begin::Locked { .. }));
        std::thread::sleep(Duration::from_millis(60));
        for _ in 0..2 {
            go(&t, &c, "admin", a);
        }
    }

    #[test]
    fn impossible_names_share_one_counter() {
        let (t, c) = (Throttle::default(), config());
        let a = src("192.0.2.1");
        for i in 0..3 {
            go(&t, &c, &format!("no such name {i}"), a);
        }
        assert!(matches!(t.begin(&c, "x y", a), Begin::Locked { .. }));
        assert_eq!(t.lock().len(), 2);
    }
}
