//! The annotations' contract, scenario by scenario as Spring's own cache-annotation tests
//! check it (cacheable, evict by key / all / before / after a failure, condition, unless,
//! key expressions shared between put and cacheable, several caches, null values, errors not
//! cached), reworded for Rust: each test counts how often the real function body runs.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

#[path = "support/counting.rs"]
mod counting;

use cachet::testing::{with_manager, with_manager_sync};
use cachet::{cache_config, cache_evict, cache_put, cacheable, CacheManager};
use counting::{CountedKey, CountingL1};
use serde::{Deserialize, Serialize};

fn memory() -> CacheManager {
    CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    admin: bool,
}

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.into(),
        admin: false,
    }
}

/// A service whose every method counts the runs of its body.
#[derive(Default)]
struct Service {
    runs: AtomicU64,
}

#[derive(Debug, PartialEq)]
struct Failure;

impl Service {
    fn run(&self) -> u64 {
        self.runs.fetch_add(1, SeqCst) + 1
    }

    fn runs(&self) -> u64 {
        self.runs.load(SeqCst)
    }

    #[cacheable("default")]
    fn cached(&self, id: u64) -> u64 {
        self.run()
    }

    #[cacheable("default")]
    async fn cached_async(&self, id: u64) -> u64 {
        self.run()
    }

    // Keys of other types than the `u64` of the functions above: caches of their own.
    #[cacheable("unit_key")]
    fn no_args(&self) -> u64 {
        self.run()
    }

    #[cacheable("pairs")]
    fn two_args(&self, a: u64, b: String) -> u64 {
        self.run()
    }

    #[cache_evict("default", key = id)]
    fn evict(&self, id: u64) {
        self.run();
    }

    #[cache_evict("default", key = id)]
    fn evict_failing(&self, id: u64) -> Result<(), Failure> {
        self.run();
        Err(Failure)
    }

    #[cache_evict("default", key = id, before_invocation)]
    fn evict_early_failing(&self, id: u64) -> Result<(), Failure> {
        self.run();
        Err(Failure)
    }

    #[cache_evict("default", all_entries)]
    fn evict_all(&self) {
        self.run();
    }

    #[cacheable("default", condition = id.is_multiple_of(2))]
    fn conditional(&self, id: u64) -> u64 {
        self.run()
    }

    #[cacheable("default", unless = *result > 10)]
    fn unless(&self, id: u64) -> u64 {
        id
    }

    #[cacheable("default", key = id * 10)]
    fn key_expression(&self, id: u64, _ignored: &str) -> u64 {
        self.run()
    }

    #[cacheable("default", skip(_trace))]
    fn skipped(&self, id: u64, _trace: &std::cell::Cell<u8>) -> u64 {
        self.run()
    }

    #[cacheable("default")]
    fn maybe(&self, id: u64) -> Option<u64> {
        self.run();
        None
    }

    #[cacheable("default")]
    fn fallible(&self, id: u64) -> Result<u64, Failure> {
        if self.run() == 1 {
            Err(Failure)
        } else {
            Ok(id)
        }
    }

    #[cacheable("primary", "secondary")]
    fn multi(&self, id: u64) -> u64 {
        self.run()
    }

    #[cache_evict("primary", "secondary", key = id)]
    fn multi_evict(&self, id: u64) {}

    #[cache_put("users", key = user.id)]
    async fn save(&self, user: User) -> Result<User, Failure> {
        self.run();
        Ok(user)
    }

    #[cache_put("users", key = result.id)]
    async fn create(&self, name: &str) -> Result<User, Failure> {
        Ok(user(self.run() + 100, name))
    }

    #[cache_put("users", key = id, condition = id > 0)]
    fn put_if_positive(&self, id: u64) -> User {
        user(id, "put")
    }

    #[cacheable("users")]
    async fn find(&self, id: u64) -> Result<User, Failure> {
        self.run();
        Ok(user(id, "loaded"))
    }
}

fn sync_test(f: impl FnOnce(&Service)) {
    with_manager_sync(memory(), || f(&Service::default()));
}

#[test]
fn cacheable_runs_once_per_key() {
    sync_test(|s| {
        let first = s.cached(1);
        assert_eq!(s.cached(1), first);
        assert_eq!(s.cached(1), first);
        assert_eq!(s.runs(), 1);
        s.cached(2);
        assert_eq!(s.runs(), 2);
    });
}

#[tokio::test]
async fn cacheable_async_runs_once_per_key() {
    with_manager(memory(), async {
        let s = Service::default();
        let first = s.cached_async(1).await;
        assert_eq!(s.cached_async(1).await, first);
        assert_eq!(s.runs(), 1);
    })
    .await;
}

