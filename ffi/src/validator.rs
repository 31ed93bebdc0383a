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
    /// Usage records buffered before new ones are dropped (default 65536).
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
mod tests {
    use heratio_keys_core::{store, Dsn};

    use super::*;
    use crate::error::{hk_last_error_message, last_error};

    #[test]
    fn null_arguments_are_answered_not_crashed() {
        let mut out = ptr::null_mut();
        // SAFETY: NULL is allowed everywhere below.
        unsafe {
            assert_eq!(
                hk_validator_open(ptr::null(), &mut out),
                hk_error::HK_ERR_INVALID_ARGUMENT as c_int
            );
            assert!(out.is_null());
            assert_eq!(
                hk_validator_open(c"sqlite:/nonexistent".as_ptr(), ptr::null_mut()),
                hk_error::HK_ERR_INVALID_ARGUMENT as c_int
            );
            assert_eq!(
                hk_validator_open(c"postgres://x".as_ptr(), &mut out),
                hk_error::HK_ERR_INVALID_DSN as c_int
            );
            assert!(out.is_null());
            assert!(!last_error().is_empty());
            assert_eq!(
                hk_validate(
                    ptr::null_mut(),
                    1,
                    ptr::null(),
                    0,
                    ptr::null(),
                    0,
                    ptr::null(),
                    ptr::null(),
                    ptr::null_mut()
                ),
                hk_status::HK_STATUS_UNAVAILABLE
            );
            assert_eq!(
                hk_validator_flush(ptr::null(), 0),
                hk_error::HK_ERR_INVALID_ARGUMENT as c_int
            );
            hk_validator_free(ptr::null_mut());
            assert_eq!(
                hk_last_error_message(ptr::null_mut(), 0),
                last_error().len()
            );
        }
    }

    #[test]
    fn default_options_round_trip_to_the_core_defaults() {
        let core = Options::default();
        let through_c = core_options(&hk_options_default()).expect("valid defaults");
        assert_eq!(through_c.cache_capacity(), core.cache_capacity());
        assert_eq!(through_c.cache_ttl(), core.cache_ttl());
        assert_eq!(through_c.negative_ttl(), core.negative_ttl());
        assert_eq!(through_c.poll_interval(), core.poll_interval());
        assert_eq!(through_c.stale_bound(), core.stale_bound());
        assert_eq!(through_c.usage_log(), core.usage_log());
        assert_eq!(
            through_c.usage_queue_capacity(),
            core.usage_queue_capacity()
        );
        assert_eq!(
            through_c.usage_flush_interval(),
            core.usage_flush_interval()
        );
        assert_eq!(
            through_c.shutdown_flush_timeout(),
            core.shutdown_flush_timeout()
        );
    }

    /// A validator on a fresh SQLite store with the current schema.
    fn open_fresh(dir: &tempfile::TempDir) -> *mut hk_validator {
        open_fresh_ex(dir, 0)
    }

    /// The DSN of the store in `dir`, installed if new.
    fn fresh_dsn(dir: &tempfile::TempDir) -> std::ffi::CString {
        let path = dir.path().join("keys.db");
        let dsn = format!("sqlite:{}", path.display());
        if !path.exists() {
            store::open(&Dsn::parse(&dsn).expect("a valid DSN"))
                .expect("the store opens")
                .install()
                .expect("the schema installs");
        }
        std::ffi::CString::new(dsn).expect("no NUL")
    }

    /// As `open_fresh`, with `hk_validator_open_ex` flags.
    fn open_fresh_ex(dir: &tempfile::TempDir, flags: u32) -> *mut hk_validator {
        let dsn = fresh_dsn(dir);
        let mut v = ptr::null_mut();
        // SAFETY: a NUL-terminated DSN and a writable out pointer.
        let rc = unsafe { hk_validator_open_ex(dsn.as_ptr(), ptr::null(), flags, &mut v) };
        assert_eq!(rc, 0, "{}", last_error());
        v
    }

    /// Removes a region's three files (`.region`, `.init`, `.leader`): the
    /// tests leave nothing in /dev/shm.
    fn remove_region(region: &std::path::Path) {
        for suffix in ["region", "init", "leader"] {
            let _ = std::fs::remove_file(region.with_extension(suffix));
        }
    }

