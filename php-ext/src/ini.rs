//! The extension's ini directives, listed once: name, default and how each
//! is read into [`Settings`] (the validator's options).
//!
//! All are `PHP_INI_SYSTEM`: php.ini, `-d`, or an FPM pool's
//! `php_admin_value`. One validator serves every request of a process, so a
//! per-request `ini_set()` could not take effect and is refused.

use std::ffi::CStr;
use std::time::Duration;

use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{ExecutorGlobals, IniEntryDef, IniEntryDefs};
use heratio_keys_core::Options;

/// One directive: its name and default, as registered at MINIT.
pub struct Directive {
    name: &'static CStr,
    default: &'static CStr,
}

impl Directive {
    const fn new(name: &'static CStr, default: &'static CStr) -> Self {
        Directive { name, default }
    }

    const fn entry(&self) -> IniEntryDef {
        IniEntryDef::new(self.name, self.default, IniEntryPermission::System)
    }

    /// The name (`heratio_keys.dsn`).
    pub fn name(&self) -> &'static str {
        self.name.to_str().unwrap_or_default()
    }

    /// The default, as registered.
    pub fn default_value(&self) -> &'static str {
        self.default.to_str().unwrap_or_default()
    }
}

/// `heratio_keys.dsn`: the store (no default).
pub const DSN: Directive = Directive::new(c"heratio_keys.dsn", c"");
/// `heratio_keys.cache_ttl`: seconds a cached answer may live at most.
pub const CACHE_TTL: Directive = Directive::new(c"heratio_keys.cache_ttl", c"60");
/// `heratio_keys.poll_interval_ms`: how often the change feed is read.
pub const POLL_INTERVAL_MS: Directive = Directive::new(c"heratio_keys.poll_interval_ms", c"500");
/// `heratio_keys.usage_log`: whether validations are written to `usage_log`.
pub const USAGE_LOG: Directive = Directive::new(c"heratio_keys.usage_log", c"1");
/// `heratio_keys.shared_cache`: whether the workers of this host share one
/// cache, feed poller and usage writer (the host region).
pub const SHARED_CACHE: Directive = Directive::new(c"heratio_keys.shared_cache", c"1");
/// `heratio_keys.shared_cache_slots`: slots of the host cache (512 bytes
/// each; the core's default).
pub const SHARED_CACHE_SLOTS: Directive =
    Directive::new(c"heratio_keys.shared_cache_slots", c"131072");
/// `heratio_keys.shared_queue_records`: records the host usage queue holds
/// (352 bytes each; the core's default).
pub const SHARED_QUEUE_RECORDS: Directive =
    Directive::new(c"heratio_keys.shared_queue_records", c"65536");
/// `heratio_keys.db_connections`: most MySQL connections one worker holds.
/// Two: the request's own (a cache miss, a rate-limit reservation) and the
/// host thread's while this worker leads (feed poll, usage writes).
pub const DB_CONNECTIONS: Directive = Directive::new(c"heratio_keys.db_connections", c"2");
/// `heratio_keys.db_connection_idle`: seconds an idle MySQL connection is
/// kept (the core's default).
pub const DB_CONNECTION_IDLE: Directive = Directive::new(c"heratio_keys.db_connection_idle", c"10");

/// Every directive, once: MINIT registers these, `php --ri` lists them.
pub const ALL: [&Directive; 9] = [
    &DSN,
    &CACHE_TTL,
    &POLL_INTERVAL_MS,
    &USAGE_LOG,
    &SHARED_CACHE,
    &SHARED_CACHE_SLOTS,
    &SHARED_QUEUE_RECORDS,
    &DB_CONNECTIONS,
    &DB_CONNECTION_IDLE,
];

/// What MINIT registers.
pub static ENTRIES: IniEntryDefs<10> = IniEntryDefs::new([
    DSN.entry(),
    CACHE_TTL.entry(),
    POLL_INTERVAL_MS.entry(),
    USAGE_LOG.entry(),
    SHARED_CACHE.entry(),
    SHARED_CACHE_SLOTS.entry(),
    SHARED_QUEUE_RECORDS.entry(),
    DB_CONNECTIONS.entry(),
    DB_CONNECTION_IDLE.entry(),
    IniEntryDef::end(),
]);

