//! The programmatic `Cache` API (Bentocache's, typed), through the facade as a user writes it.

use std::time::{Duration, Instant};

use cachet::{CacheError, CacheManager};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

fn ann() -> User {
    User {
        id: 42,
        name: "ann".into(),
    }
}

fn memory() -> CacheManager {
    CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn set_then_get_and_miss() {
    let users = memory().cache("users").unwrap();
    assert_eq!(users.get::<User>(&42u64).await.unwrap(), None);
    users.set(&42u64, &ann()).await.unwrap();
    assert_eq!(users.get::<User>(&42u64).await.unwrap(), Some(ann()));
    let stats = users.stats();
    assert_eq!((stats.hits, stats.misses, stats.puts), (1, 1, 1));
}

#[tokio::test]
async fn set_with_expires_and_set_forever_does_not() {
    let users = memory().cache("users").unwrap();
    users
        .set_with(&1u64, &ann(), Duration::from_millis(50))
        .await
        .unwrap();
    users.set_forever(&2u64, &ann()).await.unwrap();
    assert!(users.has(&1u64).await.unwrap());
    eventually("the entry expires", async || {
        users.missing(&1u64).await.unwrap()
    })
    .await;
    assert!(users.has(&2u64).await.unwrap());
}

#[tokio::test]
async fn cache_ttl_from_the_builder_applies() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .cache_ttl("short", Duration::from_millis(40))
        .build()
        .unwrap();
    let short = manager.cache("short").unwrap();
    let long = manager.cache("long").unwrap();
    short.set(&1u64, &1u8).await.unwrap();
    long.set(&1u64, &1u8).await.unwrap();
    eventually("the short-lived entry expires", async || {
        short.missing(&1u64).await.unwrap()
    })
    .await;
    assert!(long.has(&1u64).await.unwrap());
}

#[tokio::test]
async fn get_or_set_runs_the_factory_only_on_a_miss() {
    let users = memory().cache("users").unwrap();
    let mut runs = 0;
    for _ in 0..3 {
        let user: User = users
            .get_or_set(&42u64, || {
                runs += 1;
                async { ann() }
            })
            .await
            .unwrap();
        assert_eq!(user, ann());
    }
    assert_eq!(runs, 1);
}

#[tokio::test]
async fn try_get_or_set_does_not_store_errors() {
    #[derive(Debug)]
    enum AppError {
        NotFound,
        Cache,
    }
    impl From<CacheError> for AppError {
        fn from(_: CacheError) -> Self {
            AppError::Cache
        }
    }
    let users = memory().cache("users").unwrap();
    let failed: Result<User, AppError> = users
        .try_get_or_set(&1u64, || async { Err(AppError::NotFound) })
        .await;
    assert!(matches!(failed, Err(AppError::NotFound)));
    assert!(users.missing(&1u64).await.unwrap());
    let ok: Result<User, AppError> = users.try_get_or_set(&1u64, || async { Ok(ann()) }).await;
    assert_eq!(ok.unwrap(), ann());
    let again: Result<User, AppError> = users
        .try_get_or_set(&1u64, || async { Err(AppError::NotFound) })
        .await;
    assert_eq!(again.unwrap(), ann());
}

#[tokio::test]
async fn pull_delete_and_delete_many() {
    let users = memory().cache("users").unwrap();
    for id in 1u64..=4 {
        users.set(&id, &id.to_string()).await.unwrap();
    }
    assert_eq!(
        users.pull::<String>(&1u64).await.unwrap().as_deref(),
        Some("1")
    );
    assert!(users.missing(&1u64).await.unwrap());
    users.delete(&2u64).await.unwrap();
    users.delete_many(&[3u64, 4]).await.unwrap();
    for id in 1u64..=4 {
        assert!(users.missing(&id).await.unwrap(), "{id} still there");
    }
    assert_eq!(users.stats().evictions, 4);
}

#[tokio::test]
async fn clear_touches_only_its_own_cache() {
    let manager = memory();
    let users = manager.cache("users").unwrap();
    let posts = manager.cache("posts").unwrap();
    let users2 = manager.cache("users2").unwrap();
    for cache in [&users, &posts, &users2] {
        cache.set(&1u64, &1u32).await.unwrap();
    }
    users.clear().await.unwrap();
    assert!(users.missing(&1u64).await.unwrap());
    assert!(posts.has(&1u64).await.unwrap());
    assert!(
        users2.has(&1u64).await.unwrap(),
        "a cache whose name starts like another is not cleared with it"
    );
}

