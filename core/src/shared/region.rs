//! The region file: where it lives, who may open it, its header, and how a
//! missing, foreign, outdated or corrupted one is detected and rebuilt.
//!
//! One region per (OS user, DSN): the name carries the user id and a digest
//! of the whole DSN (so two databases, or two database users, never share a
//! region, and the name reveals neither). It is created `0600` and opened
//! only if it belongs to this user with no access for anyone else, the
//! same trust boundary as PHP's opcache: every process running as this user
//! can read and write it, and can equally read the DSN's password from the
//! configuration, so the region adds no new trust.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::ring::RECORD_BYTES;
use super::table::SLOT_BYTES;
use crate::error::{Error, ErrorKind, Result};

/// `HKREGION` in ASCII.
const MAGIC: u64 = 0x484b_5245_4749_4f4e;
/// Bumped whenever the layout of the header, a slot or a record changes:
/// processes of another layout treat the region as foreign and rebuild it.
pub(crate) const LAYOUT: u32 = 5;
/// Fill generations in the header, striped by the digest's first byte.
pub(crate) const STRIPES: usize = 64;

/// The region header. Every field is atomic: other processes read and write
/// it concurrently, and a plain field read while written is undefined.
#[repr(C)]
pub(crate) struct Header {
    magic: AtomicU64,
    layout: AtomicU32,
    _pad: AtomicU32,
    /// Bytes of the whole file.
    size: AtomicU64,
    pub(crate) table_slots: AtomicU64,
    pub(crate) ring_slots: AtomicU64,
    /// Random at creation: names this region in `usage_cursor`.
    pub(crate) region_id: AtomicU64,
    /// CRC32 of the fields above, so random bytes in the header are noticed.
    check: AtomicU64,
    /// Highest change-feed id the leader has read.
    pub(crate) feed_high: AtomicI64,
    /// The first 8 bytes of the digest of the feed row at `feed_high`.
    pub(crate) feed_high_tag: AtomicU64,
    /// Monotonic ms at which the leader's last successful poll started.
    pub(crate) feed_ok_at: AtomicU64,
    /// 1 once a leader has read the feed's head: fills may be cached.
    pub(crate) feed_ready: AtomicU32,
    /// Bit per legacy key shape that stored keys have.
    pub(crate) legacy_shapes: AtomicU32,
    pub(crate) leader_pid: AtomicU32,
    _pad2: AtomicU32,
    pub(crate) leader_since: AtomicU64,
    pub(crate) stripes: [AtomicU64; STRIPES],
    // Counters of the whole host.
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) fills: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) corrupt: AtomicU64,
    /// Occupied cache slots.
    pub(crate) entries: AtomicU64,
    pub(crate) ring_head: AtomicU64,
    pub(crate) ring_tail: AtomicU64,
    pub(crate) ring_dropped: AtomicU64,
    pub(crate) ring_written: AtomicU64,
    /// Bumped by every request posted to the fill desk; the leader sleeps
    /// on it.
    pub(crate) desk_bell: AtomicU32,
    /// 1 while the leader sleeps on the bell.
    pub(crate) desk_sleeping: AtomicU32,
    /// Misses the leader answered for other processes.
    pub(crate) forwarded: AtomicU64,
    /// Answers the leader renewed before they expired.
    pub(crate) refreshed: AtomicU64,
}

/// Header bytes, rounded up so slots start on a cache line.
pub(crate) const HEADER_BYTES: usize = std::mem::size_of::<Header>().next_multiple_of(64);

/// A mapped region and the files behind it.
pub(crate) struct Region {
    base: *mut u8,
    len: usize,
    /// The file, for noticing that it was replaced (inode) and closed with
    /// the mapping.
    file: File,
    pub(crate) path: PathBuf,
    /// The sizes this process mapped, checked against the length then.
    /// Offsets are computed from these, never from the shared header,
    /// which any process of the user (or a stray write) can change under
    /// us: a scribbled slot count must not send a read past the mapping.
    geometry: Geometry,
}

// SAFETY: the mapping is shared memory accessed only through atomics; the
// pointer stays valid until `Drop` unmaps it.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Monotonic milliseconds shared by every process of the host
/// (`CLOCK_MONOTONIC` is one clock system-wide).
pub(crate) fn shared_clock_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1000
        + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000
}

fn unavailable(message: String) -> Error {
    Error::new(ErrorKind::Unavailable, message)
}

