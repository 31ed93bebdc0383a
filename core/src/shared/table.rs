//! The host's credential cache: a fixed table of 512-byte slots in the
//! region, read without locks by every process (a seqlock per slot) and
//! written by whichever process filled an answer.
//!
//! A slot holds one answer for one digest: found (the credential's fields
//! and up to 416 bytes of name, scopes and metadata) or not found. An
//! answer too large for a slot is simply not shared. Each slot carries a
//! CRC32 of its contents: bytes scribbled into the region (a bug, a stray
//! write) read as a miss, never as a credential. A digest lives in one of
//! eight slots after its hash; a fill takes an empty, expired or the
//! oldest of them.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

use super::region::{Header, Region, HEADER_BYTES, STRIPES};
use crate::format::{digest_words, Digest, Kind};
use crate::model::{AllowedIps, Credential, Metadata, Scopes};

/// Words per slot: the sequence word and 63 of payload.
const WORDS: usize = 64;
pub(crate) const SLOT_BYTES: usize = WORDS * 8;
/// Slots a digest may live in.
const PROBE: usize = 8;
/// Payload words before the variable bytes.
const FIXED: usize = 12;
/// The payload word holding the checksum.
const CHECKSUM_WORD: usize = 10;
/// Bytes of name, scopes and metadata a slot can hold.
const DATA_BYTES: usize = (WORDS - 1 - FIXED) * 8;

const OCCUPIED: u64 = 1;
const NEGATIVE: u64 = 2;
const ACTIVE: u64 = 4;
const CLIENT_ACTIVE: u64 = 8;

/// One slot: `seq` is even when stable, odd while a writer owns it.
#[repr(C)]
pub(crate) struct Slot {
    seq: AtomicU64,
    words: [AtomicU64; WORDS - 1],
}

/// What the table answers for a digest.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Found {
        credential: Arc<Credential>,
        filled_at: u64,
    },
    Missing,
}

/// A slot's payload copied out of shared memory.
struct Copy([u64; WORDS - 1]);

fn slots(region: &Region) -> &[Slot] {
    let n = region.table_slots();
    // SAFETY: Slot is all atomics; the table starts right after the header
    // (64-byte aligned) and `n` slots fit (checked when the region opened).
    unsafe { region.slice::<Slot>(HEADER_BYTES, n) }
}

fn home(digest: &Digest, n: usize) -> usize {
    let h = u64::from_le_bytes([
        digest[24], digest[25], digest[26], digest[27], digest[28], digest[29], digest[30],
        digest[31],
    ]);
    usize::try_from(h % n as u64).unwrap_or(0)
}

