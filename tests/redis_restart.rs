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
    assert_eq!(other_users.get::<u64, _>(&100u64).await.unwrap(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_l2_only_instance_uses_the_restarted_redis() {
    idle_instance_uses_the_restarted_redis(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tiered_instance_uses_the_restarted_redis() {
    idle_instance_uses_the_restarted_redis(true).await;
}
