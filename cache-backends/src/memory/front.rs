//! The per-thread front table of the quick_cache engine (on by default; `front_table = false`
//! turns it off).
//!
//! Each thread keeps a small direct-mapped table ([`SLOTS`] slots, shared by every tier
//! of the thread) of entries it read often: a clone of the entry (its value's `Arc`, so
//! one reference count bumped when it is taken in), the stored key, the tier's id and the
//! version its shard had when the clone was taken under the shard's read lock. A read
//! whose key is held in its slot, for its tier, while the shard's version is unchanged,
//! is served from the slot without taking the lock: it writes no shared cache line at all.
//!
//! A read first looks at its slot's marks ([`route`]): plain thread-local cells, apart
//! from the table, holding the mark (hash and tier) of the key the slot holds, of the last
//! key read there and not taken in, and of the last key refused for its weight. A read of
//! a key the slot does not hold compares one mark and notes another, and goes on to the
//! locked read: no `RefCell` borrow, no table, no key comparison. Only an entry whose
//! weight is at most the tier's `front_max_weight` is taken in, so a thread's table keeps
//! at most [`SLOTS`] × that alive (by the entries' estimated weights, less the tag index's
//! copies of their keys, which the index holds: `LocalEntry::held_weight`).
//!
//! Why this is never staler than the locked read: every mutation of a shard (insert, and
//! with it quick_cache's evictions; remove; an expired entry dropped; scope clears,
//! sweeps, `clear`) happens under its write lock and bumps its version before the lock is
//! released (`quick_engine::Writing`), and a clone is taken under the read lock, when no
//! mutation can be under way. So a held clone whose shard still has its version is the
//! entry the locked read would find; a read that sees the old version is ordered before a
//! mutation still holding the write lock, as a read waiting for the lock would be; and a
//! mutation that has returned (on this thread, or on one this thread has synchronized
//! with) has bumped the version this read loads.
//!
//! What a held clone costs: the entry stays alive while a slot holds it, after it was
//! removed, replaced or evicted, until that thread reads the same key of that tier again,
//! or takes another key into the slot (a key read twice in a row there with no read of
//! the held one in between), or exits. Reading other keys that fall on the slot only
//! notes them, so a thread that reads distinct keys keeps its held values for as long as
//! it runs; and Rust does not promise to run the main thread's thread-local destructors,
//! so a value held by the main thread may never be dropped. That is at most [`SLOTS`]
//! entries per thread (whatever the number of tiers), each of at most its tier's
//! `front_max_weight`, outside the tier's bound, and the value's `Drop` runs later, on
//! that thread.
//! A tier's id is drawn from a process-wide counter and never reused, so a slot of a
//! dropped tier never matches another tier's read.

use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cache_core::store::{Equivalent, L1Key, L1KeyRef, LocalEntry};

use super::clock;

/// Slots per thread: a power of two, so a slot is picked with a mask. 64 slots of
/// 168 bytes each (the key, the entry, the version, the tags) are ~10.5 KiB per thread
/// that reads through a front table, allocated on its first such read.
pub(super) const SLOTS: usize = 64;

/// Front hits of a slot between two locked reads of its entry: those reads mark the
/// entry as used in quick_cache (which front hits do not), so a hot entry held in front
/// tables is not evicted as a cold one.
pub(super) const HITS_PER_LOCKED_READ: u32 = 256;

/// The next tier id. Ids are never reused: a slot of a dropped tier can never be taken
/// for another's, whatever address the new tier gets.
static NEXT_TIER: AtomicU64 = AtomicU64::new(1);

/// A fresh tier id.
pub(super) fn tier_id() -> u64 {
    NEXT_TIER.fetch_add(1, Ordering::Relaxed)
}

/// A shard's version: bumped by every write lock of the shard, before it is released. On
/// cache lines of its own (two, as the adjacent-line prefetcher pairs them): front hits
/// read it while locked reads of the shard's other keys write its lock word. Behind an
/// `Arc` that held entries share, so a front hit reads it without finding the shard.
#[repr(align(128))]
#[derive(Default)]
pub(super) struct Version(AtomicU64);

