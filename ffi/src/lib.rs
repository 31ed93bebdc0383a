//! # heratio-keys-ffi
//!
//! The C ABI of heratio-keys: `libheratio_keys.so` / `libheratio_keys.a`
//! and the cbindgen-generated header `include/heratio_keys.h`.
//!
//! This crate translates types and errors and nothing more: every decision is
//! taken by [`heratio_keys_core::Validator`]. Conventions (see
//! `docs/c-api.md` and the header's top comment):
//!
//! - `hk_validator` is opaque and thread-safe: share one per process.
//! - Enum values are explicit and never reused. Enum-typed *inputs* are
//!   received as plain `uint32_t` on the Rust side, so an out-of-range value
//!   from C is answered with a status instead of being undefined behaviour.
//! - Every `extern "C"` body runs inside [`std::panic::catch_unwind`]; a panic
//!   becomes `HK_ERR_INTERNAL` / `HK_STATUS_UNAVAILABLE` and a message.
//! - NULL, non-UTF-8 and embedded-NUL inputs are answered with a status.
//! - Output parameters are written only on success.
//! - `hk_last_error_message` is per thread.

#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, addr_of_mut};
use std::time::Duration;

use heratio_keys_core::{check_format, Kind, Options, Request, Status, Validator};

/// Which family a credential belongs to. Values are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum hk_kind {
    /// `hk_api_…`: REST API clients.
    HK_KIND_API_KEY = 1,
    /// `hk_ai_…`: AI servers.
    HK_KIND_AI_TOKEN = 2,
}

/// `hk_kind` as received from C: any 32-bit value, checked before use.
/// (Exported to C under the name `hk_kind`; see cbindgen.toml.)
pub type hk_kind_raw = u32;

/// The outcome of a validation. Values are stable and never reused; later
/// statuses take new numbers after 8, so keep a `default:` branch.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum hk_status {
    /// Accepted (HTTP 200).
    HK_STATUS_VALID = 0,
    /// Wrong length, prefix, alphabet or checksum; also a NULL key (HTTP 401).
    HK_STATUS_MALFORMED = 1,
    /// A well-formed credential of the other kind (HTTP 401).
    HK_STATUS_WRONG_KIND = 2,
    /// Well-formed but unknown (HTTP 401).
    HK_STATUS_NOT_FOUND = 3,
    /// Revoked, by itself or by its client's deactivation (HTTP 401).
    HK_STATUS_REVOKED = 4,
    /// Past its expiry time (HTTP 401).
    HK_STATUS_EXPIRED = 5,
    /// Its client is deactivated (HTTP 401).
    HK_STATUS_CLIENT_INACTIVE = 6,
    /// Valid, but lacks a required scope (HTTP 403).
    HK_STATUS_FORBIDDEN = 7,
    /// The store cannot be reached and no cached answer may be used; also a
    /// NULL validator handle or an internal error (HTTP 503).
    HK_STATUS_UNAVAILABLE = 8,
}

/// `hk_status` as received from C: any 32-bit value, checked before use.
/// (Exported to C under the name `hk_status`; see cbindgen.toml.)
pub type hk_status_raw = u32;

/// Return codes of the functions returning `int` (`hk_validator_open`,
/// `hk_validator_open_with`, `hk_validator_stats`, `hk_validator_flush`):
/// 0 on success, one of these negative values otherwise. Values are stable
/// and never reused. `hk_last_error_message` gives the details.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum hk_error {
    /// Success.
    HK_OK = 0,
    /// A required pointer is NULL (`dsn`, `out`, the validator), or an
    /// option is out of range.
    HK_ERR_INVALID_ARGUMENT = -1,
    /// The DSN is not `sqlite:PATH` or `mysql://USER:PASS@HOST:PORT/DB`
    /// (or is not UTF-8).
    HK_ERR_INVALID_DSN = -2,
    /// The store cannot be reached (connection refused, bad credentials,
    /// file not openable). Retrying later may succeed.
    HK_ERR_UNAVAILABLE = -3,
    /// The schema is missing or older than this library: run `keygen install`.
    HK_ERR_SCHEMA_OUTDATED = -4,
    /// The schema is newer than this library understands: upgrade the library.
    HK_ERR_SCHEMA_TOO_NEW = -5,
    /// The store answered with an error other than an outage.
    HK_ERR_STORE = -6,
    /// A bug inside the library (including a caught panic) or a resource
    /// failure such as being unable to start a thread.
    HK_ERR_INTERNAL = -7,
    /// `hk_validator_flush` did not finish within its timeout (the store may
    /// be down; the records stay queued).
    HK_ERR_TIMEOUT = -8,
}

