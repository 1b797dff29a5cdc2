//! Grace periods: an entry past its TTL but within grace is served when refreshing it fails
//! (an `Err` or a panic); the failure is counted, not returned. Time is a manual clock, so
//! no test sleeps past a TTL.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use cachet::testing::{with_manager, ManualClock};
use cachet::{cacheable, CacheManager};
use clocked::memory_on;

#[path = "support/clocked.rs"]
mod clocked;

static FAIL: AtomicBool = AtomicBool::new(false);
static PANIC: AtomicBool = AtomicBool::new(false);
static RUNS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, PartialEq)]
struct Down;

#[cacheable("rates")]
async fn rate(currency: &str) -> Result<u64, Down> {
    let run = RUNS.fetch_add(1, SeqCst);
    if PANIC.load(SeqCst) {
        panic!("the rates service crashed");
    }
    if FAIL.load(SeqCst) {
        return Err(Down);
    }
    Ok(100 + run)
}

fn manager(clock: &ManualClock, grace: Option<Duration>) -> CacheManager {
    let builder = CacheManager::builder()
        .memory_store("memory")
        .manual_clock(clock.clone())
        .ttl(Duration::from_secs(30));
    match grace {
        Some(grace) => builder.grace(grace),
        None => builder,
    }
    .build()
    .unwrap()
}

/// One test, because the function's failure switches are process-wide.
#[tokio::test]
async fn stale_values_are_served_when_the_refresh_fails_within_grace() {
    let clock = ManualClock::new();
    let with_grace = manager(&clock, Some(Duration::from_secs(3600)));
    with_manager(with_grace.clone(), async {
        FAIL.store(false, SeqCst);
        let fresh = rate("eur").await.unwrap();
        clock.advance(Duration::from_secs(31)); // past the TTL, within grace

        FAIL.store(true, SeqCst);
        assert_eq!(
            rate("eur").await,
            Ok(fresh),
            "an Err is replaced by the stale value"
        );

        FAIL.store(false, SeqCst);
        PANIC.store(true, SeqCst);
        assert_eq!(
            rate("eur").await,
            Ok(fresh),
            "a panic is replaced by the stale value"
        );
        PANIC.store(false, SeqCst);

        let refreshed = rate("eur").await.unwrap();
        assert_ne!(
            refreshed, fresh,
            "a successful refresh replaces the stale value"
        );
        assert_eq!(rate("eur").await.unwrap(), refreshed, "and is fresh again");
    })
    .await;
    assert_eq!(with_grace.cache("rates").unwrap().stats().stale, 2);

    // Without grace, the expired entry is gone: the error is returned.
    with_manager(manager(&clock, None), async {
        FAIL.store(false, SeqCst);
        rate("usd").await.unwrap();
        clock.advance(Duration::from_secs(31));
        FAIL.store(true, SeqCst);
        assert_eq!(rate("usd").await, Err(Down));
        FAIL.store(false, SeqCst);
    })
    .await;
}

static BACKOFF_FAIL: AtomicBool = AtomicBool::new(false);
static BACKOFF_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("backoff")]
async fn feed(id: u64) -> Result<u64, Down> {
    let run = BACKOFF_RUNS.fetch_add(1, SeqCst);
    if BACKOFF_FAIL.load(SeqCst) {
        Err(Down)
    } else {
        Ok(id * 1000 + run)
    }
}

#[tokio::test]
async fn grace_backoff_serves_the_stale_value_without_retrying_for_a_while() {
    let clock = ManualClock::new();
    let manager = memory_on(&clock, Duration::from_secs(30), Duration::from_secs(3600))
        .grace_backoff(Duration::from_secs(3600))
        .build()
        .unwrap();
    with_manager(manager, async {
        let first = feed(1).await.unwrap();
        clock.advance(Duration::from_secs(31));
        BACKOFF_FAIL.store(true, SeqCst);
        assert_eq!(feed(1).await, Ok(first), "stale value served");
        let runs = BACKOFF_RUNS.load(SeqCst);
        BACKOFF_FAIL.store(false, SeqCst);
        for _ in 0..3 {
            assert_eq!(
                feed(1).await,
                Ok(first),
                "still the stale value: backing off"
            );
        }
        assert_eq!(
            BACKOFF_RUNS.load(SeqCst),
            runs,
            "the function was not called during the backoff"
        );
    })
    .await;
}

static ENDLESS_FAIL: AtomicBool = AtomicBool::new(false);

#[cacheable("endless")]
async fn flaky(id: u64) -> Result<u64, Down> {
    if ENDLESS_FAIL.load(SeqCst) {
        Err(Down)
    } else {
        Ok(id)
    }
}

#[tokio::test]
async fn backing_off_never_extends_the_grace_period() {
    let clock = ManualClock::new();
    let manager = memory_on(&clock, Duration::from_secs(40), Duration::from_secs(150))
        .grace_backoff(Duration::from_secs(30))
        .build()
        .unwrap();
    with_manager(manager, async {
        assert_eq!(flaky(9).await, Ok(9));
        ENDLESS_FAIL.store(true, SeqCst);
        // Fail again and again, 10 s apart, through TTL + grace (190 s after the write):
        // each backoff stores the stale value back, never past the end of its grace.
        let mut served = Vec::new();
        for _ in 0..40 {
            clock.advance(Duration::from_secs(10));
            served.push(flaky(9).await);
        }
        let until = served.iter().position(|r| r.is_err()).expect("grace ends");
        assert!(served[..until].iter().all(|r| *r == Ok(9)), "{served:?}");
        assert!(
            served[until..].iter().all(|r| *r == Err(Down)),
            "{served:?}"
        );
        assert_eq!(
            until, 18,
            "the stale value is served until 190 s after the write: {served:?}"
        );
    })
    .await;
    ENDLESS_FAIL.store(false, SeqCst);
}

static EDGE_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("edge")]
async fn edge(id: u64) -> u64 {
    id * 1000 + EDGE_RUNS.fetch_add(1, SeqCst)
}

/// An annotated call's entry is fresh until the very instant its TTL ends and stale from
/// that instant on: its hit path judges the entry as the full lookup does (a `fresh_until`
/// at `now` is past).
#[tokio::test]
async fn an_entry_is_stale_from_the_instant_its_ttl_ends() {
    let clock = ManualClock::new();
    with_manager(manager(&clock, Some(Duration::from_secs(3600))), async {
        let first = edge(1).await;
        clock.advance(Duration::from_secs(30) - Duration::from_millis(1));
        assert_eq!(
            edge(1).await,
            first,
            "fresh a millisecond before its TTL ends"
        );
        clock.advance(Duration::from_millis(1));
        assert_ne!(
            edge(1).await,
            first,
            "served as fresh at the instant its TTL ends"
        );
    })
    .await;
}