impl Version {
    /// The version as of now; under the shard's read lock, the version of what it holds.
    #[inline]
    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Bumps it: only under the shard's write lock (the one writer: no read-modify-write).
    pub(super) fn bump(&self) {
        let next = self.0.load(Ordering::Relaxed).wrapping_add(1);
        self.0.store(next, Ordering::Release);
    }
}

/// An entry a thread holds for a tier: a clone taken under its shard's read lock, good
/// while the shard's version is still `seen`.
pub(super) struct Held {
    pub(super) tier: u64,
    pub(super) key: L1Key,
    pub(super) entry: LocalEntry,
    pub(super) version: Arc<Version>,
    pub(super) seen: u64,
}

impl Held {
    /// Whether this is `key` of tier `tier`.
    #[inline(always)]
    fn is(&self, tier: u64, key: &L1KeyRef<'_>) -> bool {
        self.tier == tier && key.is_key_of(&self.key)
    }
}

/// What a slot did with a read.
pub(super) enum Serve {
    /// Lent its entry, which never expires.
    Untimed,
    /// Lent its entry, which expires, at this instant.
    Lent(Instant),
    /// Holds nothing for the key (or this time is the one of [`HITS_PER_LOCKED_READ`]
    /// to go through the lock): read through the lock, and take the entry in (`true`)
    /// or not.
    Locked { take: bool },
}

/// One slot of a thread's table.
pub(super) struct Slot {
    pub(super) held: Option<Held>,
    /// Front hits since the held entry was last read through the lock.
    hits: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        held: None,
        hits: 0,
    };

    /// Whether the slot holds `key` of tier `tier`, whatever its version.
    pub(super) fn holds(&self, tier: u64, key: &L1KeyRef<'_>) -> bool {
        self.held.as_ref().is_some_and(|held| held.is(tier, key))
    }

    /// A read of `key` of tier `tier`, whose mark is the slot's held one: lent to `read`
    /// from the slot if it holds a current clone of it, not past its `keep_until`;
    /// otherwise what the locked read should do.
    #[inline]
    pub(super) fn serve(
        &mut self,
        tier: u64,
        key: &L1KeyRef<'_>,
        read: &mut (dyn FnMut(&LocalEntry, Option<Instant>) + '_),
    ) -> Serve {
        // Another key with the same mark (hash and tier mixed): read through the lock.
        let Some(held) = self.held.as_ref().filter(|held| held.is(tier, key)) else {
            return Serve::Locked { take: false };
        };
        if held.version.get() != held.seen {
            return Serve::Locked { take: true };
        }
        let served = match held.entry.keep_until {
            None => Serve::Untimed,
            Some(until) => {
                let now = clock::now();
                if until <= now {
                    return Serve::Locked { take: true };
                }
                Serve::Lent(now)
            }
        };
        self.hits += 1;
        if self.hits >= HITS_PER_LOCKED_READ {
            self.hits = 0;
            return Serve::Locked { take: true };
        }
        #[cfg(test)]
        SERVED.with(|n| n.set(n.get() + 1));
        read(
            &held.entry,
            match served {
                Serve::Lent(now) => Some(now),
                _ => None,
            },
        );
        served
    }

    /// Holds `held` (of mark `mark`) from now on; what it held before is returned, to be
    /// dropped once no lock is held.
    pub(super) fn hold(&mut self, held: Held, mark: u64, marks: &Marks) -> Option<Held> {
        #[cfg(test)]
        TAKEN.with(|n| n.set(n.get() + 1));
        self.hits = 0;
        marks.held.set(mark);
        self.held.replace(held)
    }

    /// Lets go of what the slot holds; returned, to be dropped once no lock is held.
    pub(super) fn let_go(&mut self, marks: &Marks) -> Option<Held> {
        marks.held.set(NO_MARK);
        self.held.take()
    }
}

