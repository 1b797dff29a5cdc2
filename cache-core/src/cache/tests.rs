//! The `Cache` handle's methods on an in-process store under a manual clock: each one's
//! effect is observed, so a method that did nothing (or the opposite) fails here, in the
//! fast lib tests (written for cargo-mutants: README, "Mutation testing"). What a method
//! does with an L2 is tested against a real Redis in the root package's `tests/`.

use std::time::Duration;

use crate::store::MapTier;
use crate::testing::ManualClock;
use crate::{Cache, CacheManager, StoreBuilder};

const TTL: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(3600);

/// The cache `users` of store `main` (an in-process map) with a 30 s TTL and an hour of
/// grace, on `clock`.
fn users(clock: &ManualClock) -> Cache {
    CacheManager::builder()
        .store("main", StoreBuilder::new().l1(MapTier::new()))
        .ttl(TTL)
        .grace(GRACE)
        .manual_clock(clock.clone())
        .build()
        .unwrap()
        .cache("users")
        .unwrap()
}

fn ann() -> String {
    "ann".to_owned()
}

#[test]
fn the_handle_names_its_cache_and_store() {
    let users = users(&ManualClock::new());
    assert_eq!(users.name(), "users");
    assert_eq!(users.store_name(), "main");
    let shown = format!("{users:?}");
    assert!(
        shown.starts_with("Cache") && shown.contains("\"users\"") && shown.contains("main"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_value_set_is_read_back_and_counted() {
    let users = users(&ManualClock::new());
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
    assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), None);
    users.set(&1u64, &ann()).await.unwrap();
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
    assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), Some(ann()));
    let stats = users.stats();
    assert_eq!((stats.puts, stats.hits, stats.l1_hits), (1, 2, 2));
    assert_eq!(stats.misses, 2);
}

#[tokio::test]
async fn each_setter_stores_for_its_own_lifetime() {
    let clock = ManualClock::new();
    let users = users(&clock);
    users.set(&1u64, &ann()).await.unwrap();
    users
        .set_with(&2u64, &ann(), Duration::from_secs(10))
        .await
        .unwrap();
    users.set_forever(&3u64, &ann()).await.unwrap();
    let fresh = |key: u64| {
        let users = users.clone();
        async move { users.get_fresh::<String>(&key).await.unwrap().is_some() }
    };
    assert!(fresh(1).await && fresh(2).await && fresh(3).await);
    clock.advance(Duration::from_secs(10));
    assert!(fresh(1).await && !fresh(2).await && fresh(3).await);
    clock.advance(TTL);
    assert!(!fresh(1).await && !fresh(2).await && fresh(3).await);
    clock.advance(GRACE * 24);
    assert!(fresh(3).await);
}

#[tokio::test]
async fn a_stale_value_is_served_by_get_and_not_by_get_fresh() {
    let clock = ManualClock::new();
    let users = users(&clock);
    users.set(&1u64, &ann()).await.unwrap();
    clock.advance(TTL + Duration::from_secs(1));
    assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), None);
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
    assert_eq!(users.stats().stale, 1);
    clock.advance(GRACE);
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
}

#[tokio::test]
async fn an_expired_value_is_stale_within_its_grace() {
    let users = users(&ManualClock::new());
    users.set(&1u64, &ann()).await.unwrap();
    users.expire(&1u64).await.unwrap();
    assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), None);
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
}

#[tokio::test]
async fn has_and_missing_see_fresh_values_only() {
    let clock = ManualClock::new();
    let users = users(&clock);
    assert!(!users.has(&1u64).await.unwrap());
    assert!(users.missing(&1u64).await.unwrap());
    users.set(&1u64, &ann()).await.unwrap();
    assert!(users.has(&1u64).await.unwrap());
    assert!(!users.missing(&1u64).await.unwrap());
    // Fresh until the instant its TTL ends, not at it (as every read judges it).
    clock.advance(TTL - Duration::from_millis(1));
    assert!(users.has(&1u64).await.unwrap());
    clock.advance(Duration::from_millis(1));
    assert!(!users.has(&1u64).await.unwrap(), "stale at its TTL");
    assert!(users.missing(&1u64).await.unwrap());
    // Still held for its grace: `get` serves it, `has` does not count it.
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
}

#[tokio::test]
async fn pull_returns_the_value_and_deletes_it() {
    let users = users(&ManualClock::new());
    users.set(&1u64, &ann()).await.unwrap();
    assert_eq!(users.pull::<String>(&1u64).await.unwrap(), Some(ann()));
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
    assert_eq!(users.pull::<String>(&1u64).await.unwrap(), None);
}

#[tokio::test]
async fn delete_delete_many_and_clear_remove_what_they_name() {
    let users = users(&ManualClock::new());
    for key in 1u64..=4 {
        users.set(&key, &ann()).await.unwrap();
    }
    let held = |key: u64| {
        let users = users.clone();
        async move { users.get::<String>(&key).await.unwrap().is_some() }
    };
    users.delete(&1u64).await.unwrap();
    assert!(!held(1).await && held(2).await);
    users.delete_many(&[2u64, 3]).await.unwrap();
    assert!(!held(2).await && !held(3).await && held(4).await);
    users.clear().await.unwrap();
    assert!(!held(4).await);
    assert_eq!(users.stats().evictions, 4);
}

#[tokio::test]
async fn get_or_set_stores_the_factory_value_once() {
    let users = users(&ManualClock::new());
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let load = || async {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ann()
    };
    let first: String = users.get_or_set(&1u64, load).await.unwrap();
    assert_eq!(users.stats().misses, 1);
    let again: String = users.get_or_set(&1u64, load).await.unwrap();
    assert_eq!((first.as_str(), again.as_str()), ("ann", "ann"));
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    let detached: Result<String, crate::CacheError> = users
        .try_get_or_set_detached(&2u64, || async { Ok(ann()) })
        .await;
    assert_eq!(detached.unwrap(), "ann");
    assert_eq!(users.get::<String>(&2u64).await.unwrap(), Some(ann()));
}
