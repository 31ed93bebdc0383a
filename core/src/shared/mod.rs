//! One keygen client per host: the region every validating process of one
//! OS user shares for one DSN (PHP-FPM workers, C programs), holding the
//! credential cache, the change feed's state and the usage queue, and the
//! leadership that lets exactly one of those processes poll the feed and
//! write usage. No daemon: the leader is an ordinary validating process,
//! elected with an advisory lock the kernel releases when it dies.
//!
//! - `region`: the file, its header, validation and rebuilding;
//! - `table`: the credential cache (seqlocked slots);
//! - `ring`: the usage queue;
//! - `desk`: cache misses forwarded to the leader.
//!
//! A process that cannot use the region (no `/dev/shm`, another user's
//! file, a full disk) runs with its own private cache instead and says so
//! in its stats. See `docs/shared-cache.md`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::fork;

pub(crate) mod desk;
pub(crate) mod region;
pub(crate) mod ring;
pub(crate) mod table;

use region::{open_private, Geometry, Region};

/// Sizes of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedSettings {
    pub(crate) table_slots: u64,
    pub(crate) ring_slots: u64,
}

/// This process's handle on the host region.
pub(crate) struct Shared {
    /// The current mapping: one of `mappings`.
    current: AtomicPtr<Region>,
    /// Every mapping this process made of the region, the current one last.
    /// A rebuilt region's old mapping stays until the validator closes, so
    /// a reference taken before the rebuild never dangles: every validation
    /// reads the current one with a plain load (an `ArcSwap` load cost two
    /// atomic read-modify-writes or a thread-local lookup per use, several
    /// uses per validation). Rebuilds are rare (corruption, a layout
    /// change); each leaves one region's worth of address space and, until
    /// every process of the host has moved on, the old file's memory.
    mappings: Mutex<Vec<Arc<Region>>>,
    region_path: PathBuf,
    init: File,
    leader: File,
    leading: AtomicBool,
    geometry: Geometry,
    bytes: usize,
    /// This process's hits not yet added to the header's count: counting
    /// each hit on the header's line, which every process writes, cost a
    /// cache-line transfer between cores per validation; the host thread
    /// adds them every tick instead.
    unpublished_hits: AtomicU64,
    /// Held while hits move from `unpublished_hits` to the header and while
    /// [`Shared::hits`] adds the two, so a reader never sees them in
    /// neither place (a test read 0 of 2 hits once).
    publishing: Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("region", &self.region_path)
            .field("leading", &self.leading.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Opens (creating or rebuilding) the region for `dsn_text` in the
    /// default directory.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the directory or a file cannot be used: the
    /// caller falls back to a private cache.
    pub(crate) fn open(dsn_text: &str, settings: SharedSettings) -> Result<Shared> {
        let stem = region::stem(&region::region_dir(), dsn_text);
        let with = |suffix: &str| {
            let mut p = stem.clone().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        let (region_path, init_path, leader_path) =
            (with(".region"), with(".init"), with(".leader"));
        let init = open_private(&init_path)?;
        let leader = open_private(&leader_path)?;
        let geometry = Geometry {
            table_slots: settings.table_slots.max(16),
            ring_slots: settings.ring_slots.max(16),
        };
        let bytes = geometry.bytes(table::SLOT_BYTES, ring::RECORD_BYTES);
        let region = Arc::new(Self::map(&region_path, &init, geometry, bytes)?);
        Ok(Shared {
            current: AtomicPtr::new(Arc::as_ptr(&region).cast_mut()),
            mappings: Mutex::new(vec![region]),
            region_path,
            init,
            leader,
            leading: AtomicBool::new(false),
            geometry,
            bytes,
            unpublished_hits: AtomicU64::new(0),
            publishing: Mutex::new(()),
        })
    }

    fn map(
        path: &std::path::Path,
        init: &File,
        geometry: Geometry,
        bytes: usize,
    ) -> Result<Region> {
        let region = Region::open(path, init, geometry, bytes)?;
        if region.header().ring_tail.load(Ordering::Acquire) == 0
            && region.header().ring_head.load(Ordering::Acquire) == 0
        {
            // Fresh (or never used): give the ring its first-lap sequences.
            // Harmless to repeat on an unused ring.
            let _init = region::FileLock::acquire(init)?;
            if region.header().ring_tail.load(Ordering::Acquire) == 0 {
                ring::initialise(&region);
            }
        }
        Ok(region)
    }

    /// The region file.
    pub(crate) fn region_path(&self) -> &std::path::Path {
        &self.region_path
    }

    /// The current mapping.
    pub(crate) fn region(&self) -> &Region {
        // SAFETY: the pointer is always that of one of `mappings`' regions,
        // which are dropped only with `self`; only shared references are
        // ever made to it.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// Re-maps when another process rebuilt the region (a new file at the
    /// path) or this mapping's header no longer checks out. Returns whether
    /// it re-mapped.
    ///
    /// # Errors
    ///
    /// As [`Shared::open`].
    pub(crate) fn refresh(&self) -> Result<bool> {
        let mut mappings = self
            .mappings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.region();
        if current.is_current() && current.is_valid(self.geometry, self.bytes) {
            return Ok(false);
        }
        let fresh = Arc::new(Self::map(
            &self.region_path,
            &self.init,
            self.geometry,
            self.bytes,
        )?);
        self.current
            .store(Arc::as_ptr(&fresh).cast_mut(), Ordering::Release);
        mappings.push(fresh);
        Ok(true)
    }

    /// Tries to become (or confirms being) the host's leader. The lock is
    /// the kernel's: it goes with this process, however it ends.
    pub(crate) fn try_lead(&self) -> bool {
        if self.leading.load(Ordering::Relaxed) {
            return true;
        }
        let fd = self.leader.as_raw_fd();
        // SAFETY: a valid descriptor; LOCK_NB never blocks.
        let locked = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked {
            // A child forked from now on must not inherit the lock.
            fork::close_in_child(fd);
            let region = self.region();
            let h = region.header();
            h.leader_pid.store(std::process::id(), Ordering::Relaxed);
            h.leader_since
                .store(region::shared_clock_ms(), Ordering::Relaxed);
            self.leading.store(true, Ordering::Relaxed);
        }
        locked
    }

    /// Whether this process leads.
    pub(crate) fn leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// Counts a hit of this process on the host table.
    pub(crate) fn count_hit(&self) {
        self.unpublished_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds this process's hits since the last call to the header's count.
    pub(crate) fn publish_hits(&self) {
        let _publishing = self.lock_publishing();
        let hits = self.unpublished_hits.swap(0, Ordering::Relaxed);
        if hits > 0 {
            self.region()
                .header()
                .hits
                .fetch_add(hits, Ordering::Relaxed);
        }
    }

    /// The host's hits as this process sees them: the header's count and
    /// its own not yet added.
    pub(crate) fn hits(&self) -> u64 {
        let _publishing = self.lock_publishing();
        self.region().header().hits.load(Ordering::Relaxed)
            + self.unpublished_hits.load(Ordering::Relaxed)
    }

    fn lock_publishing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives leadership up (at shutdown).
    pub(crate) fn resign(&self) {
        if self.leading.swap(false, Ordering::Relaxed) {
            let fd = self.leader.as_raw_fd();
            fork::keep_in_child(fd);
            // SAFETY: a valid descriptor we locked.
            unsafe { libc::flock(fd, libc::LOCK_UN) };
        }
    }
}
