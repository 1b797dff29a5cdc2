//! One cached call through several caches on in-process stores under a manual clock: which
//! cache answers, when the function runs (its closure is counted when called, so a refresh
//! started in the background is seen at once), what is stored, and evictions. Written for
//! cargo-mutants (README, "Mutation testing"); what a call does with an L2 is tested against
//! a real Redis in the root package's `tests/`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use super::*;
use crate::shape::{FallibleShape, OptionShape, ResultShape, ValueShape};
use crate::store::MapTier;
use crate::testing::ManualClock;
use crate::{Cache, CacheError, CacheManager, CacheOptions, StoreBuilder};

const TTL: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(3600);

/// A manager of one in-process store (30 s TTL, an hour of grace) on `clock`, with
/// `options` over that.
fn manager(clock: &ManualClock, options: CacheOptions) -> CacheManager {
    CacheManager::builder()
        .store("main", StoreBuilder::new().l1(MapTier::new()))
        .ttl(TTL)
        .grace(GRACE)
        .options(options)
        .manual_clock(clock.clone())
        .build()
        .unwrap()
}

fn caches(manager: &CacheManager, names: &[&str]) -> Vec<Cache> {
    names.iter().map(|n| manager.cache(n).unwrap()).collect()
}

fn engines(caches: &[Cache]) -> Vec<Engine> {
    caches.iter().map(|c| c.engine.clone()).collect()
}

fn keys(engines: &[Engine], key: u64) -> Vec<String> {
    engines
        .iter()
        .map(|e| e.stored_key(&key).unwrap())
        .collect()
}

/// The stored key of `key`, as an annotation computes it from a value.
fn key_of<V>(key: u64) -> impl FnOnce(&V) -> Option<String> {
    move |_| Some(crate::key::encode_key(&key).unwrap())
}

/// Every value is stored for the cache's TTL.
fn cache_ttl<V>(_: &V) -> Option<Lifetime> {
    Some(Lifetime::Default)
}

async fn held(cache: &Cache, key: u64) -> Option<String> {
    cache.get::<String>(&key).await.unwrap()
}

/// A function's future, as the tests' calls take it.
type Body = std::pin::Pin<Box<dyn Future<Output = Result<String, CacheError>> + Send>>;

/// A function answering `value` at once.
fn answer(value: &str) -> Body {
    let value = value.to_owned();
    Box::pin(async move { Ok(value) })
}

/// A function answering `value` once `release` is sent (or dropped).
fn after(release: tokio::sync::oneshot::Receiver<()>, value: &str) -> Body {
    let value = value.to_owned();
    Box::pin(async move {
        let _ = release.await;
        Ok(value)
    })
}

/// `f(key)` cached in `caches` (the first decides), whose function answers `value` and is
/// counted in `runs` when called.
async fn call<M>(caches: &[Cache], key: u64, runs: &AtomicUsize, value: &str, mode: M) -> String
where
    M: Mode<FallibleShape<String, CacheError>, Body, fn(&String) -> Option<Lifetime>>,
{
    call_body(caches, key, runs, answer(value), mode).await
}

/// [`call`] whose function is `body`.
async fn call_body<M>(caches: &[Cache], key: u64, runs: &AtomicUsize, body: Body, mode: M) -> String
where
    M: Mode<FallibleShape<String, CacheError>, Body, fn(&String) -> Option<Lifetime>>,
{
    let engines = engines(caches);
    let keys = keys(&engines, key);
    let policy: fn(&String) -> Option<Lifetime> = cache_ttl;
    let body = || {
        runs.fetch_add(1, SeqCst);
        body
    };
    let shape = FallibleShape::<String, CacheError>::default();
    cached_call(shape, &engines, &keys, FirstL1::Unread, policy, body, mode)
        .await
        .unwrap()
}

/// [`call_body`] in a task of its own, counted in `runs`.
fn spawn_call<M>(
    caches: &[Cache],
    key: u64,
    runs: &Arc<AtomicUsize>,
    body: Body,
    mode: M,
) -> JoinHandle<String>
where
    M: Mode<FallibleShape<String, CacheError>, Body, fn(&String) -> Option<Lifetime>>
        + Send
        + 'static,
{
    let (caches, runs) = (caches.to_vec(), runs.clone());
    tokio::spawn(async move { call_body(&caches, key, &runs, body, mode).await })
}

