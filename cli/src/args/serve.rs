//! Grammar of `keygen serve`: listeners, the web server's knobs (their
//! defaults come from the web crate's `Config`, so `--help` shows them and
//! they live in one place) and the maintenance pass.

use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on
    #[arg(long, value_name = "ADDR", default_value = heratio_keys_web::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Browsers reach the server over HTTPS: mark cookies Secure
    #[arg(long)]
    pub secure_cookies: bool,
    /// Take the client IP from X-Forwarded-For when the peer is a loopback proxy
    #[arg(long)]
    pub trust_proxy: bool,
    /// Callers of /v1/verify whose "ip" and "endpoint" are recorded (default:
    /// none; anyone else is recorded with their own address)
    #[arg(long, value_name = "CIDR[,CIDR…]", value_parser = trusted_parser)]
    pub verify_trust: Option<Vec<heratio_keys_web::IpNet>>,
    /// /v1/verify requests per second from one source, 0 for no limit
    #[arg(long, value_name = "N", default_value_t = web_default().verify_rate)]
    pub verify_rate: u32,
    /// /v1/verify requests one source may make at once before the rate applies
    #[arg(long, value_name = "N", default_value_t = web_default().verify_burst,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub verify_burst: u32,
    /// Failed logins from one source, any user names, before it is locked out
    #[arg(long, value_name = "N", default_value_t = web_default().login_source_max_failures,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub login_source_max_failures: u32,
    /// Login password checks (19 MiB each) run at once; more are answered 503
    #[arg(long, value_name = "N", default_value_t = web_default().login_concurrency,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub login_concurrency: usize,
    /// Run the maintenance pass (revoke keys idle past their client's policy,
    /// as `keygen maintain` does) at start and then this often
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = interval_parser,
          conflicts_with = "no_maintenance")]
    pub maintenance_interval: std::time::Duration,
    /// Never run the maintenance pass (run `keygen maintain` from cron instead)
    #[arg(long)]
    pub no_maintenance: bool,
    /// Serve GET /metrics on this address instead of --listen (keep it
    /// private: Prometheus scrapes without credentials)
    #[arg(long, value_name = "ADDR", conflicts_with = "no_metrics")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Do not serve GET /metrics at all
    #[arg(long)]
    pub no_metrics: bool,
}

/// The server's own defaults, so `--help` shows them and they live in one place.
fn web_default() -> heratio_keys_web::Config {
    heratio_keys_web::Config::new(String::new())
}

fn trusted_parser(list: &str) -> Result<Vec<heratio_keys_web::IpNet>, String> {
    heratio_keys_web::parse_trusted(list).map_err(|e| e.message().to_owned())
}

fn interval_parser(text: &str) -> Result<std::time::Duration, String> {
    heratio_keys_core::model::parse_duration(text)
        .map(|ms| std::time::Duration::from_millis(ms.unsigned_abs()))
        .map_err(|e| e.message().to_owned())
}
