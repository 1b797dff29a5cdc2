//! Write versions of a store's L1: the ordering rule between writes, deletes, bus
//! invalidations and L2 backfills of one key.
//!
//! An L1 entry can be written by two things that race with what happened since they
//! started: a lookup that read L2 and backfills L1 with what it read, and a write that
//! puts its entry back once L2 acknowledged it (a backfill may have replaced it meanwhile).
//! Either is stale if the key changed after it started — a delete, a newer write, another
//! instance's invalidation — and writing it would leave L1 disagreeing with L2 for a TTL.
//!
//! So every key has a version (a counter shared by a stripe of keys: a collision only costs
//! a skipped backfill or put-back, never a stale entry):
//!
//! - every change of a key's L1 entry — a write's insert, a delete's removals, a removal by
//!   the bus, a cleared scope — bumps it ([`Versions::change`], [`Versions::change_all`]);
//! - a backfill notes the version before reading L2 and inserts only if it is unchanged
//!   ([`Versions::insert_if_unchanged`]), under the stripe's lock, so no change slips in
//!   between the check and the insert;
//! - a write puts its entry back only if nothing changed the key since its own insert, and
//!   bumps it doing so, so a backfill that read L2 before the write landed is refused.
//!   When something did change the key, the write removes its entry instead: the key's
//!   latest L2 state (whichever of the racing operations Redis applied last) is read again
//!   on the next lookup, so L1 follows L2 rather than guessing.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use crate::timer::lock_ignoring_poison as lock;

/// How many version counters a store keeps.
const STRIPES: usize = 256;

/// The versions of a store's keys, by stripe.
pub(crate) struct Versions {
    stripes: Box<[Mutex<u64>]>,
}

impl Default for Versions {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
        }
    }
}

impl Versions {
    fn stripe(&self, key: &str) -> &Mutex<u64> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        // The remainder is below `STRIPES`, so it fits a usize.
        &self.stripes[(hasher.finish() % STRIPES as u64) as usize]
    }

    /// The version of `key` now: noted by a lookup before it reads L2.
    pub(crate) fn current(&self, key: &str) -> u64 {
        *lock(self.stripe(key))
    }

    /// A change of `key`'s L1 entry: bumps its version and makes the change (under the
    /// stripe's lock); returns the new version.
    pub(crate) fn change(&self, key: &str, edit: impl FnOnce()) -> u64 {
        let mut version = lock(self.stripe(key));
        *version += 1;
        edit();
        *version
    }

    /// A backfill: makes `edit` only if `key`'s version is still `seen`.
    pub(crate) fn insert_if_unchanged(&self, key: &str, seen: u64, edit: impl FnOnce()) -> bool {
        let version = lock(self.stripe(key));
        if *version != seen {
            return false;
        }
        edit();
        true
    }

    /// A write's put-back: makes `edit` (and bumps the version) only if `key`'s version is
    /// still `mine`, the one its own insert left.
    pub(crate) fn change_if_unchanged(&self, key: &str, mine: u64, edit: impl FnOnce()) -> bool {
        let mut version = lock(self.stripe(key));
        if *version != mine {
            return false;
        }
        *version += 1;
        edit();
        true
    }

    /// A change of many keys at once (a cleared scope, everything): bumps every version,
    /// then makes the change. A backfill that checked its stripe before the bump inserted
    /// before it, so the change removes what it inserted; one that checks after is refused.
    pub(crate) fn change_all(&self, edit: impl FnOnce()) {
        for stripe in self.stripes.iter() {
            *lock(stripe) += 1;
        }
        edit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_refuses_older_backfills_and_put_backs() {
        let v = Versions::default();
        let seen = v.current("k");
        let mine = v.change("k", || {});
        assert!(!v.insert_if_unchanged("k", seen, || {}));
        assert!(v.insert_if_unchanged("k", mine, || {}));
        assert!(v.change_if_unchanged("k", mine, || {}));
        assert!(
            !v.change_if_unchanged("k", mine, || {}),
            "a put-back bumps too"
        );
        let now = v.current("k");
        v.change_all(|| {});
        assert!(!v.insert_if_unchanged("k", now, || {}));
    }

    #[test]
    fn versions_only_move_forward_so_no_old_backfill_is_taken_again() {
        let v = Versions::default();
        let before = v.current("k");
        let mine = v.change("k", || {});
        assert_eq!(v.current("k"), mine);
        let mut put_back = false;
        assert!(v.change_if_unchanged("k", mine, || put_back = true));
        assert!(put_back && v.current("k") > mine);
        // Backfills noted before the write or before its put-back stay refused, after a
        // cleared scope too.
        let after = v.current("k");
        v.change_all(|| {});
        assert!(v.current("k") > after);
        for seen in [before, mine, after] {
            assert!(!v.insert_if_unchanged("k", seen, || unreachable!()));
        }
        let mut inserted = false;
        assert!(v.insert_if_unchanged("k", v.current("k"), || inserted = true));
        assert!(inserted);
    }
}
