//! The per-thread front table of the quick_cache engine (on by default; `front_table = false`
//! turns it off).
//!
//! Each thread keeps a direct-mapped table ([`SLOTS`] slots, shared by every tier of the
//! thread) of entries it reads: a clone of the entry (its value's `Arc`, so one reference
//! count bumped when it is taken in), the stored key, the tier's id and the version its
//! shard had when the clone was taken under the shard's read lock. A read whose key is
//! held in its slot, for its tier, while the shard's version is unchanged, is served from
//! the slot without taking the lock: it writes no shared cache line at all.
//!
//! A read first looks at its slot's marks ([`route`]): plain thread-local cells, apart
//! from the table, holding the mark (hash and tier) of the key the slot holds, a shorter
//! mark of the last key read there and not taken in, and one of the last key refused
//! there. A read of a key the slot does not hold compares one mark and notes another, and
//! goes on to the locked read: no `RefCell` borrow, no table, no key comparison.
//!
//! What is taken in ([`route`]): a key read through the lock at an empty slot, on that
//! first read (so a working set of many keys read in turn fills the table: with 2,048
//! slots, about 79 % of 1,024 keys read in turn are held, the rest share a slot with one
//! held); and, at a slot holding another key, a key read twice in a row there (with no
//! read of the held key in between), so keys read in turn do not churn a slot and the
//! values' reference counts once it holds one of them. A key is taken in at most once
//! per slot fill: a slot holding a key keeps it against any number of keys read in turn.
//!
//! What a thread holds is bounded twice: an entry is taken in only if its weight is at
//! most the tier's `front_max_weight`, and only while the weights of everything the
//! thread's table holds (by the entries' estimated weights, less the tag index's copies
//! of their keys, which the index holds: `LocalEntry::held_weight`) stay within
//! [`HELD_BUDGET`] (256 KiB), whatever the number of slots or tiers. An empty slot's
//! first read takes in only what fits in the room left; once the budget is spent, empty
//! slots take nothing on a first read until something held is let go or a tier is
//! dropped. A key read twice in a row (or a held key taken in again) makes room: the
//! table's hand lets go of entries not served since it last passed them (CLOCK), so
//! keys read once cannot keep keys read often out for good. A key refused (too heavy for
//! `front_max_weight`, or no room made) is read through the lock, however often, until
//! another key is refused at its slot. An entry heavier than the whole budget is never
//! cloned (the tier caps its `front_max_weight` at it).
//!
//! Why this is never staler than the locked read: every mutation of a shard (insert, and
//! with it quick_cache's evictions; remove; an expired entry dropped; scope clears,
//! sweeps, `clear`) happens under its write lock and bumps its version before the lock is
//! released (`quick_engine::Writing`), and a clone is taken under the read lock, when no
//! mutation can be under way. So a held clone whose shard still has its version is the
//! entry the locked read would find; a read that sees the old version is ordered before a
//! mutation still holding the write lock, as a read waiting for the lock would be; and a
//! mutation that has returned (on this thread, or on one this thread has synchronized
//! with) has bumped the version this read loads. This is per slot: how a slot came to
//! hold its clone (an empty slot's first read, or a key read twice in a row) and how many
//! slots there are do not enter it; a slot is only ever read, filled or emptied by its
//! own thread.
//!
//! What a held clone costs: the entry stays alive while a slot holds it, after it was
//! removed, replaced or evicted, until that thread reads the same key of that tier again,
//! or takes another key into the slot, or exits; a dropped tier's entries are let go too
//! when the table needs room (a take over [`HELD_BUDGET`] first lets go of them: a tier's
//! drop retires its shards' versions). Reading other keys that fall on the slot
//! only notes them, so a thread that reads distinct keys keeps its held values for as
//! long as it runs; and Rust does not promise to run the main thread's thread-local
//! destructors, so a value held by the main thread may never be dropped. That is at most
//! [`HELD_BUDGET`] of entries per thread (whatever the number of tiers), each of at most
//! its tier's `front_max_weight`, outside the tier's bound, and the value's `Drop` runs
//! later, on that thread. The table itself is [`SLOTS`] pointers (16 KiB), allocated on
//! the thread's first front read, and a box per held entry (the key, the entry, the
//! version: ~160 bytes).
//! A tier's id is drawn from a process-wide counter and never reused, so a slot of a
//! dropped tier never matches another tier's read.

