//! Typed caches (`cachet::caches!`): declared once with their key and value types, named by
//! path in annotations, used without turbofish, resolved through the manager in effect and
//! checked when a manager is built. (A test binary of its own: the declarations a manager
//! checks are these.) The compile-time errors are pinned in `tests/ui/typed/`.

use std::collections::HashMap;

use cachet::{cache_evict, cache_put, cacheable, cacheable_many, CacheError, CacheManager};
use serde::{Deserialize, Serialize};

#[path = "support/unresolved.rs"]
mod unresolved;

/// A user, the declared value type of `USERS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    id: u64,
    name: String,
}

mod caches {
    use super::User;

    cachet::caches! {
        /// Users by id.
        pub USERS: u64 => User = "users", tags = ["people"];
        /// Greetings by name: `&str` keys are accepted for `String`.
        pub GREETINGS: String => String = "greetings";
        /// Order totals by customer and reference.
        pub(crate) ORDERS: (u64, String) => u32 = "orders", ttl = "5m";
        /// Scores by player: the programmatic API's operations, typed.
        pub SCORES: String => u32 = "scores", grace = "1h";
    }
}

use caches::{GREETINGS, ORDERS, SCORES, USERS};

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.into(),
    }
}

#[cacheable(USERS)]
async fn find_user(id: u64) -> Result<User, CacheError> {
    Ok(user(id, "loaded"))
}

#[cacheable(USERS)]
async fn maybe_user(id: &u64) -> Option<User> {
    (*id > 0).then(|| user(*id, "maybe"))
}

/// Runs of `find_maybe`, by id (tests run in parallel, each with its own ids).
static MAYBE_RUNS: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

fn maybe_runs(id: u64) -> usize {
    MAYBE_RUNS
        .lock()
        .unwrap()
        .iter()
        .filter(|&&i| i == id)
        .count()
}

/// `Option<User>` on `u64 => User`: `Some(user)` is stored as the `User` itself.
#[cacheable(USERS)]
async fn find_maybe(id: u64) -> Option<User> {
    MAYBE_RUNS.lock().unwrap().push(id);
    (id < 1000).then(|| user(id, "found"))
}

#[cache_put(USERS, key = user.id)]
async fn save_user(user: User) -> Result<User, CacheError> {
    Ok(user)
}

#[cache_evict(USERS)]
async fn delete_user(id: u64) -> Result<(), CacheError> {
    let _ = id;
    Ok(())
}

#[cacheable(GREETINGS)]
fn greet(name: &str) -> String {
    format!("hello {name}")
}

#[cacheable(caches::ORDERS)]
async fn order_total(customer: u64, reference: &str) -> u32 {
    reference.len() as u32 + customer as u32
}

#[cacheable_many(USERS)]
async fn load_users(ids: Vec<u64>) -> HashMap<u64, User> {
    ids.into_iter().map(|id| (id, user(id, "batch"))).collect()
}

fn manager() -> CacheManager {
    CacheManager::builder().build().expect("manager")
}

#[tokio::test]
async fn annotations_and_programmatic_calls_share_the_declared_entries() {
    cachet::testing::with_manager(manager(), async {
        assert_eq!(find_user(42).await.unwrap(), user(42, "loaded"));
        // No turbofish: the declaration knows the value type.
        let cached: Option<User> = USERS.get(&42).await.unwrap();
        assert_eq!(cached, Some(user(42, "loaded")));

        save_user(user(42, "saved")).await.unwrap();
        assert_eq!(find_user(42).await.unwrap(), user(42, "saved"));

        delete_user(42).await.unwrap();
        assert_eq!(USERS.get(&42).await.unwrap(), None);

        USERS.set(&7, &user(7, "set")).await.unwrap();
        assert_eq!(find_user(7).await.unwrap(), user(7, "set"));
        // `&u64` keys and `Option<User>` results are accepted for `u64 => User`.
        assert_eq!(maybe_user(&9).await, Some(user(9, "maybe")));

        // The string name reaches the same entries.
        let by_name = cachet::cache("users").unwrap();
        assert_eq!(
            by_name.get::<User>(&7u64).await.unwrap(),
            Some(user(7, "set"))
        );
    })
    .await;
}