/// Size of `hk_credential.name`: holds any label the store accepts
/// (255 characters of up to 4 UTF-8 bytes) plus the terminating NUL.
pub const HK_NAME_MAX: usize = 1024;

/// Size of `hk_credential.scopes`: holds the largest scope list the store
/// accepts (64 scopes of 64 bytes, 63 commas) plus the terminating NUL.
pub const HK_SCOPES_MAX: usize = 4160;

/// A validator: store connection, cache, change-feed poller and usage
/// flusher. Opaque and thread-safe: open one per process, share it between
/// threads, free it once with `hk_validator_free`.
#[derive(Debug)]
pub struct hk_validator {
    inner: Validator,
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
    /// Whether validations are written to `usage_log` (default true).
    pub usage_log: bool,
}

/// A snapshot of a validator's counters (`hk_validator_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct hk_stats {
    /// Validations answered.
    pub validations: u64,
    /// Answers served from the cache.
    pub cache_hits: u64,
    /// Answers that needed a store query.
    pub cache_misses: u64,
    /// Entries cached now (approximate).
    pub cache_entries: u64,
    /// Store lookups issued.
    pub store_queries: u64,
    /// Store lookups that failed.
    pub store_errors: u64,
    /// Successful change-feed polls.
    pub feed_polls: u64,
    /// Failed change-feed polls.
    pub feed_errors: u64,
    /// Digests evicted because of change-feed rows.
    pub feed_evictions: u64,
    /// Milliseconds since the feed was last read successfully; -1 if never.
    pub feed_lag_ms: i64,
    /// Usage records waiting in the queue.
    pub usage_queued: u64,
    /// Usage records written.
    pub usage_written: u64,
    /// Usage records dropped (queue full, or unwritable at shutdown).
    pub usage_dropped: u64,
    /// Failed usage batch writes (retried).
    pub usage_write_errors: u64,
}

/// The credential a successful `hk_validate` matched. Written only when
/// `hk_validate` returns `HK_STATUS_VALID`; owns no heap memory (nothing to
/// free). Strings are NUL-terminated UTF-8, cut at a character boundary if
/// they would not fit (which a store written by `keygen` never causes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct hk_credential {
    /// The owning client's id (`client.id`).
    pub client_id: i64,
    /// The key's or token's id (`api_key.id` / `ai_token.id`).
    pub key_id: i64,
    /// Expiry, in milliseconds since the Unix epoch (UTC); -1 if it never
    /// expires.
    pub expires_at: i64,
    /// The credential's kind (the kind that was asked for).
    pub kind: hk_kind,
    /// Number of scopes in `scopes`.
    pub scope_count: u32,
    /// True if `name` was cut to fit.
    pub name_truncated: bool,
    /// True if `scopes` was cut to fit.
    pub scopes_truncated: bool,
    /// The label given at generation (`production`, …).
    pub name: [c_char; HK_NAME_MAX],
    /// The granted scopes, comma-separated in grant order (`read,write`);
    /// `*` means every scope. Scope names never contain a comma.
    pub scopes: [c_char; HK_SCOPES_MAX],
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(message: impl Into<String>) {
    let message = message.into();
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = message);
}

fn clear_error() {
    let _ = LAST_ERROR.try_with(|e| e.borrow_mut().clear());
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

/// Runs `f`, turning a panic into `on_panic` and an error message, so that
/// no unwind ever crosses the C boundary.
fn guard<T>(function: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            set_error(format!(
                "{function}: internal error: {}",
                panic_message(&*payload)
            ));
            on_panic
        }
    }
}

fn kind_from_raw(kind: hk_kind_raw) -> Option<Kind> {
    match kind {
        1 => Some(Kind::ApiKey),
        2 => Some(Kind::AiToken),
        _ => None,
    }
}

