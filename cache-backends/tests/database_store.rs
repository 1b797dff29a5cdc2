//! The database store beyond the conformance suite: pruning, `auto_create = false`, the
//! lock through managers, the PostgreSQL bus, and configuration, on real servers.
#![cfg(all(feature = "database", feature = "postgres", feature = "sqlite"))]
#![allow(clippy::unwrap_used)]

mod database_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_backends::database::{DatabaseOptions, DatabaseTier, PostgresBus};
use cache_core::store::{Bus, BusEvent, Invalidation, RemoteEntry, RemoteTier, Scope};
use cache_core::{CacheManager, TierErrorKind};
use database_support::postgres_server::PostgresServer;
use database_support::{Raw, TempSqlite};

async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !probe().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn tier(url: &str) -> DatabaseTier {
    DatabaseTier::new(&DatabaseOptions::new(url).operation_timeout(Duration::from_secs(10)))
        .unwrap()
}

/// Expired rows are misses while still on disk; pruning deletes them (more than one batch)
/// and their tag memberships, and nothing live.
async fn prune_case(url: &str) {
    let t = tier(url);
    for i in 0..2100 {
        t.set(
            &format!("app:c:{i}"),
            b"old".to_vec(),
            Duration::from_millis(1),
        )
        .await
        .unwrap();
    }
    t.set_tagged(
        "app:c:tagged",
        b"x".to_vec(),
        Duration::from_millis(1),
        &["app:c:=tag:t".into()],
        Duration::from_millis(1),
    )
    .await
    .unwrap();
    for i in 0..10 {
        t.set(
            &format!("app:live:{i}"),
            b"new".to_vec(),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    }
    eventually("the short-lived rows expired", async || {
        t.get("app:c:2099").await.unwrap().is_none()
    })
    .await;
    let raw = Raw::connect(url).await;
    assert!(
        t.get("app:c:0").await.unwrap().is_none(),
        "an expired row is a miss before it is pruned"
    );
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM cachet_entries").await,
        2111,
        "expired rows are still there"
    );
    let pruned = t.prune().await.unwrap();
    assert_eq!(pruned, 2102, "2101 entries and 1 tag membership");
    assert_eq!(raw.count("SELECT COUNT(*) FROM cachet_entries").await, 10);
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM cachet_entries_tags").await,
        0
    );
    assert_eq!(t.get("app:live:3").await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(t.prune().await.unwrap(), 0);
}

#[tokio::test]
async fn pruning_deletes_expired_rows_in_batches_on_sqlite() {
    let file = TempSqlite::new();
    prune_case(&file.url()).await;
}

#[tokio::test]
async fn pruning_deletes_expired_rows_in_batches_on_postgres() {
    let server = PostgresServer::start();
    prune_case(&server.url()).await;
}

#[tokio::test]
async fn prune_interval_prunes_in_the_background() {
    cache_backends::link();
    let file = TempSqlite::new();
    let manager = CacheManager::from_toml_str(&format!(
        "[stores.db]\nl2 = {{ driver = \"database\", url = \"{}\", prune_interval = \"50ms\" }}",
        file.url()
    ))
    .unwrap();
    let store = manager.store("db").unwrap();
    let cache = store.cache("c");
    for i in 0..20u64 {
        cache
            .set_with(&i, &i, Duration::from_millis(1))
            .await
            .unwrap();
    }
    let raw = Raw::connect(&file.url()).await;
    eventually("the background task pruned every expired row", async || {
        raw.count("SELECT COUNT(*) FROM cachet_entries").await == 0
    })
    .await;
}

