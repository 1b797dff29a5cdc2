//! A Redis restart does not make an instance bypass the restarted, healthy Redis for the
//! circuit breaker's window (issue 16, fault 4): the first operation after the restart
//! finds its connection dead, replaces it and retries once, so the breaker never opens and
//! the backing store is not called for values Redis holds.
#![cfg(feature = "redis")]

#[allow(dead_code)]
mod support;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use cachet::CacheManager;
use support::redis_server::RedisServer;

fn manager(server: &RedisServer, l1: bool) -> CacheManager {
    let url = server.url();
    let l1 = if l1 {
        "l1 = { driver = \"memory\", max_entries = 1000 }\nbus = { driver = \"redis\", url = \"URL\" }"
            .replace("URL", &url)
    } else {
        String::new()
    };
    // The default breaker window (5 s): long enough that a bypass would be seen.
    CacheManager::from_toml_str(&format!(
        "prefix = \"r\"\n[stores.shared]\n{l1}\nl2 = {{ driver = \"redis\", url = \"{url}\" }}\n"
    ))
    .unwrap()
}

async fn idle_instance_uses_the_restarted_redis(l1: bool) {
    let server = RedisServer::start();
    let idle = manager(&server, l1);
    let users = idle.cache("users").unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let load = |n: u64| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, SeqCst);
            n * 10
        }
    };

    // Connected and used once, then idle while Redis restarts.
    assert_eq!(users.get_or_set(&0u64, || load(0)).await.unwrap(), 0);
    assert_eq!(calls.load(SeqCst), 1);
    server.restart();

    // Another instance, connected after the restart, fills Redis.
    let other = manager(&server, false);
    let other_users = other.cache("users").unwrap();
    for n in 1..=20u64 {
        other_users.set(&n, &(n * 10)).await.unwrap();
    }

    // The idle instance's next operations reach the new Redis: every value is found there,
    // the backing store is never called.
    for n in 1..=20u64 {
        assert_eq!(users.get_or_set(&n, || load(n)).await.unwrap(), n * 10);
    }
    assert_eq!(
        calls.load(SeqCst),
        1,
        "the backing store was called for values Redis held (the breaker bypassed Redis)"
    );
    // And its writes reach it too.
    users.set(&100u64, &7u64).await.unwrap();
    assert_eq!(other_users.get::<u64>(&100u64).await.unwrap(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_l2_only_instance_uses_the_restarted_redis() {
    idle_instance_uses_the_restarted_redis(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tiered_instance_uses_the_restarted_redis() {
    idle_instance_uses_the_restarted_redis(true).await;
}

/// An instance of L1 + L2 on `l2` + a bus on `bus`, with a short breaker window.
fn tiered(l2: &RedisServer, bus: &RedisServer) -> CacheManager {
    CacheManager::from_toml_str(&format!(
        "prefix = \"f3\"\nttl = \"1h\"\n[stores.shared]\n\
         l1 = {{ driver = \"memory\", max_entries = 1000 }}\n\
         l2 = {{ driver = \"redis\", url = \"{}\", operation_timeout = \"250ms\", connect_timeout = \"250ms\" }}\n\
         bus = {{ driver = \"redis\", url = \"{}\" }}\n\
         l2_circuit_breaker = \"300ms\"\n",
        l2.url(),
        bus.url()
    ))
    .unwrap()
}

/// Fault 3 across a real restart: writes and deletes made while Redis is down reach Redis
/// (deleted there, so the old values it kept through the restart are gone) and the other
/// instance (which drops its copy) once Redis is back. Redis keeps its data across the
/// restart (append-only file), as a production Redis does, so only the replay can remove
/// the old values; the bus runs on a server of its own that stays up, so only the
/// replay's announcement can reach the other instance's copy of the written key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_redis_is_down_reach_it_and_the_other_instance_once_it_is_back() {
    let l2 = RedisServer::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]);
    let bus = RedisServer::start();
    let (a, b) = (tiered(&l2, &bus), tiered(&l2, &bus));
    let (users_a, users_b) = (a.cache("users").unwrap(), b.cache("users").unwrap());
    let get = async |cache: &cachet::Cache, key: u64| cache.get::<u64>(&key).await.unwrap();
    // b writes them: its L1 holds them, and no message about them is on its way to b.
    for key in 1..=3u64 {
        users_b.set(&key, &(key * 10)).await.unwrap();
    }
    assert_eq!(get(&users_a, 1).await, Some(10));

    l2.kill();
    users_a.set(&1u64, &11u64).await.unwrap(); // never fails the caller
    users_a.delete(&2u64).await.unwrap();
    assert_eq!(
        get(&users_b, 1).await,
        Some(10),
        "nothing told b of the write yet"
    );
    l2.restart(); // same port, same data: it still holds 10 and 20
    assert_eq!(
        support::redis_cli(l2.port(), &["EXISTS", "f3:users:1"]),
        "1"
    );

    support::eventually(
        "the replay deleted the changed keys from Redis",
        async || support::redis_cli(l2.port(), &["EXISTS", "f3:users:1", "f3:users:2"]) == "0",
    )
    .await;
    support::eventually("b dropped its copies of the changed keys", async || {
        get(&users_b, 1).await.is_none() && get(&users_b, 2).await.is_none()
    })
    .await;
    for key in 1..=2u64 {
        assert_eq!(
            get(&users_a, key).await,
            None,
            "a agrees with Redis on {key}"
        );
    }
    assert_eq!(
        get(&users_a, 3).await,
        Some(30),
        "what nobody changed stays"
    );
    assert_eq!(get(&users_b, 3).await, Some(30));
    let store = a.store("shared").unwrap();
    support::eventually("a's queue is empty", async || store.pending_changes() == 0).await;
}
