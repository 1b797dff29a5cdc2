//! Tags: entries written with tags are deleted by tag, in L1, in L2 and on the other
//! instances, and nothing else is: untagged entries, other tags, other caches and other
//! namespaces survive.
#![deny(warnings)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use cachet::testing::with_manager;
use cachet::{cache_put, cacheable, CacheManager};

fn memory() -> CacheManager {
    CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap()
}

#[derive(Default)]
struct Catalog {
    runs: AtomicU64,
}

impl Catalog {
    fn run(&self) -> u64 {
        self.runs.fetch_add(1, SeqCst) + 1
    }

    fn runs(&self) -> u64 {
        self.runs.load(SeqCst)
    }

    #[cacheable("products", tags = ["catalog", "sale"])]
    async fn on_sale(&self, id: u64) -> u64 {
        self.run() * 1000 + id
    }

    #[cacheable("products", key = ("plain", id))]
    async fn plain(&self, id: u64) -> u64 {
        self.run() * 1000 + id
    }

    #[cacheable("products", key = ("new", id), tags = ["new"])]
    fn new_in(&self, id: u64) -> u64 {
        self.run() * 1000 + id
    }

    #[cache_put("products", key = ("put", id), tags = ["catalog"])]
    async fn save(&self, id: u64) -> Result<u64, std::fmt::Error> {
        Ok(self.run() * 1000 + id)
    }

    #[cacheable("orders", tags = ["catalog"])]
    async fn order(&self, id: u64) -> u64 {
        self.run() * 1000 + id
    }
}

#[tokio::test]
async fn annotated_tags_are_deleted_by_tag_and_nothing_else() {
    let manager = memory();
    with_manager(manager.clone(), async {
        let c = Catalog::default();
        let sale = c.on_sale(1).await;
        let plain = c.plain(1).await;
        let new = c.new_in(1);
        let saved = c.save(1).await.unwrap();
        let order = c.order(1).await;
        assert_eq!(c.runs(), 5);
        // all cached
        assert_eq!(c.on_sale(1).await, sale);
        assert_eq!(c.plain(1).await, plain);
        assert_eq!(c.new_in(1), new);
        assert_eq!(c.order(1).await, order);
        assert_eq!(c.runs(), 5);

        let products = manager.cache("products").unwrap();
        assert_eq!(
            products.get::<u64>(&("put", 1u64)).await.unwrap(),
            Some(saved)
        );
        products.delete_by_tag("catalog").await.unwrap();

        // tagged `catalog` (by `cacheable` and by `cache_put`): gone
        assert_eq!(products.get::<u64>(&("put", 1u64)).await.unwrap(), None);
        assert_ne!(c.on_sale(1).await, sale);
        assert_eq!(c.runs(), 6);
        // untagged, other tag, other cache: kept
        assert_eq!(c.plain(1).await, plain);
        assert_eq!(c.new_in(1), new);
        assert_eq!(c.order(1).await, order);
        assert_eq!(c.runs(), 6);

        // the entry written again carries its tags again: deleting by its other tag works
        let sale = c.on_sale(1).await;
        products.delete_by_tag("sale").await.unwrap();
        assert_ne!(c.on_sale(1).await, sale);
        assert_eq!(c.runs(), 7);
    })
    .await;
}

#[tokio::test]
async fn tagged_views_write_with_tags_and_read_everything() {
    let manager = memory();
    let products = manager.cache("products").unwrap();
    let sale = products.tagged(["sale"]);
    let both = sale.tagged(["catalog"]);
    assert_eq!(both.tags().collect::<Vec<_>>(), ["sale", "catalog"]);

    sale.set(&1u64, &"chair".to_string()).await.unwrap();
    both.set(&2u64, &"desk".to_string()).await.unwrap();
    products.set(&3u64, &"lamp".to_string()).await.unwrap();
    let made: String = products
        .tagged(["catalog"])
        .get_or_set(&4u64, || async { "shelf".to_string() })
        .await
        .unwrap();
    assert_eq!(made, "shelf");
    let tried: Result<String, cachet::CacheError> = products
        .tagged(["catalog"])
        .try_get_or_set(&5u64, || async { Ok("rug".to_string()) })
        .await;
    assert_eq!(tried.unwrap(), "rug");
    // any handle reads what any other wrote
    assert_eq!(
        sale.get::<String>(&3u64).await.unwrap().as_deref(),
        Some("lamp")
    );

    let evictions = products.stats().evictions;
    products.delete_by_tag("catalog").await.unwrap();
    assert_eq!(products.stats().evictions - evictions, 3);
    for gone in [2u64, 4, 5] {
        assert!(products.missing(&gone).await.unwrap(), "{gone}");
    }
    for kept in [1u64, 3] {
        assert!(products.has(&kept).await.unwrap(), "{kept}");
    }
    products.delete_by_tags(&["sale", "unknown"]).await.unwrap();
    assert!(products.missing(&1u64).await.unwrap());
    assert!(products.has(&3u64).await.unwrap());
    // deleting a tag nobody used is fine
    products.delete_by_tag("never").await.unwrap();
    products.delete_by_tags::<&str>(&[]).await.unwrap();
}

