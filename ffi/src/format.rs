//! `hk_check_format`: the offline check of a key's shape, core's
//! [`check_format`] with C arguments.

use std::ffi::c_char;

use heratio_keys_core::check_format;

use crate::marshal::key_bytes;
use crate::panic::guard;
use crate::status::{hk_kind_raw, hk_status, kind_from_raw};

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
        check_format(kind, unsafe { key_bytes(key, key_len) }).into()
    })
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;

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
    fn a_null_key_is_malformed() {
        // SAFETY: NULL is allowed.
        assert_eq!(
            unsafe { hk_check_format(1, ptr::null(), 53) },
            hk_status::HK_STATUS_MALFORMED
        );
    }
}
