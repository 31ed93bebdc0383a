//! What an operator (or a program embedding the server) can tune.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use heratio_keys_core::store;

/// Default listening address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

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

// By hand, because the derived one would print the DSN's password.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_listen_agrees_with_the_constant() {
        assert_eq!(Config::new("sqlite:x").listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn debug_hides_the_dsn_password() {
        let c = Config::new("mysql://keygen:hunter2@db:3306/keys");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
