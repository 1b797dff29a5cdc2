//! Failover under load: 32 tasks call cached functions on a Redis Cluster (or through
//! Sentinel) while a master is killed, or frozen (SIGSTOP) until its replica takes over.
//! No call fails, no value is wrong or stale, no call overruns its deadline, and writes
//! and bus messages resume within 10 s of the promotion. Each test prints the outage
//! window it measured.
//!
//! Every value carries its key and a version: each task owns two keys, which it writes
//! with ever higher versions (through a store whose error handler fails a write the L2
//! did not take, so the task knows which versions were acknowledged) and reads back
//! through the cached function. A read older than the last acknowledged write is stale;
//! one not written for its key is wrong.
#![cfg(feature = "redis")]

#[allow(dead_code)] // the shared helpers; this test uses the harness only
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cache_backends::redis::{RedisOptions, RedisTier};
use cachet::{cacheable, CacheManager, FaultAction, StoreBuilder};
use serde::{Deserialize, Serialize};
use support::redis_server::{RedisCluster, RedisSentinel};

const TASKS: u64 = 32;
/// `operation_timeout` and `connect_timeout` of every store here.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Room, past an operation's deadline, for a loaded 2-core machine to run the task that
/// waits for it: a call whose operations took more than their deadlines plus this
/// overran them (see [`Load::over_deadline`]).
const MARGIN: Duration = Duration::from_secs(1);
/// How soon after the promotion writes and bus messages must flow again.
const RESUME_BOUND: Duration = Duration::from_secs(10);
/// How long a frozen master stays frozen: past the cluster's node timeout (1 s), so its
/// replica takes over meanwhile.
const FROZEN_FOR: Duration = Duration::from_secs(4);

/// A cached value: its key, and which write of that key made it (0: never written, as
/// the function computes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Versioned {
    id: u64,
    version: u64,
}

/// The source of truth: the last version issued for each key written (tests of this
/// binary run at once: each has its own keys, see [`start_load`]).
static SOURCE: LazyLock<Mutex<HashMap<u64, u64>>> = LazyLock::new(Mutex::default);

fn source() -> std::sync::MutexGuard<'static, HashMap<u64, u64>> {
    SOURCE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The cached function under load: the key and its current version in the source.
#[cacheable("values", key = id)]
async fn value(id: u64) -> Result<Versioned, String> {
    let version = source().get(&id).copied().unwrap_or(0);
    Ok(Versioned { id, version })
}

