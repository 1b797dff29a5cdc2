//! Quickstart: annotated service functions on the embedded default (one bounded in-memory
//! store; no server, no configuration). Prints which calls were hits and which were misses.
//!
//! Run: `cargo run --example quickstart`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cachet::{cache_evict, cache_put, cacheable};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug)]
struct DbError;

/// How many times the "database" was really queried.
static QUERIES: AtomicU64 = AtomicU64::new(0);

/// A slow lookup, cached in cache "users" under its argument.
#[cacheable("users")]
async fn find_user(id: u64) -> Result<User, DbError> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(30)).await; // the database is slow
    Ok(User {
        id,
        name: format!("user-{id}"),
    })
}

/// Always runs, then stores its result where `find_user(user.id)` looks.
#[cache_put("users", key = user.id)]
async fn rename_user(user: User) -> Result<User, DbError> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    Ok(user)
}

/// Runs, then evicts `find_user(id)`'s entry.
#[cache_evict("users", key = id)]
async fn delete_user(id: u64) -> Result<(), DbError> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Plain functions work too.
#[cacheable("squares")]
fn square(n: u64) -> u64 {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    n * n
}

async fn timed(label: &str, id: u64) {
    let before = QUERIES.load(Ordering::SeqCst);
    let start = Instant::now();
    let user = find_user(id).await.expect("the database never fails here");
    let outcome = if QUERIES.load(Ordering::SeqCst) == before {
        "hit "
    } else {
        "miss"
    };
    println!(
        "{outcome} {label:<28} -> {:<12} in {:>8.2?}",
        user.name,
        start.elapsed()
    );
}

#[tokio::main]
async fn main() {
    timed("find_user(1)", 1).await;
    timed("find_user(1) again", 1).await;
    timed("find_user(2)", 2).await;
    rename_user(User {
        id: 1,
        name: "ada".into(),
    })
    .await
    .expect("no db error");
    println!("put  rename_user(1, \"ada\")");
    timed("find_user(1) after the put", 1).await;
    delete_user(1).await.expect("no db error");
    println!("evict delete_user(1)");
    timed("find_user(1) after the evict", 1).await;

    println!("square(12) = {} then {}", square(12), square(12));

    let users = cachet::cache("users").expect("the embedded default has every cache");
    let stats = users.stats();
    println!(
        "cache users: {} hits, {} misses, {} puts, {} evictions; the database was queried {} times",
        stats.hits,
        stats.misses,
        stats.puts,
        stats.evictions,
        QUERIES.load(Ordering::SeqCst)
    );
}
