//! The runtime options FusionCache, Bentocache and Caffeine users reach for: `get` within
//! grace and `get_fresh`, a call's grace bounding what it serves, `expire`, `tti`, `jitter`,
//! `l1_ttl`, `wait_timeout`, `background_l2_writes`, and the per-call `force_fresh`,
//! `skip_l2_read`, `skip_l2_write` and `skip_bus`. Time is a manual clock where a TTL
//! matters; tiered stores run on a real `redis-server`.

mod support;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cache_backends::redis::RedisBus;
use cachet::testing::{Fault, FaultRule, FaultyTier, Latch, ManualClock, Operation};
use cachet::{Cache, CacheError, CacheManager, CacheOptions};
use support::chaos::{chaos_store, ChaosStore};
use support::redis_server::RedisServer;
use support::{eventually, redis_cli};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// How long a call may take before a test calls it stuck: far more than a loaded machine
/// needs, so only a call that waits for what never comes reaches it.
const PATIENT: Duration = Duration::from_secs(30);

/// One in-memory store on `clock`, fresh for a minute, kept ten more.
fn memory(clock: &ManualClock, options: CacheOptions) -> CacheManager {
    CacheManager::builder()
        .memory_store("memory")
        .manual_clock(clock.clone())
        .ttl(MINUTE)
        .grace(10 * MINUTE)
        .options(options)
        .validate_declarations(false)
        .build()
        .unwrap()
}

/// An instance of a service: L1 memory, L2 on `server` (through a [`FaultyTier`], which
/// counts operations), and a Redis bus unless `bus` is false.
struct Instance {
    manager: CacheManager,
    l2: Arc<FaultyTier>,
    bus: Option<Arc<RedisBus>>,
}

impl Instance {
    fn new(server: &RedisServer, prefix: &str, clock: &ManualClock, bus: bool) -> Self {
        let ChaosStore { store, l2, bus } = chaos_store(server, prefix, bus);
        let manager = CacheManager::builder()
            .manual_clock(clock.clone())
            .prefix(prefix)
            .ttl(MINUTE)
            .grace(10 * MINUTE)
            .store("tiered", store)
            .validate_declarations(false)
            .build()
            .unwrap();
        Self { manager, l2, bus }
    }

    fn cache(&self, name: &str) -> Cache {
        self.manager.cache(name).unwrap()
    }

    async fn subscribed(&self) {
        if let Some(bus) = &self.bus {
            eventually("the bus is subscribed", async || bus.is_subscribed()).await;
        }
    }

    /// Two instances of one service (`prefix`) on `server`, subscribed to the bus if `bus`.
    async fn pair(
        server: &RedisServer,
        prefix: &str,
        clock: &ManualClock,
        bus: bool,
    ) -> (Self, Self) {
        let a = Self::new(server, prefix, clock, bus);
        let b = Self::new(server, prefix, clock, bus);
        a.subscribed().await;
        b.subscribed().await;
        (a, b)
    }
}

