//! `hk_credential`: the credential a successful `hk_validate` matched,
//! written field by field into memory the caller owns.

use std::ffi::c_char;
use std::ptr::addr_of_mut;

use heratio_keys_core::{Credential, Kind};

use crate::marshal::write_c_string;
use crate::status::hk_kind;

/// Size of `hk_credential.name`: holds any label the store accepts
/// (255 characters of up to 4 UTF-8 bytes) plus the terminating NUL.
pub const HK_NAME_MAX: usize = 1024;

/// Size of `hk_credential.scopes`: holds the largest scope list the store
/// accepts (64 scopes of 64 bytes, 63 commas) plus the terminating NUL.
pub const HK_SCOPES_MAX: usize = 4160;

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

/// Writes a matched credential of `kind` to `out`.
///
/// # Safety
///
/// `out` points to a writable `hk_credential`.
pub(crate) unsafe fn write_credential(
    out: *mut hk_credential,
    kind: Kind,
    credential: &Credential,
) {
    let scopes = credential.scopes.to_stored();
    // SAFETY: `out` is writable (caller); fields are written through raw
    // pointers so uninitialised caller memory is never read or referenced.
    unsafe {
        addr_of_mut!((*out).client_id).write(credential.client_id);
        addr_of_mut!((*out).key_id).write(credential.id);
        addr_of_mut!((*out).expires_at).write(credential.expires_at.unwrap_or(-1));
        addr_of_mut!((*out).kind).write(kind.into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_hold_the_largest_values_the_store_accepts() {
        use heratio_keys_core::model::{MAX_SCOPES, MAX_SCOPE_LEN};
        const { assert!(HK_SCOPES_MAX > MAX_SCOPES * (MAX_SCOPE_LEN + 1) - 1) };
        const { assert!(HK_NAME_MAX > 255 * 4) };
    }

    /// Callers allocate `hk_credential`: binaries built against an older
    /// header must keep working, so its size and layout never change.
    #[test]
    fn the_credential_keeps_its_size() {
        assert_eq!(std::mem::size_of::<hk_credential>(), 5224);
        assert_eq!(std::mem::offset_of!(hk_credential, name), 34);
        assert_eq!(
            std::mem::offset_of!(hk_credential, scopes),
            34 + HK_NAME_MAX
        );
    }
}
