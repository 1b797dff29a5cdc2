//! Per-cache counters and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of one cache's counters (namespaces count into their cache).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_core::{store::MapTier, CacheManager, StoreBuilder};
/// let manager = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
/// let users = manager.cache("users").unwrap();
/// users.set(&1u64, &"ann".to_string()).await.unwrap();
/// let _: Option<String> = users.get(&1u64).await.unwrap();
/// let _: Option<String> = users.get(&2u64).await.unwrap();
/// let stats = users.stats();
/// assert_eq!((stats.hits, stats.misses, stats.puts), (1, 1, 1));
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered by the cache.
    pub hits: u64,
    /// Lookups the cache could not answer.
    pub misses: u64,
    /// Hits answered by the in-process tier.
    pub l1_hits: u64,
    /// Hits answered by the shared tier.
    pub l2_hits: u64,
    /// Values stored.
    pub puts: u64,
    /// Entries deleted (one per key, or one per clear).
    pub evictions: u64,
    /// Stale values served in place of a failed or slow refresh.
    pub stale: u64,
    /// Faults: tier errors, undecodable values, keys that could not be encoded.
    pub errors: u64,
}

impl CacheStats {
    /// Hits divided by lookups (0 when there were none).
    ///
    /// ```
    /// let s = cache_core::CacheStats::default();
    /// assert_eq!(s.hit_ratio(), 0.0);
    /// ```
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

/// The live counters behind [`CacheStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub(crate) l1_hits: AtomicU64,
    pub(crate) l2_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) puts: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let l1_hits = self.l1_hits.load(Relaxed);
        let l2_hits = self.l2_hits.load(Relaxed);
        CacheStats {
            hits: l1_hits + l2_hits,
            misses: self.misses.load(Relaxed),
            l1_hits,
            l2_hits,
            puts: self.puts.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            stale: self.stale.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }
}
