//! The redis L2 tier against real `redis-server`s started by the harness.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod redis_runtimes;
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;
mod scope_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_backends::redis::{RedisOptions, RedisTier};
use cache_core::codec::{self, EnvelopeMeta, DEFAULT_MAX_VALUE_SIZE};
use cache_core::config::TierConfig;
use cache_core::driver::find_driver;
use cache_core::store::{RemoteTier, Scope};
use cache_core::{CacheError, ConfigOrigin, TierErrorKind};
use redis_runtimes::{
    block_on_within, clients, current_thread, last_commands, one_worker, park_until_ready, until,
    until_it_reads_on_its_own, write_then_read,
};
use redis_server::RedisServer;

fn raw(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn tier(server: &RedisServer) -> RedisTier {
    RedisTier::new(&fast(&server.url())).unwrap()
}

fn fast(url: &str) -> RedisOptions {
    RedisOptions::new(url)
        .operation_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
}

fn keys_matching(server: &RedisServer, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut raw(server))
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn set_get_and_every_key_has_a_ttl() {
    let server = RedisServer::start();
    let t = tier(&server);
    assert_eq!(t.get("app:users:1").await.unwrap(), None);
    t.set("app:users:1", b"one".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    t.set("app:users:2", b"two".to_vec(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(t.get("app:users:1").await.unwrap(), Some(b"one".to_vec()));
    let pttl: i64 = redis::cmd("PTTL")
        .arg("app:users:1")
        .query(&mut raw(&server))
        .unwrap();
    assert!(pttl > 55_000 && pttl <= 60_000, "PTTL {pttl}");
    // Every key carries a TTL (PTTL -1 would mean none; 0 or -2 mean expiring or expired, as
    // the zero-TTL key, written with a 1 ms TTL, may be).
    let mut c = raw(&server);
    for key in ["app:users:1", "app:users:2"] {
        let pttl: i64 = redis::cmd("PTTL").arg(key).query(&mut c).unwrap();
        assert!(pttl >= 0 || pttl == -2, "{key} has PTTL {pttl}");
    }
    for key in keys_matching(&server, "*") {
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut c).unwrap();
        assert_ne!(pttl, -1, "{key} has no TTL");
    }
    // short TTLs expire
    t.set("app:users:3", b"x".to_vec(), Duration::from_millis(50))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while t.get("app:users:3").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "key did not expire");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `touch` raises a TTL and never lowers it, as `PEXPIRE .. GT` does, in a script any server
/// with `EVAL` runs: a missing key stays missing, a key with no TTL keeps none.
#[tokio::test]
async fn touch_only_raises_a_ttl() {
    let server = RedisServer::start();
    let t = tier(&server);
    let pttl = |key: &str| -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut raw(&server))
            .unwrap()
    };
    t.set("app:users:1", b"one".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(t
        .touch("app:users:1", Duration::from_secs(600))
        .await
        .unwrap());
    assert!(pttl("app:users:1") > 590_000, "raised");
    assert!(!t
        .touch("app:users:1", Duration::from_secs(30))
        .await
        .unwrap());
    assert!(pttl("app:users:1") > 590_000, "not lowered");
    assert!(!t
        .touch("app:users:2", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(pttl("app:users:2"), -2, "a missing key is not made");
    let _: () = redis::cmd("SET")
        .arg("app:users:3")
        .arg("kept")
        .query(&mut raw(&server))
        .unwrap();
    assert!(!t
        .touch("app:users:3", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(pttl("app:users:3"), -1, "a key without a TTL keeps none");
}

#[tokio::test]
async fn delete_many_deletes_only_those_keys() {
    let server = RedisServer::start();
    let t = tier(&server);
    for i in 0..5 {
        t.set(&format!("app:c:{i}"), vec![i], Duration::from_secs(60))
            .await
            .unwrap();
    }
    t.delete_many(&["app:c:1".into(), "app:c:3".into(), "app:c:missing".into()])
        .await
        .unwrap();
    t.delete_many(&[]).await.unwrap();
    assert_eq!(
        keys_matching(&server, "*"),
        ["app:c:0", "app:c:2", "app:c:4"]
    );
    // many keys: batched UNLINKs in one pipeline
    let many: Vec<String> = (0..2500).map(|i| format!("app:m:{i}")).collect();
    for k in &many {
        t.set(k, b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    }
    t.delete_many(&many).await.unwrap();
    assert!(keys_matching(&server, "app:m:*").is_empty());
}

#[tokio::test]
async fn clear_scope_deletes_only_its_scope() {
    let server = RedisServer::start();
    // two stores with their own prefixes on one Redis (Bentocache's separation of stores)
    let shop = tier(&server);
    let posts = tier(&server);
    let ttl = Duration::from_secs(60);
    scope_support::seed(
        &shop,
        1200,
        &["shop:usersx", "shop:products:1", "other:shop:users:1"],
        ttl,
    )
    .await;
    posts
        .set("posts:users:1", b"p".to_vec(), ttl)
        .await
        .unwrap();

    // a nested namespace alone
    shop.clear_scope(&Scope::new("shop:users#admins#root"))
        .await
        .unwrap();
    assert_eq!(
        keys_matching(&server, "shop:users#*"),
        ["shop:users#admins:1"]
    );

    // the cache, with its namespaces
    shop.clear_scope(&Scope::new("shop:users")).await.unwrap();
    assert_eq!(
        keys_matching(&server, "*"),
        [
            "other:shop:users:1",
            "posts:users:1",
            "shop:products:1",
            "shop:users2:1",
            "shop:usersx",
        ]
    );
    // clearing an empty scope is fine
    shop.clear_scope(&Scope::new("shop:users")).await.unwrap();
    posts.clear_scope(&Scope::new("posts:users")).await.unwrap();
    assert_eq!(keys_matching(&server, "posts:*"), Vec::<String>::new());
    assert_eq!(keys_matching(&server, "shop:*").len(), 3);
}

#[tokio::test]
async fn codec_values_round_trip_and_bad_bytes_are_decode_errors() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct User {
        id: u64,
        name: String,
    }
    let server = RedisServer::start();
    let t = tier(&server);
    let fp = codec::fingerprint::<User>();
    let user = User {
        id: 42,
        name: "alice".into(),
    };
    let bytes = codec::encode(&user, &EnvelopeMeta::new(fp, Some(1), None)).unwrap();
    t.set("app:users:42", bytes, Duration::from_secs(60))
        .await
        .unwrap();
    let got = t.get("app:users:42").await.unwrap().unwrap();
    assert_eq!(
        codec::decode::<User>(&got, fp, DEFAULT_MAX_VALUE_SIZE)
            .unwrap()
            .0,
        user
    );

    // bytes written by something else: garbage, JSON, a truncated envelope, huge
    let mut c = raw(&server);
    let mut truncated = codec::encode(&user, &EnvelopeMeta::new(fp, None, None)).unwrap();
    truncated.truncate(truncated.len() - 3);
    let huge = vec![0xCAu8; 2 * 1024 * 1024];
    let cases: [(&str, &[u8]); 5] = [
        ("garbage", b"\x00\x01\x02garbage"),
        ("json", br#"{"id":42,"name":"alice"}"#),
        ("empty", b""),
        ("truncated", &truncated),
        ("huge", &huge),
    ];
    for (name, bad) in cases {
        let _: () = redis::cmd("SET")
            .arg("app:users:bad")
            .arg(bad)
            .arg("PX")
            .arg(60_000)
            .query(&mut c)
            .unwrap();
        let Some(got) = t.get("app:users:bad").await.unwrap() else {
            assert_eq!(name, "empty", "only an empty value reads as absent");
            continue;
        };
        let r = codec::decode::<User>(&got, fp, 1024 * 1024);
        assert!(r.is_err(), "{name} decoded: {r:?}");
    }
    // another type written under the key
    let other = codec::encode(
        &7u64,
        &EnvelopeMeta::new(codec::fingerprint::<u64>(), None, None),
    )
    .unwrap();
    t.set("app:users:7", other, Duration::from_secs(60))
        .await
        .unwrap();
    let got = t.get("app:users:7").await.unwrap().unwrap();
    assert!(codec::decode::<User>(&got, fp, DEFAULT_MAX_VALUE_SIZE).is_err());
}

#[tokio::test]
async fn password_never_shows() {
    let server = RedisServer::start_with_password("Sup3r-S3cret");
    let url = server.url();
    assert!(url.contains("Sup3r-S3cret"));

    let good = RedisTier::new(&fast(&url)).unwrap();
    good.set("p:c:1", b"x".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(good.get("p:c:1").await.unwrap(), Some(b"x".to_vec()));
    let text = format!("{} {:?} {:?}", good.describe(), good, fast(&url));
    assert!(!text.contains("Sup3r-S3cret"), "{text}");

    // a wrong password: the error names the server, not the password
    let wrong = format!("redis://:Wr0ng-Pa55@127.0.0.1:{}/0", server.port());
    let bad = RedisTier::new(&fast(&wrong)).unwrap();
    let err = bad.get("p:c:1").await.unwrap_err();
    let text = format!("{err} {err:?} {} {bad:?}", bad.describe());
    assert!(!text.contains("Wr0ng-Pa55"), "{text}");
    assert!(text.contains(&server.port().to_string()), "{text}");

    // with the server gone too
    server.kill();
    let err = good.get("p:c:1").await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("Sup3r-S3cret"), "{text}");

    // a bad URL in config: the error does not repeat it
    let cfg = tier_config("url = \"redis://:Sup3r-S3cret@127.0.0.1:notaport/0\"");
    let err = build(&cfg).err().expect("a bad url is refused").to_string();
    assert!(!err.contains("Sup3r-S3cret"), "{err}");
    assert!(err.contains("stores.s.l2.url"), "{err}");
}

#[tokio::test]
async fn down_server_fails_fast_as_unavailable_then_recovers_after_restart() {
    let server = RedisServer::start();
    let t = tier(&server);
    t.set("app:c:1", b"1".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    server.kill();
    for _ in 0..3 {
        let start = Instant::now();
        let err = t.get("app:c:1").await.unwrap_err();
        assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
        let err = t
            .set("app:c:1", b"x".to_vec(), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
        let err = t.clear_scope(&Scope::new("app:c")).await.unwrap_err();
        assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
    }
    server.restart();
    // the next operation reconnects
    assert_eq!(
        t.get("app:c:1").await.unwrap(),
        None,
        "restart keeps no data"
    );
    t.set("app:c:1", b"2".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"2".to_vec()));
}

#[tokio::test]
async fn paused_server_times_out_within_operation_timeout() {
    let server = RedisServer::start();
    let t = tier(&server);
    t.set("app:c:1", b"1".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    server.pause();
    let start = Instant::now();
    let err = t.get("app:c:1").await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // a fresh tier (connecting to a frozen server) is bounded too
    let start = Instant::now();
    let err = tier(&server).get("app:c:1").await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
    assert!(start.elapsed() < Duration::from_millis(1500));
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match t.get("app:c:1").await {
            Ok(v) => {
                assert_eq!(v, Some(b"1".to_vec()));
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "still failing: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tier built and first used inside one runtime keeps working from another runtime
/// after the first one ended (a global manager outlives `#[tokio::test]` runtimes), and
/// from a plain thread.
#[test]
fn tier_outlives_the_runtime_that_first_used_it() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            t.set("app:c:1", b"first".to_vec(), Duration::from_secs(60))
                .await
                .unwrap();
        });
    } // the first runtime is gone
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"first".to_vec()));
        t.set("app:c:2", b"second".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    drop(rt);
    // a plain thread with no tokio runtime at all
    let t2 = Arc::clone(&t);
    std::thread::spawn(move || {
        let v = futures_executor_block_on(t2.get("app:c:2")).unwrap();
        assert_eq!(v, Some(b"second".to_vec()));
    })
    .join()
    .unwrap();
}

/// A read on a live connection from a thread with no runtime at all is still bounded by
/// `operation_timeout`: its response timeout is armed on the backend runtime (whose context
/// such a read enters at its first poll only), and fires there while the caller parks. A
/// second read after the server is back reconnects and reads.
#[test]
fn a_read_from_no_runtime_times_out_on_a_paused_server() {
    let server = RedisServer::start();
    let t = tier(&server);
    block_on_within(t.set("app:c:1", b"1".to_vec(), Duration::from_secs(60))).unwrap();
    assert_eq!(
        block_on_within(t.get("app:c:1")).unwrap(),
        Some(b"1".to_vec())
    );
    server.pause();
    let err = block_on_within(t.get("app:c:1")).unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    server.resume();
    let read = (0..100).find_map(|_| {
        let read = block_on_within(t.get("app:c:1")).ok();
        if read.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        read
    });
    assert_eq!(read, Some(Some(b"1".to_vec())));
}

/// One read at a time from a `current_thread` runtime goes through a connection made on
/// that runtime (its driver task runs between the caller's polls: no hop to the backend
/// thread and back), once it is made; the backend runtime's connection serves everyone
/// else. When the runtime shuts down its connection goes with it, and the tier goes on
/// from other runtimes and from plain threads without a failure.
#[test]
fn a_current_thread_runtime_reads_through_a_connection_of_its_own() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let mt = one_worker();
    mt.block_on(async {
        t.set("app:c:1", b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    assert_eq!(
        last_commands(&server),
        ["set"],
        "one connection, the shared one"
    );
    let ct = current_thread();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:2", "app:c:2");
    drop(ct);
    until(Duration::from_secs(10), || {
        if last_commands(&server).len() <= 1 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
        Err("the runtime's connection outlived it".to_owned())
    });
    // Every other caller is served at the first attempt.
    mt.block_on(async {
        assert_eq!(t.get("app:c:2").await.unwrap(), Some(b"v".to_vec()));
    });
    let t2 = Arc::clone(&t);
    std::thread::spawn(move || {
        assert_eq!(
            futures_executor_block_on(t2.get("app:c:1")).unwrap(),
            Some(b"v".to_vec())
        );
    })
    .join()
    .unwrap();
    let ct = current_thread();
    ct.block_on(async {
        assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"v".to_vec()));
    });
}

/// A tier dropped while the runtime that has a connection of it goes on leaves nothing
/// behind on that runtime: the task that made the connection and watched over it ends, and
/// the connection closes.
#[test]
fn a_tier_dropped_leaves_no_task_on_the_runtime() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let ct = current_thread();
    let mt = one_worker();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:1", "app:c:1");
    drop(t);
    until(Duration::from_secs(10), || {
        ct.block_on(tokio::task::yield_now());
        let (tasks, clients) = (ct.metrics().num_alive_tasks(), last_commands(&server).len());
        if tasks == 0 && clients == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
        Err(format!(
            "{tasks} tasks left on the runtime, {clients} connections open"
        ))
    });
}

/// A caller that blocks a `current_thread` runtime's thread to wait for a read (a plain
/// fn inside that runtime, or any executor of its own) cannot let the runtime's tasks run:
/// its reads must not depend on a connection driven by that runtime, even once the
/// runtime has one. They go through the backend runtime's connection.
#[test]
fn a_caller_blocking_a_current_thread_runtime_is_not_served_by_its_connection() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let ct = current_thread();
    ct.block_on(async {
        t.set("app:c:1", b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    // Until the runtime's own connection serves its reads (the shared one's last command
    // stays the `SET`).
    let mt = one_worker();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:2", "app:c:1");
    ct.block_on(async {
        // In the runtime's context, from its block_on and from a task of it, blocked.
        for _ in 0..3 {
            let read = block_on_within(t.get("app:c:1"));
            assert_eq!(read.unwrap(), Some(b"v".to_vec()));
        }
        let t2 = Arc::clone(&t);
        tokio::spawn(async move {
            let read = block_on_within(t2.get("app:c:1"));
            assert_eq!(read.unwrap(), Some(b"v".to_vec()));
        })
        .await
        .unwrap();
    });
}

/// A minimal executor: polls a future on this thread, parking between wake-ups.
fn futures_executor_block_on<F: std::future::Future>(fut: F) -> F::Output {
    park_until_ready(fut, None)
}

fn tier_config(options: &str) -> TierConfig {
    TierConfig::new(
        "redis",
        toml::from_str(options).unwrap(),
        "stores.s.l2",
        ConfigOrigin::String,
    )
}

fn build(cfg: &TierConfig) -> Result<Arc<dyn RemoteTier>, CacheError> {
    let driver = find_driver("redis").expect("the redis driver is registered");
    (driver.remote.expect("redis is an L2 driver"))(cfg)
}

#[test]
fn driver_builds_without_a_server_and_checks_its_options() {
    // nothing listens there: building must not connect
    let t = build(&tier_config(
        "url = \"redis://127.0.0.1:1/2\"\noperation_timeout = \"200ms\"\nconnect_timeout = \"100ms\"",
    ))
    .unwrap();
    assert_eq!(t.describe(), "redis redis://127.0.0.1:1/2");
    let driver = find_driver("redis").unwrap();
    let bus = (driver.bus.unwrap())(
        &tier_config("url = \"redis://127.0.0.1:1/2\""),
        &cache_core::driver::BusSettings::for_prefix("shop"),
    )
    .unwrap();
    assert!(bus.describe().contains("shop:__bus"));

    for (options, field, says) in [
        ("", "stores.s.l2.url", "requires `url`"),
        ("url = 5", "stores.s.l2.url", "URL"),
        ("url = \"http://x\"", "stores.s.l2.url", "redis://"),
        (
            "url = \"redis://h\"\nurl2 = 1",
            "stores.s.l2.url2",
            "no such option",
        ),
        (
            "url = \"redis://h\"\noperation_timeout = \"soon\"",
            "stores.s.l2.operation_timeout",
            "duration",
        ),
        (
            "url = \"redis://h\"\nconnect_timeout = 3",
            "stores.s.l2.connect_timeout",
            "duration",
        ),
        (
            "url = \"redis://h\"\nconnect_timeout = \"0s\"",
            "stores.s.l2.connect_timeout",
            "greater than zero",
        ),
    ] {
        let err = build(&tier_config(options))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains(field) && err.contains(says),
            "{options:?}: {err}"
        );
        assert!(err.contains("<toml string>"), "{err}");
    }
}

#[tokio::test]
async fn unreachable_server_at_first_use_is_unavailable_quickly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = RedisTier::new(&fast(&format!("redis://127.0.0.1:{port}/0"))).unwrap();
    let start = Instant::now();
    let err = t.get("a:b:c").await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

/// The whole driver works as a Redis ACL user limited to its prefix's keys and channels,
/// with dangerous commands (FLUSHDB, FLUSHALL, KEYS, ...) forbidden: proof that it
/// touches nothing else.
#[tokio::test]
async fn works_as_an_acl_user_limited_to_its_prefix() {
    use cache_backends::redis::RedisBus;
    use cache_core::store::{Bus, Invalidation};

    let server = RedisServer::start();
    let mut admin = raw(&server);
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "shop",
            "on",
            ">shop-pw",
            "resetkeys",
            "~shop:*",
            "resetchannels",
            "&shop:*",
            "+@all",
            "-@dangerous",
        ])
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("other:users:1")
        .arg("keep")
        .query(&mut admin)
        .unwrap();
    let url = format!("redis://shop:shop-pw@127.0.0.1:{}/0", server.port());
    let t = RedisTier::new(&fast(&url)).unwrap();
    t.set("shop:users:1", b"v".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(t.get("shop:users:1").await.unwrap(), Some(b"v".to_vec()));
    t.delete_many(&["shop:users:1".into()]).await.unwrap();
    t.set("shop:users:2", b"v".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    t.clear_scope(&Scope::new("shop:users")).await.unwrap();
    assert_eq!(keys_matching(&server, "*"), ["other:users:1"]);
    // outside the prefix the server refuses, as a command error (not unavailability)
    let err = t.get("other:users:1").await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Other, "{err}");
    // the bus on the prefix's channel
    let bus = RedisBus::new(&fast(&url), "shop:__bus").unwrap();
    bus.publish(Invalidation::All).await.unwrap();
    let outside = RedisBus::new(&fast(&url), "other:__bus").unwrap();
    assert!(outside.publish(Invalidation::All).await.is_err());
}

#[tokio::test]
async fn reads_never_fetch_more_than_max_value_size_plus_one() {
    let server = RedisServer::start();
    let t = RedisTier::new(&fast(&server.url()).max_value_size(1000)).unwrap();
    let mut c = raw(&server);
    let big = vec![7u8; 1_000_000];
    let _: () = redis::cmd("SET")
        .arg("a:c:big")
        .arg(&big)
        .query(&mut c)
        .unwrap();
    let got = t.get("a:c:big").await.unwrap().unwrap();
    assert_eq!(got.len(), 1001);
    let err = codec::decode::<Vec<u8>>(&got, codec::fingerprint::<Vec<u8>>(), 1000).unwrap_err();
    assert!(matches!(err, codec::CodecError::TooLarge { .. }), "{err}");
    // exactly at the limit: whole
    t.set("a:c:fit", vec![1u8; 1000], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(t.get("a:c:fit").await.unwrap().unwrap().len(), 1000);
    // the option from config
    let cfg = tier_config("url = \"redis://h\"\nmax_value_size = 2097152");
    assert!(build(&cfg).is_ok());
    let cfg = tier_config("url = \"redis://h\"\nmax_value_size = 0");
    let err = build(&cfg).err().unwrap().to_string();
    assert!(err.contains("stores.s.l2.max_value_size"), "{err}");
}

/// A runtime's own connection is retired when the shared connection is dropped and made
/// again (here killed on the server alone, as a server's idle timeout may; after a restart
/// both are dead): the runtime's reads go on a new connection of its own, and the old one
/// is closed, never kept beside a shared connection that is gone.
#[test]
fn a_runtimes_connection_is_retired_when_the_shared_one_is_remade() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let ct = current_thread();
    let mt = one_worker();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:r:1", "app:r:1");
    // Two clients: the shared connection (its last command the `SET`) and the runtime's.
    let id_of = |cmd: &str| {
        let found = clients(&server).into_iter().find(|(_, c)| c == cmd);
        found.map(|(id, _)| id).unwrap()
    };
    let (shared, own) = (id_of("set"), id_of("getrange"));
    assert_ne!(shared, own);
    // On the runtime: the task that made its connection (and keeps its entry) and that
    // connection's driver.
    assert_eq!(ct.metrics().num_alive_tasks(), 2);
    retire_through_the_shared_connection(&server, &t, &ct, &mt, &shared, &own);
    // Once more: each retirement ends the old connection's tasks, none pile up.
    let (shared, own) = (id_of("set"), id_of("getrange"));
    retire_through_the_shared_connection(&server, &t, &ct, &mt, &shared, &own);
    until(Duration::from_secs(10), || {
        ct.block_on(tokio::task::yield_now());
        let tasks = ct.metrics().num_alive_tasks();
        if tasks == 2 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
        Err(format!(
            "{tasks} tasks on the runtime: the retired connections' tasks did not end"
        ))
    });
}

/// Kills the shared connection (`shared`) on the server and goes on writing from `mt` and
/// reading from `ct` until the runtime's connection `own` is gone and its reads go on a new
/// connection of its own.
fn retire_through_the_shared_connection(
    server: &RedisServer,
    t: &Arc<dyn RemoteTier>,
    ct: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
    shared: &str,
    own: &str,
) {
    redis_server::cli(server.port(), &["CLIENT", "KILL", "ID", shared]);
    // The next write finds the shared connection dead and makes a new one; the runtime's
    // reads then go on a connection made after it, the old one closed.
    until(Duration::from_secs(10), || {
        write_then_read(t, ct, mt, "app:r:1", "app:r:1");
        let now = clients(server);
        let retired = !now.iter().any(|(id, _)| *id == own);
        if retired && last_commands(server) == ["getrange", "set"] {
            return Ok(());
        }
        Err(format!(
            "the runtime's connection {own} outlived the shared connection {shared}: {now:?}"
        ))
    });
}

/// A Redis restart costs a `current_thread` runtime's reads no failure (issue 16, fault
/// 4): a dead connection is replaced and the read sent again before anything counts as a
/// failure, whether the runtime's read finds its own connection dead first or another
/// caller found the shared one dead before.
#[test]
fn a_restart_costs_a_current_thread_runtimes_reads_no_failure() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let ct = current_thread();
    let mt = one_worker();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:1", "app:c:1");
    server.restart();
    // The runtime's read first: its own connection and the shared one are both dead.
    let read = ct.block_on(t.get("app:c:1"));
    assert_eq!(
        read.map_err(|e| e.to_string()),
        Ok(None),
        "restart keeps no data"
    );
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:2", "app:c:2");
    server.restart();
    // Another caller first: it finds the shared connection dead and makes a new one.
    mt.block_on(async {
        t.set("app:c:3", b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    let read = ct.block_on(t.get("app:c:3"));
    assert_eq!(read.map_err(|e| e.to_string()), Ok(Some(b"v".to_vec())));
}

/// Runtimes that make one read each and end before their own connection is made (a
/// runtime per request, `#[tokio::test]`s, a CLI) free their place: the places (64 per
/// tier) never fill up with runtimes that are gone, and a later runtime still gets a
/// connection of its own.
#[test]
fn runtimes_ended_before_their_connection_is_made_leave_room_for_others() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let mt = one_worker();
    mt.block_on(async {
        t.set("app:c:1", b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    for _ in 0..100 {
        let ct = current_thread();
        ct.block_on(async {
            assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"v".to_vec()));
        });
    }
    let ct = current_thread();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:2", "app:c:2");
}

/// A runtime's own connection failing (here a read timed out on it, the server paused)
/// retires that connection only: the shared connection, which the failure says nothing
/// about, is kept, not dropped and made again by the next caller.
#[test]
fn a_runtimes_connection_failing_keeps_the_shared_one() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let ct = current_thread();
    let mt = one_worker();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:1", "app:c:1");
    let id_of = |cmd: &str| {
        let found = clients(&server).into_iter().find(|(_, c)| c == cmd);
        found.map(|(id, _)| id).unwrap()
    };
    let shared = id_of("set");
    // The server frozen (SIGSTOP): the runtime's read times out (300 ms), whatever the
    // test thread's scheduling.
    server.pause();
    let read = ct.block_on(t.get("app:c:1"));
    server.resume();
    assert_eq!(read.unwrap_err().kind(), TierErrorKind::Unavailable);
    mt.block_on(async {
        t.set("app:c:1", b"w".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    let now = clients(&server);
    assert!(
        now.contains(&(shared.clone(), "set".to_owned())),
        "the shared connection {shared} was dropped and made again: {now:?}"
    );
}

/// A runtime driven now and then (a `block_on` per request, idle in between for longer
/// than `connect_timeout`) still gets a connection of its own: the connect, spread over
/// several of its turns, is bounded by the time the runtime ran, not by the time it sat
/// idle, when it could not make progress (a wall-clock timer failed it every time).
#[test]
fn a_runtime_driven_now_and_then_still_gets_its_connection() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let mt = one_worker();
    let ct = current_thread();
    // The first read has the runtime's connection made, and returns before its connect
    // task ever runs: the connect runs in the turns below, one step in each.
    ct.block_on(async {
        let mut read = t.get("app:c:1");
        std::future::poll_fn(|cx| {
            let _ = std::future::Future::poll(read.as_mut(), cx);
            std::task::Poll::Ready(())
        })
        .await;
    });
    // Turns until the connection is made: its driver task, spawned on the runtime once
    // the handshake is done, joins the task that made it.
    until(Duration::from_secs(6), || {
        if ct.metrics().num_alive_tasks() >= 2 {
            return Ok(());
        }
        // Idle for longer than connect_timeout (300 ms): the scenario itself.
        std::thread::sleep(Duration::from_millis(400));
        ct.block_on(tokio::task::yield_now());
        Err("the runtime's connection was never made".to_owned())
    });
    mt.block_on(async {
        t.set("app:c:1", b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    ct.block_on(async {
        assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"v".to_vec()));
    });
    assert_eq!(
        last_commands(&server),
        ["getrange", "set"],
        "the runtime's read went through the shared connection"
    );
}

/// A timeout on the shared connection (a slow server, here frozen for one read) drops that
/// connection but keeps the runtimes' own: the server process is the same, and every
/// runtime reconnecting at once would only add to a slow server's load.
#[test]
fn a_shared_timeout_keeps_the_runtimes_connections() {
    let server = RedisServer::start();
    let t: Arc<dyn RemoteTier> = Arc::new(tier(&server));
    let ct = current_thread();
    let mt = one_worker();
    until_it_reads_on_its_own(&server, &t, &ct, &mt, "app:c:1", "app:c:1");
    let own = clients(&server)
        .into_iter()
        .find(|(_, c)| c == "getrange")
        .map(|(id, _)| id)
        .unwrap();
    server.pause();
    let read = mt.block_on(t.get("app:c:1"));
    server.resume();
    assert_eq!(read.unwrap_err().kind(), TierErrorKind::Unavailable);
    mt.block_on(async {
        t.set("app:c:1", b"w".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    });
    ct.block_on(async {
        assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"w".to_vec()));
    });
    // The read went on the runtime's connection: the shared one (made again after the
    // timeout) still has the `SET` as its last command.
    let now = clients(&server);
    assert!(
        now.contains(&(own.clone(), "getrange".to_owned())) && now.len() == 2,
        "the runtime's connection {own} was retired by a timeout of the shared one: {now:?}"
    );
    assert_eq!(last_commands(&server), ["getrange", "set"]);
}