/// CRC32 of what a fill wrote: the fixed words, the checksum word itself
/// taken as zero, then `data_words` words of text. One pass over a
/// contiguous copy: crc32fast's fast path needs long inputs, and a call
/// per word cost ~4 ns each, 63 times on every decode.
fn checksum(words: &[u64; WORDS - 1], data_words: usize) -> u64 {
    let mut bytes = [0u8; (WORDS - 1) * 8];
    let n = FIXED + data_words.min(WORDS - 1 - FIXED);
    for (i, word) in words[..n].iter().enumerate() {
        let word = if i == CHECKSUM_WORD { 0 } else { *word };
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    u64::from(crc32fast::hash(&bytes[..n * 8])) | 1 << 32
}

/// Where the lengths of the texts are kept (word 4: flags, kind, name,
/// scopes and metadata lengths; word 11: the allowlist's length).
fn text_lengths(flags_word: u64, allowed_word: u64) -> [usize; 4] {
    [
        (flags_word >> 16 & 0xffff) as usize,
        (flags_word >> 32 & 0xffff) as usize,
        (flags_word >> 48 & 0xffff) as usize,
        (allowed_word & 0xffff) as usize,
    ]
}

impl Slot {
    /// A consistent copy, or `None` if a writer owns the slot or wrote
    /// while it was read.
    ///
    /// Only the words in use are copied (the fixed ones and the text the
    /// lengths name; the rest read as zero): a slot is eight cache lines,
    /// a typical answer fills two.
    fn read(&self) -> Option<Copy> {
        let before = self.seq.load(Ordering::Acquire);
        if before & 1 == 1 {
            return None;
        }
        let mut copy = Copy([0; WORDS - 1]);
        for (to, from) in copy.0[..FIXED].iter_mut().zip(&self.words) {
            *to = from.load(Ordering::Relaxed);
        }
        // Lengths from a torn read are bounded here and the copy refused
        // by the sequence check below.
        let total: usize = text_lengths(copy.0[4], copy.0[11]).iter().sum();
        let end = FIXED + total.div_ceil(8).min(WORDS - 1 - FIXED);
        for (to, from) in copy.0[FIXED..end].iter_mut().zip(&self.words[FIXED..]) {
            *to = from.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == before).then_some(copy)
    }

    /// Whether the slot seems to hold `digest`: its first words, read
    /// without the sequence check, so that probing past other digests'
    /// slots touches one cache line each. A torn read can only send the
    /// caller on (a miss at worst) or to [`Slot::read`], which checks.
    fn may_hold(&self, digest: &[u64; 4]) -> bool {
        self.words[4].load(Ordering::Relaxed) & OCCUPIED != 0
            && (0..4).all(|i| self.words[i].load(Ordering::Relaxed) == digest[i])
    }

    /// Takes the slot for writing; `None` if another writer has it.
    fn lock(&self) -> Option<u64> {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1 {
            return None;
        }
        self.seq
            .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| seq + 1)
    }

    /// Whether the (locked) slot holds an answer now.
    fn occupied_while_locked(&self) -> bool {
        self.words[4].load(Ordering::Relaxed) & OCCUPIED != 0
    }

    fn write(&self, locked: u64, words: &[u64; WORDS - 1]) {
        for (slot, w) in self.words.iter().zip(words) {
            slot.store(*w, Ordering::Relaxed);
        }
        self.seq.store(locked + 1, Ordering::Release);
    }

    fn clear(&self, locked: u64) {
        self.words[4].store(0, Ordering::Relaxed);
        self.seq.store(locked + 1, Ordering::Release);
    }

    /// Empties the slot, keeping the region's entry count; false if another
    /// writer holds it.
    fn evict(&self, header: &Header) -> bool {
        let Some(locked) = self.lock() else {
            return false;
        };
        if self.occupied_while_locked() {
            header.entries.fetch_sub(1, Ordering::Relaxed);
        }
        self.clear(locked);
        true
    }

    /// A consistent copy, waiting a little for a writer that holds the slot
    /// (it may be filling the answer about to be dropped).
    fn read_settled(&self) -> Option<Copy> {
        for _ in 0..1000 {
            if let Some(copy) = self.read() {
                return Some(copy);
            }
            std::hint::spin_loop();
        }
        None
    }
}

impl Copy {
    fn flags(&self) -> u64 {
        self.0[4] & 0xff
    }

    fn holds(&self, digest: &[u64; 4]) -> bool {
        self.flags() & OCCUPIED != 0 && self.0[..4] == digest[..]
    }

    fn filled_at(&self) -> u64 {
        self.0[9]
    }

    /// The answer, if the checksum holds and the fields decode.
    /// The text lengths (name, scopes, metadata, allowlist), if they fit
    /// and the checksum over every word the fill wrote holds.
    fn intact(&self) -> Option<[usize; 4]> {
        let lens = text_lengths(self.0[4], self.0[11]);
        let total: usize = lens.iter().sum();
        if total > DATA_BYTES {
            return None;
        }
        (checksum(&self.0, total.div_ceil(8)) == self.0[CHECKSUM_WORD]).then_some(lens)
    }

