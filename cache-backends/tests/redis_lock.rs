//! The redis tier's distributed lock (`try_lock` / `unlock`) against a real `redis-server`.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use cache_backends::redis::{RedisOptions, RedisTier};
use cache_core::store::RemoteTier;
use cache_core::TierErrorKind;
use redis_server::RedisServer;

fn raw(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn fast(url: &str) -> RedisOptions {
    RedisOptions::new(url)
        .operation_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
}

fn holder(server: &RedisServer, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(&mut raw(server)).unwrap()
}

#[tokio::test]
async fn one_holder_at_a_time_and_only_the_holder_releases() {
    let server = RedisServer::start();
    let t = RedisTier::new(&fast(&server.url())).unwrap();
    let key = "app:~lock:users:1";
    assert!(t.try_lock(key, "a", Duration::from_secs(30)).await.unwrap());
    assert!(!t.try_lock(key, "b", Duration::from_secs(30)).await.unwrap());
    assert_eq!(holder(&server, key).as_deref(), Some("a"));
    // Every lock carries its expiry, set with the value.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(key)
        .query(&mut raw(&server))
        .unwrap();
    assert!(pttl > 0 && pttl <= 30_000, "PTTL {pttl}");

    // A foreign token releases nothing.
    assert!(!t.unlock(key, "b").await.unwrap());
    assert_eq!(holder(&server, key).as_deref(), Some("a"));
    // The holder's does.
    assert!(t.unlock(key, "a").await.unwrap());
    assert_eq!(holder(&server, key), None);
    // Releasing twice (or a lock that is gone) is no error.
    assert!(!t.unlock(key, "a").await.unwrap());
    assert!(t.try_lock(key, "b", Duration::from_secs(30)).await.unwrap());
}

#[tokio::test]
async fn an_expired_lock_can_be_taken_and_its_old_holder_cannot_delete_the_new_one() {
    let server = RedisServer::start();
    let t = RedisTier::new(&fast(&server.url())).unwrap();
    let key = "app:~lock:users:2";
    assert!(t
        .try_lock(key, "old", Duration::from_millis(50))
        .await
        .unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !t
        .try_lock(key, "new", Duration::from_secs(30))
        .await
        .unwrap()
    {
        assert!(Instant::now() < deadline, "the lock never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!t.unlock(key, "old").await.unwrap());
    assert_eq!(holder(&server, key).as_deref(), Some("new"));
}

/// Taking and releasing locks works as a Redis ACL user limited to the prefix's keys.
#[tokio::test]
async fn locks_work_as_an_acl_user_limited_to_its_prefix() {
    let server = RedisServer::start();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "shop",
            "on",
            ">shop-pw",
            "resetkeys",
            "~shop:*",
            "+@all",
            "-@dangerous",
        ])
        .query(&mut raw(&server))
        .unwrap();
    let url = format!("redis://shop:shop-pw@127.0.0.1:{}/0", server.port());
    let t = RedisTier::new(&fast(&url)).unwrap();
    assert!(t
        .try_lock("shop:~lock:users:1", "a", Duration::from_secs(5))
        .await
        .unwrap());
    assert!(t.unlock("shop:~lock:users:1", "a").await.unwrap());
    let err = t
        .try_lock("other:~lock:users:1", "a", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Other, "{err}");
}

#[tokio::test]
async fn a_dead_server_is_unavailable() {
    let server = RedisServer::start();
    let t = RedisTier::new(&fast(&server.url())).unwrap();
    server.kill();
    let err = t
        .try_lock("app:~lock:users:1", "a", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
}
