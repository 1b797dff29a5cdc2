//! DynamoDB stores as a user builds them (L1 memory + L2 DynamoDB, and L2 only), against
//! a real DynamoDB emulator started by the harness on a loopback port: bad bytes, values
//! over 400 KB, an emulator killed mid-load, namespaces, tags, grace and the
//! distributed lock. Every tier has an explicit loopback endpoint and static test
//! credentials: nothing reaches for the default AWS chain.
#![cfg(feature = "dynamodb")]

#[path = "support/grace.rs"]
mod grace;
#[allow(dead_code)] // the Redis helpers
mod support;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cachet::dynamodb::{DynamoOptions, DynamoTier};
use cachet::memory::{MemoryOptions, MemoryTier};
use cachet::store::RemoteTier;
use cachet::testing::with_manager;
use cachet::{cacheable, CacheManager, StoreBuilder};
use support::dynamodb_server::{DynamoServer, TEST_REGION};
use support::eventually;

fn options(server: &DynamoServer) -> DynamoOptions {
    let (id, secret) = server.credentials();
    DynamoOptions::new("cachet")
        .region(TEST_REGION)
        .endpoint(server.endpoint())
        .static_credentials(id, secret)
        .auto_create(true)
        .operation_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_millis(300))
}

fn l2(opts: DynamoOptions) -> Arc<DynamoTier> {
    Arc::new(DynamoTier::new(opts).unwrap())
}

/// An L2-only store on the emulator.
fn l2_only(server: &DynamoServer, prefix: &str) -> CacheManager {
    CacheManager::builder()
        .prefix(prefix)
        .ttl(Duration::from_secs(3600))
        .store("dynamo", StoreBuilder::new().l2(l2(options(server))))
        .build()
        .unwrap()
}

/// L1 memory + L2 on the emulator, with a short circuit breaker.
fn tiered(server: &DynamoServer, prefix: &str, opts: DynamoOptions) -> CacheManager {
    let _ = server;
    CacheManager::builder()
        .prefix(prefix)
        .ttl(Duration::from_secs(3600))
        .store(
            "dynamo",
            StoreBuilder::new()
                .l1(MemoryTier::new(MemoryOptions::max_entries(1000)))
                .l2(l2(opts))
                .l2_circuit_breaker(Duration::from_millis(300)),
        )
        .build()
        .unwrap()
}