/// `where_` is the driver options naming the topology, e.g. `cluster = [..]`.
fn manager(where_: &str, l1: bool, bus: bool) -> CacheManager {
    let l1 = if l1 {
        "l1 = { driver = \"memory\", max_entries = 10000 }"
    } else {
        ""
    };
    let ms = TIMEOUT.as_millis();
    let timeouts = format!("operation_timeout = \"{ms}ms\", connect_timeout = \"{ms}ms\"");
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

/// An L2-only manager on `opts` whose writes fail when the L2 did not take them, so a
/// write that returns `Ok` is acknowledged by Redis.
fn strict_writer(opts: RedisOptions) -> CacheManager {
    let tier = RedisTier::new(&opts.operation_timeout(TIMEOUT).connect_timeout(TIMEOUT)).unwrap();
    CacheManager::builder()
        .prefix("fo")
        .ttl(Duration::from_secs(600))
        .store("main", StoreBuilder::new().l2(Arc::new(tier)))
        .error_handler(|_: &cachet::CacheFault<'_>| FaultAction::Fail)
        .build()
        .unwrap()
}

/// What the load saw.
#[derive(Default)]
struct Load {
    calls: AtomicU64,
    /// Calls of the cached function that failed (none may: a failing cache never fails
    /// a call).
    failed: AtomicU64,
    /// Values not written for their key (another key's, or a version never issued).
    wrong: AtomicU64,
    /// Reads older than a write acknowledged after the fault was in place: a write no
    /// failover can lose (the frozen or killed master acknowledged none of them).
    stale: AtomicU64,
    /// Keys whose write, acknowledged before the fault, was not read back afterwards:
    /// what Redis's asynchronous replication may lose in a failover (printed, allowed).
    lost: AtomicU64,
    /// Versioned writes that failed (allowed: the task knows they were not taken).
    writes_failed: AtomicU64,
    /// Versioned writes that failed, ending before the fault began: none may.
    writes_failed_early: AtomicU64,
    /// Versioned writes that failed, begun before the fault and ended after it began
    /// (counted in `writes_failed`; printed).
    writes_failed_in_flight: AtomicU64,
    /// The error of the first write that failed before the fault.
    first_early_failure: Mutex<Option<String>>,
    writes_acked: AtomicU64,
    /// Calls that took longer than the deadlines of their L2 operations (one per write,
    /// two per cached call: a read, and a write on a miss) plus [`MARGIN`]. Every L2
    /// operation is bounded by `operation_timeout` (the driver's contract), whatever the
    /// master does: this must stay 0.
    over_deadline: AtomicU64,
    slowest_us: AtomicU64,
    /// Set just before the fault is made.
    faulting: AtomicBool,
    /// Set once the fault is in place (the master is dead or frozen): writes
    /// acknowledged from then on were taken by a live master and cannot be lost.
    faulted: AtomicBool,
}

impl Load {
    /// Counts a call that took `took` against the deadlines of `operations` L2 operations.
    fn timed(&self, took: Duration, operations: u32) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.slowest_us.fetch_max(us, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        if took > TIMEOUT * operations + MARGIN {
            self.over_deadline.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One key a task owns: what it issued, and what Redis acknowledged (all time, and since
/// the fault).
#[derive(Default, Clone, Copy)]
struct Owned {
    id: u64,
    issued: u64,
    acked: u64,
    acked_since_fault: u64,
    /// The acknowledged version already counted as lost.
    reported_lost: u64,
}

/// Checks a read of an owned key against its ledger.
fn check_owned(load: &Load, key: &mut Owned, got: Versioned) {
    if got.id != key.id || got.version > key.issued {
        Load::count(&load.wrong);
    } else if got.version < key.acked_since_fault {
        Load::count(&load.stale);
    } else if got.version < key.acked && key.reported_lost != key.acked {
        key.reported_lost = key.acked;
        Load::count(&load.lost);
    }
}

/// `TASKS` tasks calling `value` until `stop`, in turns of four calls: a versioned write
/// of one of the task's two keys (through `writer`), a read of it, a read of a hot key
/// (a hit), and a read of a key never asked before (a miss, so a write). `base` keeps
/// this test's owned keys apart from the other tests'.
fn start_load(
    manager: &CacheManager,
    writer: &CacheManager,
    base: u64,
    stop: &Arc<AtomicBool>,
    load: &Arc<Load>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..TASKS)
        .map(|task| {
            let (manager, stop, load) = (manager.clone(), Arc::clone(stop), Arc::clone(load));
            let writes = writer.cache("values").unwrap();
            tokio::spawn(async move {
                let mut owned = [0, 1].map(|j| Owned {
                    id: base + task * 2 + j,
                    ..Owned::default()
                });
                manager
                    .scope(async move {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let key = &mut owned[usize::from(n % 8 >= 4)];
                            let started = Instant::now();
                            match n % 4 {
                                0 => {
                                    key.issued += 1;
                                    source().insert(key.id, key.issued);
                                    let faulted = load.faulted.load(Ordering::Relaxed);
                                    let faulting_before = load.faulting.load(Ordering::Relaxed);
                                    let written = Versioned {
                                        id: key.id,
                                        version: key.issued,
                                    };
                                    let set = writes.set(&key.id, &written).await;
                                    load.timed(started.elapsed(), 1);
                                    // Read once the write is over: one still in flight when
                                    // the fault began may fail by it.
                                    let faulting = load.faulting.load(Ordering::Relaxed);
                                    match set {
                                        Ok(()) => {
                                            Load::count(&load.writes_acked);
                                            key.acked = key.issued;
                                            if faulted {
                                                key.acked_since_fault = key.issued;
                                            }
                                        }
                                        Err(_) if faulting => {
                                            Load::count(&load.writes_failed);
                                            if !faulting_before {
                                                Load::count(&load.writes_failed_in_flight);
                                            }
                                        }
                                        Err(e) => {
                                            Load::count(&load.writes_failed_early);
                                            load.first_early_failure
                                                .lock()
                                                .unwrap_or_else(PoisonError::into_inner)
                                                .get_or_insert_with(|| e.to_string());
                                        }
                                    }
                                }
                                1 => match value(key.id).await {
                                    Ok(got) => {
                                        load.timed(started.elapsed(), 2);
                                        check_owned(&load, key, got);
                                    }
                                    Err(_) => Load::count(&load.failed),
                                },
                                turn => {
                                    let id = if turn == 2 {
                                        n % 200
                                    } else {
                                        1_000_000 * (task + 1) + n
                                    };
                                    match value(id).await {
                                        Ok(got) => {
                                            load.timed(started.elapsed(), 2);
                                            if got != (Versioned { id, version: 0 }) {
                                                Load::count(&load.wrong);
                                            }
                                        }
                                        Err(_) => Load::count(&load.failed),
                                    }
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

/// How a test breaks its master: `fault` returns once the fault is in place, `promoted`
/// returns when the promotion was seen, `heal` (once the promotion was seen and writes
/// flow again) undoes what can be undone.
struct Fault {
    fault: Box<dyn FnOnce() + Send>,
    promoted: Box<dyn FnOnce() -> Instant + Send>,
    heal: Box<dyn FnOnce() + Send>,
}

/// Runs the load, puts the fault in place, waits for the promotion, and measures when
/// writes and bus messages flow again; then checks what the load saw.
async fn failover_under_load(
    topology: &str,
    where_: &str,
    opts: RedisOptions,
    base: u64,
    fault: Fault,
) {
    let mut probes = Probes {
        a: manager(where_, true, true),
        b: manager(where_, true, true),
        reader: manager(where_, false, false),
        n: 0,
    };
    // Both instances subscribed and Redis reachable before anything breaks.
    let ready = Instant::now() + Duration::from_secs(20);
    while !(probes.write_lands().await && probes.bus_delivers().await) {
        assert!(
            Instant::now() < ready,
            "{topology}: the probes never worked before the failover"
        );
    }

    let load_manager = manager(where_, false, false);
    let writer = strict_writer(opts);
    // The writer and the cached function share their keys: a version written (and in no
    // source) is what the function answers, so the load's reads check its writes.
    let shared = base + 9_999;
    let written = Versioned {
        id: shared,
        version: 7,
    };
    let values = writer.cache("values").unwrap();
    values.set(&shared, &written).await.unwrap();
    let read = load_manager.scope(value(shared)).await.unwrap();
    assert_eq!(
        read, written,
        "{topology}: the cached function reads other keys"
    );
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let tasks = start_load(&load_manager, &writer, base, &stop, &load);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let broken_at = Instant::now();
    load.faulting.store(true, Ordering::Relaxed);
    tokio::task::spawn_blocking(fault.fault).await.unwrap();
    load.faulted.store(true, Ordering::Relaxed);
    let watch = tokio::task::spawn_blocking(fault.promoted);

    // Probe until both flow again after the fault; heal what can be healed once the
    // promotion was seen and writes flow (a frozen master is thawed then: while it is
    // frozen, a subscription made on it hears nothing and notices nothing).
    let (mut wrote, mut bused) = (None, None);
    let mut heal = Some(fault.heal);
    let mut watch = Some(watch);
    let mut promoted_at = None;
    let give_up = Instant::now() + Duration::from_secs(60);
    while wrote.is_none() || bused.is_none() {
        assert!(
            Instant::now() < give_up,
            "{topology}: writes or bus messages never resumed (writes resumed: {})",
            wrote.is_some()
        );
        if wrote.is_none() && probes.write_lands().await {
            wrote = Some(Instant::now());
        }
        if watch
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            promoted_at = Some(watch.take().unwrap().await.unwrap());
        }
        if wrote.is_some() && promoted_at.is_some() {
            if let Some(heal) = heal.take() {
                tokio::task::spawn_blocking(heal).await.unwrap();
            }
        }
        if wrote.is_some() && bused.is_none() && probes.bus_delivers().await {
            bused = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let promoted_at = match (promoted_at, watch) {
        (Some(at), _) => at,
        (None, Some(watch)) => watch.await.unwrap(),
        (None, None) => unreachable!("the promotion is awaited once"),
    };
    if let Some(heal) = heal {
        tokio::task::spawn_blocking(heal).await.unwrap();
    }
    // Keep the load on a moment past the recovery, then stop it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let (wrote, bused) = (wrote.unwrap(), bused.unwrap());
    let since = |t: Instant, from: Instant| t.saturating_duration_since(from);
    let slowest = Duration::from_micros(Load::get(&load.slowest_us));
    println!(
        "{topology} failover under load: {} calls by {TASKS} tasks, {} failed, {} wrong, {} stale, \
         {} over their deadline, slowest call {slowest:?}; versioned writes {} acknowledged, {} failed \
         ({} of them begun before the fault), \
         {} acknowledged before the fault lost by the failover; \
         promotion seen {:?} after the fault; writes resumed {:?} after the fault ({:?} after the promotion), \
         bus messages {:?} after the fault ({:?} after the promotion)",
        Load::get(&load.calls),
        Load::get(&load.failed),
        Load::get(&load.wrong),
        Load::get(&load.stale),
        Load::get(&load.over_deadline),
        Load::get(&load.writes_acked),
        Load::get(&load.writes_failed),
        Load::get(&load.writes_failed_in_flight),
        Load::get(&load.lost),
        since(promoted_at, broken_at),
        since(wrote, broken_at),
        since(wrote, promoted_at),
        since(bused, broken_at),
        since(bused, promoted_at),
    );
    assert!(
        Load::get(&load.calls) > TASKS,
        "{topology}: the load never ran"
    );
    assert!(
        Load::get(&load.writes_acked) > TASKS,
        "{topology}: the versioned writes never landed"
    );
    assert_eq!(Load::get(&load.failed), 0, "{topology}: calls failed");
    assert_eq!(
        Load::get(&load.writes_failed_early),
        0,
        "{topology}: versioned writes failed before the fault (the first: {:?})",
        load.first_early_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    );
    assert_eq!(Load::get(&load.wrong), 0, "{topology}: wrong values");
    assert_eq!(Load::get(&load.stale), 0, "{topology}: stale values");
    assert_eq!(
        Load::get(&load.over_deadline),
        0,
        "{topology}: calls overran the deadlines of their operations (slowest {slowest:?})"
    );
    assert!(
        since(wrote, promoted_at) <= RESUME_BOUND,
        "{topology}: writes resumed late"
    );
    assert!(
        since(bused, promoted_at) <= RESUME_BOUND,
        "{topology}: bus messages resumed late"
    );
}

/// The cluster's seeds as a TOML array's items.
fn seeds(cluster: &RedisCluster) -> String {
    cluster
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_dies_under_load() {
    let cluster = Arc::new(RedisCluster::start());
    // The master serving the bus channel: publishing, a third of the keys, and perhaps
    // the subscriptions go down with it.
    let victim = cluster.master_of("fo:__bus");
    let (c1, c2) = (Arc::clone(&cluster), Arc::clone(&cluster));
    failover_under_load(
        "cluster",
        &format!("cluster = [{}]", seeds(&cluster)),
        RedisOptions::cluster(cluster.urls()),
        10_000,
        Fault {
            fault: Box::new(move || c1.kill(victim)),
            promoted: Box::new(move || c2.wait_for_failover(victim).0),
            heal: Box::new(|| {}),
        },
    )
    .await;
}

/// A frozen master (SIGSTOP) answers nothing and closes nothing: each command sent to it
/// waits out its deadline. The calls still end within their operations' deadlines, none
/// fails, and once its replica takes over, writes and bus messages flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_freezes_under_load() {
    let cluster = Arc::new(RedisCluster::start());
    let victim = cluster.master_of("fo:__bus");
    let (c1, c2, c3) = (
        Arc::clone(&cluster),
        Arc::clone(&cluster),
        Arc::clone(&cluster),
    );
    let frozen_at = Arc::new(Mutex::new(None::<Instant>));
    let thawed = Arc::clone(&frozen_at);
    failover_under_load(
        "frozen cluster master",
        &format!("cluster = [{}]", seeds(&cluster)),
        RedisOptions::cluster(cluster.urls()),
        20_000,
        Fault {
            fault: Box::new(move || {
                c1.pause(victim);
                *frozen_at.lock().unwrap() = Some(Instant::now());
            }),
            promoted: Box::new(move || c2.wait_for_failover(victim).0),
            heal: Box::new(move || {
                // Frozen at least FROZEN_FOR (the promotion usually takes longer), then
                // thawed: it rejoins as a replica of the promoted master.
                let since = thawed.lock().unwrap().map(|at| at.elapsed());
                if let Some(left) = since.and_then(|s| FROZEN_FOR.checked_sub(s)) {
                    std::thread::sleep(left);
                }
                c3.resume(victim);
            }),
        },
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
        RedisOptions::sentinel(ha.sentinel_urls(), ha.service()),
        30_000,
        Fault {
            fault: Box::new(move || {
                h1.kill_master();
            }),
            promoted: Box::new(move || h2.wait_for_failover(old).0),
            heal: Box::new(|| {}),
        },
    )
    .await;
}