/// A thread's table, allocated on the thread's first front read: a thread that never reads
/// through a front table (or a process without one) holds only the empty pointer.
type Table = Option<Box<[Slot; SLOTS]>>;

/// A slot's marks: what a read checks before it touches the table. A mark is a key's hash
/// mixed with its tier's salt ([`salt`]); two keys may share one (then the table's own
/// comparison tells them apart), so a mark only ever sends a read to the slower path
/// that checks, never serves it.
pub(super) struct Marks {
    /// The mark of the key the slot holds ([`NO_MARK`]: none).
    held: Cell<u64>,
    /// The mark of the last key read through the lock at this slot and not taken in,
    /// since the held key was last read: a key is taken in when it is read twice in a
    /// row here (with no read of the held key in between), so keys read in turn do not
    /// churn the slot and the values' reference counts, whether it holds one of them or
    /// none.
    noted: Cell<u64>,
    /// The mark of the last key found too heavy to be taken in at this slot: read
    /// through the lock, however often, until another key is refused here.
    heavy: Cell<u64>,
}

impl Marks {
    const fn empty() -> Marks {
        Marks {
            held: Cell::new(NO_MARK),
            noted: Cell::new(NO_MARK),
            heavy: Cell::new(NO_MARK),
        }
    }

    /// Notes that the key of mark `mark` was found too heavy to be taken in.
    pub(super) fn refuse(&self, mark: u64) {
        self.heavy.set(mark);
    }
}

/// No key: a mark no slot starts with a key for (a key whose mark it is only goes the
/// checking path once more).
const NO_MARK: u64 = 0;

thread_local! {
    static FRONT: RefCell<Table> = const { RefCell::new(None) };
    /// The slots' marks: cells with no destructor, so reaching them is an address
    /// computation, with no state check and no borrow (24 bytes a slot, 1.5 KiB a thread).
    static MARKS: [Marks; SLOTS] = const { [const { Marks::empty() }; SLOTS] };
}

#[cfg(test)]
thread_local! {
    /// Front hits counted on this thread (tests check that they happened).
    static SERVED: Cell<u64> = const { Cell::new(0) };
    /// Entries this thread took into its slots (each a clone: tests count the churn).
    static TAKEN: Cell<u64> = const { Cell::new(0) };
}

/// How many reads this thread had served from its front table (counted in tests only).
#[cfg(test)]
pub(super) fn served() -> u64 {
    SERVED.with(Cell::get)
}

/// How many entries this thread had taken into its slots (counted in tests only).
#[cfg(test)]
pub(super) fn taken() -> u64 {
    TAKEN.with(Cell::get)
}

/// A tier's salt, mixed into its keys' marks: an odd multiple of its id, so two tiers
/// never share one.
pub(super) fn salt(tier: u64) -> u64 {
    tier.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Where a read goes, by its slot's marks.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// The slot holds a key of this mark: look in the table.
    Table,
    /// Read twice in a row at the slot: the locked read, taking the entry in.
    Take,
    /// The locked read only.
    Lock,
}

/// Where the read of the key of hash `hash` and mark `mark` goes, noting it at its slot.
#[inline(always)]
pub(super) fn route(hash: u64, mark: u64) -> Route {
    MARKS.with(|marks| {
        let marks = &marks[slot_of(hash)];
        if marks.held.get() == mark {
            // A read of the held key comes between the reads of any other: two keys read
            // in turn leave the held one held, rather than swapping the slot every read.
            marks.noted.set(NO_MARK);
            Route::Table
        } else if marks.noted.replace(mark) != mark || marks.heavy.get() == mark {
            Route::Lock
        } else {
            Route::Take
        }
    })
}