#[tokio::test]
async fn without_auto_create_a_missing_table_is_an_error_naming_it_with_its_ddl() {
    let file = TempSqlite::new();
    let strict = DatabaseTier::new(
        &DatabaseOptions::new(file.url())
            .table("my_cache")
            .auto_create(false),
    )
    .unwrap();
    let err = strict.get("app:c:1").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("my_cache") && text.contains("auto_create = false"),
        "{text}"
    );
    assert!(
        text.contains("CREATE TABLE IF NOT EXISTS my_cache ("),
        "{text}"
    );
    assert!(
        text.contains("CREATE TABLE IF NOT EXISTS my_cache_tags ("),
        "{text}"
    );
    assert_eq!(
        err.kind(),
        TierErrorKind::Other,
        "a missing table is no outage"
    );
    // Once the tables exist (here made by a tier that may create them), it works.
    DatabaseTier::new(&DatabaseOptions::new(file.url()).table("my_cache"))
        .unwrap()
        .ping()
        .await
        .unwrap();
    strict
        .set("app:c:1", b"v".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(strict.get("app:c:1").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test]
async fn descriptions_and_errors_never_show_the_password() {
    let server = PostgresServer::start_with_password("s3cret-pw");
    let wrong = server.url_with_password("hunter2-wrong");
    let t =
        DatabaseTier::new(&DatabaseOptions::new(&wrong).connect_timeout(Duration::from_secs(5)))
            .unwrap();
    assert!(!format!("{t:?}").contains("hunter2"));
    assert!(!t.describe().contains("hunter2"), "{}", t.describe());
    let err = t.ping().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert_eq!(
        err.kind(),
        TierErrorKind::Unavailable,
        "refused credentials make the tier unusable"
    );
    // The right password works.
    tier(&server.url()).ping().await.unwrap();
}

/// Two managers sharing PostgreSQL with `lock = "database"`: a missing key's function runs
/// once across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_lock_runs_a_function_once_across_instances() {
    cache_backends::link();
    let server = PostgresServer::start();
    let config = format!(
        "[stores.db]\nl1 = {{ driver = \"memory\", max_entries = 100 }}\nl2 = {{ driver = \"database\", url = \"{}\" }}\nlock = \"database\"\nlock_timeout = \"10s\"",
        server.url()
    );
    let a = CacheManager::from_toml_str(&config).unwrap();
    let b = CacheManager::from_toml_str(&config).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let call = |manager: CacheManager, runs: Arc<AtomicUsize>| async move {
        let cache = manager.cache("reports").unwrap();
        cache
            .get_or_set(&7u64, move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                "report".to_string()
            })
            .await
            .unwrap()
    };
    let (x, y) = tokio::join!(call(a.clone(), runs.clone()), call(b.clone(), runs.clone()));
    assert_eq!((x.as_str(), y.as_str()), ("report", "report"));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the function ran on both instances"
    );
    // The lock row is gone once released.
    let raw = Raw::connect(&server.url()).await;
    eventually("the lock was released", async || {
        raw.count("SELECT COUNT(*) FROM cachet_entries WHERE cache_key LIKE '%~lock%'")
            .await
            == 0
    })
    .await;
}

