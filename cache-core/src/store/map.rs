//! An unbounded in-process tier on a `HashMap`, for tests, examples and documentation.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::{L1Key, L1KeyRef, LocalEntry, LocalTier, Scope};

/// An unbounded local tier on a `RwLock<HashMap>`: for tests, examples and docs. In
/// production use the bounded `memory` driver (moka) of the `cachet` facade.
///
/// ```
/// use cache_core::store::{L1Key, LocalTier, LocalEntry, MapTier};
/// use std::sync::Arc;
/// let tier = MapTier::new();
/// tier.insert(L1Key::parse("app:users:1"), LocalEntry::new(Arc::new(1u8), None, None, 1));
/// assert_eq!(tier.entry_count(), 1);
/// ```
#[derive(Debug, Default)]
pub struct MapTier {
    /// Filed by the key's parts (base and encoded key), as the memory driver files them, so
    /// the two agree on every key, hand-made ones included (the joined text would make two
    /// keys one when their bytes are not UTF-8, or their base no cache's). `std`'s map cannot
    /// look an `L1Key` up by an `L1KeyRef` (no `Equivalent`): a lookup makes an owned key,
    /// and this tier is not for hot paths.
    entries: RwLock<HashMap<L1Key, LocalEntry>>,
}

impl MapTier {
    /// An empty tier, ready to hand to a store builder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<L1Key, LocalEntry>> {
        // No user code runs under this lock, so a poisoned lock still holds a consistent map.
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl LocalTier for MapTier {
    fn get(&self, key: &L1KeyRef<'_>) -> Option<LocalEntry> {
        let mut found = None;
        self.read(key, &mut |entry| found = Some(entry.clone()));
        found
    }
    fn read(&self, key: &L1KeyRef<'_>, read: &mut dyn FnMut(&LocalEntry)) -> bool {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key.to_key()) {
            Some(entry) if entry.keep_until.is_none_or(|until| until > Instant::now()) => {
                read(entry);
                true
            }
            _ => false,
        }
    }
    fn insert(&self, key: L1Key, entry: LocalEntry) {
        self.write().insert(key, entry);
    }
    fn remove(&self, key: &L1KeyRef<'_>) {
        self.write().remove(&key.to_key());
    }
    fn remove_scope(&self, scope: &Scope) {
        self.write().retain(|k, _| !scope.covers(k));
    }
    fn clear(&self) {
        self.write().clear();
    }
    fn entry_count(&self) -> u64 {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len() as u64
    }
    fn driver(&self) -> &'static str {
        "map"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry(keep_until: Option<Instant>) -> LocalEntry {
        LocalEntry::new(Arc::new(1u8), None, keep_until, 1)
    }

    #[test]
    fn reads_what_was_inserted_until_it_is_past_keeping() {
        let tier = MapTier::new();
        assert_eq!(tier.driver(), "map");
        let later = Instant::now() + Duration::from_secs(3600);
        tier.insert(L1Key::parse("a:1"), entry(None));
        tier.insert(L1Key::parse("a:2"), entry(Some(later)));
        tier.insert(
            L1Key::parse("a:3"),
            entry(Some(Instant::now() - Duration::from_millis(1))),
        );
        assert_eq!(tier.entry_count(), 3);
        let read = |key| {
            let mut seen = false;
            let found = tier.read(&L1KeyRef::parse(key), &mut |_| seen = true);
            assert_eq!(found, seen, "{key}");
            found
        };
        assert!(read("a:1") && read("a:2"));
        assert!(!read("a:3"), "past its keeping");
        assert!(!read("a:4"), "never inserted");
        let get = |key| tier.get(&L1KeyRef::parse(key));
        assert!(get("a:2").is_some() && get("a:3").is_none());
    }

    #[test]
    fn removes_a_key_a_scope_or_everything() {
        let tier = MapTier::new();
        for key in ["p:a:1", "p:a:2", "p:a#ns:1", "p:b:1", "p:b:2"] {
            tier.insert(L1Key::parse(key), entry(None));
        }
        let get = |key| tier.get(&L1KeyRef::parse(key));
        tier.remove(&L1KeyRef::parse("p:a:1"));
        assert!(get("p:a:1").is_none() && get("p:a:2").is_some());
        tier.remove_scope(&Scope::new("p:a"));
        assert!(get("p:a:2").is_none() && get("p:a#ns:1").is_none());
        assert_eq!(tier.entry_count(), 2, "the other scope is kept");
        tier.clear();
        assert_eq!(tier.entry_count(), 0);
    }
}
