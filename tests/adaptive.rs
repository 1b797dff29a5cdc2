//! Adaptive caching (the value decides its own TTL, or not to be stored), per-annotation
//! grace and per-call options.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet::testing::{with_manager, ManualClock};
use cachet::{cache_put, cacheable, Adaptive, CacheError, CacheManager, CacheOptions};
use serde::{Deserialize, Serialize};
use support::eventually;

const HOUR: Duration = Duration::from_secs(3600);

fn memory(ttl: Duration, grace: Option<Duration>) -> CacheManager {
    memory_builder(ttl, grace).build().unwrap()
}

/// [`memory`], its time a manual clock the test advances instead of sleeping.
fn memory_at(clock: &ManualClock, ttl: Duration, grace: Option<Duration>) -> CacheManager {
    memory_builder(ttl, grace)
        .manual_clock(clock.clone())
        .build()
        .unwrap()
}

fn memory_builder(ttl: Duration, grace: Option<Duration>) -> cachet::CacheManagerBuilder {
    let builder = CacheManager::builder().memory_store("memory").ttl(ttl);
    match grace {
        Some(grace) => builder.grace(grace),
        None => builder,
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Down;

impl From<CacheError> for Down {
    fn from(_: CacheError) -> Self {
        Down
    }
}

// ---- programmatic -----------------------------------------------------------------------

#[tokio::test]
async fn a_value_kept_for_its_own_ttl_expires_then_while_the_caches_ttl_is_long() {
    let tokens = memory(HOUR, None).cache("tokens").unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let fetch = |ttl: Duration| {
        let runs = runs.clone();
        move || async move { Adaptive::new(runs.fetch_add(1, SeqCst)).ttl(ttl) }
    };
    let short = Duration::from_millis(80);
    let written = Instant::now();
    assert_eq!(
        tokens
            .get_or_set_adaptive(&"short", fetch(short))
            .await
            .ok(),
        Some(0)
    );
    tokens
        .get_or_set_adaptive(&"default", || async { Adaptive::new(7u64) })
        .await
        .unwrap();
    assert_eq!(
        tokens
            .get_or_set_adaptive(&"short", fetch(short))
            .await
            .ok(),
        Some(0),
        "a hit while fresh"
    );
    eventually("the short entry expires", async || {
        tokens.missing(&"short").await.unwrap()
    })
    .await;
    assert!(written.elapsed() >= short, "not before its TTL");
    assert_eq!(
        tokens
            .get_or_set_adaptive(&"short", fetch(short))
            .await
            .ok(),
        Some(1),
        "expired: the factory runs again"
    );
    assert!(
        tokens.has(&"default").await.unwrap(),
        "`Adaptive::new` keeps the cache's TTL"
    );
    assert_eq!(runs.load(SeqCst), 2);
}

#[tokio::test]
async fn a_no_store_value_is_returned_but_the_next_call_runs_again() {
    let quotes = memory(HOUR, None).cache("quotes").unwrap();
    let runs = AtomicU64::new(0);
    for expected in 0..3 {
        let run = runs.fetch_add(1, SeqCst);
        let got = quotes
            .get_or_set_adaptive(&1u64, move || async move { Adaptive::new(run).no_store() })
            .await;
        assert_eq!(got.ok(), Some(expected));
    }
    assert!(quotes.missing(&1u64).await.unwrap());
    let stats = quotes.stats();
    assert_eq!((stats.misses, stats.puts), (3, 0), "{stats:?}");
    // A forever value is stored.
    quotes
        .get_or_set_adaptive(&2u64, || async { Adaptive::new(9u64).forever() })
        .await
        .unwrap();
    assert_eq!(quotes.get::<u64>(&2u64).await.unwrap(), Some(9));
}

#[tokio::test]
async fn a_failed_adaptive_refresh_serves_the_stale_value_within_grace() {
    let rates = memory(HOUR, Some(HOUR)).cache("rates").unwrap();
    let first: Result<u64, Down> = rates
        .try_get_or_set_adaptive(&"eur", || async {
            Ok(Adaptive::new(100).ttl(Duration::from_millis(30)))
        })
        .await;
    assert_eq!(first, Ok(100));
    eventually("the entry goes stale", async || {
        rates.missing(&"eur").await.unwrap()
    })
    .await;
    let refreshed: Result<u64, Down> = rates
        .try_get_or_set_adaptive(&"eur", || async { Err(Down) })
        .await;
    assert_eq!(refreshed, Ok(100), "the stale value in place of the error");
    assert_eq!(rates.stats().stale, 1);
    // Without a stale value, the error is returned and nothing is stored.
    let missing: Result<u64, Down> = rates
        .try_get_or_set_adaptive(&"usd", || async { Err(Down) })
        .await;
    assert_eq!(missing, Err(Down));
    assert!(rates.missing(&"usd").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adaptive_misses_run_the_factory_once() {
    let users = memory(HOUR, None).cache("users").unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (users, runs) = (users.clone(), runs.clone());
            tokio::spawn(async move {
                users
                    .get_or_set_adaptive(&1u64, move || async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Adaptive::new(runs.fetch_add(1, SeqCst)).ttl(HOUR)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().ok(), Some(0));
    }
    assert_eq!(runs.load(SeqCst), 1);
}

// ---- annotations: ttl_from ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Token {
    user: u64,
    serial: u64,
    expires_in: Duration,
}

static TOKEN_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("tokens", ttl_from = result.expires_in)]
async fn token(user: u64) -> Result<Token, Down> {
    Ok(Token {
        user,
        serial: TOKEN_RUNS.fetch_add(1, SeqCst),
        expires_in: Duration::from_millis(80) * user as u32,
    })
}

#[cache_put("tokens", key = result.user, ttl_from = result.expires_in)]
async fn issue_token(user: u64, serial: u64, expires_in: Duration) -> Result<Token, Down> {
    Ok(Token {
        user,
        serial,
        expires_in,
    })
}

#[tokio::test]
async fn ttl_from_keeps_each_value_for_the_duration_it_carries() {
    let manager = memory(HOUR, None);
    let tokens = manager.cache("tokens").unwrap();
    with_manager(manager.clone(), async {
        let first = token(1).await.unwrap();
        let long = token(50).await.unwrap(); // 4s
        assert_eq!(token(1).await, Ok(first.clone()), "a hit while fresh");
        eventually("the 80ms token expires", async || {
            tokens.missing(&1u64).await.unwrap()
        })
        .await;
        assert_ne!(
            token(1).await.unwrap().serial,
            first.serial,
            "fetched again"
        );
        assert_eq!(token(50).await, Ok(long), "the 4s token is still there");

        // A put with `ttl_from` stores for the value's duration too.
        issue_token(7, 1000, Duration::from_millis(60))
            .await
            .unwrap();
        assert_eq!(token(7).await.unwrap().serial, 1000, "the put's value");
        eventually("the put token expires", async || {
            tokens.missing(&7u64).await.unwrap()
        })
        .await;
        assert_ne!(token(7).await.unwrap().serial, 1000);
    })
    .await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Quote {
    serial: u64,
    valid_for: Option<Duration>,
}

static QUOTE_RUNS: AtomicU64 = AtomicU64::new(0);

/// Symbol 0 has no validity: `None`, not stored.
#[cacheable("quotes", ttl_from = result.valid_for, unless = result.serial == u64::MAX)]
async fn quote(symbol: u64) -> Quote {
    Quote {
        serial: QUOTE_RUNS.fetch_add(1, SeqCst),
        valid_for: (symbol > 0).then_some(HOUR),
    }
}

#[tokio::test]
async fn ttl_from_none_returns_the_value_without_storing_it() {
    let manager = memory(HOUR, None);
    with_manager(manager.clone(), async {
        let a = quote(0).await;
        let b = quote(0).await;
        assert_ne!(a.serial, b.serial, "not stored: runs each time");
        assert_eq!(a.valid_for, None);
        let kept = quote(1).await;
        assert_eq!(quote(1).await, kept, "Some(ttl): stored");
    })
    .await;
    let stats = manager.cache("quotes").unwrap().stats();
    assert_eq!(stats.puts, 1, "{stats:?}");
}

// ---- annotations: grace -------------------------------------------------------------------

static GRACEFUL_FAIL: AtomicBool = AtomicBool::new(false);
static GRACELESS_FAIL: AtomicBool = AtomicBool::new(false);
static NO_GRACE_FAIL: AtomicBool = AtomicBool::new(false);

#[cacheable("prices", grace = "1h")]
async fn graceful_price(id: u64) -> Result<u64, Down> {
    if GRACEFUL_FAIL.load(SeqCst) {
        Err(Down)
    } else {
        Ok(id)
    }
}

/// The same cache, without the annotation's grace.
#[cacheable("prices", key = ("other", id))]
async fn graceless_price(id: u64) -> Result<u64, Down> {
    if GRACELESS_FAIL.load(SeqCst) {
        Err(Down)
    } else {
        Ok(id)
    }
}

#[cacheable("graced", grace = "0s")]
async fn no_grace_price(id: u64) -> Result<u64, Down> {
    if NO_GRACE_FAIL.load(SeqCst) {
        Err(Down)
    } else {
        Ok(id)
    }
}

#[tokio::test]
async fn an_annotations_grace_overrides_the_caches_for_what_it_writes() {
    // No grace for the cache: only the annotated function's entries are served stale.
    let clock = ManualClock::new();
    let ttl = Duration::from_secs(30);
    with_manager(memory_at(&clock, ttl, None), async {
        assert_eq!(graceful_price(1).await, Ok(1));
        assert_eq!(graceless_price(2).await, Ok(2));
        clock.advance(ttl * 2);
        GRACEFUL_FAIL.store(true, SeqCst);
        GRACELESS_FAIL.store(true, SeqCst);
        assert_eq!(graceful_price(1).await, Ok(1), "stale, within its 1h grace");
        assert_eq!(
            graceless_price(2).await,
            Err(Down),
            "the cache has no grace"
        );
    })
    .await;
    // An hour of grace for the cache, none for the function (`grace = "0s"`).
    with_manager(memory_at(&clock, ttl, Some(HOUR)), async {
        assert_eq!(no_grace_price(3).await, Ok(3));
        clock.advance(ttl * 2);
        NO_GRACE_FAIL.store(true, SeqCst);
        assert_eq!(no_grace_price(3).await, Err(Down), "grace turned off");
    })
    .await;
}

// ---- per-call options -----------------------------------------------------------------------

#[tokio::test]
async fn a_views_grace_serves_stale_where_the_caches_would_not() {
    let clock = ManualClock::new();
    let ttl = Duration::from_secs(30);
    let users = memory_at(&clock, ttl, None).cache("users").unwrap();
    let patient = users.with_options(CacheOptions::new().grace(HOUR));
    let ok = |n: u64| move || async move { Ok::<u64, Down>(n) };
    let fail = || || async { Err::<u64, Down>(Down) };
    assert_eq!(patient.try_get_or_set(&1u64, ok(1)).await, Ok(1));
    assert_eq!(users.try_get_or_set(&2u64, ok(2)).await, Ok(2));
    clock.advance(ttl * 2);
    assert_eq!(
        patient.try_get_or_set(&1u64, fail()).await,
        Ok(1),
        "written by the view: an hour of grace"
    );
    assert_eq!(
        users.try_get_or_set(&2u64, fail()).await,
        Err(Down),
        "the original handle keeps the cache's settings"
    );
    assert_eq!(users.stats().stale, 1, "views share the cache's stats");
}

#[tokio::test]
async fn a_views_ttl_and_hard_timeout_apply_to_every_method_and_nothing_else() {
    let users = memory(HOUR, None).cache("users").unwrap();
    let brief = users.with_options(CacheOptions::new().ttl(Duration::from_millis(40)));
    brief.set(&1u64, &1u8).await.unwrap();
    users.set(&2u64, &2u8).await.unwrap();
    assert_eq!(
        users.get::<u8>(&1u64).await.unwrap(),
        Some(1),
        "same entries"
    );
    eventually("the view's entry expires", async || {
        users.missing(&1u64).await.unwrap()
    })
    .await;
    assert!(users.has(&2u64).await.unwrap(), "the cache's TTL: an hour");

    let hasty = users.with_options(CacheOptions::new().hard_timeout(Duration::from_millis(20)));
    let slow = || async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        5u8
    };
    assert!(matches!(
        hasty.get_or_set(&3u64, slow).await,
        Err(CacheError::Timeout { .. })
    ));
    assert_eq!(
        users.get_or_set(&3u64, slow).await.ok(),
        Some(5),
        "no hard timeout"
    );
    // A namespace of a view keeps its settings.
    let ns = hasty.namespace("ns");
    assert!(ns.get_or_set(&3u64, slow).await.is_err());
}

// ---- tiered: the Redis TTL is the adaptive TTL plus grace -----------------------------------

#[cacheable("sessions", ttl_from = result.expires_in, grace = "20s")]
async fn session(id: u64) -> Result<Token, Down> {
    Ok(Token {
        user: id,
        serial: 0,
        expires_in: Duration::from_secs(40),
    })
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_an_adaptive_entry_for_its_ttl_plus_grace() {
    use support::{redis_cli, redis_server::RedisServer};
    let server = RedisServer::start();
    let url = server.url();
    let manager = CacheManager::from_toml_str(&format!(
        r#"
        prefix = "adaptive"
        ttl = "1h"
        grace = "10s"
        [stores.tiered]
        l1 = {{ driver = "memory", max_entries = 100 }}
        l2 = {{ driver = "redis", url = "{url}" }}
        bus = {{ driver = "redis", url = "{url}" }}
        "#
    ))
    .unwrap();
    let pttl = |key: &str| -> i64 { redis_cli(server.port(), &["PTTL", key]).parse().unwrap() };
    let tokens = manager.cache("tokens").unwrap();
    tokens
        .get_or_set_adaptive(&1u64, || async {
            Adaptive::new(1u8).ttl(Duration::from_secs(5))
        })
        .await
        .unwrap();
    let left = pttl("adaptive:tokens:1");
    assert!(
        (14_000..=15_000).contains(&left),
        "5s ttl + 10s grace, PTTL {left}"
    );

    with_manager(manager.clone(), async {
        session(2).await.unwrap();
    })
    .await;
    let left = pttl("adaptive:sessions:2");
    assert!(
        (59_000..=60_000).contains(&left),
        "40s ttl_from + 20s annotation grace, PTTL {left}"
    );

    let view = tokens.with_options(CacheOptions::new().grace(Duration::from_secs(30)));
    view.get_or_set_adaptive(&3u64, || async {
        Adaptive::new(3u8).ttl(Duration::from_secs(2))
    })
    .await
    .unwrap();
    let left = pttl("adaptive:tokens:3");
    assert!(
        (31_000..=32_000).contains(&left),
        "2s ttl + the view's 30s grace, PTTL {left}"
    );
}
