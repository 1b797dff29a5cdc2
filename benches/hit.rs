//! Hit path, key derivation: cachet side by side with the raw engines and the `cached`
//! crate, interleaved in one run so the ratios in BENCHMARKS.md come from one machine state.
//! cachet runs on both engines of its memory driver: quick_cache (the default, store
//! "memory") and moka (store "moka", `engine = "moka"`).
//!
//! `cargo bench --bench hit` (add a group name to filter: `-- hit_sync`).
//!
//! Instruction counts, which a loaded machine does not move: with `CACHET_HIT_COUNT=OP:N`
//! set, the binary only runs `N` hits of `OP` (see [`count_mode`]) and exits, so
//! `valgrind --tool=callgrind` on it for `N` and for `0` gives instructions per hit as the
//! difference over `N` (`benches/instructions.sh` runs them all). With
//! `CACHET_HIT_SUBSCRIBED=1` too, an event listener is subscribed for the count.
//!
//! Every cached function counts its executions; before a group measures a cached path it
//! checks that repeated calls really are hits, and skips it with a message otherwise (so a
//! build where `#[cacheable]` or the key encoder is not in place cannot report an uncached
//! call as a "hit").

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cachet::memory::{MemoryEngine, MemoryOptions, MemoryTier};
use cachet::store::{KeySpace, LocalEntry, LocalTier};
use criterion::{criterion_group, Criterion, Throughput};
use futures_util::FutureExt;
use serde::Serialize;

/// The key every hit bench reads.
const KEY: u64 = 42;
/// Keys resident in every cache while the benches run (`KEY` among them); the
/// `_1024keys` rows of the two-thread group read all of them in turn.
const RESIDENT: u64 = 1024;
/// Bound of every cache (cachet's memory store default is 10,000 entries).
const CAPACITY: u64 = 10_000;

static CACHET_SYNC_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHET_MOKA_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHET_ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHET_ASYNC_MOKA_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHET_TTL_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHET_STR_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHED_SYNC_RUNS: AtomicU64 = AtomicU64::new(0);
static FRONT_SYNC_RUNS: AtomicU64 = AtomicU64::new(0);
static FRONT_TTL_RUNS: AtomicU64 = AtomicU64::new(0);
static FRONT_STR_RUNS: AtomicU64 = AtomicU64::new(0);
static FRONT_ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHED_ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);

#[cachet::cacheable("bench")]
fn cachet_sync(id: u64) -> u64 {
    CACHET_SYNC_RUNS.fetch_add(1, Relaxed);
    id * 2
}

/// The same with a TTL, as production entries are written: a timed entry, judged by the
/// clock on each hit.
#[cachet::cacheable("bench_ttl", ttl = "1h")]
fn cachet_sync_ttl(id: u64) -> u64 {
    CACHET_TTL_RUNS.fetch_add(1, Relaxed);
    id * 2
}

/// The string key of the independent run (`key:000000000042`, see [`str_key`]).
#[cachet::cacheable("bench_str")]
fn cachet_sync_str(key: &str) -> u64 {
    CACHET_STR_RUNS.fetch_add(1, Relaxed);
    key.len() as u64
}

/// The string key of resident key `k`: `key:` and twelve digits.
fn str_key(k: u64) -> String {
    format!("key:{k:012}")
}

/// The same on the moka engine (store "moka").
#[cachet::cacheable("bench_moka")]
fn cachet_sync_moka(id: u64) -> u64 {
    CACHET_MOKA_RUNS.fetch_add(1, Relaxed);
    id * 2
}

#[cachet::cacheable("bench_async")]
async fn cachet_async(id: u64) -> u64 {
    CACHET_ASYNC_RUNS.fetch_add(1, Relaxed);
    id * 2
}

#[cachet::cacheable("bench_async_moka")]
async fn cachet_async_moka(id: u64) -> u64 {
    CACHET_ASYNC_MOKA_RUNS.fetch_add(1, Relaxed);
    id * 2
}

/// The `_front` functions: the same on store "front", a memory store (quick_cache) whose
/// reads go through the per-thread front table (`front_table = true`).
#[cachet::cacheable("bench_front")]
fn cachet_sync_front(id: u64) -> u64 {
    FRONT_SYNC_RUNS.fetch_add(1, Relaxed);
    id * 2
}

#[cachet::cacheable("bench_front_ttl", ttl = "1h")]
fn cachet_sync_ttl_front(id: u64) -> u64 {
    FRONT_TTL_RUNS.fetch_add(1, Relaxed);
    id * 2
}

