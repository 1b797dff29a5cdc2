//! Stampede: 1,000 concurrent callers on a cold key whose function sleeps 10 ms.
//! Counts the function's executions (single flight: must be 1) and prints the callers'
//! latency distribution, cachet next to the `cached` crate.
//!
//! `cargo bench --bench stampede` (a plain program: `harness = false`). With
//! `--features redis` it adds a row on a tiered store (L1 memory + L2 Redis + bus) against
//! a `redis-server` it starts on a free loopback port.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLERS: usize = 1_000;
const ROUNDS: u64 = 5;
const WORK: Duration = Duration::from_millis(10);

static CACHET_RUNS: AtomicU64 = AtomicU64::new(0);
static GET_OR_SET_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHED_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHED_BY_KEY_RUNS: AtomicU64 = AtomicU64::new(0);
#[cfg(feature = "redis")]
static TIERED_RUNS: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "redis")]
#[path = "../tests/support/redis_server.rs"]
mod redis_server;

/// The same on a tiered store: every caller misses L1; the single flight's leader alone reads L2.
#[cfg(feature = "redis")]
#[cachet::cacheable("stampede_tiered")]
async fn cachet_tiered_slow(id: u64) -> u64 {
    TIERED_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(WORK).await;
    id
}

#[cachet::cacheable("stampede")]
async fn cachet_slow(id: u64) -> u64 {
    CACHET_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(WORK).await;
    id
}

#[cached::proc_macro::cached]
async fn cached_slow(id: u64) -> u64 {
    CACHED_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(WORK).await;
    id
}

#[cached::proc_macro::cached(sync_writes = "by_key")]
async fn cached_by_key_slow(id: u64) -> u64 {
    CACHED_BY_KEY_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(WORK).await;
    id
}

type Call = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Outcome {
    runs_per_round: Vec<u64>,
    latencies: Vec<Duration>,
}

/// `CALLERS` tasks released together on one cold key per round.
async fn stampede(call: Call, runs: &AtomicU64, first_key: u64) -> Outcome {
    let mut out = Outcome {
        runs_per_round: Vec::new(),
        latencies: Vec::with_capacity(CALLERS * ROUNDS as usize),
    };
    for round in 0..ROUNDS {
        let key = first_key + round;
        let before = runs.load(Relaxed);
        let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (call, barrier) = (call.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let t0 = Instant::now();
                    call(key).await;
                    t0.elapsed()
                })
            })
            .collect();
        for t in tasks {
            out.latencies.push(t.await.expect("caller task"));
        }
        out.runs_per_round.push(runs.load(Relaxed) - before);
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    #[cfg(not(feature = "redis"))]
    let manager = cachet::CacheManager::builder()
        .memory_store("memory")
        .build()
        .expect("a memory-store manager builds");
    // The memory store as `memory_store` makes it, and a tiered store for one cache.
    #[cfg(feature = "redis")]
    let server = redis_server::RedisServer::start();
    #[cfg(feature = "redis")]
    let manager = {
        let url = server.url();
        cachet::CacheManager::from_toml_str(&format!(
            "default_store = \"memory\"\nprefix = \"stampede\"\n\
             [stores.memory]\nl1 = {{ driver = \"memory\", max_entries = 10000 }}\n\
             [stores.tiered]\nl1 = {{ driver = \"memory\", max_entries = 10000 }}\n\
             l2 = {{ driver = \"redis\", url = \"{url}\" }}\n\
             bus = {{ driver = \"redis\", url = \"{url}\" }}\n\
             [caches.stampede_tiered]\nstore = \"tiered\"\n"
        ))
        .expect("a memory + tiered manager builds")
    };
    cachet::init(manager).expect("the global manager is set once");
    let cache = cachet::cache("stampede_get").expect("cache");
    let cachet_get_ok = rt.block_on(cache.set(&0u64, &0u64)).is_ok();

    let mut runs: Vec<(&str, Call, &AtomicU64)> = vec![
        (
            "cachet #[cacheable] async",
            Arc::new(|k| {
                Box::pin(async move {
                    let _ = cachet_slow(k).await;
                })
            }),
            &CACHET_RUNS,
        ),
        (
            "cached #[cached] async",
            Arc::new(|k| {
                Box::pin(async move {
                    let _ = cached_slow(k).await;
                })
            }),
            &CACHED_RUNS,
        ),
        (
            "cached #[cached(sync_writes = \"by_key\")] async",
            Arc::new(|k| {
                Box::pin(async move {
                    let _ = cached_by_key_slow(k).await;
                })
            }),
            &CACHED_BY_KEY_RUNS,
        ),
    ];
    #[cfg(feature = "redis")]
    runs.insert(
        1,
        (
            "cachet #[cacheable] async, tiered (L1 + Redis)",
            Arc::new(|k| {
                Box::pin(async move {
                    let _ = cachet_tiered_slow(k).await;
                })
            }),
            &TIERED_RUNS,
        ),
    );
    if cachet_get_ok {
        runs.insert(
            1,
            (
                "cachet Cache::get_or_set",
                Arc::new(move |k| {
                    let cache = cache.clone();
                    Box::pin(async move {
                        let v: Result<u64, _> = cache
                            .get_or_set(&k, || async move {
                                GET_OR_SET_RUNS.fetch_add(1, Relaxed);
                                tokio::time::sleep(WORK).await;
                                k
                            })
                            .await;
                        let _ = v.expect("get_or_set");
                    })
                }),
                &GET_OR_SET_RUNS,
            ),
        );
    } else {
        eprintln!("SKIPPED cachet get_or_set: set fails (is the key encoder in place?)");
    }

    println!(
        "stampede: {CALLERS} concurrent callers on a cold key, function sleeps {} ms, \
         {ROUNDS} rounds, tokio multi-thread runtime with 2 workers",
        WORK.as_millis()
    );
    println!(
        "{:<48} {:>32} {:>9} {:>9} {:>9} {:>9}",
        "", "runs per round", "p50 ms", "p99 ms", "max ms", "target"
    );
    for (i, (name, call, counter)) in runs.into_iter().enumerate() {
        let outcome = rt.block_on(stampede(call, counter, 1_000_000 * (i as u64 + 1)));
        let mut lat = outcome.latencies;
        lat.sort();
        let p99 = percentile(&lat, 0.99);
        let met = outcome.runs_per_round.iter().all(|&r| r == 1)
            && p99 <= WORK + Duration::from_millis(2);
        println!(
            "{:<48} {:>32} {:>9} {:>9} {:>9} {:>9}",
            name,
            format!("{:?}", outcome.runs_per_round),
            ms(percentile(&lat, 0.50)),
            ms(p99),
            ms(*lat.last().expect("latencies")),
            if name.starts_with("cachet") {
                if met {
                    "met"
                } else {
                    "MISSED"
                }
            } else {
                "-"
            }
        );
    }
}
