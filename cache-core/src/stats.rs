//! Per-cache counters and their snapshot.

use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

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
    /// L1 hits, counted on every hit from every thread: striped, so that threads hitting
    /// the same cache do not write one shared cache line.
    l1_hits: Striped,
    /// L2 hits, striped too: on a store whose reads go to L2 (no L1, or keys read once per
    /// instance), every read writes it, from every thread; one shared line cost each read
    /// a cache-line transfer between cores (BENCHMARKS.md, "64 tasks, phase J").
    l2_hits: Striped,
    /// The counters of the other events, written by misses, writes and faults: on lines of
    /// their own, away from what a hit reads.
    shared: Padded<Shared>,
    /// Each event's metric key (name and labels, hashed once), built with the counters.
    #[cfg(feature = "metrics")]
    keys: [metrics::Key; EVENTS],
}

#[derive(Debug, Default)]
struct Shared {
    misses: AtomicU64,
    puts: AtomicU64,
    evictions: AtomicU64,
    stale: AtomicU64,
    errors: AtomicU64,
}

/// How many stripes a striped counter has, each owned by one thread at a time: the first
/// threads to count (up to this many at once) own one each; a thread that finds them all
/// owned at its first count counts on the shared stripe for as long as it runs (a stripe
/// given back goes to the next thread to count for the first time).
const STRIPES: usize = 8;
const _: () = assert!(STRIPES <= 32, "the owners are bits of a u32");

/// A counter split over cache-line-padded stripes: a stripe per owning thread, which adds
/// to it with a plain load and store (no locked instruction, and no count lost: only its
/// owner writes it), and one shared stripe, added to with `fetch_add` by the threads that
/// own none.
#[derive(Debug, Default)]
struct Striped {
    owned: [Padded<AtomicU64>; STRIPES],
    shared: Padded<AtomicU64>,
}

/// A value alone on its cache line (128 bytes: adjacent-line prefetching pairs lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl Striped {
    /// Adds `n` to this thread's stripe. Inlined with its thread-local read: out of line,
    /// the read cost a hit ~15 instructions.
    #[inline(always)]
    fn add(&self, n: u64) {
        let stripe = STRIPE.with(std::cell::Cell::get);
        match self.owned.get(stripe) {
            Some(owned) => add_owned(&owned.0, n),
            None => self.add_unowned(n),
        }
    }

    /// [`Striped::add`] on a thread that owns no stripe: it takes one if it has not tried
    /// yet and one is free, else it counts on the shared stripe.
    #[cold]
    #[inline(never)]
    fn add_unowned(&self, n: u64) {
        if STRIPE.with(std::cell::Cell::get) == UNSET {
            if let Some(owned) = take_stripe() {
                return add_owned(&self.owned[owned].0, n);
            }
        }
        self.shared.0.fetch_add(n, Relaxed);
    }

    fn sum(&self) -> u64 {
        let owned = self.owned.iter().map(|s| s.0.load(Relaxed));
        owned.fold(self.shared.0.load(Relaxed), u64::wrapping_add)
    }
}

/// Adds `n` to a stripe this thread owns. Only its owner writes it: a plain load and store
/// lose nothing (readers sum the stripes with loads), and need no locked instruction.
#[inline(always)]
fn add_owned(stripe: &AtomicU64, n: u64) {
    stripe.store(stripe.load(Relaxed).wrapping_add(n), Relaxed);
}

/// A stripe not taken yet: the thread tries to take one on its next count.
const UNSET: usize = usize::MAX;
/// No stripe to be had: every stripe was owned when the thread tried, or the thread is
/// exiting (its stripe given back). It counts on the shared stripe.
const NONE: usize = usize::MAX - 1;

/// The stripes owned by a thread (bit `i`: stripe `i`), in every striped counter at once.
static OWNED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

std::thread_local! {
    /// This thread's stripe ([`UNSET`] until it first counts; [`NONE`]: it owns none).
    /// A constant initializer and no destructor: no state to check on each hit.
    static STRIPE: std::cell::Cell<usize> = const { std::cell::Cell::new(UNSET) };
    /// Gives this thread's stripe back when it exits (set once it owns one).
    static OWNER: Owner = const { Owner(std::cell::Cell::new(NONE)) };
}

/// This thread's ownership of a stripe: dropped when the thread exits, which gives it back.
struct Owner(std::cell::Cell<usize>);

impl Drop for Owner {
    fn drop(&mut self) {
        let stripe = self.0.get();
        if stripe < STRIPES {
            // Counts made after this (other thread-locals' destructors) go to the shared
            // stripe.
            STRIPE.with(|s| s.set(NONE));
            // Release: this thread's last store to the stripe happens before the next
            // owner's first load of it (which takes the stripe with Acquire).
            OWNED.fetch_and(!(1 << stripe), Release);
        }
    }
}

/// Takes a free stripe for this thread, if one is: it counts there from now on, else on
/// the shared stripe (it does not try again).
fn take_stripe() -> Option<usize> {
    let mut owned = OWNED.load(Relaxed);
    let stripe = loop {
        let free = (!owned).trailing_zeros() as usize;
        if free >= STRIPES {
            break None;
        }
        match OWNED.compare_exchange_weak(owned, owned | 1 << free, Acquire, Relaxed) {
            Ok(_) => break Some(free),
            Err(now) => owned = now,
        }
    };
    // Owned only once this thread will give it back at exit (it may be exiting already,
    // its thread-locals gone: then it is given back at once).
    let stripe = stripe.filter(|&stripe| {
        let held = OWNER.try_with(|owner| owner.0.set(stripe)).is_ok();
        if !held {
            OWNED.fetch_and(!(1 << stripe), Release);
        }
        held
    });
    STRIPE.with(|s| s.set(stripe.unwrap_or(NONE)));
    stripe
}