use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cache_core::store::{Equivalent, L1Key, L1KeyRef, LocalEntry};

use super::clock;

/// Slots per thread: a power of two, so a slot is picked with a mask. Each is a pointer
/// (16 KiB for the table of a thread that reads through a front table, allocated on its
/// first such read) to a box of the held key, entry and version when it holds one, and 8
/// bytes of marks in every thread's static thread-local block (16 KiB: [`route`]).
/// 2,048 slots hold ~79 % of 1,024 keys read in turn (an empty slot takes the first key
/// read there; 1,024 would hold ~63 %).
pub(super) const SLOTS: usize = 2048;

/// The most a thread's table holds, by the held entries' weights
/// (`LocalEntry::held_weight`): 256 KiB, about a thousand small entries (222 bytes of
/// engine overhead each, counted in their weight though a held clone does not keep it).
pub(super) const HELD_BUDGET: u64 = 256 << 10;

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

    /// Marks the shard dropped (with its tier): no clone of it is current any more, and a
    /// table needing room lets them go ([`Table::take`]). A live shard never gets there
    /// (2^64 writes).
    pub(super) fn retire(&self) {
        self.0.store(RETIRED, Ordering::Release);
    }
}

/// The version of a dropped tier's shards.
const RETIRED: u64 = u64::MAX;

/// An entry a thread holds for a tier: a clone taken under its shard's read lock, good
/// while the shard's version is still `seen`.
pub(super) struct Held {
    tier: u64,
    key: L1Key,
    entry: LocalEntry,
    version: Arc<Version>,
    seen: u64,
    /// Front hits since the entry was last read through the lock.
    hits: u32,
    /// `hits` when the table's hand last passed the slot ([`Table::let_go_cold`]): the
    /// same at its next pass, the entry was not served in between, and is let go when
    /// the table needs room.
    passed: u32,
}

impl Held {
    /// `entry` under `key` for tier `tier`, cloned under the read lock of its shard, whose
    /// version is `version` (read now, under the same lock).
    pub(super) fn new(tier: u64, key: L1Key, entry: LocalEntry, version: &Arc<Version>) -> Self {
        Self {
            tier,
            key,
            entry,
            version: version.clone(),
            seen: version.get(),
            hits: 0,
            passed: 0,
        }
    }

