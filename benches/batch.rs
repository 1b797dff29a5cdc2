//! Batch caching (BENCHMARKS.md, "Batches"): 100 keys of which 50 are cached, read with one
//! `get_or_set_many` against 100 `get_or_set` calls, on a memory store and on an L2-only
//! Redis store (a `redis-server` the bench starts on a free loopback port).
//!
//! `cargo bench --features redis --bench batch -- --warm-up-time 1 --measurement-time 3`.
//! Before timing, the bench counts the round trips each way makes to Redis through a
//! small counting proxy and prints them: a round trip is a request the client sends after
//! the server answered the previous one.
//!
//! Every timed iteration first deletes the 50 keys that must miss (untimed), so each one
//! starts from the same state: 50 hits, 50 loads, 50 writes.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet::{Cache, CacheManager};
use criterion::{criterion_group, Criterion};
use redis_server::RedisServer;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEYS: u64 = 100;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Profile {
    id: u64,
    name: String,
}

fn profile(id: u64) -> Profile {
    Profile {
        id,
        name: format!("user {id}"),
    }
}

fn keys() -> Vec<u64> {
    (0..KEYS).collect()
}

/// The keys that miss in every iteration: the odd ones.
fn misses() -> Vec<u64> {
    (0..KEYS).filter(|k| k % 2 == 1).collect()
}

async fn prepare(cache: &Cache) {
    let hits: Vec<(u64, Profile)> = (0..KEYS)
        .filter(|k| k % 2 == 0)
        .map(|k| (k, profile(k)))
        .collect();
    cache.set_many(&hits).await.unwrap();
    cache.delete_many(&misses()).await.unwrap();
}

async fn batch(cache: &Cache, keys: &[u64]) -> usize {
    let all = cache
        .get_or_set_many(keys, |missing: Vec<u64>| async move {
            missing
                .into_iter()
                .map(|k| (k, profile(k)))
                .collect::<HashMap<_, _>>()
        })
        .await
        .unwrap();
    all.len()
}

async fn singles(cache: &Cache, keys: &[u64]) -> usize {
    let mut n = 0;
    for &k in keys {
        let p: Profile = cache
            .get_or_set(&k, move || async move { profile(k) })
            .await
            .unwrap();
        n += usize::from(p.id == k);
    }
    n
}

/// Times `run` over `iters` iterations, each after an untimed reset of the missing keys.
async fn timed<F, Fut>(cache: &Cache, iters: u64, run: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        cache.delete_many(&misses()).await.unwrap();
        let start = Instant::now();
        black_box(run().await);
        total += start.elapsed();
    }
    total
}

fn config() -> Criterion {
    Criterion::default().sample_size(20)
}

fn memory_batch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let manager = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    let cache = manager.cache("profiles").unwrap();
    rt.block_on(prepare(&cache));
    let keys = keys();
    let mut group = c.benchmark_group("batch_memory_100keys_50pct_hits");
    group.bench_function("get_or_set_many", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| timed(&cache, iters, || batch(&cache, &keys)))
    });
    group.bench_function("100x_get_or_set", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| timed(&cache, iters, || singles(&cache, &keys)))
    });
    group.finish();
}

/// A loopback proxy in front of `target` counting round trips: requests sent after the
/// server last answered.
struct Proxy {
    port: u16,
    round_trips: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = round_trips.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", target))
                    .await
                    .unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                // Whether the server answered since the client's last request.
                let answered = Arc::new(AtomicBool::new(true));
                let (a, counter) = (answered.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        if a.swap(false, SeqCst) {
                            counter.fetch_add(1, SeqCst);
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        answered.store(true, SeqCst);
                    }
                });
            }
        });
        Proxy { port, round_trips }
    }
}

fn l2_only(port: u16, prefix: &str) -> Cache {
    let manager = CacheManager::from_toml_str(&format!(
        "prefix = \"{prefix}\"\n[stores.shared]\nl2 = {{ driver = \"redis\", url = \"redis://127.0.0.1:{port}/0\" }}\n"
    ))
    .unwrap();
    manager.cache("profiles").unwrap()
}

fn redis_batch(c: &mut Criterion) {
    let server = RedisServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let keys = keys();
    // Round trips, counted once through the proxy.
    rt.block_on(async {
        let proxy = Proxy::start(server.port()).await;
        let cache = l2_only(proxy.port, "bench-rt");
        prepare(&cache).await;
        let count = |before: u64| proxy.round_trips.load(SeqCst) - before;
        cache.delete_many(&misses()).await.unwrap();
        let before = proxy.round_trips.load(SeqCst);
        assert_eq!(batch(&cache, &keys).await, KEYS as usize);
        let batched = count(before);
        cache.delete_many(&misses()).await.unwrap();
        let before = proxy.round_trips.load(SeqCst);
        assert_eq!(singles(&cache, &keys).await, KEYS as usize);
        let single = count(before);
        println!(
            "round trips to Redis, {KEYS} keys, 50 % hits: get_or_set_many {batched}, {KEYS} x get_or_set {single} ({:.1}x fewer)",
            single as f64 / batched.max(1) as f64
        );
    });
    let cache = l2_only(server.port(), "bench");
    rt.block_on(prepare(&cache));
    let mut group = c.benchmark_group("batch_redis_100keys_50pct_hits");
    group.bench_function("get_or_set_many", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| timed(&cache, iters, || batch(&cache, &keys)))
    });
    group.bench_function("100x_get_or_set", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| timed(&cache, iters, || singles(&cache, &keys)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = memory_batch, redis_batch
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