#[cachet::cacheable("bench_front_str")]
fn cachet_sync_str_front(key: &str) -> u64 {
    FRONT_STR_RUNS.fetch_add(1, Relaxed);
    key.len() as u64
}

#[cachet::cacheable("bench_front_async")]
async fn cachet_async_front(id: u64) -> u64 {
    FRONT_ASYNC_RUNS.fetch_add(1, Relaxed);
    id * 2
}

#[cached::proc_macro::cached]
fn cached_sync(id: u64) -> u64 {
    CACHED_SYNC_RUNS.fetch_add(1, Relaxed);
    id * 2
}

#[cached::proc_macro::cached]
async fn cached_async(id: u64) -> u64 {
    CACHED_ASYNC_RUNS.fetch_add(1, Relaxed);
    id * 2
}

/// The engines as cachet's memory store would hold `KEY`, and as a peer holds it.
struct Engines {
    moka: moka::sync::Cache<u64, u64>,
    moka_str: moka::sync::Cache<String, u64>,
    quick: quick_cache::sync::Cache<u64, u64>,
    quick_str: quick_cache::sync::Cache<String, u64>,
    /// cachet's own memory driver on moka (per-entry expiry, keyed by the stored key,
    /// holding a type-erased entry), called directly.
    tier_moka: Arc<MemoryTier>,
    /// The same on quick_cache (expiry checked on read, sweeps).
    tier_quick: Arc<MemoryTier>,
    /// The same with its front table on.
    tier_front: Arc<MemoryTier>,
    /// The key cachet stores `KEY` under in cache "bench" (`{prefix}:{cache}:{key}`).
    stored_key: String,
    /// The memory driver's key space of cache "bench": its L1 keys are this space and
    /// the encoded key.
    space: KeySpace,
    /// `KEY` encoded (`42`).
    encoded_key: String,
    /// The stored keys of all resident keys, by key.
    stored_keys: Vec<String>,
    /// The encoded keys of all resident keys, by key (the driver's L1 keys in `space`).
    encoded_keys: Vec<String>,
    /// `KEY`'s string form (`key:000000000042`), as [`cachet_sync_str`] takes it.
    str_key: String,
}

impl Engines {
    fn new() -> Self {
        let stored_keys: Vec<String> = (0..RESIDENT).map(|k| format!("cachet:bench:{k}")).collect();
        let stored_key = stored_keys[KEY as usize].clone();
        let moka = moka::sync::Cache::new(CAPACITY);
        let moka_str = moka::sync::Cache::new(CAPACITY);
        let quick = quick_cache::sync::Cache::new(CAPACITY as usize);
        let quick_str = quick_cache::sync::Cache::new(CAPACITY as usize);
        for (k, stored) in (0..RESIDENT).zip(&stored_keys) {
            moka.insert(k, k * 2);
            moka_str.insert(stored.clone(), k * 2);
            quick.insert(k, k * 2);
            quick_str.insert(stored.clone(), k * 2);
        }
        let space = KeySpace::new("cachet:bench");
        let tier = |engine, front| {
            let options = MemoryOptions::max_entries(CAPACITY).engine(engine);
            let tier = MemoryTier::new(options.front_table(front));
            for k in 0..RESIDENT {
                let key = space.key(k.to_string().as_bytes());
                tier.insert(key, LocalEntry::new(Arc::new(k * 2), None, None, 100));
            }
            tier
        };
        Self {
            tier_moka: tier(MemoryEngine::Moka, false),
            tier_quick: tier(MemoryEngine::QuickCache, false),
            tier_front: tier(MemoryEngine::QuickCache, true),
            moka,
            moka_str,
            quick,
            quick_str,
            stored_key,
            stored_keys,
            encoded_keys: (0..RESIDENT).map(|k| k.to_string()).collect(),
            space,
            encoded_key: KEY.to_string(),
            str_key: str_key(KEY),
        }
    }
}

/// Fills every cached function (both crates) and `cachet.get`'s cache with the resident
/// keys, once per process, so each bench reads one key among 1,024.
fn warm_resident(rt: &tokio::runtime::Runtime) {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let cache = cachet_cache();
        for k in 0..RESIDENT {
            cachet_sync(k);
            cachet_sync_ttl(k);
            cachet_sync_str(&str_key(k));
            cachet_sync_moka(k);
            cached_sync(k);
            cachet_sync_front(k);
            cachet_sync_ttl_front(k);
            cachet_sync_str_front(&str_key(k));
            rt.block_on(async {
                cachet_async(k).await;
                cachet_async_front(k).await;
                cachet_async_moka(k).await;
                cached_async(k).await;
                cache.set(&k, &(k * 2)).await.expect("cachet set");
            });
        }
    });
}

