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
