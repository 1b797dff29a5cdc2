//! The quick_cache engine: a sharded table under read/write locks, bounded in entries or
//! by weight, with per-entry expiry added on top (quick_cache has none).
//!
//! Expiry is lazy: a read that finds an entry past its `keep_until` drops it and misses,
//! and sweeps (`retain`) drop the rest. The entries are split by key hash into parts of
//! about 8,192 entries (up to 64 parts), and a sweep step walks one part: the steps take
//! the parts in turn, each part once per [`SWEEP_PERIOD`], and a part is walked only when
//! one of its entries may have expired (the earliest `keep_until` seen in it is past).
//! Steps are taken by the operations that already read the clock: an insert, a miss, a
//! read of an expired entry, every 32nd hit of a thread on an entry that expires;
//! `entry_count` sweeps every due part. So an expired
//! entry holds memory for about a second of activity at most, a step's pause is bounded
//! by the part's size rather than the store's, and a hit on an entry that never expires
//! pays no clock read at all.
//!
//! Each part is a few shards, each a single-threaded quick_cache (`unsync::Cache`) under a
//! read/write lock of ours, which is what quick_cache's own `sync::Cache` is, except that a
//! read here lends the entry (`LocalTier::read`) instead of cloning it: a hit touches no
//! reference count, so threads reading one hot key write only the shard's lock word, as
//! a raw quick_cache `get` does. A key comes hashed ([`L1Key`]): its hash picks the part
//! and the shard and is the table's hash too ([`L1Hasher`]).
//!
//! With the front table on (the default), a read first looks at its thread's front table
//! ([`super::front`]): an entry the thread has read, held there with the version its
//! shard had, is served without the lock while that version is unchanged. Every write
//! lock of a shard bumps its version ([`Writing`]), so no mutation can be missed. A read
//! of a key the table does not hold checks and notes one mark of its slot, then takes the
//! lock as it would without the table (and takes the entry into the slot if it is empty).

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::store::{L1Hasher, L1Key, L1KeyRef, LocalEntry, Scope};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use quick_cache::unsync::Cache as Quick;
use quick_cache::Lifecycle;

use super::clock;
use super::front::{self, Held, Keeping, Route, Serve, Version};
use super::MemoryBound;

/// Resident bytes one entry costs beyond its value and the heap bytes of its key (an
/// encoded key too long to be held inline): quick_cache's slot (the `L1Key` with its inline
/// key, the `LocalEntry`, its clock bits and list links), its hash-table index,
/// the ghost (recently evicted hashes) share, the value's `Arc` header and allocator
/// slack (measured with `cargo bench --bench memory`; see BENCHMARKS.md, "Memory bound").
pub(super) const ENTRY_OVERHEAD: u32 = 222;

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

impl quick_cache::Weighter<L1Key, LocalEntry> for Weigh {
    fn weight(&self, _: &L1Key, entry: &LocalEntry) -> u64 {
        match self {
            Weigh::One => 1,
            // quick_cache never evicts an entry of weight 0: every entry weighs something.
            Weigh::Bytes => u64::from(entry.weight).max(1),
        }
    }
}

/// Holds what an insert evicts (up to two entries, as quick_cache's own `sync` lifecycle)
/// so that it is dropped after the shard's lock is released: a value's `Drop` never runs
/// under it.
#[derive(Clone, Copy, Default)]
pub(super) struct DropLater;

impl Lifecycle<L1Key, LocalEntry> for DropLater {
    type RequestState = [Option<(L1Key, LocalEntry)>; 2];
    fn on_evict(&self, state: &mut Self::RequestState, key: L1Key, val: LocalEntry) {
        match state {
            [slot @ None, _] | [_, slot @ None] => *slot = Some((key, val)),
            // A third eviction in one insert is dropped here.
            _ => {}
        }
    }
}

/// How many hits on expiring entries a thread makes per check for a due sweep step.
const TIMED_HITS_PER_SWEEP_CHECK: u32 = 32;