/// Where regions of this user live: `$HERATIO_KEYS_REGION_DIR`, else
/// `/dev/shm` (memory, never written back to disk), else the temp dir.
pub(crate) fn region_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HERATIO_KEYS_REGION_DIR") {
        return dir.into();
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return shm.to_owned();
    }
    std::env::temp_dir()
}

/// The path stem for a DSN: user id and a digest of the full DSN text.
pub(crate) fn stem(dir: &Path, dsn_text: &str) -> PathBuf {
    let digest = Sha256::digest(dsn_text.as_bytes());
    let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    // SAFETY: geteuid never fails.
    let uid = unsafe { libc::geteuid() };
    dir.join(format!("heratio-keys-{uid}-{short}"))
}

/// Opens a file owner-only, refusing one that another user owns or others
/// may access.
pub(crate) fn open_private(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| unavailable(format!("cannot stat {}: {e}", path.display())))?;
    // SAFETY: geteuid never fails.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(unavailable(format!(
            "{} belongs to uid {} with mode {:o}: a shared region must be this user's and private",
            path.display(),
            meta.uid(),
            meta.mode() & 0o777
        )));
    }
    Ok(file)
}

/// An exclusive `flock` held until dropped.
pub(crate) struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    /// Blocks until the lock is taken.
    pub(crate) fn acquire(file: &'a File) -> Result<Self> {
        // SAFETY: a valid open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(unavailable(format!(
                "flock: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(FileLock(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        // SAFETY: a valid open descriptor we locked.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Sizes a region is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) table_slots: u64,
    pub(crate) ring_slots: u64,
}

impl Geometry {
    pub(crate) fn bytes(self, slot_bytes: usize, record_bytes: usize) -> usize {
        HEADER_BYTES
            + usize::try_from(self.table_slots).unwrap_or(0) * slot_bytes
            + usize::try_from(self.ring_slots).unwrap_or(0) * record_bytes
            + super::desk::DESK_BYTES
    }
}

fn header_check(h: &Header) -> u64 {
    let mut crc = crc32fast::Hasher::new();
    for v in [
        h.magic.load(Ordering::Acquire),
        u64::from(h.layout.load(Ordering::Acquire)),
        h.size.load(Ordering::Acquire),
        h.table_slots.load(Ordering::Acquire),
        h.ring_slots.load(Ordering::Acquire),
        h.region_id.load(Ordering::Acquire),
    ] {
        crc.update(&v.to_le_bytes());
    }
    u64::from(crc.finalize())
}

impl Region {
    /// Opens (creating or rebuilding if needed) the region at `path` with
    /// `geometry`, under the init lock `init`.
    pub(crate) fn open(
        path: &Path,
        init: &File,
        geometry: Geometry,
        bytes: usize,
    ) -> Result<Region> {
        let _init = FileLock::acquire(init)?;
        let file = open_private(path)?;
        let len = file
            .metadata()
            .map_err(|e| unavailable(format!("cannot stat {}: {e}", path.display())))?
            .len();
        if len != 0 {
            let region = Region::map(file, path, geometry, bytes)?;
            if region.is_valid(geometry, bytes) {
                return Ok(region);
            }
            // Foreign layout, other sizes, or corrupted: replace the file.
            // Processes still mapping the old one notice the new inode.
            drop(region);
            std::fs::remove_file(path)
                .map_err(|e| unavailable(format!("cannot replace {}: {e}", path.display())))?;
            return Region::create(path, geometry, bytes);
        }
        drop(file);
        let _ = std::fs::remove_file(path);
        Region::create(path, geometry, bytes)
    }

    fn create(path: &Path, geometry: Geometry, bytes: usize) -> Result<Region> {
        let file = open_private(path)?;
        file.set_len(bytes as u64)
            .map_err(|e| unavailable(format!("cannot size {}: {e}", path.display())))?;
        // A sparse file maps fine and then kills the process with SIGBUS on
        // the first page the full file system cannot back; reserving every
        // block now turns a full disk or tmpfs into an error at open (the
        // private-cache fallback) instead.
        let len = libc::off_t::try_from(bytes)
            .map_err(|_| Error::internal(format!("region of {bytes} bytes")))?;
        // SAFETY: a valid descriptor we own; the range is the file's length.
        let reserved = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        if reserved != 0 {
            let why = std::io::Error::from_raw_os_error(reserved);
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(unavailable(format!(
                "cannot reserve {bytes} bytes for {}: {why}",
                path.display()
            )));
        }
        let region = Region::map(file, path, geometry, bytes)?;
        let h = region.header();
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| Error::internal(format!("OS RNG: {e}")))?;
        h.layout.store(LAYOUT, Ordering::Relaxed);
        h.size.store(bytes as u64, Ordering::Relaxed);
        h.table_slots.store(geometry.table_slots, Ordering::Relaxed);
        h.ring_slots.store(geometry.ring_slots, Ordering::Relaxed);
        h.region_id.store(u64::from_le_bytes(id), Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        h.check.store(header_check(h), Ordering::Release);
        Ok(region)
    }

