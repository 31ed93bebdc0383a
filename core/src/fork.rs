//! Fork detection for pre-forking servers (PHP-FPM, Apache prefork, nginx).
//!
//! Threads do not survive `fork()` and sockets or SQLite handles must not be
//! shared between parent and child, so a validator notices that it now lives
//! in a child and starts its background threads and connections afresh
//! there. A `pthread_atfork` child handler bumps a counter; comparing it is one
//! relaxed atomic load on the hot path, where `getpid()` would be a syscall.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

/// Descriptors a child must not keep: the leadership locks this process
/// holds. A child sharing the parent's open lock would keep it held after
/// the parent died, and no process of the host could lead again.
static CLOSE_IN_CHILD: [AtomicI32; 8] = [const { AtomicI32::new(-1) }; 8];

extern "C" fn after_fork_in_child() {
    // Only async-signal-safe work is allowed here: atomics and close(2).
    GENERATION.fetch_add(1, Ordering::SeqCst);
    for slot in &CLOSE_IN_CHILD {
        let fd = slot.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: close(2) is async-signal-safe; the descriptor is this
            // (child) process's copy of one the parent registered.
            unsafe { libc::close(fd) };
        }
    }
}

/// Closes `fd` in any child forked from now on (until
/// [`keep_in_child`]). Silently does nothing if every slot is taken: eight
/// shared regions in one process is far beyond any deployment.
pub(crate) fn close_in_child(fd: i32) {
    register();
    for slot in &CLOSE_IN_CHILD {
        if slot
            .compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

/// Undoes [`close_in_child`].
pub(crate) fn keep_in_child(fd: i32) {
    for slot in &CLOSE_IN_CHILD {
        let _ = slot.compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst);
    }
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
