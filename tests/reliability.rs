//! Faults found under chaos (issue 16), each pinned by a deterministic test: two instances
//! of a service on one real Redis, their L2 wrapped in the chaos kit's [`FaultyTier`] so a
//! test can fail, stall or drop exactly the operation it needs to.

#![cfg(feature = "redis")]

mod support;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cache_backends::redis::{RedisBus, RedisOptions, RedisTier};
use cachet::memory::{MemoryOptions, MemoryTier};
use cachet::testing::{Fault, FaultRule, FaultyTier, Latch, ManualClock, Operation};
use cachet::{Cache, CacheManager, StoreBuilder};
use support::redis_server::RedisServer;
use support::{eventually, redis_cli};

/// The Redis timeouts of a test where no server fails: long enough that no call times out
/// on a loaded machine, so a slow answer is never taken for a fault.
const PATIENT: Duration = Duration::from_secs(30);

/// One instance of a service: its manager, its chaos-wrapped L2 and its bus.
struct Instance {
    manager: CacheManager,
    l2: Arc<FaultyTier>,
    bus: Arc<RedisBus>,
}

impl Instance {
    /// L1 memory + L2 Redis (`l2_url`) + a Redis bus (`bus_url`), under `prefix`.
    fn new(l2_url: &str, bus_url: &str, prefix: &str) -> Self {
        Self::with_clock(l2_url, bus_url, prefix, None)
    }

    /// [`Instance::new`] for a test where no server fails: its calls wait as long as a
    /// loaded machine needs (a 250 ms timeout missed under load fails the call, which such
    /// a test would take for the fault it checks).
    fn patient(l2_url: &str, bus_url: &str, prefix: &str) -> Self {
        Self::build(l2_url, bus_url, prefix, None, PATIENT)
    }

    /// [`Instance::new`], its time read from `clock` when given.
    fn with_clock(l2_url: &str, bus_url: &str, prefix: &str, clock: Option<ManualClock>) -> Self {
        Self::build(l2_url, bus_url, prefix, clock, Duration::from_millis(250))
    }

    /// An instance whose Redis calls and connections time out after `timeout`.
    fn build(
        l2_url: &str,
        bus_url: &str,
        prefix: &str,
        clock: Option<ManualClock>,
        timeout: Duration,
    ) -> Self {
        let options = |url: &str| {
            RedisOptions::new(url)
                .operation_timeout(timeout)
                .connect_timeout(timeout)
        };
        let l2 = FaultyTier::new(Arc::new(RedisTier::new(&options(l2_url)).unwrap()));
        let bus = Arc::new(RedisBus::new(&options(bus_url), format!("{prefix}:__bus")).unwrap());
        let builder = match clock {
            Some(clock) => CacheManager::builder().manual_clock(clock),
            None => CacheManager::builder(),
        };
        let manager = builder
            .prefix(prefix)
            .ttl(Duration::from_secs(3600))
            .store(
                "tiered",
                StoreBuilder::new()
                    .l1(MemoryTier::new(MemoryOptions::max_entries(10_000)))
                    .l2(l2.clone())
                    .bus(bus.clone())
                    .l2_circuit_breaker(Duration::from_millis(300)),
            )
            .validate_declarations(false)
            .build()
            .unwrap();
        Self { manager, l2, bus }
    }

    fn cache(&self, name: &str) -> Cache {
        self.manager.cache(name).unwrap()
    }

    async fn subscribed(&self) {
        eventually("the bus is subscribed", async || self.bus.is_subscribed()).await;
    }
}

/// Waits until an operation reached `latch`, failing after [`PATIENT`]: an operation that
/// never reaches the L2 fails the test instead of hanging it.
async fn reached(latch: &Latch, what: &str) {
    if tokio::time::timeout(PATIENT, latch.reached())
        .await
        .is_err()
    {
        panic!("{what} never reached the L2");
    }
}

async fn get(cache: &Cache, key: u64) -> Option<u64> {
    cache.get::<u64>(&key).await.unwrap()
}

