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

/// Something a cache counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    L1Hit,
    L2Hit,
    Miss,
    Put,
    Eviction,
    Stale,
    Error,
}

/// The live counters behind [`CacheStats`]; with the `metrics` feature, each event is also
/// recorded through the `metrics` facade, named like Spring Boot Actuator's cache metrics:
/// `cache.gets` (`result` = `hit` / `miss`, `tier` = `l1` / `l2` on hits), `cache.puts`,
/// `cache.evictions`, `cache.stale`, `cache.errors`, each labelled with `cache` and `store`.
#[derive(Debug)]
pub(crate) struct StatsCounters {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    cache: std::sync::Arc<str>,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    store: std::sync::Arc<str>,
    l1_hits: AtomicU64,
    l2_hits: AtomicU64,
    misses: AtomicU64,
    puts: AtomicU64,
    evictions: AtomicU64,
    stale: AtomicU64,
    errors: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn new(cache: std::sync::Arc<str>, store: std::sync::Arc<str>) -> Self {
        Self {
            cache,
            store,
            l1_hits: AtomicU64::new(0),
            l2_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Counts `n` occurrences of `event`.
    pub(crate) fn record(&self, event: Event, n: u64) {
        let counter = match event {
            Event::L1Hit => &self.l1_hits,
            Event::L2Hit => &self.l2_hits,
            Event::Miss => &self.misses,
            Event::Put => &self.puts,
            Event::Eviction => &self.evictions,
            Event::Stale => &self.stale,
            Event::Error => &self.errors,
        };
        counter.fetch_add(n, Relaxed);
        #[cfg(feature = "metrics")]
        self.export(event, n);
    }

    #[cfg(feature = "metrics")]
    fn export(&self, event: Event, n: u64) {
        let (cache, store) = (self.cache.to_string(), self.store.to_string());
        let counter = match event {
            Event::L1Hit => {
                metrics::counter!("cache.gets", "cache" => cache, "store" => store, "result" => "hit", "tier" => "l1")
            }
            Event::L2Hit => {
                metrics::counter!("cache.gets", "cache" => cache, "store" => store, "result" => "hit", "tier" => "l2")
            }
            Event::Miss => {
                metrics::counter!("cache.gets", "cache" => cache, "store" => store, "result" => "miss")
            }
            Event::Put => metrics::counter!("cache.puts", "cache" => cache, "store" => store),
            Event::Eviction => {
                metrics::counter!("cache.evictions", "cache" => cache, "store" => store)
            }
            Event::Stale => metrics::counter!("cache.stale", "cache" => cache, "store" => store),
            Event::Error => metrics::counter!("cache.errors", "cache" => cache, "store" => store),
        };
        counter.increment(n);
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
