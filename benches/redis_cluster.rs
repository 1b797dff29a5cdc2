//! Redis Cluster L2 hits with 64 tasks: cachet on an L2-only store whose L2 is a 3-master,
//! 3-replica cluster the bench starts (the test harness's), side by side with the raw
//! redis cluster client (`cluster-async`, the connection cachet's tier uses) issuing the
//! same reads: 64 keys spread over the cluster's slots, task `i` reading key `i`
//! (BENCHMARKS.md, "Redis Cluster L2").
//!
//! `cargo bench --features redis --bench redis_cluster -- --warm-up-time 1 --measurement-time 3`.
//! Without `redis-server`/`redis-cli` on `PATH` it stops with the install hint. Each row is
//! checked to read what cachet stored before it is timed; after criterion's groups, paired
//! rounds print each row's throughput as a ratio to the raw `GETRANGE` row of the same
//! round (the ratio the team trusts on a shared machine).

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use redis::cluster_async::ClusterConnection;
use redis_server::RedisCluster;
use serde::{Deserialize, Serialize};

/// Tasks reading at once; task `i` reads key `i`.
const TASKS: u64 = 64;
const CACHE: &str = "profiles";
const PREFIX: &str = "bench";

/// A small record, ~100 bytes encoded, as in the single-server Redis bench.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Profile {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
}

fn profile(id: u64) -> Profile {
    Profile {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.org"),
        roles: vec!["reader".into(), "writer".into()],
    }
}

#[derive(Debug, Clone)]
struct LoadError;

#[cachet::cacheable("profiles")]
async fn cachet_profile(id: u64) -> Result<Profile, LoadError> {
    Ok(profile(id))
}

struct Fixture {
    _cluster: RedisCluster,
    rt: tokio::runtime::Runtime,
    cache: cachet::Cache,
    raw: ClusterConnection,
    /// The same client connected on a runtime of one worker thread of its own, as cachet's
    /// tier is (its backend runtime), used from `rt`'s tasks: where the connection's tasks
    /// run, without anything else cachet does.
    raw_own_thread: ClusterConnection,
    _driver_rt: tokio::runtime::Runtime,
    /// `{prefix}:{cache}:{id}` for each task's key.
    stored_keys: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let cluster = RedisCluster::start();
        let seeds = cluster
            .urls()
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let manager = cachet::CacheManager::from_toml_str(&format!(
            "prefix = \"{PREFIX}\"\nttl = \"1h\"\ndefault_store = \"l2\"\n\
             [stores.l2]\nl2 = {{ driver = \"redis\", cluster = [{seeds}] }}\n"
        ))
        .expect("an L2-only manager on the cluster builds");
        cachet::init(manager).expect("the global manager is set once");
        let cache = cachet::cache(CACHE).expect("cache profiles");
        let stored_keys = (0..TASKS)
            .map(|id| format!("{PREFIX}:{CACHE}:{id}"))
            .collect();
        let raw = rt.block_on(async {
            for id in 0..TASKS {
                cache
                    .set(&id, &profile(id))
                    .await
                    .expect("cachet writes to the cluster");
            }
            redis::cluster::ClusterClient::new(cluster.urls())
                .expect("a cluster client")
                .get_async_connection()
                .await
                .expect("the raw cluster client connects")
        });
        let driver_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let raw_own_thread = driver_rt.block_on(async {
            redis::cluster::ClusterClient::new(cluster.urls())
                .expect("a cluster client")
                .get_async_connection()
                .await
                .expect("the raw cluster client connects")
        });
        Fixture {
            _cluster: cluster,
            rt,
            cache,
            raw,
            raw_own_thread,
            _driver_rt: driver_rt,
            stored_keys,
        }
    })
}

/// `GETRANGE key 0 16 MiB`, the command cachet's tier sends, on the raw cluster client.
async fn raw_getrange(mut conn: ClusterConnection, key: &str) -> Vec<u8> {
    redis::cmd("GETRANGE")
        .arg(key)
        .arg(0)
        .arg(16usize << 20)
        .query_async(&mut conn)
        .await
        .expect("raw GETRANGE")
}

async fn raw_get(mut conn: ClusterConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("raw GET")
}