/// How many times the server ran `command` (`INFO commandstats`).
fn command_calls(server: &RedisServer, command: &str) -> u64 {
    let stats = redis_cli(server.port(), &["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse::<u64>().unwrap())
}

/// A `reports` cache (with a 50 ms `wait_timeout`) whose key `r` a leader is loading, parked
/// until `release` is sent; the leader's task answers its value, 1.
struct ParkedLeader {
    reports: Cache,
    release: tokio::sync::oneshot::Sender<()>,
    leader: tokio::task::JoinHandle<u32>,
}

impl ParkedLeader {
    /// The leader loads with `get_or_set_detached` if `detached`, else with `get_or_set`.
    async fn start(detached: bool) -> Self {
        let manager = CacheManager::builder()
            .memory_store("memory")
            .wait_timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let reports = manager.cache("reports").unwrap();
        let (started, has_started) = tokio::sync::oneshot::channel::<()>();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let leader = {
            let reports = reports.clone();
            tokio::spawn(async move {
                let load = move || async move {
                    let _ = started.send(());
                    let _ = released.await;
                    1u32
                };
                let loaded = if detached {
                    reports.get_or_set_detached("r", load).await
                } else {
                    reports.get_or_set("r", load).await
                };
                loaded.unwrap()
            })
        };
        has_started.await.unwrap();
        Self {
            reports,
            release,
            leader,
        }
    }

    /// Releases the leader, which answers its own value.
    async fn finish(self) {
        self.release.send(()).unwrap();
        assert_eq!(self.leader.await.unwrap(), 1);
    }
}

/// An instance (`prefix`, no bus) whose L2 writes are parked until the latch is released,
/// and its `items` cache with `background_l2_writes`.
fn parked_l2_writes(
    server: &RedisServer,
    prefix: &str,
    clock: &ManualClock,
) -> (Instance, Latch, Cache) {
    let a = Instance::new(server, prefix, clock, false);
    let held = Latch::new();
    a.l2.inject(FaultRule::on(
        Operation::Set,
        Fault::HoldRequest(held.clone()),
    ));
    let items = a
        .cache("items")
        .with_options(CacheOptions::new().background_l2_writes(true));
    (a, held, items)
}

/// Awaits `call` (made while the L2 writes are parked), failing after [`PATIENT`]: a call
/// that waits for its parked L2 write fails the test instead of hanging it.
async fn without_l2<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENT, call).await {
        Ok(answer) => answer,
        Err(_) => panic!("{what} waited for the parked L2 write: not written in the background"),
    }
}

async fn get(cache: &Cache, key: &str) -> Option<u32> {
    cache.get::<u32>(key).await.unwrap()
}

async fn get_fresh(cache: &Cache, key: &str) -> Option<u32> {
    cache.get_fresh::<u32>(key).await.unwrap()
}

#[derive(Debug, PartialEq)]
struct Down;

impl From<CacheError> for Down {
    fn from(_: CacheError) -> Self {
        Down
    }
}

/// A refresh that fails: what grace is for.
async fn failing_refresh(cache: &Cache, key: &str) -> Result<u32, Down> {
    cache.try_get_or_set(key, || async { Err(Down) }).await
}

#[tokio::test]
async fn get_returns_a_graced_entry_and_get_fresh_does_not() {
    let clock = ManualClock::new();
    let rates = memory(&clock, CacheOptions::new()).cache("rates").unwrap();
    rates.set("eur", &100u32).await.unwrap();
    clock.advance(MINUTE + SECOND); // past the TTL, within grace
    assert_eq!(get(&rates, "eur").await, Some(100), "within grace");
    assert_eq!(rates.stats().stale, 1, "counted as stale");
    assert_eq!(get_fresh(&rates, "eur").await, None, "fresh only");
    clock.advance(10 * MINUTE);
    assert_eq!(get(&rates, "eur").await, None, "past grace");
}

#[tokio::test]
async fn a_calls_grace_bounds_what_it_may_serve() {
    let clock = ManualClock::new();
    let rates = memory(&clock, CacheOptions::new()).cache("rates").unwrap();
    rates.set("eur", &100u32).await.unwrap();
    clock.advance(MINUTE + 2 * SECOND);

    // FusionCache's per-call `SetFailSafe(false)`: the factory's error, not the stale value.
    let no_grace = rates.with_options(CacheOptions::new().grace(Duration::ZERO));
    assert_eq!(failing_refresh(&no_grace, "eur").await, Err(Down));
    assert_eq!(get(&no_grace, "eur").await, None);
    // A shorter grace than the entry's: past it, nothing is served either.
    let short = rates.with_options(CacheOptions::new().grace(SECOND));
    assert_eq!(failing_refresh(&short, "eur").await, Err(Down));
    // The entry is kept by its own grace: the cache's handle still falls back on it.
    assert_eq!(failing_refresh(&rates, "eur").await, Ok(100));
}