    fn map(file: File, path: &Path, geometry: Geometry, len: usize) -> Result<Region> {
        if geometry.bytes(SLOT_BYTES, RECORD_BYTES) > len {
            return Err(Error::internal(format!(
                "region geometry {geometry:?} does not fit {len} bytes"
            )));
        }
        // SAFETY: a fresh shared mapping of a file we opened read-write; the
        // kernel checks the length against the file on access.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(unavailable(format!(
                "cannot map {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(Region {
            base: base.cast(),
            len,
            file,
            path: path.to_owned(),
            geometry,
        })
    }

    /// Whether the header is ours, of this layout and these sizes, intact.
    pub(crate) fn is_valid(&self, geometry: Geometry, bytes: usize) -> bool {
        let h = self.header();
        let file_len = self.file.metadata().map_or(0, |m| m.len());
        h.magic.load(Ordering::Acquire) == MAGIC
            && h.layout.load(Ordering::Acquire) == LAYOUT
            && h.size.load(Ordering::Acquire) == bytes as u64
            && file_len == bytes as u64
            && h.table_slots.load(Ordering::Acquire) == geometry.table_slots
            && h.ring_slots.load(Ordering::Acquire) == geometry.ring_slots
            && h.check.load(Ordering::Acquire) == header_check(h)
    }

    /// Whether `path` still names the file this mapping is of (a process
    /// that rebuilt the region replaced it).
    pub(crate) fn is_current(&self) -> bool {
        let (Ok(now), Ok(ours)) = (std::fs::metadata(&self.path), self.file.metadata()) else {
            return false;
        };
        now.ino() == ours.ino() && now.dev() == ours.dev()
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_BYTES long (checked at
        // open), page-aligned, and Header is all atomics.
        unsafe { &*self.base.cast::<Header>() }
    }

    /// `count` items of type `T` starting `offset` bytes into the mapping.
    ///
    /// # Safety
    ///
    /// `T` must be made of atomics only (any bit pattern valid, concurrent
    /// access allowed), `offset` aligned for `T`, and the range inside the
    /// mapping.
    pub(crate) unsafe fn slice<T>(&self, offset: usize, count: usize) -> &[T] {
        let fits = count
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|n| n.checked_add(offset))
            .is_some_and(|end| end <= self.len);
        if !fits {
            return &[];
        }
        // SAFETY: forwarded caller guarantees; the range was just checked.
        unsafe { std::slice::from_raw_parts(self.base.add(offset).cast::<T>(), count) }
    }

    /// Cache slots this process mapped.
    pub(crate) fn table_slots(&self) -> usize {
        usize::try_from(self.geometry.table_slots).unwrap_or(0)
    }

    /// Where the fill desk starts: it is the region's last part.
    pub(crate) fn desk_offset(&self) -> usize {
        self.geometry.bytes(SLOT_BYTES, RECORD_BYTES) - super::desk::DESK_BYTES
    }

    /// Usage-ring records this process mapped.
    pub(crate) fn ring_slots(&self) -> usize {
        usize::try_from(self.geometry.ring_slots).unwrap_or(0)
    }
}

/// A region of `geometry` in `dir`, for unit tests.
#[cfg(test)]
pub(crate) fn scratch(dir: &Path, geometry: Geometry) -> Region {
    let init = File::create(dir.join("init")).expect("init lock");
    let region = Region::open(
        &dir.join("scratch.region"),
        &init,
        geometry,
        geometry.bytes(SLOT_BYTES, RECORD_BYTES),
    )
    .expect("region");
    super::ring::initialise(&region);
    region
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped; nothing borrows it
        // any more (references are tied to &self).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