fn status_to_c(status: Status) -> hk_status {
    match status {
        Status::Valid => hk_status::HK_STATUS_VALID,
        Status::Malformed => hk_status::HK_STATUS_MALFORMED,
        Status::WrongKind => hk_status::HK_STATUS_WRONG_KIND,
        Status::NotFound => hk_status::HK_STATUS_NOT_FOUND,
        Status::Revoked => hk_status::HK_STATUS_REVOKED,
        Status::Expired => hk_status::HK_STATUS_EXPIRED,
        Status::ClientInactive => hk_status::HK_STATUS_CLIENT_INACTIVE,
        Status::Forbidden => hk_status::HK_STATUS_FORBIDDEN,
        Status::Unavailable => hk_status::HK_STATUS_UNAVAILABLE,
    }
}

fn error_code(kind: heratio_keys_core::ErrorKind) -> hk_error {
    use heratio_keys_core::ErrorKind as K;
    match kind {
        K::InvalidDsn => hk_error::HK_ERR_INVALID_DSN,
        K::Unavailable => hk_error::HK_ERR_UNAVAILABLE,
        K::SchemaOutdated => hk_error::HK_ERR_SCHEMA_OUTDATED,
        K::SchemaTooNew => hk_error::HK_ERR_SCHEMA_TOO_NEW,
        K::Store => hk_error::HK_ERR_STORE,
        K::InvalidInput => hk_error::HK_ERR_INVALID_ARGUMENT,
        _ => hk_error::HK_ERR_INTERNAL,
    }
}

/// The bytes `key[0..key_len]`; empty for NULL (answered `malformed`).
///
/// # Safety
///
/// `key` is NULL or points to `key_len` readable bytes.
unsafe fn key_bytes<'a>(key: *const c_char, key_len: usize) -> &'a [u8] {
    if key.is_null() || key_len > isize::MAX as usize {
        return &[];
    }
    // SAFETY: the caller guarantees `key_len` readable bytes at `key`.
    unsafe { std::slice::from_raw_parts(key.cast::<u8>(), key_len) }
}

/// An optional C string, non-UTF-8 bytes replaced (it only goes to the
/// usage log).
///
/// # Safety
///
/// `s` is NULL or a NUL-terminated string.
unsafe fn optional_text<'a>(s: *const c_char) -> Option<std::borrow::Cow<'a, str>> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    Some(unsafe { CStr::from_ptr(s) }.to_string_lossy())
}

/// The required scopes, or a description of what is wrong with the array.
///
/// # Safety
///
/// `scopes` is NULL or points to `scopes_len` pointers, each NULL or a
/// NUL-terminated string.
unsafe fn required_scopes<'a>(
    scopes: *const *const c_char,
    scopes_len: usize,
) -> Result<Vec<&'a str>, String> {
    if scopes_len == 0 {
        return Ok(Vec::new());
    }
    if scopes.is_null() {
        return Err(format!("scopes is NULL but scopes_len is {scopes_len}"));
    }
    if scopes_len > isize::MAX as usize / std::mem::size_of::<*const c_char>() {
        return Err(format!("scopes_len {scopes_len} is out of range"));
    }
    // SAFETY: the caller guarantees `scopes_len` readable pointers.
    let pointers = unsafe { std::slice::from_raw_parts(scopes, scopes_len) };
    pointers
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            if p.is_null() {
                return Err(format!("scopes[{i}] is NULL"));
            }
            // SAFETY: the caller guarantees a NUL-terminated string.
            unsafe { CStr::from_ptr(p) }
                .to_str()
                .map_err(|_| format!("scopes[{i}] is not UTF-8"))
        })
        .collect()
}

/// Copies `text` into `dst` (capacity `cap`), cut at a character boundary,
/// NUL-terminated. Returns whether it was cut.
///
/// # Safety
///
/// `dst` points to `cap >= 1` writable bytes.
unsafe fn write_c_string(dst: *mut c_char, cap: usize, text: &str) -> bool {
    let mut end = text.len().min(cap - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // SAFETY: `end < cap` bytes fit in `dst`, plus the NUL at `end`; the
    // source is a live `&str` that cannot overlap a C caller's buffer.
    unsafe {
        ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), dst, end);
        dst.add(end).write(0);
    }
    end < text.len()
}

