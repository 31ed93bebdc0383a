//! Errors across the boundary: [`hk_error`] (what the `int` functions
//! return), the one translation from core's [`ErrorKind`], and the
//! per-thread message behind [`hk_last_error_message`].

use std::cell::RefCell;
use std::ffi::{c_char, c_int};
use std::fmt::Display;

use heratio_keys_core::ErrorKind;

use crate::marshal::write_c_string;

/// Return codes of the functions returning `int` (`hk_validator_open`,
/// `hk_validator_open_with`, `hk_validator_open_ex`, `hk_validator_stats`,
/// `hk_validator_host_stats`, `hk_validator_flush`, `hk_last_rate`): 0 on
/// success, one of these negative values otherwise. Values are stable and
/// never reused; later codes take numbers below -10.
/// `hk_last_error_message` gives the details (except for `hk_last_rate`,
/// which leaves it to describe the validation).
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
    /// `hk_last_rate`: the last `hk_validate` on this thread counted no
    /// request against an hourly rate limit (the credential is unlimited,
    /// none was matched, or it was refused for another reason first).
    HK_ERR_NO_RATE_LIMIT = -9,
    /// `hk_validator_host_stats`: the validator does not share the host
    /// region (it was opened without `HK_OPEN_SHARED_CACHE`, or the region
    /// could not be used and it runs with its own cache);
    /// `hk_last_error_message` says which, and why.
    HK_ERR_NOT_SHARED = -10,
}

impl From<ErrorKind> for hk_error {
    /// The one map from core's error kinds to C codes.
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidDsn => hk_error::HK_ERR_INVALID_DSN,
            ErrorKind::Unavailable => hk_error::HK_ERR_UNAVAILABLE,
            ErrorKind::SchemaOutdated => hk_error::HK_ERR_SCHEMA_OUTDATED,
            ErrorKind::SchemaTooNew => hk_error::HK_ERR_SCHEMA_TOO_NEW,
            ErrorKind::Store => hk_error::HK_ERR_STORE,
            ErrorKind::InvalidInput => hk_error::HK_ERR_INVALID_ARGUMENT,
            // Not expected from the calls the C API makes (NotFound,
            // Conflict, Internal, kinds added later): a library-side fault.
            _ => hk_error::HK_ERR_INTERNAL,
        }
    }
}

/// The last failure on one thread: the message (safe for an HTTP client
/// when it comes from `hk_validate`) and the operator's detail.
#[derive(Default)]
struct LastError {
    message: String,
    detail: String,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError::default());
}

/// Sets the calling thread's last error; its detail is the message itself.
pub(crate) fn set_error(message: impl Into<String>) {
    let message = message.into();
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.detail.clone_from(&message);
        e.message = message;
    });
}

/// Sets the calling thread's last error with a separate operator detail
/// (host, port, user of the store, the driver's words), which must never be
/// shown to an HTTP client. No detail: the message stands for both.
pub(crate) fn set_error_with_detail(message: String, detail: Option<String>) {
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.detail = detail.unwrap_or_else(|| message.clone());
        e.message = message;
    });
}

/// Clears the calling thread's last error (a call succeeded).
pub(crate) fn clear_error() {
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = LastError::default());
}

/// A failed `int` function: records `"{function}: {message}"` and returns
/// `code` as C sees it.
pub(crate) fn fail(function: &str, code: hk_error, message: impl Display) -> c_int {
    set_error(format!("{function}: {message}"));
    code as c_int
}

/// A successful `int` function: clears the last error, returns `HK_OK`.
pub(crate) fn succeed() -> c_int {
    clear_error();
    hk_error::HK_OK as c_int
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
    // SAFETY: forwarded caller guarantee.
    unsafe { copy_last(buf, len, |e| &e.message) }
}

/// Like `hk_last_error_message`, but the operator's detail of the same
/// failure: for `hk_validate` answering `HK_STATUS_UNAVAILABLE`, why the
/// store could not answer (which store, which host and port, the driver's
/// words — for logs, never for an HTTP client); for other failures the same
/// text as `hk_last_error_message`. Never contains a key or a password.
///
/// # Safety
///
/// `buf` is NULL or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn hk_last_error_detail(buf: *mut c_char, len: usize) -> usize {
    // SAFETY: forwarded caller guarantee.
    unsafe { copy_last(buf, len, |e| &e.detail) }
}

/// Copies one part of the last error into `buf`, `snprintf`-style.
///
/// # Safety
///
/// `buf` is NULL or points to `len` writable bytes.
unsafe fn copy_last(buf: *mut c_char, len: usize, part: fn(&LastError) -> &String) -> usize {
    // No panic guard: nothing here can panic (`try_with`, `try_borrow`, a
    // copy bounded by `len`), and the guard itself reports through this
    // message.
    LAST_ERROR
        .try_with(|e| {
            let Ok(last) = e.try_borrow() else {
                return 0;
            };
            let text = part(&last);
            if !buf.is_null() && len > 0 {
                // SAFETY: the caller guarantees `len >= 1` writable bytes.
                unsafe { write_c_string(buf, len, text) };
            }
            text.len()
        })
        .unwrap_or(0)
}

/// The calling thread's last error, read through the C function.
#[cfg(test)]
pub(crate) fn last_error() -> String {
    read_last(hk_last_error_message)
}

/// The calling thread's last error detail, read through the C function.
#[cfg(test)]
pub(crate) fn last_error_detail() -> String {
    read_last(hk_last_error_detail)
}

#[cfg(test)]
fn read_last(read: unsafe extern "C" fn(*mut c_char, usize) -> usize) -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: a live buffer of that length.
    unsafe { read(buf.as_mut_ptr(), buf.len()) };
    // SAFETY: the function NUL-terminates.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_buffer_asks_for_the_length() {
        set_error("hk_test: something failed");
        // SAFETY: NULL with length 0 is allowed.
        let full = unsafe { hk_last_error_message(std::ptr::null_mut(), 0) };
        assert_eq!(full, last_error().len());
        assert_eq!(succeed(), hk_error::HK_OK as c_int);
        assert_eq!(last_error(), "");
    }
}
