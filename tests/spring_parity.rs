//! Spring parity, found by porting Spring's own cache annotation tests: `Option` unwrapped
//! as Spring unwraps `Optional` (spr14230), and stacked annotations acting as one group, as
//! Spring's `@Caching` does. Real stores: memory, and Redis as L2 of a tiered store.

#[allow(dead_code)] // the shared helpers; these tests use the Redis harness and `redis_cli`
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use cachet::testing::{
    with_manager, with_manager_sync, Fault, FaultRule, FaultyTier, Latch, Operation,
};
use cachet::{cache_evict, cache_put, cacheable, CacheManager};
use serde::{Deserialize, Serialize};
use support::redis_server::RedisServer;

fn memory() -> CacheManager {
    CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap()
}

fn tiered(server: &RedisServer, prefix: &str, nulls: bool) -> CacheManager {
    let url = server.url();
    CacheManager::from_toml_str(&format!(
        r#"
        prefix = "{prefix}"
        ttl = "1h"
        allow_null_values = {nulls}
        [stores.tiered]
        l1 = {{ driver = "memory", max_entries = 1000 }}
        l2 = {{ driver = "redis", url = "{url}" }}
        bus = {{ driver = "redis", url = "{url}" }}
        "#
    ))
    .unwrap()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Item {
    name: String,
    price: u32,
}

fn item(name: &str, price: u32) -> Item {
    Item {
        name: name.into(),
        price,
    }
}

// ----- Option unwrapping (Spring's spr14230) -----

/// Runs of `find` by name: tests run in parallel, each with its own names.
static FINDS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn runs(name: &str) -> usize {
    FINDS.lock().unwrap().iter().filter(|n| *n == name).count()
}

fn ran(name: &str) {
    FINDS.lock().unwrap().push(name.to_owned());
}

#[cache_put("items", key = item.name.clone())]
async fn insert(item: Item) -> Item {
    item
}

#[cacheable("items")]
async fn find(name: String) -> Option<Item> {
    ran(&name);
    (!name.starts_with("nobody")).then(|| item(&name, 1))
}

/// The same entries, read by a plain fn.
#[cacheable("items")]
fn find_blocking(name: String) -> Option<Item> {
    ran(&name);
    (!name.starts_with("nobody")).then(|| item(&name, 2))
}

#[tokio::test]
async fn a_put_item_is_found_by_an_option_returning_cacheable_and_read_as_a_plain_value() {
    with_manager(memory(), async {
        insert(item("pen", 3)).await;
        // Spring's repro: `find` returns the put item instead of running its body.
        assert_eq!(find("pen".into()).await, Some(item("pen", 3)));
        assert_eq!(runs("pen"), 0, "served from the put entry");
        // `Some(v)` is stored as `v`: a plain read of `Item` shares the entry.
        let items = cachet::cache("items").unwrap();
        assert_eq!(
            items.get::<Item>(&"cup").await.unwrap(),
            None,
            "nothing yet"
        );
        assert_eq!(find("cup".into()).await, Some(item("cup", 1)));
        assert_eq!(
            items.get::<Item>(&"cup").await.unwrap(),
            Some(item("cup", 1))
        );
        // The null marker: `None` is cached, and a plain read sees no value (no fault).
        assert_eq!(find("nobody-mem".into()).await, None);
        assert_eq!(find("nobody-mem".into()).await, None);
        assert_eq!(runs("nobody-mem"), 1, "`None` is cached");
        assert_eq!(items.get::<Item>(&"nobody-mem").await.unwrap(), None);
        assert!(items.has(&"nobody-mem").await.unwrap());
        assert_eq!(items.stats().errors, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_values_are_unwrapped_in_every_tier_and_instance() {
    let server = RedisServer::start();
    let a = tiered(&server, "opt", true);
    let b = tiered(&server, "opt", true);
    with_manager(a.clone(), async {
        assert_eq!(find("lamp".into()).await, Some(item("lamp", 1)));
        assert_eq!(find("nobody-tier".into()).await, None);
    })
    .await;
    // Instance b has an empty L1: it reads what a stored from Redis.
    with_manager(b.clone(), async {
        assert_eq!(find("lamp".into()).await, Some(item("lamp", 1)));
        assert_eq!(find("nobody-tier".into()).await, None);
    })
    .await;
    assert_eq!(
        (runs("lamp"), runs("nobody-tier")),
        (1, 1),
        "both from L2, the null marker too"
    );
    let items_b = b.cache("items").unwrap();
    assert!(items_b.stats().l2_hits >= 1);
    // A plain reader of `Item` in a third instance: the value, and no value for the marker.
    let c = tiered(&server, "opt", true);
    let items_c = c.cache("items").unwrap();
    assert_eq!(
        items_c.get::<Item>(&"lamp").await.unwrap(),
        Some(item("lamp", 1))
    );
    assert_eq!(items_c.get::<Item>(&"nobody-tier").await.unwrap(), None);
    // Read from L2 alone, a cached absence is had as in L1: an entry, of no value.
    assert!(items_c.has(&"nobody-tier").await.unwrap());
    assert!(!items_c.missing(&"nobody-tier").await.unwrap());
    assert_eq!(items_c.stats().errors, 0, "the null marker is not a fault");
    // A plain `set` of an `Item` is what the option-returning functions read.
    items_c.set(&"desk", &item("desk", 9)).await.unwrap();
    let d = tiered(&server, "opt", true);
    with_manager(d, async {
        assert_eq!(find("desk".into()).await, Some(item("desk", 9)));
    })
    .await;
    assert_eq!(runs("desk"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_null_values_none_is_not_stored_in_any_tier() {
    let server = RedisServer::start();
    let a = tiered(&server, "nonull", false);
    with_manager(a.clone(), async {
        assert_eq!(find("nobody-nonull".into()).await, None);
        assert_eq!(find("nobody-nonull".into()).await, None);
        assert_eq!(runs("nobody-nonull"), 2, "`None` is not cached");
    })
    .await;
    assert!(!a
        .cache("items")
        .unwrap()
        .has(&"nobody-nonull")
        .await
        .unwrap());
    let keys = support::redis_cli(server.port(), &["KEYS", "nonull:*"]);
    assert!(!keys.contains("nobody"), "{keys}");
}

/// Entries written as `Option<T>` before the change (here by a programmatic `set` of an
/// `Option<Item>`, which writes the old layout) read as the value they hold, from L1 and
/// L2; a plain reader of `Item` misses them, never fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_written_as_option_before_the_change_still_read_correctly() {
    let server = RedisServer::start();
    let old = tiered(&server, "legacy", true);
    let items = old.cache("items").unwrap();
    items.set(&"old", &Some(item("old", 5))).await.unwrap();
    items.set(&"gone", &None::<Item>).await.unwrap();
    // From L1 of the instance that wrote them.
    with_manager(old.clone(), async {
        assert_eq!(find("old".into()).await, Some(item("old", 5)));
        assert_eq!(find("gone".into()).await, None);
    })
    .await;
    // From L2, in a new instance.
    let new = tiered(&server, "legacy", true);
    with_manager(new.clone(), async {
        assert_eq!(find("old".into()).await, Some(item("old", 5)));
        assert_eq!(find("gone".into()).await, None);
    })
    .await;
    let plain_fn = tokio::task::block_in_place(|| {
        with_manager_sync(new.clone(), || find_blocking("old".into()))
    });
    assert_eq!(plain_fn, Some(item("old", 5)));
    assert_eq!(
        (runs("old"), runs("gone")),
        (0, 0),
        "decoded, not recomputed"
    );
    // A plain reader: a miss, not an error surfaced to the caller.
    let plain = tiered(&server, "legacy", true);
    assert_eq!(
        plain
            .cache("items")
            .unwrap()
            .get::<Item>(&"old")
            .await
            .unwrap(),
        None
    );
}

// ----- Stacked annotations: one group -----

static GROUP_RUNS: AtomicU64 = AtomicU64::new(0);

/// A hit must not skip the eviction (written first or last).
#[cacheable("group-a")]
#[cache_evict("group-b", key = id)]
async fn read_and_evict(id: u64) -> u64 {
    GROUP_RUNS.fetch_add(1, SeqCst);
    id * 10
}

/// A put in the group makes the function run even when the cacheable would hit.
#[cacheable("group-c")]
#[cache_put("group-d", key = id)]
async fn read_and_put(id: u64) -> u64 {
    GROUP_RUNS.fetch_add(1, SeqCst) + 1000 * id
}

#[cache_evict("group-e", all_entries, before_invocation)]
#[cacheable("group-e")]
async fn reload(id: u64) -> u64 {
    GROUP_RUNS.fetch_add(1, SeqCst);
    id
}

#[tokio::test]
async fn stacked_evictions_run_on_every_call_hit_or_not() {
    with_manager(memory(), async {
        let b = cachet::cache("group-b").unwrap();
        let runs = GROUP_RUNS.load(SeqCst);
        assert_eq!(read_and_evict(1).await, 10);
        b.set(&1u64, &"x".to_string()).await.unwrap();
        // A hit of `group-a`: the body does not run, the eviction does.
        assert_eq!(read_and_evict(1).await, 10);
        assert_eq!(GROUP_RUNS.load(SeqCst), runs + 1);
        assert_eq!(b.get::<String>(&1u64).await.unwrap(), None);
        // A before-invocation eviction of the cacheable's own cache: every call misses.
        let runs = GROUP_RUNS.load(SeqCst);
        reload(7).await;
        reload(7).await;
        assert_eq!(GROUP_RUNS.load(SeqCst), runs + 2);
    })
    .await;
}

#[tokio::test]
async fn a_stacked_put_makes_the_function_run_on_every_call() {
    with_manager(memory(), async {
        let first = read_and_put(2).await;
        let second = read_and_put(2).await;
        assert_ne!(first, second, "the function ran twice");
        let d = cachet::cache("group-d").unwrap();
        let c = cachet::cache("group-c").unwrap();
        assert_eq!(d.get::<u64>(&2u64).await.unwrap(), Some(second));
        assert_eq!(
            c.get::<u64>(&2u64).await.unwrap(),
            Some(second),
            "the cacheable stores the value the function returned"
        );
    })
    .await;
}

// ----- What Spring users reach for -----

/// Spring's `KeyGenerator`: called with a reference to each key argument.
fn tenant_key(tenant: &str, id: &u64) -> String {
    format!("{tenant}/{id}")
}

static GENERATED: AtomicU64 = AtomicU64::new(0);

#[cacheable("generated", key_generator = tenant_key)]
async fn by_tenant(tenant: &str, id: u64) -> u64 {
    GENERATED.fetch_add(1, SeqCst);
    id
}

#[cache_evict("generated", key_generator = crate::tenant_key, skip(reason))]
async fn forget(tenant: &str, id: u64, reason: String) {
    let _ = (tenant, id, reason);
}

#[tokio::test]
async fn a_key_generator_computes_the_key_from_the_arguments() {
    with_manager(memory(), async {
        let runs = GENERATED.load(SeqCst);
        by_tenant("acme", 1).await;
        by_tenant("acme", 1).await;
        assert_eq!(GENERATED.load(SeqCst), runs + 1);
        let cache = cachet::cache("generated").unwrap();
        assert_eq!(cache.get::<u64>("acme/1").await.unwrap(), Some(1));
        forget("acme", 1, "test".into()).await;
        assert_eq!(cache.get::<u64>("acme/1").await.unwrap(), None);
    })
    .await;
}

static AUDIT: std::sync::LazyLock<CacheManager> = std::sync::LazyLock::new(|| {
    CacheManager::builder()
        .memory_store("audit")
        .build()
        .unwrap()
});

static AUDITED: AtomicU64 = AtomicU64::new(0);

#[cacheable("audit-log", manager = AUDIT)]
async fn audited(id: u64) -> u64 {
    AUDITED.fetch_add(1, SeqCst);
    id
}

#[cache_evict("audit-log", manager = crate::AUDIT, key = id)]
async fn unaudit(id: u64) {
    let _ = id;
}

#[tokio::test]
async fn an_annotation_uses_its_own_manager() {
    // The scoped manager does not hold the entry: the annotation's own does.
    let scoped = memory();
    with_manager(scoped.clone(), async {
        let runs = AUDITED.load(SeqCst);
        audited(4).await;
        audited(4).await;
        assert_eq!(AUDITED.load(SeqCst), runs + 1);
    })
    .await;
    let own = AUDIT.cache("audit-log").unwrap();
    assert_eq!(own.get::<u64>(&4u64).await.unwrap(), Some(4));
    assert_eq!(
        scoped.cache("audit-log").unwrap().stats().puts,
        0,
        "nothing went to the scoped manager"
    );
    with_manager(scoped, unaudit(4)).await;
    assert_eq!(own.get::<u64>(&4u64).await.unwrap(), None);
}

/// A `static` whose manager a switch chooses: a `manager = path` that hands over another
/// manager once the annotation ran (as a test re-installing its manager would).
struct Switched {
    first: std::sync::LazyLock<CacheManager>,
    second: std::sync::LazyLock<CacheManager>,
    second_on: std::sync::atomic::AtomicBool,
}

impl std::ops::Deref for Switched {
    type Target = CacheManager;
    fn deref(&self) -> &CacheManager {
        if self.second_on.load(SeqCst) {
            &self.second
        } else {
            &self.first
        }
    }
}

static SWITCHED: Switched = Switched {
    first: std::sync::LazyLock::new(memory),
    second: std::sync::LazyLock::new(memory),
    second_on: std::sync::atomic::AtomicBool::new(false),
};

static SWITCHED_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("switched-log", manager = SWITCHED)]
fn switched(id: u64) -> u64 {
    SWITCHED_RUNS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_path_handing_over_another_manager_is_served_by_that_managers_caches() {
    // The first manager's caches are recorded on the first call, and hit on the second.
    assert_eq!((switched(1), switched(1)), (1, 1));
    assert_eq!(SWITCHED_RUNS.load(SeqCst), 1);
    // The path now hands over the second manager: the record of the first is not used.
    SWITCHED.second_on.store(true, SeqCst);
    assert_eq!(switched(1), 1);
    assert_eq!(
        SWITCHED_RUNS.load(SeqCst),
        2,
        "the second manager held nothing"
    );
    assert_eq!(switched(1), 1);
    assert_eq!(SWITCHED_RUNS.load(SeqCst), 2, "then it holds the value");
    let second = SWITCHED.second.cache("switched-log").unwrap().stats();
    assert_eq!((second.puts, second.hits), (1, 1));
    // And back: the first manager still holds its value.
    SWITCHED.second_on.store(false, SeqCst);
    assert_eq!(switched(1), 1);
    assert_eq!(SWITCHED_RUNS.load(SeqCst), 2);
    assert_eq!(
        SWITCHED.first.cache("switched-log").unwrap().stats().hits,
        2
    );
}

/// Spring's `@Cacheable` on a class: every method that can be cached is.
#[derive(Default)]
struct Repo {
    loads: AtomicU64,
    saved: Vec<u64>,
}

#[cacheable("repo")]
impl Repo {
    /// Left as written: no receiver.
    fn new() -> Self {
        Repo::default()
    }

    async fn find(&self, id: u64) -> Option<u64> {
        self.loads.fetch_add(1, SeqCst);
        (id > 0).then_some(id * 2)
    }

    /// Keyed as `find` is: methods sharing the block's cache agree on its key and value types
    /// (building a manager checks it, as for any functions sharing a cache).
    fn count(&self, shard: u64) -> u64 {
        self.loads.fetch_add(1, SeqCst) + shard
    }

    /// Left as written: `&mut self`.
    fn save(&mut self, id: u64) -> usize {
        self.saved.push(id);
        self.saved.len()
    }

    /// Left as written: returns nothing.
    fn touch(&self) {
        self.loads.fetch_add(100, SeqCst);
    }

    /// Its own annotation wins.
    #[cache_put("repo-names", key = id)]
    fn name(&self, id: u64) -> String {
        format!("n{id}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacheable_on_an_impl_block_caches_its_methods() {
    with_manager(memory(), async {
        let mut repo = Repo::new();
        assert_eq!(repo.find(3).await, Some(6));
        assert_eq!(repo.find(3).await, Some(6));
        assert_eq!(repo.loads.load(SeqCst), 1);
        let count = tokio::task::block_in_place(|| (repo.count(1), repo.count(1)));
        assert_eq!(count.0, count.1, "cached");
        assert_eq!(repo.save(1), 1);
        assert_eq!(repo.save(1), 2, "not cached");
        let before = repo.loads.load(SeqCst);
        repo.touch();
        assert_eq!(repo.loads.load(SeqCst), before + 100);
        tokio::task::block_in_place(|| repo.name(7));
        let names = cachet::cache("repo-names").unwrap();
        assert_eq!(
            names.get::<String>(&7u64).await.unwrap().as_deref(),
            Some("n7")
        );
    })
    .await;
}

static DELETES: AtomicU64 = AtomicU64::new(0);

/// Spring's `condition = "#result"` on an eviction after the call.
#[cache_evict("conditional", key = id, condition = *result)]
async fn delete_if_found(id: u64) -> bool {
    DELETES.fetch_add(1, SeqCst);
    id.is_multiple_of(2)
}

/// Over `Ok`'s value: an `Err` never evicts, and `Ok(0)` does not either.
#[cache_evict("conditional", all_entries, condition = *result > 0)]
async fn reset(n: u32) -> Result<u32, String> {
    if n == 99 {
        return Err("no".into());
    }
    Ok(n)
}

#[tokio::test]
async fn an_eviction_after_the_call_can_be_conditional_on_the_result() {
    with_manager(memory(), async {
        let cache = cachet::cache("conditional").unwrap();
        for id in [1u64, 2] {
            cache.set(&id, &"v".to_string()).await.unwrap();
        }
        assert!(!delete_if_found(1).await);
        assert!(delete_if_found(2).await);
        assert!(cache.has(&1u64).await.unwrap(), "condition false: kept");
        assert!(!cache.has(&2u64).await.unwrap(), "condition true: evicted");
        assert!(reset(99).await.is_err());
        assert_eq!(reset(0).await, Ok(0));
        assert!(cache.has(&1u64).await.unwrap());
        assert_eq!(reset(1).await, Ok(1));
        assert!(!cache.has(&1u64).await.unwrap());
    })
    .await;
}

static PER_TENANT: AtomicU64 = AtomicU64::new(0);

/// A cache name computed from the arguments (Spring's `CacheResolver`).
#[cacheable(cache_name = format!("tenant-{tenant}"), skip(tenant))]
async fn setting(tenant: &str, key: String) -> String {
    PER_TENANT.fetch_add(1, SeqCst);
    format!("{tenant}:{key}")
}

#[cache_evict(cache_name = tenant, all_entries)]
async fn reset_tenant(tenant: &'static str) {
    let _ = tenant;
}

#[tokio::test]
async fn a_cache_name_computed_from_the_arguments() {
    with_manager(memory(), async {
        let runs = PER_TENANT.load(SeqCst);
        assert_eq!(setting("a", "x".into()).await, "a:x");
        assert_eq!(setting("a", "x".into()).await, "a:x");
        assert_eq!(setting("b", "x".into()).await, "b:x", "another cache");
        assert_eq!(PER_TENANT.load(SeqCst), runs + 2);
        let a = cachet::cache("tenant-a").unwrap();
        assert_eq!(a.get::<String>("x").await.unwrap().as_deref(), Some("a:x"));
        reset_tenant("tenant-a").await;
        assert_eq!(a.get::<String>("x").await.unwrap(), None);
        assert!(cachet::cache("tenant-b").unwrap().has("x").await.unwrap());
    })
    .await;
}

// ----- The error handler (Spring's `CacheErrorHandler`) -----

#[derive(Debug, PartialEq)]
#[allow(dead_code)] // the message, shown by `Debug` when an assertion fails
enum AppError {
    Cache(String),
}

impl From<cachet::CacheError> for AppError {
    fn from(err: cachet::CacheError) -> Self {
        AppError::Cache(err.to_string())
    }
}

/// Runs of the priced functions, by id: each test uses its own ids.
fn priced(id: u64) -> usize {
    runs(&format!("price {id}"))
}

#[cacheable("prices")]
async fn price(id: u64) -> Result<u64, AppError> {
    ran(&format!("price {id}"));
    Ok(id * 100)
}

/// A plain value cannot say "failed": its faults are logged, as by default.
#[cacheable("prices")]
async fn price_plain(id: u64) -> u64 {
    ran(&format!("price {id}"));
    id * 100
}

/// An error that does not convert from `CacheError` cannot hold the fault either.
#[cacheable("prices")]
async fn price_text(id: u64) -> Result<u64, String> {
    ran(&format!("price {id}"));
    Ok(id * 100)
}

/// Attached: its future runs in its caller, never in the background.
#[cacheable("prices", detach = false)]
async fn price_attached(id: u64) -> Result<u64, AppError> {
    ran(&format!("price {id}"));
    Ok(id * 100)
}

#[cacheable("prices")]
fn price_sync(id: u64) -> Result<u64, AppError> {
    ran(&format!("price {id}"));
    Ok(id * 100)
}

#[cache_put("prices", key = id)]
async fn reprice(id: u64) -> Result<u64, AppError> {
    ran(&format!("price {id}"));
    Ok(id * 100)
}

#[cache_evict("prices", key = id)]
async fn unprice(id: u64) -> Result<(), AppError> {
    ran(&format!("price {id}"));
    Ok(())
}

#[cache_evict("prices", all_entries, before_invocation)]
fn unprice_all(id: u64) -> Result<(), AppError> {
    ran(&format!("price {id}"));
    Ok(())
}

/// A plain fn method: not detachable (its body borrows `self`), it runs in its caller.
struct PriceList;

impl PriceList {
    #[cacheable("prices")]
    fn price_of(&self, id: u64) -> Result<u64, AppError> {
        ran(&format!("price {id}"));
        Ok(id * 100)
    }
}

mod typed_prices {
    cachet::caches! {
        /// The prices, typed.
        pub PRICES: u64 => u64 = "prices";
    }
}

#[cacheable(typed_prices::PRICES)]
async fn price_typed(id: u64) -> Result<u64, AppError> {
    ran(&format!("price {id}"));
    Ok(id * 100)
}

/// `Option<T>` cannot say "failed" either: its body runs.
#[cacheable("prices")]
async fn maybe_price(id: u64) -> Option<u64> {
    ran(&format!("price {id}"));
    Some(id * 100)
}

/// A put stacked with a cacheable: the function runs on every call, so nothing is read
/// and nothing fails it before its body; its write's fault fails it after.
#[cache_put("prices", key = id)]
#[cacheable("prices")]
async fn reprice_stacked(id: u64) -> Result<u64, AppError> {
    ran(&format!("price {id}"));
    Ok(id * 100)
}

/// A function whose body makes a cache call that fails, and handles it: the call is the
/// body's, the function's own cache work (on a memory store) did not fail.
#[cacheable("quotes")]
async fn quote(id: u64) -> Result<u64, AppError> {
    ran(&format!("price {id}"));
    let prices = cachet::cache("prices").unwrap();
    assert!(
        prices.get::<u64>(&id).await.is_err(),
        "the body's own read fails"
    );
    assert!(
        prices.set_many(&[(id, 1u64)]).await.is_err(),
        "and its batch write"
    );
    Ok(id)
}

fn down_l2(server: &RedisServer, handler: impl cachet::CacheErrorHandler) -> CacheManager {
    let url = server.url();
    let config = cachet::config::parse_toml(
        &format!(
            "[stores.shared]\nl2 = {{ driver = \"redis\", url = \"{url}\", operation_timeout = \"200ms\", connect_timeout = \"200ms\" }}\n"
        ),
        cachet::ConfigOrigin::String,
    )
    .unwrap();
    CacheManager::builder()
        .store_config("shared", config.stores["shared"].clone())
        .memory_store("memory")
        .default_store("shared")
        .cache_store("quotes", "memory")
        .error_handler(handler)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_handler_decides_per_fault_whether_the_call_fails() {
    use cachet::{CacheFault, FaultAction, FaultOperation};
    let server = RedisServer::start();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    // Reads fail the call; writes are only counted.
    let manager = down_l2(&server, move |fault: &CacheFault<'_>| {
        log.lock().unwrap().push((
            fault.operation,
            fault.cache.to_owned(),
            fault.error.to_owned(),
        ));
        match fault.operation {
            FaultOperation::Get => FaultAction::Fail,
            _ => FaultAction::Count,
        }
    });
    server.kill();
    let prices = manager.cache("prices").unwrap();
    let err = prices.get::<u64>(&1u64).await.unwrap_err();
    assert!(matches!(err, cachet::CacheError::Tier { .. }), "{err}");
    // A write fault is only counted: the call succeeds.
    prices.set(&1u64, &5u64).await.unwrap();
    with_manager(manager.clone(), async {
        // The read fault fails the annotated call too, before its body runs.
        let failed = price(3).await;
        assert!(
            matches!(&failed, Err(AppError::Cache(m)) if m.contains("Get")),
            "{failed:?}"
        );
        assert_eq!(priced(3), 0, "the body did not run");
    })
    .await;
    let seen = seen.lock().unwrap();
    // Each fault says what happened to the call, in words (an L2 that cannot be reached).
    let said = |operation: FaultOperation| {
        seen.iter().any(|(op, cache, error)| {
            *op == operation && cache == "prices" && error.contains("L2 is unreachable")
        })
    };
    assert!(said(FaultOperation::Get), "{seen:?}");
    assert!(said(FaultOperation::Put), "{seen:?}");
    // Two reads and a write (the annotated call stopped before its body: nothing to store).
    assert!(prices.stats().errors >= 3);
}

/// Spring's `CacheErrorHandler` rethrowing a get error fails the call before the method
/// runs: under `Fail`, a `#[cacheable]` whose lookup read failed returns the error and its
/// body never runs (it ran, and then the call failed), detachable, attached or plain; nor
/// does `try_get_or_set`'s factory. A return type that cannot carry the error runs its
/// body, as before (the fault is logged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_fails_the_call_before_its_body_runs() {
    use cachet::{CacheFault, FaultAction};
    let server = RedisServer::start();
    let manager = down_l2(&server, |_: &CacheFault<'_>| FaultAction::Fail);
    server.kill();
    with_manager(manager.clone(), async {
        let r = price(21).await;
        assert!(is_fault(&r), "{r:?}");
        assert_eq!(priced(21), 0, "a detachable async body");
        let r = price_attached(22).await;
        assert!(is_fault(&r), "{r:?}");
        assert_eq!(priced(22), 0, "an attached async body");
        let r = tokio::task::block_in_place(|| price_sync(23));
        assert!(is_fault(&r), "{r:?}");
        assert_eq!(priced(23), 0, "a plain fn's body");
        assert_eq!(price_plain(24).await, 2400);
        assert_eq!(
            priced(24),
            1,
            "a plain value cannot say failed: the body runs"
        );
        let r = tokio::task::block_in_place(|| PriceList.price_of(26));
        assert!(is_fault(&r), "{r:?}");
        assert_eq!(priced(26), 0, "a plain fn method's body");
        let r = price_typed(27).await;
        assert!(is_fault(&r), "{r:?}");
        assert_eq!(priced(27), 0, "a typed cache's function");
        assert_eq!(maybe_price(28).await, Some(2800));
        assert_eq!(priced(28), 1, "an Option cannot say failed: the body runs");
        let r = reprice_stacked(29).await;
        assert!(is_fault(&r), "its write failed: {r:?}");
        assert_eq!(priced(29), 1, "a stacked put reads nothing: the body ran");
    })
    .await;
    let prices = manager.cache("prices").unwrap();
    let factories = AtomicU64::new(0);
    let r = prices
        .try_get_or_set(&25u64, || async {
            factories.fetch_add(1, SeqCst);
            Ok::<u64, cachet::CacheError>(2500)
        })
        .await;
    assert!(matches!(r, Err(cachet::CacheError::Tier { .. })), "{r:?}");
    assert_eq!(factories.load(SeqCst), 0, "the factory did not run");
    // Nor do the batch loads' factories.
    let r = prices
        .get_or_set_many(&[25u64, 26], |missing: Vec<u64>| {
            factories.fetch_add(1, SeqCst);
            async move { missing.into_iter().map(|id| (id, id * 100)).collect() }
        })
        .await;
    assert!(matches!(r, Err(cachet::CacheError::Tier { .. })), "{r:?}");
    let r: Result<HashMap<u64, u64>, AppError> = prices
        .try_get_or_set_many(&[25u64, 26], |missing: Vec<u64>| {
            factories.fetch_add(1, SeqCst);
            async move { Ok(missing.into_iter().map(|id| (id, id * 100)).collect()) }
        })
        .await;
    assert!(is_fault(&r), "{r:?}");
    assert_eq!(factories.load(SeqCst), 0, "no batch factory ran");
}

/// Bad bytes under a key (another type, a format from another release, garbage) are not a
/// tier that failed: under `Fail` the function still runs and overwrites them, and only
/// that call fails. Failing first would keep them, and fail every call, until they expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_fail_bad_bytes_are_overwritten_by_the_function_then_the_call_fails() {
    use cachet::{CacheFault, FaultAction};
    let server = RedisServer::start();
    let manager = down_l2(&server, |_: &CacheFault<'_>| FaultAction::Fail);
    let prices = manager.cache("prices").unwrap();
    prices
        .set(&31u64, &String::from("not a price"))
        .await
        .unwrap();
    with_manager(manager.clone(), async {
        let r = price(31).await;
        assert!(
            is_fault(&r),
            "the call that read the bad bytes fails: {r:?}"
        );
        assert_eq!(priced(31), 1, "after its function ran");
        assert_eq!(price(31).await, Ok(3100), "the bytes were overwritten");
        assert_eq!(priced(31), 1);
    })
    .await;
    // A batch load too: its factory runs and overwrites them, then the call fails.
    prices
        .set(&32u64, &String::from("not a price"))
        .await
        .unwrap();
    let factories = AtomicU64::new(0);
    let load = || {
        prices.try_get_or_set_many(&[32u64], |missing: Vec<u64>| {
            factories.fetch_add(1, SeqCst);
            async move { Ok::<_, AppError>(missing.into_iter().map(|id| (id, id * 100)).collect()) }
        })
    };
    let r: Result<HashMap<u64, u64>, AppError> = load().await;
    assert!(
        is_fault(&r),
        "the batch that read the bad bytes fails: {r:?}"
    );
    assert_eq!(factories.load(SeqCst), 1, "after its factory ran");
    assert_eq!(
        load().await.unwrap()[&32],
        3200,
        "the bytes were overwritten"
    );
    assert_eq!(factories.load(SeqCst), 1);
}

/// With a distributed lock, the lock's own look for the value (once taken) can fail a
/// read the call's first look did not: the call fails before its body all the same, and
/// lets the lock go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_fail_a_read_failed_once_the_lock_is_taken_fails_the_call_before_its_body() {
    use cache_backends::redis::{RedisOptions, RedisTier};
    use cachet::memory::{MemoryOptions, MemoryTier};
    use cachet::{CacheFault, FaultAction, StoreBuilder};
    let server = RedisServer::start();
    let redis = RedisTier::new(&RedisOptions::new(server.url())).unwrap();
    let l2 = FaultyTier::new(Arc::new(redis));
    let store = StoreBuilder::new()
        .l1(MemoryTier::new(MemoryOptions::max_entries(100)))
        .l2(l2.clone())
        .distributed_lock(std::time::Duration::from_secs(5));
    let manager = CacheManager::builder()
        .store("locked", store)
        .default_store("locked")
        .error_handler(|_: &CacheFault<'_>| FaultAction::Fail)
        .build()
        .unwrap();
    // The call's first read passes (nothing there); the next, the lock's, fails (refused:
    // the breaker stays closed, so the lock's release is not skipped as an L2 outage's is).
    l2.inject(FaultRule::on(Operation::Get, Fault::Delay(std::time::Duration::ZERO)).times(1));
    l2.inject(FaultRule::on(Operation::Get, Fault::Refuse));
    with_manager(manager, async {
        let r = price(35).await;
        assert!(is_fault(&r), "{r:?}");
        assert_eq!(priced(35), 0, "the body did not run");
    })
    .await;
    assert_eq!(l2.injected(), 2, "the read that failed was the lock's");
    // Taken, then let go (not left to expire after its 5 s): two lock operations.
    support::eventually("the lock is released", async || {
        l2.completed(Operation::Lock) >= 2
    })
    .await;
}

// ----- Under `Fail`, the callers waiting at an annotated function's gate -----

/// A store on `server` whose L2 refuses every read (the breaker stays closed), under a
/// `Fail` handler: the first read parks at the latch until the test releases it, so the
/// callers that come meanwhile wait at the single-flight gate. The inner tier is given
/// back to count the reads that reach it (each one refused: `injected`).
fn refusing_reads(server: &RedisServer) -> (CacheManager, Arc<FaultyTier>, Latch) {
    use cache_backends::redis::{RedisOptions, RedisTier};
    use cachet::memory::{MemoryOptions, MemoryTier};
    use cachet::{CacheFault, FaultAction, StoreBuilder};
    let redis = RedisTier::new(&RedisOptions::new(server.url())).unwrap();
    let reads = FaultyTier::new(Arc::new(redis));
    reads.inject(FaultRule::on(Operation::Get, Fault::Refuse));
    let held = Latch::new();
    let l2 = FaultyTier::new(reads.clone());
    l2.inject(FaultRule::on(Operation::Get, Fault::HoldRequest(held.clone())).times(1));
    let store = StoreBuilder::new()
        .l1(MemoryTier::new(MemoryOptions::max_entries(100)))
        .l2(l2);
    let manager = CacheManager::builder()
        .store("refusing", store)
        .default_store("refusing")
        .error_handler(|_: &CacheFault<'_>| FaultAction::Fail)
        .build()
        .unwrap();
    (manager, reads, held)
}

/// A call of an annotated function, boxed so that calls of several functions make one
/// list.
type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, AppError>> + Send>>;

/// Runs `calls` at once on a current-thread runtime: each runs until it waits, the first in
/// its L2 read (parked at `held`), the others at the gate; then the read is let go. The
/// outcomes, in order.
async fn behind_a_held_read(held: &Latch, calls: Vec<Call>) -> Vec<Result<u64, AppError>> {
    let n = calls.len();
    let callers: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
    held.reached().await;
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        held.reached_count(),
        1,
        "only the first caller reads the L2"
    );
    held.release();
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.push(caller.await.unwrap());
    }
    outcomes
}

/// Under `Fail`, the callers of an annotated function (detachable, attached) that wait at
/// the gate of a call whose read failed take its failure: no body runs, and the L2 is read
/// once in all, not again by each waiter, one after another.
#[tokio::test(flavor = "current_thread")]
async fn annotated_callers_waiting_for_a_failed_read_take_its_failure_without_reading_again() {
    let server = RedisServer::start();
    for (id, attached) in [(41, false), (42, true)] {
        let (manager, reads, held) = refusing_reads(&server);
        let calls: Vec<Call> = (0..8)
            .map(|_| -> Call {
                if attached {
                    Box::pin(with_manager(manager.clone(), price_attached(id)))
                } else {
                    Box::pin(with_manager(manager.clone(), price(id)))
                }
            })
            .collect();
        for r in behind_a_held_read(&held, calls).await {
            assert!(is_fault(&r), "attached: {attached}: {r:?}");
        }
        assert_eq!(priced(id), 0, "no body ran (attached: {attached})");
        assert_eq!(
            reads.injected(),
            1,
            "the L2 was read once in all (attached: {attached})"
        );
    }
}

/// The waiters of such a call whose type cannot say "failed" (a plain `u64`) run as any
/// caller whose leader failed does: the first takes the gate, reads the L2 again (refused:
/// logged, not failed) and runs the function; the others take its value from the L1.
#[tokio::test(flavor = "current_thread")]
async fn plain_callers_waiting_for_a_failed_read_run_the_function_once_between_them() {
    let server = RedisServer::start();
    let (manager, reads, held) = refusing_reads(&server);
    let id = 43;
    let mut calls: Vec<Call> = vec![Box::pin(with_manager(manager.clone(), price(id)))];
    calls.extend((0..7).map(|_| -> Call {
        Box::pin(with_manager(manager.clone(), async move {
            Ok(price_plain(id).await)
        }))
    }));
    let outcomes = behind_a_held_read(&held, calls).await;
    assert!(is_fault(&outcomes[0]), "{:?}", outcomes[0]);
    for r in &outcomes[1..] {
        assert_eq!(r, &Ok(4300));
    }
    assert_eq!(priced(id), 1, "one waiter ran the function");
    assert_eq!(
        reads.injected(),
        2,
        "the first call's read and the read of the waiter that took the gate"
    );
}

/// Whether a call was failed by a cache fault.
fn is_fault<T>(r: &Result<T, AppError>) -> bool {
    matches!(r, Err(AppError::Cache(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fault_fails_each_annotated_call_whose_type_can_say_so() {
    use cachet::{CacheFault, FaultAction};
    let server = RedisServer::start();
    let manager = down_l2(&server, |_: &CacheFault<'_>| FaultAction::Fail);
    server.kill();
    with_manager(manager.clone(), async {
        // Each call whose error converts from `CacheError` failed: a failed lookup before
        // its body ran, any other fault after.
        let r = price(11).await;
        assert!(is_fault(&r), "{r:?}");
        assert_eq!(priced(11), 0);
        let r = reprice(12).await;
        assert!(is_fault(&r), "a put whose write failed: {r:?}");
        assert_eq!(priced(12), 1);
        let r = unprice(13).await;
        assert!(is_fault(&r), "an eviction whose delete failed: {r:?}");
        assert_eq!(priced(13), 1);
        let r = tokio::task::block_in_place(|| price_sync(14));
        assert!(is_fault(&r), "a plain fn: {r:?}");
        assert_eq!(priced(14), 0);
        let r = tokio::task::block_in_place(|| unprice_all(15));
        assert!(is_fault(&r), "a clear before the call: {r:?}");
        assert_eq!(priced(15), 0, "it failed before the body, as Spring's does");
        // Types that cannot hold a `CacheError` return their value (the fault is logged).
        assert_eq!(price_plain(16).await, 1600);
        assert_eq!(priced(16), 1);
        assert_eq!(price_text(17).await, Ok(1700));
        assert_eq!(priced(17), 1);
        // The body's own cache calls fail as they say; the function's own work did not.
        assert_eq!(quote(18).await, Ok(18));
        assert_eq!(priced(18), 1);
        // Cached in memory: no second run, no fault.
        assert_eq!(quote(18).await, Ok(18));
        assert_eq!(priced(18), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_and_when_counted_a_fault_never_fails_the_call() {
    use cachet::{CacheFault, FaultAction};
    let server = RedisServer::start();
    let manager = down_l2(&server, |_: &CacheFault<'_>| FaultAction::Count);
    server.kill();
    let prices = manager.cache("prices").unwrap();
    assert_eq!(prices.get::<u64>(&1u64).await.unwrap(), None);
    prices.set(&1u64, &5u64).await.unwrap();
    with_manager(manager.clone(), async {
        assert_eq!(price(4).await, Ok(400));
        assert_eq!(reprice(5).await, Ok(500));
        assert_eq!(unprice(6).await, Ok(()));
    })
    .await;
    assert!(prices.stats().errors >= 5);
}

// ----- A cached level holds its body's future once -----

/// A body whose future is large: 8 KiB held across an await.
async fn heavy(id: u64) -> Result<u64, AppError> {
    let buf = [id as u8; 8192];
    tokio::task::yield_now().await;
    Ok(u64::from(buf[id as usize % 8192]))
}

#[cacheable("heavy")]
async fn heavy_cached(id: u64) -> Result<u64, AppError> {
    heavy(id).await
}

#[cacheable("heavy-outer")]
async fn heavy_outer(id: u64) -> Result<u64, AppError> {
    heavy_cached(id).await
}

#[cacheable("heavy", detach = false)]
async fn heavy_attached(id: u64) -> Result<u64, AppError> {
    heavy(id).await
}

#[cache_evict("heavy", key = id)]
#[cache_put("heavy-outer", key = id)]
async fn heavy_stacked(id: u64) -> Result<u64, AppError> {
    heavy_attached(id).await
}

/// Nested cached calls hold each other's futures: a level that held its body several times
/// (rustc keeps a future moved into an `async fn` beside its awaited copy) multiplied the
/// size per level, and nested refreshes overflowed a debug thread's stack. Each level now
/// holds its body once (boxed on the miss path): the sizes grow by a body, not by a factor.
#[test]
fn a_cached_level_holds_its_body_once() {
    let body = std::mem::size_of_val(&heavy(1));
    let sizes = [
        ("detachable", std::mem::size_of_val(&heavy_cached(1))),
        ("nested", std::mem::size_of_val(&heavy_outer(1))),
        ("attached", std::mem::size_of_val(&heavy_attached(1))),
        (
            "stacked over attached",
            std::mem::size_of_val(&heavy_stacked(1)),
        ),
    ];
    for (form, size) in sizes {
        eprintln!("{form}: {size} B for a body of {body} B");
        // Before (6c54357): 85,272 B for one level, 855,672 B for two, 513,224 B for an
        // eviction and a put stacked over a level (an 8,232 B body).
        assert!(size < 3 * body, "{form}: {size} B for a body of {body} B");
    }
}