/// Writes a matched credential to `out`.
///
/// # Safety
///
/// `out` points to a writable `hk_credential`.
unsafe fn write_credential(
    out: *mut hk_credential,
    kind: Kind,
    credential: &heratio_keys_core::Credential,
) {
    let scopes = credential.scopes.to_stored();
    let kind = match kind {
        Kind::ApiKey => hk_kind::HK_KIND_API_KEY,
        Kind::AiToken => hk_kind::HK_KIND_AI_TOKEN,
    };
    // SAFETY: `out` is writable (caller); fields are written through raw
    // pointers so uninitialised caller memory is never read or referenced.
    unsafe {
        addr_of_mut!((*out).client_id).write(credential.client_id);
        addr_of_mut!((*out).key_id).write(credential.id);
        addr_of_mut!((*out).expires_at).write(credential.expires_at.unwrap_or(-1));
        addr_of_mut!((*out).kind).write(kind);
        addr_of_mut!((*out).scope_count)
            .write(u32::try_from(credential.scopes.as_slice().len()).unwrap_or(u32::MAX));
        let name_cut = write_c_string(
            addr_of_mut!((*out).name).cast::<c_char>(),
            HK_NAME_MAX,
            &credential.name,
        );
        let scopes_cut = write_c_string(
            addr_of_mut!((*out).scopes).cast::<c_char>(),
            HK_SCOPES_MAX,
            &scopes,
        );
        addr_of_mut!((*out).name_truncated).write(name_cut);
        addr_of_mut!((*out).scopes_truncated).write(scopes_cut);
    }
}

/// The defaults of every option (those of `hk_validator_open`).
#[no_mangle]
pub extern "C" fn hk_options_default() -> hk_options {
    let d = Options::default();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    hk_options {
        cache_capacity: d.get_cache_capacity(),
        cache_ttl_ms: ms(d.get_cache_ttl()),
        negative_ttl_ms: ms(d.get_negative_ttl()),
        poll_interval_ms: ms(d.get_poll_interval()),
        stale_bound_ms: ms(d.get_stale_bound()),
        usage_queue_capacity: d.get_usage_queue_capacity() as u64,
        usage_flush_interval_ms: ms(d.get_usage_flush_interval()),
        shutdown_flush_timeout_ms: ms(d.get_shutdown_flush_timeout()),
        usage_log: d.get_usage_log(),
    }
}

