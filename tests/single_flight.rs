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

/// The factory's error in `waiters_of_a_failing_leader_take_its_failure`.
#[derive(Debug)]
enum LoadError {
    Database,
    Cache(cachet::CacheError),
}

impl From<cachet::CacheError> for LoadError {
    fn from(err: cachet::CacheError) -> Self {
        LoadError::Cache(err)
    }
}

/// Issue 16: when the leader's factory fails, the callers that waited for it take its
/// failure (`CacheError::LeaderFailed`) instead of each running the factory again, one
/// after another, against the database that just failed. A current-thread runtime makes
/// it deterministic: every caller runs until it waits, at the gate or in the factory.
#[tokio::test(flavor = "current_thread")]
async fn waiters_of_a_failing_leader_take_its_failure() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    let reports = manager.cache("reports").unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let go = Arc::new(tokio::sync::Notify::new());
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let (reports, runs, go) = (reports.clone(), runs.clone(), go.clone());
            tokio::spawn(async move {
                reports
                    .try_get_or_set(&7u64, move || async move {
                        // Only the first run waits, so a caller that runs it again fails
                        // the count below rather than hanging.
                        if runs.fetch_add(1, SeqCst) == 0 {
                            go.notified().await;
                        }
                        Err::<u64, _>(LoadError::Database)
                    })
                    .await
            })
        })
        .collect();
    // Every caller runs until it waits: the first in the factory, the others at the gate.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(runs.load(SeqCst), 1);
    go.notify_one();
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.push(caller.await.unwrap().unwrap_err());
    }
    assert_eq!(runs.load(SeqCst), 1, "the factory ran once, for the leader");
    assert!(
        matches!(outcomes[0], LoadError::Database),
        "{:?}",
        outcomes[0]
    );
    for waiter in &outcomes[1..] {
        assert!(
            matches!(
                waiter,
                LoadError::Cache(cachet::CacheError::LeaderFailed { .. })
            ),
            "{waiter:?}"
        );
    }
    // A failure is not cached: the next call runs the factory again.
    let again: Result<u64, LoadError> = reports.try_get_or_set(&7u64, || async { Ok(8) }).await;
    assert_eq!(again.unwrap(), 8);
}

// ----- issue 16: annotated functions hand the leader's error to their waiters -----

/// Runs ten concurrent calls of `call` on a current-thread runtime (every caller runs until
/// it waits: the first in the function, parked on `go`, the others at the gate), then
/// releases the leader; the outcomes, the leader's first.
async fn ten_callers<T, F>(call: fn() -> F, runs: &AtomicU64, go: &tokio::sync::Notify) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let manager = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    let callers: Vec<_> = (0..10)
        .map(|_| tokio::spawn(with_manager(manager.clone(), call())))
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(runs.load(SeqCst), 1, "the leader runs, the others wait");
    go.notify_one();
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.push(caller.await.unwrap());
    }
    outcomes
}

/// A `Clone` error: each waiter gets a clone of the leader's.
#[derive(Debug, Clone, PartialEq)]
struct Unavailable(u64);

static CLONE_RUNS: AtomicU64 = AtomicU64::new(0);
static CLONE_GO: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

#[cacheable("failing_clone")]
async fn fails_with_a_clone_error(id: u64) -> Result<u64, Unavailable> {
    // Only the first run waits, so a caller that runs it again fails the count below
    // rather than hanging.
    let run = CLONE_RUNS.fetch_add(1, SeqCst);
    if run == 0 {
        CLONE_GO.notified().await;
    }
    Err(Unavailable(id * 100 + run))
}

#[tokio::test(flavor = "current_thread")]
async fn waiters_of_an_annotated_leader_take_a_clone_of_its_error() {
    let outcomes = ten_callers(|| fails_with_a_clone_error(7), &CLONE_RUNS, &CLONE_GO).await;
    assert_eq!(
        CLONE_RUNS.load(SeqCst),
        1,
        "the function ran once, for the leader"
    );
    for outcome in outcomes {
        assert_eq!(outcome, Err(Unavailable(700)), "the leader's own error");
    }
}

/// An error made from `CacheError` (not `Clone`): each waiter gets `LeaderFailed`.
#[derive(Debug)]
enum Converts {
    Database,
    Cache(cachet::CacheError),
}

impl From<cachet::CacheError> for Converts {
    fn from(err: cachet::CacheError) -> Self {
        Converts::Cache(err)
    }
}

static CONVERT_RUNS: AtomicU64 = AtomicU64::new(0);
static CONVERT_GO: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

#[cacheable("failing_convert")]
async fn fails_with_a_converting_error(id: u64) -> Result<u64, Converts> {
    if CONVERT_RUNS.fetch_add(1, SeqCst) == 0 {
        CONVERT_GO.notified().await;
    }
    let _ = id;
    Err(Converts::Database)
}

#[tokio::test(flavor = "current_thread")]
async fn waiters_of_an_annotated_leader_take_leader_failed() {
    let outcomes = ten_callers(
        || fails_with_a_converting_error(7),
        &CONVERT_RUNS,
        &CONVERT_GO,
    )
    .await;
    assert_eq!(
        CONVERT_RUNS.load(SeqCst),
        1,
        "the function ran once, for the leader"
    );
    assert!(
        matches!(outcomes[0], Err(Converts::Database)),
        "{:?}",
        outcomes[0]
    );
    for waiter in &outcomes[1..] {
        assert!(
            matches!(
                waiter,
                Err(Converts::Cache(cachet::CacheError::LeaderFailed { .. }))
            ),
            "{waiter:?}"
        );
    }
}

/// An error cachet can neither clone nor make: each waiter runs the function itself.
#[derive(Debug)]
struct Opaque;

static OPAQUE_RUNS: AtomicU64 = AtomicU64::new(0);
static OPAQUE_GO: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

#[cacheable("failing_opaque")]
async fn fails_with_an_opaque_error(id: u64) -> Result<u64, Opaque> {
    if OPAQUE_RUNS.fetch_add(1, SeqCst) == 0 {
        OPAQUE_GO.notified().await;
    }
    let _ = id;
    Err(Opaque)
}

#[tokio::test(flavor = "current_thread")]
async fn waiters_of_an_opaque_error_run_the_function_themselves() {
    let outcomes = ten_callers(|| fails_with_an_opaque_error(7), &OPAQUE_RUNS, &OPAQUE_GO).await;
    assert!(outcomes.iter().all(Result::is_err));
    assert_eq!(
        OPAQUE_RUNS.load(SeqCst),
        10,
        "as before: one run per waiter"
    );
}