#[tokio::test]
async fn tags_belong_to_one_cache_and_one_namespace() {
    let manager = memory();
    let products = manager.cache("products").unwrap();
    let users = manager.cache("users").unwrap();
    let eu = products.namespace("eu");
    let eu_sale = products.tagged(["sale"]).namespace("eu");
    assert_eq!(
        eu_sale.tags().collect::<Vec<_>>(),
        ["sale"],
        "namespaces keep the view's tags"
    );

    products.tagged(["sale"]).set(&1u64, &1u8).await.unwrap();
    users.tagged(["sale"]).set(&1u64, &2u8).await.unwrap();
    eu_sale.set(&1u64, &3u8).await.unwrap();

    products.delete_by_tag("sale").await.unwrap();
    assert!(products.missing(&1u64).await.unwrap());
    assert_eq!(users.get::<u8>(&1u64).await.unwrap(), Some(2));
    assert_eq!(eu.get::<u8>(&1u64).await.unwrap(), Some(3));

    eu.delete_by_tag("sale").await.unwrap();
    assert!(eu.missing(&1u64).await.unwrap());
    assert_eq!(users.get::<u8>(&1u64).await.unwrap(), Some(2));
}

#[tokio::test]
async fn the_none_store_accepts_tags_and_keeps_nothing() {
    let products = CacheManager::none().cache("products").unwrap();
    products.tagged(["sale"]).set(&1u64, &1u8).await.unwrap();
    products.delete_by_tag("sale").await.unwrap();
    assert!(products.missing(&1u64).await.unwrap());
}

#[cfg(feature = "redis")]
mod tiered {
    use std::sync::Arc;
    use std::time::Duration;

    use cache_backends::redis::RedisBus;
    use cachet::testing::{with_manager, FaultyTier, ManualClock, Operation};
    use cachet::{CacheManager, CacheOptions};

    use super::support::chaos::{chaos_store, ChaosStore};
    use super::support::redis_server::RedisServer;
    use super::support::{eventually, redis_cli};
    use super::Catalog;

    const MINUTE: Duration = Duration::from_secs(60);

    /// An instance of a service (`prefix`) on `clock`: L1 memory, L2 on `server` through a
    /// [`FaultyTier`] (which counts operations, here the `tti` renewals), a Redis bus.
    async fn instance(
        server: &RedisServer,
        prefix: &str,
        clock: &ManualClock,
    ) -> (CacheManager, Arc<FaultyTier>) {
        let (manager, l2, bus) = built(server, prefix, clock, true);
        if let Some(bus) = bus {
            eventually("the bus is subscribed", async || bus.is_subscribed()).await;
        }
        (manager, l2)
    }

    /// An instance as [`instance`] makes, without a bus: nothing tells it that another
    /// instance wrote a key, so its L1 copy may be older than the L2 entry.
    fn without_bus(
        server: &RedisServer,
        prefix: &str,
        clock: &ManualClock,
    ) -> (CacheManager, Arc<FaultyTier>) {
        let (manager, l2, _) = built(server, prefix, clock, false);
        (manager, l2)
    }