fn core_options(o: &hk_options) -> Result<Options, String> {
    let ms = Duration::from_millis;
    if o.usage_queue_capacity == 0 {
        return Err("usage_queue_capacity must be at least 1".into());
    }
    let queue = usize::try_from(o.usage_queue_capacity)
        .map_err(|_| "usage_queue_capacity is out of range".to_owned())?;
    Ok(Options::default()
        .cache_capacity(o.cache_capacity)
        .cache_ttl(ms(o.cache_ttl_ms))
        .negative_ttl(ms(o.negative_ttl_ms))
        .poll_interval(ms(o.poll_interval_ms))
        .stale_bound(ms(o.stale_bound_ms))
        .usage_queue_capacity(queue)
        .usage_flush_interval(ms(o.usage_flush_interval_ms))
        .shutdown_flush_timeout(ms(o.shutdown_flush_timeout_ms))
        .usage_log(o.usage_log))
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
    guard(
        "hk_validator_open",
        hk_error::HK_ERR_INTERNAL as c_int,
        || {
            let fail = |code: hk_error, message: String| {
                set_error(format!("hk_validator_open: {message}"));
                code as c_int
            };
            if dsn.is_null() {
                return fail(hk_error::HK_ERR_INVALID_ARGUMENT, "dsn is NULL".into());
            }
            if out.is_null() {
                return fail(hk_error::HK_ERR_INVALID_ARGUMENT, "out is NULL".into());
            }
            // SAFETY: checked non-NULL; the caller guarantees NUL termination.
            let Ok(dsn) = unsafe { CStr::from_ptr(dsn) }.to_str() else {
                return fail(hk_error::HK_ERR_INVALID_DSN, "the DSN is not UTF-8".into());
            };
            let options = if opts.is_null() {
                hk_options_default()
            } else {
                // SAFETY: checked non-NULL; the caller guarantees a readable
                // `hk_options` (`read_unaligned` spares an alignment demand).
                unsafe { opts.read_unaligned() }
            };
            let options = match core_options(&options) {
                Ok(options) => options,
                Err(message) => return fail(hk_error::HK_ERR_INVALID_ARGUMENT, message),
            };
            match Validator::open(dsn, options) {
                Ok(inner) => {
                    let handle = Box::into_raw(Box::new(hk_validator { inner }));
                    // SAFETY: checked non-NULL; the caller guarantees writability.
                    unsafe { out.write(handle) };
                    clear_error();
                    hk_error::HK_OK as c_int
                }
                Err(e) => fail(error_code(e.kind()), e.to_string()),
            }
        },
    )
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

/// Validates `key_len` bytes at `key` as a credential of `kind`, requiring
/// each of the `scopes_len` scopes in `scopes`; `ip` and `endpoint` go to
/// the usage log. `scopes` (when `scopes_len` is 0), `ip`, `endpoint` and
/// `out` may be NULL.
///
/// Returns the status. On `HK_STATUS_VALID` only, `*out` (if not NULL)
/// receives the matched credential; otherwise it is untouched and
/// `hk_last_error_message` gives the message for the HTTP client.
///
/// Bad arguments never crash: a NULL key is `HK_STATUS_MALFORMED` (as are
/// embedded NUL, non-UTF-8 and over-long input), a NULL `v` is
/// `HK_STATUS_UNAVAILABLE`, an unknown `kind` is `HK_STATUS_MALFORMED`, and
/// an unusable scope list (NULL array with `scopes_len > 0`, a NULL or
/// non-UTF-8 element) is `HK_STATUS_FORBIDDEN` (fail closed).
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
        if validation.is_valid() {
            if let (Some(credential), false) = (&validation.credential, out.is_null()) {
                // SAFETY: non-NULL; the caller guarantees writability.
                unsafe { write_credential(out, kind, credential) };
            }
            clear_error();
        } else {
            let mut message = validation.message();
            if let Some(error) = &validation.error {
                message = format!("{message} ({error})");
            }
            set_error(message);
        }
        status_to_c(validation.status)
    })
}

/// The offline check: length, prefix, alphabet and checksum of `key_len`
/// bytes at `key`; no store, no usage record. Returns `HK_STATUS_VALID`,
/// `HK_STATUS_WRONG_KIND` (well-formed for the other kind) or
/// `HK_STATUS_MALFORMED` (also for a NULL key or an unknown kind).
///
/// # Safety
///
/// `key` is NULL or points to `key_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hk_check_format(
    kind: hk_kind_raw,
    key: *const c_char,
    key_len: usize,
) -> hk_status {
    guard("hk_check_format", hk_status::HK_STATUS_MALFORMED, || {
        let Some(kind) = kind_from_raw(kind) else {
            return hk_status::HK_STATUS_MALFORMED;
        };
        // SAFETY: forwarded caller guarantees.
        status_to_c(check_format(kind, unsafe { key_bytes(key, key_len) }))
    })
}

