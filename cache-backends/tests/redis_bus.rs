//! The redis bus against real `redis-server`s started by the harness.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_backends::redis::{RedisBus, RedisOptions, MAX_MESSAGE_SIZE, MESSAGE_VERSION};
use cache_core::store::{Bus, BusEvent, Invalidation, Scope};
use cache_core::TierErrorKind;
use redis_server::{RedisCluster, RedisSentinel, RedisServer};

const CHANNEL: &str = "shop:__bus";

fn opts(server: &RedisServer) -> RedisOptions {
    RedisOptions::new(server.url())
        .operation_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
}

type Seen = Arc<Mutex<Vec<BusEvent>>>;

fn listening(server: &RedisServer) -> (RedisBus, Seen) {
    let bus = RedisBus::new(&opts(server), CHANNEL).unwrap();
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    bus.subscribe(Arc::new(move |e| sink.lock().unwrap().push(e)));
    wait_until("subscribed", || bus.is_subscribed());
    (bus, seen)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn raw_publish(server: &RedisServer, payload: &[u8]) {
    let mut c = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(CHANNEL)
        .arg(payload)
        .query(&mut c)
        .unwrap();
}

#[tokio::test]
async fn other_instances_receive_and_the_publisher_does_not() {
    let server = RedisServer::start();
    let (a, seen_a) = listening(&server);
    let (b, seen_b) = listening(&server);

    let keys = Invalidation::Keys(vec!["shop:users:1".into(), "shop:users:2".into()]);
    a.publish(keys.clone()).await.unwrap();
    a.publish(Invalidation::Scope(Scope::new("shop:users#admins")))
        .await
        .unwrap();
    b.publish(Invalidation::All).await.unwrap();

    wait_until("b got two", || seen_b.lock().unwrap().len() == 2);
    wait_until("a got one", || seen_a.lock().unwrap().len() == 1);
    wait_until("own messages seen", || {
        a.counters().own == 2 && b.counters().own == 1
    });
    assert_eq!(
        *seen_b.lock().unwrap(),
        [
            BusEvent::Invalidate(keys),
            BusEvent::Invalidate(Invalidation::Scope(Scope::new("shop:users#admins"))),
        ]
    );
    assert_eq!(
        *seen_a.lock().unwrap(),
        [BusEvent::Invalidate(Invalidation::All)]
    );
    assert_eq!(a.counters().delivered, 1);
    assert_eq!(b.counters().delivered, 2);
    assert_eq!(a.ignored_messages() + b.ignored_messages(), 0);

    // a large key list is split into several messages, every key arrives
    let many: Vec<String> = (0..30_000).map(|i| format!("shop:users:{i:08}")).collect();
    a.publish(Invalidation::Keys(many.clone())).await.unwrap();
    wait_until("all keys", || {
        let got: usize = seen_b
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                BusEvent::Invalidate(Invalidation::Keys(k)) => k.len(),
                _ => 0,
            })
            .sum();
        got == many.len() + 2
    });
}

#[tokio::test]
async fn garbage_is_ignored_and_counted() {
    let server = RedisServer::start();
    let (b, seen) = listening(&server);
    raw_publish(&server, b"");
    raw_publish(&server, b"hello, not a bus message");
    let mut future_version = vec![MESSAGE_VERSION + 1];
    future_version.extend_from_slice(&[0; 17]);
    raw_publish(&server, &future_version);
    let mut truncated = vec![MESSAGE_VERSION];
    truncated.extend_from_slice(&[1; 16]);
    truncated.extend_from_slice(&[0, 255, 255, 255, 255]); // 2^32-1 keys, no bytes
    raw_publish(&server, &truncated);
    raw_publish(&server, &vec![MESSAGE_VERSION; MAX_MESSAGE_SIZE + 1]);
    wait_until("five ignored", || b.ignored_messages() == 5);
    let c = b.counters();
    assert_eq!(
        (c.garbage, c.unknown_version, c.oversized),
        (2, 2, 1),
        "{c:?}"
    );
    // and the bus still works
    let a = RedisBus::new(&opts(&server), CHANNEL).unwrap();
    a.publish(Invalidation::All).await.unwrap();
    wait_until("delivered", || seen.lock().unwrap().len() == 1);
    assert_eq!(b.counters().delivered, 1);
}

#[tokio::test]
async fn resubscribes_after_a_server_restart_and_says_so() {
    let server = RedisServer::start();
    let (b, seen) = listening(&server);
    let a = RedisBus::new(&opts(&server), CHANNEL).unwrap();

    server.kill();
    wait_until("subscription lost", || !b.is_subscribed());
    // publishing while the server is down is an error, promptly
    let start = Instant::now();
    let err = a.publish(Invalidation::All).await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));

    server.restart();
    wait_until("resubscribed", || {
        seen.lock().unwrap().first() == Some(&BusEvent::Resubscribed)
    });
    assert!(b.is_subscribed());
    assert_eq!(b.counters().resubscriptions, 1);
    a.publish(Invalidation::Keys(vec!["shop:users:9".into()]))
        .await
        .unwrap();
    wait_until("received after restart", || seen.lock().unwrap().len() == 2);
    assert_eq!(
        seen.lock().unwrap()[1],
        BusEvent::Invalidate(Invalidation::Keys(vec!["shop:users:9".into()]))
    );
}

