//! The `memory` driver: an in-process tier bounded in entries or in bytes, on quick_cache
//! (the default) or moka (`engine = "moka"`).
//!
//! ```toml
//! [stores.memory]
//! l1 = { driver = "memory", max_entries = 10000 }                    # quick_cache
//! # l1 = { driver = "memory", engine = "moka", max_size = "64mb" }
//! ```
//!
//! Values are stored typed (an `Arc<dyn Any>`): a hit clones the value out, with no
//! serialization; on quick_cache the entry is lent to the reader under its shard's read lock
//! (`LocalTier::read`), so a hit touches no reference count. Both engines keep the same behaviours: the bound, per-entry expiry at
//! `keep_until` (an entry past it is never returned), `remove`, scope clears and `clear`.
//! They differ in cost (BENCHMARKS.md, "In-memory engine"): a quick_cache read is a sharded
//! hash lookup, several times cheaper than moka's and scaling across threads; moka expires
//! entries eagerly on a timer wheel, where quick_cache drops them when read and sweeps the
//! rest a part at a time, each part about once a second, as operations come.
//!
//! Size bounds use each entry's estimated weight: the value's inline size (`size_of`), the
//! engine's measured per-entry overhead (about 222 bytes on quick_cache, 457 on moka, the
//! key's inline bytes included), an encoded key's allocation when it is too long to be held
//! inline (over 22 bytes: its bytes and malloc's header, in 16-byte steps), an entry with a
//! time to idle's idle record (64 bytes as malloc serves it) and the tag index's copy of the
//! stored key per tag set listing it (the entry's own tags, and those earlier writes of the
//! key on this instance gave it); the cache's name and namespace are shared by its entries and weigh
//! nothing per entry. Heap data owned by the value (a `String`'s bytes, a `Vec`'s elements)
//! is not counted, so prefer `max_entries` for values that own large heap data.

mod clock;
mod front;
mod moka_engine;
mod options;
mod quick_engine;

use std::sync::Arc;

use cache_core::config::TierConfig;
use cache_core::driver::DriverRegistration;
use cache_core::store::{L1Key, L1KeyRef, LocalEntry, LocalTier, Scope};
use cache_core::CacheError;

pub use options::{MemoryBound, MemoryEngine, MemoryOptions};

use moka_engine::MokaTier;
use quick_engine::QuickTier;

/// An in-process tier, on the engine its options name.
///
/// ```
/// use cache_backends::memory::{MemoryEngine, MemoryOptions, MemoryTier};
/// use cache_core::store::{L1Key, L1KeyRef, LocalEntry, LocalTier};
/// use std::sync::Arc;
/// let tier = MemoryTier::new(MemoryOptions::max_entries(1000));
/// assert_eq!(tier.engine(), MemoryEngine::QuickCache);
/// tier.insert(L1Key::parse("app:users:1"), LocalEntry::new(Arc::new(7u32), None, None, 64));
/// let key = L1KeyRef::parse("app:users:1");
/// assert_eq!(tier.get(&key).unwrap().value.downcast_ref::<u32>(), Some(&7));
///
/// let moka = MemoryTier::new(MemoryOptions::max_size(1 << 20).engine(MemoryEngine::Moka));
/// moka.insert(L1Key::parse("app:users:1"), LocalEntry::new(Arc::new(7u32), None, None, 64));
/// assert!(moka.get(&key).is_some());
/// ```
pub struct MemoryTier {
    engine: Engine,
}

/// The engine underneath; a `match` per call costs less than another indirection.
enum Engine {
    QuickCache(QuickTier),
    Moka(MokaTier),
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("engine", &self.engine())
            .field("front_table", &self.front_table())
            .field(
                "entries",
                &match &self.engine {
                    Engine::QuickCache(t) => t.len(),
                    Engine::Moka(t) => t.len(),
                },
            )
            .finish()
    }
}

impl MemoryTier {
    /// A tier with these bounds, on the engine the options name.
    ///
    /// ```
    /// use cache_backends::memory::{MemoryOptions, MemoryTier};
    /// use cache_core::store::LocalTier;
    /// let tier = MemoryTier::new(MemoryOptions::max_size(64 << 20));
    /// assert_eq!(tier.entry_count(), 0);
    /// ```
    pub fn new(options: MemoryOptions) -> Arc<Self> {
        let engine = match options.engine {
            MemoryEngine::QuickCache => Engine::QuickCache(QuickTier::new(
                options.bound,
                // A table that takes nothing in would only cost its look.
                options.front_table && options.front_max_weight > 0,
                options.front_max_weight,
            )),
            MemoryEngine::Moka => Engine::Moka(MokaTier::new(options.bound)),
        };
        Arc::new(Self { engine })
    }

