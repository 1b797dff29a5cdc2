//! Shared by the benches: a bench-only memory tier on quick_cache, to measure the engine
//! choice end to end (BENCHMARKS.md, "In-memory engine"). Not a provider of cachet.
//! Each bench uses part of it, so the rest is dead code there.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use cachet::store::{LocalEntry, LocalTier, Scope};

/// Weighs an entry by its estimated size (the weight cachet computes on write).
#[derive(Clone)]
pub struct ByWeight;

impl quick_cache::Weighter<String, LocalEntry> for ByWeight {
    fn weight(&self, _: &String, entry: &LocalEntry) -> u64 {
        u64::from(entry.weight).max(1)
    }
}

/// Counts every entry as one.
#[derive(Clone)]
pub struct One;

impl quick_cache::Weighter<String, LocalEntry> for One {
    fn weight(&self, _: &String, _: &LocalEntry) -> u64 {
        1
    }
}

/// The memory driver's behaviours on quick_cache: size bound by weight (its weighter),
/// per-entry expiry (checked on read: an entry past `keep_until` is removed and missed),
/// scope invalidation by predicate (`retain`).
pub struct QuickTier<W: quick_cache::Weighter<String, LocalEntry> + Clone + Send + Sync + 'static> {
    entries: quick_cache::sync::Cache<String, LocalEntry, W>,
}

impl QuickTier<One> {
    /// Bounded in entries.
    pub fn max_entries(n: u64) -> Arc<Self> {
        Arc::new(Self {
            entries: quick_cache::sync::Cache::with_weighter(n as usize, n, One),
        })
    }
}

impl QuickTier<ByWeight> {
    /// Bounded in estimated bytes; `estimated_items` sizes the table.
    #[allow(dead_code)]
    pub fn max_size(bytes: u64, estimated_items: usize) -> Arc<Self> {
        Arc::new(Self {
            entries: quick_cache::sync::Cache::with_weighter(estimated_items, bytes, ByWeight),
        })
    }
}

impl<W: quick_cache::Weighter<String, LocalEntry> + Clone + Send + Sync + 'static> LocalTier
    for QuickTier<W>
{
    fn get(&self, key: &str) -> Option<LocalEntry> {
        let entry = self.entries.get(key)?;
        // The clock is read only for entries that expire.
        if entry
            .keep_until
            .is_some_and(|until| until <= Instant::now())
        {
            self.entries.remove(key);
            return None;
        }
        Some(entry)
    }
    fn insert(&self, key: &str, entry: LocalEntry) {
        self.entries.insert(key.to_owned(), entry);
    }
    fn remove(&self, key: &str) {
        self.entries.remove(key);
    }
    fn remove_scope(&self, scope: &Scope) {
        self.entries.retain(|k, _| !scope.contains(k));
    }
    fn clear(&self) {
        self.entries.clear();
    }
    fn entry_count(&self) -> u64 {
        self.entries.len() as u64
    }
    fn driver(&self) -> &'static str {
        "quick_cache (bench)"
    }
    fn entry_overhead(&self) -> u32 {
        // Measured with `cargo bench --bench memory`: ~218 resident bytes per entry through
        // cachet with a 15-byte key and a `u64`, less the key, the value and its `Arc`.
        180
    }
}