/// Moves `clock` on by `step` until `task` (a caller waiting on a timeout of that clock) is
/// done; `false` if it is not after a few seconds of real time.
async fn advance_until_done<T>(clock: &ManualClock, task: &JoinHandle<T>, step: Duration) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !task.is_finished() && std::time::Instant::now() < deadline {
        clock.advance(step);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.is_finished()
}

/// Waits (in real time, with a deadline) until `runs` reaches `n`: a function has started.
async fn until_runs(runs: &AtomicUsize, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runs.load(SeqCst) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the function never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `cache` under `key` until it holds `value` (a background job's store), failing
/// after a deadline.
async fn until_held(cache: &Cache, key: u64, value: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while held(cache, key).await.as_deref() != Some(value) {
        assert!(
            std::time::Instant::now() < deadline,
            "`{value}` never stored"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_function_runs_once_and_a_miss_is_counted_once() {
    let m = manager(&ManualClock::new(), CacheOptions::new());
    let c = caches(&m, &["a"]);
    let runs = AtomicUsize::new(0);
    assert_eq!(call(&c, 1, &runs, "x", Attached).await, "x");
    assert_eq!(call(&c, 1, &runs, "y", Attached).await, "x");
    assert_eq!(runs.load(SeqCst), 1);
    assert_eq!((c[0].stats().misses, c[0].stats().hits), (1, 1));
}

#[tokio::test]
async fn a_later_cache_answers_when_the_first_holds_nothing() {
    let m = manager(&ManualClock::new(), CacheOptions::new());
    let c = caches(&m, &["a", "b"]);
    c[1].set(&1u64, &"b".to_owned()).await.unwrap();
    let runs = AtomicUsize::new(0);
    assert_eq!(call(&c, 1, &runs, "body", Attached).await, "b");
    assert_eq!(call(&c, 1, &runs, "body", Detachable).await, "b");
    assert_eq!(
        runs.load(SeqCst),
        0,
        "neither ran the function nor refreshed"
    );
}

#[tokio::test]
async fn force_fresh_runs_the_function_over_every_value_held() {
    let m = manager(&ManualClock::new(), CacheOptions::new());
    let c = caches(&m, &["a", "b"]);
    c[0].set(&1u64, &"a".to_owned()).await.unwrap();
    c[1].set(&1u64, &"b".to_owned()).await.unwrap();
    let forced = [
        c[0].with_options(CacheOptions::new().force_fresh(true)),
        c[1].clone(),
    ];
    let runs = AtomicUsize::new(0);
    assert_eq!(call(&forced, 1, &runs, "new", Attached).await, "new");
    assert_eq!(runs.load(SeqCst), 1);
    assert_eq!(held(&c[0], 1).await.as_deref(), Some("new"));
    assert_eq!(held(&c[1], 1).await.as_deref(), Some("new"));
}

#[tokio::test]
async fn only_a_detachable_call_refreshes_a_hit_past_its_refresh_point() {
    let clock = ManualClock::new();
    // Not allowing null values must not keep a value from being stored.
    let options = CacheOptions::new()
        .eager_refresh(0.5)
        .allow_null_values(false);
    let m = manager(&clock, options);
    let c = caches(&m, &["a", "b"]);
    c[0].set(&1u64, &"old".to_owned()).await.unwrap();
    c[1].set(&2u64, &"old".to_owned()).await.unwrap();
    let runs = AtomicUsize::new(0);
    // Not due yet: no call refreshes.
    assert_eq!(call(&c, 1, &runs, "new", Detachable).await, "old");
    assert_eq!(call(&c, 2, &runs, "new", Detachable).await, "old");
    assert_eq!(runs.load(SeqCst), 0);
    clock.advance(TTL * 2 / 3);
    // Due, from the first cache's L1 and from a later cache: an attached call serves it
    // and starts nothing.
    assert_eq!(call(&c, 1, &runs, "new", Attached).await, "old");
    assert_eq!(call(&c, 2, &runs, "new", Attached).await, "old");
    assert_eq!(runs.load(SeqCst), 0);
    // A detachable one serves it and refreshes it in the background.
    assert_eq!(call(&c, 1, &runs, "new", Detachable).await, "old");
    assert_eq!(runs.load(SeqCst), 1);
    until_held(&c[0], 1, "new").await;
}

#[tokio::test]
async fn a_stale_value_answers_a_failure_from_the_first_cache_holding_one() {
    let clock = ManualClock::new();
    let m = manager(&clock, CacheOptions::new());
    let c = caches(&m, &["a", "b", "c"]);
    c[1].set(&1u64, &"b".to_owned()).await.unwrap();
    c[2].set(&1u64, &"c".to_owned()).await.unwrap();
    clock.advance(TTL + Duration::from_secs(1));
    let engines = engines(&c);
    let keys = keys(&engines, 1);
    let failing = || async {
        Err::<String, _>(CacheError::Timeout {
            cache: "a".into(),
            timeout: TTL,
        })
    };
    let shape = FallibleShape::<String, CacheError>::default();
    let out = cached_call(
        shape,
        &engines,
        &keys,
        FirstL1::Unread,
        cache_ttl,
        failing,
        Attached,
    );
    assert_eq!(out.await.unwrap(), "b");
}

/// `f(key)` returning `None` (once `release` is sent, if given), cached in `cache` (values
/// of `Option<String>`), in a task of its own.
fn spawn_none<M>(
    cache: &Cache,
    key: u64,
    runs: &Arc<AtomicUsize>,
    release: Option<tokio::sync::oneshot::Receiver<()>>,
    mode: M,
) -> JoinHandle<Option<String>>
where
    M: Mode<OptionShape<String>, NoneBody, fn(&Option<String>) -> Option<Lifetime>>
        + Send
        + 'static,
{
    let (cache, runs) = (cache.clone(), runs.clone());
    tokio::spawn(async move {
        let engines = engines(std::slice::from_ref(&cache));
        let keys = keys(&engines, key);
        let body = || -> NoneBody {
            runs.fetch_add(1, SeqCst);
            Box::pin(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                None
            })
        };
        let policy: fn(&Option<String>) -> Option<Lifetime> = cache_ttl;
        let shape = OptionShape::<String>::default();
        cached_call(shape, &engines, &keys, FirstL1::Unread, policy, body, mode).await
    })
}

/// The future of a function returning `Option<String>`.
type NoneBody = std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send>>;

async fn call_none(cache: &Cache, key: u64, runs: &Arc<AtomicUsize>) -> Option<String> {
    spawn_none(cache, key, runs, None, Attached).await.unwrap()
}

/// Waits (in real time, with a deadline) until nobody holds `key`'s single-flight gate in
/// `cache` (a background refresh finished).
async fn until_gate_free(cache: &Cache, key: u64) {
    let stored = cache.engine.stored_key(&key).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.engine.inner.store.flights.try_lock(&stored).is_none() {
        assert!(std::time::Instant::now() < deadline, "the gate stays held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_none_is_stored_only_where_null_values_are_allowed() {
    let m = manager(&ManualClock::new(), CacheOptions::new());
    let allowed = m.cache("a").unwrap();
    let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
    let runs = Arc::new(AtomicUsize::new(0));
    assert_eq!(call_none(&allowed, 1, &runs).await, None);
    assert_eq!(call_none(&allowed, 1, &runs).await, None);
    assert_eq!(runs.load(SeqCst), 1, "stored");
    assert_eq!(call_none(&refused, 2, &runs).await, None);
    assert_eq!(call_none(&refused, 2, &runs).await, None);
    assert_eq!(runs.load(SeqCst), 3, "not stored");
    // A value is stored whatever the setting.
    let c = [refused];
    assert_eq!(call(&c, 3, &runs, "x", Attached).await, "x");
    assert_eq!(call(&c, 3, &runs, "y", Attached).await, "x");
    assert_eq!(runs.load(SeqCst), 4);
}

#[tokio::test]
async fn a_put_stores_its_value_and_a_none_only_where_allowed() {
    let m = manager(&ManualClock::new(), CacheOptions::new());
    let allowed = m.cache("a").unwrap();
    let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
    let put = |cache: &Cache, key: u64, value: Option<String>| {
        let engines = engines(std::slice::from_ref(cache));
        async move {
            let shape = OptionShape::<String>::default();
            put_call(shape, &engines, key_of(key), cache_ttl, false, async {
                value
            })
            .await
        }
    };
    put(&refused, 1, Some("x".into())).await;
    assert_eq!(held(&allowed, 1).await.as_deref(), Some("x"));
    put(&allowed, 2, None).await;
    assert!(allowed.has(&2u64).await.unwrap(), "a null stored");
    put(&refused, 3, None).await;
    assert!(!allowed.has(&3u64).await.unwrap(), "no null stored");
    // Any other shape stores its value as is.
    let engines = engines(std::slice::from_ref(&refused));
    let value = async { "v".to_owned() };
    put_call(
        ValueShape::default(),
        &engines,
        key_of(4),
        cache_ttl,
        false,
        value,
    )
    .await;
    assert_eq!(held(&allowed, 4).await.as_deref(), Some("v"));
}

#[tokio::test]
async fn an_eviction_applies_at_once_unless_it_waits_for_the_commit() {
    let m = manager(&ManualClock::new(), CacheOptions::new());
    let c = caches(&m, &["a", "b"]);
    for key in 1u64..=4 {
        for cache in &c {
            cache.set(&key, &"v".to_owned()).await.unwrap();
        }
    }
    let engines = engines(&c);
    let key = |k: u64| EvictTarget::Key(crate::key::encode_key(&k).unwrap());
    evict_all_after(&engines, key(1), false).await;
    assert_eq!((held(&c[0], 1).await, held(&c[1], 1).await), (None, None));
    assert!(held(&c[0], 2).await.is_some());
    let committed: Result<(), CacheError> = crate::transaction::transaction(async {
        evict_all_after(&engines, key(2), false).await;
        assert_eq!(held(&c[0], 2).await, None, "at once, in a transaction too");
        evict_all_after(&engines, key(3), true).await;
        assert!(held(&c[0], 3).await.is_some(), "at the commit");
        Ok(())
    })
    .await;
    committed.unwrap();
    assert_eq!((held(&c[0], 3).await, held(&c[1], 3).await), (None, None));
    evict_all(&engines, &EvictTarget::All).await;
    assert_eq!((held(&c[0], 4).await, held(&c[1], 4).await), (None, None));
}

#[tokio::test]
async fn past_its_soft_timeout_a_detachable_call_answers_stale_and_stores_later() {
    let clock = ManualClock::new();
    let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
    let c = caches(&m, &["a"]);
    c[0].set(&1u64, &"old".to_owned()).await.unwrap();
    clock.advance(TTL + Duration::from_secs(1));
    let (release, slow) = tokio::sync::oneshot::channel();
    let runs = Arc::new(AtomicUsize::new(0));
    let caller = spawn_call(&c, 1, &runs, after(slow, "new"), Detachable);
    let answered = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
    let _ = release.send(());
    assert!(answered, "not answered at the soft timeout");
    assert_eq!(caller.await.unwrap(), "old");
    until_held(&c[0], 1, "new").await;
}

#[tokio::test]
async fn past_its_soft_timeout_a_waiting_call_takes_what_another_cache_holds() {
    let clock = ManualClock::new();
    let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
    let c = caches(&m, &["a", "b"]);
    let (release, slow) = tokio::sync::oneshot::channel();
    let runs = Arc::new(AtomicUsize::new(0));
    let leader = spawn_call(&c, 1, &runs, after(slow, "leader"), Attached);
    until_runs(&runs, 1).await;
    c[1].set(&1u64, &"b".to_owned()).await.unwrap();
    let second = Arc::new(AtomicUsize::new(0));
    let caller = spawn_call(&c, 1, &second, answer("second"), Attached);
    let answered = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
    let _ = release.send(());
    assert!(answered, "waited for the slow caller past the soft timeout");
    assert_eq!(caller.await.unwrap(), "b");
    assert_eq!(second.load(SeqCst), 0);
    assert_eq!(leader.await.unwrap(), "leader");
}

#[tokio::test]
async fn past_its_wait_timeout_a_call_reads_the_other_caches_then_runs_and_stores() {
    let clock = ManualClock::new();
    let options = CacheOptions::new()
        .wait_timeout(Duration::from_secs(1))
        .allow_null_values(false);
    let m = manager(&clock, options);
    let c = caches(&m, &["a", "b"]);
    let (release, slow) = tokio::sync::oneshot::channel();
    let (release_2, slow_2) = tokio::sync::oneshot::channel();
    let runs = Arc::new(AtomicUsize::new(0));
    let leader = spawn_call(&c, 1, &runs, after(slow, "leader"), Attached);
    let leader_2 = spawn_call(&c, 2, &runs, after(slow_2, "leader"), Attached);
    until_runs(&runs, 2).await;
    // Key 1: another cache holds it now.
    c[1].set(&1u64, &"b".to_owned()).await.unwrap();
    let second = Arc::new(AtomicUsize::new(0));
    let caller = spawn_call(&c, 1, &second, answer("second"), Attached);
    let found = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
    // Key 2: nothing anywhere: it runs the function too, and stores its value.
    let third = Arc::new(AtomicUsize::new(0));
    let caller_2 = spawn_call(&c, 2, &third, answer("third"), Attached);
    let ran = advance_until_done(&clock, &caller_2, Duration::from_secs(1)).await;
    let stored = held(&c[0], 2).await;
    let (_, _) = (release.send(()), release_2.send(()));
    assert!(found && ran, "waited past the wait timeout");
    assert_eq!(caller.await.unwrap(), "b");
    assert_eq!(second.load(SeqCst), 0);
    assert_eq!(caller_2.await.unwrap(), "third");
    assert_eq!((third.load(SeqCst), stored.as_deref()), (1, Some("third")));
    assert_eq!(leader.await.unwrap(), "leader");
    assert_eq!(leader_2.await.unwrap(), "leader");
}

#[tokio::test]
async fn past_its_wait_timeout_a_none_is_stored_only_where_allowed() {
    let clock = ManualClock::new();
    let m = manager(
        &clock,
        CacheOptions::new().wait_timeout(Duration::from_secs(1)),
    );
    let allowed = m.cache("a").unwrap();
    let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
    for (cache, key, stored) in [(&allowed, 1, true), (&refused, 2, false)] {
        let (release, slow) = tokio::sync::oneshot::channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = spawn_call(
            std::slice::from_ref(cache),
            key,
            &runs,
            after(slow, "x"),
            Attached,
        );
        until_runs(&runs, 1).await;
        let caller = spawn_none(cache, key, &runs, None, Attached);
        let gave_up = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
        let had = allowed.has(&key).await.unwrap();
        let _ = release.send(());
        assert!(gave_up, "waited past the wait timeout");
        assert_eq!(caller.await.unwrap(), None);
        assert_eq!(had, stored, "key {key}");
        leader.await.unwrap();
    }
}

#[tokio::test]
async fn a_background_refresh_stores_a_none_only_where_allowed() {
    let clock = ManualClock::new();
    let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
    let allowed = m.cache("a").unwrap();
    let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
    for (cache, key, stored) in [(&allowed, 1, true), (&refused, 2, false)] {
        cache.set(&key, &"old".to_owned()).await.unwrap();
        clock.advance(TTL + Duration::from_secs(1));
        let (release, slow) = tokio::sync::oneshot::channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let caller = spawn_none(cache, key, &runs, Some(slow), Detachable);
        let answered = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
        let _ = release.send(());
        assert!(answered, "not answered at the soft timeout");
        assert_eq!(caller.await.unwrap().as_deref(), Some("old"));
        until_gate_free(cache, key).await;
        // A stored `None` is fresh; the old value is stale.
        assert_eq!(allowed.has(&key).await.unwrap(), stored, "key {key}");
    }
}

#[tokio::test]
async fn a_background_refresh_that_fails_hands_its_failure_to_the_callers_waiting() {
    let clock = ManualClock::new();
    let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
    let a = m.cache("a").unwrap();
    a.set(&1u64, &"old".to_owned()).await.unwrap();
    clock.advance(TTL + Duration::from_secs(1));
    // The first caller is answered stale at its soft timeout; its refresh goes on, and fails.
    let (release, slow) = tokio::sync::oneshot::channel::<()>();
    let failing = Box::pin(async move {
        let _ = slow.await;
        Err(CacheError::Timeout {
            cache: "a".into(),
            timeout: TTL,
        })
    });
    let runs = Arc::new(AtomicUsize::new(0));
    let first = spawn_call(std::slice::from_ref(&a), 1, &runs, failing, Detachable);
    assert!(advance_until_done(&clock, &first, Duration::from_secs(1)).await);
    assert_eq!(first.await.unwrap(), "old");
    // A caller with a longer soft timeout waits for that refresh at the gate...
    let patient = a.with_options(CacheOptions::new().timeout(Duration::from_secs(3600)));
    let second = Arc::new(AtomicUsize::new(0));
    let waiter = spawn_call(&[patient], 1, &second, answer("second"), Attached);
    let stored = a.engine.stored_key(&1u64).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.engine.inner.store.flights.waiting(&stored) == 0 {
        assert!(std::time::Instant::now() < deadline, "never waited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...and takes its failure: the stale value, without running the function again.
    let _ = release.send(());
    assert_eq!(waiter.await.unwrap(), "old");
    assert_eq!(second.load(SeqCst), 0);
}

/// The future of a function returning `Result<String, String>`, whose error the callers
/// waiting for it cannot take (they run the function themselves).
type ResultBody = std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// `f(key)` of `Result<String, String>` cached in `cache`, in a task of its own, counted in
/// `runs` when called.
fn spawn_result(
    cache: &Cache,
    key: u64,
    runs: &Arc<AtomicUsize>,
    body: ResultBody,
) -> JoinHandle<Result<String, String>> {
    let (cache, runs) = (cache.clone(), runs.clone());
    tokio::spawn(async move {
        let engines = engines(std::slice::from_ref(&cache));
        let keys = keys(&engines, key);
        let body = || {
            runs.fetch_add(1, SeqCst);
            body
        };
        let shape = ResultShape::<String, String>::default();
        cached_call(
            shape,
            &engines,
            &keys,
            FirstL1::Unread,
            cache_ttl,
            body,
            Attached,
        )
        .await
    })
}

/// A function failing once `release` is sent.
fn fail_after(release: tokio::sync::oneshot::Receiver<()>) -> ResultBody {
    Box::pin(async move {
        let _ = release.await;
        Err("boom".to_owned())
    })
}

fn ok(value: &str) -> ResultBody {
    let value = value.to_owned();
    Box::pin(async move { Ok(value) })
}

/// Waits (in real time, with a deadline) until someone waits at `key`'s gate in `cache`.
async fn until_waiting(cache: &Cache, key: u64) {
    let stored = cache.engine.stored_key(&key).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.engine.inner.store.flights.waiting(&stored) == 0 {
        assert!(std::time::Instant::now() < deadline, "nobody waits");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_caller_whose_leader_failed_reads_what_was_stored_meanwhile_unless_forced() {
    let m = manager(&ManualClock::new(), CacheOptions::new());
    let a = m.cache("a").unwrap();
    let forced = a.with_options(CacheOptions::new().force_fresh(true));
    // Key 1 holds a fresh value, key 2 is stored while the caller waits; each caller
    // waits for a leader that fails, then holds the gate itself.
    a.set(&1u64, &"old".to_owned()).await.unwrap();
    for (caller, key, expected, ran) in [(&forced, 1, "second", 1), (&a, 2, "meanwhile", 0)] {
        let (release, slow) = tokio::sync::oneshot::channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = spawn_result(caller, key, &runs, fail_after(slow));
        until_runs(&runs, 1).await;
        let second = Arc::new(AtomicUsize::new(0));
        let waiter = spawn_result(caller, key, &second, ok("second"));
        until_waiting(caller, key).await;
        if key == 2 {
            a.set(&key, &"meanwhile".to_owned()).await.unwrap();
        }
        let _ = release.send(());
        assert_eq!(leader.await.unwrap(), Err("boom".to_owned()));
        assert_eq!(waiter.await.unwrap().as_deref(), Ok(expected), "key {key}");
        assert_eq!(second.load(SeqCst), ran, "key {key}");
    }
}

#[tokio::test]
async fn a_forced_call_waits_for_the_running_call_past_its_soft_timeout() {
    let clock = ManualClock::new();
    let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
    let c = caches(&m, &["a", "b"]);
    let (release, slow) = tokio::sync::oneshot::channel();
    let runs = Arc::new(AtomicUsize::new(0));
    let leader = spawn_call(&c, 1, &runs, after(slow, "leader"), Attached);
    until_runs(&runs, 1).await;
    c[1].set(&1u64, &"b".to_owned()).await.unwrap();
    // Forced: it does not take the other cache's value past its soft timeout; it waits
    // for the value being made.
    let forced = [
        c[0].with_options(CacheOptions::new().force_fresh(true)),
        c[1].clone(),
    ];
    let second = Arc::new(AtomicUsize::new(0));
    let caller = spawn_call(&forced, 1, &second, answer("second"), Attached);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = release.send(());
    assert_eq!(leader.await.unwrap(), "leader");
    assert_eq!(caller.await.unwrap(), "leader");
    assert_eq!(second.load(SeqCst), 0);
}