/// Fault 8: a delete whose L2 call fails still reaches the other instances' L1, for
/// `delete`, `delete_many`, `clear` and tag deletes (Bentocache: "deletes other local
/// caches even if remote fails"). L2 and bus on separate servers, so L2 can die alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_reach_the_other_instances_when_l2_is_down() {
    let (l2, bus) = (RedisServer::start(), RedisServer::start());
    let a = Instance::new(&l2.url(), &bus.url(), "f8");
    let b = Instance::new(&l2.url(), &bus.url(), "f8");
    a.subscribed().await;
    b.subscribed().await;
    let (users_a, users_b) = (a.cache("users"), b.cache("users"));
    let (posts_a, posts_b) = (a.cache("posts"), b.cache("posts"));
    let (offers_a, offers_b) = (a.cache("offers"), b.cache("offers"));
    for key in 1..=4u64 {
        users_a.set(&key, &(key * 10)).await.unwrap();
    }
    offers_a.tagged(["vip"]).set(&5u64, &50u64).await.unwrap();
    posts_a.set(&1u64, &100u64).await.unwrap();
    assert_eq!(get(&users_a, 1).await, Some(10), "a holds them in its L1");

    l2.kill();
    users_b.delete(&1u64).await.unwrap();
    users_b.delete_many(&[2u64, 3]).await.unwrap();
    // b never read the tagged entry: only the shared tier (down) knows it is tagged.
    let _ = offers_b.delete_by_tag("vip").await;
    let _ = posts_b.clear().await;

    for (what, cache, key) in [
        ("delete", &users_a, 1),
        ("delete_many", &users_a, 2),
        ("delete_many", &users_a, 3),
        ("delete_by_tag", &offers_a, 5),
        ("clear", &posts_a, 1),
    ] {
        eventually(
            &format!("a drops the entry b removed with {what}"),
            async || get(cache, key).await.is_none(),
        )
        .await;
    }
    assert_eq!(get(&users_a, 4).await, Some(40), "what b left alone stays");
}

static REPORT_RUNS: AtomicU64 = AtomicU64::new(0);

/// Fault 7: a waiter takes the leader's value instead of reading the cache again, so the
/// function runs once even when the value never reached a tier (here: L2 lost the write).
/// Only the gate's holder reads L2; the others wait at the gate without reading it. A
/// current-thread runtime makes it deterministic: every caller is polled up to the gate
/// before the leader's L2 read completes.
#[tokio::test(flavor = "current_thread")]
async fn waiters_take_the_leaders_value_even_when_no_tier_kept_it() {
    let server = RedisServer::start();
    let url = server.url();
    let options = RedisOptions::new(&url)
        .operation_timeout(PATIENT)
        .connect_timeout(PATIENT);
    let l2 = FaultyTier::new(Arc::new(RedisTier::new(&options).unwrap()));
    let manager = CacheManager::builder()
        .prefix("f7")
        .store("l2", StoreBuilder::new().l2(l2.clone()))
        .validate_declarations(false)
        .build()
        .unwrap();
    let reports = manager.cache("reports").unwrap();
    // Every write is lost: nothing a waiter could read back.
    l2.inject(FaultRule::on(Operation::Set, Fault::Drop));
    let go = Arc::new(tokio::sync::Notify::new());
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let (reports, go) = (reports.clone(), go.clone());
            tokio::spawn(async move {
                reports
                    .get_or_set(&7u64, move || async move {
                        if REPORT_RUNS.fetch_add(1, SeqCst) == 0 {
                            go.notified().await;
                        }
                        7u64
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    // The leader looked in L2 (and missed) and runs the function; the others wait at the
    // gate, and none of them read L2.
    eventually("the leader runs the function", async || {
        REPORT_RUNS.load(SeqCst) == 1
    })
    .await;
    assert_eq!(l2.completed(Operation::Get), 1, "only the leader read L2");
    go.notify_one();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 7);
    }
    assert_eq!(
        REPORT_RUNS.load(SeqCst),
        1,
        "the waiters took the leader's value"
    );
    assert_eq!(l2.completed(Operation::Get), 1, "nor read L2 for it");
}

/// Fault 2: a write's L1 put-back never overwrites a delete that completed while the
/// write's L2 acknowledgement was in flight (the repro, on one instance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_a_slow_write_acknowledgement_wins() {
    let server = RedisServer::start();
    let a = Instance::new(&server.url(), &server.url(), "f2a");
    let users = a.cache("users");
    let ack = Latch::new();
    a.l2.inject(
        FaultRule::on(Operation::Set, Fault::HoldReply(ack.clone()))
            .key("f2a:users:1")
            .times(1),
    );
    let write = {
        let users = users.clone();
        tokio::spawn(async move { users.set(&1u64, &111u64).await })
    };
    reached(&ack, "the write").await; // Redis holds 111; its acknowledgement is held
    users.delete(&1u64).await.unwrap(); // Redis holds nothing
    ack.release();
    write.await.unwrap().unwrap();
    assert_eq!(redis_cli(server.port(), &["EXISTS", "f2a:users:1"]), "0");
    assert_eq!(get(&users, 1).await, None, "Redis holds nothing");
}

/// Fault 2, across instances: the other instance's delete is announced before this
/// instance's put-back, so the bus cannot repair a put-back that ignores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_delete_during_a_slow_write_acknowledgement_wins() {
    let server = RedisServer::start();
    let a = Instance::new(&server.url(), &server.url(), "f2b");
    let b = Instance::new(&server.url(), &server.url(), "f2b");
    a.subscribed().await;
    b.subscribed().await;
    let (users_a, users_b) = (a.cache("users"), b.cache("users"));
    let ack = Latch::new();
    a.l2.inject(
        FaultRule::on(Operation::Set, Fault::HoldReply(ack.clone()))
            .key("f2b:users:1")
            .times(1),
    );
    let write = {
        let users = users_a.clone();
        tokio::spawn(async move { users.set(&1u64, &111u64).await })
    };
    reached(&ack, "the write").await;
    users_b.delete(&1u64).await.unwrap();
    eventually("b's delete reached a", async || {
        get(&users_a, 1).await.is_none()
    })
    .await;
    ack.release();
    write.await.unwrap().unwrap();
    assert_eq!(get(&users_a, 1).await, None, "Redis holds nothing");
    assert_eq!(get(&users_b, 1).await, None);
}

