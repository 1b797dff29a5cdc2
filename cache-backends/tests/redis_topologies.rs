//! The redis driver on a Redis Cluster (3 masters, 3 replicas) and through Redis
//! Sentinel (a master, a replica, 3 Sentinels), against real servers the harness starts:
//! the tier's semantics, the lock and the bus, as on one server — and on the cluster,
//! keys spread over every master and nothing fails with `CROSSSLOT`.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_backends::redis::{RedisBus, RedisOptions, RedisTier};
use cache_core::store::{Bus, BusEvent, Invalidation, RemoteTier, Scope};
use redis_server::{cli, RedisCluster, RedisSentinel, RedisServer};

fn fast(opts: RedisOptions) -> RedisOptions {
    opts.operation_timeout(Duration::from_millis(1000))
        .connect_timeout(Duration::from_millis(1000))
}

const TTL: Duration = Duration::from_secs(60);

/// Every key of `scope`, by walking `scan_scope` from cursor 0 to 0.
async fn scanned(tier: &RedisTier, scope: &str) -> BTreeSet<String> {
    let scope = Scope::new(scope);
    let mut keys = BTreeSet::new();
    let mut cursor = 0;
    loop {
        let (next, page) = tier.scan_scope(&scope, cursor).await.unwrap();
        keys.extend(page);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// What every topology must do as one server does, through the tier's API alone.
async fn tier_semantics(tier: &RedisTier) {
    tier.ping().await.unwrap();
    // get / set, many keys (on a cluster: many slots)
    let users: Vec<String> = (0..200).map(|i| format!("topo:users:{i}")).collect();
    for (i, key) in users.iter().enumerate() {
        tier.set(key, format!("v{i}").into_bytes(), TTL)
            .await
            .unwrap();
    }
    for (i, key) in users.iter().enumerate() {
        assert_eq!(
            tier.get(key).await.unwrap(),
            Some(format!("v{i}").into_bytes())
        );
    }
    assert_eq!(tier.get("topo:users:absent").await.unwrap(), None);

    // the scan walks every key of the scope (and nothing else)
    tier.set("topo:posts:1", b"p".to_vec(), TTL).await.unwrap();
    let seen = scanned(tier, "topo:users").await;
    assert_eq!(seen, users.iter().cloned().collect::<BTreeSet<_>>());

    // delete_many across slots
    tier.delete_many(&users[..100]).await.unwrap();
    for key in &users[..100] {
        assert_eq!(tier.get(key).await.unwrap(), None, "{key}");
    }
    assert!(tier.get(&users[150]).await.unwrap().is_some());

    // clear a scope: every key of it, on every master; nothing outside it
    tier.clear_scope(&Scope::new("topo:users")).await.unwrap();
    for key in &users {
        assert_eq!(tier.get(key).await.unwrap(), None, "{key}");
    }
    assert_eq!(tier.get("topo:posts:1").await.unwrap(), Some(b"p".to_vec()));
    assert!(scanned(tier, "topo:users").await.is_empty());

    // tags: entries and their tag sets on different slots
    let tags = [
        "topo:items:=tag:red".to_string(),
        "topo:items:=tag:big".to_string(),
    ];
    let items: Vec<String> = (0..60).map(|i| format!("topo:items:{i}")).collect();
    for (i, key) in items.iter().enumerate() {
        let tagged = match i % 3 {
            0 => &tags[..1],
            1 => &tags[1..],
            _ => &tags[..],
        };
        tier.set_tagged(key, b"x".to_vec(), TTL, tagged, TTL)
            .await
            .unwrap();
        assert_eq!(tier.get(key).await.unwrap(), Some(b"x".to_vec()));
    }
    let red: BTreeSet<String> = tier
        .tagged_keys(&tags[..1])
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected_red: BTreeSet<String> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 1)
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(red, expected_red);
    let both: BTreeSet<String> = tier.tagged_keys(&tags).await.unwrap().into_iter().collect();
    assert_eq!(both.len(), items.len());
    let red: Vec<String> = red.into_iter().collect();
    tier.delete_tagged(&red, &tags[..1]).await.unwrap();
    for (i, key) in items.iter().enumerate() {
        let present = tier.get(key).await.unwrap().is_some();
        assert_eq!(present, i % 3 == 1, "{key}");
    }
    assert!(tier.tagged_keys(&tags[..1]).await.unwrap().is_empty());

    // the lock
    let lock = "topo:~lock:items:1";
    assert!(tier.try_lock(lock, "a", TTL).await.unwrap());
    assert!(!tier.try_lock(lock, "b", TTL).await.unwrap());
    assert!(!tier.unlock(lock, "b").await.unwrap());
    assert!(tier.unlock(lock, "a").await.unwrap());
    assert!(tier.try_lock(lock, "b", TTL).await.unwrap());

    tier.clear_scope(&Scope::new("topo")).await.unwrap();
    assert!(scanned(tier, "topo").await.is_empty());
}

/// Two buses on `opts`: one's messages reach the other, never itself. Returns them, still
/// subscribed.
async fn bus_semantics(opts: &RedisOptions) -> (RedisBus, RedisBus) {
    let a = RedisBus::new(opts, "topo:__bus").unwrap();
    let b = RedisBus::new(opts, "topo:__bus").unwrap();
    let seen_a = Arc::new(Mutex::new(Vec::new()));
    let seen_b = Arc::new(Mutex::new(Vec::new()));
    for (bus, seen) in [(&a, &seen_a), (&b, &seen_b)] {
        let seen = Arc::clone(seen);
        bus.subscribe(Arc::new(move |e: BusEvent| seen.lock().unwrap().push(e)));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(a.is_subscribed() && b.is_subscribed()) {
        assert!(Instant::now() < deadline, "buses never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let message = Invalidation::Keys(vec!["topo:users:1".into()]);
    a.publish(message.clone()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen_b.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the message never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*seen_b.lock().unwrap(), [BusEvent::Invalidate(message)]);
    // The publisher's own copy arrives too, and is skipped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.counters().own == 0 {
        assert!(
            Instant::now() < deadline,
            "the publisher's own copy never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen_a.lock().unwrap().is_empty(),
        "a bus hears its own message"
    );
    let checked = a.check().await.unwrap();
    assert!(checked.round_trip <= Duration::from_secs(5));
    (a, b)
}

#[tokio::test]
async fn a_cluster_serves_the_tier_the_lock_and_the_bus() {
    let cluster = RedisCluster::start();
    let opts = fast(RedisOptions::cluster(cluster.urls()));
    let tier = RedisTier::new(&opts).unwrap();
    assert!(
        tier.describe()
            .starts_with("redis cluster redis://127.0.0.1:"),
        "{}",
        tier.describe()
    );

    // Keys spread: 200 keys land on every master, not one slot.
    for i in 0..200 {
        tier.set(&format!("spread:users:{i}"), b"v".to_vec(), TTL)
            .await
            .unwrap();
    }
    for port in cluster.masters() {
        let held: u64 = cli(port, &["DBSIZE"]).parse().unwrap();
        assert!(held > 20, "master on {port} holds {held} of 200 keys");
    }
    // Every key carries a TTL, on whichever master holds it.
    let key = "spread:users:7";
    let pttl: i64 = cli(cluster.master_of(key), &["PTTL", key]).parse().unwrap();
    assert!(pttl > 0, "PTTL {pttl}");
    tier.clear_scope(&Scope::new("spread")).await.unwrap();
    for port in cluster.masters() {
        assert_eq!(cli(port, &["DBSIZE"]), "0");
    }

    // A tag set and the entries it lists sit on different slots (no hash tag pins them).
    assert_ne!(
        cluster.slot_of("topo:items:=tag:red"),
        cluster.slot_of("topo:items:0")
    );
    tier_semantics(&tier).await;
    let _buses = bus_semantics(&opts).await;
    // Redis 7 has sharded pub/sub: both buses listen on the channel's shard, not on
    // every node.
    let owner = cluster.master_of("topo:__bus");
    let counted = cli(owner, &["PUBSUB", "SHARDNUMSUB", "topo:__bus"]);
    assert_eq!(counted.lines().nth(1), Some("2"), "{counted}");
    let classic = cli(owner, &["PUBSUB", "NUMSUB", "topo:__bus"]);
    assert_eq!(classic.lines().nth(1), Some("0"), "{classic}");

    // A slot moved to another master (a resharding) after the tier learnt the routes: the
    // old master answers MOVED, and reads and writes follow the slot to its new master.
    let moved = "topo:moved:1";
    tier.set(moved, b"before".to_vec(), TTL).await.unwrap();
    assert_eq!(tier.get(moved).await.unwrap(), Some(b"before".to_vec()));
    let from = cluster.master_of(moved);
    let to = cluster.masters().into_iter().find(|p| *p != from).unwrap();
    routed_to(&tier, moved, from).await;
    cluster.move_slot(moved, to);
    for round in 0..3 {
        assert_eq!(
            tier.get(moved).await.unwrap(),
            Some(b"before".to_vec()),
            "read {round} after the move"
        );
    }
    // The old master's MOVED had the routes read again: commands on the key now go
    // straight to the new master, not through the cluster connection.
    routed_to(&tier, moved, to).await;
    tier.set(moved, b"after".to_vec(), TTL).await.unwrap();
    assert_eq!(cli(to, &["GET", moved]), "after");
    assert_eq!(tier.get(moved).await.unwrap(), Some(b"after".to_vec()));
    // Longer than the write: a touch only ever raises an expiry.
    assert!(tier.touch(moved, 2 * TTL).await.unwrap());

    asks_are_followed(&cluster, &tier).await;
}

/// Waits (reading `key` meanwhile, which has a missing or stale route read again) until
/// the tier sends commands on `key` straight to the master on `port`; fails after 10 s.
async fn routed_to(tier: &RedisTier, key: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let routed = tier.routed_master(key);
        if routed == Some(("127.0.0.1".to_string(), port)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{key}` is routed to {routed:?}, not to the master on port {port}"
        );
        tier.get(key).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A slot caught half way through a move: the old master answers `ASK` for the keys it
/// no longer holds (and for new ones) and serves the others. Reads, writes and touches
/// of both, and of a key never written, are right; the slot's route stays on the old
/// master (an `ASK` moves one command, not the slot) until the move ends, and the new
/// master then holds every write made meanwhile.
async fn asks_are_followed(cluster: &RedisCluster, tier: &RedisTier) {
    // Ten keys of one slot (one hash tag), written before the move starts.
    let keys: Vec<String> = (0..10).map(|i| format!("topo:{{asked}}:{i}")).collect();
    for key in &keys {
        tier.set(key, format!("{key}=0").into_bytes(), TTL)
            .await
            .unwrap();
    }
    let from = cluster.master_of(&keys[0]);
    let to = cluster.masters().into_iter().find(|p| *p != from).unwrap();
    routed_to(tier, &keys[0], from).await;
    let migration = cluster.begin_move(&keys[0], to);
    let moved: Vec<&str> = keys[..5].iter().map(String::as_str).collect();
    cluster.migrate(&migration, &moved);
    // The old master no longer has the moved keys: it answers ASK for them, and still
    // serves the others.
    let asked = cli(from, &["GET", moved[0]]);
    assert!(asked.starts_with("ASK"), "{asked}");
    assert_eq!(cli(from, &["GET", &keys[9]]), format!("{}=0", keys[9]));
    let fresh = "topo:{asked}:fresh";
    for round in 1..=3 {
        for key in &keys {
            let before = format!("{key}={}", round - 1);
            assert_eq!(
                tier.get(key).await.unwrap(),
                Some(before.into_bytes()),
                "{key} in round {round}"
            );
            let now = format!("{key}={round}");
            tier.set(key, now.clone().into_bytes(), TTL).await.unwrap();
            assert_eq!(tier.get(key).await.unwrap(), Some(now.into_bytes()));
            assert!(tier.touch(key, 2 * TTL).await.unwrap(), "{key}");
        }
        assert_eq!(tier.get(fresh).await.unwrap(), None);
    }
    tier.set(fresh, b"new".to_vec(), TTL).await.unwrap();
    assert_eq!(tier.get(fresh).await.unwrap(), Some(b"new".to_vec()));
    // An ASK is about one command: the slot's route has stayed on the old master.
    assert_eq!(
        tier.routed_master(&keys[9]),
        Some(("127.0.0.1".to_string(), from))
    );
    cluster.finish_move(migration);
    for key in &keys {
        assert_eq!(cli(to, &["GET", key]), format!("{key}=3"));
    }
    assert_eq!(cli(to, &["GET", fresh]), "new");
    routed_to(tier, &keys[0], to).await;
    for key in &keys {
        assert_eq!(
            tier.get(key).await.unwrap(),
            Some(format!("{key}=3").into_bytes())
        );
    }
}

#[tokio::test]
async fn sentinel_serves_the_tier_the_lock_and_the_bus() {
    let ha = RedisSentinel::start();
    let opts = fast(RedisOptions::sentinel(ha.sentinel_urls(), ha.service()));
    let tier = RedisTier::new(&opts).unwrap();
    assert!(
        tier.describe()
            .starts_with("redis sentinel mymaster via redis://127.0.0.1:"),
        "{}",
        tier.describe()
    );
    tier_semantics(&tier).await;
    bus_semantics(&opts).await;
    // The data went to the master the Sentinels name.
    let master = ha.master_port();
    tier.set("topo:where", b"here".to_vec(), TTL).await.unwrap();
    assert_eq!(cli(master, &["EXISTS", "topo:where"]), "1");
}

/// Valkey, a Redis-compatible server: the same semantics on one Valkey server.
#[tokio::test]
async fn valkey_serves_the_tier_the_lock_and_the_bus() {
    let server = RedisServer::start_valkey();
    let opts = fast(RedisOptions::new(server.url()));
    let tier = RedisTier::new(&opts).unwrap();
    tier_semantics(&tier).await;
    bus_semantics(&opts).await;
    assert!(cli(server.port(), &["INFO", "server"]).contains("valkey"));
}

#[test]
fn cluster_and_sentinel_options_are_read_from_config() {
    use cache_core::config::TierConfig;
    use cache_core::driver::find_driver;
    use cache_core::ConfigOrigin;
    let build = |options: &str| {
        let cfg = TierConfig::new(
            "redis",
            toml::from_str(options).unwrap(),
            "stores.s.l2",
            ConfigOrigin::String,
        );
        (find_driver("redis").unwrap().remote.unwrap())(&cfg)
    };
    let t = build(r#"cluster = ["redis://:pw1@127.0.0.1:7000", "redis://:pw1@127.0.0.1:7001"]"#)
        .unwrap();
    assert_eq!(
        t.describe(),
        "redis cluster redis://127.0.0.1:7000,redis://127.0.0.1:7001"
    );
    let t = build(
        r#"sentinels = ["redis://:pw1@127.0.0.1:26379"]
service = "mymaster""#,
    )
    .unwrap();
    assert_eq!(
        t.describe(),
        "redis sentinel mymaster via redis://127.0.0.1:26379"
    );
    for (options, field, says) in [
        (r#"cluster = []"#, "stores.s.l2.cluster", "non-empty array"),
        (r#"cluster = "redis://h:1""#, "stores.s.l2.cluster", "array"),
        (
            r#"cluster = ["http://h:1"]"#,
            "stores.s.l2.cluster",
            "redis://",
        ),
        (
            r#"cluster = ["redis://h:1/2"]"#,
            "stores.s.l2.cluster",
            "database 0",
        ),
        (
            r#"cluster = ["redis://:pw1@h:1", "redis://:pw2@h:2"]"#,
            "stores.s.l2.cluster",
            "same user and password",
        ),
        (
            r#"sentinels = ["redis://h:1"]"#,
            "stores.s.l2.service",
            "requires `service`",
        ),
        (r#"service = "m""#, "stores.s.l2.sentinels", "Sentinels"),
        (
            r#"url = "redis://h"
cluster = ["redis://h:1"]"#,
            "stores.s.l2",
            "not several",
        ),
        (
            r#"sentinels = ["redis://h:1"]
service = """#,
            "stores.s.l2.service",
            "master's name",
        ),
    ] {
        let err = build(options).err().expect("refused").to_string();
        assert!(
            err.contains(field) && err.contains(says),
            "{options}: {err}"
        );
        assert!(!err.contains("pw1") && !err.contains("pw2"), "{err}");
    }
}
