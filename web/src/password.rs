//! Administrator passwords: the length rule and argon2id hashing, in one
//! place. The store keeps only the PHC string this module makes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use heratio_keys_core::ErrorKind;

use crate::error::Error;

/// Shortest accepted admin password.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest accepted admin password (bytes).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Checks a new password's length: at least [`MIN_PASSWORD_LEN`]
/// characters, at most [`MAX_PASSWORD_LEN`] bytes (hashing cost grows with
/// length, so the cap keeps a login from being a denial of service).
pub(crate) fn check(password: &str) -> Result<(), Error> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the password must have at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the password must have at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

/// argon2id with the OWASP-recommended parameters (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random salt.
pub(crate) fn hash(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("OS random generator: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("salt: {e}")))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::new(ErrorKind::Internal, format!("password hash: {e}")))
}

/// Whether `password` matches the stored PHC string. The parameters are read
/// from the string, so hashes made with older parameters still verify.
/// Over-long input is refused before hashing.
pub(crate) fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that the
/// answer takes as long as for a real account.
pub(crate) fn dummy_hash() -> String {
    hash("heratio-keys dummy password").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::model::check_admin_name;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("x", "not a hash"));
        assert_ne!(h, hash("correct horse battery").unwrap());
    }

    #[test]
    fn names_and_passwords_are_checked() {
        // Names are the core's rule; asserted here because create_admin
        // relies on it refusing before anything is stored.
        assert!(check_admin_name("alice").is_ok());
        assert!(check_admin_name("a.b_c@d-e").is_ok());
        for bad in ["", "a b", "ä", &"x".repeat(65)] {
            assert!(check_admin_name(bad).is_err(), "{bad}");
        }
        assert!(check("short").is_err());
        assert!(check("twelve chars").is_ok());
        assert!(check(&"x".repeat(1025)).is_err());
    }
}
