//! Batch caching: `get_many`, `set_many`, `get_or_set_many` (and `try_`), on memory and on
//! a tiered store over a real `redis-server`.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use cachet::{CacheError, CacheManager};
use support::redis_server::RedisServer;
use support::{eventually, redis_cli};

fn memory() -> CacheManager {
    CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap()
}

fn names(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|id| (*id, format!("user {id}"))).collect()
}

#[tokio::test]
async fn get_many_answers_hits_only_and_set_many_writes_what_single_reads_find() {
    let users = memory().cache("users").unwrap();
    users
        .set_many(&[(1u64, "ann".to_string()), (2, "bob".to_string())])
        .await
        .unwrap();
    let found = users.get_many::<String, _>(&[1u64, 2, 3, 1]).await.unwrap();
    assert_eq!(
        found,
        HashMap::from([(1, "ann".to_string()), (2, "bob".to_string())])
    );
    assert_eq!(
        users.get::<String>(&2u64).await.unwrap().as_deref(),
        Some("bob")
    );
    // Another type under those keys is a miss, as for single reads.
    assert!(users.get_many::<u32, _>(&[1u64]).await.unwrap().is_empty());
    let stats = users.stats();
    assert_eq!((stats.puts, stats.misses), (2, 2), "{stats:?}");
}

