//! `hk_validator` and its options: open, validate, flush, free. Every
//! decision is core's [`Validator`]; this module reads the C arguments,
//! calls it, and writes the answer back.

use std::ffi::{c_char, c_int, CStr};
use std::ptr;
use std::time::Duration;

use heratio_keys_core::model::check_required;
use heratio_keys_core::{Options, OptionsBuilder, Request, Validator};

use crate::credential::{hk_credential, write_credential};
use crate::error::{clear_error, fail, hk_error, set_error, set_error_with_detail, succeed};
use crate::last;
use crate::marshal::{key_bytes, optional_text, scope_array};
use crate::panic::guard;
use crate::status::{hk_kind_raw, hk_status, kind_from_raw};

/// A validator: store connection, cache, change-feed poller and usage
/// flusher. Opaque and thread-safe: open one per process, share it between
/// threads, free it once with `hk_validator_free`.
#[derive(Debug)]
pub struct hk_validator {
    pub(crate) inner: Validator,
}

/// Tuning knobs for `hk_validator_open_with`. Always start from
/// `hk_options_default()` and change the fields you need.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct hk_options {
    /// Most cached digests, positive and negative together (default 100000).
    pub cache_capacity: u64,
    /// Backstop lifetime of a cached credential, in ms (default 60000).
    pub cache_ttl_ms: u64,
    /// Lifetime of a cached "not found" answer, in ms (default 60000).
    pub negative_ttl_ms: u64,
    /// How often the change feed is read, in ms (default 500; minimum 10).
    pub poll_interval_ms: u64,
    /// Fail-closed bound, in ms (default 10000): when the feed has not been
    /// read for longer, cached positive answers older than this are not
    /// served.
    pub stale_bound_ms: u64,
    /// Usage records buffered (default 65536); when they are all waiting, a
    /// validation waits for room while the writer writes (1 s at most).
    pub usage_queue_capacity: u64,
    /// Longest time a usage record waits before being written, in ms
    /// (default 1000).
    pub usage_flush_interval_ms: u64,
    /// How long `hk_validator_free` keeps retrying to write buffered usage,
    /// in ms (default 5000).
    pub shutdown_flush_timeout_ms: u64,
    /// 1 (the default) to write validations to `usage_log`, 0 not to. Any
    /// other value is refused with `HK_ERR_INVALID_ARGUMENT` (an integer,
    /// not a C `bool`: a stray byte from C must be an error, not undefined
    /// behaviour).
    pub usage_log: u8,
}

/// The defaults of every option (those of `hk_validator_open`).
#[no_mangle]
pub extern "C" fn hk_options_default() -> hk_options {
    let d = Options::default();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    hk_options {
        cache_capacity: d.cache_capacity(),
        cache_ttl_ms: ms(d.cache_ttl()),
        negative_ttl_ms: ms(d.negative_ttl()),
        poll_interval_ms: ms(d.poll_interval()),
        stale_bound_ms: ms(d.stale_bound()),
        usage_queue_capacity: u64::try_from(d.usage_queue_capacity()).unwrap_or(u64::MAX),
        usage_flush_interval_ms: ms(d.usage_flush_interval()),
        shutdown_flush_timeout_ms: ms(d.shutdown_flush_timeout()),
        usage_log: u8::from(d.usage_log()),
    }
}

/// `hk_validator_open_ex` flag: share the host's cache, change-feed poller
/// and usage writer with every other process of this OS user validating
/// against the same DSN (PHP-FPM workers, other C programs) through a
/// memory-mapped region, instead of keeping them per process. If the region
/// cannot be used, the validator runs with its own cache and
/// `hk_validator_host_stats` says why. See `docs/shared-cache.md`.
pub const HK_OPEN_SHARED_CACHE: u32 = 1;

/// Every flag `hk_validator_open_ex` knows; other bits are refused.
const KNOWN_OPEN_FLAGS: u32 = HK_OPEN_SHARED_CACHE;