    #[test]
    fn open_ex_refuses_unknown_flags() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let dsn = fresh_dsn(&dir);
        for flags in [2u32, 1 << 31, HK_OPEN_SHARED_CACHE | 4] {
            let mut v = ptr::null_mut();
            // SAFETY: valid pointers; refused before anything is opened.
            let rc = unsafe { hk_validator_open_ex(dsn.as_ptr(), ptr::null(), flags, &mut v) };
            assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
            assert!(v.is_null(), "out untouched");
            assert!(
                last_error().starts_with("hk_validator_open_ex: unknown flags 0x"),
                "{}",
                last_error()
            );
        }
        // SAFETY: NULL DSN is answered.
        let rc = unsafe { hk_validator_open_ex(ptr::null(), ptr::null(), 1, ptr::null_mut()) };
        assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
        // Options still count: flags do not bypass their checks.
        let mut o = hk_options_default();
        o.usage_log = 7;
        let mut v = ptr::null_mut();
        // SAFETY: valid pointers.
        let rc = unsafe { hk_validator_open_ex(dsn.as_ptr(), &o, 1, &mut v) };
        assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
        assert!(core_options_with(&hk_options_default(), 1)
            .expect("known")
            .shared_cache());
        assert!(!core_options_with(&hk_options_default(), 0)
            .expect("known")
            .shared_cache());
    }

    #[test]
    fn host_stats_of_a_private_validator_say_not_shared() {
        use crate::stats::{hk_host_stats, hk_validator_host_stats};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let v = open_fresh(&dir);
        let mut h = hk_host_stats {
            hits: 99,
            ..Default::default()
        };
        // SAFETY: a live handle and a writable struct.
        let rc = unsafe { hk_validator_host_stats(v, &mut h) };
        assert_eq!(rc, hk_error::HK_ERR_NOT_SHARED as c_int);
        assert_eq!(h.hits, 99, "out untouched");
        assert_eq!(
            last_error(),
            "hk_validator_host_stats: the validator was opened without HK_OPEN_SHARED_CACHE"
        );
        // SAFETY: a live handle, freed once.
        unsafe { hk_validator_free(v) };
    }

    #[test]
    fn shared_validators_share_fills_and_one_leads() {
        use crate::stats::{hk_host_stats, hk_validator_host_stats};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let a = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
        let b = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
        // SAFETY: live handles.
        let region = unsafe { &*a }
            .inner
            .shared_region_path()
            .expect("a shares the region");
        let host = |v: *mut hk_validator| {
            let mut h = hk_host_stats::default();
            // SAFETY: a live handle and a writable struct.
            let rc = unsafe { hk_validator_host_stats(v, &mut h) };
            assert_eq!(rc, 0, "{}", last_error());
            h
        };
        let (ha, hb) = (host(a), host(b));
        assert_eq!(ha.leader + hb.leader, 1, "exactly one leads: {ha:?} {hb:?}");
        assert_eq!(ha.leader_pid, std::process::id());
        let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
        let validate = |v: *mut hk_validator| {
            // SAFETY: a live handle and key.
            unsafe {
                hk_validate(
                    v,
                    1,
                    key.as_ptr().cast(),
                    key.len(),
                    ptr::null(),
                    0,
                    ptr::null(),
                    ptr::null(),
                    ptr::null_mut(),
                )
            }
        };
        assert_eq!(validate(a), hk_status::HK_STATUS_NOT_FOUND);
        let misses = host(b).misses;
        assert_eq!(validate(b), hk_status::HK_STATUS_NOT_FOUND);
        let hb = host(b);
        assert_eq!(hb.misses, misses, "b found a's negative answer");
        assert!(hb.hits >= 1 && hb.fills >= 1 && hb.entries >= 1, "{hb:?}");
        // SAFETY: live handles, freed once.
        unsafe {
            hk_validator_free(a);
            hk_validator_free(b);
        }
        remove_region(&region);
    }

    #[test]
    fn an_unusable_region_falls_back_and_says_why() {
        use std::os::unix::fs::PermissionsExt;

        use crate::stats::{hk_host_stats, hk_validator_host_stats};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let probe = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
        // SAFETY: a live handle.
        let region = unsafe { &*probe }
            .inner
            .shared_region_path()
            .expect("shared");
        // SAFETY: a live handle, freed once.
        unsafe { hk_validator_free(probe) };
        std::fs::set_permissions(&region, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let v = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
        let mut h = hk_host_stats::default();
        // SAFETY: a live handle and a writable struct.
        let rc = unsafe { hk_validator_host_stats(v, &mut h) };
        assert_eq!(rc, hk_error::HK_ERR_NOT_SHARED as c_int);
        let why = last_error();
        assert!(
            why.contains("runs with its own cache") && why.contains("private"),
            "{why}"
        );
        assert_eq!(h, hk_host_stats::default(), "out untouched");
        // SAFETY: a live handle, freed once.
        unsafe { hk_validator_free(v) };
        remove_region(&region);
    }

    #[test]
    fn unusable_required_scopes_are_forbidden_with_a_message() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let v = open_fresh(&dir);
        let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
        let validate = |scopes: *const *const c_char, n: usize| {
            // SAFETY: a live handle, key and scope array of the stated sizes.
            unsafe {
                hk_validate(
                    v,
                    1,
                    key.as_ptr().cast(),
                    key.len(),
                    scopes,
                    n,
                    ptr::null(),
                    ptr::null(),
                    ptr::null_mut(),
                )
            }
        };
        let forbidden = hk_status::HK_STATUS_FORBIDDEN;
        assert_eq!(validate(ptr::null(), 2), forbidden);
        assert_eq!(
            last_error(),
            "hk_validate: scopes is NULL but scopes_len is 2"
        );
        let read = c"read".as_ptr();
        assert_eq!(validate([read, ptr::null()].as_ptr(), 2), forbidden);
        assert_eq!(last_error(), "hk_validate: scopes[1] is NULL");
        // A bad name is core's judgement (check_required), its message too.
        for bad in [c"read ", c"", c"a,b"] {
            assert_eq!(validate([read, bad.as_ptr()].as_ptr(), 2), forbidden);
            let name = bad.to_str().expect("UTF-8");
            assert!(
                last_error().contains(&format!("{name:?}")),
                "{}",
                last_error()
            );
        }
        // Usable scopes reach the validator: this well-formed key is unknown.
        assert_eq!(
            validate([read, c"*".as_ptr()].as_ptr(), 2),
            hk_status::HK_STATUS_NOT_FOUND
        );
        // SAFETY: a live handle, freed once.
        unsafe { hk_validator_free(v) };
    }

    #[test]
    fn usage_log_accepts_only_zero_or_one() {
        let mut o = hk_options_default();
        assert_eq!(o.usage_log, 1);
        o.usage_log = 0;
        assert!(!core_options(&o).expect("0 is off").usage_log());
        o.usage_log = 2;
        let err = core_options(&o).expect_err("2 is neither");
        assert!(err.contains("usage_log"), "{err}");
        let mut v = ptr::null_mut();
        // SAFETY: valid pointers; the options are refused before any use.
        let rc = unsafe { hk_validator_open_with(c"sqlite:/unused".as_ptr(), &o, &mut v) };
        assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
        assert!(v.is_null());
    }

    /// When the store fails under a validation, the message (for an HTTP
    /// client) says only that validation is unavailable; where the store is
    /// goes to the detail, for operators.
    #[test]
    fn store_details_stay_out_of_the_client_message() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let v = open_fresh(&dir);
        let db = dir.path().join("keys.db");
        rusqlite::Connection::open(&db)
            .and_then(|c| c.execute_batch("DROP TABLE api_key"))
            .expect("the table goes away under the running validator");
        let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
        // SAFETY: a live handle and key.
        let status = unsafe {
            hk_validate(
                v,
                1,
                key.as_ptr().cast(),
                key.len(),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            )
        };
        assert_eq!(status, hk_status::HK_STATUS_UNAVAILABLE);
        let message = last_error();
        let detail = crate::error::last_error_detail();
        assert_eq!(message, "API key validation is temporarily unavailable.");
        let place = dir.path().display().to_string();
        assert!(!message.contains(&place), "{message}");
        assert!(
            detail.contains(&place),
            "the detail names the store: {detail}"
        );
        // SAFETY: a live handle, freed once.
        unsafe { hk_validator_free(v) };
    }

    /// The issue-13 shape on MariaDB: host, port and user of the store
    /// (and a password holding `/ @ : % #`) reach only the operator's
    /// detail, never the message meant for an HTTP client.
    #[test]
    fn mariadb_host_port_user_and_password_stay_out_of_the_client_message() {
        let password = "pa/ss@w:rd%23#x";
        let dsn = std::ffi::CString::new(format!(
            "mysql://hk-fixture-user:{password}@127.0.0.1:1/keys"
        ))
        .expect("no NUL");
        let mut v = ptr::null_mut();
        // SAFETY: a NUL-terminated DSN and a writable out pointer.
        let rc = unsafe { hk_validator_open(dsn.as_ptr(), &mut v) };
        let (message, detail) = if rc == 0 {
            let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
            // SAFETY: a live handle and key.
            let status = unsafe {
                hk_validate(
                    v,
                    1,
                    key.as_ptr().cast(),
                    key.len(),
                    ptr::null(),
                    0,
                    ptr::null(),
                    ptr::null(),
                    ptr::null_mut(),
                )
            };
            assert_eq!(status, hk_status::HK_STATUS_UNAVAILABLE);
            let answer = (last_error(), crate::error::last_error_detail());
            // SAFETY: a live handle, freed once.
            unsafe { hk_validator_free(v) };
            let (message, _) = &answer;
            for place in ["127.0.0.1", "hk-fixture-user", ":1/"] {
                assert!(!message.contains(place), "{place} in {message}");
            }
            answer
        } else {
            // Refused at open: an operator's error, which may name the
            // host, but never the password.
            (last_error(), crate::error::last_error_detail())
        };
        for secret in [password, "pa/ss", "w:rd"] {
            assert!(!message.contains(secret), "{message}");
            assert!(!detail.contains(secret), "{detail}");
        }
        assert!(
            format!("{message} {detail}").contains("127.0.0.1"),
            "the operator learns which store: {message} / {detail}"
        );
    }
}