/// Stores `bytes` under a stored key, as another writer might.
async fn plant(server: &DynamoServer, key: &str, bytes: &[u8]) {
    DynamoTier::new(options(server))
        .unwrap()
        .set(key, bytes.to_vec(), Duration::from_secs(3600))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_and_bad_bytes_are_a_miss_that_gets_overwritten() {
    let server = DynamoServer::start();
    let manager = l2_only(&server, "bad");
    let cache = manager.cache("c").unwrap();
    cache.set(&0u64, &"zero".to_string()).await.unwrap();
    assert_eq!(
        cache.get::<String>(&0u64).await.unwrap().as_deref(),
        Some("zero")
    );
    for garbage in [&b"not an envelope"[..], &[1, 2, 3], &[0xff; 70_000]] {
        plant(&server, "bad:c:1", garbage).await;
        assert_eq!(cache.get::<String>(&1u64).await.unwrap(), None);
    }
    // A value of another type is a miss too.
    cache.set(&2u64, &vec![1u32, 2, 3]).await.unwrap();
    assert_eq!(cache.get::<String>(&2u64).await.unwrap(), None);
    let value: String = cache
        .get_or_set(&1u64, || async { "fresh".to_string() })
        .await
        .unwrap();
    assert_eq!(value, "fresh");
    assert_eq!(
        cache.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("fresh"),
        "overwritten"
    );
    // three reads of garbage, one of another type, and get_or_set's own read of the
    // last garbage before it ran the function
    assert_eq!(cache.stats().errors, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_400_kb_is_not_stored_and_counted_never_a_failed_call() {
    let server = DynamoServer::start();
    let manager = l2_only(&server, "big");
    let cache = manager.cache("c").unwrap();
    let big = "x".repeat(500 * 1024);
    cache.set(&1u64, &big).await.unwrap();
    assert_eq!(cache.stats().errors, 1);
    assert_eq!(cache.get::<String>(&1u64).await.unwrap(), None);
    // through get_or_set: the caller gets the value all the same
    let got: String = cache
        .get_or_set(&2u64, || async { "y".repeat(450 * 1024) })
        .await
        .unwrap();
    assert_eq!(got.len(), 450 * 1024);
    assert_eq!(cache.stats().errors, 2);
    // a small one still goes through
    cache.set(&3u64, &"small".to_string()).await.unwrap();
    assert_eq!(
        l2_only(&server, "big")
            .cache("c")
            .unwrap()
            .get::<String>(&3u64)
            .await
            .unwrap()
            .as_deref(),
        Some("small")
    );
}

static LOOKUPS: AtomicU64 = AtomicU64::new(0);

#[cacheable("profiles")]
async fn profile(id: u64) -> Result<String, String> {
    LOOKUPS.fetch_add(1, SeqCst);
    Ok(format!("profile {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_killed_mid_load_never_fails_the_function_and_is_used_again_once_back() {
    let server = DynamoServer::start();
    let fast = options(&server)
        .operation_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(200));
    let a = tiered(&server, "faults", fast.clone());
    let b = tiered(&server, "faults", fast);
    let mut failures = 0;
    // A load running while the emulator dies under it.
    with_manager(a.clone(), async {
        for id in 0..60u64 {
            if id == 20 {
                server.kill();
            }
            if profile(id % 30).await != Ok(format!("profile {}", id % 30)) {
                failures += 1;
            }
        }
    })
    .await;
    let errors = a.cache("profiles").unwrap().stats().errors;
    println!("emulator killed mid-load: {failures} failures returned to callers, {errors} L2 faults counted");
    assert_eq!(failures, 0);
    assert!(errors > 0, "faults are counted");

    server.restart();
    // The emulator keeps nothing: the table is made again (as infrastructure would).
    DynamoTier::new(options(&server))
        .unwrap()
        .ping()
        .await
        .unwrap();
    let profiles_a = a.cache("profiles").unwrap();
    let profiles_b = b.cache("profiles").unwrap();
    eventually("L2 is used again after the restart", async || {
        profiles_a
            .set(&999u64, &"via dynamodb".to_string())
            .await
            .unwrap();
        profiles_b.get::<String>(&999u64).await.unwrap().as_deref() == Some("via dynamodb")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_tags_clear_exactly_their_entries() {
    let server = DynamoServer::start();
    let manager = l2_only(&server, "shop");
    let users = manager.cache("users").unwrap();
    let admins = users.namespace("admins");
    let weird = users.namespace("a:b#*");
    users.set(&1u64, &"u1".to_string()).await.unwrap();
    admins.set(&1u64, &"a1".to_string()).await.unwrap();
    weird.set(&1u64, &"w1".to_string()).await.unwrap();
    admins.clear().await.unwrap();
    assert_eq!(admins.get::<String>(&1u64).await.unwrap(), None);
    assert_eq!(
        users.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("u1")
    );
    assert_eq!(
        weird.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("w1")
    );
    admins.set(&2u64, &"a2".to_string()).await.unwrap();
    users.clear().await.unwrap();
    for cache in [&users, &admins, &weird] {
        assert_eq!(cache.get::<String>(&1u64).await.unwrap(), None);
    }
    assert_eq!(admins.get::<String>(&2u64).await.unwrap(), None);

    let products = manager.cache("products").unwrap();
    let sale = products.tagged(["sale"]);
    sale.set(&1u64, &"p1".to_string()).await.unwrap();
    products
        .tagged(["new"])
        .set(&2u64, &"p2".to_string())
        .await
        .unwrap();
    products.delete_by_tag("sale").await.unwrap();
    assert_eq!(products.get::<String>(&1u64).await.unwrap(), None);
    assert_eq!(
        products.get::<String>(&2u64).await.unwrap().as_deref(),
        Some("p2")
    );
    assert_eq!(products.stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_works_through_dynamodb_for_an_instance_with_an_empty_l1() {
    let server = DynamoServer::start();
    let build = || {
        CacheManager::builder()
            .prefix("grace")
            .ttl(Duration::from_millis(50))
            .grace(Duration::from_secs(3600))
            .store(
                "dynamo",
                StoreBuilder::new()
                    .l1(MemoryTier::new(MemoryOptions::max_entries(100)))
                    .l2(l2(options(&server))),
            )
            .build()
            .unwrap()
    };
    grace::a_fresh_instance_is_served_the_stale_value_from_l2(build, "DynamoDB").await;
}

static REPORT_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("reports")]
async fn report(id: u64) -> u64 {
    REPORT_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    id * 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_distributed_lock_runs_a_cold_key_once_across_instances() {
    let server = DynamoServer::start();
    let instance = || {
        CacheManager::builder()
            .prefix("lockt")
            .ttl(Duration::from_secs(3600))
            .store(
                "dynamo",
                StoreBuilder::new()
                    .l1(MemoryTier::new(MemoryOptions::max_entries(100)))
                    .l2(l2(options(&server)))
                    .distributed_lock(Duration::from_secs(10)),
            )
            .build()
            .unwrap()
    };
    // warm the table up (auto_create) before the race
    instance().store("dynamo").unwrap().ping().await.unwrap();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let m = instance();
            tokio::spawn(with_manager(m, report(7)))
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 7000);
    }
    assert_eq!(REPORT_RUNS.load(SeqCst), 1, "four instances, one run");
}