#[tokio::test]
async fn get_or_set_many_loads_only_the_missing_keys_once_and_stores_what_it_returned() {
    let users = memory().cache("users").unwrap();
    users.set(&2u64, &"cached".to_string()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, a) = (calls.clone(), asked.clone());
    let all = users
        .get_or_set_many(&[1u64, 2, 3, 4, 3], move |missing: Vec<u64>| async move {
            c.fetch_add(1, SeqCst);
            *a.lock().unwrap() = missing.clone();
            // 4 is not found by the loader: neither stored nor answered.
            names(
                &missing
                    .into_iter()
                    .filter(|id| *id != 4)
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(*asked.lock().unwrap(), [1, 3, 4]);
    assert_eq!(all.len(), 3);
    assert_eq!(all[&2], "cached");
    assert_eq!(all[&3], "user 3");
    assert_eq!(
        users.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("user 1")
    );
    assert!(users.get::<String>(&4u64).await.unwrap().is_none());
    // Everything cached now: the factory is not called at all.
    let again: HashMap<u64, String> = users
        .get_or_set_many(&[1u64, 2, 3], |_: Vec<u64>| async {
            panic!("the factory ran although every key was cached")
        })
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
}

#[tokio::test]
async fn a_failing_batch_factory_stores_nothing_and_returns_its_error() {
    #[derive(Debug)]
    struct Down;
    impl From<CacheError> for Down {
        fn from(_: CacheError) -> Self {
            Down
        }
    }
    let users = memory().cache("users").unwrap();
    let r: Result<HashMap<u64, String>, Down> = users
        .try_get_or_set_many(&[1u64, 2], |_: Vec<u64>| async { Err(Down) })
        .await;
    assert!(r.is_err());
    assert!(users
        .get_many::<String, _>(&[1u64, 2])
        .await
        .unwrap()
        .is_empty());
    let ok: Result<HashMap<u64, String>, Down> = users
        .try_get_or_set_many(&[1u64, 2], |missing: Vec<u64>| async move {
            Ok(names(&missing))
        })
        .await;
    assert_eq!(ok.unwrap().len(), 2);
}

/// A single `get_or_set` on a key the batch is loading waits for the batch's value instead
/// of running its own factory. One thread: the single call starts while the batch's
/// factory is running (it holds the gates), and waits at the gate until the batch ends.
#[tokio::test(flavor = "current_thread")]
async fn a_single_get_or_set_on_a_key_being_batch_loaded_takes_the_batch_value() {
    let users = memory().cache("users").unwrap();
    let single_loads = Arc::new(AtomicUsize::new(0));
    let (u, loads) = (users.clone(), single_loads.clone());
    let mut single = None;
    let all = users
        .get_or_set_many(&[7u64, 8], |missing: Vec<u64>| {
            // Started while the batch holds the gates of 7 and 8.
            single = Some(tokio::spawn(async move {
                u.get_or_set(&8u64, move || async move {
                    loads.fetch_add(1, SeqCst);
                    "single".to_string()
                })
                .await
                .unwrap()
            }));
            async move {
                // Lets the single call run up to the gate.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                names(&missing)
            }
        })
        .await
        .unwrap();
    let single = single.unwrap().await.unwrap();
    assert_eq!(single, "user 8");
    assert_eq!(all[&8], "user 8");
    assert_eq!(
        single_loads.load(SeqCst),
        0,
        "the single call ran its own load"
    );
}

/// Two batches sharing keys, at once: each key is loaded once across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_sharing_keys_load_each_key_once() {
    let users = memory().cache("users").unwrap();
    let loaded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let batch = |ids: Vec<u64>| {
        let (users, loaded) = (users.clone(), loaded.clone());
        tokio::spawn(async move {
            users
                .get_or_set_many(&ids, move |missing: Vec<u64>| async move {
                    loaded.lock().unwrap().extend(missing.iter().copied());
                    tokio::task::yield_now().await;
                    names(&missing)
                })
                .await
                .unwrap()
        })
    };
    let (a, b) = (batch((0..60).collect()), batch((30..90).rev().collect()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!((a.len(), b.len()), (60, 60));
    assert!(a
        .iter()
        .chain(&b)
        .all(|(id, name)| *name == format!("user {id}")));
    let mut loaded = loaded.lock().unwrap().clone();
    loaded.sort_unstable();
    assert_eq!(
        loaded,
        (0..90).collect::<Vec<u64>>(),
        "a key was loaded twice"
    );
}

#[tokio::test]
async fn the_none_store_runs_the_factory_for_every_key_and_keeps_nothing() {
    let users = CacheManager::none().cache("users").unwrap();
    let all = users
        .get_or_set_many(
            &[1u64, 2],
            |missing: Vec<u64>| async move { names(&missing) },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(users
        .get_many::<String, _>(&[1u64, 2])
        .await
        .unwrap()
        .is_empty());
}

fn tiered(server: &RedisServer, prefix: &str) -> CacheManager {
    let url = server.url();
    CacheManager::from_toml_str(&format!(
        r#"
        prefix = "{prefix}"
        ttl = "1h"
        [stores.tiered]
        l1 = {{ driver = "memory", max_entries = 1000 }}
        l2 = {{ driver = "redis", url = "{url}" }}
        bus = {{ driver = "redis", url = "{url}" }}
        "#
    ))
    .unwrap()
}

/// On a tiered store: a batch load reads L2 for what L1 misses, writes every loaded value
/// to Redis with its TTL, and tells the other instances, whose L1 copies go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_a_tiered_redis_store_read_and_write_l2_and_invalidate_other_instances() {
    let server = RedisServer::start();
    let (a, b) = (tiered(&server, "batch"), tiered(&server, "batch"));
    let (users_a, users_b) = (a.cache("users").unwrap(), b.cache("users").unwrap());
    // B holds an old value of 3 in its L1.
    users_b.set(&3u64, &"old".to_string()).await.unwrap();
    assert_eq!(
        users_b.get::<String>(&3u64).await.unwrap().as_deref(),
        Some("old")
    );
    // A's batch: 1 and 2 from Redis (written by B), 3 and 4 loaded and written.
    users_b
        .set_many(&[(1u64, "one".to_string()), (2, "two".to_string())])
        .await
        .unwrap();
    let all = users_a
        .get_or_set_many(&[1u64, 2, 4], |missing: Vec<u64>| async move {
            assert_eq!(missing, [4]);
            names(&missing)
        })
        .await
        .unwrap();
    assert_eq!((all[&1].as_str(), all[&4].as_str()), ("one", "user 4"));
    assert_eq!(users_a.stats().l2_hits, 2);
    users_a
        .set_many(&[(3u64, "new".to_string())])
        .await
        .unwrap();
    let ttl: i64 = redis_cli(server.port(), &["PTTL", "batch:users:4"])
        .parse()
        .unwrap();
    assert!(ttl > 0, "a batch-written key has no TTL in Redis: {ttl}");
    eventually(
        "B's L1 copy of 3 is dropped by A's batch write",
        async || users_b.get::<String>(&3u64).await.unwrap().as_deref() == Some("new"),
    )
    .await;
    let from_b = users_b
        .get_many::<String, _>(&[1u64, 2, 3, 4])
        .await
        .unwrap();
    assert_eq!(from_b.len(), 4);
}

// ----- #[cacheable_many] -----

static SINGLE_LOADS: AtomicUsize = AtomicUsize::new(0);
static BATCH_ASKED: std::sync::Mutex<Vec<Vec<u64>>> = std::sync::Mutex::new(Vec::new());

#[derive(Debug, PartialEq)]
struct DbError;

#[cachet::cacheable("people")]
async fn find_person(id: u64) -> Result<String, DbError> {
    SINGLE_LOADS.fetch_add(1, SeqCst);
    Ok(format!("user {id}"))
}

/// Loads what it is asked for, but never 13 (not found) and fails on 666.
#[cachet::cacheable_many("people")]
async fn load_people(ids: Vec<u64>) -> Result<HashMap<u64, String>, DbError> {
    BATCH_ASKED.lock().unwrap().push(ids.clone());
    if ids.contains(&666) {
        return Err(DbError);
    }
    Ok(names(
        &ids.into_iter().filter(|id| *id != 13).collect::<Vec<_>>(),
    ))
}

struct Db {
    prefix: &'static str,
}

#[cachet::cacheable_many("labels", skip(db), ttl = "5m")]
async fn labels(db: &Db, ids: &[u64]) -> Vec<(u64, String)> {
    ids.iter()
        .map(|id| (*id, format!("{}{id}", db.prefix)))
        .collect()
}

#[tokio::test]
async fn cacheable_many_loads_only_the_missing_keys_into_the_entries_single_calls_read() {
    cachet::testing::with_manager(memory(), async {
        BATCH_ASKED.lock().unwrap().clear();
        assert_eq!(find_person(1).await, Ok("user 1".into()));
        let loads = SINGLE_LOADS.load(SeqCst);
        let people = load_people(vec![1, 2, 3, 13]).await.unwrap();
        assert_eq!(people.len(), 3, "{people:?}");
        assert_eq!(people[&2], "user 2");
        // Only the missing keys reached the body.
        assert_eq!(*BATCH_ASKED.lock().unwrap(), [vec![2, 3, 13]]);
        // A single call reads the entry the batch stored: no load.
        assert_eq!(find_person(3).await, Ok("user 3".into()));
        assert_eq!(SINGLE_LOADS.load(SeqCst), loads);
        // 13 was not returned, so not stored: the next batch asks for it again, alone.
        load_people(vec![1, 2, 13]).await.unwrap();
        assert_eq!(BATCH_ASKED.lock().unwrap().last().unwrap(), &vec![13]);
        // An error is returned and nothing of the call stored.
        assert_eq!(load_people(vec![4, 666]).await, Err(DbError));
        let cache = cachet::cache("people").unwrap();
        assert!(cache.get::<String>(&4u64).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn cacheable_many_takes_slices_skipped_arguments_and_list_results_in_key_order() {
    cachet::testing::with_manager(memory(), async {
        let db = Db { prefix: "label " };
        let first = labels(&db, &[3, 1, 2]).await;
        assert_eq!(
            first,
            [
                (3, "label 3".into()),
                (1, "label 1".into()),
                (2, "label 2".into())
            ]
        );
        let other = Db { prefix: "other " };
        // Cached keys come from the cache, the new one from the body, in the order asked.
        let again = labels(&other, &[2, 4]).await;
        assert_eq!(again, [(2, "label 2".into()), (4, "other 4".into())]);
        let declared = cachet::declared_caches();
        let d = declared
            .iter()
            .find(|d| d.function.ends_with("::labels"))
            .unwrap();
        assert_eq!(
            (d.annotation, d.cache, d.value_type),
            ("cacheable_many", "labels", "String")
        );
    })
    .await;
}

/// Grace for batches: when the factory fails and every key it was asked for has a stale
/// value (past its TTL, within grace), the batch answers with them, as a single call does;
/// when one has none, the factory's error is returned. Time is a manual clock.
#[tokio::test]
async fn a_failing_batch_factory_is_answered_with_stale_values_within_grace() {
    use cachet::testing::ManualClock;
    use std::time::Duration;
    let clock = ManualClock::new();
    let manager =
        support::clocked::memory_on(&clock, Duration::from_secs(30), Duration::from_secs(3600))
            .build()
            .unwrap();
    let users = manager.cache("users").unwrap();
    let first = users
        .try_get_or_set_many(&[1u64, 2], |missing| async move {
            Ok::<_, CacheError>(names(&missing))
        })
        .await
        .unwrap();
    assert_eq!(first, names(&[1, 2]));
    clock.advance(Duration::from_secs(31)); // past the TTL, within grace

    let stale = users
        .try_get_or_set_many(&[1u64, 2], |_| async move {
            Err::<HashMap<u64, String>, _>(CacheError::Codec("the database is down".into()))
        })
        .await
        .expect("served stale");
    assert_eq!(stale, names(&[1, 2]));
    assert_eq!(users.stats().stale, 2);

    // Key 3 has nothing to fall back on: the error.
    let failed = users
        .try_get_or_set_many(&[1u64, 3], |_| async move {
            Err::<HashMap<u64, String>, _>(CacheError::Codec("the database is down".into()))
        })
        .await;
    assert!(failed.is_err());

    // Past the grace period, nothing is served either.
    clock.advance(Duration::from_secs(3600));
    let failed = users
        .try_get_or_set_many(&[1u64], |_| async move {
            Err::<HashMap<u64, String>, _>(CacheError::Codec("the database is down".into()))
        })
        .await;
    assert!(failed.is_err());
}
