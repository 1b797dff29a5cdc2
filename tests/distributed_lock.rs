//! Stampede protection across instances: a store with `lock = "redis"` runs a cold key's
//! function once across every process sharing its Redis, against real `redis-server`s.
//! The acceptance test starts this test binary again as a second OS process.
#![cfg(feature = "redis")]

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cachet::testing::{with_manager, with_manager_sync};
use cachet::{cacheable, CacheManager};
use support::redis_server::RedisServer;
use support::{eventually, redis_cli};

const PORT_VAR: &str = "CACHET_LOCK_TEST_REDIS_PORT";
const CALLERS: usize = 100;

/// A tiered store on the server at `port`, with the distributed lock held at most
/// `lock_timeout`, or without it.
fn manager(port: u16, lock_timeout: Option<&str>) -> CacheManager {
    let lock = match lock_timeout {
        Some(timeout) => format!("lock = \"redis\"\nlock_timeout = \"{timeout}\""),
        None => String::new(),
    };
    CacheManager::from_toml_str(&format!(
        r#"
        prefix = "lockt"
        [stores.tiered]
        l1 = {{ driver = "memory", max_entries = 100 }}
        l2 = {{ driver = "redis", url = "redis://127.0.0.1:{port}/0" }}
        {lock}
        "#
    ))
    .unwrap()
}

/// Runs `redis-cli` off the async workers.
async fn cli(port: u16, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        redis_cli(port, &args)
    })
    .await
    .unwrap()
}