type Op = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The rows, each checked to read what cachet stored (a hit served by the cluster).
fn contenders(f: &'static Fixture) -> Vec<(&'static str, Op)> {
    let ok = f.rt.block_on(async {
        let mut ok = true;
        for id in 0..TASKS {
            let key = &f.stored_keys[id as usize];
            ok &= !raw_getrange(f.raw.clone(), key).await.is_empty();
            ok &= matches!(f.cache.get::<Profile, _>(&id).await, Ok(Some(p)) if p == profile(id));
            ok &= matches!(cachet_profile(id).await, Ok(p) if p == profile(id));
        }
        let l2_hits = f.cache.stats().l2_hits;
        ok &= f.cache.get::<Profile, _>(&0u64).await.is_ok()
            && f.cache.stats().l2_hits == l2_hits + 1;
        ok
    });
    assert!(
        ok,
        "the cluster does not serve what cachet stored: nothing to measure"
    );
    let keys: &'static [String] = &f.stored_keys;
    vec![
        (
            "raw_cluster_getrange",
            Arc::new(move |i| {
                Box::pin(async move {
                    black_box(raw_getrange(f.raw.clone(), &keys[i as usize]).await);
                })
            }),
        ),
        (
            "raw_cluster_getrange_driver_on_own_thread",
            Arc::new(move |i| {
                Box::pin(async move {
                    black_box(raw_getrange(f.raw_own_thread.clone(), &keys[i as usize]).await);
                })
            }),
        ),
        (
            "raw_cluster_get",
            Arc::new(move |i| {
                Box::pin(async move {
                    black_box(raw_get(f.raw.clone(), &keys[i as usize]).await);
                })
            }),
        ),
        (
            "cachet_get",
            Arc::new(move |i| {
                Box::pin(async move {
                    black_box(f.cache.get::<Profile, _>(&i).await.ok());
                })
            }),
        ),
        (
            "cachet_cacheable",
            Arc::new(|i| {
                Box::pin(async move {
                    black_box(cachet_profile(i).await.ok());
                })
            }),
        ),
    ]
}

/// Runs `op(i)` `iters` times in each task `i` of `TASKS`, released together; the wall time.
fn tasks(rt: &tokio::runtime::Runtime, iters: u64, op: Op) -> Duration {
    rt.block_on(async move {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize + 1));
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let (op, barrier) = (Arc::clone(&op), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    for _ in 0..iters {
                        op(i).await;
                    }
                })
            })
            .collect();
        barrier.wait().await;
        let t0 = Instant::now();
        for h in handles {
            h.await.expect("bench task");
        }
        t0.elapsed()
    })
}

fn redis_cluster_hit_64tasks(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("redis_cluster_hit_64tasks");
    g.throughput(Throughput::Elements(TASKS));
    for (name, op) in contenders(f) {
        g.bench_function(name, |b| {
            b.iter_custom(|n| tasks(&f.rt, n, Arc::clone(&op)))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_millis(2500))
        .warm_up_time(Duration::from_millis(700))
        .sample_size(20)
        .configure_from_args()
}

const ROUNDS: usize = 30;
const TASK_OPS: u64 = 100;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Every row once per round (in a rotated order), each as a ratio to the raw `GETRANGE`
/// row of the same round: steadier than criterion's sequential groups on a shared machine.
fn paired_rounds() {
    let f = fixture();
    let rows = contenders(f);
    let mut rates = vec![Vec::with_capacity(ROUNDS); rows.len()];
    for round in 0..ROUNDS {
        for i in (0..rows.len()).map(|i| (i + round) % rows.len()) {
            let took = tasks(&f.rt, TASK_OPS, Arc::clone(&rows[i].1));
            rates[i].push((TASK_OPS * TASKS) as f64 / took.as_secs_f64());
        }
    }
    println!(
        "redis_cluster_paired: {ROUNDS} rounds of {TASKS} tasks x {TASK_OPS} reads per row; \
         medians over rounds; ratio = median of the per-round ratios to raw_cluster_getrange"
    );
    println!("| bench | {TASKS} tasks: reads/s | ratio |");
    println!("|---|---:|---:|");
    for (i, (name, _)) in rows.iter().enumerate() {
        let ratio = median(rates[i].iter().zip(&rates[0]).map(|(c, r)| c / r).collect());
        println!(
            "| {name} | {:.1} k/s | {ratio:.2} |",
            median(rates[i].clone()) / 1e3
        );
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = redis_cluster_hit_64tasks
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The filter is the first free argument that is not an option's number
    // (`--measurement-time 3`).
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-') && a.parse::<f64>().is_err());
    let measuring =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list" || a == "--test");
    if measuring && filter.is_none_or(|f| "redis_cluster_paired".contains(f.as_str())) {
        paired_rounds();
    }
}
