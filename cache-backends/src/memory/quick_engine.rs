//! The quick_cache engine: a sharded table under read/write locks, bounded in entries or
//! by weight, with per-entry expiry added on top (quick_cache has none).
//!
//! Expiry is lazy: a read that finds an entry past its `keep_until` drops it and misses,
//! and sweeps (`retain`) drop the rest. The entries are split by key hash into parts of
//! about 8,192 entries (up to 64 parts), and a sweep step walks one part: the steps take
//! the parts in turn, each part once per [`SWEEP_PERIOD`], and a part is walked only when
//! one of its entries may have expired (the earliest `keep_until` seen in it is past).
//! Steps are taken by the operations that already read the clock: an insert, a miss, a
//! read of an entry that expires; `entry_count` sweeps every due part. So an expired
//! entry holds memory for about a second of activity at most, a step's pause is bounded
//! by the part's size rather than the store's, and a hit on an entry that never expires
//! pays no clock read at all.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// The memory driver on quick_cache: the entries split by key hash into parts, each a
/// quick_cache of its share of the bound, so a sweep walks one part at a time.
pub(super) struct QuickTier {
    parts: Box<[Part]>,
    /// Picks a key's part.
    hasher: quick_cache::DefaultHashBuilder,
    /// The instant the nanosecond fields count from.
    epoch: Instant,
    /// When the last sweep step ran (nanoseconds since `epoch`; 0: never).
    last_step: AtomicU64,
    /// The part the next sweep step looks at.
    cursor: AtomicUsize,
    /// The time between sweep steps: `period / parts`, so each part is looked at once a
    /// period.
    step: u64,
}

/// One part: its entries and what its sweep needs.
struct Part {
    entries: Quick<String, LocalEntry, Weigh>,
    /// The earliest `keep_until` (nanoseconds since the tier's epoch) among entries
    /// inserted since the part's last sweep and those it kept; [`NEVER`] when none
    /// expires. May be earlier than the truth (the entry was removed since), never later.
    next_expiry: AtomicU64,
    /// Held by the one sweep of this part running.
    sweeping: AtomicBool,
}

/// Entries per part (estimated) before the tier splits: a sweep walks at most about this
/// many entries, up to [`MAX_PARTS`] parts.
const ENTRIES_PER_PART: u64 = 8192;
const MAX_PARTS: u64 = 64;

impl QuickTier {
    pub(super) fn new(bound: MemoryBound) -> Self {
        Self::with_sweep_period(bound, SWEEP_PERIOD)
    }

    pub(super) fn with_sweep_period(bound: MemoryBound, period: Duration) -> Self {
        let (items, capacity, weigh) = match bound {
            MemoryBound::Entries(n) => (n, n, Weigh::One),
            MemoryBound::Bytes(bytes) => (bytes / TYPICAL_WEIGHT, bytes, Weigh::Bytes),
        };
        // A power of two, so that a part is picked with a mask.
        let parts = (items / ENTRIES_PER_PART).clamp(1, MAX_PARTS);
        let parts = 1u64 << parts.ilog2();
        // The parts are shards already: together they keep quick_cache's default lock
        // count (4 per core) rather than multiplying it, which also keeps each shard's
        // tables large enough to be allocated (and freed) by mmap, not left as holes in
        // the heap as they grow.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = (4 * cores / parts as usize).max(1);
        let part = |_| Part {
            entries: Quick::with_options(
                quick_cache::OptionsBuilder::new()
                    .estimated_items_capacity(clamp(items.div_ceil(parts)))
                    .weight_capacity(capacity.div_ceil(parts))
                    .shards(shards)
                    .build()
                    // Both required fields are set just above.
                    .expect("complete quick_cache options"),
                weigh,
                quick_cache::DefaultHashBuilder::default(),
                quick_cache::sync::DefaultLifecycle::default(),
            ),
            next_expiry: AtomicU64::new(NEVER),
            sweeping: AtomicBool::new(false),
        };
        Self {
            parts: (0..parts).map(part).collect(),
            hasher: quick_cache::DefaultHashBuilder::default(),
            epoch: Instant::now(),
            last_step: AtomicU64::new(0),
            cursor: AtomicUsize::new(0),
            step: (period.as_nanos() / u128::from(parts))
                .try_into()
                .unwrap_or(NEVER),
        }
    }

    #[inline]
    fn part(&self, key: &str) -> &Part {
        if self.parts.len() == 1 {
            return &self.parts[0];
        }
        // The high bits: quick_cache picks its own shards from the low ones.
        let hash = self.hasher.hash_one(key);
        &self.parts[(hash >> 40) as usize & (self.parts.len() - 1)]
    }

