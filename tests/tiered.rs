//! Tiered stores (L1 memory + L2 Redis + a Redis bus) and L2-only stores, against real
//! `redis-server` processes: two managers on one Redis play two instances of a service.

#[path = "support/grace.rs"]
mod grace;
mod support;

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cachet::testing::{with_manager, with_manager_sync};
use cachet::{cacheable, Cache, CacheManager};
use serde::Serialize;
use support::counting::{CountedKey, CountingL1};
use support::redis_server::RedisServer;
use support::{eventually, redis_cli};

fn tiered(server: &RedisServer, prefix: &str) -> CacheManager {
    let url = server.url();
    CacheManager::from_toml_str(&format!(
        r#"
        prefix = "{prefix}"
        ttl = "1h"
        [stores.tiered]
        l1 = {{ driver = "memory", max_entries = 1000 }}
        l2 = {{ driver = "redis", url = "{url}", operation_timeout = "250ms", connect_timeout = "250ms" }}
        bus = {{ driver = "redis", url = "{url}" }}
        l2_circuit_breaker = "300ms"
        "#
    ))
    .unwrap()
}

fn l2_only(server: &RedisServer, prefix: &str) -> CacheManager {
    let url = server.url();
    CacheManager::from_toml_str(&format!(
        "prefix = \"{prefix}\"\n[stores.shared]\nl2 = {{ driver = \"redis\", url = \"{url}\" }}\n"
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l2_hit_backfills_l1_and_an_l1_hit_skips_redis() {
    let server = RedisServer::start();
    let a = tiered(&server, "app");
    a.cache("users")
        .unwrap()
        .set(&1u64, &"ann".to_string())
        .await
        .unwrap();
    // b starts after a's write: a's bus message, were it to reach b while b reads, would
    // rightly refuse b's backfill (b cannot tell whether it read before the change).
    let b = tiered(&server, "app");
    let users_b = b.cache("users").unwrap();
    assert_eq!(
        users_b.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(users_b.stats().l2_hits, 1);
    let commands_before = redis_cli(server.port(), &["INFO", "commandstats"]);
    let gets_before = commands_before
        .lines()
        .find(|l| l.starts_with("cmdstat_get:"))
        .map(str::to_owned);
    for _ in 0..10 {
        assert_eq!(
            users_b.get::<String>(&1u64).await.unwrap().as_deref(),
            Some("ann")
        );
    }
    let commands_after = redis_cli(server.port(), &["INFO", "commandstats"]);
    let gets_after = commands_after
        .lines()
        .find(|l| l.starts_with("cmdstat_get:"))
        .map(str::to_owned);
    assert_eq!(users_b.stats().l1_hits, 10);
    assert_eq!(
        gets_before.map(|l| l.split(',').next().unwrap_or_default().to_owned()),
        gets_after.map(|l| l.split(',').next().unwrap_or_default().to_owned()),
        "L1 hits send no GET to Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_keeps_other_instances_l1_coherent() {
    let server = RedisServer::start();
    let (a, b) = (tiered(&server, "bus"), tiered(&server, "bus"));
    let (users_a, users_b) = (a.cache("users").unwrap(), b.cache("users").unwrap());
    users_a.set(&1u64, &"v1".to_string()).await.unwrap();
    users_a.set(&2u64, &"v1".to_string()).await.unwrap();
    // b holds both in its L1 now
    assert_eq!(
        users_b.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("v1")
    );
    assert_eq!(
        users_b.get::<String>(&2u64).await.unwrap().as_deref(),
        Some("v1")
    );

    users_a.set(&1u64, &"v2".to_string()).await.unwrap();
    let delay = eventually("b sees a's update", async || {
        users_b.get::<String>(&1u64).await.unwrap().as_deref() == Some("v2")
    })
    .await;
    println!("bus propagation delay (set): {delay:?}");

    users_a.delete(&2u64).await.unwrap();
    eventually("b sees a's delete", async || {
        users_b.get::<String>(&2u64).await.unwrap().is_none()
    })
    .await;

    users_b.get::<String>(&1u64).await.unwrap();
    users_a.clear().await.unwrap();
    eventually("b sees a's clear", async || {
        users_b.get::<String>(&1u64).await.unwrap().is_none()
    })
    .await;
}

/// `b` holds `key`'s `value` in its L1: read until one read is an L1 hit returning it (a
/// first read backfills L1, unless a bus message of `a`'s write refused the backfill).
async fn b_holds_in_l1(b: &Cache, key: &(impl Serialize + Debug + ?Sized), value: &str) {
    eventually(
        &format!("b holds {key:?} = {value} in its L1"),
        async || {
            let hits = b.stats().l1_hits;
            let read = b.get::<String>(key).await.unwrap();
            read.as_deref() == Some(value) && b.stats().l1_hits > hits
        },
    )
    .await;
}

/// A set and a delete of `key` on `a` take `b`'s L1 copy away: the bus message carries the
/// joined stored key, which `b` reads back into the parts its L1 files the entry under.
/// Were the copy left, `b` would read the old value from its L1 until it expires (1 h).
async fn a_change_on_a_reaches_b(a: &Cache, b: &Cache, key: &(impl Serialize + Debug + ?Sized)) {
    a.set(key, &"v1".to_string()).await.unwrap();
    b_holds_in_l1(b, key, "v1").await;
    a.set(key, &"v2".to_string()).await.unwrap();
    eventually(&format!("b sees a's set of {key:?}"), async || {
        b.get::<String>(key).await.unwrap().as_deref() == Some("v2")
    })
    .await;
    b_holds_in_l1(b, key, "v2").await;
    a.delete(key).await.unwrap();
    eventually(&format!("b sees a's delete of {key:?}"), async || {
        b.get::<String>(key).await.unwrap().is_none()
    })
    .await;
}

/// The bus keeps L1 coherent whatever the cache's name, namespace and key hold: reserved
/// characters (escaped in the stored key; a cache name may not hold `: # \ [ ] * ?`, so it
/// holds the others, and the namespace holds those), a tuple, a key longer than the 22 bytes
/// an L1 key holds inline and one longer than the 64 bytes the hit path encodes on the stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_keeps_l1_coherent_for_every_shape_of_name_and_key() {
    let server = RedisServer::start();
    let (a, b) = (tiered(&server, "bus"), tiered(&server, "bus"));
    let heap = "k".repeat(30);
    let past_the_stack = "é:".repeat(30);
    let reserved = r"a:b#c\d,e[f]{g}(h)=i~j";
    for (cache, namespace) in [
        ("users", None),
        ("or,ders{eu}(x)=~", None),
        ("users", Some(r"t:7#\n")),
        ("or,ders{eu}(x)=~", Some(r"t:7#\n[1]")),
    ] {
        let handle = |m: &CacheManager| {
            let cache = m.cache(cache).unwrap();
            match namespace {
                Some(ns) => cache.namespace(ns),
                None => cache,
            }
        };
        let (on_a, on_b) = (handle(&a), handle(&b));
        println!("cache {cache:?}, namespace {namespace:?}");
        a_change_on_a_reaches_b(&on_a, &on_b, &7u64).await;
        a_change_on_a_reaches_b(&on_a, &on_b, reserved).await;
        a_change_on_a_reaches_b(&on_a, &on_b, &("x:y", 7u32)).await;
        a_change_on_a_reaches_b(&on_a, &on_b, heap.as_str()).await;
        a_change_on_a_reaches_b(&on_a, &on_b, past_the_stack.as_str()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_with_their_own_prefix_never_see_each_other() {
    let server = RedisServer::start();
    let (users_store, posts_store) = (l2_only(&server, "users"), l2_only(&server, "posts"));
    let (u, p) = (
        users_store.cache("items").unwrap(),
        posts_store.cache("items").unwrap(),
    );
    u.set(&1u64, &"user item".to_string()).await.unwrap();
    p.set(&1u64, &"post item".to_string()).await.unwrap();
    assert_eq!(
        u.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("user item")
    );
    assert_eq!(
        p.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("post item")
    );
    users_store.store("shared").unwrap().clear().await.unwrap();
    assert!(u.missing(&1u64).await.unwrap());
    assert_eq!(
        p.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("post item")
    );
    assert_eq!(redis_cli(server.port(), &["EXISTS", "posts:items:1"]), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_key_carries_a_ttl() {
    let server = RedisServer::start();
    let manager = l2_only(&server, "ttl");
    let cache = manager.cache("c").unwrap();
    cache.set(&1u64, &1u8).await.unwrap();
    cache.set_forever(&2u64, &2u8).await.unwrap();
    cache
        .set_with(&3u64, &3u8, Duration::from_secs(5))
        .await
        .unwrap();
    for key in ["ttl:c:1", "ttl:c:2", "ttl:c:3"] {
        let pttl: i64 = redis_cli(server.port(), &["PTTL", key]).parse().unwrap();
        assert!(pttl > 0, "{key} has PTTL {pttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_under_a_key_are_a_miss_that_gets_overwritten() {
    let server = RedisServer::start();
    let manager = l2_only(&server, "bad");
    let cache = manager.cache("c").unwrap();
    for garbage in ["not an envelope", "\u{1}\u{2}\u{3}", ""] {
        redis_cli(server.port(), &["SET", "bad:c:1", garbage]);
        assert_eq!(
            cache.get::<String>(&1u64).await.unwrap(),
            None,
            "{garbage:?}"
        );
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
    // Two kinds of garbage and one value of another type are faults; an empty value reads as
    // a plain miss (the tier reads with GETRANGE, and no envelope is empty).
    assert_eq!(cache.stats().errors, 3);
}

static LOOKUPS: AtomicU64 = AtomicU64::new(0);

#[cacheable("profiles")]
async fn profile(id: u64) -> Result<String, String> {
    LOOKUPS.fetch_add(1, SeqCst);
    Ok(format!("profile {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_never_fails_the_function_and_is_used_again_once_back() {
    let server = RedisServer::start();
    let a = tiered(&server, "faults");
    let b = tiered(&server, "faults");
    server.kill();
    let (mut calls, mut failures) = (0, 0);
    with_manager(a.clone(), async {
        for id in 0..50u64 {
            calls += 1;
            if profile(id).await != Ok(format!("profile {id}")) {
                failures += 1;
            }
        }
    })
    .await;
    let errors = a.cache("profiles").unwrap().stats().errors;
    println!("redis down: {calls} calls, {failures} failures returned to callers, {errors} L2 faults counted");
    assert_eq!(failures, 0);
    assert!(errors > 0, "faults are counted");

    server.restart();
    let back = std::time::Instant::now();
    let profiles_a = a.cache("profiles").unwrap();
    let profiles_b = b.cache("profiles").unwrap();
    eventually("L2 is used again after the restart", async || {
        profiles_a
            .set(&999u64, &"via redis".to_string())
            .await
            .unwrap();
        profiles_b.get::<String>(&999u64).await.unwrap().as_deref() == Some("via redis")
    })
    .await;
    println!("L2 used again {:?} after the restart", back.elapsed());
}

static SYNC_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("squares")]
fn square(n: u64) -> u64 {
    SYNC_RUNS.fetch_add(1, SeqCst);
    n * n
}

#[test]
fn plain_functions_work_with_redis_outside_and_inside_a_runtime() {
    let server = RedisServer::start();
    let manager = tiered(&server, "sync");
    with_manager_sync(manager.clone(), || {
        assert_eq!(square(3), 9);
        assert_eq!(square(3), 9);
    });
    assert_eq!(SYNC_RUNS.load(SeqCst), 1);
    // A second instance finds the value in Redis, from inside a multi-thread runtime.
    let other = tiered(&server, "sync");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::spawn(async move { with_manager_sync(other, || square(3)) })
            .await
            .unwrap();
    });
    assert_eq!(SYNC_RUNS.load(SeqCst), 1, "answered by L2");
}

static SLOW_LOOKUPS: AtomicU64 = AtomicU64::new(0);

#[cacheable("slow_redis")]
async fn tariff(id: u64) -> u64 {
    SLOW_LOOKUPS.fetch_add(1, SeqCst);
    id + 7
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_at_most_the_operation_timeout() {
    let server = RedisServer::start();
    let manager = tiered(&server, "paused");
    server.pause();
    let started = std::time::Instant::now();
    with_manager(manager.clone(), async {
        for id in 0..5u64 {
            assert_eq!(tariff(id).await, id + 7);
        }
    })
    .await;
    println!(
        "5 calls against a paused Redis took {:?}",
        started.elapsed()
    );
    server.resume();
    assert!(manager.cache("slow_redis").unwrap().stats().errors > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_works_through_l2_for_an_instance_with_an_empty_l1() {
    let server = RedisServer::start();
    let url = server.url();
    let config = format!(
        r#"
        prefix = "grace"
        ttl = "50ms"
        grace = "1h"
        [stores.tiered]
        l1 = {{ driver = "memory", max_entries = 100 }}
        l2 = {{ driver = "redis", url = "{url}" }}
        "#
    );
    grace::a_fresh_instance_is_served_the_stale_value_from_l2(
        || CacheManager::from_toml_str(&config).unwrap(),
        "Redis",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_bus_resubscribes_the_l1_is_cleared() {
    let server = RedisServer::start();
    let a = tiered(&server, "resub");
    let users = a.cache("users").unwrap();
    users.set(&1u64, &"before".to_string()).await.unwrap();
    assert_eq!(
        users.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("before")
    );
    // The restarted Redis is empty and any message sent meanwhile is lost: the L1 copy (an
    // hour of TTL left) can no longer be trusted, and must go once the bus is back.
    server.kill();
    server.restart();
    let delay = eventually("the L1 is cleared after the bus resubscribed", async || {
        users.get::<String>(&1u64).await.unwrap().is_none()
    })
    .await;
    println!("L1 cleared {delay:?} after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_namespace_in_redis_touches_exactly_its_keys_whatever_its_name() {
    let server = RedisServer::start();
    let manager = l2_only(&server, "ns");
    let users = manager.cache("users").unwrap();
    let (tenant, star, other) = (
        users.namespace("org:42"),
        users.namespace("*"),
        users.namespace("org"),
    );
    for cache in [&users, &tenant, &star, &other] {
        cache.set(&1u64, &1u8).await.unwrap();
    }
    tenant.clear().await.unwrap();
    assert!(
        tenant.missing(&1u64).await.unwrap(),
        "a name with an escaped `:` is cleared in Redis"
    );
    star.clear().await.unwrap();
    assert!(star.missing(&1u64).await.unwrap());
    assert!(
        other.has(&1u64).await.unwrap(),
        "`*` is a name, not a pattern: other namespaces stay"
    );
    assert!(users.has(&1u64).await.unwrap());
}

/// Calls of `command` the server has answered so far (INFO commandstats).
fn calls(server: &RedisServer, command: &str) -> u64 {
    redis_cli(server.port(), &["INFO", "commandstats"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_miss_reads_redis_once_and_a_stampede_still_runs_the_function_once() {
    let server = RedisServer::start();
    let url = server.url();
    for (prefix, l1) in [
        ("l2only", ""),
        (
            "tiered",
            "l1 = { driver = \"memory\", max_entries = 1000 }\n",
        ),
    ] {
        let manager = CacheManager::from_toml_str(&format!(
            "prefix = \"{prefix}\"\nttl = \"1h\"\n[stores.s]\n{l1}l2 = {{ driver = \"redis\", url = \"{url}\" }}\n"
        ))
        .unwrap();
        let users = manager.cache("users").unwrap();

        // Reads are `GETRANGE key 0 max_value_size`.
        let reads = calls(&server, "getrange");
        for k in 1..=10u64 {
            assert_eq!(users.get_or_set(&k, || async move { k }).await.unwrap(), k);
        }
        let cold = calls(&server, "getrange") - reads;
        println!("{prefix}: {cold} L2 reads for 10 cold misses");
        assert_eq!(cold, 10, "one read per uncontended cold miss ({prefix})");

        // Contended: the waiters must still look again after the gate, and find the value.
        let reads = calls(&server, "getrange");
        let ran = Arc::new(AtomicU64::new(0));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (users, ran) = (users.clone(), ran.clone());
                tokio::spawn(async move {
                    users
                        .get_or_set(&99u64, || async move {
                            ran.fetch_add(1, SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            7u64
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 7);
        }
        println!(
            "{prefix}: {} L2 reads for a stampede of 8",
            calls(&server, "getrange") - reads
        );
        assert_eq!(ran.load(SeqCst), 1, "the function ran once ({prefix})");
    }
}

/// Five callers start together (a barrier) on one key, each with a factory that takes long
/// enough for all of them to reach the key's gate; returns the L2 reads they made in total
/// and how often the factory ran.
async fn five_concurrent_get_or_set(
    server: &RedisServer,
    users: &cachet::Cache,
    key: u64,
) -> (u64, u64) {
    let reads = calls(server, "getrange");
    let ran = Arc::new(AtomicU64::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(5));
    let callers: Vec<_> = (0..5)
        .map(|_| {
            let (users, ran, start) = (users.clone(), ran.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                users
                    .get_or_set(&key, || async move {
                        ran.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        key * 10
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), key * 10);
    }
    (calls(server, "getrange") - reads, ran.load(SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_concurrent_callers_of_a_cold_key_read_redis_once_in_total() {
    let server = RedisServer::start();
    let url = server.url();
    for (prefix, l1) in [
        ("l2only", ""),
        (
            "tiered",
            "l1 = { driver = \"memory\", max_entries = 1000 }\n",
        ),
    ] {
        let manager = CacheManager::from_toml_str(&format!(
            "prefix = \"{prefix}\"\nttl = \"1h\"\n[stores.s]\n{l1}l2 = {{ driver = \"redis\", url = \"{url}\" }}\n"
        ))
        .unwrap();
        let users = manager.cache("users").unwrap();
        // Bentocache's stampede case: the key is nowhere; only the leader reads L2, the
        // others take the value it hands over.
        let (reads, ran) = five_concurrent_get_or_set(&server, &users, 1).await;
        assert_eq!(ran, 1, "the factory ran once ({prefix})");
        assert_eq!(
            reads, 1,
            "5 concurrent callers of a cold key read L2 once ({prefix})"
        );
    }

    // The value is in L2 (another instance wrote it) but not in this instance's L1: the
    // leader's one read serves every caller.
    let writer = CacheManager::from_toml_str(&format!(
        "prefix = \"warm\"\nttl = \"1h\"\n[stores.s]\nl2 = {{ driver = \"redis\", url = \"{url}\" }}\n"
    ))
    .unwrap();
    writer
        .cache("users")
        .unwrap()
        .set(&2u64, &20u64)
        .await
        .unwrap();
    let reader = CacheManager::from_toml_str(&format!(
        "prefix = \"warm\"\nttl = \"1h\"\n[stores.s]\nl1 = {{ driver = \"memory\", max_entries = 1000 }}\nl2 = {{ driver = \"redis\", url = \"{url}\" }}\n"
    ))
    .unwrap();
    let users = reader.cache("users").unwrap();
    let (reads, ran) = five_concurrent_get_or_set(&server, &users, 2).await;
    assert_eq!(ran, 0, "the value came from L2");
    assert_eq!(reads, 1, "5 concurrent callers read the L2 value once");
}

// ----- Issue 14: what a cold miss does before it reads L2 -----

static COLD_ENCODINGS: AtomicU64 = AtomicU64::new(0);

#[cacheable("cold")]
async fn cold_profile(key: CountedKey) -> u64 {
    key.0 * 10
}

/// Issue 14's target for a miss on a cold key: no more than one key encoding and one L1
/// read before L2. The store's L1 counts its reads, the key its encodings, and the L2 read
/// (real Redis behind the chaos tier) is held at a latch while the counts are taken; an
/// annotated function, then `get_or_set`. Each miss then reads L2 once (the function runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_miss_encodes_its_key_once_and_reads_l1_once_before_l2() {
    use cache_backends::redis::{RedisOptions, RedisTier};
    use cachet::testing::{Fault, FaultRule, FaultyTier, Latch, Operation};
    let server = RedisServer::start();
    let l1 = CountingL1::new();
    let redis = RedisTier::new(&RedisOptions::new(server.url())).unwrap();
    let l2 = FaultyTier::new(Arc::new(redis));
    let manager = CacheManager::builder()
        .store(
            "counted",
            cachet::StoreBuilder::new().l1(l1.clone()).l2(l2.clone()),
        )
        .build()
        .unwrap();
    let cache = manager.cache("cold").unwrap();
    for (id, annotated) in [(1u64, true), (2, false)] {
        let held = Latch::new();
        l2.inject(FaultRule::on(Operation::Get, Fault::HoldRequest(held.clone())).times(1));
        let (encodings, reads) = (COLD_ENCODINGS.load(SeqCst), l1.reads());
        let key = CountedKey(id, &COLD_ENCODINGS);
        let call = if annotated {
            tokio::spawn(with_manager(manager.clone(), cold_profile(key)))
        } else {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_set(&key, || async move { key.0 * 10 })
                    .await
                    .unwrap()
            })
        };
        held.reached().await;
        assert_eq!(
            (COLD_ENCODINGS.load(SeqCst) - encodings, l1.reads() - reads),
            (1, 1),
            "key encodings and L1 reads before L2 (annotated: {annotated})"
        );
        held.release();
        assert_eq!(call.await.unwrap(), id * 10);
        assert_eq!(
            l2.completed(Operation::Get),
            id,
            "one L2 read per cold miss"
        );
    }
}
