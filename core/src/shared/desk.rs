//! The host's fill desk: cache misses forwarded to the leader, so that the
//! whole host asks the store once per key (one batched query for every
//! digest missed at the same moment) over the leader's few connections,
//! instead of each of 50 processes opening its own.
//!
//! A process that misses posts the digest into one of the desk's request
//! slots, rings the leader's bell (a futex word in the region) and sleeps on
//! its slot until the leader has put the answer into the cache table and
//! marked the request done; then it reads the table as on any hit. A hit on
//! an answer near the end of its lifetime posts a *refresh* that nobody
//! waits for: the leader renews the answer before it expires, so hot keys
//! never miss at all.
//!
//! The desk only ever speeds things up. A request the leader does not
//! answer in time (no leader, a slow store) is answered by the process
//! itself, as without the desk; correctness lives in the table's fill rules,
//! not here. A process that dies at any step leaves a slot the leader frees
//! after two seconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::region::Region;
use crate::format::{Digest, Kind};

/// Request slots (64 bytes each: 64 KiB).
pub(crate) const DESK_SLOTS: usize = 1024;
pub(crate) const DESK_BYTES: usize = DESK_SLOTS * std::mem::size_of::<Request>();
/// Slots a poster tries, from its digest's home slot on.
const PROBE: usize = 32;

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const POSTED: u32 = 2;
const DONE: u32 = 3;
const STATE_BITS: u32 = 2;
/// In the kind word: nobody waits for the answer (a refresh).
const REFRESH: u32 = 1 << 8;

/// A slot left claimed or done (its process died) this long is freed.
const ABANDONED_MS: u64 = 2000;

/// One request, a cache line. `state` is `generation << 2 | state`: a
/// poster that gave up and a leader answering late never confuse two uses
/// of the same slot.
#[repr(C)]
pub(crate) struct Request {
    state: AtomicU32,
    kind: AtomicU32,
    digest: [AtomicU64; 4],
    _pad: [AtomicU64; 3],
}

fn word(generation: u32, state: u32) -> u32 {
    generation << STATE_BITS | state
}

fn state_of(word: u32) -> u32 {
    word & ((1 << STATE_BITS) - 1)
}

fn generation_of(word: u32) -> u32 {
    word >> STATE_BITS
}

fn requests(region: &Region) -> &[Request] {
    // SAFETY: Request is all atomics, 8-byte aligned; the desk follows the
    // ring and fits (checked when the region opened).
    unsafe { region.slice::<Request>(region.desk_offset(), DESK_SLOTS) }
}

fn home(digest: &Digest) -> usize {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[8..16]);
    usize::try_from(u64::from_le_bytes(b) % DESK_SLOTS as u64).unwrap_or(0)
}

/// A posted request, for waiting on its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    index: usize,
    generation: u32,
}

