//! What an operator (or a program embedding the server) can tune.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use heratio_keys_core::{store, Error, ErrorKind};
use ipnet::IpNet;

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
    /// Failed logins for one user name from one source (client IP, or its
    /// /64 for IPv6) before that pair is locked out. The same name from
    /// elsewhere is not affected, so guessing cannot lock the real admin out.
    pub login_max_failures: u32,
    /// Failed logins from one source, whatever the user names, before the
    /// whole source is locked out (stops one source spraying names).
    pub login_source_max_failures: u32,
    /// Window in which failed logins are counted.
    pub login_window: Duration,
    /// How long a (user name, source) pair or a source stays locked out.
    pub login_lockout: Duration,
    /// Password checks (argon2, 19 MiB each) allowed to run at once; a
    /// login beyond that is answered 503 at once, never queued.
    pub login_concurrency: usize,
    /// Largest request body accepted by `/v1/verify`.
    pub verify_body_limit: usize,
    /// Callers of `/v1/verify` whose `ip` and `endpoint` fields are
    /// recorded; from anyone else the caller's own address and
    /// `/v1/verify` are. Empty by default: a caller-supplied address would
    /// otherwise let anyone write what they like into the usage log.
    pub verify_trusted: Vec<IpNet>,
    /// Verify requests per second allowed from one source (client IP, or
    /// its /64 for IPv6), refilled continuously; 0 turns the limit off.
    pub verify_rate: u32,
    /// How many verify requests one source may make at once before
    /// `verify_rate` applies (the token bucket's size).
    pub verify_burst: u32,
    /// Largest request body accepted by the admin forms.
    pub form_body_limit: usize,
    /// Threads running blocking store calls.
    pub store_threads: usize,
    /// Write one access-log line per request to standard error (method,
    /// path without query, status, duration; never a body).
    pub access_log: bool,
    /// Run the maintenance pass (the core's `maintain`, as `keygen
    /// maintain` does: revoke keys idle past their client's policy, actor
    /// `maintenance`) at start and then this often; `None`: never (the
    /// operator runs `keygen maintain` from cron instead).
    pub maintenance_interval: Option<Duration>,
    /// Serve `GET /metrics` (Prometheus text format; see
    /// `docs/metrics.md`). On by default: it holds counts only, never a
    /// key, client, user name or address, and Prometheus scrapes without
    /// credentials, so keep the listener private (as `listen`'s default is).
    pub metrics: bool,
    /// Serve `/metrics` on this address instead of `listen` (then only
    /// there): a private interface for the scraper while `listen` faces the
    /// callers of `/v1/verify`.
    pub metrics_listen: Option<SocketAddr>,
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
            .field("login_source_max_failures", &self.login_source_max_failures)
            .field("login_window", &self.login_window)
            .field("login_lockout", &self.login_lockout)
            .field("login_concurrency", &self.login_concurrency)
            .field("verify_body_limit", &self.verify_body_limit)
            .field("verify_trusted", &self.verify_trusted)
            .field("verify_rate", &self.verify_rate)
            .field("verify_burst", &self.verify_burst)
            .field("form_body_limit", &self.form_body_limit)
            .field("store_threads", &self.store_threads)
            .field("access_log", &self.access_log)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("metrics", &self.metrics)
            .field("metrics_listen", &self.metrics_listen)
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
            login_source_max_failures: 20,
            login_window: Duration::from_secs(15 * 60),
            login_lockout: Duration::from_secs(15 * 60),
            login_concurrency: 4,
            verify_body_limit: 8 * 1024,
            verify_trusted: Vec::new(),
            verify_rate: 1000,
            verify_burst: 2000,
            form_body_limit: 64 * 1024,
            store_threads: 8,
            access_log: true,
            maintenance_interval: Some(Duration::from_secs(3600)),
            metrics: true,
            metrics_listen: None,
        }
    }
}

/// Parses a comma-separated list of networks for
/// [`Config::verify_trusted`]: CIDRs (`10.0.5.0/24`, `2001:db8::/48`) or bare
/// addresses (one host). An empty list trusts nobody.
///
/// # Errors
///
/// `InvalidInput` naming the entry that is neither.
pub fn parse_trusted(list: &str) -> Result<Vec<IpNet>, Error> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("{s:?} is not an IP address or CIDR network"),
                    )
                })
        })
        .collect()
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

    #[test]
    fn trusted_networks_parse() {
        let nets = parse_trusted(" 10.0.5.20, 192.0.2.7/24,::1,2001:db8::/48 ,").unwrap();
        let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["10.0.5.20/32", "192.0.2.0/24", "::1/128", "2001:db8::/48"]
        );
        assert!(parse_trusted("").unwrap().is_empty());
        for bad in ["10.0.0.0/33", "example.org", "10.0.0.1/", "1.2.3"] {
            assert!(parse_trusted(bad).is_err(), "{bad}");
        }
    }
}
