//! The moka engine: W-TinyLFU admission, per-entry expiry on moka's timer wheel.
//!
//! Scope clears walk the entries and invalidate the scope's keys one by one. moka's own
//! `invalidate_entries_if` is not used: it spares entries written within the same tick of
//! its clock as the call (a `set` then `clear` could leave the value readable), and
//! enabling it adds a predicate check to every read.

use std::time::{Duration, Instant};

use cache_core::store::{LocalEntry, Scope};
use moka::sync::Cache as Moka;

use super::MemoryBound;

/// Resident bytes one entry costs beyond its key and value: moka's node, timer-wheel and
/// frequency-sketch share with per-entry expiry, the `LocalEntry`, and the value's `Arc`
/// header (measured with `cargo bench --bench memory`: ~480 bytes per entry holding a
/// 15-byte key and a `u64`).
pub(super) const ENTRY_OVERHEAD: u32 = 440;

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

/// The memory driver on moka.
pub(super) struct MokaTier {
    entries: Moka<String, LocalEntry>,
}

impl MokaTier {
    pub(super) fn new(bound: MemoryBound) -> Self {
        let builder = Moka::builder().expire_after(UntilKeep);
        let entries = match bound {
            MemoryBound::Entries(n) => builder.max_capacity(n).build(),
            MemoryBound::Bytes(bytes) => builder
                .weigher(|_, e: &LocalEntry| e.weight)
                .max_capacity(bytes)
                .build(),
        };
        Self { entries }
    }

    pub(super) fn get(&self, key: &str) -> Option<LocalEntry> {
        self.entries.get(key)
    }
    pub(super) fn insert(&self, key: &str, entry: LocalEntry) {
        self.entries.insert(key.to_owned(), entry);
    }
    pub(super) fn remove(&self, key: &str) {
        self.entries.invalidate(key);
    }
    pub(super) fn remove_scope(&self, scope: &Scope) {
        for (key, _) in self.entries.iter() {
            if scope.contains(&key) {
                self.entries.invalidate(key.as_str());
            }
        }
    }
    pub(super) fn clear(&self) {
        self.entries.invalidate_all();
    }
    /// Entries held as of moka's last housekeeping.
    pub(super) fn len(&self) -> u64 {
        self.entries.entry_count()
    }
    pub(super) fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}
