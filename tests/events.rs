//! The manager's events (issue 15 §2): every kind is told to a subscriber, with its store,
//! cache and key; nothing is told once the subscription is dropped. Tiered stores run on a
//! real `redis-server` behind the chaos kit's fault-injecting tier.

#[allow(dead_code)] // redis_cli
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_backends::redis::RedisBus;
use cachet::testing::{Fault, FaultRule, FaultyTier, ManualClock, Operation};
use cachet::{CacheError, CacheManager, CacheOptions, EventKind, Subscription};
use support::chaos::{chaos_store, ChaosStore};
use support::eventually;
use support::redis_server::RedisServer;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// What a listener heard: kind, store, cache and key of each event.
type Heard = Arc<Mutex<Vec<(EventKind, String, Option<String>, Option<String>)>>>;

fn listen(manager: &CacheManager) -> (Heard, Subscription) {
    let heard: Heard = Arc::default();
    let sink = heard.clone();
    let subscription = manager.subscribe(move |event| {
        sink.lock().unwrap().push((
            event.kind,
            event.store.to_owned(),
            event.cache.map(str::to_owned),
            event.key.map(str::to_owned),
        ))
    });
    (heard, subscription)
}

/// The kinds heard since the last call, emptying the record.
fn kinds(heard: &Heard) -> Vec<EventKind> {
    heard.lock().unwrap().drain(..).map(|e| e.0).collect()
}

/// Whether a bus message from another instance was heard.
fn received(heard: &Heard) -> bool {
    heard
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.0 == EventKind::BusReceived)
}

#[derive(Debug, PartialEq)]
struct Down;

impl From<CacheError> for Down {
    fn from(_: CacheError) -> Self {
        Down
    }
}

#[tokio::test]
async fn a_cache_tells_what_it_does() {
    let clock = ManualClock::new();
    let manager = CacheManager::builder()
        .memory_store("memory")
        .manual_clock(clock.clone())
        .ttl(MINUTE)
        .grace(10 * MINUTE)
        .hard_timeout(SECOND)
        .validate_declarations(false)
        .build()
        .unwrap();
    let (heard, subscription) = listen(&manager);
    let users = manager.cache("users").unwrap();

    users.set(&1u64, &"ann".to_string()).await.unwrap();
    {
        let all = heard.lock().unwrap();
        let (kind, store, cache, key) = &all[0];
        assert_eq!(*kind, EventKind::Write);
        assert_eq!(store, "memory");
        assert_eq!(cache.as_deref(), Some("users"));
        assert!(key.as_deref().unwrap().ends_with(":users:1"), "{key:?}");
    }
    kinds(&heard);

    assert_eq!(
        users.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(users.get::<String>(&2u64).await.unwrap(), None);
    assert_eq!(kinds(&heard), [EventKind::Hit, EventKind::Miss]);

    users.expire(&1u64).await.unwrap();
    assert_eq!(
        users.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(kinds(&heard), [EventKind::Expire, EventKind::StaleHit]);

    let failed: Result<String, Down> = users.try_get_or_set(&3u64, || async { Err(Down) }).await;
    assert_eq!(failed, Err(Down));
    assert_eq!(kinds(&heard), [EventKind::Miss, EventKind::FactoryError]);

    // A factory past the hard timeout (the manual clock moves while it waits).
    let slow = users.get_or_set(&4u64, || async {
        std::future::pending::<()>().await;
        0u32
    });
    let mut slow = std::pin::pin!(slow);
    let advance = async {
        for _ in 0..100 {
            tokio::task::yield_now().await;
            clock.advance(SECOND);
        }
    };
    let (timed_out, ()) = tokio::join!(&mut slow, advance);
    assert!(
        matches!(timed_out, Err(CacheError::Timeout { .. })),
        "{timed_out:?}"
    );
    let told = kinds(&heard);
    assert!(told.contains(&EventKind::FactoryTimeout), "{told:?}");

    users.delete(&1u64).await.unwrap();
    users.clear().await.unwrap();
    assert_eq!(kinds(&heard), [EventKind::Delete, EventKind::Clear]);
    {
        let all = heard.lock().unwrap();
        assert!(all.is_empty());
    }

    // Annotated-function paths and batches tell too: a miss, a write, a hit.
    let n: u32 = users.get_or_set(&5u64, || async { 5 }).await.unwrap();
    let again: u32 = users.get_or_set(&5u64, || async { 6 }).await.unwrap();
    assert_eq!((n, again), (5, 5));
    assert_eq!(
        kinds(&heard),
        [EventKind::Miss, EventKind::Write, EventKind::Hit]
    );

    drop(subscription);
    let _ = users.get::<String>(&9u64).await.unwrap();
    users.set(&9u64, &"x".to_string()).await.unwrap();
    assert_eq!(kinds(&heard), [], "nothing once unsubscribed");
}

#[tokio::test]
async fn a_panicking_listener_does_not_fail_the_cache() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .validate_declarations(false)
        .build()
        .unwrap();
    let _panicky = manager.subscribe(|_| panic!("a listener's bug"));
    let (heard, _subscription) = listen(&manager);
    let users = manager.cache("users").unwrap();
    users.set(&1u64, &1u32).await.unwrap();
    assert_eq!(users.get::<u32>(&1u64).await.unwrap(), Some(1));
    assert_eq!(kinds(&heard), [EventKind::Write, EventKind::Hit]);
}

#[tokio::test]
async fn admin_clears_and_deletes_tell_listeners() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .validate_declarations(false)
        .build()
        .unwrap();
    let (heard, _subscription) = listen(&manager);
    let users = manager.cache("users").unwrap();
    users.set(&1u64, &1u32).await.unwrap();
    assert_eq!(kinds(&heard), [EventKind::Write]);
    // What the HTTP endpoint's `DELETE /caches/users` and `DELETE /caches/users/1` and the
    // CLI's `cachet clear` go through.
    users.purge().await.unwrap();
    users.delete_raw("1").await.unwrap();
    let store = manager.store("memory").unwrap();
    store.purge().await.unwrap();
    store.clear().await.unwrap();
    let all: Vec<_> = heard.lock().unwrap().drain(..).collect();
    let users_name = Some("users".to_owned());
    let memory = "memory".to_owned();
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(
        all[0],
        (EventKind::Clear, memory.clone(), users_name.clone(), None)
    );
    let (kind, store_name, cache, key) = &all[1];
    assert_eq!(
        (kind, store_name, cache),
        (&EventKind::Delete, &memory, &users_name)
    );
    assert!(key.as_deref().is_some_and(|k| k.ends_with(":1")), "{key:?}");
    // A store's clear names no cache.
    assert_eq!(all[2], (EventKind::Clear, memory.clone(), None, None));
    assert_eq!(all[3], (EventKind::Clear, memory, None, None));
}

