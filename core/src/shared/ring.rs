//! The host's usage queue: a bounded ring of fixed-size records in the
//! region. Every process pushes (lock-free; a full ring is the caller's
//! to wait on or give up); only the leader drains, writes to the store, and
//! then frees the records.
//!
//! Each record carries its position, a number that only grows. The leader
//! writes a batch and the position of its last record (`usage_cursor`) in
//! one transaction, so a leader killed between the commit and freeing the
//! records does not make its successor write them twice: the successor
//! skips what the cursor says is written. A process killed after claiming a
//! slot but before filling it leaves a hole the leader skips after a
//! second, counting it as dropped.

use std::sync::atomic::{AtomicU64, Ordering};

use super::region::{Header, Region, HEADER_BYTES};
use super::table::SLOT_BYTES;
use crate::format::Kind;
use crate::model::records::clip;
use crate::model::{UsageRecord, MAX_ENDPOINT_LEN, MAX_IP_LEN};
use crate::status::Status;

const IP_WORDS: usize = MAX_IP_LEN.div_ceil(8);
const ENDPOINT_WORDS: usize = MAX_ENDPOINT_LEN.div_ceil(8);
/// Payload words: flags and lengths, credential id, client id, time, text.
const WORDS: usize = 4 + IP_WORDS + ENDPOINT_WORDS;
pub(crate) const RECORD_BYTES: usize = (WORDS + 1) * 8;

const HAS_CREDENTIAL: u64 = 1 << 40;
const HAS_CLIENT: u64 = 1 << 41;
const HAS_IP: u64 = 1 << 42;
const HAS_ENDPOINT: u64 = 1 << 43;

/// One record slot: `seq` says whose turn it is (Vyukov's bounded queue):
/// `pos` free for the producer of `pos`, `pos + 1` filled, `pos + n` free
/// for the next lap.
#[repr(C)]
pub(crate) struct Record {
    seq: AtomicU64,
    words: [AtomicU64; WORDS],
}

fn records(region: &Region) -> &[Record] {
    let (table, n) = (region.table_slots(), region.ring_slots());
    // SAFETY: Record is all atomics; the ring follows the table, 8-byte
    // aligned, and fits (checked when the region opened).
    unsafe { region.slice::<Record>(HEADER_BYTES + table * SLOT_BYTES, n) }
}

/// Gives every slot its first-lap sequence (a new region is all zeros).
pub(crate) fn initialise(region: &Region) {
    for (i, r) in records(region).iter().enumerate() {
        r.seq.store(i as u64, Ordering::Relaxed);
    }
}

fn pack(bytes: &[u8], out: &mut [u64]) {
    // Whole words as loads; only the last partial one through a buffer (a
    // copy per word was a `memcpy` call each, on every validation).
    let mut chunks = bytes.chunks_exact(8);
    let mut slots = out.iter_mut();
    // Chunks first: `zip` asks its left side first, and a slot taken for a
    // chunk that is not there would be lost to the tail.
    for (chunk, slot) in (&mut chunks).zip(&mut slots) {
        *slot = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
    }
    let tail = chunks.remainder();
    if let (Some(slot), false) = (slots.next(), tail.is_empty()) {
        let mut b = [0u8; 8];
        b[..tail.len()].copy_from_slice(tail);
        *slot = u64::from_le_bytes(b);
    }
}

/// The word ranges a record's flags word says are in use: the fixed
/// words, then the IP's and the endpoint's words (each from its fixed
/// offset). Only these are written and read: a typical record is 2 of its
/// 6 cache lines, and the ring is written by every validation.
fn used_words(flags: u64) -> [std::ops::Range<usize>; 2] {
    let (ip_len, endpoint_len) = text_lengths(flags);
    [
        0..4 + ip_len.div_ceil(8),
        4 + IP_WORDS..4 + IP_WORDS + endpoint_len.div_ceil(8),
    ]
}

/// The IP's and the endpoint's byte lengths a flags word gives (8 bits at
/// 16, 16 bits at 24), bounded by what a record holds.
fn text_lengths(flags: u64) -> (usize, usize) {
    let field =
        |shift: u32, bits: u32| usize::try_from(flags >> shift & ((1 << bits) - 1)).unwrap_or(0);
    (
        field(16, 8).min(MAX_IP_LEN),
        field(24, 16).min(MAX_ENDPOINT_LEN),
    )
}