#[test]
fn subscriber_started_before_the_server_is_up_catches_up() {
    // The subscriber must not depend on the caller's runtime: subscribe from a plain
    // thread, while the server is down, then bring the server up.
    let server = RedisServer::start();
    server.kill();
    let bus = RedisBus::new(&opts(&server), CHANNEL).unwrap();
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    bus.subscribe(Arc::new(move |e| sink.lock().unwrap().push(e)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!bus.is_subscribed());
    server.restart();
    wait_until("subscribed", || bus.is_subscribed());
    // entries cached while the bus was down are suspect: told as a resubscription
    wait_until("resubscribed event", || {
        seen.lock().unwrap().first() == Some(&BusEvent::Resubscribed)
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let other = RedisBus::new(&opts(&server), CHANNEL).unwrap();
    rt.block_on(other.publish(Invalidation::All)).unwrap();
    drop(rt);
    wait_until("delivered", || seen.lock().unwrap().len() == 2);
}

#[tokio::test]
async fn a_panicking_handler_does_not_stop_the_subscriber() {
    let server = RedisServer::start();
    let bus = RedisBus::new(&opts(&server), CHANNEL).unwrap();
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    bus.subscribe(Arc::new(move |e| {
        let first = sink.lock().unwrap().is_empty();
        sink.lock().unwrap().push(e);
        assert!(!first, "handler panics on the first event");
    }));
    wait_until("subscribed", || bus.is_subscribed());
    let a = RedisBus::new(&opts(&server), CHANNEL).unwrap();
    a.publish(Invalidation::All).await.unwrap();
    a.publish(Invalidation::All).await.unwrap();
    wait_until("both delivered", || seen.lock().unwrap().len() == 2);
}

#[test]
fn dropping_the_bus_stops_its_subscriber() {
    let server = RedisServer::start();
    let count_clients = || -> usize {
        let mut c = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
        // Subscribed clients (`sub=1`), whatever their last command (a heartbeat's `ping`).
        list.lines()
            .filter(|l| l.split(' ').any(|field| field == "sub=1"))
            .count()
    };
    let (bus, _seen) = listening(&server);
    assert_eq!(count_clients(), 1);
    drop(bus);
    wait_until("subscriber gone", || count_clients() == 0);
}

/// A server that stalls briefly (here stopped for 600 ms, as a fork for a save or a slow
/// script may stall it) but answers the heartbeat's `PING` late keeps its subscription: a
/// lost one clears the L1 of every instance subscribed to it at once.
#[test]
fn a_brief_stall_loses_no_subscription() {
    let server = RedisServer::start();
    let opts = opts(&server)
        .operation_timeout(Duration::from_millis(250))
        .heartbeat(Duration::from_millis(250));
    let bus = RedisBus::new(&opts, CHANNEL).unwrap();
    bus.subscribe(Arc::new(|_| {}));
    wait_until("subscribed", || bus.is_subscribed());
    // A PING goes out within 250 ms of the stop and is answered once it ends.
    server.pause();
    std::thread::sleep(Duration::from_millis(600));
    server.resume();
    // A few more beats, answered at once.
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(bus.counters().resubscriptions, 0);
    assert!(bus.is_subscribed());
}

/// A frozen master (SIGSTOP) closes nothing and answers nothing, so a subscription on it
/// heard nothing until it thawed, even once the Sentinels had promoted its replica. The
/// heartbeat (a `PING` on the subscribed connection) notices the silence and the bus
/// resubscribes to the promoted master: invalidations arrive again while the old master
/// stays frozen, and the handler is told it may have missed some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_master_is_noticed_and_the_bus_resubscribes_to_the_promoted_one() {
    let ha = Arc::new(RedisSentinel::start());
    let opts = RedisOptions::sentinel(ha.sentinel_urls(), ha.service());
    // The closures hold clones: the setup must outlive them (dropping it stops the servers).
    let (freezing, watching) = (Arc::clone(&ha), Arc::clone(&ha));
    heard_again_with_the_master_frozen(
        opts,
        Duration::from_millis(500),
        move || freezing.pause_master(),
        move |frozen| watching.wait_for_failover(frozen),
    )
    .await;
}

/// The same on a Redis Cluster with sharded pub/sub: the master of the bus channel's slot
/// frozen, its replica promoted. The subscriber's `PING` goes to that slot's master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_cluster_master_is_noticed_and_the_bus_resubscribes_to_the_promoted_one() {
    let cluster = Arc::new(RedisCluster::start());
    let opts = RedisOptions::cluster(cluster.urls());
    let (freezing, watching) = (Arc::clone(&cluster), Arc::clone(&cluster));
    heard_again_with_the_master_frozen(
        opts,
        Duration::from_millis(500),
        move || {
            let victim = freezing.master_of(CHANNEL);
            freezing.pause(victim);
            victim
        },
        move |frozen| watching.wait_for_failover(frozen),
    )
    .await;
}

/// A subscriber (pinging every `heartbeat`) and a publisher on `opts`; once the bus works,
/// `freeze` freezes the master the subscription is on (returning its port) and `promoted`
/// waits for its successor.
/// Fails unless an invalidation reaches the subscriber within 10 s of the promotion, the
/// old master still frozen (it is killed, not thawed, when the servers are dropped).
async fn heard_again_with_the_master_frozen(
    opts: RedisOptions,
    heartbeat: Duration,
    freeze: impl FnOnce() -> u16,
    promoted: impl FnOnce(u16) -> (Instant, u16) + Send + 'static,
) {
    let opts = opts
        .operation_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .heartbeat(heartbeat);
    let b = RedisBus::new(&opts, CHANNEL).unwrap();
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    b.subscribe(Arc::new(move |e| sink.lock().unwrap().push(e)));
    let a = RedisBus::new(&opts, CHANNEL).unwrap();
    let heard = |n: u32| {
        let event = BusEvent::Invalidate(Invalidation::Keys(vec![format!("shop:users:{n}")]));
        seen.lock().unwrap().contains(&event)
    };
    let publish = |n: u32| a.publish(Invalidation::Keys(vec![format!("shop:users:{n}")]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !heard(1) {
        assert!(Instant::now() < deadline, "the bus never worked");
        let _ = publish(1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let frozen = tokio::task::block_in_place(freeze);
    let (promoted_at, successor) = tokio::task::spawn_blocking(move || promoted(frozen))
        .await
        .unwrap();
    // Only a subscription moved off the frozen master can hear this.
    let within = Duration::from_secs(10);
    while !heard(2) {
        assert!(
            promoted_at.elapsed() < within,
            "no invalidation reached the bus within {within:?} of the promotion (master on {frozen} frozen, {successor} promoted; subscribed: {}, resubscriptions: {})",
            b.is_subscribed(),
            b.counters().resubscriptions
        );
        // Fails until the publisher finds the promoted master too.
        let _ = publish(2).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "heard again {:?} after the promotion",
        promoted_at.elapsed()
    );
    assert!(
        seen.lock().unwrap().contains(&BusEvent::Resubscribed),
        "resubscribed without telling the handler it may have missed messages"
    );
    assert!(b.counters().resubscriptions >= 1);
}

/// How many commands the server refused for want of ACL permission (`NOPERM`).
fn refused_for_permission(server: &RedisServer) -> u64 {
    let stats = redis_server::cli(server.port(), &["INFO", "errorstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("errorstat_NOPERM:count="))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A `PING` answered with an error proves the node alive, so it keeps the subscription:
/// here the bus's ACL user may not `PING` (`-ping`), and a RESP2 subscriber's `PING` is
/// checked against the ACL like any command, so every heartbeat is answered `NOPERM`.
/// The server's count of refusals shows the heartbeats were refused, not skipped; the
/// subscription stays and invalidations still arrive.
#[tokio::test]
async fn a_ping_answered_with_an_error_keeps_the_subscription() {
    let server = RedisServer::start();
    let admin = |args: &[&str]| redis_server::cli(server.port(), args);
    assert_eq!(
        admin(&["ACL", "SETUSER", "bus", "on", ">bus-pw", "~shop:*", "&shop:*", "+@all", "-ping"]),
        "OK"
    );
    let url = format!("redis://bus:bus-pw@127.0.0.1:{}/0", server.port());
    let heartbeat = Duration::from_millis(100);
    let b = RedisBus::new(&RedisOptions::new(url).heartbeat(heartbeat), CHANNEL).unwrap();
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    b.subscribe(Arc::new(move |e| sink.lock().unwrap().push(e)));
    wait_until("subscribed", || b.is_subscribed());
    let before = refused_for_permission(&server);
    wait_until("five heartbeats refused", || {
        refused_for_permission(&server) >= before + 5
    });
    assert_eq!(
        b.counters().resubscriptions,
        0,
        "an error reply lost the subscription"
    );
    let a = RedisBus::new(&opts(&server), CHANNEL).unwrap();
    let keys = Invalidation::Keys(vec!["shop:users:7".into()]);
    a.publish(keys.clone()).await.unwrap();
    wait_until("heard", || {
        seen.lock()
            .unwrap()
            .contains(&BusEvent::Invalidate(keys.clone()))
    });
    assert!(!seen.lock().unwrap().contains(&BusEvent::Resubscribed));
    assert_eq!(b.counters().resubscriptions, 0);
}