/// Core's options from C's and the open flags, or why they are out of range.
fn core_options_with(o: &hk_options, flags: u32) -> Result<Options, String> {
    let unknown = flags & !KNOWN_OPEN_FLAGS;
    if unknown != 0 {
        return Err(format!(
            "unknown flags 0x{unknown:x} (this library knows 0x{KNOWN_OPEN_FLAGS:x})"
        ));
    }
    Ok(core_builder(o)?
        .shared_cache(flags & HK_OPEN_SHARED_CACHE != 0)
        .build())
}

/// Core's options from C's, or why they are out of range.
#[cfg(test)]
fn core_options(o: &hk_options) -> Result<Options, String> {
    core_builder(o).map(OptionsBuilder::build)
}

/// A builder holding C's options, or why they are out of range.
fn core_builder(o: &hk_options) -> Result<OptionsBuilder, String> {
    let ms = Duration::from_millis;
    if o.usage_queue_capacity == 0 {
        return Err("usage_queue_capacity must be at least 1".into());
    }
    let queue = usize::try_from(o.usage_queue_capacity)
        .map_err(|_| "usage_queue_capacity is out of range".to_owned())?;
    let usage_log = match o.usage_log {
        0 => false,
        1 => true,
        other => return Err(format!("usage_log must be 0 or 1, not {other}")),
    };
    Ok(Options::builder()
        .cache_capacity(o.cache_capacity)
        .cache_ttl(ms(o.cache_ttl_ms))
        .negative_ttl(ms(o.negative_ttl_ms))
        .poll_interval(ms(o.poll_interval_ms))
        .stale_bound(ms(o.stale_bound_ms))
        .usage_queue_capacity(queue)
        .usage_flush_interval(ms(o.usage_flush_interval_ms))
        .shutdown_flush_timeout(ms(o.shutdown_flush_timeout_ms))
        .usage_log(usage_log))
}

/// Opens a validator on `dsn` (`sqlite:PATH` or
/// `mysql://USER:PASS@HOST:PORT/DB`) with the default options. Same as
/// `hk_validator_open_with(dsn, NULL, out)`.
///
/// Returns 0 and stores the handle in `*out`, or a negative `hk_error`
/// (`*out` untouched; `hk_last_error_message` says why).
///
/// # Safety
///
/// `dsn` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_open(
    dsn: *const c_char,
    out: *mut *mut hk_validator,
) -> c_int {
    // SAFETY: forwarded caller guarantees; NULL options are allowed.
    unsafe { hk_validator_open_with(dsn, ptr::null(), out) }
}

/// Opens a validator on `dsn` with `opts` (NULL: defaults), checking that the
/// store is reachable and its schema current. Background threads start now.
/// Same as `hk_validator_open_ex(dsn, opts, 0, out)`.
///
/// Returns 0 and stores the handle in `*out`, or a negative `hk_error`:
/// `HK_ERR_INVALID_ARGUMENT` (NULL `dsn` or `out`, option out of range),
/// `HK_ERR_INVALID_DSN`, `HK_ERR_UNAVAILABLE`, `HK_ERR_SCHEMA_OUTDATED`,
/// `HK_ERR_SCHEMA_TOO_NEW`, `HK_ERR_STORE` or `HK_ERR_INTERNAL`. On error
/// `*out` is untouched and `hk_last_error_message` says why (DSN password
/// masked).
///
/// # Safety
///
/// `dsn` is NULL or a NUL-terminated string; `opts` is NULL or points to an
/// `hk_options`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_open_with(
    dsn: *const c_char,
    opts: *const hk_options,
    out: *mut *mut hk_validator,
) -> c_int {
    // SAFETY: forwarded caller guarantees.
    unsafe { open("hk_validator_open", dsn, opts, 0, out) }
}

