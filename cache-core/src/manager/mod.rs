//! `CacheManager`: resolves cache names to caches in named stores.

mod admin;
mod build;
mod builder;
mod declarations;
mod listing;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

pub use builder::{CacheManagerBuilder, StoreBuilder};
pub use declarations::{declared_caches, DeclaredCache};

use crate::cache::Cache;
use crate::config::{CacheConfig, CacheOptions};
use crate::engine::Engine;
use crate::error::CacheError;
use crate::events::{CacheEvent, Subscription};
use crate::stats::StatsCounters;
use crate::store::named::StoreInner;
use crate::store::Scope;

/// Resolves cache names to [`Cache`]s in named stores, as configuration says. Cheap to
/// clone (an `Arc` inside), `Send + Sync`. Building one is synchronous and never needs a
/// server: remote connections are made on first use.
///
/// ```
/// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
/// let manager = CacheManager::builder()
///     .store("main", StoreBuilder::new().l1(MapTier::new()))
///     .ttl(std::time::Duration::from_secs(60))
///     .build()
///     .unwrap();
/// assert_eq!(manager.cache("users").unwrap().store_name(), "main");
/// ```
#[derive(Clone)]
pub struct CacheManager {
    inner: Arc<ManagerInner>,
}

struct ManagerInner {
    /// Unique for the life of the process: operations remember their caches per manager.
    id: u64,
    stores: BTreeMap<String, Arc<StoreInner>>,
    default_store: String,
    defaults: CacheOptions,
    caches_config: BTreeMap<String, CacheConfig>,
    cache_names: Option<Vec<String>>,
    /// Caches by (store, name), made once so every handle shares counters.
    caches: RwLock<HashMap<(String, String), Cache>>,
    /// Caches by name, in their configured store: the annotations' path.
    by_name: RwLock<HashMap<String, Cache>>,
}

impl std::fmt::Debug for CacheManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheManager")
            .field("stores", &self.inner.stores.values().collect::<Vec<_>>())
            .field("default_store", &self.inner.default_store)
            .field("defaults", &self.inner.defaults)
            .field("cache_names", &self.inner.cache_names)
            .finish()
    }
}

impl CacheManager {
    /// Runs `future` with this manager in effect for every cached call made while polling
    /// it (annotated functions and `cachet::cache(..)`), whatever the global manager is:
    /// several managers in one process, e.g. one per tenant or per app instance. Scopes
    /// nest and the innermost wins; tasks spawned from `future` do not inherit it.
    /// [`crate::testing::with_manager`] is the same, named for tests.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let manager = cache_core::CacheManager::none();
    /// let store = manager
    ///     .scope(async { cache_core::manager().default_store_name().to_owned() })
    ///     .await;
    /// assert_eq!(store, "none");
    /// # });
    /// ```
    pub async fn scope<F: std::future::Future>(&self, future: F) -> F::Output {
        crate::scopes::scope_task(crate::scopes::Scoped::new(self.clone()), future).await
    }