#[test]
fn no_arguments_use_the_unit_key_and_several_use_a_tuple() {
    sync_test(|s| {
        s.no_args();
        s.no_args();
        assert_eq!(s.runs(), 1);
        s.two_args(1, "a".into());
        s.two_args(1, "a".into());
        s.two_args(1, "b".into());
        assert_eq!(s.runs(), 3);
    });
}

#[test]
fn evict_by_key_after_the_call() {
    sync_test(|s| {
        let first = s.cached(1);
        s.cached(2);
        s.evict(1);
        assert_ne!(s.cached(1), first, "evicted: runs again");
        let runs = s.runs();
        s.cached(2);
        assert_eq!(s.runs(), runs, "other keys stay");
    });
}

#[test]
fn a_failing_call_does_not_evict_but_before_invocation_does() {
    sync_test(|s| {
        let first = s.cached(1);
        assert_eq!(s.evict_failing(1), Err(Failure));
        assert_eq!(s.cached(1), first, "the call failed: nothing evicted");
        assert_eq!(s.evict_early_failing(1), Err(Failure));
        assert_ne!(
            s.cached(1),
            first,
            "evicted before the call, even though it failed"
        );
    });
}

#[test]
fn evict_all_entries() {
    sync_test(|s| {
        let a = s.cached(1);
        let b = s.cached(2);
        s.evict_all();
        assert_ne!(s.cached(1), a);
        assert_ne!(s.cached(2), b);
    });
}

#[test]
fn condition_false_bypasses_the_cache() {
    sync_test(|s| {
        s.conditional(3);
        s.conditional(3);
        assert_eq!(s.runs(), 2, "odd: not cached");
        s.conditional(4);
        s.conditional(4);
        assert_eq!(s.runs(), 3, "even: cached");
    });
}

#[test]
fn unless_true_returns_but_does_not_store() {
    with_manager_sync(memory(), || {
        let s = Service::default();
        s.unless(5);
        s.unless(50);
        let cache = cachet::cache("default").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(cache.get::<u64>(&5u64)).unwrap(), Some(5));
        assert_eq!(rt.block_on(cache.get::<u64>(&50u64)).unwrap(), None);
    });
}

#[test]
fn key_expressions_and_skip() {
    sync_test(|s| {
        let a = s.key_expression(1, "x");
        assert_eq!(s.key_expression(1, "y"), a, "only `id * 10` is the key");
        let trace = std::cell::Cell::new(0);
        let b = s.skipped(7, &trace);
        assert_eq!(s.skipped(7, &std::cell::Cell::new(1)), b);
    });
}

#[test]
fn none_is_cached_when_null_values_are_allowed() {
    sync_test(|s| {
        assert_eq!(s.maybe(1), None);
        assert_eq!(s.maybe(1), None);
        assert_eq!(s.runs(), 1);
    });
}

#[test]
fn none_is_not_cached_when_null_values_are_refused() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .allow_null_values(false)
        .build()
        .unwrap();
    with_manager_sync(manager, || {
        let s = Service::default();
        s.maybe(1);
        s.maybe(1);
        assert_eq!(s.runs(), 2);
    });
}

#[test]
fn errors_are_returned_and_never_cached() {
    sync_test(|s| {
        assert_eq!(s.fallible(9), Err(Failure));
        assert_eq!(s.fallible(9), Ok(9));
        assert_eq!(s.fallible(9), Ok(9));
        assert_eq!(s.runs(), 2);
    });
}