/// As `hk_validator_open_with`, with `flags`: 0, or `HK_OPEN_SHARED_CACHE`
/// to share the host's cache, feed poller and usage writer with the other
/// processes of this OS user on the same DSN. A flag bit this library does
/// not know is refused with `HK_ERR_INVALID_ARGUMENT` (a program built for
/// a newer library fails to open rather than silently running without
/// what it asked for). A region that cannot be used is not an error: the
/// validator opens with its own cache, and `hk_validator_host_stats`
/// answers `HK_ERR_NOT_SHARED` with the reason.
///
/// # Safety
///
/// As `hk_validator_open_with`.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_open_ex(
    dsn: *const c_char,
    opts: *const hk_options,
    flags: u32,
    out: *mut *mut hk_validator,
) -> c_int {
    // SAFETY: forwarded caller guarantees.
    unsafe { open("hk_validator_open_ex", dsn, opts, flags, out) }
}

/// The open functions' common body; `function` names the caller in messages.
///
/// # Safety
///
/// As `hk_validator_open_with`.
unsafe fn open(
    function: &str,
    dsn: *const c_char,
    opts: *const hk_options,
    flags: u32,
    out: *mut *mut hk_validator,
) -> c_int {
    guard(function, hk_error::HK_ERR_INTERNAL as c_int, || {
        if dsn.is_null() {
            return fail(function, hk_error::HK_ERR_INVALID_ARGUMENT, "dsn is NULL");
        }
        if out.is_null() {
            return fail(function, hk_error::HK_ERR_INVALID_ARGUMENT, "out is NULL");
        }
        // SAFETY: checked non-NULL; the caller guarantees NUL termination.
        let Ok(dsn) = unsafe { CStr::from_ptr(dsn) }.to_str() else {
            return fail(
                function,
                hk_error::HK_ERR_INVALID_DSN,
                "the DSN is not UTF-8",
            );
        };
        let options = if opts.is_null() {
            hk_options_default()
        } else {
            // SAFETY: checked non-NULL; the caller guarantees a readable
            // `hk_options` (`read_unaligned` spares an alignment demand).
            unsafe { opts.read_unaligned() }
        };
        let options = match core_options_with(&options, flags) {
            Ok(options) => options,
            Err(message) => return fail(function, hk_error::HK_ERR_INVALID_ARGUMENT, message),
        };
        match Validator::open(dsn, options) {
            Ok(inner) => {
                let handle = Box::into_raw(Box::new(hk_validator { inner }));
                // SAFETY: checked non-NULL; the caller guarantees writability.
                unsafe { out.write(handle) };
                succeed()
            }
            Err(e) => fail(function, e.kind().into(), e),
        }
    })
}

/// Frees a validator after writing its buffered usage records (retrying for
/// up to `shutdown_flush_timeout_ms` if the store is down) and stopping its
/// threads. NULL is ignored. The handle must not be used afterwards, by any
/// thread.
///
/// # Safety
///
/// `v` is NULL or a handle from `hk_validator_open*` not yet freed, with no
/// call on it in progress.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_free(v: *mut hk_validator) {
    if v.is_null() {
        return;
    }
    guard("hk_validator_free", (), || {
        // SAFETY: the caller hands back ownership of a handle from
        // `Box::into_raw` exactly once. Dropping flushes usage.
        drop(unsafe { Box::from_raw(v) });
    });
}

/// The scopes a caller requires, or why the list cannot be used: it cannot
/// be read, or a name breaks core's scope rule ([`check_required`]).
///
/// # Safety
///
/// As [`scope_array`].
unsafe fn required_scopes<'a>(
    scopes: *const *const c_char,
    scopes_len: usize,
) -> Result<Vec<&'a str>, String> {
    // SAFETY: forwarded caller guarantees.
    let required = unsafe { scope_array(scopes, scopes_len) }?;
    check_required(&required).map_err(|e| e.to_string())?;
    Ok(required)
}