impl Engines {
    /// A hit on cachet's memory driver, downcast and cloned as `Cache::lookup` does (the
    /// key's hash computed in the loop, as a lookup does).
    /// The driver's read of resident key `k` as a hit reads it: the entry lent to a
    /// closure that copies the value out (no clone of the entry).
    fn tier_read(&self, tier: &MemoryTier, k: u64) -> Option<u64> {
        let key = self
            .space
            .key_ref(black_box(self.encoded_keys[k as usize].as_bytes()));
        let mut value = None;
        tier.read(&key, &mut |entry| {
            value = entry.value.downcast_ref::<u64>().copied()
        });
        value
    }

    fn tier_get(&self, tier: &MemoryTier) -> Option<u64> {
        let key = self.space.key_ref(black_box(self.encoded_key.as_bytes()));
        let entry = tier.get(&key)?;
        entry.value.downcast_ref::<u64>().copied()
    }
}

/// The global manager, as `cachet::init` sets it in a service: a memory store (quick_cache,
/// front table off), one with its front table on for the `_front` functions, and one on
/// moka for the `_moka` functions.
fn cachet_cache() -> &'static cachet::Cache {
    static CACHE: std::sync::OnceLock<cachet::Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| {
        let moka = MemoryTier::new(MemoryOptions::max_entries(CAPACITY).engine(MemoryEngine::Moka));
        let front = MemoryTier::new(MemoryOptions::max_entries(CAPACITY).front_table(true));
        // The plain functions' store with its front table off, whatever the default: their
        // rows are the table-off side of each `_front` row.
        let memory = MemoryTier::new(MemoryOptions::max_entries(CAPACITY).front_table(false));
        let manager = cachet::CacheManager::builder()
            .store("memory", cachet::StoreBuilder::new().l1(memory))
            .store("moka", cachet::StoreBuilder::new().l1(moka))
            .store("front", cachet::StoreBuilder::new().l1(front))
            .cache_store("bench_front", "front")
            .cache_store("bench_front_ttl", "front")
            .cache_store("bench_front_str", "front")
            .cache_store("bench_front_async", "front")
            .default_store("memory")
            .cache_store("bench_moka", "moka")
            .cache_store("bench_async_moka", "moka")
            .build()
            .expect("a memory-store manager builds");
        cachet::init(manager).expect("the global manager is set once");
        cachet::cache("bench_get").expect("cache bench_get")
    })
}

/// Whether `call` is served from cache: after a warm-up call, 100 more calls must not run
/// the function again.
fn is_cached(what: &str, runs: &AtomicU64, mut call: impl FnMut()) -> bool {
    call();
    let before = runs.load(Relaxed);
    for _ in 0..100 {
        call();
    }
    let cached = runs.load(Relaxed) == before && before > 0;
    if !cached {
        eprintln!(
            "SKIPPED {what}: repeated calls run the function (runs: {before} -> {}); \
             is #[cacheable] / the key encoder in place?",
            runs.load(Relaxed)
        );
    }
    cached
}

/// [`is_cached`] for an async fn, driven on `rt`.
fn is_cached_async<Fut: std::future::Future<Output = u64>>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    runs: &AtomicU64,
    call: fn(u64) -> Fut,
) -> bool {
    rt.block_on(call(KEY));
    let before = runs.load(Relaxed);
    rt.block_on(async {
        for _ in 0..100 {
            call(KEY).await;
        }
    });
    let cached = runs.load(Relaxed) == before && before > 0;
    if !cached {
        eprintln!(
            "SKIPPED {what}: repeated calls run the function (runs: {before} -> {}); \
             is #[cacheable] / the key encoder in place?",
            runs.load(Relaxed)
        );
    }
    cached
}