/// The delete path's second L1 removal (after L2 answered): a lookup that read L2 while
/// the delete was on its way backfills the old value, which must not outlive the delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_backfilling_during_a_slow_delete_does_not_outlive_it() {
    let server = RedisServer::start();
    let a = Instance::patient(&server.url(), &server.url(), "also");
    let users = a.cache("users");
    users.set(&1u64, &111u64).await.unwrap();
    let sent = Latch::new();
    a.l2.inject(
        FaultRule::on(Operation::Delete, Fault::HoldRequest(sent.clone()))
            .key("also:users:1")
            .times(1),
    );
    let delete = {
        let users = users.clone();
        tokio::spawn(async move { users.delete(&1u64).await })
    };
    reached(&sent, "the delete").await; // out of L1, still in Redis
    assert_eq!(get(&users, 1).await, Some(111), "read from L2, backfilled");
    sent.release();
    delete.await.unwrap().unwrap();
    assert_eq!(get(&users, 1).await, None, "Redis holds nothing");
}

/// A small seeded generator for the race workloads, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// How long each round of the race test runs its load: `CACHET_RACE_LOAD_MS`, 500 ms by
/// default (the 2 s per round: `CACHET_RACE_LOAD_MS=2000`).
fn race_load() -> Duration {
    let ms = std::env::var("CACHET_RACE_LOAD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    Duration::from_millis(ms)
}

/// Fault 2, under load: two instances put, evict and read a few hot keys while their L2
/// acknowledgements and reads are randomly slowed (so Redis applies racing operations in
/// any order); once the load stops, both instances agree with Redis on every key, in every
/// one of 20 rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_puts_and_evictions_agree_with_redis_once_settled() {
    const KEYS: u64 = 6;
    let server = RedisServer::start();
    let url = server.url();
    let a = Instance::new(&url, &url, "race");
    let b = Instance::new(&url, &url, "race");
    // Reads Redis only: the truth the instances must come back to.
    let redis = CacheManager::builder()
        .prefix("race")
        .store(
            "l2",
            StoreBuilder::new().l2(Arc::new(RedisTier::new(&RedisOptions::new(&url)).unwrap())),
        )
        .validate_declarations(false)
        .build()
        .unwrap();
    a.subscribed().await;
    b.subscribed().await;
    for instance in [&a, &b] {
        for (operation, delay) in [
            (Operation::Set, 3),
            (Operation::Delete, 3),
            (Operation::Get, 2),
        ] {
            instance.l2.inject(
                FaultRule::on(operation, Fault::DelayReply(Duration::from_millis(delay)))
                    .probability(0.3),
            );
        }
    }
    let load = race_load();
    let next_value = Arc::new(AtomicU64::new(1));
    for round in 0..20u64 {
        let name = format!("users{round}");
        let caches = [a.cache(&name), b.cache(&name)];
        let stop = tokio::time::Instant::now() + load;
        let workers: Vec<_> = (0..4u64)
            .map(|worker| {
                let cache = caches[(worker % 2) as usize].clone();
                let next_value = next_value.clone();
                tokio::spawn(async move {
                    let mut rng = Rng(round * 1000 + worker + 1);
                    let mut ops = 0u64;
                    while tokio::time::Instant::now() < stop {
                        let key = rng.below(KEYS);
                        match rng.below(10) {
                            0..=3 => {
                                let value = next_value.fetch_add(1, SeqCst);
                                cache.set(&key, &value).await.unwrap();
                            }
                            4..=5 => cache.delete(&key).await.unwrap(),
                            _ => drop(cache.get::<u64>(&key).await.unwrap()),
                        }
                        ops += 1;
                    }
                    ops
                })
            })
            .collect();
        let mut ops = 0;
        for worker in workers {
            ops += worker.await.unwrap();
        }
        let truth = redis.cache(&name).unwrap();
        for key in 0..KEYS {
            let what = format!("round {round}: both instances agree with Redis on key {key}");
            eventually(&what, async || {
                let in_redis = get(&truth, key).await;
                get(&caches[0], key).await == in_redis && get(&caches[1], key).await == in_redis
            })
            .await;
        }
        println!("round {round}: {ops} operations");
    }
}

