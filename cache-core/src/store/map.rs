//! An unbounded in-process tier on a `HashMap`, for tests, examples and documentation.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::{LocalEntry, LocalTier, Scope};

/// An unbounded local tier on a `RwLock<HashMap>`: for tests, examples and docs. In
/// production use the bounded `memory` driver (moka) of the `cachet` facade.
///
/// ```
/// use cache_core::store::{LocalTier, LocalEntry, MapTier};
/// use std::sync::Arc;
/// let tier = MapTier::new();
/// tier.insert("app:users:1", LocalEntry::new(Arc::new(1u8), None, None, 1));
/// assert_eq!(tier.entry_count(), 1);
/// ```
#[derive(Debug, Default)]
pub struct MapTier {
    entries: RwLock<HashMap<String, LocalEntry>>,
}

impl MapTier {
    /// An empty tier, ready to hand to a store builder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, LocalEntry>> {
        // No user code runs under this lock, so a poisoned lock still holds a consistent map.
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl LocalTier for MapTier {
    fn get(&self, key: &str) -> Option<LocalEntry> {
        let mut found = None;
        self.read(key, &mut |entry| found = Some(entry.clone()));
        found
    }
    fn read(&self, key: &str, read: &mut dyn FnMut(&LocalEntry)) -> bool {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some(entry) if entry.keep_until.is_none_or(|until| until > Instant::now()) => {
                read(entry);
                true
            }
            _ => false,
        }
    }
    fn insert(&self, key: &str, entry: LocalEntry) {
        self.write().insert(key.to_owned(), entry);
    }
    fn remove(&self, key: &str) {
        self.write().remove(key);
    }
    fn remove_scope(&self, scope: &Scope) {
        self.write().retain(|k, _| !scope.contains(k));
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
        tier.insert("a:1", entry(None));
        tier.insert("a:2", entry(Some(later)));
        tier.insert(
            "a:3",
            entry(Some(Instant::now() - Duration::from_millis(1))),
        );
        assert_eq!(tier.entry_count(), 3);
        let read = |key| {
            let mut seen = false;
            let found = tier.read(key, &mut |_| seen = true);
            assert_eq!(found, seen, "{key}");
            found
        };
        assert!(read("a:1") && read("a:2"));
        assert!(!read("a:3"), "past its keeping");
        assert!(!read("a:4"), "never inserted");
        assert!(tier.get("a:2").is_some() && tier.get("a:3").is_none());
    }

    #[test]
    fn removes_a_key_a_scope_or_everything() {
        let tier = MapTier::new();
        for key in ["a:1", "a:2", "a#ns:1", "b:1", "b:2"] {
            tier.insert(key, entry(None));
        }
        tier.remove("a:1");
        assert!(tier.get("a:1").is_none() && tier.get("a:2").is_some());
        tier.remove_scope(&Scope::new("a"));
        assert!(tier.get("a:2").is_none() && tier.get("a#ns:1").is_none());
        assert_eq!(tier.entry_count(), 2, "the other scope is kept");
        tier.clear();
        assert_eq!(tier.entry_count(), 0);
    }
}