fn recorder() -> (cache_core::store::BusHandler, Arc<Mutex<Vec<BusEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (Arc::new(move |e| sink.lock().unwrap().push(e)), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_bus_delivers_other_instances_keys_ignores_garbage_and_resubscribes() {
    let server = PostgresServer::start();
    let a = PostgresBus::new(&server.url(), "shop:__bus").unwrap();
    let b = PostgresBus::new(&server.url(), "shop:__bus").unwrap();
    let other = PostgresBus::new(&server.url(), "other:__bus").unwrap();
    let (handler, events) = recorder();
    a.subscribe(handler);
    let (other_handler, other_events) = recorder();
    other.subscribe(other_handler);
    eventually("a and other listen", async || {
        a.is_subscribed() && other.is_subscribed()
    })
    .await;
    // Its own messages are not delivered; b's are; another prefix's channel hears nothing.
    a.publish(Invalidation::Keys(vec!["shop:users:0".into()]))
        .await
        .unwrap();
    let keys: Vec<String> = (0..600).map(|i| format!("shop:users:{i}")).collect();
    b.publish(Invalidation::Keys(keys.clone())).await.unwrap();
    b.publish(Invalidation::Scope(cache_core::store::Scope::new(
        "shop:users",
    )))
    .await
    .unwrap();
    eventually("b's messages arrived", async || {
        let got = events.lock().unwrap();
        got.iter()
            .any(|e| matches!(e, BusEvent::Invalidate(Invalidation::Scope(_))))
    })
    .await;
    let delivered: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .flat_map(|e| match e {
            BusEvent::Invalidate(Invalidation::Keys(k)) => k.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        delivered, keys,
        "b's keys, split over several notifications, all arrive in order; a's own do not"
    );
    // Hostile payloads are ignored and counted.
    let channel = a.channel().to_owned();
    for payload in ["garbage", "zz", "01", &"ab".repeat(3000), "00"] {
        server.psql(&format!("SELECT pg_notify('{channel}', '{payload}')"));
    }
    eventually("hostile payloads were counted", async || {
        a.ignored_messages() == 5
    })
    .await;
    assert!(
        other_events.lock().unwrap().is_empty(),
        "another prefix's bus heard shop's messages"
    );
    // The server restarts: the listener comes back and says so.
    server.kill();
    server.restart();
    eventually("a listens again and reported it", async || {
        a.is_subscribed()
            && events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, BusEvent::Resubscribed))
    })
    .await;
    b.publish(Invalidation::Keys(vec!["shop:users:after".into()]))
        .await
        .unwrap();
    eventually("messages flow after the restart", async || {
        events.lock().unwrap().iter().any(|e| matches!(e, BusEvent::Invalidate(Invalidation::Keys(k)) if k == &["shop:users:after".to_string()]))
    })
    .await;
    assert!(!format!("{a:?}").is_empty());
}

/// Two instances with memory L1s, a PostgreSQL L2 and the PostgreSQL bus stay coherent
/// with no Redis at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_stay_coherent_through_postgres_alone() {
    cache_backends::link();
    let server = PostgresServer::start();
    let config = format!(
        "prefix = \"shop\"\n[stores.db]\nl1 = {{ driver = \"memory\", max_entries = 100 }}\nl2 = {{ driver = \"database\", url = \"{0}\" }}\nbus = {{ driver = \"postgres\", url = \"{0}\" }}",
        server.url()
    );
    let a = CacheManager::from_toml_str(&config).unwrap();
    let b = CacheManager::from_toml_str(&config).unwrap();
    let (ca, cb) = (a.cache("users").unwrap(), b.cache("users").unwrap());
    cb.set(&1u64, &"warm".to_string()).await.unwrap();
    // b's bus is up once a write from a reaches b; until then, messages may be missed.
    eventually("both buses listen", async || {
        ca.set(&0u64, &"ping".to_string()).await.unwrap();
        cb.get::<String>(&0u64).await.unwrap().is_some()
    })
    .await;
    ca.set(&1u64, &"v1".to_string()).await.unwrap();
    // b holds v1 in its L1 now; a writes v2: b drops its copy when a's message arrives.
    eventually("b reads v1", async || {
        cb.get::<String>(&1u64).await.unwrap().as_deref() == Some("v1")
    })
    .await;
    ca.set(&1u64, &"v2".to_string()).await.unwrap();
    eventually("b sees a's write", async || {
        cb.get::<String>(&1u64).await.unwrap().as_deref() == Some("v2")
    })
    .await;
    ca.delete(&1u64).await.unwrap();
    eventually("b sees a's delete", async || {
        cb.get::<String>(&1u64).await.unwrap().is_none()
    })
    .await;
    cb.set(&2u64, &"x".to_string()).await.unwrap();
    assert_eq!(ca.get::<String>(&2u64).await.unwrap().as_deref(), Some("x"));
    cb.clear().await.unwrap();
    eventually("a sees b's clear", async || {
        ca.get::<String>(&2u64).await.unwrap().is_none()
    })
    .await;
}

/// 16 operations on `t` at once: reads of `app:c:1`, which holds `one`, and writes of
/// `app:c:x{i}` (`x`) for the odd `i`.
async fn sixteen_at_once(t: &DatabaseTier) {
    let ops = (0..16).map(|i| async move {
        if i % 2 == 0 {
            let read = t.get("app:c:1").await?;
            assert_eq!(read.as_deref(), Some(&b"one"[..]));
            Ok(())
        } else {
            let minute = Duration::from_secs(60);
            t.set(&format!("app:c:x{i}"), b"x".to_vec(), minute).await
        }
    });
    for result in futures_util::future::join_all(ops).await {
        result.unwrap();
    }
}

