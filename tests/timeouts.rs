//! Soft timeouts (answer with the stale value, finish in the background), hard timeouts of
//! annotated functions, and eager refresh (refresh in the background before expiry).
//!
//! The functions under test wait on a `Notify` the test releases, so "answered before
//! the function finished" is an ordering, not a race against a clock.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet::testing::with_manager;
use cachet::{cacheable, Cache, CacheError, CacheManager, CacheOptions};
use tokio::sync::Notify;

const TTL: Duration = Duration::from_millis(30);
const SOFT: Duration = Duration::from_millis(20);

/// A manager whose entries go stale after [`TTL`] and stay within grace for an hour.
fn graced(
    build: impl FnOnce(cachet::CacheManagerBuilder) -> cachet::CacheManagerBuilder,
) -> CacheManager {
    let builder = CacheManager::builder()
        .memory_store("memory")
        .ttl(TTL)
        .grace(Duration::from_secs(3600));
    build(builder).build().unwrap()
}

/// Waits until `check` holds, for at most five seconds.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether `future` is still pending after `wait` (it is then dropped).
async fn still_pending<F: Future>(future: F, wait: Duration) -> bool {
    tokio::time::timeout(wait, future).await.is_err()
}

async fn go_stale() {
    tokio::time::sleep(TTL * 2).await;
}

// ----- soft timeout, programmatic -----

