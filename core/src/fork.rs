//! Fork detection for pre-forking servers (PHP-FPM, Apache prefork, nginx).
//!
//! Threads do not survive `fork()` and sockets or SQLite handles must not be
//! shared between parent and child, so a validator notices that it now lives
//! in a child and starts its background threads and connections afresh
//! there. A `pthread_atfork` child handler bumps a counter; comparing it is one
//! relaxed atomic load on the hot path, where `getpid()` would be a syscall.
//!
//! The child gets only the forking thread; a lock another thread held at the
//! moment of `fork()` stays held in the child forever. Our own locks are not
//! the problem (the child builds everything afresh), but the bundled SQLite's
//! process-wide mutexes are: a poller or usage writer inside `sqlite3_malloc`
//! at that moment left the child hanging in its first `sqlite3_open` (15 of
//! 100 forks right after a validation, measured). So every use of SQLite is a
//! [`SqliteSection`], and the `fork()` prepare handler waits until none is in
//! progress, holding new ones off until the fork is done.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

/// Descriptors a child must not keep: the leadership locks this process
/// holds. A child sharing the parent's open lock would keep it held after
/// the parent died, and no process of the host could lead again.
static CLOSE_IN_CHILD: [AtomicI32; 8] = [const { AtomicI32::new(-1) }; 8];

/// SQLite sections in progress in this process, and whether a `fork()` is
/// waiting for them to end.
static SECTIONS: AtomicUsize = AtomicUsize::new(0);
static FORKING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Sections this thread is inside: only the outermost one counts, so a
    /// nested section never waits for a fork that waits for its outer one.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// While alive, this thread may call into SQLite and no `fork()` of this
/// process completes. Entering blocks only while a fork is being prepared.
/// Neither `Send` nor `Sync`: the count it keeps is this thread's.
pub(crate) struct SqliteSection(std::marker::PhantomData<*const ()>);

/// Longest a `fork()` waits for sections in progress: a section is one
/// store call (a few statements with a 5 s busy timeout each, or a
/// connect), so this only ends on a stalled disk. Then the fork goes ahead
/// as it did before sections existed (the child may find SQLite's mutexes
/// held); blocking every `fork()` of the host process forever would be worse.
const FORK_WAIT: Duration = Duration::from_secs(15);

impl SqliteSection {
    pub(crate) fn enter() -> SqliteSection {
        register();
        let depth = DEPTH.get();
        DEPTH.set(depth + 1);
        if depth == 0 {
            loop {
                // SeqCst on both sides: either this thread sees FORKING, or
                // the forking thread sees this section (Dekker's pattern).
                SECTIONS.fetch_add(1, Ordering::SeqCst);
                if !FORKING.load(Ordering::SeqCst) {
                    break;
                }
                SECTIONS.fetch_sub(1, Ordering::SeqCst);
                while FORKING.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        SqliteSection(std::marker::PhantomData)
    }
}

impl Drop for SqliteSection {
    fn drop(&mut self) {
        let depth = DEPTH.get() - 1;
        DEPTH.set(depth);
        if depth == 0 {
            SECTIONS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

extern "C" fn before_fork() {
    // Forks from two threads at once take turns here.
    while FORKING
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The forking thread itself is never inside a section (it is in fork()),
    // unless it forks from inside one: then waiting would never end.
    if DEPTH.get() > 0 {
        return;
    }
    let deadline = std::time::Instant::now() + FORK_WAIT;
    while SECTIONS.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

extern "C" fn after_fork_in_parent() {
    FORKING.store(false, Ordering::SeqCst);
}

extern "C" fn after_fork_in_child() {
    // Only async-signal-safe work is allowed here: atomics and close(2).
    // The other threads, and so their sections, do not exist in the child.
    SECTIONS.store(usize::from(DEPTH.get() > 0), Ordering::SeqCst);
    FORKING.store(false, Ordering::SeqCst);
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
        // SAFETY: plain `extern "C" fn`s that do not unwind. The child's
        // does only async-signal-safe work (atomics, a thread-local read
        // already initialised in this thread, close(2)); the prepare handler
        // runs before fork() in a normal context and may sleep.
        let rc = unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
}

/// Increases by one in a child after every `fork()`.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}