fn cachet_get_works(rt: &tokio::runtime::Runtime) -> bool {
    let cache = cachet_cache();
    let ok = rt.block_on(async {
        cache.set(&KEY, &(KEY * 2)).await.is_ok()
            && matches!(cache.get::<u64>(&KEY).await, Ok(Some(v)) if v == KEY * 2)
    });
    if !ok {
        eprintln!("SKIPPED cachet get: set/get of a u64 key fails (is the key encoder in place?)");
    }
    ok
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---------------------------------------------------------------- single-thread hits

fn hit_sync(c: &mut Criterion) {
    let engines = Engines::new();
    let rt = current_thread();
    cachet_cache();
    warm_resident(&rt);
    let mut g = c.benchmark_group("hit_sync");
    g.bench_function("moka_get_u64", |b| {
        b.iter(|| engines.moka.get(black_box(&KEY)))
    });
    g.bench_function("moka_get_str", |b| {
        b.iter(|| engines.moka_str.get(black_box(engines.stored_key.as_str())))
    });
    g.bench_function("memory_tier_get_moka", |b| {
        b.iter(|| engines.tier_get(&engines.tier_moka))
    });
    g.bench_function("quick_cache_get_u64", |b| {
        b.iter(|| engines.quick.get(black_box(&KEY)))
    });
    g.bench_function("quick_cache_get_str", |b| {
        b.iter(|| {
            engines
                .quick_str
                .get(black_box(engines.stored_key.as_str()))
        })
    });
    g.bench_function("memory_tier_get_quick_cache", |b| {
        b.iter(|| engines.tier_get(&engines.tier_quick))
    });
    g.bench_function("memory_tier_get_quick_cache_front", |b| {
        b.iter(|| engines.tier_get(&engines.tier_front))
    });
    if is_cached("cached #[cached] sync", &CACHED_SYNC_RUNS, || {
        cached_sync(KEY);
    }) {
        g.bench_function("cached_macro", |b| b.iter(|| cached_sync(black_box(KEY))));
    }
    if is_cached("cachet #[cacheable] sync", &CACHET_SYNC_RUNS, || {
        cachet_sync(KEY);
    }) {
        g.bench_function("cachet_cacheable", |b| {
            b.iter(|| cachet_sync(black_box(KEY)))
        });
    }
    if is_cached("cachet #[cacheable] sync, ttl", &CACHET_TTL_RUNS, || {
        cachet_sync_ttl(KEY);
    }) {
        g.bench_function("cachet_cacheable_ttl", |b| {
            b.iter(|| cachet_sync_ttl(black_box(KEY)))
        });
    }
    if is_cached(
        "cachet #[cacheable] sync, &str key",
        &CACHET_STR_RUNS,
        || {
            cachet_sync_str(&engines.str_key);
        },
    ) {
        g.bench_function("cachet_cacheable_str", |b| {
            b.iter(|| cachet_sync_str(black_box(engines.str_key.as_str())))
        });
    }
    if is_cached(
        "cachet #[cacheable] sync on moka",
        &CACHET_MOKA_RUNS,
        || {
            cachet_sync_moka(KEY);
        },
    ) {
        g.bench_function("cachet_cacheable_moka", |b| {
            b.iter(|| cachet_sync_moka(black_box(KEY)))
        });
    }
    if is_cached(
        "cachet #[cacheable] sync, front table",
        &FRONT_SYNC_RUNS,
        || {
            cachet_sync_front(KEY);
        },
    ) {
        g.bench_function("cachet_cacheable_front", |b| {
            b.iter(|| cachet_sync_front(black_box(KEY)))
        });
    }
    if is_cached(
        "cachet #[cacheable] sync, ttl, front table",
        &FRONT_TTL_RUNS,
        || {
            cachet_sync_ttl_front(KEY);
        },
    ) {
        g.bench_function("cachet_cacheable_ttl_front", |b| {
            b.iter(|| cachet_sync_ttl_front(black_box(KEY)))
        });
    }
    if is_cached(
        "cachet #[cacheable] sync, &str key, front table",
        &FRONT_STR_RUNS,
        || {
            cachet_sync_str_front(&engines.str_key);
        },
    ) {
        g.bench_function("cachet_cacheable_str_front", |b| {
            b.iter(|| cachet_sync_str_front(black_box(engines.str_key.as_str())))
        });
    }
    if cachet_get_works(&rt) {
        // A memory hit completes on its first poll: polled once, no runtime involved.
        let cache = cachet_cache();
        g.bench_function("cachet_get_polled_once", |b| {
            b.iter(|| {
                cache
                    .get::<u64>(black_box(&KEY))
                    .now_or_never()
                    .expect("a memory hit is ready at once")
            })
        });
    }
    g.finish();
}

fn hit_async(c: &mut Criterion) {
    let engines = Engines::new();
    let rt = current_thread();
    cachet_cache();
    warm_resident(&rt);
    let mut g = c.benchmark_group("hit_async");
    // The engines are synchronous: this is the floor an async hit can reach (criterion's
    // async driver plus one engine get).
    g.bench_function("moka_get_u64", |b| {
        b.to_async(&rt)
            .iter(|| async { engines.moka.get(black_box(&KEY)) })
    });
    g.bench_function("quick_cache_get_u64", |b| {
        b.to_async(&rt)
            .iter(|| async { engines.quick.get(black_box(&KEY)) })
    });
    let cached_ok = {
        rt.block_on(cached_async(KEY));
        let before = CACHED_ASYNC_RUNS.load(Relaxed);
        rt.block_on(async {
            for _ in 0..100 {
                cached_async(KEY).await;
            }
        });
        CACHED_ASYNC_RUNS.load(Relaxed) == before
    };
    if cached_ok {
        g.bench_function("cached_macro", |b| {
            b.to_async(&rt).iter(|| cached_async(black_box(KEY)))
        });
    } else {
        eprintln!("SKIPPED cached #[cached] async: repeated calls run the function");
    }
    if is_cached_async(
        &rt,
        "cachet #[cacheable] async",
        &CACHET_ASYNC_RUNS,
        cachet_async,
    ) {
        g.bench_function("cachet_cacheable", |b| {
            b.to_async(&rt).iter(|| cachet_async(black_box(KEY)))
        });
    }
    if is_cached_async(
        &rt,
        "cachet #[cacheable] async on moka",
        &CACHET_ASYNC_MOKA_RUNS,
        cachet_async_moka,
    ) {
        g.bench_function("cachet_cacheable_moka", |b| {
            b.to_async(&rt).iter(|| cachet_async_moka(black_box(KEY)))
        });
    }
    if is_cached_async(
        &rt,
        "cachet #[cacheable] async, front table",
        &FRONT_ASYNC_RUNS,
        cachet_async_front,
    ) {
        g.bench_function("cachet_cacheable_front", |b| {
            b.to_async(&rt).iter(|| cachet_async_front(black_box(KEY)))
        });
    }
    if cachet_get_works(&rt) {
        let cache = cachet_cache();
        g.bench_function("cachet_get", |b| {
            b.to_async(&rt).iter(|| cache.get::<u64>(black_box(&KEY)))
        });
    }
    g.finish();
}

// ---------------------------------------------------------------- two threads

/// Runs `op` `iters` times on each of two threads, started together; returns the wall time.
/// With `Throughput::Elements(2)`, criterion's "time" is per pair of ops and its
/// throughput is the total ops/s of both threads. `op` gets the call's number on its
/// thread, the second thread's offset by half the resident keys (for the `_1024keys` rows).
fn two_threads(iters: u64, op: impl Fn(u64) + Sync) -> Duration {
    let start = Barrier::new(3);
    let op = &op;
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2u64)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for i in 0..iters {
                        op(i + t * RESIDENT / 2);
                    }
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for t in threads {
            t.join().expect("bench thread");
        }
        t0.elapsed()
    })
}

