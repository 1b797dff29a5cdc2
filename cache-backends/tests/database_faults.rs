//! Faults of a PostgreSQL store, each on a real server: the server killed mid-load, a row
//! locked by another transaction, a slow statement. Cached functions always answer with
//! their own value, within the operation timeout and a margin; faults are counted; the
//! store is used again once the fault is gone.
#![cfg(all(feature = "database", feature = "postgres"))]
#![allow(clippy::unwrap_used)]

mod database_support;

use std::time::{Duration, Instant};

use cache_core::{Cache, CacheManager};
use database_support::postgres_server::PostgresServer;
use database_support::Raw;

const OPERATION_TIMEOUT: Duration = Duration::from_millis(300);
/// What a cached call may take beyond the operation timeout on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(3);

fn manager(server: &PostgresServer) -> CacheManager {
    cache_backends::link();
    CacheManager::from_toml_str(&format!(
        "prefix = \"shop\"\n[stores.db]\nl2 = {{ driver = \"database\", url = \"{}\", operation_timeout = \"300ms\", connect_timeout = \"300ms\" }}\nl2_circuit_breaker = \"200ms\"",
        server.url()
    ))
    .unwrap()
}

/// A cached call whose function doubles `i`: it must answer with the function's value in
/// bounded time, whatever the store does.
async fn call(cache: &Cache, i: u64) -> Duration {
    let started = Instant::now();
    let value: u64 = cache
        .get_or_set(&i, move || async move { i * 2 })
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(value, i * 2);
    assert!(
        took < OPERATION_TIMEOUT * 2 + MARGIN,
        "a cached call took {took:?}"
    );
    took
}

async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !probe().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_killed_mid_load_never_fails_a_cached_function() {
    let server = PostgresServer::start();
    let manager = manager(&server);
    let cache = manager.cache("load").unwrap();
    for i in 0..50 {
        call(&cache, i).await;
    }
    let raw = Raw::connect(&server.url()).await;
    assert_eq!(raw.count("SELECT COUNT(*) FROM cachet_entries").await, 50);
    let errors_before = cache.stats().errors;
    // Load from several tasks while the server dies.
    let load = {
        let cache = cache.clone();
        tokio::spawn(async move {
            for round in 0..20u64 {
                let calls = (0..8).map(|t| {
                    let cache = cache.clone();
                    async move { call(&cache, 1000 + round * 8 + t).await }
                });
                futures_util::future::join_all(calls).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.kill();
    load.await.unwrap();
    for i in 0..30 {
        call(&cache, 5000 + i).await;
    }
    assert!(
        cache.stats().errors > errors_before,
        "the faults were not counted"
    );
    // Back: the store is used again (the breaker lets calls through, dead pooled
    // connections are replaced).
    server.restart();
    eventually("a value reaches the restarted database", async || {
        call(&cache, 9000).await;
        cache.delete(&9000u64).await.unwrap();
        let key: u64 = 9001;
        call(&cache, key).await;
        let raw = Raw::connect(&server.url()).await;
        raw.count("SELECT COUNT(*) FROM cachet_entries WHERE cache_key = 'shop:load:9001'")
            .await
            == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_locked_by_another_transaction_never_holds_a_cached_function() {
    let server = PostgresServer::start();
    let manager = manager(&server);
    let cache = manager.cache("c").unwrap();
    cache.set(&1u64, &2u64).await.unwrap();
    // Another transaction holds the row's lock and does not commit.
    let mut session = server.psql_session();
    session.send("BEGIN;");
    session.send("UPDATE cachet_entries SET expires_at = expires_at WHERE cache_key = 'shop:c:1';");
    // `idle in transaction` alone is true right after BEGIN, before the UPDATE has taken the
    // row's lock; a transaction id is assigned only by its first write, so both together say
    // the UPDATE has run and holds the row.
    eventually("the other transaction holds the row", async || {
        server.psql(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE state = 'idle in transaction' AND backend_xid IS NOT NULL",
        ) == "1"
    })
    .await;
    let errors_before = cache.stats().errors;
    let started = Instant::now();
    // A write of the locked row gives up at the lock timeout; the caller is not failed.
    cache.set(&1u64, &7u64).await.unwrap();
    assert!(
        started.elapsed() < OPERATION_TIMEOUT + MARGIN,
        "a write waited {:?} for a locked row",
        started.elapsed()
    );
    assert!(
        cache.stats().errors > errors_before,
        "the locked row was not counted as a fault"
    );
    // Other rows are written as usual meanwhile.
    eventually("another key is written", async || {
        call(&cache, 3).await;
        server.psql("SELECT COUNT(*) FROM cachet_entries WHERE cache_key = 'shop:c:3'") == "1"
    })
    .await;
    drop(session); // the other transaction ends (rolled back)
    eventually("the row is written once released", async || {
        cache.set(&1u64, &9u64).await.unwrap();
        cache.get::<u64>(&1u64).await.unwrap() == Some(9)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_statement_is_cut_at_the_operation_timeout() {
    let server = PostgresServer::start();
    let manager = manager(&server);
    let cache = manager.cache("slow").unwrap();
    call(&cache, 1).await; // creates the table
                           // Every write now takes 3 s on the server.
    server.psql(
        "CREATE FUNCTION cachet_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$",
    );
    server.psql("CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON cachet_entries FOR EACH ROW EXECUTE FUNCTION cachet_slow()");
    let errors_before = cache.stats().errors;
    for i in 10..15 {
        let took = call(&cache, i).await;
        assert!(
            took < Duration::from_secs(3),
            "a cached call waited for the slow statement: {took:?}"
        );
    }
    assert!(
        cache.stats().errors > errors_before,
        "the timeouts were not counted"
    );
    server.psql("DROP TRIGGER slow ON cachet_entries");
    eventually("writes are fast again", async || {
        call(&cache, 20).await;
        server.psql("SELECT COUNT(*) FROM cachet_entries WHERE cache_key = 'shop:slow:20'") == "1"
    })
    .await;
}
