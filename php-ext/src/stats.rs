//! What this process's validator reports: `heratio_keys_stats()` and
//! `php --ri heratio_keys` / `phpinfo()`, both from the core's one list of
//! counters ([`Stats::fields`]).

use std::panic::catch_unwind;

use ext_php_rs::boxed::ZBox;
use ext_php_rs::exception::PhpException;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::ModuleEntry;
use ext_php_rs::{info_table_end, info_table_row, info_table_start};
use heratio_keys_core::{Dsn, Stats};

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

/// The counters now: the open validator's, or zeros before it is opened.
fn counters() -> Stats {
    SLOT.peek().map(|v| v.stats()).unwrap_or_default()
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

/// `heratio_keys_stats()`: process id, whether the validator is open, the
/// masked DSN, open failures, and every counter.
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
    for (name, value) in counters().fields() {
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
        for (name, value) in counters().fields() {
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