#[tokio::test]
async fn tti_expires_an_entry_nobody_reads() {
    let clock = ManualClock::new();
    let options = CacheOptions::new().tti(10 * SECOND);
    let sessions = memory(&clock, options).cache("sessions").unwrap();
    sessions.set("s1", &1u32).await.unwrap();
    for _ in 0..5 {
        clock.advance(6 * SECOND);
        assert_eq!(get(&sessions, "s1").await, Some(1), "read within the tti");
    }
    clock.advance(11 * SECOND);
    assert_eq!(get(&sessions, "s1").await, None, "idle longer than the tti");
}

#[tokio::test]
async fn has_misses_an_entry_idle_past_its_tti_and_asking_keeps_nothing_alive() {
    let clock = ManualClock::new();
    let options = CacheOptions::new().tti(10 * SECOND);
    let sessions = memory(&clock, options).cache("sessions").unwrap();
    sessions.set("s1", &1u32).await.unwrap();
    clock.advance(6 * SECOND);
    assert!(sessions.has("s1").await.unwrap(), "within the tti");
    // Asking is no read: 6 + 5 seconds without a read is past the tti.
    clock.advance(5 * SECOND);
    assert!(
        !sessions.has("s1").await.unwrap(),
        "idle longer than the tti"
    );
    assert!(sessions.missing("s1").await.unwrap());
    assert_eq!(get(&sessions, "s1").await, None, "every read agrees");
    // A read keeps it alive for `has` too.
    sessions.set("s2", &2u32).await.unwrap();
    clock.advance(6 * SECOND);
    assert_eq!(get(&sessions, "s2").await, Some(2));
    clock.advance(6 * SECOND);
    assert!(sessions.has("s2").await.unwrap(), "read 6 seconds ago");
}

#[tokio::test]
async fn jitter_spreads_expiries_over_the_jitter() {
    let clock = ManualClock::new();
    let options = CacheOptions::new().jitter(30 * SECOND);
    let items = memory(&clock, options).cache("items").unwrap();
    for i in 0..100u32 {
        items.set(&i, &i).await.unwrap();
    }
    clock.advance(MINUTE + 15 * SECOND);
    let mut fresh = 0;
    for i in 0..100u32 {
        fresh += u32::from(items.get_fresh::<u32>(&i).await.unwrap().is_some());
    }
    assert!(
        fresh > 0 && fresh < 100,
        "halfway through the jitter, some entries are fresh and some are not: {fresh}"
    );
    clock.advance(16 * SECOND); // past TTL + jitter
    for i in 0..100u32 {
        assert_eq!(items.get_fresh::<u32>(&i).await.unwrap(), None);
    }
}