/// Calls of [`two_tasks`] whose two tasks did not each run on a worker of their own
/// (reported at the end of the group: such a call measured one worker, not two).
static SHARED_WORKER: AtomicU64 = AtomicU64::new(0);
/// Calls of [`two_tasks`] where a task ended on another worker than it started on.
static MOVED: AtomicU64 = AtomicU64::new(0);
/// Calls of [`two_tasks`].
static TWO_TASK_CALLS: AtomicU64 = AtomicU64::new(0);

/// The same with two tasks on a two-worker tokio runtime, each on a worker of its own.
///
/// The tasks start by spinning until both run: a spinning task holds its worker, so the
/// other one is run by the other worker, and as a hit completes without waiting neither
/// task yields afterwards: each keeps its worker to the end (checked: [`SHARED_WORKER`]).
/// An async barrier does not do this: the first task to wait is woken into the LIFO slot
/// of the second's worker, which no other worker steals from while the second runs, so
/// the two took turns on one worker (every call did, measured on 2026-12-01).
fn two_tasks<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future + Send,
{
    rt.block_on(async move {
        let running = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..2u64)
            .map(|t| {
                let (op, running) = (op.clone(), running.clone());
                tokio::spawn(async move {
                    running.fetch_add(1, Relaxed);
                    // Bounded: were the other worker ever busy, the call goes on (and is
                    // counted as shared) rather than spinning for ever.
                    let deadline = Instant::now() + Duration::from_secs(1);
                    while running.load(Relaxed) < 2 && Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                    let first = std::thread::current().id();
                    for i in 0..iters {
                        black_box(op(i + t * RESIDENT / 2).await);
                    }
                    (first, std::thread::current().id())
                })
            })
            .collect();
        let mut workers = Vec::with_capacity(2);
        for t in tasks {
            workers.push(t.await.expect("bench task"));
        }
        let elapsed = t0.elapsed();
        TWO_TASK_CALLS.fetch_add(1, Relaxed);
        let (a, b) = (workers[0], workers[1]);
        if a.0 == b.0 {
            SHARED_WORKER.fetch_add(1, Relaxed);
        }
        if a.0 != a.1 || b.0 != b.1 {
            MOVED.fetch_add(1, Relaxed);
        }
        elapsed
    })
}

