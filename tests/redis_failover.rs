//! Failover under load: 32 tasks call cached functions on a Redis Cluster (or through
//! Sentinel) while a master is killed. No call fails, every value is right, each call's
//! latency stays bounded, and writes and bus messages resume within 10 s of the
//! promotion. Each test prints the outage window it measured.
#![cfg(feature = "redis")]

#[allow(dead_code)] // the shared helpers; this test uses the harness only
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet::{cacheable, CacheManager};
use support::redis_server::{RedisCluster, RedisSentinel};

const TASKS: u64 = 32;
/// `operation_timeout` and `connect_timeout` of every store here.
const TIMEOUT_MS: u64 = 500;
/// The most one call may take: an L2 read and an L2 write, each bounded by the
/// operation timeout, and room for a loaded 2-core machine.
const CALL_BOUND: Duration = Duration::from_secs(5);
/// How soon after the promotion writes and bus messages must flow again.
const RESUME_BOUND: Duration = Duration::from_secs(10);

/// The cached function under load: its value is a pure function of the key, so any
/// wrong value (another key's, a stale one) shows.
#[cacheable("values", key = id)]
async fn value(id: u64) -> Result<u64, String> {
    Ok(id * 3 + 1)
}

/// `where_` is the driver options naming the topology, e.g. `cluster = [..]`.
fn manager(where_: &str, l1: bool, bus: bool) -> CacheManager {
    let l1 = if l1 {
        "l1 = { driver = \"memory\", max_entries = 10000 }"
    } else {
        ""
    };
    let timeouts =
        format!("operation_timeout = \"{TIMEOUT_MS}ms\", connect_timeout = \"{TIMEOUT_MS}ms\"");
    let bus = if bus {
        format!("bus = {{ driver = \"redis\", {where_}, {timeouts} }}")
    } else {
        String::new()
    };
    CacheManager::from_toml_str(&format!(
        r#"
        prefix = "fo"
        ttl = "10m"
        [stores.main]
        {l1}
        l2 = {{ driver = "redis", {where_}, {timeouts} }}
        {bus}
        "#
    ))
    .unwrap()
}

/// What the load saw.
#[derive(Default)]
struct Load {
    calls: AtomicU64,
    failed: AtomicU64,
    wrong: AtomicU64,
    slowest_us: AtomicU64,
}