#[tokio::test]
async fn force_fresh_runs_the_factory_on_a_hit() {
    let clock = ManualClock::new();
    let prices = memory(&clock, CacheOptions::new()).cache("prices").unwrap();
    let first: u32 = prices.get_or_set("p", || async { 1 }).await.unwrap();
    let forced = prices.with_options(CacheOptions::new().force_fresh(true));
    let second: u32 = forced.get_or_set("p", || async { 2 }).await.unwrap();
    assert_eq!((first, second), (1, 2));
    assert_eq!(get(&prices, "p").await, Some(2), "stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_past_wait_timeout_runs_the_factory_itself() {
    let parked = ParkedLeader::start(false).await;
    // The leader is parked until released: without `wait_timeout` this call would wait
    // for it forever.
    let own: u32 = parked
        .reports
        .get_or_set("r", || async { 2 })
        .await
        .unwrap();
    assert_eq!(own, 2);
    parked.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_serves_a_graced_entry_found_only_in_l2() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "graced", &clock, false).await;
    a.cache("rates").set("eur", &100u32).await.unwrap();
    clock.advance(MINUTE + SECOND);
    assert_eq!(get(&b.cache("rates"), "eur").await, Some(100));
    assert_eq!(get_fresh(&b.cache("rates"), "eur").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_marks_an_entry_stale_in_every_tier_and_instance() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "expire", &clock, true).await;
    let (rates_a, rates_b) = (a.cache("rates"), b.cache("rates"));
    rates_a.set("eur", &100u32).await.unwrap();
    assert_eq!(get(&rates_b, "eur").await, Some(100), "B holds an L1 copy");

    rates_a.expire("eur").await.unwrap();
    assert_eq!(rates_a.stats().errors, 0, "no fault");
    assert_eq!(get_fresh(&rates_a, "eur").await, None);
    eventually("B's copy is stale", async || {
        get_fresh(&rates_b, "eur").await.is_none()
    })
    .await;
    // Stale, not gone: a failing refresh is still covered, on both instances.
    assert_eq!(failing_refresh(&rates_b, "eur").await, Ok(100));
    assert_eq!(failing_refresh(&rates_a, "eur").await, Ok(100));
    // And a working one refreshes it.
    let fresh: u32 = rates_b.get_or_set("eur", || async { 101 }).await.unwrap();
    assert_eq!(fresh, 101);
    eventually("A reads the refreshed value", async || {
        get_fresh(&rates_a, "eur").await == Some(101)
    })
    .await;

    // Without grace, expiring deletes.
    let no_grace = rates_a.with_options(CacheOptions::new().grace(Duration::ZERO));
    no_grace.set("usd", &7u32).await.unwrap();
    no_grace.expire("usd").await.unwrap();
    assert_eq!(get(&rates_a, "usd").await, None);
    assert_eq!(get(&rates_b, "usd").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_ttl_bounds_how_stale_an_l1_copy_gets_without_a_bus() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "l1ttl", &clock, false).await;
    let short = a
        .cache("items")
        .with_options(CacheOptions::new().l1_ttl(10 * SECOND));
    short.set("i", &1u32).await.unwrap();
    b.cache("items").set("i", &2u32).await.unwrap(); // no bus: A's L1 is not told
    assert_eq!(get(&short, "i").await, Some(1), "A's L1 copy");
    clock.advance(11 * SECOND);
    assert_eq!(
        get(&short, "i").await,
        Some(2),
        "L1 copy gone: read from L2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_options_bypass_a_tier_for_one_call() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "skips", &clock, true).await;
    let (items_a, items_b) = (a.cache("items"), b.cache("items"));

    // skip_l2_write: L1 only.
    let local = items_a.with_options(CacheOptions::new().skip_l2_write(true));
    local.set("only-here", &1u32).await.unwrap();
    assert_eq!(a.l2.completed(Operation::Set), 0);
    assert_eq!(get(&items_a, "only-here").await, Some(1));
    assert_eq!(get(&items_b, "only-here").await, None);

    // skip_l2_read: the L2 value is not looked at.
    items_a.set("shared", &2u32).await.unwrap();
    let reads = b.l2.completed(Operation::Get);
    let blind = items_b.with_options(CacheOptions::new().skip_l2_read(true));
    assert_eq!(get(&blind, "shared").await, None);
    assert_eq!(b.l2.completed(Operation::Get), reads);
    assert_eq!(get(&items_b, "shared").await, Some(2), "B's L1 copy now");

    // skip_bus: nothing is published.
    let published = || command_calls(&server, "publish");
    let before = published();
    let quiet = items_a.with_options(CacheOptions::new().skip_bus(true));
    quiet.set("shared", &3u32).await.unwrap();
    quiet.delete("shared").await.unwrap();
    items_a.set("told", &4u32).await.unwrap();
    assert_eq!(published(), before + 1, "only the write without skip_bus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_l2_writes_answer_before_l2_has_the_value() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, held, items) = parked_l2_writes(&server, "background", &clock);
    let runs = AtomicU64::new(0);
    // The L2 write is parked: answered anyway, from L1.
    let v: u32 = without_l2(
        "get_or_set",
        items.get_or_set("i", || {
            runs.fetch_add(1, SeqCst);
            async { 5 }
        }),
    )
    .await
    .unwrap();
    assert_eq!(v, 5);
    assert_eq!(get(&items, "i").await, Some(5));
    assert_eq!(a.l2.completed(Operation::Set), 0, "still parked");
    assert_eq!(redis_cli(server.port(), &["DBSIZE"]), "0");
    held.release();
    eventually("the L2 write finished", async || {
        a.l2.completed(Operation::Set) == 1
    })
    .await;
    assert_eq!(runs.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_honours_skip_l2_read() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "has", &clock, false).await;
    a.cache("items").set("shared", &1u32).await.unwrap();
    let reads = b.l2.completed(Operation::Get);
    let blind = b
        .cache("items")
        .with_options(CacheOptions::new().skip_l2_read(true));
    assert!(
        !blind.has("shared").await.unwrap(),
        "only in L2: not looked at"
    );
    assert_eq!(b.l2.completed(Operation::Get), reads, "no L2 read");
    assert!(
        b.cache("items").has("shared").await.unwrap(),
        "read from L2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_honour_the_skip_options() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "batchskips", &clock, true).await;
    let items = a.cache("items");

    // skip_bus: a batch write publishes nothing.
    let before = command_calls(&server, "publish");
    let quiet = items.with_options(CacheOptions::new().skip_bus(true));
    quiet.set_many(&[("q1", 1u32), ("q2", 2)]).await.unwrap();
    let loaded = quiet
        .get_or_set_many(&["q3"], |missing: Vec<&str>| async move {
            missing.into_iter().map(|k| (k, 3u32)).collect()
        })
        .await
        .unwrap();
    assert_eq!(loaded["q3"], 3);
    assert_eq!(
        command_calls(&server, "publish"),
        before,
        "nothing published"
    );
    items.set_many(&[("told", 4u32)]).await.unwrap();
    assert_eq!(
        command_calls(&server, "publish"),
        before + 1,
        "a batch without skip_bus publishes"
    );

    // skip_l2_write: L1 only, and not a fault.
    let sets = a.l2.completed(Operation::Set);
    let local = items.with_options(CacheOptions::new().skip_l2_write(true));
    local.set_many(&[("l1", 5u32)]).await.unwrap();
    assert_eq!(a.l2.completed(Operation::Set), sets, "no L2 write");
    assert_eq!(items.stats().errors, 0, "skipping L2 is not an L2 fault");
    assert_eq!(get(&items, "l1").await, Some(5));

    // skip_l2_read: a batch read does not look at L2.
    let reads = b.l2.completed(Operation::Get);
    let blind = b
        .cache("items")
        .with_options(CacheOptions::new().skip_l2_read(true));
    let found = blind.get_many::<u32, _>(&["q1", "told"]).await.unwrap();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(b.l2.completed(Operation::Get), reads, "no L2 read");
}

#[tokio::test]
async fn force_fresh_reloads_a_batch() {
    let clock = ManualClock::new();
    let prices = memory(&clock, CacheOptions::new()).cache("prices").unwrap();
    prices.set_many(&[("a", 1u32), ("b", 1)]).await.unwrap();
    let forced = prices.with_options(CacheOptions::new().force_fresh(true));
    let loaded = forced
        .get_or_set_many(&["a", "b"], |missing: Vec<&str>| async move {
            missing.into_iter().map(|k| (k, 2u32)).collect()
        })
        .await
        .unwrap();
    assert_eq!((loaded["a"], loaded["b"]), (2, 2), "loaded, hit or not");
    assert_eq!(get(&prices, "a").await, Some(2), "stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_wait_timeout_loads_the_key_itself() {
    let parked = ParkedLeader::start(true).await;
    // The leader is parked until released: without `wait_timeout` the batch would wait
    // for it forever (the guard turns that hang into a failure).
    let batch = parked
        .reports
        .get_or_set_many(&["r", "s"], |missing: Vec<&str>| async move {
            missing.into_iter().map(|k| (k, 2u32)).collect()
        });
    let own = tokio::time::timeout(Duration::from_secs(30), batch)
        .await
        .expect("the batch stopped waiting for the parked leader")
        .unwrap();
    assert_eq!((own["r"], own["s"]), (2, 2));
    parked.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tti_renews_the_l2_ttl_on_read_at_most_once_per_tenth() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "tti", &clock, false).await;
    // Fresh for an hour: every read below is an L1 hit until B's.
    let idle = CacheOptions::new().ttl(60 * MINUTE).tti(10 * MINUTE);
    let (sessions_a, sessions_b) = (
        a.cache("sessions").with_options(idle),
        b.cache("sessions").with_options(idle),
    );
    sessions_a.set("s1", &1u32).await.unwrap();
    let key = redis_cli(server.port(), &["KEYS", "tti:sessions:*"]);
    let key = key.as_str();
    let pttl = || {
        redis_cli(server.port(), &["PTTL", key])
            .parse::<u64>()
            .unwrap()
    };
    // Written for the TTL and grace (11 minutes), kept in L2 no longer than the tti.
    assert!(pttl() <= 10 * 60_000 && pttl() > 9 * 60_000, "{}", pttl());

    // L1 hits within a tenth of the tti renew nothing.
    for _ in 0..3 {
        clock.advance(10 * SECOND);
        assert_eq!(get(&sessions_a, "s1").await, Some(1));
    }
    assert_eq!(command_calls(&server, "pexpire"), 0);
    assert_eq!(a.l2.completed(Operation::Touch), 0);

    // Shrunk by hand; an L1 hit past a tenth of the tti renews it, once.
    redis_cli(server.port(), &["PEXPIRE", key, "30000"]);
    clock.advance(31 * SECOND); // 61 s since the write
    assert_eq!(get(&sessions_a, "s1").await, Some(1));
    eventually("the L2 copy is renewed", async || {
        a.l2.completed(Operation::Touch) == 1
    })
    .await;
    assert!(pttl() > 9 * 60_000, "renewed to the tti: {}", pttl());
    assert_eq!(get(&sessions_a, "s1").await, Some(1));
    assert_eq!(a.l2.completed(Operation::Touch), 1, "once per tenth");

    // A read from L2 (another instance) renews it too.
    assert_eq!(get(&sessions_b, "s1").await, Some(1));
    eventually("B renews the L2 copy", async || {
        b.l2.completed(Operation::Touch) == 1
    })
    .await;
}

/// Eager refresh of an entry another instance wrote, read from L2: its refresh point is
/// placed by this cache's TTL from the envelope's freshness (the envelope does not carry
/// it), on the L2 hit and on the L1 copy it leaves, so a read before the point starts no
/// refresh and one past it does. The factory is called (and counted) when a refresh starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_read_from_l2_is_refreshed_eagerly_past_its_point_only() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = Instance::pair(&server, "eagerl2", &clock, false).await;
    // Fresh for 10 minutes, refreshed on a hit from 8 minutes in.
    let eager = CacheOptions::new().ttl(10 * MINUTE).eager_refresh(0.8);
    let rates_a = a.cache("rates").with_options(eager);
    let rates_b = b.cache("rates").with_options(eager);
    rates_a.set("eur", &1u32).await.unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let refresh = || {
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, SeqCst);
            async { 2u32 }
        }
    };
    clock.advance(7 * MINUTE);
    let read = rates_b.get_or_set_detached("eur", refresh()).await;
    assert_eq!(read.unwrap(), 1, "an L2 hit");
    assert_eq!(runs.load(SeqCst), 0, "no refresh before the point");
    clock.advance(90 * SECOND); // 8.5 minutes in: past the point
    let read = rates_b.get_or_set_detached("eur", refresh()).await;
    assert_eq!(
        read.unwrap(),
        1,
        "served at once, refreshed in the background"
    );
    assert_eq!(runs.load(SeqCst), 1, "the L1 copy kept the point");
}

