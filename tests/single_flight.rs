//! Single flight: concurrent misses on one key run the function once, and a leader that
//! panics or is cancelled never leaves the others hanging.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cachet::testing::with_manager;
use cachet::{cacheable, CacheManager};

static SLOW_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("flight")]
async fn slow(id: u64) -> u64 {
    SLOW_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    id * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_callers_run_the_function_once() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    let callers: Vec<_> = (0..200)
        .map(|_| tokio::spawn(with_manager(manager.clone(), slow(21))))
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 42);
    }
    assert_eq!(SLOW_RUNS.load(SeqCst), 1);
    assert_eq!(manager.cache("flight").unwrap().stats().misses, 1);
}

static PANICKY_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("flight")]
async fn panics_first(id: u64) -> u64 {
    let run = PANICKY_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    if run == 0 {
        panic!("the first run fails");
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_leader_hands_over_to_a_waiter() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    let leader = tokio::spawn(with_manager(manager.clone(), panics_first(7)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let waiters: Vec<_> = (0..20)
        .map(|_| tokio::spawn(with_manager(manager.clone(), panics_first(7))))
        .collect();
    assert!(leader.await.unwrap_err().is_panic());
    for waiter in waiters {
        let answer = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("a waiter hangs");
        assert_eq!(answer.unwrap(), 7);
    }
    assert_eq!(PANICKY_RUNS.load(SeqCst), 2, "the leader, then one waiter");
}

static STUCK_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("flight")]
async fn stuck_first(id: u64) -> u64 {
    if STUCK_RUNS.fetch_add(1, SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_over_to_a_waiter() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    let leader = tokio::spawn(with_manager(manager.clone(), stuck_first(3)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let waiters: Vec<_> = (0..20)
        .map(|_| tokio::spawn(with_manager(manager.clone(), stuck_first(3))))
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    leader.abort();
    for waiter in waiters {
        let answer = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("a waiter hangs");
        assert_eq!(answer.unwrap(), 3);
    }
    assert_eq!(
        STUCK_RUNS.load(SeqCst),
        2,
        "the cancelled leader, then one waiter"
    );
}

static SYNC_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("flight")]
fn slow_sync(id: u64) -> u64 {
    SYNC_RUNS.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    id + 1
}

#[test]
fn plain_functions_on_many_threads_run_once() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    let manager = Arc::new(manager);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let manager = manager.clone();
            std::thread::spawn(move || {
                cachet::testing::with_manager_sync((*manager).clone(), || slow_sync(1))
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 2);
    }
    assert_eq!(SYNC_RUNS.load(SeqCst), 1);
}