    /// Subscribes `listener` to the events of every cache and store of this manager (hits,
    /// stale hits, misses, writes, deletes, clears, expirations, factory errors and
    /// timeouts, bus messages published and received, L2 errors, the circuit breaker
    /// opening and closing: [`EventKind`](crate::EventKind)) until the returned
    /// [`Subscription`] is dropped. The listener runs on the thread doing the cache's work,
    /// while it does it: keep it short, or send the event on (a channel). A listener that
    /// panics is logged and the cache carries on. With no listener, events cost one relaxed
    /// atomic load each.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use cache_core::{CacheManager, EventKind, StoreBuilder, store::MapTier};
    /// let manager = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let misses = Arc::new(AtomicU64::new(0));
    /// let counted = misses.clone();
    /// let _subscription = manager.subscribe(move |event| {
    ///     if event.kind == EventKind::Miss {
    ///         counted.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// let n: u32 = manager.cache("users").unwrap().get_or_set(&1u64, || async { 1 }).await.unwrap();
    /// assert_eq!((n, misses.load(Ordering::Relaxed)), (1, 1));
    /// # });
    /// ```
    pub fn subscribe(
        &self,
        listener: impl Fn(&CacheEvent<'_>) + Send + Sync + 'static,
    ) -> Subscription {
        let hubs = self
            .inner
            .stores
            .values()
            .map(|s| s.events.clone())
            .collect();
        Subscription::new(hubs, listener)
    }

    /// The cache of that name, in the store configuration gives it (`[caches.NAME] store`,
    /// else `default_store`). Fails when `cache_names` does not allow the name, or when the
    /// name is not one configuration accepts (empty, whitespace, or any of `: # * ? [ ] \`).
    ///
    /// ```
    /// let manager = cache_core::CacheManager::none();
    /// let users = manager.cache("users").unwrap();
    /// assert_eq!(users.name(), "users");
    /// assert!(manager.cache("users:admins").is_err()); // `:` separates the parts of a key
    /// ```
    pub fn cache(&self, name: &str) -> Result<Cache, CacheError> {
        if let Some(cache) = read(&self.inner.by_name).get(name) {
            return Ok(cache.clone());
        }
        let store = self.store_of(name)?;
        let cache = self.cache_in(&store, name);
        write(&self.inner.by_name).insert(name.to_owned(), cache.clone());
        Ok(cache)
    }

    /// The store of that name (Bentocache's `use()`): its caches ignore `[caches.X] store`.
    ///
    /// ```
    /// let manager = cache_core::CacheManager::none();
    /// let users = manager.store("none").unwrap().cache("users");
    /// assert_eq!(users.store_name(), "none");
    /// assert!(manager.store("redis").is_err());
    /// ```
    pub fn store(&self, name: &str) -> Result<Store, CacheError> {
        let inner =
            self.inner
                .stores
                .get(name)
                .cloned()
                .ok_or_else(|| CacheError::UnknownStore {
                    store: name.to_owned(),
                    known: self.store_names(),
                })?;
        Ok(Store {
            manager: self.clone(),
            inner,
        })
    }

    /// The names of the configured stores.
    ///
    /// ```
    /// assert_eq!(cache_core::CacheManager::none().store_names(), vec!["none".to_string()]);
    /// ```
    pub fn store_names(&self) -> Vec<String> {
        self.inner.stores.keys().cloned().collect()
    }

    /// The store of caches that configuration does not place elsewhere.
    ///
    /// ```
    /// assert_eq!(cache_core::CacheManager::none().default_store_name(), "none");
    /// ```
    pub fn default_store_name(&self) -> &str {
        &self.inner.default_store
    }

    /// This manager's process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// The store a cache name resolves to, or why it does not.
    fn store_of(&self, name: &str) -> Result<Arc<StoreInner>, CacheError> {
        if crate::config::name_problem(name, "a cache name").is_some() {
            return Err(CacheError::InvalidName {
                name: name.to_owned(),
                reason: "a cache name must not be empty nor hold whitespace or any of \
                         `: # * ? [ ] \\` (names are part of stored keys and Redis patterns), \
                         as in configuration",
            });
        }
        if let Some(allowed) = &self.inner.cache_names {
            if !allowed.iter().any(|n| n == name) {
                return Err(CacheError::UnknownCache {
                    cache: name.to_owned(),
                    known: allowed.clone(),
                });
            }
        }
        let store = self
            .inner
            .caches_config
            .get(name)
            .and_then(|c| c.store.as_deref());
        let store = store.unwrap_or(&self.inner.default_store);
        self.inner
            .stores
            .get(store)
            .cloned()
            .ok_or_else(|| CacheError::UnknownStore {
                store: store.to_owned(),
                known: self.store_names(),
            })
    }

    fn cache_in(&self, store: &Arc<StoreInner>, name: &str) -> Cache {
        let id = (store.name.clone(), name.to_owned());
        if let Some(cache) = read(&self.inner.caches).get(&id) {
            return cache.clone();
        }
        let mut caches = write(&self.inner.caches);
        caches
            .entry(id)
            .or_insert_with(|| {
                let settings = self.settings_of(name);
                let engine = Engine::new(
                    name.into(),
                    crate::layout::cache_base(&store.prefix, name),
                    store.clone(),
                    Arc::new(settings),
                    Arc::new(StatsCounters::new(name.into(), store.name.as_str().into())),
                );
                Cache { engine }
            })
            .clone()
    }

    /// A cache's settings: the option set's layers merged once (see `options.rs`).
    fn settings_of(&self, name: &str) -> CacheOptions {
        let own = self.inner.caches_config.get(name).map(|c| &c.options);
        CacheOptions::layered(std::iter::once(&self.inner.defaults).chain(own))
    }
}

/// One named store of a manager (Bentocache's `bento.use("redis")`).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let manager = cache_core::CacheManager::none();
/// let store = manager.store("none").unwrap();
/// store.clear().await.unwrap();
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    manager: CacheManager,
    inner: Arc<StoreInner>,
}