/// Fault 3: a write skipped by an open breaker (here: failed, which opens it) reaches the
/// other instances once the L2 is back: the replay deletes the key from the L2 and
/// announces it, where before the other instance served the old value for its whole TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_l2_missed_reach_the_other_instances_once_it_is_back() {
    let server = RedisServer::start();
    let url = server.url();
    let clock = ManualClock::new();
    let a = Instance::with_clock(&url, &url, "f3", Some(clock.clone()));
    let b = Instance::new(&url, &url, "f3");
    a.subscribed().await;
    b.subscribed().await;
    let (users_a, users_b) = (a.cache("users"), b.cache("users"));
    users_a.set(&1u64, &10u64).await.unwrap();
    assert_eq!(get(&users_b, 1).await, Some(10), "b holds it in its L1");

    a.l2.inject(FaultRule::any(Fault::Fail)); // a loses Redis: its breaker opens
    users_a.set(&1u64, &11u64).await.unwrap();
    users_a.set(&1u64, &12u64).await.unwrap(); // skipped by the open breaker
    a.l2.heal();
    assert_eq!(get(&users_b, 1).await, Some(10), "nothing told b yet");
    assert_eq!(redis_cli(server.port(), &["EXISTS", "f3:users:1"]), "1");

    clock.advance(Duration::from_millis(300)); // a's breaker lets calls through again
    eventually("b drops the value a's skipped write replaced", async || {
        get(&users_b, 1).await != Some(10)
    })
    .await;
    assert_eq!(redis_cli(server.port(), &["EXISTS", "f3:users:1"]), "0");
    assert_eq!(
        get(&users_a, 1).await,
        None,
        "a drops its own copy too, agreeing with Redis: the next read loads afresh"
    );
}

/// Fault 3, overflow: more skipped changes than the queue holds collapse into their cache,
/// cleared in the L2 and on the other instances once the L2 is back; other caches stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_missed_writes_clear_their_cache_everywhere_once_l2_is_back() {
    let server = RedisServer::start();
    let url = server.url();
    let clock = ManualClock::new();
    let a = Instance::with_clock(&url, &url, "f3o", Some(clock.clone()));
    let b = Instance::new(&url, &url, "f3o");
    a.subscribed().await;
    b.subscribed().await;
    let (users_a, users_b) = (a.cache("users"), b.cache("users"));
    users_a.set(&1u64, &10u64).await.unwrap();
    b.cache("posts").set(&1u64, &100u64).await.unwrap();
    assert_eq!(get(&users_b, 1).await, Some(10));

    a.l2.inject(FaultRule::any(Fault::Fail));
    for key in 1..=10_001u64 {
        users_a.set(&key, &(key + 1)).await.unwrap();
    }
    a.l2.heal();
    clock.advance(Duration::from_millis(300));
    eventually("b drops a's cache after the overflow", async || {
        get(&users_b, 1).await.is_none()
    })
    .await;
    assert_eq!(redis_cli(server.port(), &["EXISTS", "f3o:users:1"]), "0");
    assert_eq!(
        get(&b.cache("posts"), 1).await,
        Some(100),
        "other caches stay"
    );
}

