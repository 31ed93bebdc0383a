//! What this process's validator reports: `heratio_keys_stats()` and
//! `php --ri heratio_keys` / `phpinfo()`, both from the core's one list of
//! counters ([`Stats::fields`]) and of host counters ([`HostStats::fields`]),
//! plus whether this worker shares the host region and, if not, why.

use std::panic::catch_unwind;

use ext_php_rs::boxed::ZBox;
use ext_php_rs::exception::PhpException;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::ModuleEntry;
use ext_php_rs::{info_table_end, info_table_row, info_table_start};
use heratio_keys_core::{Dsn, HostStats, Stats, Validator};

use crate::ini;
use crate::SLOT;

/// The configured DSN with its password masked, for display.
fn configured_dsn() -> Option<String> {
    let raw = ini::raw(&ini::DSN)?;
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    Some(match Dsn::parse(raw) {
        Ok(dsn) => dsn.to_string(),
        Err(_) => heratio_keys_core::store::redact(raw),
    })
}

fn int(v: u64) -> Zval {
    let mut z = Zval::new();
    z.set_long(i64::try_from(v).unwrap_or(i64::MAX));
    z
}

fn opt_str(v: Option<String>) -> Zval {
    let mut z = Zval::new();
    match v.map(|s| z.set_string(&s, false)) {
        Some(Ok(())) => z,
        _ => Zval::null(),
    }
}

/// Whether this process shares the host region, as reported: `shared`
/// (bool), `shared_error` (why not, when it was asked for), `shared_region`
/// (the region file), and the host's counters (`None` when not shared).
#[derive(Debug, Default)]
struct Sharing {
    shared: bool,
    error: Option<String>,
    region: Option<String>,
    host: Option<HostStats>,
}

impl Sharing {
    fn of(validator: Option<&Validator>, stats: &Stats) -> Sharing {
        let Some(v) = validator else {
            return Sharing::default();
        };
        Sharing {
            shared: stats.host.is_some(),
            error: v.shared_cache_error(),
            region: v
                .shared_region_path()
                .map(|p| p.to_string_lossy().into_owned()),
            host: stats.host,
        }
    }

    /// Every host counter's name, with its value when shared: the names
    /// come from the core even when there is no value, so the keys of
    /// `heratio_keys_stats()` never depend on the mode.
    fn host_fields(&self) -> impl Iterator<Item = (&'static str, Option<u64>)> + '_ {
        let names = HostStats::default().fields();
        let values = self.host.map(|h| h.fields());
        names
            .into_iter()
            .enumerate()
            .map(move |(i, (name, _))| (name, values.map(|v| v[i].1)))
    }
}

/// `heratio_keys_stats()`: process id, whether the validator is open, the
/// masked DSN, open failures, every counter, whether this worker shares the
/// host region (and why not), and the host's counters (null when not
/// shared).
pub fn table() -> PhpResult<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    let mut put = |k: &str, v: Zval| {
        out.insert(k, v)
            .map_err(|e| PhpException::from_message(format!("heratio_keys_stats(): {e}")))
    };
    let validator = SLOT.peek();
    let (last_error, open_failures) = SLOT.failures();
    put("pid", int(u64::from(std::process::id())))?;
    put("open", Zval::from(validator.is_some()))?;
    let dsn = validator
        .as_ref()
        .map(|v| v.dsn().to_string())
        .or_else(configured_dsn);
    put("dsn", opt_str(dsn))?;
    put("open_failures", int(open_failures))?;
    put("last_error", opt_str(last_error))?;
    let stats = validator.as_ref().map(|v| v.stats()).unwrap_or_default();
    for (name, value) in stats.fields() {
        put(name, value.map_or_else(Zval::null, int))?;
    }
    let sharing = Sharing::of(validator.as_deref(), &stats);
    put("shared", Zval::from(sharing.shared))?;
    put("shared_error", opt_str(sharing.error.clone()))?;
    put("shared_region", opt_str(sharing.region.clone()))?;
    for (name, value) in sharing.host_fields() {
        put(name, value.map_or_else(Zval::null, int))?;
    }
    Ok(out)
}

/// `php --ri heratio_keys` / `phpinfo()`: settings, whether the validator is
/// open in this process, and every counter (zeros before the first
/// validation opens it).
///
/// # Safety
///
/// Called by the engine with a valid module entry.
pub unsafe extern "C" fn module_info(_module: *mut ModuleEntry) {
    let rows = catch_unwind(|| {
        let mut rows: Vec<(String, String)> = vec![
            ("heratio_keys support".into(), "enabled".into()),
            ("version".into(), heratio_keys_core::VERSION.into()),
            (
                "dsn".into(),
                configured_dsn().unwrap_or_else(|| "(not set)".into()),
            ),
        ];
        let (last_error, failures) = SLOT.failures();
        rows.push((
            "validator".into(),
            if SLOT.peek().is_some() {
                format!("open (pid {})", std::process::id())
            } else {
                "not opened in this process (opened on first validation)".into()
            },
        ));
        rows.push(("open failures".into(), failures.to_string()));
        if let Some(e) = last_error {
            rows.push(("last error".into(), e));
        }
        for d in ini::ALL.iter().filter(|d| d.name() != ini::DSN.name()) {
            let value = ini::raw(d).unwrap_or_else(|| d.default_value().to_owned());
            rows.push((d.name().to_owned(), value));
        }
        let validator = SLOT.peek();
        let stats = validator.as_ref().map(|v| v.stats()).unwrap_or_default();
        for (name, value) in stats.fields() {
            rows.push((
                name.replace('_', " "),
                value.map_or_else(|| "-".into(), |v| v.to_string()),
            ));
        }
        let sharing = Sharing::of(validator.as_deref(), &stats);
        rows.push((
            "shared".into(),
            match (&validator, sharing.shared, &sharing.error) {
                (None, _, _) => "- (decided when the validator opens)".into(),
                (Some(_), true, _) => {
                    format!("yes ({})", sharing.region.as_deref().unwrap_or("region"))
                }
                (Some(_), false, Some(why)) => format!("no, private cache: {why}"),
                (Some(_), false, None) => "no (heratio_keys.shared_cache = Off)".into(),
            },
        ));
        for (name, value) in sharing.host_fields() {
            rows.push((
                name.replace('_', " "),
                value.map_or_else(|| "-".into(), |v| v.to_string()),
            ));
        }
        rows
    });
    let rows = rows.unwrap_or_default();
    info_table_start!();
    for (name, value) in rows {
        let name = name.replace('\0', " ");
        let value = value.replace('\0', " ");
        info_table_row!(name.as_str(), value.as_str());
    }
    info_table_end!();
}