impl Store {
    /// The store's name.
    ///
    /// ```
    /// assert_eq!(cache_core::CacheManager::none().store("none").unwrap().name(), "none");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The cache of that name in this store, whatever configuration says of its store.
    ///
    /// ```
    /// let users = cache_core::CacheManager::none().store("none").unwrap().cache("users");
    /// assert_eq!(users.name(), "users");
    /// ```
    pub fn cache(&self, name: &str) -> Cache {
        self.manager.cache_in(&self.inner, name)
    }

    /// How many changes (deletes, writes, clears, tag deletes) the shared tier missed
    /// while it was unreachable and that wait to be replayed once it is back: `0` once
    /// the store has caught up. A test or a health check can wait for it to reach `0`.
    ///
    /// ```
    /// assert_eq!(cache_core::CacheManager::none().store("none").unwrap().pending_changes(), 0);
    /// ```
    pub fn pending_changes(&self) -> usize {
        self.inner.replay.len()
    }

    /// How many held-back changes the shared tier refused when they were replayed (it
    /// answered with an error other than a lost connection, so retrying would be refused
    /// again): each was dropped, and logged, so the changes behind it could go on. The
    /// other instances were still told to drop the keys from their L1.
    ///
    /// ```
    /// assert_eq!(cache_core::CacheManager::none().store("none").unwrap().dropped_changes(), 0);
    /// ```
    pub fn dropped_changes(&self) -> u64 {
        self.inner.replay.dropped()
    }

    /// Deletes every entry of this store (every key under its prefix), and nothing else.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// cache_core::CacheManager::none().store("none").unwrap().clear().await.unwrap();
    /// # });
    /// ```
    pub async fn clear(&self) -> Result<(), CacheError> {
        let store = &self.inner;
        let scope = Scope::new(store.prefix.clone());
        if let Some(l1) = &store.l1 {
            l1.remove_scope(&scope);
        }
        // A store's clear: no cache named (`events.rs`).
        store
            .events
            .tell(crate::events::EventKind::Clear, &store.name, None, None);
        if let Some(remote) = &store.l2 {
            remote
                .clear(&store.name, &scope)
                .await
                .map_err(|_| CacheError::Tier {
                    store: store.name.clone(),
                    source: crate::TierError::new(format!(
                        "cannot clear {}",
                        remote.tier.describe()
                    )),
                })?;
            if let Some(l1) = &store.l1 {
                // A lookup that read L2 before the clear may have backfilled old values.
                l1.remove_scope(&scope);
            }
        }
        store
            .announce(crate::store::Invalidation::Scope(scope))
            .await;
        Ok(())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // These maps are only ever inserted into, without user code under the lock.
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}