/// Validates `key_len` bytes at `key` as a credential of `kind`, requiring
/// each of the `scopes_len` scopes in `scopes`; `ip` and `endpoint` go to
/// the usage log. `scopes` (when `scopes_len` is 0), `ip`, `endpoint` and
/// `out` may be NULL.
///
/// Returns the status. On `HK_STATUS_VALID` only, `*out` (if not NULL)
/// receives the matched credential; otherwise it is untouched and
/// `hk_last_error_message` gives the message for the HTTP client and
/// `hk_last_error_detail` the operator's detail (why the store failed).
/// Whatever the status, `hk_last_metadata` and `hk_last_rate` then give the
/// matched credential's metadata and hourly budget, until the thread's next
/// `hk_validate`.
///
/// Bad arguments are answered, never a crash (see "Bad input" at the top
/// of this header): a NULL `v` is `HK_STATUS_UNAVAILABLE`, an unknown
/// `kind` or unusable key bytes `HK_STATUS_MALFORMED`, and a scope list
/// that cannot be used (unreadable, or a name that is not a scope name)
/// `HK_STATUS_FORBIDDEN`, fail closed.
///
/// # Safety
///
/// `v` is NULL or a live handle; `key` is NULL or points to `key_len`
/// readable bytes; `scopes` is NULL or points to `scopes_len` pointers, each
/// NULL or NUL-terminated; `ip` and `endpoint` are NULL or NUL-terminated;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hk_validate(
    v: *mut hk_validator,
    kind: hk_kind_raw,
    key: *const c_char,
    key_len: usize,
    scopes: *const *const c_char,
    scopes_len: usize,
    ip: *const c_char,
    endpoint: *const c_char,
    out: *mut hk_credential,
) -> hk_status {
    guard("hk_validate", hk_status::HK_STATUS_UNAVAILABLE, || {
        last::forget();
        // SAFETY: checked for NULL; the caller guarantees a live handle.
        let Some(v) = (unsafe { v.as_ref() }) else {
            set_error("hk_validate: the validator is NULL");
            return hk_status::HK_STATUS_UNAVAILABLE;
        };
        let Some(kind) = kind_from_raw(kind) else {
            set_error(format!("hk_validate: unknown kind {kind}"));
            return hk_status::HK_STATUS_MALFORMED;
        };
        // SAFETY: forwarded caller guarantees.
        let required = match unsafe { required_scopes(scopes, scopes_len) } {
            Ok(required) => required,
            Err(message) => {
                set_error(format!("hk_validate: {message}"));
                return hk_status::HK_STATUS_FORBIDDEN;
            }
        };
        // SAFETY: forwarded caller guarantees.
        let (key, ip, endpoint) = unsafe {
            (
                key_bytes(key, key_len),
                optional_text(ip),
                optional_text(endpoint),
            )
        };
        let validation = v.inner.validate(
            &Request::new(kind, key)
                .scopes(&required)
                .ip(ip.as_deref())
                .endpoint(endpoint.as_deref()),
        );
        last::remember(&validation);
        if validation.is_valid() {
            if let (Some(credential), false) = (&validation.credential, out.is_null()) {
                // SAFETY: non-NULL; the caller guarantees writability.
                unsafe { write_credential(out, kind, credential) };
            }
            clear_error();
        } else {
            // The message may go to an HTTP client; where the store is and
            // who connects to it is for operators only.
            set_error_with_detail(
                validation.message(),
                validation.error.as_ref().map(ToString::to_string),
            );
        }
        validation.status.into()
    })
}

/// Waits up to `timeout_ms` for every usage record queued so far to be
/// written. Returns 0, `HK_ERR_TIMEOUT` (records stay queued),
/// `HK_ERR_INVALID_ARGUMENT` for a NULL validator. Validation never needs
/// this; it is for tests and orderly hand-overs.
///
/// # Safety
///
/// `v` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_flush(v: *const hk_validator, timeout_ms: u32) -> c_int {
    const F: &str = "hk_validator_flush";
    guard(F, hk_error::HK_ERR_INTERNAL as c_int, || {
        // SAFETY: checked for NULL; the caller guarantees a live handle.
        let Some(v) = (unsafe { v.as_ref() }) else {
            return fail(
                F,
                hk_error::HK_ERR_INVALID_ARGUMENT,
                "the validator is NULL",
            );
        };
        if v.inner.flush(Duration::from_millis(u64::from(timeout_ms))) {
            succeed()
        } else {
            fail(
                F,
                hk_error::HK_ERR_TIMEOUT,
                format_args!("usage records not written within {timeout_ms} ms"),
            )
        }
    })
}

#[cfg(test)]
mod tests;