/// Posts a request for `digest`; `None` if every slot near its home is in
/// use (the caller asks the store itself). A `refresh` is not waited for.
pub(crate) fn post(region: &Region, kind: Kind, digest: &Digest, refresh: bool) -> Option<Ticket> {
    let slots = requests(region);
    if slots.is_empty() {
        return None;
    }
    let start = home(digest);
    for i in 0..PROBE {
        let index = (start + i) % slots.len();
        let slot = &slots[index];
        let current = slot.state.load(Ordering::Relaxed);
        if state_of(current) != FREE {
            continue;
        }
        let generation = generation_of(current).wrapping_add(1) & (u32::MAX >> STATE_BITS);
        if slot
            .state
            .compare_exchange(
                current,
                word(generation, CLAIMED),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        slot.kind.store(
            u32::from(kind.code()) | if refresh { REFRESH } else { 0 },
            Ordering::Relaxed,
        );
        for (w, chunk) in slot.digest.iter().zip(digest.chunks(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        // The leader's sweep may have taken a slot claimed too long ago.
        if slot
            .state
            .compare_exchange(
                word(generation, CLAIMED),
                word(generation, POSTED),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return None;
        }
        ring_bell(region);
        return Some(Ticket { index, generation });
    }
    None
}

/// Wakes the leader's desk thread (a post, or a stop to notice).
pub(crate) fn ring_bell(region: &Region) {
    let h = region.header();
    h.desk_bell.fetch_add(1, Ordering::SeqCst);
    // Only a sleeping leader needs the system call (it checks the bell
    // after saying it sleeps: one of the two sees the other).
    if h.desk_sleeping.load(Ordering::SeqCst) != 0 {
        futex::wake(&h.desk_bell, 1);
    }
}

/// Waits up to `timeout` for the leader's answer and frees the slot.
/// True when the leader answered (the table now has the answer, unless a
/// revocation withdrew it or the slot it went to was busy).
pub(crate) fn wait(region: &Region, ticket: Ticket, timeout: Duration) -> bool {
    let Some(slot) = requests(region).get(ticket.index) else {
        return false;
    };
    let (posted, done) = (
        word(ticket.generation, POSTED),
        word(ticket.generation, DONE),
    );
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let current = slot.state.load(Ordering::Acquire);
        if current == done {
            let _ = slot.state.compare_exchange(
                done,
                word(ticket.generation, FREE),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return true;
        }
        if current != posted {
            // Freed by the leader's sweep: not ours any more.
            return false;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            // Give the slot back; an answer that lands meanwhile is used.
            return match slot.state.compare_exchange(
                posted,
                word(ticket.generation, FREE),
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => false,
                Err(now) => now == done && wait(region, ticket, Duration::ZERO),
            };
        }
        futex::wait(&slot.state, current, left);
    }
}

/// A request the leader took from the desk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taken {
    index: usize,
    generation: u32,
    pub(crate) kind: Kind,
    pub(crate) digest: Digest,
    pub(crate) refresh: bool,
}

/// The bell's count now: pass it to [`sleep`] after finding nothing posted.
pub(crate) fn bell(region: &Region) -> u32 {
    region.header().desk_bell.load(Ordering::SeqCst)
}

/// Sleeps until a request is posted after `seen` was read, or `timeout`.
pub(crate) fn sleep(region: &Region, seen: u32, timeout: Duration) {
    let h = region.header();
    h.desk_sleeping.store(1, Ordering::SeqCst);
    if h.desk_bell.load(Ordering::SeqCst) == seen {
        futex::wait(&h.desk_bell, seen, timeout);
    }
    h.desk_sleeping.store(0, Ordering::SeqCst);
}

/// Every posted request (the leader's side).
pub(crate) fn take_posted(region: &Region) -> Vec<Taken> {
    let mut out = Vec::new();
    for (index, slot) in requests(region).iter().enumerate() {
        let current = slot.state.load(Ordering::Acquire);
        if state_of(current) != POSTED {
            continue;
        }
        let kind_word = slot.kind.load(Ordering::Relaxed);
        let mut digest = [0u8; 32];
        for (chunk, w) in digest.chunks_mut(8).zip(&slot.digest) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        // Re-read: a poster that gave up may have reused the slot while we
        // copied (a torn digest would only cost a useless query).
        if slot.state.load(Ordering::Acquire) != current {
            continue;
        }
        let Some(kind) = Kind::from_code(i64::from(kind_word & 0xff)) else {
            // Not a kind: scribbled. Free it for reuse.
            let _ = slot.state.compare_exchange(
                current,
                word(generation_of(current), FREE),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            continue;
        };
        out.push(Taken {
            index,
            generation: generation_of(current),
            kind,
            digest,
            refresh: kind_word & REFRESH != 0,
        });
    }
    out
}

/// Marks a taken request answered and wakes its poster (a refresh's slot
/// is simply freed).
pub(crate) fn answer(region: &Region, taken: &Taken) {
    let Some(slot) = requests(region).get(taken.index) else {
        return;
    };
    let next = if taken.refresh { FREE } else { DONE };
    if slot
        .state
        .compare_exchange(
            word(taken.generation, POSTED),
            word(taken.generation, next),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .is_ok()
        && next == DONE
    {
        futex::wake(&slot.state, i32::MAX);
    }
}

/// Frees slots a dead process left claimed, or answered and never
/// collected. `seen` remembers, per slot, the state word and when it was
/// first seen so (the leader's own memory, not the region's). Returns the
/// slots freed.
pub(crate) fn sweep(region: &Region, seen: &mut HashMap<usize, (u32, u64)>, now: u64) -> usize {
    let mut freed = 0;
    for (index, slot) in requests(region).iter().enumerate() {
        let current = slot.state.load(Ordering::Acquire);
        if !matches!(state_of(current), CLAIMED | DONE) {
            seen.remove(&index);
            continue;
        }
        match seen.get(&index) {
            Some(&(word_then, since))
                if word_then == current && now.saturating_sub(since) >= ABANDONED_MS =>
            {
                if slot
                    .state
                    .compare_exchange(
                        current,
                        word(generation_of(current), FREE),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    freed += 1;
                }
                seen.remove(&index);
            }
            Some(&(word_then, _)) if word_then == current => {}
            _ => {
                seen.insert(index, (current, now));
            }
        }
    }
    freed
}

/// Process-shared futexes on words of the region (other processes wait
/// and wake on the same physical page, so not `FUTEX_PRIVATE_FLAG`).
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    #[cfg(target_os = "linux")]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(timeout.subsec_nanos().min(999_999_999) as i32),
        };
        // SAFETY: the word is a live, aligned u32 in a shared mapping; the
        // kernel only reads it and the timespec. A spurious or interrupted
        // return is fine: every caller re-checks its condition.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                &raw const ts,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    #[cfg(target_os = "linux")]
    pub(super) fn wake(word: &AtomicU32, count: i32) {
        // SAFETY: as in `wait`; waking nobody is harmless.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                count,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    /// Elsewhere: short sleeps (the region's other parts are Linux-first
    /// too; correctness never depends on a wake-up).
    #[cfg(not(target_os = "linux"))]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        if word.load(std::sync::atomic::Ordering::Acquire) == expected {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn wake(_: &AtomicU32, _: i32) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::region::{scratch, Geometry};

    fn desk_region(dir: &std::path::Path) -> Region {
        scratch(
            dir,
            Geometry {
                table_slots: 16,
                ring_slots: 16,
            },
        )
    }

    #[test]
    #[cfg_attr(miri, ignore)] // mmap, futex
    fn a_posted_miss_is_answered_across_threads_and_its_slot_reused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let region = desk_region(dir.path());
        let digest = [7u8; 32];
        std::thread::scope(|s| {
            let leader = s.spawn(|| loop {
                let seen = bell(&region);
                let taken = take_posted(&region);
                if let Some(t) = taken.first() {
                    assert_eq!(
                        (t.kind, t.digest, t.refresh),
                        (Kind::AiToken, digest, false)
                    );
                    answer(&region, t);
                    return;
                }
                sleep(&region, seen, Duration::from_millis(50));
            });
            let ticket = post(&region, Kind::AiToken, &digest, false).expect("a free slot");
            assert!(wait(&region, ticket, Duration::from_secs(10)), "answered");
            leader.join().expect("leader");
        });
        // Freed by the poster: every slot near the home is free again.
        assert!(take_posted(&region).is_empty());
        let again = post(&region, Kind::ApiKey, &digest, false).expect("reused");
        assert_eq!(again.index, home(&digest));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // mmap, futex
    fn a_late_answer_never_reaches_the_slots_next_user() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let region = desk_region(dir.path());
        let digest = [9u8; 32];
        let first = post(&region, Kind::ApiKey, &digest, false).expect("posted");
        let taken = take_posted(&region);
        assert_eq!(taken.len(), 1);
        // Nobody answers: the poster gives up and the slot goes to another.
        assert!(!wait(&region, first, Duration::from_millis(20)));
        let second = post(&region, Kind::ApiKey, &digest, false).expect("posted");
        assert_eq!(second.index, first.index);
        answer(&region, &taken[0]);
        assert!(
            !wait(&region, second, Duration::from_millis(20)),
            "the first request's answer is not the second's"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // mmap
    fn refreshes_free_themselves_and_abandoned_slots_are_swept() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let region = desk_region(dir.path());
        post(&region, Kind::ApiKey, &[1u8; 32], true).expect("posted");
        let taken = take_posted(&region);
        assert!(taken[0].refresh);
        answer(&region, &taken[0]);
        assert!(take_posted(&region).is_empty());
        // A waiter that died: its answered slot is freed after two seconds
        // of being seen so, not before.
        let dead = post(&region, Kind::ApiKey, &[2u8; 32], false).expect("posted");
        let taken = take_posted(&region);
        answer(&region, &taken[0]);
        let mut seen = HashMap::new();
        assert_eq!(sweep(&region, &mut seen, 100), 0);
        assert_eq!(sweep(&region, &mut seen, 100 + ABANDONED_MS - 1), 0);
        assert_eq!(sweep(&region, &mut seen, 100 + ABANDONED_MS), 1);
        assert!(!wait(&region, dead, Duration::ZERO), "no longer its slot");
        // Every slot full near one home: the poster is told to ask itself.
        let crowded = [3u8; 32];
        for _ in 0..PROBE {
            post(&region, Kind::ApiKey, &crowded, false).expect("room");
        }
        assert!(post(&region, Kind::ApiKey, &crowded, false).is_none());
    }
}