    /// What it counts against [`HELD_BUDGET`].
    fn weight(&self) -> u64 {
        u64::from(self.entry.held_weight())
    }

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

/// One slot of a thread's table: what it holds, boxed (an empty slot is a null pointer).
pub(super) struct Slot {
    held: Option<Box<Held>>,
}

impl Slot {
    const EMPTY: Slot = Slot { held: None };

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
        let Some(held) = self.held.as_deref_mut().filter(|held| held.is(tier, key)) else {
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
        held.hits += 1;
        if held.hits >= HITS_PER_LOCKED_READ {
            held.hits = 0;
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
    fn hold(&mut self, held: Box<Held>, mark: u64, marks: &Marks) -> Option<Box<Held>> {
        #[cfg(test)]
        TAKEN.with(|n| n.set(n.get() + 1));
        marks.held.set(held_mark(mark));
        self.held.replace(held)
    }

    /// Lets go of what the slot holds; returned, to be dropped once no lock is held.
    fn let_go(&mut self, marks: &Marks) -> Option<Box<Held>> {
        marks.held.set(NO_MARK);
        self.held.take()
    }

    /// The weight of what it holds (0: nothing).
    fn weight(&self) -> u64 {
        self.held.as_ref().map_or(0, |held| held.weight())
    }
}

/// A thread's table: its slots and the weight of what they hold.
pub(super) struct Table {
    slots: [Slot; SLOTS],
    /// The sum of the held entries' weights: at most [`HELD_BUDGET`].
    weight: u64,
    /// The next slot [`Table::let_go_cold`] looks at.
    hand: usize,
}

/// What a slot let go of and a clone refused (`held`), and the stale entries let go to
/// make room (`swept`): dropped by the caller once no lock or table borrow is held (a
/// value's `Drop` may do anything).
pub(super) type Released = ([Option<Held>; 2], Vec<Held>);

impl Table {
    /// An empty table. Out of line: built inline, its 16 KiB on the stack cost every front
    /// read's frame a stack probe per page.
    #[cold]
    #[inline(never)]
    fn new() -> Box<Table> {
        Box::new(Table {
            slots: [Slot::EMPTY; SLOTS],
            weight: 0,
            hand: 0,
        })
    }

    /// The slot of `hash`.
    #[inline(always)]
    fn slot(&mut self, hash: u64) -> &mut Slot {
        &mut self.slots[slot_of(hash)]
    }

    /// Takes `held` (of mark `mark`) into the slot of `hash`, if the table's weight stays
    /// within [`HELD_BUDGET`] once the slot's current entry is let go for it (making room
    /// for it first unless it is an empty slot's first read); else the key is refused
    /// (marked at its slot unless a first read; if the slot held an old clone of it, that
    /// is let go), and empty slots take no first read until something is let go.
    pub(super) fn take(&mut self, hash: u64, held: Held, mark: u64) -> Released {
        let at = slot_of(hash);
        let fits =
            |table: &Table| table.weight - table.slots[at].weight() + held.weight() <= HELD_BUDGET;
        // An empty slot's first read while the budget lasts takes in only what fits in the
        // room left: keys read once never push out others. A key read twice in a row, or
        // a held key taken in again, makes room: entries not served since the hand last
        // passed them are let go ([`Table::let_go_cold`]).
        let first_read = self.slots[at].held.is_none() && !is_full();
        // Before refusing, the entries of dropped tiers, which can never be read again,
        // are let go, once per fill of the budget: not again while it is marked spent
        // ([`is_full`]).
        let mut swept = if fits(self) || is_full() {
            Vec::new()
        } else {
            self.let_go_retired()
        };
        let retired = !swept.is_empty();
        if !first_read && !fits(self) {
            self.let_go_cold(at, held.weight(), &mut swept);
        }
        with_marks(hash, |marks| {
            let slot = &mut self.slots[at];
            let weight = self.weight - slot.weight() + held.weight();
            if weight > HELD_BUDGET {
                // A first read is not marked: read twice in a row, the key makes room.
                if !first_read {
                    marks.refuse(mark);
                }
                set_full(true);
                let old = if slot.holds(held.tier, &held.key.borrowed()) {
                    self.weight -= slot.weight();
                    slot.let_go(marks).map(|old| *old)
                } else {
                    None
                };
                return ([old, Some(held)], swept);
            }
            // Room made (not just what this take uses): empty slots take first reads again.
            if weight < self.weight || retired {
                set_full(false);
            }
            self.weight = weight;
            // The box of what the slot held is reused: a slot filled and emptied by turns
            // allocates once.
            let old = match slot.held.take() {
                Some(mut boxed) => {
                    let old = std::mem::replace(&mut *boxed, held);
                    slot.hold(boxed, mark, marks);
                    Some(old)
                }
                None => {
                    slot.hold(Box::new(held), mark, marks);
                    None
                }
            };
            ([old, None], swept)
        })
    }

    /// Lets go of entries not served since the hand last passed them (into `swept`),
    /// going round from the hand (at most twice round, passing over slot `keep`), until
    /// an entry of weight `need` fits in place of slot `keep`'s.
    #[cold]
    #[inline(never)]
    fn let_go_cold(&mut self, keep: usize, need: u64, swept: &mut Vec<Held>) {
        MARKS.with(|marks| {
            for _ in 0..2 * SLOTS {
                if self.weight - self.slots[keep].weight() + need <= HELD_BUDGET {
                    return;
                }
                let i = self.hand;
                self.hand = (i + 1) % SLOTS;
                let slot = &mut self.slots[i];
                match slot.held.as_deref_mut() {
                    Some(held) if i != keep && held.hits == held.passed => {
                        self.weight -= slot.weight();
                        swept.extend(slot.let_go(&marks[i]).map(|old| *old));
                    }
                    Some(held) => held.passed = held.hits,
                    None => {}
                }
            }
        });
    }

    /// Lets go of every held entry of a dropped tier (`QuickTier`'s drop retires its
    /// shards' versions): never read again, they would keep the budget spent and their
    /// values alive for as long as the thread runs. A clone merely stale (its shard
    /// written since) stays: its key's next read takes the new entry in, in place, so a
    /// hot key keeps its slot against keys read once.
    #[cold]
    #[inline(never)]
    fn let_go_retired(&mut self) -> Vec<Held> {
        let mut swept = Vec::new();
        MARKS.with(|marks| {
            for (slot, marks) in self.slots.iter_mut().zip(marks) {
                if slot
                    .held
                    .as_ref()
                    .is_some_and(|held| held.version.get() == RETIRED)
                {
                    self.weight -= slot.weight();
                    swept.extend(slot.let_go(marks).map(|old| *old));
                }
            }
        });
        swept
    }

    /// Lets go of what the slot of `hash` holds, if it is `key` of tier `tier`.
    pub(super) fn let_go(&mut self, hash: u64, tier: u64, key: &L1KeyRef<'_>) -> Released {
        let slot = &mut self.slots[slot_of(hash)];
        if !slot.holds(tier, key) {
            return ([None, None], Vec::new());
        }
        self.weight -= slot.weight();
        set_full(false);
        (
            [
                with_marks(hash, |marks| slot.let_go(marks)).map(|old| *old),
                None,
            ],
            Vec::new(),
        )
    }
}

/// A slot's marks: what a read checks before it touches the table. A mark is a key's hash
/// mixed with its tier's salt ([`salt`]); two keys may share one (then the table's own
/// comparison tells them apart), so a mark only ever sends a read to the slower path
/// that checks, never serves it.
///
/// The marks are the low bits of the full mark: 32 for the held key's, 16 for the noted and
/// refused ones (keys of one slot share the hash bits that pick it, 16 up; the low 16
/// differ), so that a slot's marks take 8 bytes. Two keys of one slot sharing a short mark
/// only cost a read the checking path (the held mark), a key taken in on its first read
/// twice in a row (the noted one) or one read through the lock (the refused one).
pub(super) struct Marks {
    /// The mark of the key the slot holds ([`NO_MARK`]: none, the slot is empty).
    held: Cell<u32>,
    /// The mark of the last key read through the lock at this slot and not taken in,
    /// since the held key was last read: at a slot holding a key, another is taken in
    /// when it is read twice in a row here (with no read of the held key in between), so
    /// keys read in turn do not churn the slot and the values' reference counts.
    noted: Cell<u16>,
    /// The mark of the last key refused at this slot (too heavy for its tier's
    /// `front_max_weight`, or for [`HELD_BUDGET`]): read through the lock, however often,
    /// until another key is refused here.
    heavy: Cell<u16>,
}

impl Marks {
    const fn empty() -> Marks {
        Marks {
            held: Cell::new(NO_MARK),
            noted: Cell::new(NO_NOTE),
            heavy: Cell::new(NO_NOTE),
        }
    }

    /// Notes that the key of mark `mark` was refused.
    pub(super) fn refuse(&self, mark: u64) {
        self.heavy.set(note(mark));
    }
}

/// A held key's mark, of its full mark. A key whose mark is [`NO_MARK`] (one in 2^32)
/// finds an empty slot looking as if it held it: its reads go the checking path, then
/// through the lock, and it is never taken in at an empty slot (only when read twice in a
/// row at a slot holding another). Left so: mapping it away would cost every front hit
/// an instruction or two.
#[inline(always)]
fn held_mark(mark: u64) -> u32 {
    mark as u32
}

/// A noted or refused key's mark, of its full mark: never [`NO_NOTE`] (a key whose note it
/// were would find every slot refusing it, and be taken in on its first read after a
/// held key's wherever a slot refused another).
#[inline(always)]
fn note(mark: u64) -> u16 {
    (mark as u16).max(1)
}

/// No key: the held mark of an empty slot (see [`held_mark`]), and the noted and refused
/// marks of none ([`note`] never gives it).
const NO_MARK: u32 = 0;
const NO_NOTE: u16 = 0;

const _: () = assert!(
    std::mem::size_of::<[Marks; SLOTS]>() <= 16 << 10,
    "the marks stay within 16 KiB of every thread's static thread-local block"
);

thread_local! {
    static FRONT: RefCell<Option<Box<Table>>> = const { RefCell::new(None) };
    /// The slots' marks: cells with no destructor, so reaching them is an address
    /// computation, with no state check and no borrow (8 bytes a slot, 16 KiB a thread).
    static MARKS: [Marks; SLOTS] = const { [const { Marks::empty() }; SLOTS] };
    /// [`TIERS_DROPPED`] as of when a key was refused for [`HELD_BUDGET`] ([`NOT_FULL`]
    /// when something held was let go since): while it is current, the budget is spent
    /// and an empty slot takes nothing in ([`is_full`]).
    static FULL: Cell<u64> = const { Cell::new(NOT_FULL) };
}

/// [`FULL`] when the budget is not spent.
const NOT_FULL: u64 = u64::MAX;

/// How many tiers were dropped in the process. A tier's drop makes the entries front
/// tables hold for it stale, which a table needing room lets go of: a budget marked spent
/// before a drop is looked at again.
static TIERS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Notes that a tier was dropped (after bumping its shards' versions).
pub(super) fn tier_dropped() {
    TIERS_DROPPED.fetch_add(1, Ordering::Release);
}

/// Whether this thread's budget is spent: a key was refused for it, nothing held was let
/// go since, and no tier was dropped since.
#[inline(always)]
fn is_full() -> bool {
    FULL.with(Cell::get) == TIERS_DROPPED.load(Ordering::Acquire)
}

/// Marks this thread's budget spent, or not.
fn set_full(full: bool) {
    let now = if full {
        TIERS_DROPPED.load(Ordering::Acquire)
    } else {
        NOT_FULL
    };
    FULL.with(|cell| cell.set(now));
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
    /// The first read at an empty slot, or a read twice in a row at a slot holding
    /// another key: the locked read, taking the entry in.
    Take,
    /// The locked read only.
    Lock,
}

/// Where the read of the key of hash `hash` and mark `mark` goes, noting it at its slot.
#[inline(always)]
pub(super) fn route(hash: u64, mark: u64) -> Route {
    MARKS.with(|marks| {
        let marks = &marks[slot_of(hash)];
        let held = marks.held.get();
        if held == held_mark(mark) {
            // A read of the held key comes between the reads of any other: two keys read
            // in turn leave the held one held, rather than swapping the slot every read.
            marks.noted.set(NO_NOTE);
            return Route::Table;
        }
        let note = note(mark);
        let twice = marks.noted.replace(note) == note;
        // Read twice in a row, or at an empty slot while the budget lasts; then, not
        // refused here. (In this order, a read of another key than the held one's decides
        // on the registers the table-off read leaves free: checked first, the refused
        // mark cost that read a register saved and restored.)
        if !twice && (held != NO_MARK || is_full()) {
            return Route::Lock;
        }
        if marks.heavy.get() == note {
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
    with_table(|table| f(table.slot(hash)))
}

/// Runs `f` on this thread's table (allocated on its first use); `None` as
/// [`with_slot`].
#[inline(always)]
pub(super) fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> Option<R> {
    FRONT
        .try_with(|table| {
            let mut table = table.try_borrow_mut().ok()?;
            Some(f(table.get_or_insert_with(Table::new)))
        })
        .ok()
        .flatten()
}

/// What this thread's table holds: the number of entries and their weight (tests).
#[cfg(test)]
pub(super) fn held() -> (usize, u64) {
    with_table(|table| {
        let count = table.slots.iter().filter(|s| s.held.is_some()).count();
        let weight = table.slots.iter().map(Slot::weight).sum();
        assert_eq!(weight, table.weight, "the table's weight is its entries'");
        (count, weight)
    })
    .expect("the table is not in use")
}

/// Runs `f` on the marks of `hash`'s slot.
pub(super) fn with_marks<R>(hash: u64, f: impl FnOnce(&Marks) -> R) -> R {
    MARKS.with(|marks| f(&marks[slot_of(hash)]))
}

/// The slot of a key of hash `hash`: the top bits of the hash times an odd constant
/// (multiplicative hashing). A range of the hash's own bits (16 up, or the top ones) is
/// spread unevenly by the key hasher over short keys of one key space: 1,024 keys `0` to
/// `1023` fell on 590 to 900 of 2,048 slots, depending on the process's seed, against
/// ~806 for an even spread; the product's top bits fall on 785 to 830 (thirty processes
/// each). The constant fits an instruction's 32-bit immediate: a multiply and a shift, as
/// many instructions as a shift and a mask.
#[inline(always)]
pub(super) fn slot_of(hash: u64) -> usize {
    (hash.wrapping_mul(SLOT_FACTOR) >> SLOT_SHIFT) as usize
}

/// [`slot_of`]'s factor, and its shift (the top bits of the product pick the slot).
const SLOT_FACTOR: u64 = 0x7F4A_7C15;
const SLOT_SHIFT: u32 = 64 - SLOTS.trailing_zeros();

/// A hash on slot `slot` (tests): the slot's number in the top bits, divided by
/// [`slot_of`]'s factor (times its inverse modulo 2^64, by Newton's iteration).
#[cfg(test)]
pub(super) fn hash_on(slot: usize) -> u64 {
    let mut inverse = SLOT_FACTOR;
    for _ in 0..6 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(SLOT_FACTOR.wrapping_mul(inverse)));
    }
    let hash = ((slot as u64) << SLOT_SHIFT).wrapping_mul(inverse);
    assert_eq!(slot_of(hash), slot);
    hash
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
        weighing(tier, key, version, 8)
    }

    fn weighing(tier: u64, key: &str, version: &Arc<Version>, weight: u32) -> Held {
        let entry = LocalEntry::new(Arc::new(1u8), None, None, weight);
        Held::new(tier, L1Key::parse(key), entry, version)
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
        assert!(slot
            .hold(Box::new(held(7, "p:c:1", &version)), 1, &marks)
            .is_none());
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
        assert!(slot
            .hold(Box::new(held(7, "p:c:2", &version)), 2, &marks)
            .is_some());
        assert!(slot.let_go(&marks).is_some());
        assert_eq!(marks.held.get(), NO_MARK, "marked empty");
    }

    /// A hash (and `HASH | 1` another on the same slot) whose slot's marks the route tests
    /// start by clearing.
    const HASH: u64 = 0x0123_4567_89AB_CDEE;

    fn clear_marks() {
        assert_eq!(slot_of(HASH), slot_of(HASH | 1), "one slot");
        with_marks(HASH, |marks| {
            marks.held.set(NO_MARK);
            marks.noted.set(NO_NOTE);
            marks.heavy.set(NO_NOTE);
        });
        set_full(false);
    }

    /// Marks the slot of `HASH` as holding the key of mark `mark`.
    fn mark_held(mark: u64) {
        with_marks(HASH, |marks| marks.held.set(held_mark(mark)));
    }

    #[test]
    fn an_empty_slot_takes_the_first_key_read_there() {
        clear_marks();
        let (key, other) = (salt(1) ^ HASH, salt(1) ^ (HASH | 1));
        assert_eq!(route(HASH, key), Route::Take, "the first read");
        assert_eq!(
            route(HASH | 1, other),
            Route::Take,
            "not taken: still empty"
        );
        mark_held(key);
        assert_eq!(route(HASH, key), Route::Table);
        assert_eq!(
            route(HASH | 1, other),
            Route::Lock,
            "the slot holds another"
        );
    }

    /// The short marks' "none" value is no key's: a key whose short mark is zero is taken
    /// in at an empty slot like any other (not taken for a refused one at a slot where
    /// nothing was refused), and, at a slot holding another key, is not taken in on its
    /// first read after the held key's.
    #[test]
    fn a_key_whose_short_mark_is_zero_is_routed_as_any_other() {
        clear_marks();
        let zero = 0xABCD_0000_0001_0000;
        assert_eq!(route(HASH, zero), Route::Take, "an empty slot's first read");
        mark_held(salt(1) ^ HASH);
        with_marks(HASH, |marks| marks.refuse(salt(2) ^ HASH));
        assert_eq!(route(HASH, salt(1) ^ HASH), Route::Table, "the held key");
        assert_eq!(route(HASH, zero), Route::Lock, "read once: not taken in");
        assert_eq!(route(HASH, zero), Route::Take, "read twice in a row");
        clear_marks();
    }

    #[test]
    fn a_key_is_taken_in_when_read_twice_in_a_row() {
        clear_marks();
        mark_held(salt(3) ^ HASH);
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
        mark_held(held);
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
        assert_eq!(route(HASH, heavy), Route::Take, "an empty slot");
        with_marks(HASH, |marks| marks.refuse(heavy));
        for _ in 0..3 {
            assert_eq!(route(HASH, heavy), Route::Lock, "not taken again");
        }
        assert_eq!(route(HASH | 1, light), Route::Take, "another key is");
    }

    /// Once a key was refused for the budget, empty slots take nothing, until something
    /// held is let go; a slot holding a key still takes another read twice in a row (it
    /// may fit in place of the one it replaces).
    #[test]
    fn a_spent_budget_stops_empty_slots_taking_keys() {
        clear_marks();
        let (key, other) = (salt(1) ^ HASH, salt(1) ^ (HASH | 1));
        set_full(true);
        assert_eq!(route(HASH, key), Route::Lock, "the budget is spent");
        assert_eq!(route(HASH, key), Route::Take, "read twice in a row");
        set_full(false);
        assert_eq!(route(HASH | 1, other), Route::Take);
    }

    /// The table takes entries in while their weights add up to at most `HELD_BUDGET`;
    /// then refuses an empty slot's first read (marking the table full, not the key); a
    /// key taken in again (or read twice in a row) makes room by letting go of entries not
    /// served since the hand last passed them; letting go of an entry makes room again.
    #[test]
    fn a_table_holds_at_most_its_budget() {
        clear_marks();
        let version = Arc::new(Version::default());
        let mut table = Table::new();
        const WEIGHT: u32 = 1000;
        let fits = (HELD_BUDGET / u64::from(WEIGHT)) as usize;
        assert!(fits < SLOTS, "the budget binds before the slots run out");
        let hash = hash_on;
        for i in 0..fits {
            let taken = table.take(
                hash(i),
                weighing(1, &format!("p:c:{i}"), &version, WEIGHT),
                1,
            );
            assert!(
                taken.0.iter().all(Option::is_none) && taken.1.is_empty(),
                "{i} taken, nothing let go"
            );
        }
        assert_eq!(table.weight, fits as u64 * u64::from(WEIGHT));
        assert!(!is_full());
        // One more, the first read at an empty slot: refused, handed back to be dropped,
        // and not marked (read twice in a row, it makes room); the budget marked spent.
        let ([old, refused], swept) =
            table.take(hash(fits), weighing(1, "p:c:x", &version, WEIGHT), 9);
        assert!(old.is_none() && refused.is_some() && swept.is_empty());
        assert!(is_full(), "the table is full");
        with_marks(hash(fits), |marks| {
            assert_eq!(marks.heavy.get(), NO_NOTE, "not marked")
        });
        assert!(table.weight <= HELD_BUDGET);
        // A heavier clone of a held key makes room: slot 1's entry, served since it was
        // taken in, is passed over once; slot 2's, not, is let go.
        table.slots[1].held.as_mut().expect("held").hits = 1;
        let ([old, refused], swept) =
            table.take(hash(0), weighing(1, "p:c:0", &version, 2 * WEIGHT), 1);
        assert!(old.is_some() && refused.is_none(), "taken in place");
        assert_eq!(swept.len(), 1, "one entry let go to make room");
        assert!(table.slots[1].held.is_some(), "the served one kept");
        assert!(table.slots[2].held.is_none(), "the cold one let go");
        assert_eq!(table.weight, fits as u64 * u64::from(WEIGHT));
        // A lighter clone replacing one held fits, and makes room.
        let ([old, refused], _) = table.take(hash(3), weighing(1, "p:c:3", &version, 8), 1);
        assert!(old.is_some() && refused.is_none());
        assert!(!is_full(), "room again");
        let released = table.let_go(hash(4), 1, &L1KeyRef::parse("p:c:4"));
        assert!(released.0[0].is_some());
        assert_eq!(
            table.weight,
            (fits as u64 - 2) * u64::from(WEIGHT) + 8,
            "what is held, weighed"
        );
        assert!(table.let_go(hash(4), 1, &L1KeyRef::parse("p:c:4")).0[0].is_none());
        clear_marks();
        for i in 0..fits {
            with_marks(hash(i), |marks| marks.held.set(NO_MARK));
        }
    }

    #[test]
    fn every_so_many_front_hits_one_reads_through_the_lock() {
        let version = Arc::new(Version::default());
        let mut slot = Slot::EMPTY;
        slot.hold(Box::new(held(7, "p:c:1", &version)), 1, &Marks::empty());
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
