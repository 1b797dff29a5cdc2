//! Two OS processes share a Redis: process A caches two entries in its L1; process B (this
//! test binary again, started as a child) updates one with `#[cache_put]` and evicts the
//! other with `#[cache_evict]`; A sees both changes through the bus. The observed delay is
//! printed.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{SystemTime, UNIX_EPOCH};

use cachet::testing::with_manager;
use cachet::{cache_evict, cache_put, cacheable, CacheManager};
use support::redis_server::RedisServer;
use support::{eventually, redis_cli};

const REDIS_URL_VAR: &str = "CACHET_TWO_PROCESS_REDIS";

static PRICE_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("prices")]
async fn price(id: u64) -> u64 {
    PRICE_RUNS.fetch_add(1, SeqCst);
    id * 100
}

#[cache_put("prices", key = id)]
async fn set_price(id: u64, price: u64) -> u64 {
    price
}

#[cache_evict("prices", key = id)]
async fn drop_price(id: u64) {}

fn manager(url: &str) -> CacheManager {
    CacheManager::from_toml_str(&format!(
        r#"
        prefix = "two"
        [stores.tiered]
        l1 = {{ driver = "memory", max_entries = 100 }}
        l2 = {{ driver = "redis", url = "{url}" }}
        bus = {{ driver = "redis", url = "{url}" }}
        "#
    ))
    .unwrap()
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_updates_and_evicts_what_this_one_holds_in_l1() {
    let server = RedisServer::start();
    let url = server.url();
    let a = manager(&url);
    with_manager(a.clone(), async {
        assert_eq!(price(1).await, 100);
        assert_eq!(price(2).await, 200);
        assert_eq!(price(1).await, 100);
        assert_eq!(PRICE_RUNS.load(SeqCst), 2);
        // B's messages reach A only once A's bus has subscribed to the store's channel.
        eventually("A's bus is subscribed", async || {
            redis_cli(server.port(), &["PUBSUB", "NUMSUB", "two:__bus"])
                .lines()
                .nth(1)
                == Some("1")
        })
        .await;

        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process_b_updates_and_evicts",
                "--ignored",
                "--nocapture",
            ])
            .env(REDIS_URL_VAR, &url)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success(),
            "process B failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&child.stderr)
        );
        let done_at: u128 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("B done at "))
            .and_then(|ms| ms.trim().parse().ok())
            .expect("process B reports when it finished");

        eventually("A sees B's put", async || price(1).await == 4242).await;
        let put_seen = unix_ms().saturating_sub(done_at);
        let runs_before = PRICE_RUNS.load(SeqCst);
        eventually("A sees B's evict", async || {
            price(2).await;
            PRICE_RUNS.load(SeqCst) > runs_before
        })
        .await;
        println!("two processes: A saw B's put and evict within {put_seen} ms of B finishing");
        assert_eq!(
            PRICE_RUNS.load(SeqCst),
            3,
            "price(1) came from B's put; only price(2) ran again"
        );
    })
    .await;
}

/// Process B: run only as the child of the test above (it is ignored otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by another_process_updates_and_evicts_what_this_one_holds_in_l1"]
async fn process_b_updates_and_evicts() {
    let url =
        std::env::var(REDIS_URL_VAR).expect("started by the two-process test, with the Redis URL");
    with_manager(manager(&url), async {
        assert_eq!(set_price(1, 4242).await, 4242);
        drop_price(2).await;
    })
    .await;
    println!("B done at {}", unix_ms());
}
