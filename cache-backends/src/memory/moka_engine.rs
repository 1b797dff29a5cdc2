//! The moka engine: W-TinyLFU admission, per-entry expiry on moka's timer wheel.
//!
//! Scope clears walk the entries and invalidate the scope's keys one by one. moka's own
//! `invalidate_entries_if` is not used: it spares entries written within the same tick of
//! its clock as the call (a `set` then `clear` could leave the value readable), and
//! enabling it adds a predicate check to every read.

use std::time::{Duration, Instant};

use cache_core::store::{L1Hasher, L1Key, L1KeyRef, LocalEntry, Scope};
use moka::sync::Cache as Moka;

use super::MemoryBound;

/// Resident bytes one entry costs beyond its value and the heap bytes of its key (an
/// encoded key too long to be held inline): moka's node, timer-wheel and frequency-sketch
/// share with per-entry expiry, the `L1Key` with its inline key, the `LocalEntry`, and the
/// value's `Arc` header (measured with `cargo bench --bench memory`, keys `cachet:mem:N`
/// and `u64` values).
pub(super) const ENTRY_OVERHEAD: u32 = 457;

/// Expires each entry at its own `keep_until` (the end of its grace period).
struct UntilKeep;

impl moka::Expiry<L1Key, LocalEntry> for UntilKeep {
    fn expire_after_create(
        &self,
        _: &L1Key,
        entry: &LocalEntry,
        created_at: Instant,
    ) -> Option<Duration> {
        entry
            .keep_until
            .map(|until| until.saturating_duration_since(created_at))
    }
    fn expire_after_update(
        &self,
        _: &L1Key,
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
    entries: Moka<L1Key, LocalEntry, L1Hasher>,
}

impl MokaTier {
    pub(super) fn new(bound: MemoryBound) -> Self {
        let builder = Moka::builder().expire_after(UntilKeep);
        let entries = match bound {
            MemoryBound::Entries(n) => builder.max_capacity(n).build_with_hasher(L1Hasher),
            MemoryBound::Bytes(bytes) => builder
                .weigher(|_, e: &LocalEntry| e.weight)
                .max_capacity(bytes)
                .build_with_hasher(L1Hasher),
        };
        Self { entries }
    }

    pub(super) fn get(&self, key: &L1KeyRef<'_>) -> Option<LocalEntry> {
        self.entries.get(key)
    }
    pub(super) fn insert(&self, key: L1Key, entry: LocalEntry) {
        self.entries.insert(key, entry);
    }
    pub(super) fn remove(&self, key: &L1KeyRef<'_>) {
        self.entries.invalidate(key);
    }
    pub(super) fn remove_scope(&self, scope: &Scope) {
        for (key, _) in self.entries.iter() {
            if scope.covers(&key) {
                self.entries.invalidate(&key.borrowed());
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
