//! What the last `hk_validate` on a thread found beyond `hk_credential`:
//! the matched credential's metadata and its hourly budget, read with
//! [`hk_last_metadata`] and [`hk_last_rate`].
//!
//! `hk_credential` cannot grow (callers allocate it; existing binaries know
//! its size), so these travel like `hk_last_error_message`: per thread,
//! replaced by every `hk_validate`, copied out on request.

use std::cell::RefCell;
use std::ffi::{c_char, c_int};
use std::ptr::addr_of_mut;

use heratio_keys_core::model::Metadata;
use heratio_keys_core::{RateInfo, Validation};

use crate::error::hk_error;
use crate::marshal::write_c_string;
use crate::panic::guard;

/// A buffer of this many bytes always holds `hk_last_metadata`'s answer:
/// the largest metadata the store accepts (4096 bytes of compact JSON) and
/// the terminating NUL.
pub const HK_METADATA_MAX: usize = 4097;

/// The hourly budget of a rate-limited credential as the last
/// `hk_validate` on this thread left it (`hk_last_rate`). A plain struct the
/// caller owns; its size is fixed: any later information comes through a
/// new function, never by growing it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct hk_rate {
    /// Most accepted requests per clock hour (UTC): `X-RateLimit-Limit`.
    pub limit: i64,
    /// Requests left this hour after this one, as far as this process
    /// knows (0 when refused): `X-RateLimit-Remaining`.
    pub remaining: i64,
    /// When the validation returned `HK_STATUS_RATE_LIMITED`: seconds until
    /// the next clock hour, when the budget renews (1 to 3600), for
    /// `Retry-After`. -1 when the request was within the limit.
    pub retry_after: i64,
}

/// What the calling thread's last `hk_validate` found.
#[derive(Default)]
struct Last {
    metadata: Option<Metadata>,
    rate: Option<RateInfo>,
}

thread_local! {
    static LAST: RefCell<Last> = RefCell::new(Last::default());
}

/// Forgets the last validation's findings (every `hk_validate` starts
/// here, so a refused argument or a caught panic leaves nothing stale).
pub(crate) fn forget() {
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.metadata = None;
            l.rate = None;
        }
    });
}

/// Records what `validation` found. Cheap on the hot path: the metadata is
/// shared with the cache (a reference count), the budget is copied.
pub(crate) fn remember(validation: &Validation) {
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.metadata = validation
                .credential
                .as_ref()
                .and_then(|c| c.metadata.clone());
            l.rate = validation.rate;
        }
    });
}

/// Copies the metadata of the credential matched by the last `hk_validate`
/// on *this thread* into `buf`: a JSON object in compact form (keys in
/// sorted order), NUL-terminated, cut at a character boundary to fit `len`
/// bytes. The empty string when that validation matched no credential or
/// the credential has no metadata. A credential is matched for
/// `HK_STATUS_VALID` and also for `HK_STATUS_FORBIDDEN`,
/// `HK_STATUS_REVOKED`, `HK_STATUS_EXPIRED`, `HK_STATUS_CLIENT_INACTIVE`,
/// `HK_STATUS_RATE_LIMITED` and `HK_STATUS_IP_DENIED`.
///
/// Returns the metadata's full length in bytes (without the NUL), like
/// `snprintf`: a result `>= len` means the copy was cut (and is not valid
/// JSON); a buffer of `HK_METADATA_MAX` bytes is always enough. `buf` may be
/// NULL when `len` is 0, to ask for the length. Neither sets nor clears the
/// last error.
///
/// # Safety
///
/// `buf` is NULL or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn hk_last_metadata(buf: *mut c_char, len: usize) -> usize {
    // No panic guard needed for the copy itself (`try_with`, `try_borrow`,
    // a copy bounded by `len`), but one costs nothing here and keeps the
    // rule simple: no export can unwind into C.
    guard("hk_last_metadata", 0, || {
        LAST.try_with(|l| {
            let Ok(last) = l.try_borrow() else {
                return 0;
            };
            let text = last.metadata.as_ref().map_or("", Metadata::as_str);
            if !buf.is_null() && len > 0 {
                // SAFETY: the caller guarantees `len >= 1` writable bytes.
                unsafe { write_c_string(buf, len, text) };
            }
            text.len()
        })
        .unwrap_or(0)
    })
}