/// A factory returning `value` once `release` is notified, counting its runs.
fn blocked(
    release: &Arc<Notify>,
    runs: &Arc<AtomicU64>,
    value: u64,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = u64> + Send>> {
    let (release, runs) = (release.clone(), runs.clone());
    move || {
        Box::pin(async move {
            runs.fetch_add(1, SeqCst);
            release.notified().await;
            value
        })
    }
}

#[tokio::test]
async fn get_or_set_answers_stale_at_the_soft_timeout_and_stores_the_refresh_later() {
    let manager = graced(|b| b.timeout(SOFT));
    let rates = manager.cache("rates").unwrap();
    rates.set(&"eur", &1u64).await.unwrap();
    go_stale().await;

    let (release, runs) = (Arc::new(Notify::new()), Arc::new(AtomicU64::new(0)));
    let answer = rates.get_or_set(&"eur", blocked(&release, &runs, 2)).await;
    assert_eq!(
        answer.unwrap(),
        1,
        "the stale value, while the factory is blocked"
    );
    assert_eq!(runs.load(SeqCst), 1);
    assert_eq!(rates.stats().stale, 1);

    // A caller arriving while the refresh runs is not held past the timeout either, and
    // does not start another run.
    let again = rates.get_or_set(&"eur", blocked(&release, &runs, 3)).await;
    assert_eq!(again.unwrap(), 1);
    assert_eq!(runs.load(SeqCst), 1, "the refresh is already running");

    release.notify_one();
    eventually("the refresh is stored", || async {
        rates.get::<u64, _>(&"eur").await.unwrap() == Some(2)
    })
    .await;
    assert_eq!(runs.load(SeqCst), 1);
}

#[tokio::test]
async fn without_a_stale_value_the_caller_waits_past_the_soft_timeout() {
    let manager = graced(|b| b.timeout(SOFT));
    let rates = manager.cache("rates").unwrap();
    let (release, runs) = (Arc::new(Notify::new()), Arc::new(AtomicU64::new(0)));
    let mut call = std::pin::pin!(rates.get_or_set(&"usd", blocked(&release, &runs, 5)));
    assert!(
        still_pending(&mut call, SOFT * 5).await,
        "nothing to answer with: it waits"
    );
    release.notify_one();
    assert_eq!(call.await.unwrap(), 5);
    assert_eq!(rates.stats().stale, 0);
}

#[tokio::test]
async fn a_soft_timeout_from_toml_applies_per_cache() {
    let manager = CacheManager::from_toml_str(
        r#"
        ttl = "30ms"
        grace = "1h"
        [stores.memory]
        driver = "memory"
        [caches.quick]
        timeout = "20ms"
        "#,
    )
    .unwrap();
    let (quick, patient) = (
        manager.cache("quick").unwrap(),
        manager.cache("patient").unwrap(),
    );
    for cache in [&quick, &patient] {
        cache.set(&1u64, &1u64).await.unwrap();
    }
    go_stale().await;
    let runs = Arc::new(AtomicU64::new(0));
    let (quick_release, patient_release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let answer = quick
        .get_or_set(&1u64, blocked(&quick_release, &runs, 2))
        .await;
    assert_eq!(answer.unwrap(), 1, "stale at the cache's timeout");
    let mut call = std::pin::pin!(patient.get_or_set(&1u64, blocked(&patient_release, &runs, 3)));
    assert!(
        still_pending(&mut call, SOFT * 5).await,
        "no timeout: it waits"
    );
    patient_release.notify_one();
    assert_eq!(call.await.unwrap(), 3);
    quick_release.notify_one();
}

// ----- soft timeout, annotated -----

static QUOTE_RELEASE: Notify = Notify::const_new();
static QUOTE_RUNS: AtomicU64 = AtomicU64::new(0);

/// Detachable: no receiver, no generics, owned arguments.
#[cacheable("quotes")]
async fn quote(symbol: String) -> u64 {
    let run = QUOTE_RUNS.fetch_add(1, SeqCst);
    if run > 0 {
        QUOTE_RELEASE.notified().await;
    }
    100 + run
}

#[tokio::test]
async fn an_annotated_fn_answers_stale_at_the_configured_soft_timeout() {
    let manager = graced(|b| b.timeout(SOFT));
    with_manager(manager.clone(), async {
        assert_eq!(quote("acme".into()).await, 100);
        go_stale().await;
        assert_eq!(
            quote("acme".into()).await,
            100,
            "stale, while the refresh is blocked"
        );
        QUOTE_RELEASE.notify_one();
        eventually("the refresh is stored", || async {
            manager
                .cache("quotes")
                .unwrap()
                .get_fresh::<u64, _>(&"acme")
                .await
                .unwrap()
                == Some(101)
        })
        .await;
        assert_eq!(quote("acme".into()).await, 101);
    })
    .await;
    assert_eq!(QUOTE_RUNS.load(SeqCst), 2);
    assert_eq!(manager.cache("quotes").unwrap().stats().stale, 1);
}

static TICKER_RELEASE: Notify = Notify::const_new();
static TICKER_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("tickers", timeout = "20ms")]
async fn ticker(id: u64) -> Result<u64, String> {
    let run = TICKER_RUNS.fetch_add(1, SeqCst);
    if run > 0 {
        TICKER_RELEASE.notified().await;
    }
    Ok(id + run)
}

#[tokio::test]
async fn the_annotation_sets_its_own_soft_timeout() {
    // No timeout in the manager: the annotation's applies.
    let manager = graced(|b| b);
    with_manager(manager.clone(), async {
        assert_eq!(ticker(10).await, Ok(10));
        go_stale().await;
        assert_eq!(
            ticker(10).await,
            Ok(10),
            "stale at the annotation's timeout"
        );
        TICKER_RELEASE.notify_one();
        eventually("the refresh is stored", || async {
            manager
                .cache("tickers")
                .unwrap()
                .get::<u64, _>(&10u64)
                .await
                .unwrap()
                == Some(11)
        })
        .await;
    })
    .await;
}

static METHOD_RELEASE: Notify = Notify::const_new();
static METHOD_RUNS: AtomicU64 = AtomicU64::new(0);

struct Catalog;

impl Catalog {
    /// Not detachable: its future borrows `self`.
    #[cacheable("catalog", timeout = "20ms")]
    async fn price(&self, id: u64) -> u64 {
        let run = METHOD_RUNS.fetch_add(1, SeqCst);
        if run > 0 {
            METHOD_RELEASE.notified().await;
        }
        id + run
    }
}

#[tokio::test]
async fn a_method_borrowing_self_waits_for_its_function() {
    with_manager(graced(|b| b), async {
        let catalog = Catalog;
        assert_eq!(catalog.price(1).await, 1);
        go_stale().await;
        let mut call = std::pin::pin!(catalog.price(1));
        assert!(
            still_pending(&mut call, SOFT * 5).await,
            "the soft timeout does not apply to a method"
        );
        METHOD_RELEASE.notify_one();
        assert_eq!(call.await, 2);
    })
    .await;
}

// ----- hard timeout, annotated -----

#[derive(Debug, PartialEq)]
enum FeedError {
    Timeout,
}

impl From<CacheError> for FeedError {
    fn from(err: CacheError) -> Self {
        match err {
            CacheError::Timeout { .. } => FeedError::Timeout,
            other => panic!("unexpected {other}"),
        }
    }
}

static FEED_RELEASE: Notify = Notify::const_new();
static FEED_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("feeds", hard_timeout = "20ms")]
async fn feed(id: u64) -> Result<u64, FeedError> {
    let run = FEED_RUNS.fetch_add(1, SeqCst);
    if run > 0 {
        FEED_RELEASE.notified().await;
    }
    Ok(id + run)
}

