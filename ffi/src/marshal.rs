//! Reading what C passes in and writing what goes back, NULL-safe: key
//! bytes, optional C strings, scope arrays, and C strings cut at a character
//! boundary. No policy here: what an unusable argument means is decided by
//! the export that reads it.

use std::borrow::Cow;
use std::ffi::{c_char, CStr};
use std::ptr;

/// The bytes `key[0..key_len]`; empty for NULL (answered `malformed`).
///
/// # Safety
///
/// `key` is NULL or points to `key_len` readable bytes.
pub(crate) unsafe fn key_bytes<'a>(key: *const c_char, key_len: usize) -> &'a [u8] {
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
pub(crate) unsafe fn optional_text<'a>(s: *const c_char) -> Option<Cow<'a, str>> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    Some(heratio_keys_core::request_text(
        unsafe { CStr::from_ptr(s) }.to_bytes(),
    ))
}

/// The strings of the `scopes` argument (`scopes_len` of them), or what is
/// wrong with it: a NULL array with `scopes_len > 0`, a NULL or non-UTF-8
/// element. Whether the names are acceptable scopes is core's rule, checked
/// by the caller.
///
/// # Safety
///
/// `scopes` is NULL or points to `scopes_len` pointers, each NULL or a
/// NUL-terminated string.
pub(crate) unsafe fn scope_array<'a>(
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
pub(crate) unsafe fn write_c_string(dst: *mut c_char, cap: usize, text: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn scope_arrays_say_what_is_wrong() {
        let read = c"read".as_ptr();
        // SAFETY: live arrays of the stated lengths below.
        unsafe {
            assert_eq!(scope_array(ptr::null(), 0), Ok(vec![]));
            assert_eq!(
                scope_array(ptr::null(), 2),
                Err("scopes is NULL but scopes_len is 2".to_owned())
            );
            assert_eq!(
                scope_array([read, ptr::null()].as_ptr(), 2),
                Err("scopes[1] is NULL".to_owned())
            );
            let not_utf8 = c"r\xffad".as_ptr();
            assert_eq!(
                scope_array([not_utf8].as_ptr(), 1),
                Err("scopes[0] is not UTF-8".to_owned())
            );
            assert_eq!(scope_array([read].as_ptr(), 1), Ok(vec!["read"]));
        }
    }
}
