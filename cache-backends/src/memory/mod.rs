//! The `memory` driver: an in-process tier on moka, bounded in entries or in bytes.
//!
//! Values are stored typed (an `Arc<dyn Any>`): a hit clones the value out, with no
//! serialization. Size bounds use each entry's estimated weight: the stored key's length,
//! the value's inline size (`size_of`) and this driver's measured per-entry overhead
//! (about 440 bytes: moka's own bookkeeping dominates); heap data owned by the value (a
//! `String`'s bytes, a `Vec`'s elements) is not counted, so prefer `max_entries` for
//! values that own large heap data.

mod options;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::config::TierConfig;
use cache_core::driver::DriverRegistration;
use cache_core::store::{LocalEntry, LocalTier, Scope};
use cache_core::CacheError;
use moka::sync::Cache as Moka;

pub use options::{MemoryBound, MemoryOptions};

/// Resident bytes one entry costs beyond its key and value: moka's node, timer-wheel and
/// frequency-sketch share with per-entry expiry, the `LocalEntry`, and the value's `Arc`
/// header (measured with `cargo bench --bench memory`: ~480 bytes per entry holding a
/// 15-byte key and a `u64`).
const ENTRY_OVERHEAD: u32 = 440;

/// An in-process tier on a moka cache.
///
/// ```
/// use cache_backends::memory::{MemoryTier, MemoryOptions};
/// use cache_core::store::{LocalEntry, LocalTier};
/// use std::sync::Arc;
/// let tier = MemoryTier::new(MemoryOptions::max_entries(1000));
/// tier.insert("app:users:1", LocalEntry::new(Arc::new(7u32), None, None, 64));
/// assert_eq!(tier.get("app:users:1").unwrap().value.downcast_ref::<u32>(), Some(&7));
/// ```
pub struct MemoryTier {
    entries: Moka<String, LocalEntry>,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

/// Expires each entry at its own `keep_until` (the end of its grace period).
struct UntilKeep;

impl moka::Expiry<String, LocalEntry> for UntilKeep {
    fn expire_after_create(
        &self,
        _: &String,
        entry: &LocalEntry,
        created_at: Instant,
    ) -> Option<Duration> {
        entry
            .keep_until
            .map(|until| until.saturating_duration_since(created_at))
    }
    fn expire_after_update(
        &self,
        _: &String,
        entry: &LocalEntry,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        entry
            .keep_until
            .map(|until| until.saturating_duration_since(updated_at))
    }
}

impl MemoryTier {
    /// A tier with these bounds.
    pub fn new(options: MemoryOptions) -> Arc<Self> {
        let builder = Moka::builder()
            .expire_after(UntilKeep)
            .support_invalidation_closures();
        let entries = match options.bound {
            MemoryBound::Entries(n) => builder.max_capacity(n).build(),
            MemoryBound::Bytes(bytes) => builder
                .weigher(|_, e: &LocalEntry| e.weight)
                .max_capacity(bytes)
                .build(),
        };
        Arc::new(Self { entries })
    }

    fn from_config(config: &TierConfig) -> Result<Arc<dyn LocalTier>, CacheError> {
        Ok(Self::new(MemoryOptions::from_config(config)?))
    }
}

impl LocalTier for MemoryTier {
    fn get(&self, key: &str) -> Option<LocalEntry> {
        self.entries.get(key)
    }
    fn insert(&self, key: &str, entry: LocalEntry) {
        self.entries.insert(key.to_owned(), entry);
    }
    fn remove(&self, key: &str) {
        self.entries.invalidate(key);
    }
    fn remove_scope(&self, scope: &Scope) {
        let scope = scope.clone();
        if self
            .entries
            .invalidate_entries_if(move |k, _| scope.contains(k))
            .is_err()
        {
            // Unreachable: the cache is built with `support_invalidation_closures`.
            self.entries.invalidate_all();
        }
    }
    fn clear(&self) {
        self.entries.invalidate_all();
    }
    fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
    fn driver(&self) -> &'static str {
        "memory"
    }
    fn entry_overhead(&self) -> u32 {
        ENTRY_OVERHEAD
    }
}

inventory::submit! {
    DriverRegistration { name: "memory", local: Some(MemoryTier::from_config), remote: None, bus: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: u64, keep: Option<Instant>) -> LocalEntry {
        LocalEntry::new(Arc::new(v), None, keep, 100)
    }

    #[test]
    fn scope_removal_spares_other_caches() {
        let tier = MemoryTier::new(MemoryOptions::max_entries(100));
        tier.insert("p:users:1", entry(1, None));
        tier.insert("p:users#admins:1", entry(2, None));
        tier.insert("p:users2:1", entry(3, None));
        tier.remove_scope(&Scope::new("p:users"));
        assert!(tier.get("p:users:1").is_none());
        assert!(tier.get("p:users#admins:1").is_none());
        assert!(tier.get("p:users2:1").is_some());
    }

    #[test]
    fn entries_expire_at_keep_until() {
        let tier = MemoryTier::new(MemoryOptions::max_entries(100));
        tier.insert(
            "k",
            entry(1, Some(Instant::now() + Duration::from_millis(30))),
        );
        assert!(tier.get("k").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(tier.get("k").is_none());
    }

    #[test]
    fn entry_bound_is_respected() {
        let tier = MemoryTier::new(MemoryOptions::max_entries(50));
        for i in 0..1000 {
            tier.insert(&format!("k{i}"), entry(i, None));
        }
        assert!(tier.entry_count() <= 50, "{}", tier.entry_count());
    }

    #[test]
    fn byte_bound_is_respected() {
        let tier = MemoryTier::new(MemoryOptions::max_size(10_000));
        for i in 0..1000 {
            tier.insert(&format!("k{i}"), entry(i, None));
        }
        // every entry weighs 100 bytes
        assert!(tier.entry_count() <= 100, "{}", tier.entry_count());
    }
}