    fn built(
        server: &RedisServer,
        prefix: &str,
        clock: &ManualClock,
        bus: bool,
    ) -> (CacheManager, Arc<FaultyTier>, Option<Arc<RedisBus>>) {
        let ChaosStore { store, l2, bus } = chaos_store(server, prefix, bus);
        let manager = CacheManager::builder()
            .manual_clock(clock.clone())
            .prefix(prefix)
            .store("tiered", store)
            .validate_declarations(false)
            .build()
            .unwrap();
        (manager, l2, bus)
    }

    /// What `by` of the server's own time does to the keys of `prefix`, done at once (the
    /// instances' time is a manual clock, the server's is not): each key is `by` nearer its
    /// expiry, and those that reach it are gone.
    fn age(server: &RedisServer, prefix: &str, by: Duration) {
        let by = by.as_millis() as i64;
        let keys = redis_cli(
            server.port(),
            &["--scan", "--pattern", &format!("{prefix}:*")],
        );
        for key in keys.lines().filter(|k| !k.is_empty()) {
            match pttl(server, key) {
                left if left < 0 => {}
                left if left <= by => {
                    redis_cli(server.port(), &["DEL", key]);
                }
                left => {
                    redis_cli(server.port(), &["PEXPIRE", key, &(left - by).to_string()]);
                }
            }
        }
    }

    fn tiered(url: &str, prefix: &str) -> CacheManager {
        CacheManager::from_toml_str(&format!(
            r#"
            prefix = "{prefix}"
            ttl = "1h"
            [stores.tiered]
            l1 = {{ driver = "memory", max_entries = 1000 }}
            l2 = {{ driver = "redis", url = "{url}", operation_timeout = "250ms", connect_timeout = "250ms" }}
            bus = {{ driver = "redis", url = "{url}" }}
            l2_circuit_breaker = "300ms"
            "#
        ))
        .unwrap()
    }

    fn exists(server: &RedisServer, key: &str) -> bool {
        redis_cli(server.port(), &["EXISTS", key]) == "1"
    }

    fn pttl(server: &RedisServer, key: &str) -> i64 {
        redis_cli(server.port(), &["PTTL", key]).parse().unwrap()
    }