/// Settings read from the directives when the validator is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `heratio_keys.dsn`.
    pub dsn: String,
    /// `heratio_keys.cache_ttl`.
    pub cache_ttl: Duration,
    /// `heratio_keys.poll_interval_ms`.
    pub poll_interval: Duration,
    /// `heratio_keys.usage_log`.
    pub usage_log: bool,
    /// `heratio_keys.shared_cache`.
    pub shared_cache: bool,
    /// `heratio_keys.shared_cache_slots`.
    pub shared_cache_slots: u64,
    /// `heratio_keys.shared_queue_records`.
    pub shared_queue_records: u64,
    /// `heratio_keys.db_connections`.
    pub db_connections: usize,
    /// `heratio_keys.db_connection_idle`.
    pub db_connection_idle: Duration,
}

/// The raw value of a directive in this process (`None`: unset).
pub fn raw(directive: &Directive) -> Option<String> {
    ExecutorGlobals::get()
        .ini_values()
        .get(directive.name())
        .cloned()
        .flatten()
}

impl Settings {
    /// Reads the directives of this process.
    ///
    /// # Errors
    ///
    /// A message naming the directive at fault.
    pub fn read() -> Result<Settings, String> {
        Settings::parse(raw)
    }

    /// Parses raw values looked up by `get` (`None`: unset, the default
    /// applies). Errors name the directive.
    ///
    /// # Errors
    ///
    /// A message naming the directive at fault.
    pub fn parse(get: impl Fn(&Directive) -> Option<String>) -> Result<Settings, String> {
        let value = |d: &Directive| get(d).unwrap_or_else(|| d.default_value().to_owned());
        let dsn = value(&DSN).trim().to_owned();
        if dsn.is_empty() {
            return Err(format!(
                "{} is not set (e.g. {} = \"mysql://user:pass@127.0.0.1:3306/heratio_keys\" or \"sqlite:/var/lib/heratio/keys.db\")",
                DSN.name(),
                DSN.name()
            ));
        }
        let cache_ttl = number(&CACHE_TTL, &value(&CACHE_TTL), 1, 86_400)?;
        let poll = number(&POLL_INTERVAL_MS, &value(&POLL_INTERVAL_MS), 10, 60_000)?;
        let usage_log = boolean(&USAGE_LOG, &value(&USAGE_LOG))?;
        let shared_cache = boolean(&SHARED_CACHE, &value(&SHARED_CACHE))?;
        let shared_cache_slots = number(
            &SHARED_CACHE_SLOTS,
            &value(&SHARED_CACHE_SLOTS),
            16,
            16_777_216,
        )?;
        let shared_queue_records = number(
            &SHARED_QUEUE_RECORDS,
            &value(&SHARED_QUEUE_RECORDS),
            16,
            4_194_304,
        )?;
        let db_connections = number(&DB_CONNECTIONS, &value(&DB_CONNECTIONS), 1, 64)?;
        let db_connection_idle =
            number(&DB_CONNECTION_IDLE, &value(&DB_CONNECTION_IDLE), 1, 3_600)?;
        Ok(Settings {
            dsn,
            cache_ttl: Duration::from_secs(cache_ttl),
            poll_interval: Duration::from_millis(poll),
            usage_log,
            shared_cache,
            shared_cache_slots,
            shared_queue_records,
            db_connections: usize::try_from(db_connections).unwrap_or(1),
            db_connection_idle: Duration::from_secs(db_connection_idle),
        })
    }

    /// The validator options these settings select.
    pub fn options(&self) -> Options {
        Options::builder()
            .cache_ttl(self.cache_ttl)
            .poll_interval(self.poll_interval)
            .usage_log(self.usage_log)
            .shared_cache(self.shared_cache)
            .shared_cache_slots(self.shared_cache_slots)
            .shared_queue_records(self.shared_queue_records)
            .connections(self.db_connections)
            .connection_idle(self.db_connection_idle)
            .build()
    }
}

fn number(d: &Directive, raw: &str, min: u64, max: u64) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{} = {raw:?} is invalid: expected a whole number from {min} to {max}",
            d.name()
        )),
    }
}