#[tokio::test]
async fn an_option_returning_function_shares_the_typed_entries_unwrapped() {
    cachet::testing::with_manager(manager(), async {
        // A put of a plain `User` is found by the `Option<User>` function: no run.
        save_user(user(501, "saved")).await.unwrap();
        assert_eq!(find_maybe(501).await, Some(user(501, "saved")));
        assert_eq!(maybe_runs(501), 0);
        // What the `Option` function stores is the `User`: read by `get`, no turbofish.
        assert_eq!(find_maybe(502).await, Some(user(502, "found")));
        assert_eq!(USERS.get(&502).await.unwrap(), Some(user(502, "found")));
        assert_eq!(find_user(502).await.unwrap(), user(502, "found"));
        USERS.set(&503, &user(503, "set")).await.unwrap();
        assert_eq!(find_maybe(503).await, Some(user(503, "set")));
        assert_eq!((maybe_runs(502), maybe_runs(503)), (1, 0));
        // `None` is the null marker: cached for the function, no value for `get`.
        assert_eq!(find_maybe(5000).await, None);
        assert_eq!(find_maybe(5000).await, None);
        assert_eq!(maybe_runs(5000), 1, "the cached None answered");
        assert_eq!(USERS.get(&5000).await.unwrap(), None);
        // A cached absence: had, not missing (it answers the function), though `get` reads
        // no value; the string-named handle agrees.
        assert!(USERS.has(&5000).await.unwrap() && !USERS.missing(&5000).await.unwrap());
        let by_name = cachet::cache("users").unwrap();
        assert!(by_name.has(&5000u64).await.unwrap());
        assert_eq!(by_name.get::<User>(&5000u64).await.unwrap(), None);
        // Nothing cached at all: neither.
        assert!(!USERS.has(&5001).await.unwrap() && USERS.missing(&5001).await.unwrap());
        // Evicted through the typed path: the function runs again.
        delete_user(502).await.unwrap();
        assert_eq!(find_maybe(502).await, Some(user(502, "found")));
        assert_eq!(maybe_runs(502), 2);
    })
    .await;
}

#[tokio::test]
async fn borrowed_keys_address_the_owned_keys_entries() {
    cachet::testing::with_manager(manager(), async {
        assert_eq!(greet("ada"), "hello ada");
        assert_eq!(
            GREETINGS.get("ada").await.unwrap().as_deref(),
            Some("hello ada")
        );
        assert_eq!(
            GREETINGS.get(&"ada".to_string()).await.unwrap().as_deref(),
            Some("hello ada")
        );
        assert_eq!(order_total(1, "abc").await, 4);
        assert_eq!(ORDERS.get(&(1, "abc".to_string())).await.unwrap(), Some(4));
    })
    .await;
}

