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

#[path = "support/paired.rs"]
mod paired;
#[path = "support/profile.rs"]
mod profile;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "support/teardown.rs"]
mod teardown;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use paired::{Paired, Row};
use profile::{profile, Profile};
use redis::cluster_async::ClusterConnection;
use redis_server::RedisCluster;

/// Tasks reading at once; task `i` reads key `i`.
const TASKS: u64 = 64;
const CACHE: &str = "profiles";
const PREFIX: &str = "bench";

#[derive(Debug, Clone)]
struct LoadError;

#[cachet::cacheable("profiles")]
async fn cachet_profile(id: u64) -> Result<Profile, LoadError> {
    Ok(profile(id))
}

struct Fixture {
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
        teardown::keep(cluster);
        Fixture {
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

/// The rows, each checked to read what cachet stored (a hit served by the cluster).
fn contenders(f: &'static Fixture) -> Vec<Row> {
    let ok = f.rt.block_on(async {
        let mut ok = true;
        for id in 0..TASKS {
            let key = &f.stored_keys[id as usize];
            ok &= !raw_getrange(f.raw.clone(), key).await.is_empty();
            ok &= matches!(f.cache.get::<Profile>(&id).await, Ok(Some(p)) if p == profile(id));
            ok &= matches!(cachet_profile(id).await, Ok(p) if p == profile(id));
        }
        let l2_hits = f.cache.stats().l2_hits;
        ok &= f.cache.get::<Profile>(&0u64).await.is_ok() && f.cache.stats().l2_hits == l2_hits + 1;
        ok
    });
    assert!(
        ok,
        "the cluster does not serve what cachet stored: nothing to measure"
    );
    let keys: &'static [String] = &f.stored_keys;
    vec![
        Row::new(
            "raw_cluster_getrange",
            paired::op(move |i| async move {
                black_box(raw_getrange(f.raw.clone(), &keys[i as usize]).await);
            }),
            0,
        ),
        Row::new(
            "raw_cluster_getrange_driver_on_own_thread",
            paired::op(move |i| async move {
                black_box(raw_getrange(f.raw_own_thread.clone(), &keys[i as usize]).await);
            }),
            0,
        ),
        Row::new(
            "raw_cluster_get",
            paired::op(move |i| async move {
                black_box(raw_get(f.raw.clone(), &keys[i as usize]).await);
            }),
            0,
        ),
        Row::new(
            "cachet_get",
            paired::op(move |i| async move {
                black_box(f.cache.get::<Profile>(&i).await.ok());
            }),
            0,
        ),
        Row::new(
            "cachet_cacheable",
            paired::op(|i| async move {
                black_box(cachet_profile(i).await.ok());
            }),
            0,
        ),
    ]
}

fn redis_cluster_hit_64tasks(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("redis_cluster_hit_64tasks");
    g.throughput(Throughput::Elements(TASKS));
    for row in contenders(f) {
        g.bench_function(&row.name, |b| {
            b.iter_custom(|n| paired::concurrently(&f.rt, TASKS, n, &row.op))
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

/// Every row once per round (in a rotated order), each as a ratio to the raw `GETRANGE`
/// row of the same round: steadier than criterion's sequential groups on a shared machine.
const PAIRED: Paired = Paired {
    name: "redis_cluster_paired",
    rounds: 30,
    single_ops: None,
    tasks: TASKS,
    task_ops: 100,
    unit: "reads",
};

criterion_group! {
    name = benches;
    config = config();
    targets = redis_cluster_hit_64tasks
}

fn main() {
    let _stop = teardown::StopAtExit;
    benches();
    Criterion::default().configure_from_args().final_summary();
    if paired::wanted(PAIRED.name) {
        let f = fixture();
        PAIRED.run(&f.rt, &contenders(f));
    }
}