thread_local! {
    /// This thread's hits on expiring entries (see [`TIMED_HITS_PER_SWEEP_CHECK`]).
    static TIMED_HITS: Cell<u32> = const { Cell::new(0) };
}

/// A read's callback: the entry lent, and the instant the clock was read at for its
/// `keep_until` when it expires (see `LocalTier::read_at`).
pub(super) type ReadAt<'a> = dyn FnMut(&LocalEntry, Option<Instant>) + 'a;

/// What a read found under its shard's lock, for the work done after the lock is released.
enum Found {
    Nothing,
    /// An entry that never expires, lent.
    Untimed,
    /// An expiring entry, lent at this instant.
    Lent(Instant),
    /// An entry past its `keep_until` at this instant.
    Expired(Instant),
}

/// What a read taking an entry into its front table asks of the locked read, and gets.
struct Keep {
    /// The clone taken in.
    held: Option<Held>,
    /// The reading tier's id.
    tier: u64,
    /// The heaviest entry taken in.
    max_weight: u32,
    /// Set when the entry found was heavier.
    heavy: bool,
}

/// A shard's table: a single-threaded quick_cache.
type Table = Quick<L1Key, LocalEntry, Weigh, L1Hasher, DropLater>;

/// A lock on cache lines of its own (two, as the adjacent-line prefetcher pairs them), so
/// that the shards' lock words are not written next to their versions or to each other.
#[repr(align(128))]
struct Padded<T>(T);

/// One shard: a single-threaded quick_cache under a lock, and its version.
struct Shard {
    /// Bumped by every write lock of the table, before it is released (see [`Writing`]):
    /// what front tables check their clones against.
    version: Arc<Version>,
    table: Padded<RwLock<Table>>,
}

impl Shard {
    fn new(table: Table) -> Self {
        Self {
            version: Arc::default(),
            table: Padded(RwLock::new(table)),
        }
    }

    #[inline]
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.0.read()
    }

    /// The table, write-locked: its version is bumped when the lock is released.
    fn write(&self) -> Writing<'_> {
        Writing {
            table: self.table.0.write(),
            version: &self.version,
        }
    }
}

/// A shard's table under its write lock. Dropping it bumps the shard's version, then
/// releases the lock: no mutation of a shard can leave a front table's clone looking
/// current, whichever operation made it.
struct Writing<'a> {
    table: RwLockWriteGuard<'a, Table>,
    version: &'a Version,
}

impl Deref for Writing<'_> {
    type Target = Table;
    fn deref(&self) -> &Table {
        &self.table
    }
}

impl DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Table {
        &mut self.table
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.version.bump();
    }
}

/// The memory driver on quick_cache: the entries split by key hash into parts, each a
/// quick_cache of its share of the bound, so a sweep walks one part at a time.
pub(super) struct QuickTier {
    /// Every shard, part after part: a read picks its shard with one mask of the key's
    /// hash (no part to go through), part `p` holds shards `p << part_shift` up to the next.
    shards: Box<[Shard]>,
    parts: Box<[Part]>,
    /// log2 of the shards per part.
    part_shift: u32,
    /// The instant the nanosecond fields count from.
    epoch: Instant,
    /// When the last sweep step ran (nanoseconds since `epoch`; 0: never).
    last_step: AtomicU64,
    /// The part the next sweep step looks at.
    cursor: AtomicUsize,
    /// The time between sweep steps: `period / parts`, so each part is looked at once a
    /// period.
    step: u64,
    /// Whether reads go through the thread's front table first (`front_table = true`).
    front: bool,
    /// The heaviest entry (by its estimated weight) a front table takes in.
    front_max_weight: u32,
    /// This tier's id in front tables: unique in the process, never reused.
    id: u64,
    /// Mixed into its keys' marks in front tables ([`front::salt`]).
    salt: u64,
}