fn unpack(words: &[u64], len: usize) -> String {
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .take(len)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A usage record with borrowed text: a validation queues its request's
/// IP and endpoint straight into the ring's words, without first copying
/// them into an owned [`UsageRecord`] (two allocations per validation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsageRef<'a> {
    pub(crate) kind: Kind,
    pub(crate) credential_id: Option<i64>,
    pub(crate) client_id: Option<i64>,
    pub(crate) at: i64,
    pub(crate) ip: Option<&'a str>,
    pub(crate) endpoint: Option<&'a str>,
    pub(crate) status: Status,
}

impl<'a> From<&'a UsageRecord> for UsageRef<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        UsageRef {
            kind: r.kind,
            credential_id: r.credential_id,
            client_id: r.client_id,
            at: r.at,
            ip: r.ip.as_deref(),
            endpoint: r.endpoint.as_deref(),
            status: r.status,
        }
    }
}

impl UsageRef<'_> {
    /// The owned record, text cut to the columns' lengths.
    pub(crate) fn to_owned_record(self) -> UsageRecord {
        UsageRecord {
            kind: self.kind,
            credential_id: self.credential_id,
            client_id: self.client_id,
            at: self.at,
            ip: self.ip.map(|s| clip(s, MAX_IP_LEN).to_owned()),
            endpoint: self.endpoint.map(|s| clip(s, MAX_ENDPOINT_LEN).to_owned()),
            status: self.status,
        }
    }
}

fn encode(r: &UsageRef<'_>) -> [u64; WORDS] {
    let mut w = [0u64; WORDS];
    let ip = r.ip.map(|s| clip(s, MAX_IP_LEN));
    let endpoint = r.endpoint.map(|s| clip(s, MAX_ENDPOINT_LEN));
    let ip_len = ip.map_or(0, str::len) as u64;
    let endpoint_len = endpoint.map_or(0, str::len) as u64;
    w[0] = u64::from(r.kind.code())
        | u64::from(r.status.code()) << 8
        | ip_len << 16
        | endpoint_len << 24
        | if r.credential_id.is_some() {
            HAS_CREDENTIAL
        } else {
            0
        }
        | if r.client_id.is_some() { HAS_CLIENT } else { 0 }
        | if ip.is_some() { HAS_IP } else { 0 }
        | if endpoint.is_some() { HAS_ENDPOINT } else { 0 };
    w[1] = r.credential_id.unwrap_or(0).cast_unsigned();
    w[2] = r.client_id.unwrap_or(0).cast_unsigned();
    w[3] = r.at.cast_unsigned();
    pack(ip.unwrap_or("").as_bytes(), &mut w[4..4 + IP_WORDS]);
    pack(endpoint.unwrap_or("").as_bytes(), &mut w[4 + IP_WORDS..]);
    w
}

fn decode(w: &[u64; WORDS]) -> Option<UsageRecord> {
    let flag = |f: u64| w[0] & f != 0;
    let (ip_len, endpoint_len) = text_lengths(w[0]);
    Some(UsageRecord {
        kind: Kind::from_code(i64::try_from(w[0] & 0xff).ok()?)?,
        status: Status::from_code(i64::try_from(w[0] >> 8 & 0xff).ok()?)?,
        credential_id: flag(HAS_CREDENTIAL).then(|| w[1].cast_signed()),
        client_id: flag(HAS_CLIENT).then(|| w[2].cast_signed()),
        at: w[3].cast_signed(),
        ip: flag(HAS_IP).then(|| unpack(&w[4..4 + IP_WORDS], ip_len)),
        endpoint: flag(HAS_ENDPOINT).then(|| unpack(&w[4 + IP_WORDS..], endpoint_len)),
    })
}

/// Queues a record; false if the ring is full (the caller may wait for
/// room, then counts a drop with [`count_dropped`]).
pub(crate) fn push(region: &Region, record: &UsageRef<'_>) -> bool {
    let ring = records(region);
    let h = region.header();
    let n = ring.len() as u64;
    if n == 0 {
        return false;
    }
    let words = encode(record);
    loop {
        let pos = h.ring_tail.load(Ordering::Relaxed);
        let slot = &ring[usize::try_from(pos % n).unwrap_or(0)];
        let seq = slot.seq.load(Ordering::Acquire);
        match seq.cast_signed().wrapping_sub(pos.cast_signed()) {
            0 => {
                if h.ring_tail
                    .compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    for range in used_words(words[0]) {
                        for (s, w) in slot.words[range.clone()].iter().zip(&words[range]) {
                            s.store(*w, Ordering::Relaxed);
                        }
                    }
                    slot.seq.store(pos + 1, Ordering::Release);
                    return true;
                }
            }
            // The slot still holds the previous lap's record (filled, or
            // claimed and being filled): the ring is full.
            d if d == -n.cast_signed() || d == 1 - n.cast_signed() => return false,
            _ => {
                // Legitimately another producer took `pos` and the tail has
                // moved on: retry. With the tail still at `pos`, no step of
                // the protocol wrote this sequence: the slot was scribbled
                // over. Give it back its turn instead of spinning forever
                // (a hung validator would be far worse than a lost record).
                if h.ring_tail.load(Ordering::Acquire) == pos
                    && slot
                        .seq
                        .compare_exchange(seq, pos, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    h.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                std::hint::spin_loop();
            }
        }
    }
}

