//! Logs of the redis driver never hold the password. In its own test binary because it
//! installs a global `tracing` subscriber (the bus logs from the backend's own thread).
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_backends::redis::{RedisBus, RedisOptions, RedisTier};
use cache_core::store::{Bus, BusEvent, Invalidation, RemoteTier};
use redis_server::RedisServer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records every event's fields as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut text = self.0.lock().unwrap();
        span.record(&mut Text(&mut text));
        Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Text(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = self.0.lock().unwrap();
        text.push('\n');
        let _ = write!(text, "{}:", event.metadata().level());
        event.record(&mut Text(&mut text));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The one global subscriber of this binary's tests (each reads the lines of its own
/// channel).
fn capture() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(capture.clone()).unwrap();
        capture
    })
}

/// A subscription lost again and again (here its connection killed three times in a row)
/// is warned of once per period, not once per loss; the others go to `debug` and are
/// counted in the next warning.
#[test]
fn a_flapping_subscription_is_warned_of_once() {
    let capture = capture();
    let server = RedisServer::start();
    let channel = "flap:__bus";
    let opts = RedisOptions::new(server.url()).heartbeat(Duration::ZERO);
    let bus = RedisBus::new(&opts, channel).unwrap();
    bus.subscribe(Arc::new(|_| {}));
    let deadline = Instant::now() + Duration::from_secs(10);
    for lost in 1..=3 {
        while !bus.is_subscribed() || bus.counters().resubscriptions < lost - 1 {
            assert!(Instant::now() < deadline, "not subscribed again");
            std::thread::sleep(Duration::from_millis(10));
        }
        let killed = redis_server::cli(server.port(), &["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert_eq!(killed, "1");
        while bus.is_subscribed() {
            assert!(Instant::now() < deadline, "the kill went unnoticed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    while bus.counters().resubscriptions < 3 {
        assert!(Instant::now() < deadline, "not subscribed again");
        std::thread::sleep(Duration::from_millis(10));
    }
    let logs = capture.0.lock().unwrap().clone();
    let lost = |level: &str| {
        logs.lines()
            .filter(|l| {
                l.starts_with(level) && l.contains(channel) && l.contains("subscription lost")
            })
            .count()
    };
    assert_eq!((lost("WARN:"), lost("DEBUG:")), (1, 2), "{logs}");
    assert!(logs.contains("why=\"the connection closed\""), "{logs}");
}

/// On a cluster the heartbeat pings the node whose connection holds the `SSUBSCRIBE`, by
/// address, not whichever master the connection's slot map names later: the subscriber
/// tells that node when it subscribes (`CLIENT INFO` on the connection that subscribed,
/// then by address on the same connection), and says so at `debug` when it cannot.
#[test]
fn a_cluster_subscription_knows_the_node_it_is_on() {
    let capture = capture();
    let cluster = redis_server::RedisCluster::start();
    let channel = "node:__bus";
    let bus = RedisBus::new(&RedisOptions::cluster(cluster.urls()), channel).unwrap();
    bus.subscribe(Arc::new(|_| {}));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bus.is_subscribed() {
        assert!(Instant::now() < deadline, "not subscribed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The subscription is on the channel's master: its PINGs arrive there.
    let master = cluster.master_of(channel);
    let pinged = || {
        redis_server::cli(master, &["CLIENT", "LIST"])
            .lines()
            .any(|l| l.contains(" ssub=1 ") && l.contains(" cmd=ping "))
    };
    while !pinged() {
        assert!(
            Instant::now() < deadline,
            "no heartbeat on the subscribed connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = capture.0.lock().unwrap().clone();
    let blind = logs
        .lines()
        .any(|l| l.contains(channel) && l.contains("could not be told"));
    assert!(!blind, "{logs}");
}

/// On a cluster whose ACL user may not `CLIENT INFO`, the subscriber cannot tell the node
/// holding its subscription, so its heartbeat pings whichever master serves the channel's
/// slot (after a failover, a node the subscription is not on): it says so at `warn` once
/// per subscription, naming the permission it lacks.
#[test]
fn a_cluster_subscription_that_cannot_tell_its_node_says_so() {
    let capture = capture();
    let cluster = redis_server::RedisCluster::start();
    let acl = [
        "ACL", "SETUSER", "bus", "on", ">bus-pw", "~*", "&*", "+@all",
    ];
    for port in cluster.ports() {
        redis_server::cli(port, &[&acl[..], &["-client|info"]].concat());
    }
    let seeds = cluster
        .ports()
        .into_iter()
        .map(|port| format!("redis://bus:bus-pw@127.0.0.1:{port}"));
    let channel = "blind:__bus";
    let bus = RedisBus::new(&RedisOptions::cluster(seeds), channel).unwrap();
    bus.subscribe(Arc::new(|_| {}));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bus.is_subscribed() {
        assert!(Instant::now() < deadline, "not subscribed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let logs = capture.0.lock().unwrap().clone();
    let warned = logs
        .lines()
        .filter(|l| l.starts_with("WARN:") && l.contains(channel))
        .filter(|l| l.contains("could not be told") && l.contains("+client|info"))
        .count();
    assert_eq!(warned, 1, "{logs}");
    assert!(!logs.contains("bus-pw"), "{logs}");
}

#[tokio::test]
async fn logs_never_hold_the_password() {
    let capture = capture();
    const SECRET: &str = "L0g-S3cret-pw";

    let server = RedisServer::start_with_password(SECRET);
    let opts = RedisOptions::new(server.url())
        .operation_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300));
    let tier = RedisTier::new(&opts).unwrap();
    let bus = RedisBus::new(&opts, "p:__bus").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe(Arc::new(move |e: BusEvent| sink.lock().unwrap().push(e)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bus.is_subscribed() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tier.set("p:c:1", b"x".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();

    // faults: lost subscription (logged), failing operations, resubscription
    server.kill();
    let _ = tier.get("p:c:1").await;
    let _ = bus.publish(Invalidation::All).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.restart();
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no resubscription");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // a wrong password, at connect time
    let wrong = RedisOptions::new(format!(
        "redis://:Wr0ng-{SECRET}@127.0.0.1:{}/0",
        server.port()
    ))
    .connect_timeout(Duration::from_millis(300));
    let wrong_bus = RedisBus::new(&wrong, "p:__bus").unwrap();
    wrong_bus.subscribe(Arc::new(|_| {}));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let logs = capture.0.lock().unwrap().clone();
    assert!(logs.contains("subscription lost"), "nothing logged? {logs}");
    assert!(logs.contains("cannot subscribe"), "{logs}");
    assert!(!logs.contains(SECRET), "{logs}");
}