    fn decode(&self, digest: &Digest) -> Option<Cached> {
        let [name_len, scopes_len, meta_len, allowed_len] = self.intact()?;
        let total = name_len + scopes_len + meta_len + allowed_len;
        let data_words = total.div_ceil(8);
        let filled_at = self.filled_at();
        if self.flags() & NEGATIVE != 0 {
            return Some(Cached::Missing);
        }
        let mut bytes = [0u8; DATA_BYTES];
        for (i, w) in self.0[FIXED..FIXED + data_words].iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let text = |range: std::ops::Range<usize>| std::str::from_utf8(&bytes[range]).ok();
        let name = text(0..name_len)?.to_owned();
        let scopes = Scopes::from_trusted_stored(text(name_len..name_len + scopes_len)?);
        let meta_end = name_len + scopes_len + meta_len;
        let metadata = match meta_len {
            0 => None,
            _ => Some(Metadata::parse(text(name_len + scopes_len..meta_end)?).ok()?),
        };
        let allowed_ips = match allowed_len {
            0 => None,
            _ => Some(AllowedIps::parse(text(meta_end..total)?).ok()?),
        };
        let kind = Kind::from_code(i64::try_from(self.0[4] >> 8 & 0xff).ok()?)?;
        let opt = |w: u64| (w != u64::MAX).then(|| w.cast_signed());
        Some(Cached::Found {
            credential: Arc::new(Credential {
                kind,
                id: self.0[5].cast_signed(),
                client_id: self.0[6].cast_signed(),
                name,
                scopes,
                expires_at: opt(self.0[7]),
                active: self.flags() & ACTIVE != 0,
                client_active: self.flags() & CLIENT_ACTIVE != 0,
                metadata,
                rate_limit: opt(self.0[8]),
                allowed_ips,
                digest: *digest,
            }),
            filled_at,
        })
    }
}

/// The payload for an answer, or `None` if it does not fit a slot.
fn encode(
    digest: &Digest,
    answer: Option<&Credential>,
    filled_at: u64,
) -> Option<[u64; WORDS - 1]> {
    let mut w = [0u64; WORDS - 1];
    w[..4].copy_from_slice(&digest_words(digest));
    w[9] = filled_at;
    let mut data = Vec::new();
    match answer {
        None => w[4] = OCCUPIED | NEGATIVE,
        Some(c) => {
            let scopes = c.scopes.to_stored();
            let metadata = c.metadata.as_ref().map_or("", Metadata::as_str);
            let allowed = c
                .allowed_ips
                .as_ref()
                .map(AllowedIps::to_stored)
                .unwrap_or_default();
            if c.name.len() + scopes.len() + metadata.len() + allowed.len() > DATA_BYTES {
                return None;
            }
            let mut flags = OCCUPIED;
            if c.active {
                flags |= ACTIVE;
            }
            if c.client_active {
                flags |= CLIENT_ACTIVE;
            }
            w[4] = flags
                | u64::from(c.kind.code()) << 8
                | (c.name.len() as u64) << 16
                | (scopes.len() as u64) << 32
                | (metadata.len() as u64) << 48;
            w[5] = c.id.cast_unsigned();
            w[6] = c.client_id.cast_unsigned();
            w[7] = c.expires_at.map_or(u64::MAX, i64::cast_unsigned);
            w[8] = c.rate_limit.map_or(u64::MAX, i64::cast_unsigned);
            data.extend_from_slice(c.name.as_bytes());
            data.extend_from_slice(scopes.as_bytes());
            data.extend_from_slice(metadata.as_bytes());
            data.extend_from_slice(allowed.as_bytes());
            w[11] = allowed.len() as u64;
        }
    }
    for (i, chunk) in data.chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        w[FIXED + i] = u64::from_le_bytes(b);
    }
    w[CHECKSUM_WORD] = checksum(&w, data.len().div_ceil(8));
    Some(w)
}

/// The fill generation of a digest's stripe.
pub(crate) fn stripe<'r>(region: &'r Region, digest: &Digest) -> &'r AtomicU64 {
    &region.header().stripes[usize::from(digest[0]) % STRIPES]
}