#[tokio::test]
async fn namespaces_are_separate_and_cleared_with_their_parent() {
    let users = memory().cache("users").unwrap();
    let admins = users.namespace("admins");
    let eu = admins.namespace("eu");
    users.set(&1u64, &"user".to_string()).await.unwrap();
    admins.set(&1u64, &"admin".to_string()).await.unwrap();
    eu.set(&1u64, &"eu admin".to_string()).await.unwrap();
    assert_eq!(
        admins.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("admin")
    );
    admins.clear().await.unwrap();
    assert!(admins.missing(&1u64).await.unwrap());
    assert!(
        eu.missing(&1u64).await.unwrap(),
        "nested namespaces are cleared with their parent"
    );
    assert!(
        users.has(&1u64).await.unwrap(),
        "the parent keeps its own entries"
    );
    admins.set(&1u64, &"admin".to_string()).await.unwrap();
    users.clear().await.unwrap();
    assert!(admins.missing(&1u64).await.unwrap());
}

#[tokio::test]
async fn a_key_that_looks_like_a_namespace_does_not_collide_with_it() {
    let users = memory().cache("users").unwrap();
    users
        .set(&("admins", 1u64), &"tuple key".to_string())
        .await
        .unwrap();
    users
        .namespace("admins")
        .set(&1u64, &"namespaced".to_string())
        .await
        .unwrap();
    assert_eq!(
        users
            .get::<String>(&("admins", 1u64))
            .await
            .unwrap()
            .as_deref(),
        Some("tuple key")
    );
}

#[tokio::test]
async fn reading_as_another_type_is_a_miss_not_a_panic() {
    let users = memory().cache("users").unwrap();
    users.set(&1u64, &ann()).await.unwrap();
    assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
    assert_eq!(users.get::<User>(&1u64).await.unwrap(), Some(ann()));
}

#[tokio::test]
async fn the_none_manager_keeps_nothing() {
    let users = CacheManager::none().cache("users").unwrap();
    users.set(&1u64, &ann()).await.unwrap();
    assert_eq!(users.get::<User>(&1u64).await.unwrap(), None);
    assert_eq!(users.stats().puts, 0, "nothing was stored");
    let mut runs = 0;
    for _ in 0..2 {
        let _: User = users
            .get_or_set(&1u64, || {
                runs += 1;
                async { ann() }
            })
            .await
            .unwrap();
    }
    assert_eq!(runs, 2);
}

#[tokio::test]
async fn stores_are_reached_by_name() {
    let manager = CacheManager::builder()
        .memory_store("fast")
        .memory_store("other")
        .default_store("fast")
        .build()
        .unwrap();
    let in_other = manager.store("other").unwrap().cache("users");
    in_other.set(&1u64, &1u8).await.unwrap();
    assert!(manager
        .cache("users")
        .unwrap()
        .missing(&1u64)
        .await
        .unwrap());
    assert!(in_other.has(&1u64).await.unwrap());
    assert!(matches!(
        manager.store("nope"),
        Err(CacheError::UnknownStore { .. })
    ));
}

#[tokio::test]
async fn cache_names_restricts_the_caches_that_exist() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .cache_names(["users"])
        .validate_declarations(false)
        .build()
        .unwrap();
    assert!(manager.cache("users").is_ok());
    let err = manager.cache("posts").unwrap_err();
    assert!(matches!(err, CacheError::UnknownCache { .. }));
    assert!(err.to_string().contains("posts"), "{err}");
}

#[tokio::test]
async fn handles_share_counters() {
    let manager = memory();
    manager
        .cache("users")
        .unwrap()
        .set(&1u64, &1u8)
        .await
        .unwrap();
    let _: Option<u8> = manager.cache("users").unwrap().get(&1u64).await.unwrap();
    let stats = manager.store("memory").unwrap().cache("users").stats();
    assert_eq!((stats.puts, stats.hits), (1, 1));
}

#[tokio::test]
async fn a_factory_past_the_hard_timeout_is_a_timeout_error_or_the_stale_value() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .hard_timeout(Duration::from_millis(50))
        .cache_options(
            "graced",
            cachet::CacheOptions::new()
                .ttl(Duration::from_millis(20))
                .grace(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        1u32
    };
    let err = manager
        .cache("users")
        .unwrap()
        .get_or_set(&1u64, slow)
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Timeout { .. }), "{err:?}");

    let graced = manager.cache("graced").unwrap();
    graced.set(&1u64, &7u32).await.unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(
        graced.get_or_set(&1u64, slow).await.unwrap(),
        7,
        "stale value served past the hard timeout"
    );
    assert_eq!(graced.stats().stale, 1);
}

#[tokio::test]
async fn a_factory_that_asks_for_its_own_key_does_not_deadlock() {
    let users = memory().cache("users").unwrap();
    let inner = users.clone();
    let outer = tokio::time::timeout(
        Duration::from_secs(5),
        users.get_or_set(&1u64, || async move {
            let nested: u32 = inner.get_or_set(&1u64, || async { 7 }).await.unwrap();
            nested + 1
        }),
    )
    .await
    .expect("the nested call on the same key must not wait for its own caller");
    assert_eq!(outer.unwrap(), 8);
}