#[test]
fn several_caches_look_up_in_order_and_store_into_all() {
    with_manager_sync(memory(), || {
        let s = Service::default();
        let v = s.multi(1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let primary = cachet::cache("primary").unwrap();
        let secondary = cachet::cache("secondary").unwrap();
        assert_eq!(rt.block_on(primary.get::<u64>(&1u64)).unwrap(), Some(v));
        assert_eq!(rt.block_on(secondary.get::<u64>(&1u64)).unwrap(), Some(v));
        rt.block_on(primary.delete(&1u64)).unwrap();
        assert_eq!(s.multi(1), v, "found in the second cache");
        assert_eq!(s.runs(), 1);
        s.multi_evict(1);
        assert_ne!(s.multi(1), v, "evicted from both");
    });
}

#[tokio::test]
async fn put_reaches_the_entries_of_cacheable() {
    with_manager(memory(), async {
        let s = Service::default();
        s.find(42).await.unwrap();
        s.save(user(42, "saved")).await.unwrap();
        assert_eq!(s.find(42).await.unwrap().name, "saved");
        assert_eq!(s.runs(), 2, "find ran once, save once");
    })
    .await;
}

#[tokio::test]
async fn put_key_from_the_result() {
    with_manager(memory(), async {
        let s = Service::default();
        let created = s.create("zoe").await.unwrap();
        assert_eq!(s.find(created.id).await.unwrap(), created);
        assert_eq!(s.runs(), 1, "find answered from the put");
    })
    .await;
}

#[test]
fn conditional_put() {
    with_manager_sync(memory(), || {
        let s = Service::default();
        s.put_if_positive(0);
        s.put_if_positive(5);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let users = cachet::cache("users").unwrap();
        assert_eq!(rt.block_on(users.get::<User>(&0u64)).unwrap(), None);
        assert_eq!(
            rt.block_on(users.get::<User>(&5u64)).unwrap(),
            Some(user(5, "put"))
        );
    });
}

#[tokio::test]
async fn one_key_whichever_way_it_was_written() {
    with_manager(memory(), async {
        let s = Service::default();
        let users = cachet::cache("users").unwrap();
        users.set(&7u64, &user(7, "programmatic")).await.unwrap();
        assert_eq!(s.find(7).await.unwrap().name, "programmatic");
        assert_eq!(s.runs(), 0);
        s.save(user(8, "annotated")).await.unwrap();
        assert_eq!(
            users.get::<User>(&8u64).await.unwrap().unwrap().name,
            "annotated"
        );
    })
    .await;
}

#[tokio::test]
async fn the_none_manager_always_runs_the_function() {
    with_manager(CacheManager::none(), async {
        let s = Service::default();
        s.cached_async(1).await;
        s.cached_async(1).await;
        assert_eq!(s.runs(), 2);
    })
    .await;
}

/// Spring's `@CacheConfig`: the methods of this impl default to cache "books".
struct Library {
    runs: AtomicU64,
}

#[cache_config(cache = "books")]
impl Library {
    #[cacheable]
    fn title(&self, isbn: u64) -> String {
        self.runs.fetch_add(1, SeqCst);
        format!("book {isbn}")
    }

    #[cache_evict(key = isbn)]
    fn withdraw(&self, isbn: u64) {}

    #[cacheable("other")]
    fn elsewhere(&self, isbn: u64) -> String {
        self.runs.fetch_add(1, SeqCst);
        format!("other {isbn}")
    }
}

#[test]
fn cache_config_gives_a_default_cache_name() {
    with_manager_sync(memory(), || {
        let lib = Library {
            runs: AtomicU64::new(0),
        };
        lib.title(1);
        lib.title(1);
        assert_eq!(lib.runs.load(SeqCst), 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let books = cachet::cache("books").unwrap();
        assert_eq!(
            rt.block_on(books.get::<String>(&1u64)).unwrap().as_deref(),
            Some("book 1")
        );
        lib.withdraw(1);
        assert_eq!(rt.block_on(books.get::<String>(&1u64)).unwrap(), None);
        lib.elsewhere(1);
        let other = cachet::cache("other").unwrap();
        assert!(
            rt.block_on(other.has(&1u64)).unwrap(),
            "an explicit name wins"
        );
    });
}

#[cacheable("generic", skip(runs))]
fn generic_len<T: Serialize + std::fmt::Debug>(value: T, runs: &AtomicU64) -> usize {
    runs.fetch_add(1, SeqCst);
    format!("{value:?}").len()
}

#[test]
fn generic_functions() {
    with_manager_sync(memory(), || {
        let runs = AtomicU64::new(0);
        assert_eq!(generic_len(vec![1, 2, 3], &runs), 9);
        assert_eq!(generic_len(vec![1, 2, 3], &runs), 9);
        assert_eq!(runs.load(SeqCst), 1);
        generic_len("abc", &runs);
        assert_eq!(runs.load(SeqCst), 2);
    });
}

#[cache_evict("primary", key = id)]
#[cache_put("secondary", key = id)]
fn refresh(id: u64) -> u64 {
    id + 1000
}

#[test]
fn stacked_annotations_all_apply() {
    with_manager_sync(memory(), || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let primary = cachet::cache("primary").unwrap();
        let secondary = cachet::cache("secondary").unwrap();
        rt.block_on(primary.set(&1u64, &1u64)).unwrap();
        assert_eq!(refresh(1), 1001);
        assert_eq!(rt.block_on(primary.get::<u64>(&1u64)).unwrap(), None);
        assert_eq!(
            rt.block_on(secondary.get::<u64>(&1u64)).unwrap(),
            Some(1001)
        );
    });
}

#[tokio::test]
async fn plain_functions_called_inside_with_manager_see_its_manager() {
    let manager = memory();
    with_manager(manager.clone(), async {
        let s = Service::default();
        s.cached(5);
        s.cached(5);
        assert_eq!(s.runs(), 1);
    })
    .await;
    assert_eq!(
        manager.cache("default").unwrap().stats().hits,
        1,
        "the calls used this manager"
    );
}

/// A key whose encoding always fails.
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("no key for this"))
    }
}

