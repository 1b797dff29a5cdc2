//! The quick_cache engine: a sharded table under read/write locks, bounded in entries or
//! by weight, with per-entry expiry added on top (quick_cache has none).
//!
//! Expiry is lazy: a read that finds an entry past its `keep_until` drops it and misses,
//! and a sweep (`retain` over every shard) drops the rest. A sweep runs only when an entry
//! may have expired (the earliest `keep_until` seen is past), at most once per
//! [`SWEEP_PERIOD`], and is started by the operations that already read the clock: an
//! insert, a miss, a read of an entry that expires, `entry_count`. So expired entries
//! hold memory for about a second of activity at most, and a hit on an entry that never
//! expires pays no clock read at all.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::store::{LocalEntry, Scope};
use quick_cache::sync::Cache as Quick;

use super::MemoryBound;

/// Resident bytes one entry costs beyond its key and value: quick_cache's slot (the key's
/// `String`, the `LocalEntry`, its clock bits and list links), its hash-table index,
/// the ghost (recently evicted hashes) share, the value's `Arc` header and allocator
/// slack (measured with `cargo bench --bench memory`; see BENCHMARKS.md, "Memory bound").
pub(super) const ENTRY_OVERHEAD: u32 = 180;

/// How often at most a sweep of expired entries runs.
pub(super) const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// The weight an entry is assumed to have when sizing a `max_size` table.
const TYPICAL_WEIGHT: u64 = 256;

/// `u64::MAX` in `next_expiry`: no entry is known to expire.
const NEVER: u64 = u64::MAX;

/// Weighs an entry as one (`max_entries`) or by its estimated size (`max_size`).
#[derive(Clone, Copy)]
enum Weigh {
    One,
    Bytes,
}

impl quick_cache::Weighter<String, LocalEntry> for Weigh {
    fn weight(&self, _: &String, entry: &LocalEntry) -> u64 {
        match self {
            Weigh::One => 1,
            // quick_cache never evicts an entry of weight 0: every entry weighs something.
            Weigh::Bytes => u64::from(entry.weight).max(1),
        }
    }
}

/// The memory driver on quick_cache.
pub(super) struct QuickTier {
    entries: Quick<String, LocalEntry, Weigh>,
    /// The instant the `*_nanos` fields count from.
    epoch: Instant,
    /// The earliest `keep_until` (nanoseconds since `epoch`) among entries inserted since
    /// the last sweep and those it kept; [`NEVER`] when none expires. May be earlier than
    /// the truth (the entry was removed since), never later.
    next_expiry: AtomicU64,
    /// When the last sweep started (nanoseconds since `epoch`).
    last_sweep: AtomicU64,
    /// Held by the one sweep running.
    sweeping: AtomicBool,
    period: Duration,
}

impl QuickTier {
    pub(super) fn new(bound: MemoryBound) -> Self {
        Self::with_sweep_period(bound, SWEEP_PERIOD)
    }

    pub(super) fn with_sweep_period(bound: MemoryBound, period: Duration) -> Self {
        let entries = match bound {
            MemoryBound::Entries(n) => Quick::with_weighter(clamp(n), n, Weigh::One),
            MemoryBound::Bytes(bytes) => {
                Quick::with_weighter(clamp(bytes / TYPICAL_WEIGHT), bytes, Weigh::Bytes)
            }
        };
        Self {
            entries,
            epoch: Instant::now(),
            next_expiry: AtomicU64::new(NEVER),
            last_sweep: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
            period,
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        // Saturates: an instant before the epoch is 0 (due), one ~584 years on is NEVER.
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .try_into()
            .unwrap_or(NEVER)
    }

    pub(super) fn get(&self, key: &str) -> Option<LocalEntry> {
        let Some(entry) = self.entries.get(key) else {
            self.maybe_sweep(Instant::now());
            return None;
        };
        // The clock is read only for entries that expire.
        let Some(until) = entry.keep_until else {
            return Some(entry);
        };
        let now = Instant::now();
        if until <= now {
            // Only if it is still the expired entry: a concurrent insert may have replaced it.
            self.entries
                .remove_if(key, |e| e.keep_until.is_some_and(|u| u <= now));
            self.maybe_sweep(now);
            return None;
        }
        self.maybe_sweep(now);
        Some(entry)
    }

    pub(super) fn insert(&self, key: &str, entry: LocalEntry) {
        let until = entry.keep_until;
        self.entries.insert(key.to_owned(), entry);
        // Noted after the insert, so a sweep that resets `next_expiry` while this runs
        // either sees the entry or sees this note (see `sweep`).
        if let Some(until) = until {
            let at = self.nanos(until);
            if at < self.next_expiry.load(Ordering::Relaxed) {
                self.next_expiry.fetch_min(at, Ordering::SeqCst);
            }
        }
        self.maybe_sweep(Instant::now());
    }

    pub(super) fn remove(&self, key: &str) {
        self.entries.remove(key);
    }

    pub(super) fn remove_scope(&self, scope: &Scope) {
        self.entries.retain(|k, _| !scope.contains(k));
    }

    pub(super) fn clear(&self) {
        self.entries.clear();
    }

    pub(super) fn entry_count(&self) -> u64 {
        // A count asked for is a count of live entries: sweep whatever is due, now.
        let now = Instant::now();
        if self.nanos(now) >= self.next_expiry.load(Ordering::Relaxed) {
            self.sweep(now);
        }
        self.entries.len() as u64
    }

    /// Entries held, expired ones not yet dropped included.
    pub(super) fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Sweeps if an entry may have expired and the last sweep is a period old.
    fn maybe_sweep(&self, now: Instant) {
        let at = self.nanos(now);
        if at < self.next_expiry.load(Ordering::Relaxed) {
            return;
        }
        let last = self.last_sweep.load(Ordering::Relaxed);
        if last != 0 && at.saturating_sub(last) < self.period.as_nanos() as u64 {
            return;
        }
        self.sweep(now);
    }

    /// Drops every entry past its `keep_until` and recomputes `next_expiry` from the rest.
    /// One sweep at a time: a caller finding one running returns at once.
    fn sweep(&self, now: Instant) {
        if self.sweeping.swap(true, Ordering::Acquire) {
            return;
        }
        self.last_sweep
            .store(self.nanos(now).max(1), Ordering::Relaxed);
        // Reset before scanning: an insert landing in a shard already scanned notes its
        // expiry after this store (its shard's lock orders it after the scan of that
        // shard), one landing in a shard not yet scanned is seen by the scan.
        self.next_expiry.store(NEVER, Ordering::SeqCst);
        let earliest = Cell::new(NEVER);
        self.entries.retain(|_, e| match e.keep_until {
            Some(until) if until <= now => false,
            Some(until) => {
                earliest.set(earliest.get().min(self.nanos(until)));
                true
            }
            None => true,
        });
        self.next_expiry.fetch_min(earliest.get(), Ordering::SeqCst);
        self.sweeping.store(false, Ordering::Release);
    }
}

/// A `u64` bound as quick_cache's estimated item count (it sizes shards by it; the table
/// itself grows on demand).
fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