#[tokio::test]
async fn a_hard_timeout_returns_the_timeout_error_or_the_stale_value() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .ttl(TTL)
        .build()
        .unwrap();
    with_manager(manager, async {
        assert_eq!(feed(1).await, Ok(1));
        go_stale().await; // no grace: expired
        assert_eq!(feed(1).await, Err(FeedError::Timeout));
    })
    .await;
    // Within grace, the stale value is served instead of the error.
    with_manager(graced(|b| b), async {
        FEED_RUNS.store(0, SeqCst);
        assert_eq!(feed(2).await, Ok(2));
        go_stale().await;
        assert_eq!(feed(2).await, Ok(2));
    })
    .await;
}

static PLAIN_RELEASE: Notify = Notify::const_new();

/// Returns no `Result` whose error converts from `CacheError`: nothing to give up with.
#[cacheable("plain", hard_timeout = "20ms")]
async fn plain_value(id: u64) -> u64 {
    PLAIN_RELEASE.notified().await;
    id
}

#[tokio::test]
async fn a_hard_timeout_without_an_error_to_return_waits() {
    with_manager(graced(|b| b), async {
        let mut call = std::pin::pin!(plain_value(4));
        assert!(still_pending(&mut call, SOFT * 5).await);
        PLAIN_RELEASE.notify_one();
        assert_eq!(call.await, 4);
    })
    .await;
}

// ----- eager refresh -----

const LONG_TTL: Duration = Duration::from_secs(3);
/// The window starts 150ms after a write: reached with a short sleep, far from expiry.
const EARLY: f64 = 0.05;

fn eager() -> CacheManager {
    CacheManager::builder()
        .memory_store("memory")
        .ttl(LONG_TTL)
        .eager_refresh(EARLY)
        .build()
        .unwrap()
}

async fn into_the_window() {
    tokio::time::sleep(LONG_TTL.mul_f64(EARLY) + Duration::from_millis(50)).await;
}

#[tokio::test]
async fn get_or_set_refreshes_once_in_the_background_late_in_the_ttl() {
    let manager = eager();
    let prices = manager.cache("prices").unwrap();
    let (release, runs) = (Arc::new(Notify::new()), Arc::new(AtomicU64::new(0)));
    let first = prices.get_or_set(&1u64, || async { 1u64 }).await.unwrap();
    assert_eq!(first, 1);

    // Before the window: a plain hit.
    assert_eq!(
        prices
            .get_or_set(&1u64, blocked(&release, &runs, 9))
            .await
            .unwrap(),
        1
    );
    tokio::task::yield_now().await;
    assert_eq!(runs.load(SeqCst), 0, "no refresh before the window");

    into_the_window().await;
    // In the window: the cached value at once (the factory is blocked), one refresh.
    for _ in 0..5 {
        let hit = prices.get_or_set(&1u64, blocked(&release, &runs, 2)).await;
        assert_eq!(hit.unwrap(), 1);
    }
    eventually("the refresh started", || async { runs.load(SeqCst) == 1 }).await;
    release.notify_one();
    eventually("the refresh is stored", || async {
        prices.get::<u64, _>(&1u64).await.unwrap() == Some(2)
    })
    .await;
    assert_eq!(runs.load(SeqCst), 1, "concurrent hits started one refresh");
}

static EAGER_RELEASE: Notify = Notify::const_new();
static EAGER_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("forecasts", eager_refresh = 0.05)]
async fn forecast(city: String) -> u64 {
    let run = EAGER_RUNS.fetch_add(1, SeqCst);
    if run > 0 {
        EAGER_RELEASE.notified().await;
    }
    run
}

