//! Soft timeouts (answer with the stale value, finish in the background), hard timeouts of
//! annotated functions, and eager refresh (refresh in the background before expiry).
//!
//! The functions under test wait on a `Notify` the test releases, so "answered before
//! the function finished" is an ordering, not a race against a clock; and the managers read
//! a [`ManualClock`], so entries go stale and timeouts fire when the test moves the clock,
//! not after real time. No test waits for time to pass to make something happen (only
//! deadline polls pause between looks), and none asserts on how long something took.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet::testing::{with_manager, ManualClock};
use cachet::{cacheable, Cache, CacheError, CacheManager, CacheOptions};
use futures_util::FutureExt;
use tokio::sync::Notify;

const TTL: Duration = Duration::from_millis(30);
const SOFT: Duration = Duration::from_millis(20);

/// A manager on a manual clock whose entries go stale after [`TTL`] and stay within grace
/// for an hour.
fn graced(
    build: impl FnOnce(cachet::CacheManagerBuilder) -> cachet::CacheManagerBuilder,
) -> (CacheManager, ManualClock) {
    let clock = ManualClock::new();
    let builder = CacheManager::builder()
        .memory_store("memory")
        .ttl(TTL)
        .grace(Duration::from_secs(3600))
        .manual_clock(clock.clone());
    (build(builder).build().unwrap(), clock)
}