static UNENCODABLE_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("unencodable")]
fn unencodable_key(key: Unencodable) -> u64 {
    let _ = key;
    UNENCODABLE_RUNS.fetch_add(1, SeqCst) + 1
}

#[test]
fn a_key_that_cannot_be_encoded_runs_the_function_uncached() {
    with_manager_sync(memory(), || {
        assert_eq!(unencodable_key(Unencodable), 1);
        assert_eq!(
            unencodable_key(Unencodable),
            2,
            "not cached: the key failed"
        );
    });
}

/// An L1 that hands on, for a timed entry, an instant it judged the entry at
/// (`LocalTier::read_at`): here always just before the entry's `fresh_until`.
struct JudgedBeforeL1(std::sync::Arc<cachet::store::MapTier>);

impl cachet::store::LocalTier for JudgedBeforeL1 {
    fn get(&self, key: &cachet::store::L1KeyRef<'_>) -> Option<cachet::store::LocalEntry> {
        self.0.get(key)
    }
    fn read_at(
        &self,
        key: &cachet::store::L1KeyRef<'_>,
        read: &mut dyn FnMut(&cachet::store::LocalEntry, Option<std::time::Instant>),
    ) -> bool {
        self.0.read(key, &mut |entry| {
            let before = entry
                .fresh_until
                .map(|at| at - std::time::Duration::from_nanos(1));
            read(entry, entry.keep_until.and(before))
        })
    }
    fn insert(&self, key: cachet::store::L1Key, entry: cachet::store::LocalEntry) {
        self.0.insert(key, entry)
    }
    fn remove(&self, key: &cachet::store::L1KeyRef<'_>) {
        self.0.remove(key)
    }
    fn remove_scope(&self, scope: &cachet::store::Scope) {
        self.0.remove_scope(scope)
    }
    fn clear(&self) {
        self.0.clear()
    }
    fn entry_count(&self) -> u64 {
        self.0.entry_count()
    }
    fn driver(&self) -> &'static str {
        "judged-before"
    }
}

static JUDGED_RUNS: AtomicU64 = AtomicU64::new(0);

#[cacheable("judged", ttl = "1ms", grace = "1h")]
fn judged(id: u64) -> u64 {
    JUDGED_RUNS.fetch_add(1, SeqCst);
    id
}

/// A store on the system's clock judges a timed hit at the instant its L1 read the clock
/// at for the entry's `keep_until` (`LocalTier::read_at`), without reading it again: here
/// the entry is stale by the clock, fresh at the L1's instant, and the hit is fresh.
#[test]
fn a_timed_hit_is_judged_at_the_instant_its_l1_read_the_clock_at() {
    let l1 = std::sync::Arc::new(JudgedBeforeL1(cachet::store::MapTier::new()));
    let manager = CacheManager::builder()
        .store("judged", cachet::StoreBuilder::new().l1(l1))
        .build()
        .unwrap();
    with_manager_sync(manager, || {
        assert_eq!(judged(3), 3);
        // Past the 1 ms TTL by the clock (a deadline, no sleep), within the grace.
        let written = std::time::Instant::now();
        while written.elapsed() < std::time::Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        assert_eq!(judged(3), 3);
        assert_eq!(
            JUDGED_RUNS.load(SeqCst),
            1,
            "judged fresh at the L1's instant"
        );
    });
}

static KEY_ENCODINGS: AtomicU64 = AtomicU64::new(0);

/// (key encodings, L1 reads) when the body of [`cold`] last ran.
static COLD_SEEN: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

#[cacheable("cold", skip(l1))]
fn cold(key: CountedKey, l1: &CountingL1) -> u64 {
    let seen = (KEY_ENCODINGS.load(SeqCst), l1.reads());
    COLD_SEEN.lock().unwrap().push(seen);
    key.0
}

#[test]
fn a_cold_miss_encodes_its_key_once_and_reads_l1_once_before_running() {
    let l1 = CountingL1::new();
    let manager = CacheManager::builder()
        .store("counted", cachet::StoreBuilder::new().l1(l1.clone()))
        .build()
        .unwrap();
    with_manager_sync(manager, || {
        assert_eq!(cold(CountedKey(7, &KEY_ENCODINGS), &l1), 7);
        assert_eq!(
            *COLD_SEEN.lock().unwrap(),
            [(1, 1)],
            "one encoding, one L1 read"
        );
        // The hit: one more encoding and one more read, and the body does not run.
        assert_eq!(cold(CountedKey(7, &KEY_ENCODINGS), &l1), 7);
        assert_eq!(KEY_ENCODINGS.load(SeqCst), 2);
        assert_eq!(l1.reads(), 2);
        assert_eq!(COLD_SEEN.lock().unwrap().len(), 1);
    });
}