/// The leader's view of the ring.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    /// When the record at the head was first seen claimed but not filled.
    stuck_since: Option<(u64, std::time::Instant)>,
}

/// Records ready at the head, with their positions, at most `max`. A slot
/// claimed but left unfilled for over a second (its producer died) is
/// skipped and counted as dropped.
pub(crate) fn peek(region: &Region, drain: &mut Drain, max: usize) -> Vec<(u64, UsageRecord)> {
    let ring = records(region);
    let h = region.header();
    let n = ring.len() as u64;
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    let mut pos = h.ring_head.load(Ordering::Acquire);
    while out.len() < max {
        let slot = &ring[usize::try_from(pos % n).unwrap_or(0)];
        let seq = slot.seq.load(Ordering::Acquire);
        if seq == pos + 1 {
            let mut words = [0u64; WORDS];
            words[0] = slot.words[0].load(Ordering::Relaxed);
            for range in used_words(words[0]) {
                for (to, from) in words[range.clone()].iter_mut().zip(&slot.words[range]) {
                    *to = from.load(Ordering::Relaxed);
                }
            }
            match decode(&words) {
                Some(record) => out.push((pos, record)),
                None => {
                    // Unreadable (corrupted): free it, count it dropped.
                    release_one(h, slot, pos, n);
                    h.ring_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            pos += 1;
            drain.stuck_since = None;
            continue;
        }
        let tail = h.ring_tail.load(Ordering::Acquire);
        if tail > pos && out.is_empty() {
            // Claimed, not filled (its producer died), or a sequence no
            // producer wrote (the slot was scribbled over). Skip only at
            // the head, after a second.
            match drain.stuck_since {
                Some((at, since)) if at == pos && since.elapsed().as_secs() >= 1 => {
                    release_one(h, slot, pos, n);
                    h.ring_dropped.fetch_add(1, Ordering::Relaxed);
                    drain.stuck_since = None;
                    pos += 1;
                    continue;
                }
                Some((at, _)) if at == pos => {}
                _ => drain.stuck_since = Some((pos, std::time::Instant::now())),
            }
        }
        break;
    }
    out
}

fn release_one(h: &Header, slot: &Record, pos: u64, n: u64) {
    slot.seq.store(pos + n, Ordering::Release);
    h.ring_head.store(pos + 1, Ordering::Release);
}

/// Frees every record up to and including position `last` (written, or
/// known written by an earlier leader).
pub(crate) fn release(region: &Region, last: u64) {
    let ring = records(region);
    let h = region.header();
    let n = ring.len() as u64;
    let mut pos = h.ring_head.load(Ordering::Acquire);
    while pos <= last && n > 0 {
        let slot = &ring[usize::try_from(pos % n).unwrap_or(0)];
        if slot.seq.load(Ordering::Acquire) != pos + 1 {
            break;
        }
        release_one(h, slot, pos, n);
        pos += 1;
    }
}

/// Counts a record given up on: the ring stayed full.
pub(crate) fn count_dropped(region: &Region) {
    region.header().ring_dropped.fetch_add(1, Ordering::Relaxed);
}

/// Records waiting.
pub(crate) fn queued(region: &Region) -> u64 {
    let h = region.header();
    h.ring_tail
        .load(Ordering::Relaxed)
        .saturating_sub(h.ring_head.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::region::Geometry;

    fn record(at: i64) -> UsageRecord {
        UsageRecord {
            kind: Kind::ApiKey,
            credential_id: Some(1),
            client_id: Some(2),
            at,
            ip: None,
            endpoint: None,
            status: Status::Valid,
        }
    }

    fn ring_region(dir: &std::path::Path, ring_slots: u64) -> Region {
        crate::shared::region::scratch(
            dir,
            Geometry {
                table_slots: 0,
                ring_slots,
            },
        )
    }

    #[test]
    #[cfg_attr(miri, ignore)] // mmap
    fn scribbled_sequences_neither_hang_producers_nor_stall_the_leader() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let region = ring_region(dir.path(), 4);
        let ring = records(&region);
        // Ahead of the tail (d > 0) and behind it by a distance no lap
        // leaves (d < 0): both used to loop or drop forever.
        for garbage in [u64::MAX / 3, u64::MAX - 100] {
            let tail = region.header().ring_tail.load(Ordering::Relaxed);
            ring[usize::try_from(tail % 4).expect("index")]
                .seq
                .store(garbage, Ordering::Relaxed);
            assert!(
                push(&region, &UsageRef::from(&record(1))),
                "repaired and queued"
            );
        }
        assert_eq!(region.header().corrupt.load(Ordering::Relaxed), 2);
        // A full ring is still full, not "corrupted".
        assert!(push(&region, &UsageRef::from(&record(2))));
        assert!(push(&region, &UsageRef::from(&record(3))));
        assert!(
            !push(&region, &UsageRef::from(&record(4))),
            "four slots, four records"
        );
        assert_eq!(region.header().ring_dropped.load(Ordering::Relaxed), 0);
        assert_eq!(region.header().corrupt.load(Ordering::Relaxed), 2);
        let mut drain = Drain::default();
        let got = peek(&region, &mut drain, 10);
        assert_eq!(got.len(), 4);
        release(&region, got[3].0);
        assert_eq!(queued(&region), 0);
        assert!(push(&region, &UsageRef::from(&record(5))), "next lap");
    }

    /// Only a record's words in use are written: a short record in a slot
    /// that held a long one on the last lap reads back as itself, with
    /// nothing of the old one's text.
    #[test]
    #[cfg_attr(miri, ignore)] // mmap
    fn a_short_record_after_a_long_one_reads_back_whole() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let region = ring_region(dir.path(), 1);
        let mut drain = Drain::default();
        let long = UsageRecord {
            ip: Some("2001:db8:ffff:ffff:ffff:ffff:ffff:1".into()),
            endpoint: Some(format!("/api/{}", "x".repeat(200))),
            ..record(1)
        };
        let short = UsageRecord {
            ip: Some("10.0.0.1".into()),
            endpoint: Some("/a".into()),
            ..record(2)
        };
        let bare = record(3);
        // Past what a record holds (clipped to MAX_ENDPOINT_LEN), with a
        // NUL byte and non-ASCII text in it.
        let huge = UsageRecord {
            ip: Some("10.0.0.2".into()),
            endpoint: Some(format!("/a\0é{}", "y".repeat(10_000))),
            ..record(4)
        };
        for r in [&long, &short, &bare, &huge] {
            assert!(push(&region, &UsageRef::from(r)));
            let got = peek(&region, &mut drain, 10);
            assert_eq!(got.len(), 1);
            let back = &got[0].1;
            let clipped = r
                .endpoint
                .as_deref()
                .map(|e| clip(e, MAX_ENDPOINT_LEN).to_owned());
            assert_eq!((back.at, &back.ip, &back.endpoint), (r.at, &r.ip, &clipped));
            release(&region, got[0].0);
        }
    }

    #[test]
    fn records_round_trip_through_words() {
        let r = UsageRecord {
            kind: Kind::AiToken,
            credential_id: Some(7),
            client_id: None,
            at: 1_800_000_000_123,
            ip: Some("2001:db8::1".into()),
            endpoint: Some("/api/v2/é".repeat(40)),
            status: Status::RateLimited,
        };
        let back = decode(&encode(&UsageRef::from(&r))).expect("decodes");
        assert_eq!(back.kind, r.kind);
        assert_eq!(back.status, r.status);
        assert_eq!(back.credential_id, Some(7));
        assert_eq!(back.client_id, None);
        assert_eq!(back.at, r.at);
        assert_eq!(back.ip, r.ip);
        let endpoint = back.endpoint.expect("endpoint");
        assert!(endpoint.len() <= MAX_ENDPOINT_LEN);
        assert!(r.endpoint.as_deref().unwrap_or("").starts_with(&endpoint));
    }

    #[test]
    fn texts_of_every_length_round_trip() {
        for len in 0..=MAX_IP_LEN {
            let ip: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let endpoint = format!("/{ip}");
            let r = UsageRecord {
                kind: Kind::ApiKey,
                credential_id: None,
                client_id: Some(3),
                at: 1,
                ip: Some(ip),
                endpoint: Some(endpoint),
                status: Status::Valid,
            };
            let back = decode(&encode(&UsageRef::from(&r))).expect("decodes");
            assert_eq!((back.ip, back.endpoint), (r.ip, r.endpoint), "length {len}");
        }
    }
}