/// Fault 3, tags: a delete by tag the L2 could not even list (down) drops the cache from
/// every L1 at once, and is replayed once the L2 is back: the tagged entries are deleted
/// there and every instance is told, including one that read an entry back from the L2
/// meanwhile (only the L2 knew which entries carried the tag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_by_tag_the_l2_missed_reaches_it_and_the_other_instances_once_it_is_back() {
    let server = RedisServer::start();
    let url = server.url();
    let clock = ManualClock::new();
    let a = Instance::with_clock(&url, &url, "f3t", Some(clock.clone()));
    let b = Instance::new(&url, &url, "f3t");
    a.subscribed().await;
    b.subscribed().await;
    let (offers_a, offers_b) = (a.cache("offers"), b.cache("offers"));
    offers_b.tagged(["vip"]).set(&5u64, &50u64).await.unwrap();
    offers_b.tagged(["new"]).set(&6u64, &60u64).await.unwrap();

    a.l2.inject(FaultRule::any(Fault::Fail)); // a loses Redis
    assert!(offers_a.delete_by_tag("vip").await.is_err());
    a.l2.heal();
    // b drops its copies (the whole cache) and reads the tagged entry back from Redis,
    // which still holds it: an L2 hit, then L1 hits on the copy it backfilled.
    eventually(
        "b holds the tagged entry again, read back from Redis",
        async || {
            let before = offers_b.stats();
            let found = get(&offers_b, 5).await;
            let after = offers_b.stats();
            found == Some(50) && before.l2_hits > 0 && after.l1_hits > before.l1_hits
        },
    )
    .await;

    clock.advance(Duration::from_millis(300)); // a's breaker lets calls through again
    eventually(
        "the replay deleted the tagged entry from Redis",
        async || redis_cli(server.port(), &["EXISTS", "f3t:offers:5"]) == "0",
    )
    .await;
    eventually("b drops the copy it read back", async || {
        get(&offers_b, 5).await.is_none()
    })
    .await;
    assert_eq!(get(&offers_b, 6).await, Some(60), "other tags stay");
    let store = a.manager.store("tiered").unwrap();
    eventually("a's queue is empty", async || store.pending_changes() == 0).await;
}

/// Fault 3, a refusal: a held-back change the L2 refuses outright (it is up, but rejects the
/// command: trying again is refused again) is dropped, counted and logged, and the changes
/// queued behind it still reach the L2 and the other instances; before, the replay retried
/// the refused change forever and every later change waited behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_l2_refuses_does_not_hold_back_the_ones_behind_it() {
    let server = RedisServer::start();
    let url = server.url();
    let clock = ManualClock::new();
    let a = Instance::with_clock(&url, &url, "f3r", Some(clock.clone()));
    let b = Instance::new(&url, &url, "f3r");
    a.subscribed().await;
    b.subscribed().await;
    let (users_a, users_b) = (a.cache("users"), b.cache("users"));
    users_a.set(&1u64, &10u64).await.unwrap();
    users_a.set(&2u64, &20u64).await.unwrap();
    assert_eq!(get(&users_b, 1).await, Some(10), "b holds them in its L1");
    assert_eq!(get(&users_b, 2).await, Some(20));

    a.l2.inject(FaultRule::any(Fault::Fail)); // a loses Redis
    users_a.set(&1u64, &11u64).await.unwrap();
    users_a.set(&2u64, &21u64).await.unwrap();
    let store = a.manager.store("tiered").unwrap();
    assert_eq!(store.pending_changes(), 2, "both writes are held back");
    a.l2.heal();
    // Redis is back, but refuses to delete key 1 (as an ACL might).
    a.l2.inject(FaultRule::on(Operation::Delete, Fault::Refuse).key("f3r:users:1"));

    clock.advance(Duration::from_millis(300)); // a's breaker lets calls through again
    eventually(
        "b drops the value of key 2, queued behind the refused key 1",
        async || get(&users_b, 2).await != Some(20),
    )
    .await;
    assert_eq!(redis_cli(server.port(), &["EXISTS", "f3r:users:2"]), "0");
    assert_eq!(
        redis_cli(server.port(), &["EXISTS", "f3r:users:1"]),
        "1",
        "Redis refused that delete"
    );
    eventually("the queue is empty", async || store.pending_changes() == 0).await;
    assert_eq!(store.dropped_changes(), 1, "the refused change was dropped");
}