/// One part: what the sweep of its entries (its shards in [`QuickTier::shards`]) needs.
struct Part {
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
    pub(super) fn new(bound: MemoryBound, front: bool, front_max_weight: u32) -> Self {
        Self::with_sweep_period(bound, SWEEP_PERIOD)
            .front_table(front)
            .front_max_weight(front_max_weight)
    }

    /// The same tier, reading through a front table or not.
    pub(super) fn front_table(mut self, on: bool) -> Self {
        self.front = on;
        self
    }

    /// The same tier, its front tables taking in entries of at most this weight, and never
    /// one heavier than a thread's whole budget ([`front::HELD_BUDGET`]): such an entry
    /// could only be refused after its clone was taken, marking the thread's budget spent
    /// with its table maybe empty.
    pub(super) fn front_max_weight(mut self, weight: u32) -> Self {
        self.front_max_weight = weight.min(front::HELD_BUDGET as u32);
        self
    }

    /// Whether reads go through the thread's front table first.
    pub(super) fn has_front_table(&self) -> bool {
        self.front
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
        let mut shards = ((4 * cores / parts as usize).max(1)).next_power_of_two() as u64;
        // As quick_cache's own sharding: fewer shards rather than shards of under 32
        // entries, whose rounded-up shares would add up past a small bound.
        while shards > 1 && items.div_ceil(parts * shards) < 32 {
            shards /= 2;
        }
        let shard = |_| {
            Shard::new(Quick::with_options(
                quick_cache::OptionsBuilder::new()
                    .estimated_items_capacity(clamp(items.div_ceil(parts * shards)))
                    .weight_capacity(capacity.div_ceil(parts * shards))
                    .build()
                    // Both required fields are set just above.
                    .expect("complete quick_cache options"),
                weigh,
                L1Hasher,
                DropLater,
            ))
        };
        let part = |_| Part {
            next_expiry: AtomicU64::new(NEVER),
            sweeping: AtomicBool::new(false),
        };
        let id = front::tier_id();
        Self {
            shards: (0..parts * shards).map(shard).collect(),
            parts: (0..parts).map(part).collect(),
            part_shift: shards.ilog2(),
            epoch: Instant::now(),
            last_step: AtomicU64::new(0),
            cursor: AtomicUsize::new(0),
            step: (period.as_nanos() / u128::from(parts))
                .try_into()
                .unwrap_or(NEVER),
            front: false,
            front_max_weight: super::options::DEFAULT_FRONT_MAX_WEIGHT,
            id,
            salt: front::salt(id),
        }
    }

    /// `key`'s shard, and its index in [`QuickTier::shards`]. It is picked from middle
    /// bits of the key's hash (from bit 32): the table inside a shard uses the low bits
    /// (its buckets) and the top seven (its tags), which keys of one shard must not all
    /// share.
    #[inline]
    fn shard(&self, key: &L1KeyRef<'_>) -> (usize, &Shard) {
        let i = (key.hash_value() >> 32) as usize & (self.shards.len() - 1);
        (i, &self.shards[i])
    }

    /// `key`'s part and shard.
    #[inline]
    fn locate(&self, key: &L1KeyRef<'_>) -> (&Part, &Shard) {
        let (i, shard) = self.shard(key);
        (&self.parts[i >> self.part_shift], shard)
    }

    /// The shards of part `p`.
    fn shards_of(&self, p: usize) -> &[Shard] {
        &self.shards[p << self.part_shift..(p + 1) << self.part_shift]
    }

    fn nanos(&self, at: Instant) -> u64 {
        // Saturates: an instant before the epoch is 0 (due), one ~584 years on is NEVER.
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .try_into()
            .unwrap_or(NEVER)
    }

    #[inline]
    pub(super) fn get(&self, key: &L1KeyRef<'_>) -> Option<LocalEntry> {
        let mut found = None;
        self.read(key, &mut |entry| found = Some(entry.clone()));
        found
    }