/// PHP's spellings of a boolean ini value.
fn boolean(d: &Directive, raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Ok(true),
        "" | "0" | "off" | "no" | "false" | "none" => Ok(false),
        _ => Err(format!(
            "{} = {raw:?} is invalid: expected on or off",
            d.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&Directive, &str)]) -> Result<Settings, String> {
        let owned: Vec<(&'static str, String)> = pairs
            .iter()
            .map(|(d, v)| (d.name(), (*v).to_owned()))
            .collect();
        Settings::parse(|d| {
            owned
                .iter()
                .find(|(n, _)| *n == d.name())
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn settings_parse_and_name_the_directive() {
        let s = parse(&[(&DSN, " sqlite:/x.db ")]).expect("defaults");
        assert_eq!(s.dsn, "sqlite:/x.db");
        assert_eq!(s.cache_ttl, Duration::from_secs(60));
        assert_eq!(s.poll_interval, Duration::from_millis(500));
        assert!(s.usage_log);
        let e = parse(&[]).expect_err("no dsn");
        assert!(e.contains("heratio_keys.dsn"));
        let e = parse(&[(&DSN, "sqlite:/x"), (&CACHE_TTL, "abc")]).expect_err("ttl");
        assert!(e.contains("heratio_keys.cache_ttl"));
        let e = parse(&[(&DSN, "sqlite:/x"), (&POLL_INTERVAL_MS, "5")]).expect_err("poll");
        assert!(e.contains("heratio_keys.poll_interval_ms"));
        let s = parse(&[(&DSN, "sqlite:/x"), (&USAGE_LOG, "Off")]).expect("off");
        assert!(!s.usage_log);
        assert!(parse(&[(&DSN, "sqlite:/x"), (&USAGE_LOG, "maybe")]).is_err());
    }

    #[test]
    fn shared_mode_is_on_by_default_and_its_sizes_are_read() {
        let s = parse(&[(&DSN, "sqlite:/x")]).expect("defaults");
        assert!(s.shared_cache, "PHP shares the host cache by default");
        assert!(s.options().shared_cache());
        assert_eq!(s.db_connections, 2);
        assert_eq!(s.options().connections(), 2);
        let s = parse(&[
            (&DSN, "sqlite:/x"),
            (&SHARED_CACHE, "off"),
            (&SHARED_CACHE_SLOTS, "262144"),
            (&SHARED_QUEUE_RECORDS, "65536"),
            (&DB_CONNECTIONS, "1"),
            (&DB_CONNECTION_IDLE, "3"),
        ])
        .expect("valid");
        let o = s.options();
        assert!(!o.shared_cache());
        assert_eq!(o.shared_cache_slots(), 262_144);
        assert_eq!(o.shared_queue_records(), 65_536);
        assert_eq!(o.connections(), 1);
        assert_eq!(o.connection_idle(), Duration::from_secs(3));
        for (d, bad) in [
            (&SHARED_CACHE, "sometimes"),
            (&SHARED_CACHE_SLOTS, "8"),
            (&SHARED_QUEUE_RECORDS, "-1"),
            (&DB_CONNECTIONS, "0"),
            (&DB_CONNECTION_IDLE, "0"),
        ] {
            let e = parse(&[(&DSN, "sqlite:/x"), (d, bad)]).expect_err(bad);
            assert!(e.contains(d.name()), "{e}");
        }
    }

    #[test]
    fn every_directive_is_registered_once() {
        let names: std::collections::BTreeSet<&str> = ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(
            ENTRIES.as_slice().len(),
            ALL.len() + 1,
            "and the end marker"
        );
    }

    #[test]
    fn defaults_agree_with_the_core() {
        let s = parse(&[(&DSN, "sqlite:/x")]).expect("defaults");
        let core = Options::default();
        assert_eq!(s.options().cache_ttl(), core.cache_ttl());
        assert_eq!(s.options().poll_interval(), core.poll_interval());
        assert_eq!(s.options().usage_log(), core.usage_log());
        // Sizes equal the core's, so PHP workers and C programs (which use
        // the core's defaults) open the host region with the same geometry.
        assert_eq!(s.options().shared_cache_slots(), core.shared_cache_slots());
        assert_eq!(
            s.options().shared_queue_records(),
            core.shared_queue_records()
        );
        assert_eq!(s.options().connection_idle(), core.connection_idle());
        // Deliberately different: a worker needs two connections at most.
        assert!(s.options().connections() < core.connections());
    }
}
