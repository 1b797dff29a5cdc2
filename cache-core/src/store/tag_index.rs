//! The tags of a cache handle and the local tier's tag index (what `tags.rs`'s
//! `delete_by_tag` deletes from L1): see `tags.rs` for the design.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::allocation::allocated;
use super::{L1KeyRef, LocalTier};
use crate::layout::tag_key;

/// The tags one cache handle writes with: their names and their sets' stored keys.
#[derive(Debug, Default)]
pub(crate) struct Tags {
    pub(crate) names: Vec<String>,
    pub(crate) keys: Vec<String>,
}

impl Tags {
    /// `names` (deduplicated, in order) for a cache whose entries live under `base`.
    pub(crate) fn new<'a>(base: &str, names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut tags = Tags::default();
        for name in names {
            if !tags.names.iter().any(|n| n == name) {
                tags.keys.push(tag_key(base, name));
                tags.names.push(name.to_owned());
            }
        }
        tags
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The tag sets' stored keys.
    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// What the index holds for an entry written under `stored` and listed in `tags` tag sets
/// ([`TagIndex::copies_with`]), counted in the entry's weight (the index keeps it while the
/// local tier holds the key, and up to one sweep longer): per set, the key's `String` in it
/// (24 bytes, and 8 for the set's control byte and share of free slots) and the allocation
/// of its bytes.
pub(crate) fn weight(stored: &str, tags: usize) -> usize {
    tags * (std::mem::size_of::<String>() + 8 + allocated(stored.len()))
}

/// The local tier's tag index: tag set key → stored keys written with that tag.
///
/// Entries the local tier drops on its own (expiry, size bound, another instance's
/// invalidation) are not reported to the index, so it is swept as it grows: once it
/// holds twice as many keys as after the last sweep, keys the tier no longer holds are
/// forgotten. That keeps it within a constant factor of the tier's tagged entries, at an
/// amortized constant cost per tagged write.
#[derive(Default)]
pub(crate) struct TagIndex {
    state: Mutex<IndexState>,
    /// `IndexState::len`, readable without the lock: a store whose caches write no tags
    /// pays one load a write for [`TagIndex::copies_with`].
    listed: AtomicUsize,
}

#[derive(Default)]
struct IndexState {
    sets: HashMap<String, HashSet<String>>,
    /// How many keys the sets hold together.
    len: usize,
    /// Sweep when `len` reaches this.
    sweep_at: usize,
}

/// The smallest index size worth sweeping.
const MIN_SWEEP: usize = 1024;

impl TagIndex {
    /// Lists `stored` under each of `tag_keys`.
    pub(crate) fn add(&self, tag_keys: &[String], stored: &str, l1: &dyn LocalTier) {
        // Every update leaves the map consistent: a poisoned lock still guards a usable index.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for tag_key in tag_keys {
            let set = state.sets.entry(tag_key.clone()).or_default();
            if set.insert(stored.to_owned()) {
                state.len += 1;
            }
        }
        if state.len >= state.sweep_at.max(MIN_SWEEP) {
            state.sets.retain(|_, keys| {
                keys.retain(|key| l1.get(&L1KeyRef::parse(key)).is_some());
                !keys.is_empty()
            });
            state.len = state.sets.values().map(HashSet::len).sum();
            state.sweep_at = (state.len * 2).max(MIN_SWEEP);
        }
        self.listed.store(state.len, Ordering::Relaxed);
    }

    /// How many copies of `stored` the index holds once `tag_keys` list it too: the sets
    /// listing it already (written with other tags before, on this instance) and those of
    /// `tag_keys` that do not yet. An entry written under `stored` counts them all in its
    /// weight ([`weight`]), whatever its own write's tags (none, for an untagged write or a
    /// copy of an L2 value).
    pub(crate) fn copies_with(&self, tag_keys: &[String], stored: &str) -> usize {
        if self.listed.load(Ordering::Relaxed) == 0 {
            return tag_keys.len();
        }
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let listed = state
            .sets
            .iter()
            .filter(|(tag_key, keys)| !tag_keys.contains(tag_key) && keys.contains(stored))
            .count();
        listed + tag_keys.len()
    }

    /// Removes the sets `tag_keys` from the index, returning the keys they listed.
    pub(crate) fn take(&self, tag_keys: &[String]) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for tag_key in tag_keys {
            if let Some(keys) = state.sets.remove(tag_key) {
                state.len -= keys.len();
                out.extend(keys);
            }
        }
        self.listed.store(state.len, Ordering::Relaxed);
        out
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).len
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{L1Key, LocalEntry, MapTier};

    #[test]
    fn tags_are_deduplicated_in_order() {
        let tags = Tags::new("b", ["x", "y", "x"]);
        assert_eq!(tags.names, ["x", "y"]);
        assert_eq!(tags.keys(), ["b:=tag:x", "b:=tag:y"]);
        assert!(!tags.is_empty());
        assert!(Tags::new("b", []).is_empty());
    }

    #[test]
    fn after_a_sweep_the_next_waits_until_the_index_doubled() {
        let l1 = MapTier::new();
        let index = TagIndex::default();
        let tags = vec![tag_key("b", "t")];
        let held = MIN_SWEEP / 2 + 100;
        for i in 0..MIN_SWEEP {
            let key = format!("b:{i}");
            if i < held {
                l1.insert(
                    L1Key::parse(&key),
                    LocalEntry::new(Arc::new(1u8), None, None, 1),
                );
            }
            index.add(&tags, &key, &*l1);
        }
        // Swept at MIN_SWEEP: what the tier holds is left, and the next sweep is at twice that.
        assert_eq!(index.len(), held);
        for i in 0..held - 1 {
            index.add(&tags, &format!("c:{i}"), &*l1);
        }
        assert_eq!(index.len(), held * 2 - 1, "no sweep before twice the size");
        index.add(&tags, "b:last", &*l1);
        assert_eq!(index.len(), held, "swept at twice the size");
    }

    #[test]
    fn the_index_forgets_what_the_tier_dropped_as_it_grows() {
        let l1 = MapTier::new();
        let index = TagIndex::default();
        let tags = vec![tag_key("b", "t")];
        for i in 0..MIN_SWEEP - 1 {
            index.add(&tags, &format!("b:{i}"), &*l1);
        }
        // nothing is in the tier, and the next add reaches the sweep threshold
        assert_eq!(index.len(), MIN_SWEEP - 1);
        let kept = "b:kept";
        l1.insert(
            L1Key::parse(kept),
            LocalEntry::new(Arc::new(1u8), None, None, 1),
        );
        index.add(&tags, kept, &*l1);
        assert_eq!(index.len(), 1);
        assert_eq!(index.take(&tags), [kept]);
        assert_eq!(index.len(), 0);
        assert!(index.take(&tags).is_empty());
    }
}