/// Connections are leased per operation and kept between operations whose statements
/// completed (no test round trip after them): with a single connection every kind of
/// operation still completes, one after the other and 16 at once (none waits for a
/// connection another keeps), and a statement cut by the operation timeout never leaves
/// its half-read answer to the next operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_serves_every_kind_of_operation_and_a_cut_statement_leaks_nothing() {
    let server = PostgresServer::start();
    let t = DatabaseTier::new(
        &DatabaseOptions::new(server.url())
            .max_connections(1)
            .operation_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    let minute = Duration::from_secs(60);
    let tag = vec!["app:c:=tag:t".to_string()];
    t.set("app:c:1", b"one".to_vec(), minute).await.unwrap();
    t.set_many(vec![
        RemoteEntry::new("app:c:2", b"two".to_vec(), minute),
        RemoteEntry::new("app:c:3", b"three".to_vec(), minute),
    ])
    .await
    .unwrap();
    assert_eq!(
        t.get_many(&["app:c:1".into(), "app:c:2".into()])
            .await
            .unwrap(),
        [Some(b"one".to_vec()), Some(b"two".to_vec())]
    );
    t.set_tagged("app:c:4", b"four".to_vec(), minute, &tag, minute)
        .await
        .unwrap();
    assert_eq!(t.tagged_keys(&tag).await.unwrap(), ["app:c:4"]);
    assert!(t.try_lock("app:~lock:c:1", "me", minute).await.unwrap());
    assert!(t.unlock("app:~lock:c:1", "me").await.unwrap());
    t.delete_tagged(&["app:c:4".into()], &tag).await.unwrap();
    t.delete_many(&["app:c:3".into()]).await.unwrap();
    t.ping().await.unwrap();
    t.prune().await.unwrap();
    let (_, mut keys) = t.scan_scope(&Scope::new("app:c"), 0).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["app:c:1", "app:c:2"]);
    sixteen_at_once(&t).await;
    t.clear_scope(&Scope::new("app:c:x1")).await.unwrap();

    // A write the server holds for 3 s is cut after 1 s, mid-statement.
    server.psql(
        "CREATE FUNCTION cachet_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.cache_key = 'app:c:slow' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$",
    );
    server.psql("CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON cachet_entries FOR EACH ROW EXECUTE FUNCTION cachet_slow()");
    let cut = t.set("app:c:slow", b"slow".to_vec(), minute).await;
    assert_eq!(cut.unwrap_err().kind(), TierErrorKind::Unavailable);
    // The one connection is busy until the server finishes; then every read gets its own
    // answer, never the cut statement's.
    eventually("the connection is usable again", async || {
        t.get("app:c:2").await.is_ok()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"one".to_vec()));
        assert_eq!(t.get("app:c:2").await.unwrap(), Some(b"two".to_vec()));
        assert_eq!(t.get("app:c:none").await.unwrap(), None);
    }
}

/// `sqlite::memory:` is a database per connection, so the store keeps its one connection
/// for its whole life: the data survive every kind of operation, 16 at once included, and
/// callers on other runtimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_sqlite_store_keeps_its_one_connection() {
    let t = tier("sqlite::memory:");
    let minute = Duration::from_secs(60);
    t.set("app:c:1", b"one".to_vec(), minute).await.unwrap();
    sixteen_at_once(&t).await;
    t.delete_many(&["app:c:x1".into()]).await.unwrap();
    t.clear_scope(&Scope::new("app:other")).await.unwrap();
    t.prune().await.unwrap();
    let other = t.clone();
    let from_elsewhere = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(other.get("app:c:x3"))
    })
    .join()
    .unwrap();
    assert_eq!(from_elsewhere.unwrap(), Some(b"x".to_vec()));
    assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(t.get("app:c:x1").await.unwrap(), None);
}