/// `TASKS` tasks calling `value` until `stop`: mostly a hot set of keys (hits), and every
/// fourth call a key never asked before (a miss, so a write).
fn start_load(
    manager: &CacheManager,
    stop: &Arc<AtomicBool>,
    load: &Arc<Load>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..TASKS)
        .map(|task| {
            let (manager, stop, load) = (manager.clone(), Arc::clone(stop), Arc::clone(load));
            tokio::spawn(async move {
                manager
                    .scope(async move {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let id = if n.is_multiple_of(4) {
                                1_000_000 * (task + 1) + n
                            } else {
                                n % 200
                            };
                            let started = Instant::now();
                            let got = value(id).await;
                            let took =
                                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                            load.slowest_us.fetch_max(took, Ordering::Relaxed);
                            load.calls.fetch_add(1, Ordering::Relaxed);
                            match got {
                                Ok(v) if v == id * 3 + 1 => {}
                                Ok(_) => {
                                    load.wrong.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => {
                                    load.failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            n += 1;
                            // Let the probes and the other tasks in on a 2-core machine.
                            tokio::task::yield_now().await;
                        }
                    })
                    .await;
            })
        })
        .collect()
}

/// Instances `a` and `b` (each L1 + L2 + bus) and an L2-only `reader`.
struct Probes {
    a: CacheManager,
    b: CacheManager,
    reader: CacheManager,
    n: u64,
}

impl Probes {
    /// Whether a write made now by `a` reaches Redis (`reader` has no L1: it reads Redis).
    async fn write_lands(&mut self) -> bool {
        self.n += 1;
        let key = self.n;
        let probe = self.a.cache("probe").unwrap();
        if probe.set(&key, &key).await.is_err() {
            return false;
        }
        let seen = self.reader.cache("probe").unwrap().get::<u64>(&key).await;
        matches!(seen, Ok(Some(v)) if v == key)
    }

    /// Whether a change made now by `a` reaches `b`'s L1 through the bus: `b` holds an
    /// older value in its L1, which only a bus message can make it drop.
    async fn bus_delivers(&mut self) -> bool {
        self.n += 1;
        let (old, new) = (self.n * 10, self.n * 10 + 1);
        let (a, b) = (self.a.cache("bus").unwrap(), self.b.cache("bus").unwrap());
        if b.set(&0u64, &old).await.is_err() || a.set(&0u64, &new).await.is_err() {
            return false;
        }
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            if matches!(b.get::<u64>(&0u64).await, Ok(Some(v)) if v == new) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

/// Runs the load, calls `kill` (which returns after killing a master), waits for
/// `promoted` (which returns when the promotion was seen), and measures when writes and
/// bus messages flow again.
async fn failover_under_load(
    topology: &str,
    where_: &str,
    kill: impl FnOnce() + Send + 'static,
    promoted: impl FnOnce() -> Instant + Send + 'static,
) {
    let mut probes = Probes {
        a: manager(where_, true, true),
        b: manager(where_, true, true),
        reader: manager(where_, false, false),
        n: 0,
    };
    // Both instances subscribed and Redis reachable before anything is killed.
    let ready = Instant::now() + Duration::from_secs(20);
    while !(probes.write_lands().await && probes.bus_delivers().await) {
        assert!(
            Instant::now() < ready,
            "{topology}: the probes never worked before the failover"
        );
    }

    let load_manager = manager(where_, false, false);
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let tasks = start_load(&load_manager, &stop, &load);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let killed_at = Instant::now();
    tokio::task::spawn_blocking(kill).await.unwrap();
    let watch = tokio::task::spawn_blocking(promoted);

    // Probe until both flow again after the kill.
    let (mut wrote, mut bused) = (None, None);
    let give_up = Instant::now() + Duration::from_secs(60);
    while wrote.is_none() || bused.is_none() {
        assert!(
            Instant::now() < give_up,
            "{topology}: writes or bus messages never resumed"
        );
        if wrote.is_none() && probes.write_lands().await {
            wrote = Some(Instant::now());
        }
        if wrote.is_some() && bused.is_none() && probes.bus_delivers().await {
            bused = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let promoted_at = watch.await.unwrap();
    // Keep the load on a moment past the recovery, then stop it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let (wrote, bused) = (wrote.unwrap(), bused.unwrap());
    let since = |t: Instant, from: Instant| t.saturating_duration_since(from);
    let slowest = Duration::from_micros(load.slowest_us.load(Ordering::Relaxed));
    println!(
        "{topology} failover under load: {} calls by {TASKS} tasks, {} failed, {} wrong, slowest call {slowest:?}; \
         promotion seen {:?} after the kill; writes resumed {:?} after the kill ({:?} after the promotion), \
         bus messages {:?} after the kill ({:?} after the promotion)",
        load.calls.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
        load.wrong.load(Ordering::Relaxed),
        since(promoted_at, killed_at),
        since(wrote, killed_at),
        since(wrote, promoted_at),
        since(bused, killed_at),
        since(bused, promoted_at),
    );
    assert!(
        load.calls.load(Ordering::Relaxed) > TASKS,
        "{topology}: the load never ran"
    );
    assert_eq!(
        load.failed.load(Ordering::Relaxed),
        0,
        "{topology}: calls failed"
    );
    assert_eq!(
        load.wrong.load(Ordering::Relaxed),
        0,
        "{topology}: wrong values"
    );
    assert!(slowest <= CALL_BOUND, "{topology}: a call took {slowest:?}");
    assert!(
        since(wrote, promoted_at) <= RESUME_BOUND,
        "{topology}: writes resumed late"
    );
    assert!(
        since(bused, promoted_at) <= RESUME_BOUND,
        "{topology}: bus messages resumed late"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_dies_under_load() {
    let cluster = Arc::new(RedisCluster::start());
    let seeds = cluster
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // The master serving the bus channel: publishing, a third of the keys, and perhaps
    // the subscriptions go down with it.
    let victim = cluster.master_of("fo:__bus");
    let (c1, c2) = (Arc::clone(&cluster), Arc::clone(&cluster));
    failover_under_load(
        "cluster",
        &format!("cluster = [{seeds}]"),
        move || c1.kill(victim),
        move || c2.wait_for_failover(victim).0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentinel_master_dies_under_load() {
    let ha = Arc::new(RedisSentinel::start());
    let sentinels = ha
        .sentinel_urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let old = ha.master_port();
    let (h1, h2) = (Arc::clone(&ha), Arc::clone(&ha));
    failover_under_load(
        "sentinel",
        &format!("sentinels = [{sentinels}], service = \"{}\"", ha.service()),
        move || {
            h1.kill_master();
        },
        move || h2.wait_for_failover(old).0,
    )
    .await;
}
