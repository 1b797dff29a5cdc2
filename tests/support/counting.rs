//! Counters for the cold-miss tests (issue 14): a key that counts how often it is encoded,
//! and an L1 (the map tier) that counts its reads.

#![allow(dead_code)] // not every test that includes it uses both

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use cachet::store::{L1Key, L1KeyRef, LocalEntry, LocalTier, MapTier, Scope};
use serde::Serialize;

/// A key that counts its encodings in the counter it was made with.
#[derive(Clone, Copy)]
pub struct CountedKey(pub u64, pub &'static AtomicU64);

impl Serialize for CountedKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.1.fetch_add(1, SeqCst);
        serializer.serialize_u64(self.0)
    }
}

/// An L1 (the map tier) that counts its reads.
pub struct CountingL1 {
    inner: Arc<MapTier>,
    reads: AtomicU64,
}

impl CountingL1 {
    pub fn new() -> Arc<Self> {
        Arc::new(CountingL1 {
            inner: MapTier::new(),
            reads: AtomicU64::new(0),
        })
    }

    /// How many reads it had so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(SeqCst)
    }
}

impl LocalTier for CountingL1 {
    fn get(&self, key: &L1KeyRef<'_>) -> Option<LocalEntry> {
        self.reads.fetch_add(1, SeqCst);
        self.inner.get(key)
    }
    fn insert(&self, key: L1Key, entry: LocalEntry) {
        self.inner.insert(key, entry)
    }
    fn remove(&self, key: &L1KeyRef<'_>) {
        self.inner.remove(key)
    }
    fn remove_scope(&self, scope: &Scope) {
        self.inner.remove_scope(scope)
    }
    fn clear(&self) {
        self.inner.clear()
    }
    fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }
    fn driver(&self) -> &'static str {
        "counting"
    }
}