    /// The engine this tier runs on.
    ///
    /// ```
    /// use cache_backends::memory::{MemoryEngine, MemoryOptions, MemoryTier};
    /// let tier = MemoryTier::new(MemoryOptions::default().engine(MemoryEngine::Moka));
    /// assert_eq!(tier.engine(), MemoryEngine::Moka);
    /// ```
    pub fn engine(&self) -> MemoryEngine {
        match self.engine {
            Engine::QuickCache(_) => MemoryEngine::QuickCache,
            Engine::Moka(_) => MemoryEngine::Moka,
        }
    }

    /// Whether reads go through a per-thread front table first (on quick_cache, by
    /// default; never on moka; see [`MemoryOptions::front_table`]).
    ///
    /// ```
    /// use cache_backends::memory::{MemoryEngine, MemoryOptions, MemoryTier};
    /// assert!(MemoryTier::new(MemoryOptions::default()).front_table());
    /// assert!(!MemoryTier::new(MemoryOptions::default().front_table(false)).front_table());
    /// assert!(!MemoryTier::new(MemoryOptions::default().engine(MemoryEngine::Moka)).front_table());
    /// ```
    pub fn front_table(&self) -> bool {
        match &self.engine {
            Engine::QuickCache(t) => t.has_front_table(),
            Engine::Moka(_) => false,
        }
    }

    fn from_config(config: &TierConfig) -> Result<Arc<dyn LocalTier>, CacheError> {
        Ok(Self::new(MemoryOptions::from_config(config)?))
    }
}

impl MemoryTier {
    /// [`LocalTier::read_at`] on moka: a clone of the entry, and no instant (moka judges
    /// expiry by a clock of its own). Out of line, so quick_cache's reads keep a small frame.
    #[inline(never)]
    fn read_at_moka(
        tier: &MokaTier,
        key: &L1KeyRef<'_>,
        read: &mut dyn FnMut(&LocalEntry, Option<std::time::Instant>),
    ) -> bool {
        match tier.get(key) {
            Some(entry) => {
                read(&entry, None);
                true
            }
            None => false,
        }
    }
}

impl LocalTier for MemoryTier {
    #[inline]
    fn get(&self, key: &L1KeyRef<'_>) -> Option<LocalEntry> {
        match &self.engine {
            Engine::QuickCache(t) => t.get(key),
            Engine::Moka(t) => t.get(key),
        }
    }
    #[inline]
    fn read(&self, key: &L1KeyRef<'_>, read: &mut dyn FnMut(&LocalEntry)) -> bool {
        match &self.engine {
            // Lent under the shard's read lock: no clone of the entry.
            Engine::QuickCache(t) => t.read(key, read),
            // moka hands out clones only.
            Engine::Moka(t) => match t.get(key) {
                Some(entry) => {
                    read(&entry);
                    true
                }
                None => false,
            },
        }
    }
    #[inline]
    fn read_at(
        &self,
        key: &L1KeyRef<'_>,
        read: &mut dyn FnMut(&LocalEntry, Option<std::time::Instant>),
    ) -> bool {
        match &self.engine {
            // The front table's marks first, inline; the reads out of line.
            Engine::QuickCache(t) => t.read_at(key, read),
            Engine::Moka(t) => Self::read_at_moka(t, key, read),
        }
    }
    fn insert(&self, key: L1Key, entry: LocalEntry) {
        match &self.engine {
            Engine::QuickCache(t) => t.insert(key, entry),
            Engine::Moka(t) => t.insert(key, entry),
        }
    }
    fn remove(&self, key: &L1KeyRef<'_>) {
        match &self.engine {
            Engine::QuickCache(t) => t.remove(key),
            Engine::Moka(t) => t.remove(key),
        }
    }
    fn remove_scope(&self, scope: &Scope) {
        match &self.engine {
            Engine::QuickCache(t) => t.remove_scope(scope),
            Engine::Moka(t) => t.remove_scope(scope),
        }
    }
    fn clear(&self) {
        match &self.engine {
            Engine::QuickCache(t) => t.clear(),
            Engine::Moka(t) => t.clear(),
        }
    }
    fn entry_count(&self) -> u64 {
        match &self.engine {
            Engine::QuickCache(t) => t.entry_count(),
            Engine::Moka(t) => t.entry_count(),
        }
    }
    fn driver(&self) -> &'static str {
        "memory"
    }
    fn entry_overhead(&self) -> u32 {
        match &self.engine {
            Engine::QuickCache(_) => quick_engine::ENTRY_OVERHEAD,
            Engine::Moka(_) => moka_engine::ENTRY_OVERHEAD,
        }
    }
}

inventory::submit! {
    DriverRegistration { name: "memory", local: Some(MemoryTier::from_config), remote: None, bus: None }
}

#[cfg(test)]
mod front_stress;
#[cfg(test)]
mod tests;
