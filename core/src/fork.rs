//! Fork detection for pre-forking servers (PHP-FPM, Apache prefork, nginx).
//!
//! Threads do not survive `fork()` and sockets or SQLite handles must not be
//! shared between parent and child, so a validator notices that it now lives
//! in a child and starts its background threads and connections afresh
//! there. A `pthread_atfork` child handler bumps a counter; comparing it is one
//! relaxed atomic load on the hot path, where `getpid()` would be a syscall.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Only async-signal-safe work is allowed here: one atomic add.
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Installs the fork handler (once per process image; children inherit it).
pub(crate) fn register() {
    REGISTER.call_once(|| {
        // SAFETY: the handler is a plain `extern "C" fn` doing one atomic
        // add, which is async-signal-safe; the other two handlers are absent.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
}

/// Increases by one in a child after every `fork()`.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}