    /// Calls `read` on the entry under `key`, borrowed under its shard's read lock, if
    /// present and not past `keep_until`: one lock and one table probe, the clock read
    /// (under the lock) only for an entry that expires. With a front table, an entry this
    /// thread holds a current clone of is lent from it, without the lock.
    #[inline]
    pub(super) fn read(&self, key: &L1KeyRef<'_>, read: &mut dyn FnMut(&LocalEntry)) -> bool {
        self.read_at(key, &mut |entry, _| read(entry))
    }

    /// [`QuickTier::read`], handing `read` the instant the clock was read at for an
    /// expiring entry's `keep_until` (`LocalTier::read_at`, the hit path's read).
    /// With the front table on, a read of a key its slot does not hold (the slot's marks
    /// say so) costs one mark compared and one noted before the locked read, inline. The
    /// reads themselves are out of line, so none pays another's frame (the locked read's
    /// frame cost a front hit ~20 instructions when it was inlined here).
    #[inline(always)]
    pub(super) fn read_at(&self, key: &L1KeyRef<'_>, read: &mut ReadAt<'_>) -> bool {
        if self.front {
            match self.route(key) {
                Route::Lock => {}
                Route::Table => return self.read_front(key, read),
                Route::Take => return self.read_taking(key, read),
            }
        }
        self.read_through(key, read)
    }

    /// Where a read of `key` goes, by its slot's marks in this thread's front table (only
    /// with the table on): [`Route::Lock`] costs one mark compared and one noted.
    #[inline(always)]
    fn route(&self, key: &L1KeyRef<'_>) -> Route {
        let hash = key.hash_value();
        front::route(hash, hash ^ self.salt)
    }

    /// The read through the shard's lock: [`QuickTier::look`] and [`QuickTier::after`]
    /// for a read that takes nothing into a front table, written out so that an untimed
    /// hit is one straight path (the lock, quick_cache's probe, the callback, the unlock)
    /// with no [`Found`] built and dispatched on, nor an empty clone checked for.
    #[inline(always)]
    fn read_locked(&self, key: &L1KeyRef<'_>, read: &mut ReadAt<'_>) -> bool {
        let (_, shard) = self.shard(key);
        let entries = shard.read();
        let Some(entry) = entries.get(key) else {
            drop(entries);
            self.on_miss();
            return false;
        };
        let Some(until) = entry.keep_until else {
            read(entry, None);
            return true;
        };
        let now = clock::now();
        if until <= now {
            drop(entries);
            return self.drop_expired(shard, key, now);
        }
        read(entry, Some(now));
        drop(entries);
        self.timed_hit(now);
        true
    }

    /// The entry under `key`, looked up under the shard's read lock and lent to `read` if
    /// present and not past `keep_until`. With `keep`, a lent entry no heavier than its
    /// limit is also cloned into it (with the stored key and the shard's version, read
    /// under the same lock).
    #[inline(always)]
    fn look(
        shard: &Shard,
        key: &L1KeyRef<'_>,
        read: &mut ReadAt<'_>,
        keep: Option<&mut Keep>,
    ) -> Found {
        let entries = shard.read();
        let (entry, stored) = match keep {
            None => match entries.get(key) {
                None => return Found::Nothing,
                Some(entry) => (entry, None),
            },
            Some(into) => {
                let keeping = Keeping::new(*key);
                match entries.get(&keeping) {
                    None => return Found::Nothing,
                    Some(entry) if entry.held_weight() > into.max_weight => {
                        into.heavy = true;
                        (entry, None)
                    }
                    Some(entry) => (entry, keeping.into_stored().map(|k| (k, into))),
                }
            }
        };
        let found = match entry.keep_until {
            None => Found::Untimed,
            Some(until) => {
                let now = clock::now();
                if until <= now {
                    return Found::Expired(now);
                }
                Found::Lent(now)
            }
        };
        read(
            entry,
            match found {
                Found::Lent(now) => Some(now),
                _ => None,
            },
        );
        if let Some((key, into)) = stored {
            into.held = Some(Held::new(into.tier, key, entry.clone(), &shard.version));
        }
        found
    }

