//! Who is logged in: sessions, their CSRF tokens and one-shot messages
//! ([`Sessions`]), the cookies and tokens that carry them ([`cookie`]), and
//! failed-login throttling ([`throttle`]).
//!
//! Sessions live in memory: a random 256-bit id in an HttpOnly,
//! SameSite=Strict cookie, an absolute lifetime and an idle timeout, and a
//! per-session CSRF token that every form carries. A restart logs everyone
//! out, which is the safe failure, and no session table needs pruning.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::config::Config;

pub(crate) mod cookie;
mod throttle;

pub(crate) use throttle::{Begin, Throttle};

/// Bounds the memory taken by sessions nobody logs out of.
const MAX_SESSIONS: usize = 10_000;

/// A one-shot message shown on the next page.
#[derive(Debug, Clone)]
pub(crate) struct Flash {
    /// A Bootstrap alert level (`success`, `danger`, `info`).
    pub level: &'static str,
    pub text: String,
}

#[derive(Debug)]
struct Session {
    user: String,
    account: Account,
    csrf: String,
    created: Instant,
    last_seen: Instant,
    flash: Vec<Flash>,
}

/// The `admin_user` row a session was started for, as it was then. Every
/// authenticated request compares it with the row as it is now: a password
/// reset (`keygen admin:create --reset-password`, in another process) or any
/// other change moves `updated_at`, and ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Account {
    pub id: i64,
    pub updated_at: i64,
}

/// A live session as a request sees it.
#[derive(Debug)]
pub(crate) struct Current {
    pub id: String,
    pub user: String,
    pub account: Account,
    pub csrf: String,
}

/// The in-memory session table.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave a session half
        // written, so the table is still usable.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `user`; returns its id.
    pub(crate) fn create(
        &self,
        user: &str,
        account: Account,
        lifetime: Duration,
        idle: Duration,
    ) -> Option<String> {
        let id = cookie::random_token()?;
        let csrf = cookie::random_token()?;
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| live(s, now, lifetime, idle));
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                account,
                csrf,
                created: now,
                last_seen: now,
                flash: Vec::new(),
            },
        );
        Some(id)
    }

    /// The live session named by the request's cookie, refreshing its idle
    /// timer; an expired one is removed on the way.
    pub(crate) fn current(&self, config: &Config, headers: &HeaderMap) -> Option<Current> {
        let id = cookie::cookie(headers, cookie::session_cookie(config))?;
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(&id)?;
        if !live(session, now, config.session_lifetime, config.session_idle) {
            map.remove(&id);
            return None;
        }
        session.last_seen = now;
        Some(Current {
            user: session.user.clone(),
            account: session.account,
            csrf: session.csrf.clone(),
            id,
        })
    }

    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub(crate) fn push_flash(&self, id: &str, level: &'static str, text: String) {
        if let Some(s) = self.lock().get_mut(id) {
            s.flash.push(Flash { level, text });
        }
    }

    pub(crate) fn take_flash(&self, id: &str) -> Vec<Flash> {
        self.lock()
            .get_mut(id)
            .map(|s| std::mem::take(&mut s.flash))
            .unwrap_or_default()
    }
}

fn live(s: &Session, now: Instant, lifetime: Duration, idle: Duration) -> bool {
    now.duration_since(s.created) < lifetime && now.duration_since(s.last_seen) < idle
}