#[tokio::test]
async fn batches_store_the_entries_single_calls_read() {
    cachet::testing::with_manager(manager(), async {
        USERS.set(&1, &user(1, "cached")).await.unwrap();
        let all = load_users(vec![1, 2]).await;
        assert_eq!(all[&1], user(1, "cached"));
        assert_eq!(all[&2], user(2, "batch"));
        assert_eq!(find_user(2).await.unwrap(), user(2, "batch"));
        let many = USERS.get_many(&[1, 2, 3]).await.unwrap();
        assert_eq!(many.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn the_declarations_tags_reach_entries_written_by_annotations() {
    cachet::testing::with_manager(manager(), async {
        find_user(5).await.unwrap();
        USERS.set(&6, &user(6, "set")).await.unwrap();
        cachet::cache("users")
            .unwrap()
            .delete_by_tag("people")
            .await
            .unwrap();
        assert_eq!(USERS.get(&5).await.unwrap(), None);
        assert_eq!(USERS.get(&6).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn the_declarations_options_are_a_layer_under_the_call() {
    assert_eq!(
        ORDERS.declaration().options.ttl,
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(USERS.declaration().tags, ["people"]);
    assert_eq!(USERS.declaration().doc, "Users by id.");
    assert_eq!(ORDERS.declaration().key_type, "(u64, String)");
}

#[tokio::test]
async fn a_declared_cache_resolves_through_the_manager_in_effect() {
    let a = manager();
    let b = manager();
    a.scope(async {
        USERS.set(&1, &user(1, "in a")).await.unwrap();
    })
    .await;
    cachet::testing::with_manager(b.clone(), async {
        assert_eq!(USERS.get(&1).await.unwrap(), None);
        assert_eq!(find_user(1).await.unwrap(), user(1, "loaded"));
    })
    .await;
    a.scope(async {
        assert_eq!(USERS.get(&1).await.unwrap(), Some(user(1, "in a")));
        assert_eq!(find_user(1).await.unwrap(), user(1, "in a"));
    })
    .await;
}

#[test]
fn a_manager_that_cannot_resolve_a_declared_cache_fails_to_build() {
    let unresolved::Unresolved {
        cache,
        function,
        file,
        ..
    } = unresolved::unresolved(&["greetings", "orders"]);
    assert_eq!(cache, "users");
    assert!(function.contains("caches::USERS"), "{function}");
    assert!(file.ends_with("typed.rs"), "{file}");
}

#[test]
fn declared_caches_name_the_typed_declaration() {
    let declared = cachet::declared_caches();
    let find = declared
        .iter()
        .find(|d| d.function.ends_with("::find_user"))
        .expect("find_user is declared");
    assert_eq!(find.cache, "users");
}

/// Every operation of the programmatic API on a typed cache, with its key and value types and
/// no turbofish (`&str` keys for its `String` keys), through whichever manager is in effect.
async fn every_operation_typed() {
    let ann = "ann".to_string();
    SCORES.set(&ann, &1).await.unwrap();
    let score: Option<u32> = SCORES.get("ann").await.unwrap();
    assert_eq!(score, Some(1));
    assert!(SCORES.has("ann").await.unwrap() && !SCORES.missing("ann").await.unwrap());

    // Expired: no fresh value, the stale one within the declaration's grace.
    SCORES.expire("ann").await.unwrap();
    assert_eq!(SCORES.get_fresh("ann").await.unwrap(), None);
    assert_eq!(SCORES.get("ann").await.unwrap(), Some(1));
    assert!(SCORES.missing("ann").await.unwrap());

    SCORES
        .set_with("bob", &2, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    SCORES.set_forever("cy", &3).await.unwrap();
    assert_eq!(SCORES.get_fresh("bob").await.unwrap(), Some(2));
    assert_eq!(SCORES.get_fresh("cy").await.unwrap(), Some(3));
    assert_eq!(SCORES.pull("cy").await.unwrap(), Some(3));
    assert_eq!(SCORES.pull("cy").await.unwrap(), None);
    SCORES.delete("bob").await.unwrap();
    assert_eq!(SCORES.get("bob").await.unwrap(), None);

    // The loading forms: a borrowing factory, a detached one, fallible ones, adaptive ones.
    let loads = std::cell::Cell::new(0);
    let load = || async {
        loads.set(loads.get() + 1);
        4
    };
    assert_eq!(SCORES.get_or_set("dee", load).await.unwrap(), 4);
    assert_eq!(SCORES.get_or_set("dee", load).await.unwrap(), 4);
    assert_eq!(loads.get(), 1);
    let failed: Result<u32, CacheError> = SCORES
        .try_get_or_set("eve", || async { Err(CacheError::Codec("down".into())) })
        .await;
    assert!(failed.is_err());
    assert!(SCORES.missing("eve").await.unwrap());
    let eve = SCORES.try_get_or_set("eve", || async { Ok::<_, CacheError>(5) });
    assert_eq!(eve.await.unwrap(), 5);
    let fay = SCORES.get_or_set_detached("fay", || async { 6 });
    assert_eq!(fay.await.unwrap(), 6);
    let gil = SCORES.try_get_or_set_detached("gil", || async { Ok::<_, CacheError>(7) });
    assert_eq!(gil.await.unwrap(), 7);
    let hal = SCORES.get_or_set_adaptive("hal", || async { cachet::Adaptive::new(8).no_store() });
    assert_eq!(hal.await.unwrap(), 8);
    assert!(SCORES.missing("hal").await.unwrap());
    let ivy = SCORES.try_get_or_set_adaptive("ivy", || async {
        Ok::<_, CacheError>(cachet::Adaptive::new(9).forever())
    });
    assert_eq!(ivy.await.unwrap(), 9);
    for (key, value) in [("eve", 5), ("fay", 6), ("gil", 7), ("ivy", 9)] {
        assert_eq!(SCORES.get(key).await.unwrap(), Some(value), "{key}");
    }

    // The batches.
    let (jo, kai) = ("jo".to_string(), "kai".to_string());
    SCORES.set_many(&[(jo.clone(), 10)]).await.unwrap();
    let all = SCORES
        .get_or_set_many(&[jo.clone(), kai.clone()], |missing| async move {
            assert_eq!(missing, ["kai"]);
            missing
                .into_iter()
                .map(|k| (k, 11))
                .collect::<HashMap<_, _>>()
        })
        .await
        .unwrap();
    assert_eq!((all[&jo], all[&kai]), (10, 11));
    let lee = ["lee".to_string()];
    let tried = SCORES.try_get_or_set_many(&lee, |missing| async move {
        Ok::<_, CacheError>(
            missing
                .into_iter()
                .map(|k| (k, 12))
                .collect::<HashMap<_, _>>(),
        )
    });
    assert_eq!(tried.await.unwrap()[&lee[0]], 12);
    SCORES.delete_many(std::slice::from_ref(&jo)).await.unwrap();
    assert_eq!(SCORES.get_many(&[jo, kai]).await.unwrap().len(), 1);

    // Every entry was the cache's: the string name reads them, and `clear` takes them all.
    let by_name = cachet::cache("scores").unwrap();
    assert_eq!(by_name.get::<u32>(&"lee").await.unwrap(), Some(12));
    SCORES.clear().await.unwrap();
    assert!(SCORES.missing("lee").await.unwrap() && SCORES.missing("dee").await.unwrap());
}

#[tokio::test]
async fn every_operation_is_typed_under_a_scoped_manager() {
    let scoped = manager();
    cachet::testing::with_manager(scoped.clone(), every_operation_typed()).await;
    // They went to the scoped manager's cache.
    assert!(scoped.cache("scores").unwrap().stats().puts > 0);
}

#[tokio::test]
async fn every_operation_is_typed_under_the_global_manager() {
    match cachet::init(manager()) {
        Ok(()) | Err(CacheError::AlreadyInitialized) => {}
        Err(other) => panic!("{other}"),
    }
    every_operation_typed().await;
}