/// Runs `f` on the slot of `hash` in this thread's table; `None` when the table is in
/// use (a read re-entered from inside a read: the value's `Clone` or `Drop` calling the
/// tier) or gone (the thread is exiting): the caller reads through the lock. (The slot's
/// marks are apart: [`with_marks`]; reaching them here too made a front hit's table access
/// a function of its own, ~75 instructions more a hit.)
#[inline]
pub(super) fn with_slot<R>(hash: u64, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    FRONT
        .try_with(|table| {
            let mut table = table.try_borrow_mut().ok()?;
            let slots = table.get_or_insert_with(|| Box::new([Slot::EMPTY; SLOTS]));
            Some(f(&mut slots[slot_of(hash)]))
        })
        .ok()
        .flatten()
}

/// Runs `f` on the marks of `hash`'s slot.
pub(super) fn with_marks<R>(hash: u64, f: impl FnOnce(&Marks) -> R) -> R {
    MARKS.with(|marks| f(&marks[slot_of(hash)]))
}

/// The slot of a key of hash `hash`: picked by bits that the tier's part and shard
/// (32..48) and the table's buckets (the low ones) do not pick by alone.
#[inline(always)]
pub(super) fn slot_of(hash: u64) -> usize {
    (hash >> 16) as usize & (SLOTS - 1)
}

/// A lookup key that keeps a clone of the stored key it matches: how a slot gets the
/// stored key (with its key space's allocation, compared by pointer on front hits)
/// from quick_cache, which lends values only.
///
/// The clone is made at the match, before the entry's weight is known, since no lookup of
/// quick_cache's hands the stored key out afterwards: an entry too heavy to be held wastes
/// it (a reference count up and down), once per thread and key, as its marks then refuse
/// it ([`Marks::refuse`]) and its reads go through the lock without taking.
pub(super) struct Keeping<'a> {
    key: L1KeyRef<'a>,
    stored: Cell<Option<L1Key>>,
}

impl<'a> Keeping<'a> {
    pub(super) fn new(key: L1KeyRef<'a>) -> Self {
        Self {
            key,
            stored: Cell::new(None),
        }
    }

    /// The stored key matched, if the lookup found one.
    pub(super) fn into_stored(self) -> Option<L1Key> {
        self.stored.into_inner()
    }
}