/// The answer cached for `digest`, if any and not older than its TTL
/// (`ttl_ms` for found, `negative_ttl_ms` for not found).
pub(crate) fn lookup(
    region: &Region,
    digest: &Digest,
    now: u64,
    ttl_ms: u64,
    negative_ttl_ms: u64,
    decoded: &Decoded,
) -> Option<Cached> {
    let slots = slots(region);
    if slots.is_empty() {
        return None;
    }
    let want = digest_words(digest);
    let start = home(digest, slots.len());
    for i in 0..PROBE {
        let index = (start + i) % slots.len();
        if !slots[index].may_hold(&want) {
            continue;
        }
        let Some(copy) = slots[index].read() else {
            continue;
        };
        if !copy.holds(&want) {
            continue;
        }
        if let Some(credential) = decoded.get(index, &copy) {
            let filled_at = copy.filled_at();
            return (now.saturating_sub(filled_at) <= ttl_ms).then_some(Cached::Found {
                credential,
                filled_at,
            });
        }
        let Some(answer) = copy.decode(digest) else {
            region.header().corrupt.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if let Cached::Found { credential, .. } = &answer {
            decoded.put(index, &copy, credential);
        }
        let ttl = match answer {
            Cached::Found { .. } => ttl_ms,
            Cached::Missing => negative_ttl_ms,
        };
        return (now.saturating_sub(copy.filled_at()) <= ttl).then_some(answer);
    }
    None
}

/// Entries of a [`Decoded`] memo (by slot index, modulo).
const MEMO: usize = 256;

struct Memo {
    /// The slot's fixed words when decoded: digest, fields, fill time and
    /// the checksum of everything, name, scopes and metadata included.
    fixed: [u64; FIXED],
    credential: Arc<Credential>,
}

/// This process's decoded copies of found answers, by slot. A hit on a
/// slot whose fixed words are unchanged (so its checksum, which covers
/// the variable bytes, is too) reuses the credential decoded last time
/// instead of checking the CRC and parsing name, scopes, metadata and
/// allowlist into fresh allocations: for a hot key that was most of a
/// cached validation's cost in shared mode (callgrind). A refill,
/// revocation or eviction changes the words and is decoded anew.
///
/// A slot is remembered on its second decode in a row at its memo entry:
/// with keys at random over a large table nearly every decode is of
/// another slot, and remembering each cost an allocation and a swap for
/// nothing.
pub(crate) struct Decoded {
    memos: Box<[arc_swap::ArcSwapOption<Memo>]>,
    /// `index + 1` of the slot last decoded at each memo entry.
    last_decoded: Box<[std::sync::atomic::AtomicUsize]>,
}

impl Default for Decoded {
    fn default() -> Self {
        Decoded {
            memos: (0..MEMO)
                .map(|_| arc_swap::ArcSwapOption::empty())
                .collect(),
            last_decoded: (0..MEMO)
                .map(|_| std::sync::atomic::AtomicUsize::new(0))
                .collect(),
        }
    }
}

impl Decoded {
    fn get(&self, index: usize, copy: &Copy) -> Option<Arc<Credential>> {
        let memo = self.memos[index % MEMO].load();
        let memo = memo.as_ref()?;
        (memo.fixed[..] == copy.0[..FIXED]).then(|| Arc::clone(&memo.credential))
    }

    fn put(&self, index: usize, copy: &Copy, credential: &Arc<Credential>) {
        let last = self.last_decoded[index % MEMO].swap(index + 1, Ordering::Relaxed);
        if last != index + 1 {
            return;
        }
        let mut fixed = [0u64; FIXED];
        fixed.copy_from_slice(&copy.0[..FIXED]);
        self.memos[index % MEMO].store(Some(Arc::new(Memo {
            fixed,
            credential: Arc::clone(credential),
        })));
    }
}

/// Caches an answer (`None`: not found) filled at `filled_at`. Returns
/// false if it was not stored (too large, or every candidate slot busy).
pub(crate) fn insert(
    region: &Region,
    digest: &Digest,
    answer: Option<&Credential>,
    filled_at: u64,
) -> bool {
    let slots = slots(region);
    let Some(words) = (!slots.is_empty())
        .then(|| encode(digest, answer, filled_at))
        .flatten()
    else {
        return false;
    };
    let want = digest_words(digest);
    let start = home(digest, slots.len());
    // Same digest first, then an empty slot, then the oldest.
    let mut best: Option<(usize, u64)> = None;
    for i in 0..PROBE {
        let index = (start + i) % slots.len();
        let Some(copy) = slots[index].read() else {
            continue;
        };
        let rank = if copy.holds(&want) {
            0
        } else if copy.flags() & OCCUPIED == 0 {
            1
        } else {
            2 + copy.filled_at()
        };
        if best.is_none_or(|(_, r)| rank < r) {
            best = Some((index, rank));
        }
        if rank == 0 {
            break;
        }
    }
    let Some((index, _)) = best else {
        return false;
    };
    let Some(locked) = slots[index].lock() else {
        return false;
    };
    if !slots[index].occupied_while_locked() {
        region.header().entries.fetch_add(1, Ordering::Relaxed);
    }
    slots[index].write(locked, &words);
    true
}

/// Drops every cached answer for `digest`. The stripe is bumped first, so a
/// fill racing this either lands before (and is dropped here) or sees the
/// bump and withdraws itself.
pub(crate) fn invalidate(region: &Region, digest: &Digest) {
    stripe(region, digest).fetch_add(1, Ordering::SeqCst);
    let slots = slots(region);
    if slots.is_empty() {
        return;
    }
    let want = digest_words(digest);
    let start = home(digest, slots.len());
    for i in 0..PROBE {
        let slot = &slots[(start + i) % slots.len()];
        if slot.read_settled().is_some_and(|copy| copy.holds(&want)) {
            slot.evict(region.header());
        }
    }
}

/// Drops every cached answer. Every stripe is bumped first, so a fill racing
/// this either lands before its slot is cleared or sees the bump and
/// withdraws itself (as with [`invalidate`]). A slot a writer holds past a
/// short spin is left to that writer: its fill sees the bumped stripe and
/// withdraws itself; one left locked by a dead writer is cleared by the
/// stuck-slot sweep. Empty slots are not written. Returns the slots cleared.
pub(crate) fn clear_all(region: &Region) -> u64 {
    let header = region.header();
    for stripe in &header.stripes {
        stripe.fetch_add(1, Ordering::SeqCst);
    }
    let mut cleared = 0;
    for slot in slots(region) {
        let occupied = slot
            .read_settled()
            .is_none_or(|copy| copy.flags() & OCCUPIED != 0);
        if occupied && slot.evict(header) {
            cleared += 1;
        }
    }
    cleared
}

/// Clears the occupied slots, of `count` from `*cursor` on, whose checksum
/// fails (a stray write into the region), counting each as corrupt, and
/// moves the cursor on. Lookups verify only the slot holding the digest
/// they want, so without this pass a damaged slot would stay, uncounted,
/// until a fill overwrote it. The leader runs it a slice per tick.
pub(crate) fn sweep_damaged(region: &Region, cursor: &mut usize, count: usize) -> usize {
    let slots = slots(region);
    if slots.is_empty() {
        return 0;
    }
    let mut cleared = 0;
    for _ in 0..count.min(slots.len()) {
        *cursor = (*cursor + 1) % slots.len();
        let slot = &slots[*cursor];
        let Some(copy) = slot.read() else {
            continue;
        };
        if copy.flags() & OCCUPIED == 0 || copy.intact().is_some() {
            continue;
        }
        // A fill racing this may be lost: a miss, never a wrong answer.
        if slot.evict(region.header()) {
            region.header().corrupt.fetch_add(1, Ordering::Relaxed);
            cleared += 1;
        }
    }
    cleared
}

/// Frees slots left locked by a process that died while writing: a slot
/// odd at two sweeps in a row with the same sequence is cleared. `seen`
/// carries the odd sequences from the previous sweep.
pub(crate) fn sweep_stuck(
    region: &Region,
    seen: &mut std::collections::HashMap<usize, u64>,
) -> usize {
    let mut freed = 0;
    let mut still = std::collections::HashMap::new();
    for (index, slot) in slots(region).iter().enumerate() {
        let seq = slot.seq.load(Ordering::Acquire);
        if seq & 1 == 0 {
            continue;
        }
        if seen.get(&index) == Some(&seq) {
            if slot.occupied_while_locked() {
                region.header().entries.fetch_sub(1, Ordering::Relaxed);
            }
            slot.words[4].store(0, Ordering::Relaxed);
            if slot
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                freed += 1;
            }
        } else {
            still.insert(index, seq);
        }
    }
    *seen = still;
    freed
}

/// Occupied slots now.
pub(crate) fn occupied(region: &Region) -> u64 {
    region.header().entries.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests;