/// How many kinds of [`Event`] there are.
#[cfg(feature = "metrics")]
const EVENTS: usize = 7;

impl StatsCounters {
    pub(crate) fn new(cache: std::sync::Arc<str>, store: std::sync::Arc<str>) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = (cache, store);
        Self {
            l1_hits: Striped::default(),
            l2_hits: Striped::default(),
            shared: Padded::default(),
            #[cfg(feature = "metrics")]
            keys: metric_keys(cache, store),
        }
    }

    /// Counts one L1 hit: the hit path's one write, to this thread's stripe.
    #[inline]
    pub(crate) fn l1_hit(&self) {
        self.l1_hits.add(1);
        #[cfg(feature = "metrics")]
        self.export(Event::L1Hit, 1);
    }

    /// Counts `n` occurrences of `event`.
    pub(crate) fn record(&self, event: Event, n: u64) {
        let shared = &self.shared.0;
        let counter = match event {
            Event::L1Hit => return self.striped(&self.l1_hits, event, n),
            Event::L2Hit => return self.striped(&self.l2_hits, event, n),
            Event::Miss => &shared.misses,
            Event::Put => &shared.puts,
            Event::Eviction => &shared.evictions,
            Event::Stale => &shared.stale,
            Event::Error => &shared.errors,
        };
        counter.fetch_add(n, Relaxed);
        #[cfg(feature = "metrics")]
        self.export(event, n);
    }

    /// [`record`](Self::record) of an event counted on `stripes`.
    #[inline]
    fn striped(&self, stripes: &Striped, event: Event, n: u64) {
        stripes.add(n);
        #[cfg(feature = "metrics")]
        self.export(event, n);
        #[cfg(not(feature = "metrics"))]
        let _ = event;
    }

    #[cfg(feature = "metrics")]
    fn export(&self, event: Event, n: u64) {
        // The counter is looked up in the recorder in effect on every event, not kept per
        // cache: a handle stays bound to the recorder of its registration, and a service may
        // install its recorder after its first cached call (a warm-up), which would then
        // report nothing. What is kept is the key (name and labels, hashed once), so an
        // event builds no label strings.
        static METADATA: metrics::Metadata<'static> =
            metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
        let key = &self.keys[event as usize];
        metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(n));
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let shared = &self.shared.0;
        let l1_hits = self.l1_hits.sum();
        let l2_hits = self.l2_hits.sum();
        CacheStats {
            hits: l1_hits + l2_hits,
            misses: shared.misses.load(Relaxed),
            l1_hits,
            l2_hits,
            puts: shared.puts.load(Relaxed),
            evictions: shared.evictions.load(Relaxed),
            stale: shared.stale.load(Relaxed),
            errors: shared.errors.load(Relaxed),
        }
    }
}

/// Each event's metric key, in [`Event`]'s order, labelled as `metrics::counter!` would.
#[cfg(feature = "metrics")]
fn metric_keys(cache: std::sync::Arc<str>, store: std::sync::Arc<str>) -> [metrics::Key; EVENTS] {
    use metrics::{Key, Label};
    let key = |name: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut labels = vec![
            Label::new("cache", cache.clone()),
            Label::new("store", store.clone()),
        ];
        labels.extend(extra.iter().map(|(k, v)| Label::from_static_parts(k, v)));
        Key::from_parts(name, labels)
    };
    [
        key("cache.gets", &[("result", "hit"), ("tier", "l1")]),
        key("cache.gets", &[("result", "hit"), ("tier", "l2")]),
        key("cache.gets", &[("result", "miss")]),
        key("cache.puts", &[]),
        key("cache.evictions", &[]),
        key("cache.stale", &[]),
        key("cache.errors", &[]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn striped_hits_from_many_threads_add_up() {
        let counters = StatsCounters::new("c".into(), "s".into());
        std::thread::scope(|s| {
            for _ in 0..(2 * STRIPES + 1) {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counters.record(Event::L1Hit, 1);
                        counters.record(Event::L2Hit, 2);
                    }
                });
            }
        });
        counters.record(Event::L2Hit, 3);
        counters.record(Event::Miss, 5);
        let stats = counters.snapshot();
        assert_eq!(stats.l1_hits, (2 * STRIPES as u64 + 1) * 1000);
        assert_eq!(stats.l2_hits, (2 * STRIPES as u64 + 1) * 2000 + 3);
        assert_eq!(stats.hits, stats.l1_hits + stats.l2_hits);
        assert_eq!(stats.misses, 5);
    }

    /// Threads come and go (a blocking pool's): each owns a stripe while it runs (written
    /// without a locked instruction), gives it back when it exits, and the next thread
    /// takes it over; threads beyond the stripes count on the shared one. Waves of more
    /// threads than stripes, started together, hitting as fast as they can: not one hit is
    /// lost (two threads writing one stripe with plain stores would lose many).
    #[test]
    fn hits_from_many_short_lived_threads_add_up_exactly() {
        const WAVES: u64 = 3;
        const THREADS: u64 = STRIPES as u64 + 4;
        const HITS: u64 = 1_000_000;
        let counters = StatsCounters::new("c".into(), "s".into());
        for _ in 0..WAVES {
            let start = std::sync::Barrier::new(THREADS as usize);
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        start.wait();
                        for _ in 0..HITS {
                            counters.l1_hit();
                        }
                    });
                }
            });
        }
        assert_eq!(counters.snapshot().l1_hits, WAVES * THREADS * HITS);
    }
}