impl Hash for Keeping<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl Equivalent<L1Key> for Keeping<'_> {
    fn equivalent(&self, stored: &L1Key) -> bool {
        let same = self.key.equivalent(stored);
        if same {
            self.stored.set(Some(stored.clone()));
        }
        same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(tier: u64, key: &str, version: &Arc<Version>) -> Held {
        Held {
            tier,
            key: L1Key::parse(key),
            entry: LocalEntry::new(Arc::new(1u8), None, None, 8),
            version: version.clone(),
            seen: version.get(),
        }
    }

    /// What `slot` does with a read of `key` of `tier`: `Some(true)` lent, `Some(false)`
    /// to take in through the lock, `None` through the lock only.
    fn serve(slot: &mut Slot, tier: u64, key: &str) -> Option<bool> {
        let mut lent = false;
        match slot.serve(tier, &L1KeyRef::parse(key), &mut |_, _| lent = true) {
            Serve::Untimed | Serve::Lent(_) => Some(lent),
            Serve::Locked { take } => {
                assert!(!lent);
                take.then_some(false)
            }
        }
    }

    #[test]
    fn a_slot_serves_its_key_for_its_tier_while_the_version_holds() {
        let version = Arc::new(Version::default());
        let (mut slot, marks) = (Slot::EMPTY, Marks::empty());
        assert!(slot.hold(held(7, "p:c:1", &version), 1, &marks).is_none());
        assert_eq!(marks.held.get(), 1, "marked held");
        assert!(slot.holds(7, &L1KeyRef::parse("p:c:1")));
        assert_eq!(serve(&mut slot, 7, "p:c:1"), Some(true));
        assert_eq!(serve(&mut slot, 8, "p:c:1"), None, "another tier");
        assert_eq!(serve(&mut slot, 7, "p:c:2"), None, "another key");
        assert_eq!(serve(&mut slot, 7, "p:d:1"), None, "another cache");
        version.bump();
        assert_eq!(
            serve(&mut slot, 7, "p:c:1"),
            Some(false),
            "stale: taken in again"
        );
        assert!(slot.hold(held(7, "p:c:2", &version), 2, &marks).is_some());
        assert!(slot.let_go(&marks).is_some());
        assert_eq!(marks.held.get(), NO_MARK, "marked empty");
    }

    /// A hash (and `HASH | 1` another on the same slot) whose slot's marks the route tests
    /// start by clearing.
    const HASH: u64 = 5 << 16;

    fn clear_marks() {
        with_marks(HASH, |marks| {
            for cell in [&marks.held, &marks.noted, &marks.heavy] {
                cell.set(NO_MARK);
            }
        });
    }

    #[test]
    fn a_key_is_taken_in_when_read_twice_in_a_row() {
        clear_marks();
        let (key, other) = (salt(1) ^ HASH, salt(1) ^ (HASH | 1));
        assert_eq!(route(HASH, key), Route::Lock);
        assert_eq!(route(HASH, key), Route::Take);
        assert_eq!(route(HASH | 1, other), Route::Lock);
        assert_eq!(route(HASH, salt(2) ^ HASH), Route::Lock);
        assert_eq!(
            route(HASH, salt(2) ^ HASH),
            Route::Take,
            "the same hash in another tier"
        );
        assert_eq!(route(HASH, key), Route::Lock);
    }

    #[test]
    fn two_keys_read_in_turn_leave_the_held_one_held() {
        clear_marks();
        let (held, other) = (salt(1) ^ HASH, salt(1) ^ (HASH | 1));
        with_marks(HASH, |marks| marks.held.set(held));
        for _ in 0..3 {
            assert_eq!(route(HASH | 1, other), Route::Lock, "not taken in");
            assert_eq!(route(HASH, held), Route::Table, "still held");
        }
        // Read twice in a row, the other key is taken in.
        assert_eq!(route(HASH | 1, other), Route::Lock);
        assert_eq!(route(HASH | 1, other), Route::Take);
    }

    #[test]
    fn a_key_refused_for_its_weight_is_read_through_the_lock() {
        clear_marks();
        let (heavy, light) = (salt(1) ^ HASH, salt(1) ^ (HASH | 1));
        assert_eq!(route(HASH, heavy), Route::Lock);
        assert_eq!(route(HASH, heavy), Route::Take);
        with_marks(HASH, |marks| marks.refuse(heavy));
        for _ in 0..3 {
            assert_eq!(route(HASH, heavy), Route::Lock, "not taken again");
        }
        assert_eq!(route(HASH | 1, light), Route::Lock);
        assert_eq!(route(HASH | 1, light), Route::Take, "another key is");
    }

    #[test]
    fn every_so_many_front_hits_one_reads_through_the_lock() {
        let version = Arc::new(Version::default());
        let mut slot = Slot::EMPTY;
        slot.hold(held(7, "p:c:1", &version), 1, &Marks::empty());
        let through_lock = (0..3 * HITS_PER_LOCKED_READ)
            .filter(|_| serve(&mut slot, 7, "p:c:1") == Some(false))
            .count();
        assert_eq!(through_lock, 3);
    }

    #[test]
    fn tier_ids_are_never_reused() {
        let a = tier_id();
        let b = tier_id();
        assert!(b > a);
    }

    #[test]
    fn keeping_clones_the_stored_key_it_matches() {
        let stored = L1Key::parse("p:c:1");
        let key = stored.borrowed();
        let keeping = Keeping::new(key);
        assert!(keeping.equivalent(&stored));
        let kept = keeping.into_stored().expect("kept");
        assert!(
            std::ptr::eq(kept.base(), stored.base()),
            "the same key space"
        );
        let other = L1KeyRef::parse("p:c:2");
        let keeping = Keeping::new(other);
        assert!(!keeping.equivalent(&stored));
        assert!(keeping.into_stored().is_none());
    }
}