fn hit_2threads(c: &mut Criterion) {
    let engines = Engines::new();
    let rt1 = current_thread();
    cachet_cache();
    let rt2 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    warm_resident(&rt1);
    let mut g = c.benchmark_group("hit_2threads");
    g.throughput(Throughput::Elements(2));
    g.bench_function("quick_cache_get_str", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_| {
                black_box(
                    engines
                        .quick_str
                        .get(black_box(engines.stored_key.as_str())),
                );
            })
        })
    });
    g.bench_function("moka_get_u64", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_| {
                black_box(engines.moka.get(black_box(&KEY)));
            })
        })
    });
    g.bench_function("memory_tier_get_moka", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_| {
                black_box(engines.tier_get(&engines.tier_moka));
            })
        })
    });
    g.bench_function("quick_cache_get_u64", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_| {
                black_box(engines.quick.get(black_box(&KEY)));
            })
        })
    });
    g.bench_function("memory_tier_get_quick_cache", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_| {
                black_box(engines.tier_get(&engines.tier_quick));
            })
        })
    });
    g.bench_function("memory_tier_get_quick_cache_front", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_| {
                black_box(engines.tier_get(&engines.tier_front));
            })
        })
    });
    if is_cached("cached #[cached] sync", &CACHED_SYNC_RUNS, || {
        cached_sync(KEY);
    }) {
        g.bench_function("cached_macro_sync", |b| {
            b.iter_custom(|n| {
                two_threads(n, |_| {
                    black_box(cached_sync(black_box(KEY)));
                })
            })
        });
    }
    if is_cached("cachet #[cacheable] sync", &CACHET_SYNC_RUNS, || {
        cachet_sync(KEY);
    }) {
        g.bench_function("cachet_cacheable_sync", |b| {
            b.iter_custom(|n| {
                two_threads(n, |_| {
                    black_box(cachet_sync(black_box(KEY)));
                })
            })
        });
    }
    if is_cached(
        "cachet #[cacheable] sync, front table",
        &FRONT_SYNC_RUNS,
        || {
            cachet_sync_front(KEY);
        },
    ) {
        g.bench_function("cachet_cacheable_sync_front", |b| {
            b.iter_custom(|n| {
                two_threads(n, |_| {
                    black_box(cachet_sync_front(black_box(KEY)));
                })
            })
        });
    }
    if is_cached(
        "cachet #[cacheable] sync on moka",
        &CACHET_MOKA_RUNS,
        || {
            cachet_sync_moka(KEY);
        },
    ) {
        g.bench_function("cachet_cacheable_sync_moka", |b| {
            b.iter_custom(|n| {
                two_threads(n, |_| {
                    black_box(cachet_sync_moka(black_box(KEY)));
                })
            })
        });
    }
    rt2.block_on(cached_async(KEY));
    g.bench_function("cached_macro_async", |b| {
        b.iter_custom(|n| two_tasks(&rt2, n, |_| cached_async(black_box(KEY))))
    });
    if is_cached_async(
        &rt2,
        "cachet #[cacheable] async",
        &CACHET_ASYNC_RUNS,
        cachet_async,
    ) {
        g.bench_function("cachet_cacheable_async", |b| {
            b.iter_custom(|n| two_tasks(&rt2, n, |_| cachet_async(black_box(KEY))))
        });
    }
    if is_cached_async(
        &rt2,
        "cachet #[cacheable] async, front table",
        &FRONT_ASYNC_RUNS,
        cachet_async_front,
    ) {
        g.bench_function("cachet_cacheable_async_front", |b| {
            b.iter_custom(|n| two_tasks(&rt2, n, |_| cachet_async_front(black_box(KEY))))
        });
    }
    if is_cached_async(
        &rt2,
        "cachet #[cacheable] async on moka",
        &CACHET_ASYNC_MOKA_RUNS,
        cachet_async_moka,
    ) {
        g.bench_function("cachet_cacheable_async_moka", |b| {
            b.iter_custom(|n| two_tasks(&rt2, n, |_| cachet_async_moka(black_box(KEY))))
        });
    }
    // Both threads over all resident keys (the second from the middle): the same calls
    // spread over 1,024 keys instead of one hot key.
    let key_of = |i: u64| i % RESIDENT;
    g.bench_function("quick_cache_get_str_1024keys", |b| {
        b.iter_custom(|n| {
            two_threads(n, |i| {
                let stored = engines.stored_keys[key_of(i) as usize].as_str();
                black_box(engines.quick_str.get(black_box(stored)));
            })
        })
    });
    // The driver alone over the same keys, read as a hit reads it (lent, not cloned):
    // what core adds is the gap to the cachet rows, what the driver adds the gap to raw.
    g.bench_function("memory_tier_read_quick_cache_1024keys", |b| {
        b.iter_custom(|n| {
            two_threads(n, |i| {
                black_box(engines.tier_read(&engines.tier_quick, key_of(i)));
            })
        })
    });
    g.bench_function("memory_tier_read_front_1024keys", |b| {
        b.iter_custom(|n| {
            two_threads(n, |i| {
                black_box(engines.tier_read(&engines.tier_front, key_of(i)));
            })
        })
    });
    g.bench_function("cached_macro_sync_1024keys", |b| {
        b.iter_custom(|n| {
            two_threads(n, |i| {
                black_box(cached_sync(black_box(key_of(i))));
            })
        })
    });
    g.bench_function("cachet_cacheable_sync_1024keys", |b| {
        b.iter_custom(|n| {
            two_threads(n, |i| {
                black_box(cachet_sync(black_box(key_of(i))));
            })
        })
    });
    g.bench_function("cachet_cacheable_sync_front_1024keys", |b| {
        b.iter_custom(|n| {
            two_threads(n, |i| {
                black_box(cachet_sync_front(black_box(key_of(i))));
            })
        })
    });
    g.bench_function("cached_macro_async_1024keys", |b| {
        b.iter_custom(|n| two_tasks(&rt2, n, move |i| cached_async(black_box(key_of(i)))))
    });
    g.bench_function("cachet_cacheable_async_1024keys", |b| {
        b.iter_custom(|n| two_tasks(&rt2, n, move |i| cachet_async(black_box(key_of(i)))))
    });
    g.bench_function("cachet_cacheable_async_front_1024keys", |b| {
        b.iter_custom(|n| two_tasks(&rt2, n, move |i| cachet_async_front(black_box(key_of(i)))))
    });
    if cachet_get_works(&rt1) {
        let cache = cachet_cache();
        g.bench_function("cachet_get_async", |b| {
            b.iter_custom(|n| {
                two_tasks(&rt2, n, move |_| async move {
                    cache.get::<u64>(black_box(&KEY)).await
                })
            })
        });
    }
    g.finish();
    eprintln!(
        "hit_2threads: of {2} two-task calls, {0} started both tasks on one worker, {1} moved a task",
        SHARED_WORKER.load(Relaxed),
        MOVED.load(Relaxed),
        TWO_TASK_CALLS.load(Relaxed)
    );
}