#[tokio::test]
async fn an_annotated_fn_refreshes_once_in_the_background_late_in_the_ttl() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .ttl(LONG_TTL)
        .build()
        .unwrap();
    with_manager(manager.clone(), async {
        assert_eq!(forecast("oslo".into()).await, 0);
        assert_eq!(forecast("oslo".into()).await, 0);
        tokio::task::yield_now().await;
        assert_eq!(EAGER_RUNS.load(SeqCst), 1, "no refresh before the window");
        into_the_window().await;
        let hits = futures_util::future::join_all((0..5).map(|_| forecast("oslo".into()))).await;
        assert_eq!(
            hits, [0; 5],
            "the cached value at once, the refresh being blocked"
        );
        eventually("the refresh started", || async {
            EAGER_RUNS.load(SeqCst) == 2
        })
        .await;
        EAGER_RELEASE.notify_one();
        let forecasts: Cache = manager.cache("forecasts").unwrap();
        eventually("the refresh is stored", || async {
            forecasts.get::<u64, _>(&"oslo").await.unwrap() == Some(1)
        })
        .await;
        assert_eq!(forecast("oslo".into()).await, 1);
    })
    .await;
    assert_eq!(
        EAGER_RUNS.load(SeqCst),
        2,
        "concurrent hits started one refresh"
    );
}

#[test]
fn eager_refresh_out_of_range_is_a_config_error() {
    let err = CacheManager::builder()
        .cache_options("users", CacheOptions::new().eager_refresh(1.0))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("`caches.users.eager_refresh`"), "{err}");
    assert!(err.contains("strictly between 0 and 1"), "{err}");
    let err = CacheManager::from_toml_str("eager_refresh = 0.0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`eager_refresh`"), "{err}");
}

static NESTED_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("nested_inner")]
async fn nested_inner(id: u64) -> u64 {
    id
}

#[cacheable("nested_outer", eager_refresh = 0.05)]
async fn nested_outer(id: u64) -> u64 {
    let run = NESTED_RUNS.fetch_add(1, SeqCst);
    nested_inner(id * 100 + run).await
}

#[tokio::test]
async fn a_background_refresh_keeps_the_callers_testing_scope() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .ttl(LONG_TTL)
        .build()
        .unwrap();
    let inner = manager.cache("nested_inner").unwrap();
    with_manager(manager.clone(), async {
        assert_eq!(nested_outer(1).await, 100);
        into_the_window().await;
        assert_eq!(nested_outer(1).await, 100);
    })
    .await;
    // The refresh's own cached call went to the scoped manager, not the global one.
    eventually("the refresh's nested call is stored", || async {
        inner.get::<u64, _>(&101u64).await.unwrap() == Some(101)
    })
    .await;
}

// ----- plain fns -----

static SYNC_RUNS: AtomicU64 = AtomicU64::new(0);
/// Held by the test while the refresh must stay blocked.
static SYNC_BLOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cacheable("sync_quotes", timeout = "20ms")]
fn sync_quote(id: u64) -> u64 {
    let run = SYNC_RUNS.fetch_add(1, SeqCst);
    if run > 0 {
        drop(SYNC_BLOCK.lock());
    }
    id + run
}

#[test]
fn a_plain_fn_answers_stale_at_the_soft_timeout_and_refreshes_on_a_blocking_thread() {
    let manager = graced(|b| b);
    cachet::testing::with_manager_sync(manager.clone(), || {
        assert_eq!(sync_quote(1), 1);
        std::thread::sleep(TTL * 2);
        let held = SYNC_BLOCK.lock();
        assert_eq!(
            sync_quote(1),
            1,
            "the stale value, while the body is blocked"
        );
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(5);
        while sync_quote(1) != 2 {
            assert!(Instant::now() < deadline, "the refresh was never stored");
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert_eq!(SYNC_RUNS.load(SeqCst), 2);
    assert!(manager.cache("sync_quotes").unwrap().stats().stale >= 1);
}

static SYNC_EAGER_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("sync_forecasts", eager_refresh = 0.05)]
fn sync_forecast(city: String) -> u64 {
    let _ = city;
    SYNC_EAGER_RUNS.fetch_add(1, SeqCst)
}

#[test]
fn a_plain_fn_refreshes_in_the_background_late_in_the_ttl() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .ttl(LONG_TTL)
        .build()
        .unwrap();
    cachet::testing::with_manager_sync(manager, || {
        assert_eq!(sync_forecast("rome".into()), 0);
        assert_eq!(sync_forecast("rome".into()), 0);
        assert_eq!(
            SYNC_EAGER_RUNS.load(SeqCst),
            1,
            "no refresh before the window"
        );
        std::thread::sleep(LONG_TTL.mul_f64(EARLY) + Duration::from_millis(50));
        assert_eq!(sync_forecast("rome".into()), 0, "the cached value at once");
        let deadline = Instant::now() + Duration::from_secs(5);
        while sync_forecast("rome".into()) != 1 {
            assert!(Instant::now() < deadline, "the refresh was never stored");
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert_eq!(SYNC_EAGER_RUNS.load(SeqCst), 2);
}