/// Fills `*out` with a snapshot of the validator's counters. Returns 0, or
/// `HK_ERR_INVALID_ARGUMENT` for a NULL argument (`*out` untouched).
///
/// # Safety
///
/// `v` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hk_validator_stats(v: *const hk_validator, out: *mut hk_stats) -> c_int {
    guard(
        "hk_validator_stats",
        hk_error::HK_ERR_INTERNAL as c_int,
        || {
            // SAFETY: checked for NULL; the caller guarantees a live handle.
            let Some(v) = (unsafe { v.as_ref() }) else {
                set_error("hk_validator_stats: the validator is NULL");
                return hk_error::HK_ERR_INVALID_ARGUMENT as c_int;
            };
            if out.is_null() {
                set_error("hk_validator_stats: out is NULL");
                return hk_error::HK_ERR_INVALID_ARGUMENT as c_int;
            }
            let s = v.inner.stats();
            let stats = hk_stats {
                validations: s.validations,
                cache_hits: s.cache_hits,
                cache_misses: s.cache_misses,
                cache_entries: s.cache_entries,
                store_queries: s.store_queries,
                store_errors: s.store_errors,
                feed_polls: s.feed_polls,
                feed_errors: s.feed_errors,
                feed_evictions: s.feed_evictions,
                feed_lag_ms: s
                    .feed_lag_ms
                    .map_or(-1, |lag| i64::try_from(lag).unwrap_or(i64::MAX)),
                usage_queued: s.usage_queued,
                usage_written: s.usage_written,
                usage_dropped: s.usage_dropped,
                usage_write_errors: s.usage_write_errors,
            };
            // SAFETY: checked non-NULL; the caller guarantees writability.
            unsafe { out.write_unaligned(stats) };
            clear_error();
            hk_error::HK_OK as c_int
        },
    )
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
    guard(
        "hk_validator_flush",
        hk_error::HK_ERR_INTERNAL as c_int,
        || {
            // SAFETY: checked for NULL; the caller guarantees a live handle.
            let Some(v) = (unsafe { v.as_ref() }) else {
                set_error("hk_validator_flush: the validator is NULL");
                return hk_error::HK_ERR_INVALID_ARGUMENT as c_int;
            };
            if v.inner.flush(Duration::from_millis(u64::from(timeout_ms))) {
                clear_error();
                hk_error::HK_OK as c_int
            } else {
                set_error(format!(
                    "hk_validator_flush: usage records not written within {timeout_ms} ms"
                ));
                hk_error::HK_ERR_TIMEOUT as c_int
            }
        },
    )
}

/// The stable name of a status (`"valid"`, `"wrong_kind"`, …), as in the
/// usage log, the CLI and the PHP extension; `"unknown"` for a value this
/// library does not know. Static storage: never free it.
#[no_mangle]
pub extern "C" fn hk_status_name(s: hk_status_raw) -> *const c_char {
    let name: &'static CStr = match s {
        0 => c"valid",
        1 => c"malformed",
        2 => c"wrong_kind",
        3 => c"not_found",
        4 => c"revoked",
        5 => c"expired",
        6 => c"client_inactive",
        7 => c"forbidden",
        8 => c"unavailable",
        _ => c"unknown",
    };
    name.as_ptr()
}

/// The HTTP status a server should answer with: 200 (valid), 403
/// (forbidden), 503 (unavailable), 401 otherwise; 500 for a value this
/// library does not know.
#[no_mangle]
pub extern "C" fn hk_status_http(s: hk_status_raw) -> u16 {
    Status::from_code(i64::from(s)).map_or(500, Status::http_status)
}

/// The library version, `"MAJOR.MINOR.PATCH"` (equal to `HK_VERSION` when
/// header and library match). Static storage: never free it.
#[no_mangle]
pub extern "C" fn hk_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0")
        .as_ptr()
        .cast::<c_char>()
}

