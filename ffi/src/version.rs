//! `hk_version`: the library's version. The header's own version macros
//! (`HK_VERSION`, …) are written by `ffi/build.rs` from the same
//! `Cargo.toml`.

use std::ffi::c_char;

/// The library version, `"MAJOR.MINOR.PATCH"` (equal to `HK_VERSION` when
/// header and library match). Static storage: never free it.
#[no_mangle]
pub extern "C" fn hk_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0")
        .as_ptr()
        .cast::<c_char>()
}