    /// A copy of an L2 value in L1 counts the copies of its key that the tag index still
    /// holds from an earlier tagged write on this instance: the L1 entry went (the bound,
    /// another instance's write) but the index keeps the key listed, so the copy that
    /// replaces it weighs what the tagged entry weighed.
    #[tokio::test]
    async fn a_copy_of_an_l2_value_counts_the_tag_index_copies_of_its_key() {
        use cache_backends::memory::{MemoryOptions, MemoryTier};
        use cache_backends::redis::{RedisOptions, RedisTier};
        use cachet::store::{L1KeyRef, LocalTier};
        use cachet::StoreBuilder;

        let server = RedisServer::start();
        let l1 = MemoryTier::new(MemoryOptions::max_size(1 << 20));
        let l2 = Arc::new(RedisTier::new(&RedisOptions::new(server.url())).unwrap());
        let manager = CacheManager::builder()
            .store("tiered", StoreBuilder::new().l1(l1.clone()).l2(l2))
            .build()
            .unwrap();
        let products = manager.cache("products").unwrap();
        let key = L1KeyRef::parse("cachet:products:7");
        let weight = || l1.get(&key).map(|e| (e.weight, e.held_weight()));
        products
            .tagged(["catalog"])
            .set(&7u64, &7u64)
            .await
            .unwrap();
        let (tagged, held) = weight().unwrap();
        assert!(
            tagged > held,
            "the tag index's copy counted: {tagged} > {held}"
        );
        l1.remove(&key);
        assert_eq!(products.get::<u64>(&7u64).await.unwrap(), Some(7));
        assert_eq!(weight(), Some((tagged, held)), "the copy read back from L2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delete_by_tag_reaches_l2_and_the_other_instances_l1() {
        let server = RedisServer::start();
        let (a, b) = (tiered(&server.url(), "app"), tiered(&server.url(), "app"));
        let (products_a, products_b) = (a.cache("products").unwrap(), b.cache("products").unwrap());
        let (eu_a, eu_b) = (products_a.namespace("eu"), products_b.namespace("eu"));

        // a writes: annotated and programmatic, tagged and not
        let c = Catalog::default();
        let annotated = with_manager(a.clone(), c.on_sale(1)).await;
        products_a
            .tagged(["catalog"])
            .set(&2u64, &2u64)
            .await
            .unwrap();
        products_a.tagged(["new"]).set(&3u64, &3u64).await.unwrap();
        products_a.set(&4u64, &4u64).await.unwrap();
        eu_a.tagged(["catalog"]).set(&5u64, &5u64).await.unwrap();
        a.cache("orders")
            .unwrap()
            .tagged(["catalog"])
            .set(&6u64, &6u64)
            .await
            .unwrap();
        assert_eq!(products_a.stats().errors, 0);
        // the index sets are in the cache's key space, with a TTL
        for set in ["app:products:=tag:catalog", "app:products:=tag:sale"] {
            let ttl = pttl(&server, set);
            assert!(
                ttl > 3_500_000 && ttl <= 3_600_000 + 21_600_000,
                "{set}: {ttl}"
            );
        }

        // b reads everything into its L1
        assert_eq!(products_b.get::<u64>(&1u64).await.unwrap(), Some(annotated));
        for id in 2..=4u64 {
            assert_eq!(products_b.get::<u64>(&id).await.unwrap(), Some(id));
        }
        assert_eq!(eu_b.get::<u64>(&5u64).await.unwrap(), Some(5));
        let l2_hits = products_b.stats().l2_hits;

        products_a.delete_by_tag("catalog").await.unwrap();

        // gone from L2 ...
        assert!(!exists(&server, "app:products:1"));
        assert!(!exists(&server, "app:products:2"));
        // ... and from b's L1, which only the bus could tell (its L1 entries are fresh)
        let delay = eventually("b drops the tagged entries", async || {
            products_b.get::<u64>(&1u64).await.unwrap().is_none()
                && products_b.get::<u64>(&2u64).await.unwrap().is_none()
        })
        .await;
        println!("bus propagation delay (delete_by_tag): {delay:?}");
        // other tag, untagged, another namespace, another cache: kept, in L2 and in b's L1
        assert!(exists(&server, "app:products:3") && exists(&server, "app:products:4"));
        assert!(exists(&server, "app:products#eu:5") && exists(&server, "app:orders:6"));
        assert_eq!(products_b.get::<u64>(&3u64).await.unwrap(), Some(3));
        assert_eq!(products_b.get::<u64>(&4u64).await.unwrap(), Some(4));
        assert_eq!(eu_b.get::<u64>(&5u64).await.unwrap(), Some(5));
        assert_eq!(products_b.stats().l2_hits, l2_hits, "b kept them in its L1");
        // the emptied index is gone; `sale` still lists the annotated entry (deleted:
        // deleting by `sale` now is a no-op that still works)
        assert!(!exists(&server, "app:products:=tag:catalog"));
        products_b.delete_by_tag("sale").await.unwrap();
        assert!(!exists(&server, "app:products:=tag:sale"));

        // b's delete_by_tag reaches a, and the namespace's tag is its own
        eu_b.delete_by_tag("catalog").await.unwrap();
        assert!(!exists(&server, "app:products#eu:5"));
        eventually("a drops the namespace's tagged entry", async || {
            eu_a.get::<u64>(&5u64).await.unwrap().is_none()
        })
        .await;
        assert!(exists(&server, "app:orders:6"));
        // `clear()` removes the index sets with the entries
        a.cache("orders").unwrap().clear().await.unwrap();
        assert!(!exists(&server, "app:orders:=tag:catalog"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_set_lives_as_long_as_its_longest_entry() {
        let server = RedisServer::start();
        let m = tiered(&server.url(), "ttl");
        let sale = m.cache("products").unwrap().tagged(["sale"]);
        sale.set_with(&1u64, &1u8, Duration::from_secs(10))
            .await
            .unwrap();
        let first = pttl(&server, "ttl:products:=tag:sale");
        assert!(first > 0, "{first}");
        sale.set_with(&2u64, &2u8, Duration::from_secs(1000))
            .await
            .unwrap();
        let raised = pttl(&server, "ttl:products:=tag:sale");
        assert!(raised > 900_000, "raised to the longer entry: {raised}");
        sale.set_with(&3u64, &3u8, Duration::from_secs(5))
            .await
            .unwrap();
        let kept = pttl(&server, "ttl:products:=tag:sale");
        assert!(kept > 900_000, "a shorter entry never lowers it: {kept}");
        sale.set_forever(&4u64, &4u8).await.unwrap();
        assert!(pttl(&server, "ttl:products:=tag:sale") > 86_400_000);
        assert_eq!(sale.stats().errors, 0);
    }

    /// Time to idle and tags (issue 15): an entry with `ttl = 1h, tti = 10m, grace = 30m` is
    /// written to L2 for the `tti` and renewed as it is read. Its tag memberships must last as
    /// long as the entry may (TTL and grace): written for the `tti` too (and never renewed), they expired after ten
    /// minutes while reads kept the entry, and `delete_by_tag` on another instance no longer
    /// found it: the stale entry was served until its TTL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tagged_entry_kept_alive_by_reads_stays_deletable_by_tag() {
        let server = RedisServer::start();
        let clock = ManualClock::new();
        let (a, a_l2) = instance(&server, "idle", &clock).await;
        let (b, _) = instance(&server, "idle", &clock).await;
        // Kept half an hour past its TTL (grace): the memberships last that too.
        let idle = CacheOptions::new()
            .ttl(60 * MINUTE)
            .tti(10 * MINUTE)
            .grace(30 * MINUTE);
        let products = a.cache("products").unwrap().with_options(idle);
        products.tagged(["sale"]).set(&1u64, &1u32).await.unwrap();
        // Read every minute for a quarter of an hour: L1 hits, each renewing the L2 copy
        // (once per tenth of the tti).
        for minute in 1..=15 {
            clock.advance(MINUTE);
            age(&server, "idle", MINUTE);
            assert_eq!(products.get::<u32>(&1u64).await.unwrap(), Some(1));
            eventually("the read renews the L2 copy", async || {
                a_l2.completed(Operation::Touch) == minute
            })
            .await;
        }
        assert!(exists(&server, "idle:products:1"), "kept by the reads");
        let set = pttl(&server, "idle:products:=tag:sale");
        // B never read the entry: only the L2 index tells it what carries the tag.
        b.cache("products")
            .unwrap()
            .delete_by_tag("sale")
            .await
            .unwrap();
        assert!(
            !exists(&server, "idle:products:1"),
            "delete_by_tag on another instance found the entry reads kept alive (tag set: {set} ms left)"
        );
        assert!(
            set > 74 * 60_000,
            "the tag set lasts the entry's hour and its half hour of grace: {set} ms left after 15 minutes"
        );
        eventually("A drops its L1 copy", async || {
            products.get::<u32>(&1u64).await.unwrap().is_none()
        })
        .await;
    }

    /// A `tti` renewal never keeps an L2 copy past its own lifetime (its envelope's
    /// expiry): with `ttl = 5m, tti = 10m`, reads renewed the copy for ten minutes from
    /// each read, so a copy read often outlived the entry it holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tti_renewal_never_outlives_the_entry() {
        let server = RedisServer::start();
        let clock = ManualClock::new();
        let (a, a_l2) = instance(&server, "cap", &clock).await;
        let (b, b_l2) = instance(&server, "cap", &clock).await;
        let idle = CacheOptions::new().ttl(5 * MINUTE).tti(10 * MINUTE);
        let (sessions_a, sessions_b) = (
            a.cache("sessions").unwrap().with_options(idle),
            b.cache("sessions").unwrap().with_options(idle),
        );
        sessions_a.set(&1u64, &1u32).await.unwrap();
        let left = || pttl(&server, "cap:sessions:1");
        assert!(
            left() <= 5 * 60_000,
            "written for its 5 minutes: {}",
            left()
        );
        // Two minutes on, B reads the L2 copy: renewed for the 3 minutes left, not the tti.
        clock.advance(2 * MINUTE);
        age(&server, "cap", 2 * MINUTE);
        assert_eq!(sessions_b.get::<u32>(&1u64).await.unwrap(), Some(1));
        eventually("B's read renews the L2 copy", async || {
            b_l2.completed(Operation::Touch) == 1
        })
        .await;
        assert!(
            left() <= 3 * 60_000 && left() > 2 * 60_000,
            "renewed by an L2 read for what is left of the entry: {} ms",
            left()
        );
        // A minute later, A's L1 hit renews it for the 2 minutes left.
        clock.advance(MINUTE);
        age(&server, "cap", MINUTE);
        assert_eq!(sessions_a.get::<u32>(&1u64).await.unwrap(), Some(1));
        eventually("A's hit renews the L2 copy", async || {
            a_l2.completed(Operation::Touch) == 1
        })
        .await;
        assert!(
            left() <= 2 * 60_000 && left() > 60_000,
            "renewed by an L1 hit for what is left of the entry: {} ms",
            left()
        );
    }

    /// A `tti` renewal only ever raises the L2 copy's expiry (review finding 3): it is
    /// computed from the copy its instance last saw, and must not cut short a newer entry
    /// another instance wrote meanwhile. With `ttl = 5m, tti = 10m` and no bus, A's L1
    /// copy has a minute left when B overwrites the key for 5 minutes; A's hit renews the
    /// L2 copy for that minute, which set the expiry and cut B's entry to a minute.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tti_renewal_never_shortens_a_newer_entry() {
        let server = RedisServer::start();
        let clock = ManualClock::new();
        let (a, a_l2) = without_bus(&server, "raise", &clock);
        let (b, _) = without_bus(&server, "raise", &clock);
        let idle = CacheOptions::new().ttl(5 * MINUTE).tti(10 * MINUTE);
        let (sessions_a, sessions_b) = (
            a.cache("sessions").unwrap().with_options(idle),
            b.cache("sessions").unwrap().with_options(idle),
        );
        sessions_a.set(&1u64, &1u32).await.unwrap();
        clock.advance(4 * MINUTE);
        age(&server, "raise", 4 * MINUTE);
        sessions_b.set(&1u64, &2u32).await.unwrap();
        let left = || pttl(&server, "raise:sessions:1");
        assert!(left() > 4 * 60_000, "B wrote for 5 minutes: {} ms", left());
        // No bus: A still holds its own copy, fresh for a minute; its hit is the one due
        // to renew the L2 copy, for what is left of A's copy.
        assert_eq!(sessions_a.get::<u32>(&1u64).await.unwrap(), Some(1));
        eventually("A's hit renews the L2 copy", async || {
            a_l2.completed(Operation::Touch) == 1
        })
        .await;
        assert!(
            left() > 4 * 60_000,
            "A's renewal from its older copy cut B's newer entry short: {} ms left",
            left()
        );
        assert_eq!(sessions_b.get::<u32>(&1u64).await.unwrap(), Some(2));
    }

    /// Tags work for a Redis user limited to its prefix's keys and channels.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tags_stay_under_the_prefix() {
        let server = RedisServer::start();
        redis_cli(
            server.port(),
            &[
                "ACL",
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
            ],
        );
        let url = format!("redis://shop:shop-pw@127.0.0.1:{}/0", server.port());
        let m = tiered(&url, "shop");
        let products = m.cache("products").unwrap();
        products.tagged(["sale"]).set(&1u64, &1u8).await.unwrap();
        assert!(exists(&server, "shop:products:1"));
        assert!(exists(&server, "shop:products:=tag:sale"));
        products.delete_by_tag("sale").await.unwrap();
        assert!(!exists(&server, "shop:products:1"));
        assert_eq!(products.stats().errors, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_l2_delete_by_tag_fails_but_cleans_the_local_tier() {
        let server = RedisServer::start();
        let m = tiered(&server.url(), "down");
        let products = m.cache("products").unwrap();
        products.tagged(["sale"]).set(&1u64, &1u8).await.unwrap();
        server.pause();
        let err = products.delete_by_tag("sale").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("tagged entries of cache `products`"),
            "{err}"
        );
        // the L1 copy is gone (and the unanswering L2 is skipped)
        assert_eq!(products.get::<u8>(&1u64).await.unwrap(), None);
        server.resume();
        // once the L2 answers again, the delete it missed is replayed: entry and set go
        eventually("the missed tag delete is replayed", async || {
            !exists(&server, "down:products:1") && !exists(&server, "down:products:=tag:sale")
        })
        .await;
        // and a retry by the caller works too
        eventually("the L2 is back and the retry works", async || {
            products.delete_by_tag("sale").await.is_ok()
        })
        .await;
    }
}