/// Copies the message describing the last call on *this thread* that did not
/// succeed (an `int` function returning non-zero, `hk_validate` returning
/// anything but `HK_STATUS_VALID`) into `buf`, NUL-terminated and cut at a
/// character boundary to fit `len` bytes. A successful call clears it.
///
/// Returns the message's full length in bytes (without the NUL), like
/// `snprintf`: a result `>= len` means it was cut. `buf` may be NULL when
/// `len` is 0, to ask for the length. Messages never contain a key or a
/// password.
///
/// # Safety
///
/// `buf` is NULL or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn hk_last_error_message(buf: *mut c_char, len: usize) -> usize {
    guard("hk_last_error_message", 0, || {
        LAST_ERROR
            .try_with(|e| {
                let message = e.borrow();
                if !buf.is_null() && len > 0 {
                    // SAFETY: the caller guarantees `len >= 1` writable bytes.
                    unsafe { write_c_string(buf, len, &message) };
                }
                message.len()
            })
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        let mut buf = [0 as c_char; 512];
        // SAFETY: a live buffer of that length.
        unsafe { hk_last_error_message(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: the function NUL-terminates.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn guard_turns_a_panic_into_a_value_and_a_message() {
        let got = guard("hk_test", 42, || -> i32 { panic!("boom") });
        assert_eq!(got, 42);
        assert_eq!(last_error(), "hk_test: internal error: boom");
        let got = guard("hk_test", 0, || 7);
        assert_eq!(got, 7);
    }

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
                hk_check_format(1, ptr::null(), 53),
                hk_status::HK_STATUS_MALFORMED
            );
            assert_eq!(
                hk_validator_stats(ptr::null(), ptr::null_mut()),
                hk_error::HK_ERR_INVALID_ARGUMENT as c_int
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
    fn check_format_handles_kinds_and_bytes() {
        let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
        let check = |kind: u32, bytes: &[u8]| {
            // SAFETY: a live slice.
            unsafe { hk_check_format(kind, bytes.as_ptr().cast(), bytes.len()) }
        };
        assert_eq!(check(1, key.as_bytes()), hk_status::HK_STATUS_VALID);
        assert_eq!(check(2, key.as_bytes()), hk_status::HK_STATUS_WRONG_KIND);
        assert_eq!(check(3, key.as_bytes()), hk_status::HK_STATUS_MALFORMED);
        assert_eq!(check(0, key.as_bytes()), hk_status::HK_STATUS_MALFORMED);
        assert_eq!(
            check(1, &key.as_bytes()[..52]),
            hk_status::HK_STATUS_MALFORMED
        );
        let mut with_nul = key.as_bytes().to_vec();
        with_nul[20] = 0;
        assert_eq!(check(1, &with_nul), hk_status::HK_STATUS_MALFORMED);
        let mut not_utf8 = key.as_bytes().to_vec();
        not_utf8[20] = 0xff;
        assert_eq!(check(1, &not_utf8), hk_status::HK_STATUS_MALFORMED);
    }

    #[test]
    fn statuses_match_the_core_contract() {
        for status in Status::ALL {
            let code = u32::from(status.code());
            assert_eq!(status_to_c(status) as u32, code);
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(hk_status_name(code)) };
            assert_eq!(name.to_str().ok(), Some(status.name()));
            assert_eq!(hk_status_http(code), status.http_status());
        }
        assert_eq!(hk_status_http(9), 500);
        // SAFETY: static NUL-terminated string.
        assert_eq!(
            unsafe { CStr::from_ptr(hk_status_name(u32::MAX)) }.to_str(),
            Ok("unknown")
        );
        assert_eq!(hk_kind::HK_KIND_API_KEY as u8, Kind::ApiKey.code());
        assert_eq!(hk_kind::HK_KIND_AI_TOKEN as u8, Kind::AiToken.code());
    }

    #[test]
    fn default_options_round_trip_to_the_core_defaults() {
        let core = Options::default();
        let through_c = core_options(&hk_options_default()).expect("valid defaults");
        assert_eq!(through_c.get_cache_capacity(), core.get_cache_capacity());
        assert_eq!(through_c.get_cache_ttl(), core.get_cache_ttl());
        assert_eq!(through_c.get_negative_ttl(), core.get_negative_ttl());
        assert_eq!(through_c.get_poll_interval(), core.get_poll_interval());
        assert_eq!(through_c.get_stale_bound(), core.get_stale_bound());
        assert_eq!(through_c.get_usage_log(), core.get_usage_log());
        assert_eq!(
            through_c.get_usage_queue_capacity(),
            core.get_usage_queue_capacity()
        );
        assert_eq!(
            through_c.get_usage_flush_interval(),
            core.get_usage_flush_interval()
        );
        assert_eq!(
            through_c.get_shutdown_flush_timeout(),
            core.get_shutdown_flush_timeout()
        );
    }

    #[test]
    fn buffers_hold_the_largest_values_the_store_accepts() {
        use heratio_keys_core::model::{MAX_SCOPES, MAX_SCOPE_LEN};
        const { assert!(HK_SCOPES_MAX > MAX_SCOPES * (MAX_SCOPE_LEN + 1) - 1) };
        const { assert!(HK_NAME_MAX > 255 * 4) };
    }

    #[test]
    fn strings_are_cut_at_character_boundaries() {
        let mut buf = [1 as c_char; 4];
        // SAFETY: a live buffer of that length.
        let cut = unsafe { write_c_string(buf.as_mut_ptr(), buf.len(), "aéé") };
        assert!(cut);
        // SAFETY: NUL-terminated by the call.
        assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str(), Ok("aé"));
        // SAFETY: as above.
        let cut = unsafe { write_c_string(buf.as_mut_ptr(), buf.len(), "ab") };
        assert!(!cut);
    }
}