    /// What a read does once its lock is released: a miss or an expired entry may take a
    /// sweep step, so may every 32nd hit of this thread on an expiring entry.
    #[inline(always)]
    fn after(&self, found: Found, shard: &Shard, key: &L1KeyRef<'_>) -> bool {
        match found {
            Found::Untimed => true,
            Found::Nothing => {
                self.on_miss();
                false
            }
            Found::Lent(now) => {
                self.timed_hit(now);
                true
            }
            Found::Expired(now) => self.drop_expired(shard, key, now),
        }
    }

    /// A hit on an expiring entry at `now`. Every 32nd such hit of this thread checks for a
    /// due sweep step: the check (the instant in nanoseconds since the epoch) costs a hit
    /// more than the rest of the driver's timing work, and inserts and misses check too.
    #[inline(always)]
    fn timed_hit(&self, now: Instant) {
        if TIMED_HITS.with(|n| {
            let hits = n.get().wrapping_add(1);
            n.set(hits);
            hits % TIMED_HITS_PER_SWEEP_CHECK == 0
        }) {
            self.maybe_sweep(now);
        }
    }

    /// [`QuickTier::read`] of a key whose slot's marks say this thread's front table holds
    /// it: an entry held there for `key`, current (its shard's version unchanged) and not
    /// past `keep_until`, is lent from it without the shard's lock; otherwise the locked
    /// read, which takes the entry in again when the slot held an old clone of it.
    /// Out of line, with the locked paths out of line too: a front hit then keeps a small
    /// frame (no registers spilled for the locked read's work).
    #[inline(never)]
    fn read_front(&self, key: &L1KeyRef<'_>, read: &mut ReadAt<'_>) -> bool {
        match front::with_slot(key.hash_value(), |slot| slot.serve(self.id, key, read)) {
            Some(Serve::Untimed) => true,
            Some(Serve::Lent(now)) => {
                self.timed_hit(now);
                true
            }
            Some(Serve::Locked { take: true }) => self.read_taking(key, read),
            // Another key of the same mark, or this thread's table is in use (a read
            // re-entered from inside a read) or gone (the thread is exiting).
            Some(Serve::Locked { take: false }) | None => self.read_through(key, read),
        }
    }

    /// [`QuickTier::read_locked`], out of line: [`QuickTier::read_at`]'s locked read (the
    /// hit path's) and a front read's that finds its slot holding another key.
    #[inline(never)]
    fn read_through(&self, key: &L1KeyRef<'_>, read: &mut ReadAt<'_>) -> bool {
        self.read_locked(key, read)
    }

    /// The locked read, the entry found cloned into this thread's slot for `key` (or the
    /// slot's clone of it let go, when it is gone, expired or now too heavy; a key too
    /// heavy to be taken in, or refused for the thread's budget ([`front::HELD_BUDGET`]),
    /// is marked so, and read through the lock from then on).
    #[inline(never)]
    fn read_taking(&self, key: &L1KeyRef<'_>, read: &mut ReadAt<'_>) -> bool {
        let (_, shard) = self.locate(key);
        let mut keep = Keep {
            held: None,
            tier: self.id,
            max_weight: self.front_max_weight,
            heavy: false,
        };
        let found = Self::look(shard, key, read, Some(&mut keep));
        let hash = key.hash_value();
        let mark = hash ^ self.salt;
        if keep.heavy {
            front::with_marks(hash, |marks| marks.refuse(mark));
        }
        // The lock is released: a writer may have bumped the version since the clone was
        // taken, which the clone's recorded version shows at its next read.
        let released = front::with_table(|table| match keep.held {
            Some(held) => table.take(hash, held, mark),
            None => table.let_go(hash, self.id, key),
        });
        let hit = self.after(found, shard, key);
        // Dropped last, once no lock or table borrow is held: a value's `Drop` may do
        // anything.
        drop(released);
        hit
    }

    #[cold]
    fn on_miss(&self) {
        self.maybe_sweep(clock::now());
    }