/// The function every instance computes: it counts its runs in Redis (shared by the
/// processes), records who held the key's lock while it ran, and takes 100 ms.
#[cacheable("reports", skip(port))]
async fn report(port: u16, id: u64) -> u64 {
    let holder = cli(port, &["GET", &format!("lockt:~lock:reports:{id}")]).await;
    cli(port, &["RPUSH", "test:holders", &holder]).await;
    cli(port, &["INCR", "test:runs"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    id * 1000
}

/// `report`'s runs so far, across processes.
fn runs(port: u16) -> String {
    redis_cli(port, &["GET", "test:runs"])
}

/// Waits until `parties` processes have arrived, so their callers start together.
async fn barrier(port: u16, parties: usize) {
    cli(port, &["INCR", "test:ready"]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while cli(port, &["GET", "test:ready"]).await != parties.to_string() {
        assert!(Instant::now() < deadline, "the other process never arrived");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `CALLERS` concurrent callers (each its own task) of `report(port, 7)`; returns how
/// long the slowest took, in ms.
async fn hundred_callers(manager: &CacheManager, port: u16) -> u128 {
    let start = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| tokio::spawn(with_manager(manager.clone(), report(port, 7))))
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 7000);
    }
    start.elapsed().as_millis()
}

/// How many times Redis ran `EVAL` (the lock's compare-and-delete).
fn evals(port: u16) -> u64 {
    redis_cli(port, &["INFO", "commandstats"])
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_eval:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_with_a_hundred_callers_each_run_a_cold_key_once() {
    let server = RedisServer::start();
    let port = server.port();
    let manager = manager(port, Some("10s"));
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_process_hundred_callers",
            "--ignored",
            "--nocapture",
        ])
        .env(PORT_VAR, port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    barrier(port, 2).await;
    let took = hundred_callers(&manager, port).await;
    let child = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "the second process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(
        stdout.contains("second process: 100 callers got 7000"),
        "{stdout}"
    );
    assert_eq!(runs(port), "1", "200 callers in two processes, one run");
    let child_took = stdout
        .lines()
        .find_map(|l| l.strip_prefix("second process took "))
        .unwrap_or("?");
    println!(
        "two processes x {CALLERS} callers, a 100 ms function: one run; callers done in {took} ms here, {child_took} there"
    );
    let holder = redis_cli(port, &["LINDEX", "test:holders", "0"]);
    assert!(!holder.is_empty(), "the function ran holding the lock");
    eventually("the holder releases its lock", async || {
        cli(port, &["EXISTS", "lockt:~lock:reports:7"]).await == "0"
    })
    .await;
}

/// The second process: run only as the child of the test above (ignored otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by two_processes_with_a_hundred_callers_each_run_a_cold_key_once"]
async fn second_process_hundred_callers() {
    let port: u16 = std::env::var(PORT_VAR)
        .expect("started by the two-process test, with the Redis port")
        .parse()
        .unwrap();
    let manager = manager(port, Some("10s"));
    barrier(port, 2).await;
    let took = hundred_callers(&manager, port).await;
    println!("second process: {CALLERS} callers got 7000");
    println!("second process took {took} ms");
    // When this process held the lock, its release runs in the background once the value is
    // stored: exiting at once could drop it (the lock then expires, after `lock_timeout`).
    eventually("the holder releases its lock", async || {
        cli(port, &["EXISTS", "lockt:~lock:reports:7"]).await == "0"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holder_delays_callers_until_its_lock_expires_then_one_runs() {
    let server = RedisServer::start();
    let port = server.port();
    let manager = manager(port, Some("10s"));
    // A holder that took the lock and died: never released, gone after its PX.
    cli(port, &["SET", "lockt:~lock:reports:7", "dead", "PX", "700"]).await;
    let start = Instant::now();
    let callers: Vec<_> = (0..20)
        .map(|_| tokio::spawn(with_manager(manager.clone(), report(port, 7))))
        .collect();
    for caller in callers {
        let value = tokio::time::timeout(Duration::from_secs(30), caller)
            .await
            .expect("callers wait for the dead holder's lock to expire, not forever");
        assert_eq!(value.unwrap(), 7000);
    }
    println!(
        "a dead holder's 700 ms lock delayed the callers {} ms",
        start.elapsed().as_millis()
    );
    assert_eq!(runs(port), "1");
    let holder = redis_cli(port, &["LINDEX", "test:holders", "0"]);
    assert!(
        !holder.is_empty() && holder != "dead",
        "the function ran once the dead holder's lock was gone, holding its own; found {holder:?}"
    );
}

#[cacheable("stolen", skip(port))]
async fn stolen(port: u16, id: u64) -> u64 {
    // As if this holder's lock expired meanwhile and another instance took it.
    cli(
        port,
        &[
            "SET",
            &format!("lockt:~lock:stolen:{id}"),
            "thief",
            "PX",
            "60000",
        ],
    )
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_never_deletes_another_holders_lock() {
    let server = RedisServer::start();
    let port = server.port();
    let manager = manager(port, Some("10s"));
    with_manager(manager, async {
        assert_eq!(stolen(port, 1).await, 1);
        eventually("the release was attempted", async || evals(port) >= 1).await;
        assert_eq!(
            cli(port, &["GET", "lockt:~lock:stolen:1"]).await,
            "thief",
            "the other holder's lock survives our release"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lock_the_lock_key_is_never_consulted() {
    let server = RedisServer::start();
    let port = server.port();
    cli(
        port,
        &["SET", "lockt:~lock:reports:7", "someone", "PX", "60000"],
    )
    .await;
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        with_manager(manager(port, None), report(port, 7)),
    )
    .await
    .expect("a store without `lock` does not wait for a lock");
    assert_eq!(answer, 7000);
    assert_eq!(runs(port), "1");
    assert_eq!(
        cli(port, &["GET", "lockt:~lock:reports:7"]).await,
        "someone"
    );
    assert_eq!(evals(port), 0, "no lock released either");
}

static OFFLINE_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("offline")]
async fn offline(id: u64) -> u64 {
    OFFLINE_RUNS.fetch_add(1, SeqCst);
    id + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_calls_run_without_the_lock() {
    let server = RedisServer::start();
    let manager = manager(server.port(), Some("10s"));
    server.kill();
    with_manager(manager, async {
        assert_eq!(offline(1).await, 2);
        assert_eq!(offline(2).await, 3);
    })
    .await;
    assert_eq!(OFFLINE_RUNS.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_leaves_locks_alone() {
    let server = RedisServer::start();
    let port = server.port();
    with_manager(manager(port, Some("10s")), async {
        let reports = cachet::cache("reports").unwrap();
        reports.set(&9u64, &9000u64).await.unwrap();
        cli(
            port,
            &["SET", "lockt:~lock:reports:9", "busy", "PX", "60000"],
        )
        .await;
        reports.clear().await.unwrap();
        assert_eq!(cli(port, &["EXISTS", "lockt:reports:9"]).await, "0");
        assert_eq!(cli(port, &["GET", "lockt:~lock:reports:9"]).await, "busy");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_call_on_its_own_key_inside_the_function_does_not_wait_for_itself() {
    let server = RedisServer::start();
    // A wait for itself would last until the lock expired: 60 s, past the timeout below.
    let manager = manager(server.port(), Some("60s"));
    with_manager(manager, async {
        let nested = cachet::cache("nested").unwrap();
        let inner = nested.clone();
        let value: u64 = tokio::time::timeout(
            Duration::from_secs(20),
            nested.get_or_set(&1u64, || async move {
                inner.get_or_set(&1u64, || async { 5u64 }).await.unwrap() + 1
            }),
        )
        .await
        .expect("no wait for its own lock")
        .unwrap();
        assert_eq!(value, 6);
    })
    .await;
}

#[cacheable("plain", skip(port))]
fn plain_report(port: u16, id: u64) -> u64 {
    let holder = redis_cli(port, &["GET", &format!("lockt:~lock:plain:{id}")]);
    redis_cli(port, &["RPUSH", "test:holders", &holder]);
    redis_cli(port, &["INCR", "test:runs"]);
    id * 10
}

/// A plain fn outside any runtime waits for the lock too, and releases its own.
#[test]
fn a_plain_fn_outside_any_runtime_waits_for_the_lock() {
    let server = RedisServer::start();
    let port = server.port();
    redis_cli(port, &["SET", "lockt:~lock:plain:3", "dead", "PX", "300"]);
    let answer = with_manager_sync(manager(port, Some("10s")), || plain_report(port, 3));
    assert_eq!(answer, 30);
    assert_eq!(runs(port), "1");
    let holder = redis_cli(port, &["LINDEX", "test:holders", "0"]);
    assert!(!holder.is_empty() && holder != "dead", "{holder:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis_cli(port, &["EXISTS", "lockt:~lock:plain:3"]) != "0" {
        assert!(Instant::now() < deadline, "the lock was never released");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fails on its first run (after 200 ms), succeeds afterwards; runs counted in Redis.
#[cacheable("flaky", skip(port))]
async fn flaky(port: u16, id: u64) -> Result<u64, String> {
    let run = cli(port, &["INCR", "test:runs"]).await;
    if run == "1" {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cli(port, &["SET", "test:first-failed", "yes"]).await;
        return Err("the database is down".into());
    }
    // Whether the first run had finished when this one started.
    let first_failed = cli(port, &["GET", "test:first-failed"]).await;
    cli(port, &["RPUSH", "test:holders", &first_failed]).await;
    Ok(id)
}

/// Two managers on one Redis play two instances: the first holder's function fails, and
/// the other instance's waiter takes over at once, not when the lock would expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_holder_hands_over_without_waiting_for_its_lock_to_expire() {
    let server = RedisServer::start();
    let port = server.port();
    let first = tokio::spawn(with_manager(manager(port, Some("60s")), flaky(port, 5)));
    eventually("the first instance holds the lock", async || {
        cli(port, &["EXISTS", "lockt:~lock:flaky:5"]).await == "1"
    })
    .await;
    let second = tokio::time::timeout(
        Duration::from_secs(20),
        with_manager(manager(port, Some("60s")), flaky(port, 5)),
    )
    .await
    .expect("handed over on release, long before the 60 s lock would expire");
    assert_eq!(first.await.unwrap(), Err("the database is down".to_owned()));
    assert_eq!(second, Ok(5));
    assert_eq!(runs(port), "2");
    assert_eq!(
        redis_cli(port, &["LINDEX", "test:holders", "0"]),
        "yes",
        "the second instance ran only after the first had failed"
    );
}