// ---------------------------------------------------------------- key derivation

/// A small struct argument, as a query object would be.
#[derive(Serialize)]
struct Query {
    user_id: u64,
    page: u32,
    active: bool,
}

fn key_derivation(c: &mut Criterion) {
    let id: u64 = 1_234_567;
    let pair: (u64, String) = (1_234_567, "alice@example.org".chars().take(16).collect());
    let query = Query {
        user_id: 1_234_567,
        page: 3,
        active: true,
    };
    let encoder_ok = cachet::key::encode_key(&id).is_ok();
    if !encoder_ok {
        eprintln!("SKIPPED cachet encode_key: it returns an error (is the key encoder in place?)");
    }
    let mut g = c.benchmark_group("key");
    macro_rules! shape {
        ($name:literal, $value:expr, $fmt:expr) => {
            let v = $value;
            if encoder_ok {
                g.bench_function(concat!($name, "/cachet_encode_key"), |b| {
                    b.iter(|| cachet::key::encode_key(black_box(v)).expect("encodes"))
                });
            }
            g.bench_function(concat!($name, "/bincode1_serialize"), |b| {
                b.iter(|| bincode::serialize(black_box(v)).expect("encodes"))
            });
            // Into a reused buffer: the encoders' own work, without the allocation.
            if encoder_ok {
                let mut buf = String::with_capacity(256);
                g.bench_function(concat!($name, "/cachet_encode_key_into_reused"), |b| {
                    b.iter(|| {
                        buf.clear();
                        cachet::key::encode_key_into(black_box(v), &mut buf).expect("encodes");
                        black_box(buf.len())
                    })
                });
            }
            let mut vec = Vec::with_capacity(256);
            g.bench_function(concat!($name, "/bincode1_serialize_into_reused"), |b| {
                b.iter(|| {
                    vec.clear();
                    bincode::serialize_into(&mut vec, black_box(v)).expect("encodes");
                    black_box(vec.len())
                })
            });
            g.bench_function(concat!($name, "/format"), |b| b.iter(|| $fmt(black_box(v))));
        };
    }
    shape!("u64", &id, |v: &u64| format!("{v}"));
    shape!("u64_string16", &pair, |v: &(u64, String)| format!(
        "{}:{}",
        v.0, v.1
    ));
    shape!("struct", &query, |v: &Query| format!(
        "{}:{}:{}",
        v.user_id, v.page, v.active
    ));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_millis(2500))
        .warm_up_time(Duration::from_millis(700))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = hit_sync, hit_async, hit_2threads, key_derivation
}
/// `CACHET_HIT_COUNT=OP:N`: runs `N` hits of `OP` after the same setup as the benches,
/// for an instruction counter. Async functions are polled once (`now_or_never`, a memory
/// hit completes on its first poll), so no runtime's instructions are counted.
fn count_mode(spec: &str) {
    let (op, n) = spec
        .split_once(':')
        .and_then(|(op, n)| Some((op, n.parse::<u64>().ok()?)))
        .expect("CACHET_HIT_COUNT=OP:N");
    let engines = Engines::new();
    cachet_cache();
    warm_resident(&current_thread());
    // `CACHET_HIT_SUBSCRIBED=1`: an event listener is subscribed (it counts the events), so
    // the count shows what a listener costs a hit; unset, what events cost nobody listening.
    let heard = Arc::new(AtomicU64::new(0));
    let _subscription = std::env::var_os("CACHET_HIT_SUBSCRIBED").map(|_| {
        let heard = heard.clone();
        cachet::manager().subscribe(move |event| {
            black_box(event);
            heard.fetch_add(1, Relaxed);
        })
    });
    let ready = |v: Option<u64>| v.expect("a memory hit completes on its first poll");
    // The `_1024keys` ops read the resident keys in turn (one thread: no key is read twice
    // in a row; a front table takes each key into its slot when the slot is empty, ~79 %
    // of them, and the rest are front-table misses read through the lock).
    let turn = std::cell::Cell::new(0u64);
    let next = || {
        let i = turn.get();
        turn.set(i + 1);
        black_box(i % RESIDENT)
    };
    // Warm every path first, so one-time setup is the same for N and 0.
    let run = |op: &str| -> u64 {
        match op {
            "memory_tier_read_quick_cache_1024keys" => {
                engines.tier_read(&engines.tier_quick, next()).unwrap_or(0)
            }
            "memory_tier_read_front_1024keys" => {
                engines.tier_read(&engines.tier_front, next()).unwrap_or(0)
            }
            "cachet_sync_1024keys" => cachet_sync(next()),
            "cachet_sync_front_1024keys" => cachet_sync_front(next()),
            "moka_get_str" => engines
                .moka_str
                .get(black_box(engines.stored_key.as_str()))
                .unwrap_or(0),
            "quick_cache_get_str" => engines
                .quick_str
                .get(black_box(engines.stored_key.as_str()))
                .unwrap_or(0),
            "memory_tier_get_moka" => engines.tier_get(&engines.tier_moka).unwrap_or(0),
            "memory_tier_get_quick_cache" => engines.tier_get(&engines.tier_quick).unwrap_or(0),
            "memory_tier_get_front" => engines.tier_get(&engines.tier_front).unwrap_or(0),
            "cachet_sync_front" => cachet_sync_front(black_box(KEY)),
            "cachet_sync_ttl_front" => cachet_sync_ttl_front(black_box(KEY)),
            "cachet_sync_str_front" => cachet_sync_str_front(black_box(engines.str_key.as_str())),
            "cachet_async_front" => ready(cachet_async_front(black_box(KEY)).now_or_never()),
            "cached_sync" => cached_sync(black_box(KEY)),
            "cachet_sync" => cachet_sync(black_box(KEY)),
            "cachet_sync_ttl" => cachet_sync_ttl(black_box(KEY)),
            "cachet_sync_str" => cachet_sync_str(black_box(engines.str_key.as_str())),
            "cachet_sync_moka" => cachet_sync_moka(black_box(KEY)),
            "cached_async" => ready(cached_async(black_box(KEY)).now_or_never()),
            "cachet_async" => ready(cachet_async(black_box(KEY)).now_or_never()),
            "cachet_async_moka" => ready(cachet_async_moka(black_box(KEY)).now_or_never()),
            other => panic!("unknown op {other}"),
        }
    };
    for _ in 0..10 {
        black_box(run(op));
    }
    for _ in 0..n {
        black_box(run(op));
    }
}

fn main() {
    if let Ok(spec) = std::env::var("CACHET_HIT_COUNT") {
        return count_mode(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