/// Writes to `*out` the hourly budget of the credential the last
/// `hk_validate` on *this thread* counted against its rate limit: that call
/// returned `HK_STATUS_VALID` or `HK_STATUS_RATE_LIMITED` for a credential
/// with a limit.
///
/// Returns 0 (`*out` written), `HK_ERR_NO_RATE_LIMIT` when that validation
/// counted nothing (the credential is unlimited, none was matched, or it
/// was refused for another reason first; `*out` untouched), or
/// `HK_ERR_INVALID_ARGUMENT` for a NULL `out`. Neither sets nor clears the
/// last error: `hk_last_error_message` still describes the validation.
///
/// # Safety
///
/// `out` is NULL or points to a writable `hk_rate`.
#[no_mangle]
pub unsafe extern "C" fn hk_last_rate(out: *mut hk_rate) -> c_int {
    guard("hk_last_rate", hk_error::HK_ERR_INTERNAL as c_int, || {
        if out.is_null() {
            return hk_error::HK_ERR_INVALID_ARGUMENT as c_int;
        }
        let rate = LAST
            .try_with(|l| l.try_borrow().ok().and_then(|l| l.rate))
            .ok()
            .flatten();
        let Some(rate) = rate else {
            return hk_error::HK_ERR_NO_RATE_LIMIT as c_int;
        };
        // SAFETY: checked non-NULL; the caller guarantees writability.
        // Written field by field: uninitialised caller memory is never read.
        unsafe {
            addr_of_mut!((*out).limit).write(rate.limit);
            addr_of_mut!((*out).remaining).write(rate.remaining);
            addr_of_mut!((*out).retry_after).write(if rate.admitted {
                -1
            } else {
                rate.reset_after
            });
        }
        hk_error::HK_OK as c_int
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::ptr;

    use heratio_keys_core::model::MAX_METADATA_LEN;
    use heratio_keys_core::{
        issue, store, Actor, Dsn, IssueRequest, Kind, NewClient, Scopes, Source,
    };

    use super::*;
    use crate::error::{last_error, set_error};
    use crate::status::hk_status;
    use crate::validator::{hk_validate, hk_validator, hk_validator_free, hk_validator_open};

    #[test]
    fn the_metadata_buffer_holds_the_largest_metadata() {
        const { assert!(HK_METADATA_MAX == MAX_METADATA_LEN + 1) };
    }

    /// A fresh SQLite store with a key limited to `limit` per hour carrying
    /// `metadata`, and an unlimited key without metadata; a validator on it.
    fn fixture(
        dir: &tempfile::TempDir,
        limit: i64,
        metadata: &str,
    ) -> (*mut hk_validator, String, String) {
        let dsn = format!("sqlite:{}", dir.path().join("keys.db").display());
        let store = store::open(&Dsn::parse(&dsn).expect("a valid DSN")).expect("the store opens");
        store.install().expect("the schema installs");
        let actor = Actor::new("ffi-tests", Source::Library);
        let client = store
            .create_client(
                &NewClient {
                    name: "ffi".into(),
                    email: "ffi@example.org".into(),
                    organization: None,
                },
                &actor,
            )
            .expect("a client")
            .id;
        let key = |rate_limit, metadata: Option<Metadata>| {
            let request = IssueRequest {
                client_id: client,
                name: "k".into(),
                scopes: Scopes::all(),
                expires_at: None,
                rate_limit,
                metadata,
            };
            issue(store.as_ref(), Kind::ApiKey, &request, &actor)
                .expect("issued")
                .key
                .expose()
                .to_owned()
        };
        let limited = key(
            Some(limit),
            Some(Metadata::parse(metadata).expect("an object")),
        );
        let unlimited = key(None, None);
        let dsn = std::ffi::CString::new(dsn).expect("no NUL");
        let mut v = ptr::null_mut();
        // SAFETY: a NUL-terminated DSN and a writable out pointer.
        assert_eq!(unsafe { hk_validator_open(dsn.as_ptr(), &mut v) }, 0);
        (v, limited, unlimited)
    }

    fn validate(v: *mut hk_validator, key: &str) -> hk_status {
        // SAFETY: a live handle and key; NULL scopes, ip, endpoint, out.
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
    }

    fn metadata() -> String {
        let mut buf = [0 as c_char; HK_METADATA_MAX];
        // SAFETY: a live buffer of that length.
        let n = unsafe { hk_last_metadata(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by the call.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .expect("UTF-8");
        assert_eq!(n, text.len());
        text.to_owned()
    }

    fn rate() -> Result<hk_rate, c_int> {
        let mut out = hk_rate {
            limit: 7,
            remaining: 7,
            retry_after: 7,
        };
        // SAFETY: a writable hk_rate.
        match unsafe { hk_last_rate(&mut out) } {
            0 => Ok(out),
            code => {
                assert_eq!(out.limit, 7, "untouched on failure");
                Err(code)
            }
        }
    }

    #[test]
    fn metadata_and_budget_of_the_last_validation() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let doc = r#"{"heratio_user_id": 3, "nested": {"list": [1, "two", null, true, 2.5]}}"#;
        let (v, limited, unlimited) = fixture(&dir, 3, doc);
        let compact = r#"{"heratio_user_id":3,"nested":{"list":[1,"two",null,true,2.5]}}"#;
        let no_rate = Err(hk_error::HK_ERR_NO_RATE_LIMIT as c_int);

        // Before any validation on this thread: nothing.
        assert_eq!(metadata(), "");
        assert_eq!(rate(), no_rate);

        for remaining in [2, 1, 0] {
            assert_eq!(validate(v, &limited), hk_status::HK_STATUS_VALID);
            assert_eq!(metadata(), compact);
            assert_eq!(
                rate(),
                Ok(hk_rate {
                    limit: 3,
                    remaining,
                    retry_after: -1
                })
            );
        }
        // Over the limit: refused, with Retry-After, and the accessors
        // leave the validation's message alone.
        assert_eq!(validate(v, &limited), hk_status::HK_STATUS_RATE_LIMITED);
        let refused = rate().expect("counted");
        assert_eq!((refused.limit, refused.remaining), (3, 0));
        assert!((1..=3600).contains(&refused.retry_after), "{refused:?}");
        assert_eq!(metadata(), compact, "the refused key is still matched");
        assert_eq!(last_error(), "Rate limit of 3 requests per hour exceeded.");

        // An unlimited key without metadata replaces both.
        assert_eq!(validate(v, &unlimited), hk_status::HK_STATUS_VALID);
        assert_eq!(metadata(), "");
        assert_eq!(rate(), no_rate);
        assert_eq!(last_error(), "", "hk_last_rate does not set the error");

        // A refused argument (NULL validator) forgets the previous answer.
        assert_eq!(validate(v, &limited), hk_status::HK_STATUS_RATE_LIMITED);
        assert_eq!(
            validate(ptr::null_mut(), &limited),
            hk_status::HK_STATUS_UNAVAILABLE
        );
        assert_eq!(metadata(), "");
        assert_eq!(rate(), no_rate);

        // Each thread sees its own last validation.
        assert_eq!(validate(v, &unlimited), hk_status::HK_STATUS_VALID);
        let v_addr = v as usize;
        let limited_key = limited.clone();
        let other = std::thread::spawn(move || {
            assert_eq!(metadata(), "");
            let status = validate(v_addr as *mut hk_validator, &limited_key);
            (status, metadata(), rate().map(|r| r.remaining))
        })
        .join()
        .expect("the thread ran");
        assert_eq!(
            other,
            (hk_status::HK_STATUS_RATE_LIMITED, compact.to_owned(), Ok(0))
        );
        assert_eq!(metadata(), "");

        // SAFETY: a live handle, freed once, no other call in progress.
        unsafe { hk_validator_free(v) };
    }

    #[test]
    fn lengths_and_null_arguments_follow_the_conventions() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (v, limited, _) = fixture(&dir, 100, r#"{"team": "harvest"}"#);
        assert_eq!(validate(v, &limited), hk_status::HK_STATUS_VALID);
        let full = r#"{"team":"harvest"}"#;
        set_error("untouched");
        // SAFETY: NULL with length 0 asks for the length; a NULL hk_rate
        // is refused; a short buffer is cut and NUL-terminated.
        unsafe {
            assert_eq!(hk_last_metadata(ptr::null_mut(), 0), full.len());
            assert_eq!(hk_last_metadata(ptr::null_mut(), 5), full.len());
            assert_eq!(
                hk_last_rate(ptr::null_mut()),
                hk_error::HK_ERR_INVALID_ARGUMENT as c_int
            );
            let mut short = [1 as c_char; 6];
            assert_eq!(
                hk_last_metadata(short.as_mut_ptr(), short.len()),
                full.len()
            );
            assert_eq!(CStr::from_ptr(short.as_ptr()).to_str(), Ok("{\"tea"));
        }
        assert_eq!(last_error(), "untouched", "the accessors never touch it");
        // SAFETY: a live handle, freed once.
        unsafe { hk_validator_free(v) };
    }
}