/// An instance of a service: L1 memory, L2 on `server` through a [`FaultyTier`], a bus.
struct Instance {
    manager: CacheManager,
    l2: Arc<FaultyTier>,
    bus: Arc<RedisBus>,
}

impl Instance {
    fn new(server: &RedisServer, clock: &ManualClock) -> Self {
        let ChaosStore { store, l2, bus } = chaos_store(server, "events", true);
        let bus = bus.unwrap();
        let manager = CacheManager::builder()
            .manual_clock(clock.clone())
            .prefix("events")
            .ttl(MINUTE)
            .store("tiered", store)
            .validate_declarations(false)
            .build()
            .unwrap();
        Self { manager, l2, bus }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_tell_bus_l2_and_breaker_events() {
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = Instance::new(&server, &clock);
    let b = Instance::new(&server, &clock);
    for instance in [&a, &b] {
        eventually("the bus is subscribed", async || {
            instance.bus.is_subscribed()
        })
        .await;
    }
    let (heard_a, _sub_a) = listen(&a.manager);
    let (heard_b, _sub_b) = listen(&b.manager);
    let (items_a, items_b) = (
        a.manager.cache("items").unwrap(),
        b.manager.cache("items").unwrap(),
    );

    // A's change published, B told; then an L2 hit on B.
    items_a.set("k", &1u32).await.unwrap();
    assert_eq!(kinds(&heard_a), [EventKind::Write, EventKind::BusPublished]);
    eventually("B hears A's write", async || received(&heard_b)).await;
    assert_eq!(kinds(&heard_b), [EventKind::BusReceived]);
    assert_eq!(items_b.get::<u32>("k").await.unwrap(), Some(1));
    assert_eq!(kinds(&heard_b), [EventKind::Hit]);
    items_a.delete("k").await.unwrap();
    eventually("B hears A's delete", async || received(&heard_b)).await;
    let received = heard_b
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.0 == EventKind::BusReceived)
        .cloned()
        .unwrap();
    assert_eq!(
        (received.1.as_str(), received.2, received.3),
        ("tiered", None, None)
    );
    kinds(&heard_a);

    // An unreachable L2: an error, the breaker opens; once it answers again, it closes.
    a.l2.inject(FaultRule::on(Operation::Get, Fault::Fail).times(1));
    assert_eq!(items_a.get::<u32>("gone").await.unwrap(), None);
    let told = kinds(&heard_a);
    assert!(
        told.starts_with(&[EventKind::L2Error, EventKind::BreakerOpened]),
        "{told:?}"
    );
    assert_eq!(items_a.get::<u32>("gone").await.unwrap(), None);
    assert_eq!(
        kinds(&heard_a),
        [EventKind::Miss],
        "the breaker keeps L2 alone"
    );
    clock.advance(6 * SECOND);
    assert_eq!(items_a.get::<u32>("gone").await.unwrap(), None);
    assert_eq!(kinds(&heard_a), [EventKind::BreakerClosed, EventKind::Miss]);
    assert_eq!(
        items_a
            .with_options(CacheOptions::new().skip_l2_read(true))
            .get::<u32>("gone")
            .await
            .unwrap(),
        None
    );
}
