//! Administrator passwords: the length rule and argon2id hashing, in one
//! place. The store keeps only the PHC string this module makes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use heratio_keys_core::ErrorKind;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::blocking::Blocking;

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

/// Largest argon2 memory cost a stored hash may ask of a login (256 MiB;
/// ours use 19 MiB), so a tampered row cannot make each check huge.
const MAX_VERIFY_BLOCKS: usize = 256 * 1024;

/// Whether `password` matches the stored PHC string. The parameters are read
/// from the string, so hashes made with older parameters still verify.
/// Over-long input is refused before hashing. `memory` is argon2's working
/// memory, grown to the hash's memory cost and kept for the next check.
fn verify_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_VERIFY_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version.unwrap_or_default(), params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// Password checks running now in this process, and the most there ever
/// were at once (whatever the number of servers in it).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The most login password checks (19 MiB of argon2 memory each) that ever
/// ran at once in this process: at most `Config::login_concurrency` per
/// server. For tests and diagnostics.
#[doc(hidden)]
#[must_use]
pub fn peak_password_checks() -> usize {
    PEAK.load(Ordering::Relaxed)
}

thread_local! {
    /// argon2's working memory on a check thread, kept between checks.
    /// Allocating 19 MiB per check and freeing it left a block resident in
    /// each allocator arena that happened to serve one (measured: resident
    /// memory grew with the number of checks, not with how many ran at
    /// once); one block per check thread is exactly the bound.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Bounds the login password checks that run at once: each needs 19 MiB for
/// argon2, so without a bound a burst of logins would take memory without
/// limit. The checks run on as many threads of their own as there are
/// permits, each with its block of working memory ([`MEMORY`]): at most
/// `login_concurrency` × 19 MiB, allocated on first use and then reused.
#[derive(Debug)]
pub(crate) struct Checks {
    permits: Arc<Semaphore>,
    threads: Blocking,
}

/// The right to run one password check.
#[derive(Debug)]
pub(crate) struct CheckPermit {
    permit: OwnedSemaphorePermit,
}

impl Checks {
    pub(crate) fn new(concurrency: usize) -> std::io::Result<Checks> {
        let concurrency = concurrency.max(1);
        Ok(Checks {
            permits: Arc::new(Semaphore::new(concurrency)),
            threads: Blocking::new("password", concurrency)?,
        })
    }

    /// A permit, or `None` when all are taken: the caller answers at once
    /// instead of queueing.
    pub(crate) fn try_start(&self) -> Option<CheckPermit> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .ok()
            .map(|permit| CheckPermit { permit })
    }

    /// [`verify_in`] on the check threads. The permit travels with the work,
    /// so a client that hangs up mid-check does not free its slot before
    /// the memory is free.
    pub(crate) async fn verify(&self, permit: CheckPermit, password: String, phc: String) -> bool {
        self.threads
            .run(move || {
                let matched = {
                    let _running = Running::start();
                    MEMORY.with_borrow_mut(|memory| verify_in(&password, &phc, memory))
                };
                // Only now, so the count never exceeds the permits.
                drop(permit.permit);
                matched
            })
            .await
            .unwrap_or(false)
    }
}

/// Counts a running check (undone on drop, panics included).
struct Running;

impl Running {
    fn start() -> Running {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
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

    fn verify(password: &str, phc: &str) -> bool {
        verify_in(password, phc, &mut Vec::new())
    }
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
    fn reused_memory_verifies_any_parameters_like_argon2_itself() {
        use argon2::password_hash::PasswordVerifier;
        let mut memory = Vec::new();
        let ours = hash("correct horse battery").unwrap();
        assert!(verify_in("correct horse battery", &ours, &mut memory));
        assert_eq!(memory.len(), 19 * 1024);
        // Smaller, older parameters, in the same (larger) memory.
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        for (m, t, p) in [(4096, 1, 1), (8192, 3, 2)] {
            let params = Params::new(m, t, p, None).unwrap();
            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let phc = argon
                .hash_password(b"older hash!!", &salt)
                .unwrap()
                .to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            for guess in ["older hash!!", "older hash!?", ""] {
                assert_eq!(
                    verify_in(guess, &phc, &mut memory),
                    argon.verify_password(guess.as_bytes(), &parsed).is_ok(),
                    "{phc} {guess:?}"
                );
            }
        }
        assert_eq!(
            memory.len(),
            19 * 1024,
            "never shrunk, never grown past need"
        );
        // A stored hash asking for 1 GiB is refused, not computed.
        let huge = ours.replace("m=19456", "m=1048576");
        assert!(!verify_in("correct horse battery", &huge, &mut memory));
        assert_eq!(memory.len(), 19 * 1024);
        assert!(!verify_in(
            "x",
            "$argon2id$v=19$m=19456,t=2,p=1$bad",
            &mut memory
        ));
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