    /// A read that found the entry past its `keep_until` at `now`: the entry is dropped
    /// (if it is still an expired one: a concurrent insert may have replaced it), a miss.
    #[cold]
    fn drop_expired(&self, shard: &Shard, key: &L1KeyRef<'_>, now: Instant) -> bool {
        let removed = shard
            .write()
            .remove_if(key, |e| e.keep_until.is_some_and(|u| u <= now));
        drop(removed);
        self.maybe_sweep(now);
        false
    }

    pub(super) fn insert(&self, key: L1Key, entry: LocalEntry) {
        let (part, shard) = self.locate(&key.borrowed());
        let until = entry.keep_until;
        let mut evicted = Default::default();
        shard
            .write()
            .insert_with_lifecycle(key, entry, &mut evicted);
        drop(evicted);
        // Noted after the insert, so a sweep that resets `next_expiry` while this runs
        // either sees the entry or sees this note (see `sweep`).
        if let Some(until) = until {
            let at = self.nanos(until);
            if at < part.next_expiry.load(Ordering::Relaxed) {
                part.next_expiry.fetch_min(at, Ordering::SeqCst);
            }
        }
        self.maybe_sweep(clock::now());
    }

    pub(super) fn remove(&self, key: &L1KeyRef<'_>) {
        let (_, shard) = self.locate(key);
        let removed = shard.write().remove(key);
        drop(removed);
    }

    pub(super) fn remove_scope(&self, scope: &Scope) {
        for shard in self.shards() {
            shard.write().retain(|k, _| !scope.covers(k));
        }
    }

    pub(super) fn clear(&self) {
        for shard in self.shards() {
            // Dropped after the lock is released.
            let drained: Vec<_> = shard.write().drain().collect();
            drop(drained);
        }
    }

    fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter()
    }

    /// Entries held, expired ones not yet dropped included.
    pub(super) fn len(&self) -> u64 {
        self.shards().map(|s| s.read().len() as u64).sum()
    }

    pub(super) fn entry_count(&self) -> u64 {
        // A count asked for is a count of live entries: sweep whatever is due, now.
        let now = clock::now();
        for (p, part) in self.parts.iter().enumerate() {
            if self.nanos(now) >= part.next_expiry.load(Ordering::Relaxed) {
                self.sweep(p, now);
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
        if at >= self.parts[i].next_expiry.load(Ordering::Relaxed) {
            self.sweep(i, now);
        }
    }

    /// Drops every entry of part `p` past its `keep_until` and recomputes the part's
    /// `next_expiry` from the rest. One sweep of a part at a time: a caller finding one
    /// running returns at once.
    fn sweep(&self, p: usize, now: Instant) {
        let part = &self.parts[p];
        if part.sweeping.swap(true, Ordering::Acquire) {
            return;
        }
        // Reset before scanning: an insert landing in a shard already scanned notes its
        // expiry after this store (its shard's lock orders it after the scan of that
        // shard), one landing in a shard not yet scanned is seen by the scan.
        part.next_expiry.store(NEVER, Ordering::SeqCst);
        let earliest = Cell::new(NEVER);
        for shard in self.shards_of(p) {
            shard.write().retain(|_, e| match e.keep_until {
                Some(until) if until <= now => false,
                Some(until) => {
                    earliest.set(earliest.get().min(self.nanos(until)));
                    true
                }
                None => true,
            });
        }
        part.next_expiry.fetch_min(earliest.get(), Ordering::SeqCst);
        part.sweeping.store(false, Ordering::Release);
    }
}

/// A dropped tier's entries held in front tables can never be read again (its id is never
/// reused): its shards' versions are retired, and a table needing room lets them go
/// ([`front::tier_dropped`]).
impl Drop for QuickTier {
    fn drop(&mut self) {
        for shard in self.shards() {
            shard.version.retire();
        }
        front::tier_dropped();
    }
}

/// A `u64` bound as quick_cache's estimated item count (it sizes shards by it; the table
/// itself grows on demand).
fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