    fn nanos(&self, at: Instant) -> u64 {
        // Saturates: an instant before the epoch is 0 (due), one ~584 years on is NEVER.
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .try_into()
            .unwrap_or(NEVER)
    }

    #[inline]
    pub(super) fn get(&self, key: &str) -> Option<LocalEntry> {
        let part = self.part(key);
        let Some(entry) = part.entries.get(key) else {
            self.on_miss();
            return None;
        };
        // The clock is read only for entries that expire.
        match entry.keep_until {
            None => Some(entry),
            Some(until) => self.check_expiry(part, key, entry, until),
        }
    }

    #[cold]
    fn on_miss(&self) {
        self.maybe_sweep(Instant::now());
    }

    /// The entry if `until` is still ahead, else drops it.
    fn check_expiry(
        &self,
        part: &Part,
        key: &str,
        entry: LocalEntry,
        until: Instant,
    ) -> Option<LocalEntry> {
        let now = Instant::now();
        if until <= now {
            // Only if it is still the expired entry: a concurrent insert may have replaced it.
            part.entries
                .remove_if(key, |e| e.keep_until.is_some_and(|u| u <= now));
            self.maybe_sweep(now);
            return None;
        }
        self.maybe_sweep(now);
        Some(entry)
    }

    pub(super) fn insert(&self, key: &str, entry: LocalEntry) {
        let part = self.part(key);
        let until = entry.keep_until;
        part.entries.insert(key.to_owned(), entry);
        // Noted after the insert, so a sweep that resets `next_expiry` while this runs
        // either sees the entry or sees this note (see `sweep`).
        if let Some(until) = until {
            let at = self.nanos(until);
            if at < part.next_expiry.load(Ordering::Relaxed) {
                part.next_expiry.fetch_min(at, Ordering::SeqCst);
            }
        }
        self.maybe_sweep(Instant::now());
    }

    pub(super) fn remove(&self, key: &str) {
        self.part(key).entries.remove(key);
    }

    pub(super) fn remove_scope(&self, scope: &Scope) {
        for part in self.parts.iter() {
            part.entries.retain(|k, _| !scope.contains(k));
        }
    }

    pub(super) fn clear(&self) {
        for part in self.parts.iter() {
            part.entries.clear();
        }
    }

    /// Entries held, expired ones not yet dropped included.
    pub(super) fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.entries.len() as u64).sum()
    }

    pub(super) fn entry_count(&self) -> u64 {
        // A count asked for is a count of live entries: sweep whatever is due, now.
        let now = Instant::now();
        for part in self.parts.iter() {
            if self.nanos(now) >= part.next_expiry.load(Ordering::Relaxed) {
                self.sweep(part, now);
            }
        }
        self.len()
    }

    /// One sweep step when one is due: the next part in turn, swept if an entry of it may
    /// have expired.
    fn maybe_sweep(&self, now: Instant) {
        let at = self.nanos(now);
        let last = self.last_step.load(Ordering::Relaxed);
        if last != 0 && at.saturating_sub(last) < self.step {
            return;
        }
        // One caller takes the step; the others go on.
        if self
            .last_step
            .compare_exchange(last, at.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let i = self.cursor.fetch_add(1, Ordering::Relaxed) & (self.parts.len() - 1);
        let part = &self.parts[i];
        if at >= part.next_expiry.load(Ordering::Relaxed) {
            self.sweep(part, now);
        }
    }

    /// Drops every entry of `part` past its `keep_until` and recomputes the part's
    /// `next_expiry` from the rest. One sweep of a part at a time: a caller finding one
    /// running returns at once.
    fn sweep(&self, part: &Part, now: Instant) {
        if part.sweeping.swap(true, Ordering::Acquire) {
            return;
        }
        // Reset before scanning: an insert landing in a shard already scanned notes its
        // expiry after this store (its shard's lock orders it after the scan of that
        // shard), one landing in a shard not yet scanned is seen by the scan.
        part.next_expiry.store(NEVER, Ordering::SeqCst);
        let earliest = Cell::new(NEVER);
        part.entries.retain(|_, e| match e.keep_until {
            Some(until) if until <= now => false,
            Some(until) => {
                earliest.set(earliest.get().min(self.nanos(until)));
                true
            }
            None => true,
        });
        part.next_expiry.fetch_min(earliest.get(), Ordering::SeqCst);
        part.sweeping.store(false, Ordering::Release);
    }
}

/// A `u64` bound as quick_cache's estimated item count (it sizes shards by it; the table
/// itself grows on demand).
fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