/// Polls `call` until it waits (on the clock, a gate or its function), without moving
/// the clock; its output if it answered.
async fn run_until_it_waits<F: Future + Unpin>(call: &mut F) -> Option<F::Output> {
    for _ in 0..20 {
        if let Some(out) = (&mut *call).now_or_never() {
            return Some(out);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// Drives `call` to its answer, moving `clock` on by `step` each time it waits: a soft
/// or hard timeout fires once the clock has passed it.
async fn answer<F: Future>(clock: &ManualClock, step: Duration, call: F) -> F::Output {
    let mut call = std::pin::pin!(call);
    for _ in 0..1000 {
        if let Some(out) = run_until_it_waits(&mut call).await {
            return out;
        }
        clock.advance(step);
    }
    panic!("no answer however far the clock moved");
}

/// Whether `call` still waits once `clock` has moved `by` past now.
async fn waits_past<F: Future + Unpin>(clock: &ManualClock, by: Duration, call: &mut F) -> bool {
    if run_until_it_waits(call).await.is_some() {
        return false;
    }
    clock.advance(by);
    run_until_it_waits(call).await.is_none()
}

/// Runs `f` on this thread (a plain fn blocks it) while another thread moves `clock` on by
/// `step`, polling, until `f` returns.
fn while_the_clock_moves<T>(clock: &ManualClock, step: Duration, f: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(SeqCst) {
                clock.advance(step);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let out = f();
        done.store(true, SeqCst);
        out
    })
}

/// Waits until `check` holds, for at most five seconds.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Moves `clock` past the entries' TTL (within grace).
fn go_stale(clock: &ManualClock) {
    clock.advance(TTL * 2);
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
    let (manager, clock) = graced(|b| b.timeout(SOFT));
    let rates = manager.cache("rates").unwrap();
    rates.set(&"eur", &1u64).await.unwrap();
    go_stale(&clock);

    let (release, runs) = (Arc::new(Notify::new()), Arc::new(AtomicU64::new(0)));
    let first = answer(
        &clock,
        SOFT,
        rates.get_or_set_detached(&"eur", blocked(&release, &runs, 2)),
    )
    .await;
    assert_eq!(
        first.unwrap(),
        1,
        "the stale value, while the factory is blocked"
    );
    assert_eq!(runs.load(SeqCst), 1);
    assert_eq!(rates.stats().stale, 1);

    // A caller arriving while the refresh runs is not held past the timeout either, and
    // does not start another run.
    let again = answer(
        &clock,
        SOFT,
        rates.get_or_set_detached(&"eur", blocked(&release, &runs, 3)),
    )
    .await;
    assert_eq!(again.unwrap(), 1);
    assert_eq!(runs.load(SeqCst), 1, "the refresh is already running");

    release.notify_one();
    eventually("the refresh is stored", || async {
        rates.get::<u64>(&"eur").await.unwrap() == Some(2)
    })
    .await;
    assert_eq!(runs.load(SeqCst), 1);
}

#[tokio::test]
async fn without_a_stale_value_the_caller_waits_past_the_soft_timeout() {
    let (manager, clock) = graced(|b| b.timeout(SOFT));
    let rates = manager.cache("rates").unwrap();
    let (release, runs) = (Arc::new(Notify::new()), Arc::new(AtomicU64::new(0)));
    let mut call = std::pin::pin!(rates.get_or_set_detached(&"usd", blocked(&release, &runs, 5)));
    assert!(
        waits_past(&clock, SOFT * 5, &mut call).await,
        "nothing to answer with: it waits"
    );
    release.notify_one();
    assert_eq!(call.await.unwrap(), 5);
    assert_eq!(rates.stats().stale, 0);
}

/// A manager from TOML reads the real clock, so this one waits for real time to pass, by
/// polling; what it asserts is still an order: the cache with a timeout answered (its 20 ms
/// passed), the one without still waits for its function.
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
        eventually("the entry is stale", || async {
            cache.get_fresh::<u64>(&1u64).await.unwrap().is_none()
        })
        .await;
    }
    let runs = Arc::new(AtomicU64::new(0));
    let (quick_release, patient_release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut call =
        std::pin::pin!(patient.get_or_set_detached(&1u64, blocked(&patient_release, &runs, 3)));
    assert!(run_until_it_waits(&mut call).await.is_none());
    let answer = quick
        .get_or_set_detached(&1u64, blocked(&quick_release, &runs, 2))
        .await;
    assert_eq!(answer.unwrap(), 1, "stale at the cache's timeout");
    assert!(
        run_until_it_waits(&mut call).await.is_none(),
        "no timeout: it still waits, after the other cache's timeout passed"
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
    let (manager, clock) = graced(|b| b.timeout(SOFT));
    with_manager(manager.clone(), async {
        assert_eq!(quote("acme".into()).await, 100);
        go_stale(&clock);
        assert_eq!(
            answer(&clock, SOFT, quote("acme".into())).await,
            100,
            "stale, while the refresh is blocked"
        );
        QUOTE_RELEASE.notify_one();
        eventually("the refresh is stored", || async {
            manager
                .cache("quotes")
                .unwrap()
                .get_fresh::<u64>(&"acme")
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
    let (manager, clock) = graced(|b| b);
    with_manager(manager.clone(), async {
        assert_eq!(ticker(10).await, Ok(10));
        go_stale(&clock);
        assert_eq!(
            answer(&clock, SOFT, ticker(10)).await,
            Ok(10),
            "stale at the annotation's timeout"
        );
        TICKER_RELEASE.notify_one();
        eventually("the refresh is stored", || async {
            manager
                .cache("tickers")
                .unwrap()
                .get::<u64>(&10u64)
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
    let (manager, clock) = graced(|b| b);
    with_manager(manager, async {
        let catalog = Catalog;
        assert_eq!(catalog.price(1).await, 1);
        go_stale(&clock);
        let mut call = std::pin::pin!(catalog.price(1));
        assert!(
            waits_past(&clock, SOFT * 5, &mut call).await,
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
    let clock = ManualClock::new();
    let manager = CacheManager::builder()
        .memory_store("memory")
        .ttl(TTL)
        .manual_clock(clock.clone())
        .build()
        .unwrap();
    with_manager(manager, async {
        assert_eq!(feed(1).await, Ok(1));
        go_stale(&clock); // no grace: expired
        assert_eq!(answer(&clock, SOFT, feed(1)).await, Err(FeedError::Timeout));
    })
    .await;
    // Within grace, the stale value is served instead of the error.
    let (manager, clock) = graced(|b| b);
    with_manager(manager, async {
        FEED_RUNS.store(0, SeqCst);
        assert_eq!(feed(2).await, Ok(2));
        go_stale(&clock);
        assert_eq!(answer(&clock, SOFT, feed(2)).await, Ok(2));
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
    let (manager, clock) = graced(|b| b);
    with_manager(manager, async {
        let mut call = std::pin::pin!(plain_value(4));
        assert!(waits_past(&clock, SOFT * 5, &mut call).await);
        PLAIN_RELEASE.notify_one();
        assert_eq!(call.await, 4);
    })
    .await;
}

// ----- eager refresh -----

const LONG_TTL: Duration = Duration::from_secs(3600);
/// The window starts 3 minutes after a write, far from expiry.
const EARLY: f64 = 0.05;

/// A manager on a manual clock whose entries live [`LONG_TTL`], with `eager_refresh`
/// [`EARLY`] when `eager`.
fn long_lived(eager: bool) -> (CacheManager, ManualClock) {
    let clock = ManualClock::new();
    let builder = CacheManager::builder()
        .memory_store("memory")
        .ttl(LONG_TTL)
        .manual_clock(clock.clone());
    let builder = if eager {
        builder.eager_refresh(EARLY)
    } else {
        builder
    };
    (builder.build().unwrap(), clock)
}

/// Moves `clock` into the eager-refresh window of entries written before.
fn into_the_window(clock: &ManualClock) {
    clock.advance(LONG_TTL.mul_f64(EARLY) + Duration::from_secs(1));
}

#[tokio::test]
async fn get_or_set_refreshes_once_in_the_background_late_in_the_ttl() {
    let (manager, clock) = long_lived(true);
    let prices = manager.cache("prices").unwrap();
    let (release, runs) = (Arc::new(Notify::new()), Arc::new(AtomicU64::new(0)));
    let first = prices
        .get_or_set_detached(&1u64, || async { 1u64 })
        .await
        .unwrap();
    assert_eq!(first, 1);

    // Before the window: a plain hit.
    assert_eq!(
        prices
            .get_or_set_detached(&1u64, blocked(&release, &runs, 9))
            .await
            .unwrap(),
        1
    );
    tokio::task::yield_now().await;
    assert_eq!(runs.load(SeqCst), 0, "no refresh before the window");

    into_the_window(&clock);
    // In the window: the cached value at once (the factory is blocked), one refresh.
    for _ in 0..5 {
        let hit = prices
            .get_or_set_detached(&1u64, blocked(&release, &runs, 2))
            .await;
        assert_eq!(hit.unwrap(), 1);
    }
    eventually("the refresh started", || async { runs.load(SeqCst) == 1 }).await;
    release.notify_one();
    eventually("the refresh is stored", || async {
        prices.get::<u64>(&1u64).await.unwrap() == Some(2)
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
    let (manager, clock) = long_lived(false);
    with_manager(manager.clone(), async {
        assert_eq!(forecast("oslo".into()).await, 0);
        assert_eq!(forecast("oslo".into()).await, 0);
        tokio::task::yield_now().await;
        assert_eq!(EAGER_RUNS.load(SeqCst), 1, "no refresh before the window");
        into_the_window(&clock);
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
            forecasts.get::<u64>(&"oslo").await.unwrap() == Some(1)
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
    let (manager, clock) = long_lived(false);
    let inner = manager.cache("nested_inner").unwrap();
    with_manager(manager.clone(), async {
        assert_eq!(nested_outer(1).await, 100);
        into_the_window(&clock);
        assert_eq!(nested_outer(1).await, 100);
    })
    .await;
    // The refresh's own cached call went to the scoped manager, not the global one.
    eventually("the refresh's nested call is stored", || async {
        inner.get::<u64>(&101u64).await.unwrap() == Some(101)
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
    let (manager, clock) = graced(|b| b);
    cachet::testing::with_manager_sync(manager.clone(), || {
        assert_eq!(sync_quote(1), 1);
        go_stale(&clock);
        let held = SYNC_BLOCK.lock();
        assert_eq!(
            while_the_clock_moves(&clock, SOFT, || sync_quote(1)),
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
    let (manager, clock) = long_lived(false);
    cachet::testing::with_manager_sync(manager, || {
        assert_eq!(sync_forecast("rome".into()), 0);
        assert_eq!(sync_forecast("rome".into()), 0);
        assert_eq!(
            SYNC_EAGER_RUNS.load(SeqCst),
            1,
            "no refresh before the window"
        );
        into_the_window(&clock);
        assert_eq!(sync_forecast("rome".into()), 0, "the cached value at once");
        let deadline = Instant::now() + Duration::from_secs(5);
        while sync_forecast("rome".into()) != 1 {
            assert!(Instant::now() < deadline, "the refresh was never stored");
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert_eq!(SYNC_EAGER_RUNS.load(SeqCst), 2);
}