/// `skip_l2_write` holds for a `tti` renewal too: an L1 hit due to renew the L2 copy renews
/// nothing through a view that skips L2 writes; the next one through the cache does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_skipping_l2_writes_renews_nothing_in_l2() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = Instance::new(&server, "ttiskip", &clock, false);
    let idle = CacheOptions::new().ttl(60 * MINUTE).tti(10 * MINUTE);
    let sessions = a.cache("sessions").with_options(idle);
    let local = sessions.with_options(CacheOptions::new().skip_l2_write(true));
    sessions.set("s1", &1u32).await.unwrap();
    clock.advance(61 * SECOND); // past a tenth of the tti: a read is due to renew
    assert_eq!(get(&local, "s1").await, Some(1));
    clock.advance(61 * SECOND);
    assert_eq!(get(&sessions, "s1").await, Some(1));
    eventually("the cache's own read renews the L2 copy", async || {
        a.l2.completed(Operation::Touch) >= 1
    })
    .await;
    // A renewal through the view would have been started first, so it would be counted
    // by now; the correct count can never exceed one.
    assert_eq!(
        a.l2.completed(Operation::Touch),
        1,
        "the view skipping L2 writes renewed the L2 copy"
    );
}

/// `expire` rewrites the L2 copy for its grace period: an L1 copy's `tti` renewals of it
/// stop where that ends too, never keeping it longer than the entry now lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_expire_a_tti_renewal_never_outlives_the_grace() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = Instance::new(&server, "expiretti", &clock, false);
    // Fresh for an hour, idle after 30 minutes; kept 10 minutes past its TTL (the grace).
    let idle = CacheOptions::new().ttl(60 * MINUTE).tti(30 * MINUTE);
    let sessions = a.cache("sessions").with_options(idle);
    sessions.set("s1", &1u32).await.unwrap();
    sessions.expire("s1").await.unwrap();
    let key = redis_cli(server.port(), &["KEYS", "expiretti:sessions:*"]);
    let pttl = || {
        redis_cli(server.port(), &["PTTL", &key])
            .parse::<u64>()
            .unwrap()
    };
    assert!(pttl() <= 10 * 60_000, "kept for the grace: {}", pttl());
    // A tenth of the tti later, an L1 read renews the L2 copy (read from L1 only: a read
    // of the L2 copy would renew it by its own envelope).
    clock.advance(3 * MINUTE);
    let local = sessions.with_options(CacheOptions::new().skip_l2_read(true));
    assert_eq!(get(&local, "s1").await, Some(1), "served stale");
    eventually("the L1 read renews the L2 copy", async || {
        a.l2.completed(Operation::Touch) == 1
    })
    .await;
    // Renewed for the 7 minutes of grace left (a renewal only raises an expiry: the copy
    // keeps its 10), not for the tti.
    assert!(pttl() <= 10 * 60_000, "renewed past the grace: {}", pttl());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_background_l2_writes_answers_before_l2_has_the_values() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, held, items) = parked_l2_writes(&server, "batchbg", &clock);
    // The L2 write is parked: answered anyway, from L1.
    without_l2("set_many", items.set_many(&[("x", 1u32), ("y", 2)]))
        .await
        .unwrap();
    assert_eq!(get(&items, "y").await, Some(2));
    assert_eq!(a.l2.completed(Operation::Set), 0, "still parked");
    held.release();
    eventually("the L2 writes finished", async || {
        a.l2.completed(Operation::Set) == 2
    })
    .await;
}
