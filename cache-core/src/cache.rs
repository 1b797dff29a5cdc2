//! `Cache`: the public handle on one named cache (or namespace) in one store, and its typed
//! programmatic API. The work (tiers, single flight, writes, deletes) is the [`Engine`]'s
//! (`engine.rs`), which the annotations, the lock and tags work on too.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock;
use crate::config::CacheOptions;
use crate::engine::{Engine, FirstL1, Lifetime, Lookup, Write};
use crate::error::CacheError;
use crate::events::EventKind;
use crate::infallible::infallible_form;
use crate::invoke::{Attached, Detachable, Mode};
use crate::layout;
use crate::shape::FallibleShape;
use crate::stats::{CacheStats, Event};
use crate::store::Invalidation;
use crate::CacheValue;
use futures_util::future::Either;
use futures_util::FutureExt;

/// A named cache in a store: cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// Get one from [`crate::CacheManager::cache`] (or `cachet::cache("users")`). Keys are any
/// `serde::Serialize` value, encoded as the annotations encode them, so
/// `cache.get::<User>(&42u64)` reads what `#[cacheable("users")] fn find(id: u64)` stored
/// for `find(42)`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
/// let manager = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
/// let users = manager.cache("users").unwrap();
/// users.set(&42u64, &"ann".to_string()).await.unwrap();
/// assert_eq!(users.get::<String>(&42u64).await.unwrap().as_deref(), Some("ann"));
/// let n: u32 = users.get_or_set(&7u64, || async { 7 }).await.unwrap();
/// assert_eq!(n, 7);
/// # });
/// ```
#[derive(Clone)]
pub struct Cache {
    /// What every call works on: the handle only adds the typed public API.
    pub(crate) engine: Engine,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &&*self.engine.inner.name)
            .field("base", &self.engine.inner.base)
            .field("store", &self.engine.inner.store.name)
            .field("settings", &self.engine.inner.settings)
            .finish()
    }
}

impl Cache {
    /// The cache's name.
    ///
    /// ```
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.name(), "users");
    /// ```
    pub fn name(&self) -> &str {
        &self.engine.inner.name
    }

    /// The name of the store holding this cache.
    ///
    /// ```
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.store_name(), "none");
    /// ```
    pub fn store_name(&self) -> &str {
        &self.engine.inner.store.name
    }

    /// A snapshot of this cache's counters.
    ///
    /// ```
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.stats().hits, 0);
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.engine.inner.stats.snapshot()
    }

    /// A nested namespace: its own keys, clearable on its own; cleared with its parent.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let users = m.cache("users").unwrap();
    /// let admins = users.namespace("admins");
    /// admins.set(&1u64, &true).await.unwrap();
    /// users.set(&1u64, &false).await.unwrap();
    /// admins.clear().await.unwrap();
    /// assert_eq!(users.get::<bool>(&1u64).await.unwrap(), Some(false));
    /// # });
    /// ```
    pub fn namespace(&self, name: &str) -> Cache {
        let base = layout::namespace_base(&self.engine.inner.base, name);
        Cache {
            engine: self.engine.view(base, self.engine.inner.settings.clone()),
        }
        .tagged(self.tags())
    }

    /// A view of this cache whose settings are overridden by `options` (each option set
    /// replaces the cache's; unset ones are inherited): per-call options. The view shares
    /// the cache's entries, single flight and stats, and every method honours its settings:
    /// TTL and grace of the entries it writes, grace backoff, timeouts. The original handle
    /// is unaffected. A zero `grace` turns grace off for what the view writes.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use cache_core::{CacheManager, CacheOptions, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let users = m.cache("users").unwrap();
    /// let patient = users.with_options(
    ///     CacheOptions::new().ttl(Duration::from_secs(60)).grace(Duration::from_secs(3600)),
    /// );
    /// let n: u32 = patient.get_or_set(&1u64, || async { 1 }).await.unwrap(); // fresh 1m, kept 1h more
    /// assert_eq!(users.get::<u32>(&1u64).await.unwrap(), Some(n));       // same entries
    /// # });
    /// ```
    pub fn with_options(&self, options: CacheOptions) -> Cache {
        // A ratio outside (0, 1) (which building a manager rejects) is ignored here.
        let settings = self.engine.settings().overlay(&options.valid_only());
        Cache {
            engine: self
                .engine
                .view(self.engine.inner.base.clone(), Arc::new(settings)),
        }
        // A view keeps the tags of the handle it was made from.
        .tagged(self.tags())
    }

    /// The value under `key`, if present and of type `V` (another type is a miss): a fresh
    /// value, or else one past its TTL but within its grace period (counted as `stale`),
    /// as Bentocache's `get` does. [`Cache::get_fresh`] reads fresh values only. A view's
    /// `grace` ([`Cache::with_options`]) bounds how stale a value it returns may be. A
    /// cached absence (the null marker an `Option<T>` function stores for `None`) reads as
    /// `None` too: [`Cache::has`] tells it from nothing cached.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn get<V: CacheValue>(
        &self,
        key: &(impl Serialize + ?Sized),
    ) -> Result<Option<V>, CacheError> {
        self.read(key, true).await
    }

    /// The value under `key`, if present, fresh and of type `V`: unlike [`Cache::get`],
    /// never a value past its TTL, even within its grace period.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn get_fresh<V: CacheValue>(
        &self,
        key: &(impl Serialize + ?Sized),
    ) -> Result<Option<V>, CacheError> {
        self.read(key, false).await
    }

    /// [`Cache::get`] (`stale`: within grace too) or [`Cache::get_fresh`], failed by a fault
    /// when the manager's error handler says so (`fault.rs`). Without a handler nothing can
    /// fail it: the read as it is, no fault scope and no adapters around it (two levels of
    /// a read's every poll; BENCHMARKS.md, "64 tasks, phase L").
    fn read<'a, V: CacheValue, K: Serialize + ?Sized>(
        &'a self,
        key: &'a K,
        stale: bool,
    ) -> impl Future<Output = Result<Option<V>, CacheError>> + 'a {
        let read = self.read_unchecked(key, stale);
        if self.watched() {
            Either::Right(crate::fault::checked(true, read))
        } else {
            Either::Left(read)
        }
    }

    async fn read_unchecked<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
        stale: bool,
    ) -> Result<Option<V>, CacheError> {
        let engine = &self.engine;
        let probed = engine.with_encoded_key(key, |encoded| {
            let found = engine.look_l1_at::<V>(&engine.l1_key_of_encoded(encoded)).0;
            // The L2 is read under the key encoded for L1, not encoded again; a stale L1
            // value is read again after L2, which may hold a fresher one.
            let local = match found {
                Lookup::Fresh(value) => return Ok(value),
                Lookup::Stale(..) if stale => FirstL1::Unread,
                Lookup::Stale(..) | Lookup::Miss => FirstL1::Empty,
            };
            Err((engine.read_key_of_encoded(encoded), local))
        });
        let (stored, local) = match probed {
            Some(Ok(value)) => return Ok(Some(value)),
            Some(Err((Some(stored), local))) => (stored, local),
            Some(Err((None, _))) | None => (engine.read_key(key)?, FirstL1::Unread),
        };
        let stored = stored.as_str();
        // With no L1 value to weigh against L2's, L2 alone (one level less at each poll).
        let found = if local == FirstL1::Unread && engine.has_l1() {
            engine.lookup_due::<V>(stored, local).await.0
        } else {
            engine.lookup_remote::<V>(stored).await.0
        };
        match found {
            Lookup::Fresh(v) => Ok(Some(v)),
            Lookup::Stale(v, _) if stale => {
                self.engine.count(Event::Stale);
                self.engine.tell(EventKind::StaleHit, Some(stored));
                Ok(Some(v))
            }
            Lookup::Stale(..) | Lookup::Miss => {
                self.engine.count(Event::Miss);
                self.engine.tell(EventKind::Miss, Some(stored));
                Ok(None)
            }
        }
    }

    /// Marks the entry under `key` stale now, in every tier and on every instance, but
    /// keeps it for its grace period: the next read through a cached function or
    /// `get_or_set` refreshes it, and a failing refresh is still answered with the stale
    /// value (Bentocache's and FusionCache's `expire`). Without grace, the entry is gone.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder()
    ///     .store("main", StoreBuilder::new().l1(MapTier::new()))
    ///     .ttl(Duration::from_secs(60))
    ///     .grace(Duration::from_secs(3600))
    ///     .build()
    ///     .unwrap();
    /// let rates = m.cache("rates").unwrap();
    /// rates.set(&"eur", &100u32).await.unwrap();
    /// rates.expire(&"eur").await.unwrap();
    /// assert_eq!(rates.get_fresh::<u32>(&"eur").await.unwrap(), None);
    /// assert_eq!(rates.get::<u32>(&"eur").await.unwrap(), Some(100)); // within grace
    /// # });
    /// ```
    pub async fn expire(&self, key: &(impl Serialize + ?Sized)) -> Result<(), CacheError> {
        let engine = &self.engine;
        let stored = engine.stored_key(key)?;
        let store = &engine.inner.store;
        let grace = engine.settings().grace.unwrap_or_default();
        if let Some(l1) = &store.l1 {
            let now = (store.clock.now(), store.clock.ticks_ms());
            let key = engine.l1_key_owned(&stored);
            crate::expire::expire_local(l1.as_ref(), &store.versions, (&stored, key), grace, now);
        }
        if let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !engine.skips(|o| o.skip_l2_write))
        {
            let now_ms = store.clock.unix_ms();
            if !crate::expire::expire_remote(remote, &store.name, &stored, grace, now_ms).await {
                engine.count(Event::Error);
            }
        }
        engine.tell(EventKind::Expire, Some(&stored));
        // The other instances drop their L1 copies and read the stale one back from L2.
        engine.announce(Invalidation::Keys(vec![stored])).await;
        Ok(())
    }

    /// Stores `value` under `key` for the cache's TTL.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.set(&1u64, &"ann".to_string()).await.unwrap(); // dropped: the `none` store keeps nothing
    /// # });
    /// ```
    pub async fn set<V: CacheValue>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
    ) -> Result<(), CacheError> {
        self.set_lifetime(key, value, Lifetime::Default).await
    }

    /// Stores `value` under `key` for `ttl`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.set_with(&1u64, &"ann".to_string(), std::time::Duration::from_secs(60)).await.unwrap();
    /// # });
    /// ```
    pub async fn set_with<V: CacheValue>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.set_lifetime(key, value, Lifetime::For(ttl)).await
    }

    /// Stores `value` under `key` with no expiry (it can still be evicted by the size bound;
    /// remote tiers keep it for a year).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.set_forever(&1u64, &"ann".to_string()).await.unwrap();
    /// # });
    /// ```
    pub async fn set_forever<V: CacheValue>(
        &self,
        key: &(impl Serialize + ?Sized),
        value: &V,
    ) -> Result<(), CacheError> {
        self.set_lifetime(key, value, Lifetime::Forever).await
    }

    async fn set_lifetime<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
        value: &V,
        lifetime: Lifetime,
    ) -> Result<(), CacheError> {
        let stored = self.engine.stored_key(key)?;
        let write = self
            .engine
            .write::<V>(&stored, value.clone(), lifetime, Write::Change);
        crate::fault::checked(self.watched(), write.map(Ok)).await
    }

    infallible_form! {
        /// The value under `key`, or else the factory's value, stored. Concurrent callers on one
        /// key run the factory once.
        ///
        /// The factory may borrow from its caller (`|| db.load(id)` with `db: &Db`): it runs in
        /// this call, and this call returns once it is done. That is the form to use, unless
        /// the cache has a soft `timeout` or an `eager_refresh` you want honoured: a factory
        /// that must outlive its call for those is [`Cache::get_or_set_detached`]'s. Here, with
        /// a soft timeout and a stale value, the caller waits for the factory (bounded by the
        /// `hard_timeout`), and a hit late in its TTL is served without a background refresh.
        ///
        /// ```
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// struct Db { names: Vec<String> }
        /// impl Db { async fn load(&self, id: u64) -> String { self.names[id as usize].clone() } }
        ///
        /// let users = cache_core::CacheManager::none().cache("users").unwrap();
        /// let db = Db { names: vec!["ann".into(), "bob".into()] };
        /// let db = &db; // borrowed, not cloned into the factory
        /// let id = 1u64;
        /// let name: String = users.get_or_set(&id, || db.load(id)).await.unwrap();
        /// assert_eq!(name, "bob");
        /// # });
        /// ```
        get_or_set => try_get_or_set, V
    }

    /// Like [`Cache::get_or_set`] with a fallible factory: an `Err` is returned and not
    /// stored. The factory may borrow, as `get_or_set`'s; [`Cache::try_get_or_set_detached`]
    /// is the form whose factory may finish in the background.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::CacheError;
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// let limit = 5u32;
    /// let r: Result<u32, CacheError> = users.try_get_or_set(&1u64, || async { Ok(limit) }).await;
    /// assert_eq!(r.unwrap(), 5);
    /// # });
    /// ```
    pub async fn try_get_or_set<V, E, F, Fut>(
        &self,
        key: &(impl Serialize + ?Sized),
        factory: F,
    ) -> Result<V, E>
    where
        V: CacheValue,
        E: From<CacheError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let stored = self.engine.stored_key(key)?;
        // Boxed when it runs (a miss): held once in the call's future (`private/mod.rs`).
        let factory = || Box::pin(self.engine.bounded_owned(factory()));
        let policy = |_: &V| Some(Lifetime::Default);
        self.load(stored, policy, factory, Attached).await
    }

    infallible_form! {
        /// [`Cache::get_or_set`] whose factory may finish after this call returned, so its
        /// future must be `Send + 'static` (capture clones or `Arc`s, with `async move`), as
        /// foyer's `fetch` asks. Use it when the cache has a soft `timeout` or an
        /// `eager_refresh`: with a soft timeout and a stale value, the caller is answered with
        /// the stale value at the timeout while the factory keeps running in the background
        /// and stores its value when done; with `eager_refresh`, a hit late in the entry's TTL
        /// returns at once and refreshes the entry in the background.
        ///
        /// ```
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// let users = cache_core::CacheManager::none().cache("users").unwrap();
        /// // What the factory needs, it owns.
        /// let db = std::sync::Arc::new(vec!["bob".to_string()]);
        /// let name: String =
        ///     users.get_or_set_detached(&2u64, move || async move { db[0].clone() }).await.unwrap();
        /// assert_eq!(name, "bob");
        /// # });
        /// ```
        get_or_set_detached => try_get_or_set_detached, V, + Send + 'static
    }

    /// [`Cache::try_get_or_set`] whose factory may finish in the background, as
    /// [`Cache::get_or_set_detached`]'s: its future must be `Send + 'static`; its error
    /// type need not be `Send`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::CacheError;
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// let r: Result<u32, CacheError> =
    ///     users.try_get_or_set_detached(&1u64, || async { Ok(5) }).await;
    /// assert_eq!(r.unwrap(), 5);
    /// # });
    /// ```
    pub async fn try_get_or_set_detached<V, E, F, Fut>(
        &self,
        key: &(impl Serialize + ?Sized),
        factory: F,
    ) -> Result<V, E>
    where
        V: CacheValue,
        E: From<CacheError> + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        self.detached_get_or_set(key, |_: &V| Some(Lifetime::Default), factory)
            .await
    }

    /// The value under `key`, or else `factory`'s `Ok`, stored as `policy` says: the path
    /// of the detached forms and the adaptive ones. The factory's future is bounded by the
    /// hard timeout and owned, so it may finish in the background.
    pub(crate) async fn detached_get_or_set<V, E, Fut>(
        &self,
        key: &(impl Serialize + ?Sized),
        policy: impl FnOnce(&V) -> Option<Lifetime> + Send + 'static,
        factory: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        V: CacheValue,
        E: From<CacheError> + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let stored = self.engine.stored_key(key)?;
        // Boxed when it runs (a miss): held once in the call's future (`private/mod.rs`).
        let factory = || Box::pin(self.engine.bounded_owned(factory()));
        self.load(stored, policy, factory, Detachable).await
    }

    /// The one path of every `get_or_set` form: the value under `stored`, or else `body`'s
    /// `Ok`, stored as `policy` says; `mode` says whether `body` may finish in the
    /// background.
    async fn load<V, E, P, F, M>(
        &self,
        stored: String,
        policy: P,
        body: impl FnOnce() -> F,
        mode: M,
    ) -> Result<V, E>
    where
        V: CacheValue,
        E: From<CacheError>,
        P: FnOnce(&V) -> Option<Lifetime>,
        F: Future<Output = Result<V, E>>,
        M: Mode<FallibleShape<V, E>, F, P>,
    {
        let shape = FallibleShape::<V, E>::default();
        let caches = std::slice::from_ref(&self.engine);
        let keys = std::slice::from_ref(&stored);
        let local = FirstL1::Unread;
        // Built inside the await: the scope adds bytes, not a copy (`fault::watched`).
        crate::fault::checked(
            self.watched(),
            crate::invoke::cached_call(shape, caches, keys, local, policy, body, mode),
        )
        .await
    }

    /// Whether a fresh value is stored under `key` (of any type): not one idle past its
    /// `tti`, which every read misses; asking is no read, so it does not keep an entry alive.
    /// A view with `skip_l2_read` ([`Cache::with_options`]) looks in L1 only.
    ///
    /// A cached absence is had: the null marker an `Option<T>`-returning `#[cacheable]`
    /// stores for `None` (with `allow_null_values`) is an entry, which answers that function
    /// without running it, although [`Cache::get`] reads it as no value. So `has` true with
    /// `get` `None` means "cached as absent", as Spring's `Cache.get` returns a wrapper
    /// holding `null` and Bentocache's `has` is true for a stored `null`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert!(!users.has(&1u64).await.unwrap());
    /// # });
    /// ```
    pub async fn has(&self, key: &(impl Serialize + ?Sized)) -> Result<bool, CacheError> {
        let stored = self.engine.stored_key(key)?;
        let store = &self.engine.inner.store;
        let now = store.clock.now();
        let local = store.l1.as_ref();
        if let Some(entry) = local.and_then(|l1| l1.get(&self.engine.l1_key(&stored))) {
            // Idle past its `tti`: gone for every read, so not had either (asking is no read).
            let idle = entry
                .idle
                .as_ref()
                .is_some_and(|idle| idle.is_idle(store.clock.ticks_ms()));
            if !idle && entry.fresh_until.is_none_or(|until| until > now) {
                return Ok(true);
            }
        }
        // `skip_l2_read`: L1 only, as for every read of the view.
        let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !self.engine.skips(|o| o.skip_l2_read))
        else {
            return Ok(false);
        };
        match remote.get(&store.name, &stored).await {
            Ok(Some(bytes)) => Ok(remote
                .codec
                .read_meta(&bytes, remote.max_value_size)
                .is_ok_and(|meta| {
                    clock::RemoteTimes::read(&store.clock, meta.fresh_until_ms, meta.keep_until_ms)
                        .is_fresh()
                })),
            Ok(None) => Ok(false),
            Err(_) => {
                self.engine.count(Event::Error);
                Ok(false)
            }
        }
    }

    /// The opposite of [`Cache::has`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert!(users.missing(&1u64).await.unwrap());
    /// # });
    /// ```
    pub async fn missing(&self, key: &(impl Serialize + ?Sized)) -> Result<bool, CacheError> {
        Ok(!self.has(key).await?)
    }

    /// The value under `key`, deleting it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.pull::<String>(&1u64).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn pull<V: CacheValue>(
        &self,
        key: &(impl Serialize + ?Sized),
    ) -> Result<Option<V>, CacheError> {
        let value = self.get(key).await?;
        self.delete(key).await?;
        Ok(value)
    }

    /// Deletes the entry under `key`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.delete(&1u64).await.unwrap();
    /// # });
    /// ```
    pub async fn delete(&self, key: &(impl Serialize + ?Sized)) -> Result<(), CacheError> {
        let stored = self.engine.stored_key(key)?;
        let remove = self.engine.remove(std::slice::from_ref(&stored));
        crate::fault::checked(self.watched(), remove.map(Ok)).await
    }

    /// Deletes the entries under several keys.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.delete_many(&[1u64, 2, 3]).await.unwrap();
    /// # });
    /// ```
    pub async fn delete_many<K: Serialize>(&self, keys: &[K]) -> Result<(), CacheError> {
        let stored = keys
            .iter()
            .map(|k| self.engine.stored_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        let remove = self.engine.remove(&stored);
        crate::fault::checked(self.watched(), remove.map(Ok)).await
    }

    /// Deletes every entry of this cache (or namespace, nested namespaces included), and
    /// nothing else.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.clear().await.unwrap();
    /// # });
    /// ```
    pub async fn clear(&self) -> Result<(), CacheError> {
        // Its own scope: a failed clear is this call's error, never an enclosing call's.
        crate::fault::checked(self.watched(), self.engine.remove_all()).await
    }

    /// Whether a fault can fail this handle's calls: the manager has an error handler.
    pub(crate) fn watched(&self) -> bool {
        self.engine.inner.store.error_handler.is_some()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    // The `Cache` handle's methods on an in-process store under a manual clock: each one's
    // effect is observed, so a method that did nothing (or the opposite) fails here, in the
    // fast lib tests (written for cargo-mutants: README, "Mutation testing"). What a method
    // does with an L2 is tested against a real Redis in the root package's `tests/`.

    use std::time::Duration;

    use crate::store::MapTier;
    use crate::testing::ManualClock;
    use crate::{Cache, CacheManager, StoreBuilder};

    const TTL: Duration = Duration::from_secs(30);
    const GRACE: Duration = Duration::from_secs(3600);

    /// The cache `users` of store `main` (an in-process map) with a 30 s TTL and an hour of
    /// grace, on `clock`.
    fn users(clock: &ManualClock) -> Cache {
        CacheManager::builder()
            .store("main", StoreBuilder::new().l1(MapTier::new()))
            .ttl(TTL)
            .grace(GRACE)
            .manual_clock(clock.clone())
            .build()
            .unwrap()
            .cache("users")
            .unwrap()
    }

    fn ann() -> String {
        "ann".to_owned()
    }

    /// Every handle on one cache or namespace (a view, a second resolution, a namespace
    /// handle made again) files its entries under one key space, so entries written through
    /// per-call handles hold no space of their own.
    #[test]
    fn handles_on_one_base_share_its_key_space() {
        let m = CacheManager::builder()
            .store("main", StoreBuilder::new().l1(MapTier::new()))
            .build()
            .unwrap();
        let space = |c: &Cache| c.engine.inner.space.base().as_ptr();
        let users = m.cache("users").unwrap();
        let view = users.with_options(crate::CacheOptions::new().ttl(TTL));
        assert_eq!(space(&users), space(&view));
        assert_eq!(space(&users), space(&m.cache("users").unwrap()));
        assert_eq!(space(&users), space(&users.tagged(["t"])));
        let admins = users.namespace("admins");
        assert_eq!(space(&admins), space(&users.namespace("admins")));
        assert_ne!(space(&admins), space(&users));
        assert_ne!(space(&users), space(&m.cache("orders").unwrap()));
    }

    /// A manager whose store `main` has `tier` as its L1.
    fn on_map(tier: &std::sync::Arc<MapTier>) -> CacheManager {
        CacheManager::builder()
            .store("main", StoreBuilder::new().l1(tier.clone()))
            .build()
            .unwrap()
    }

    /// The weight of the entry `tier` holds under `stored`, and what a copy of it holds
    /// (`LocalEntry::held_weight`: the tag index's part left out).
    fn weights(tier: &MapTier, stored: &str) -> Option<(u32, u32)> {
        let key = crate::store::L1KeyRef::parse(stored);
        crate::store::LocalTier::get(tier, &key).map(|e| (e.weight, e.held_weight()))
    }

    /// An entry weighs what it holds: its base is shared (so a long cache name or namespace
    /// adds nothing), its encoded key only when too long to be held inline, and its stored
    /// key once per tag set of the tag index listing it.
    #[tokio::test]
    async fn an_entry_weighs_what_its_key_holds_not_its_stored_keys_length() {
        let tier = MapTier::new();
        let m = on_map(&tier);
        let weight = |stored: &str| weights(&tier, stored).map(|(weight, _)| weight);
        let long_name = "a_rather_long_cache_name_for_profiles";
        let long_key = "k".repeat(40);
        m.cache("a").unwrap().set(&1u64, &1u64).await.unwrap();
        m.cache(long_name).unwrap().set(&1u64, &1u64).await.unwrap();
        let tenant = m.cache("a").unwrap().namespace("tenant-0042");
        tenant.set(&1u64, &1u64).await.unwrap();
        m.cache("a").unwrap().set(&long_key, &1u64).await.unwrap();
        let short = weight("cachet:a:1").unwrap();
        assert_eq!(weight(&format!("cachet:{long_name}:1")), Some(short));
        assert_eq!(weight("cachet:a#tenant-0042:1"), Some(short));
        assert_eq!(
            weight(&format!("cachet:a:{long_key}")),
            Some(short + 48),
            "a key past the inline bytes holds them on the heap (40 in a 48-byte chunk)"
        );
        // Written with two tags, the tag index holds its stored key twice (a `String` in
        // each tag's set, 24 bytes and 8 of the set's, and its 10 bytes in a 32-byte
        // chunk): 64 bytes each, which the entry's weight counts, but not what a copy of the
        // entry holds (a front table's), since the index holds them.
        let tagged = m.cache("a").unwrap().tagged(["red", "blue"]);
        tagged.set(&7u64, &1u64).await.unwrap();
        assert_eq!(weight("cachet:a:7"), Some(short + 2 * 64));
        let held = |stored: &str| weights(&tier, stored).map(|(_, held)| held);
        assert_eq!(held("cachet:a:7"), Some(short));
        assert_eq!(held("cachet:a:1"), Some(short));
    }

    /// The tag index keeps a key listed under every tag it was written with on this
    /// instance, whichever write replaced the entry since (`tags.rs`: deleting by an old tag
    /// evicts it too): the entry in L1 counts every copy the index holds of its key, not
    /// only its own write's tags, or a size-bounded L1 holds more than its bound.
    #[tokio::test]
    async fn an_entry_counts_every_copy_of_its_key_the_tag_index_holds() {
        let tier = MapTier::new();
        let m = on_map(&tier);
        let weight = |stored: &str| weights(&tier, stored);
        let a = m.cache("a").unwrap();
        a.set(&1u64, &1u64).await.unwrap();
        let (short, _) = weight("cachet:a:1").unwrap();
        // 64 bytes a copy (see the test above).
        a.tagged(["red"]).set(&7u64, &1u64).await.unwrap();
        assert_eq!(weight("cachet:a:7"), Some((short + 64, short)));
        a.set(&7u64, &2u64).await.unwrap();
        assert_eq!(
            weight("cachet:a:7"),
            Some((short + 64, short)),
            "overwritten without a tag: the index still lists it under `red`"
        );
        a.tagged(["blue"]).set(&7u64, &3u64).await.unwrap();
        assert_eq!(
            weight("cachet:a:7"),
            Some((short + 2 * 64, short)),
            "listed under `red` and `blue`"
        );
        a.tagged(["blue"]).set(&7u64, &4u64).await.unwrap();
        assert_eq!(weight("cachet:a:7"), Some((short + 2 * 64, short)));
        a.delete_by_tag("red").await.unwrap();
        assert!(a.missing(&7u64).await.unwrap());
        a.set(&7u64, &5u64).await.unwrap();
        assert_eq!(
            weight("cachet:a:7"),
            Some((short + 64, short)),
            "`red`'s set is gone; `blue`'s still lists it"
        );
    }

    #[test]
    fn the_handle_names_its_cache_and_store() {
        let users = users(&ManualClock::new());
        assert_eq!(users.name(), "users");
        assert_eq!(users.store_name(), "main");
        let shown = format!("{users:?}");
        assert!(
            shown.starts_with("Cache") && shown.contains("\"users\"") && shown.contains("main"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_value_set_is_read_back_and_counted() {
        let users = users(&ManualClock::new());
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
        assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), None);
        users.set(&1u64, &ann()).await.unwrap();
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
        assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), Some(ann()));
        let stats = users.stats();
        assert_eq!((stats.puts, stats.hits, stats.l1_hits), (1, 2, 2));
        assert_eq!(stats.misses, 2);
    }

    #[tokio::test]
    async fn each_setter_stores_for_its_own_lifetime() {
        let clock = ManualClock::new();
        let users = users(&clock);
        users.set(&1u64, &ann()).await.unwrap();
        users
            .set_with(&2u64, &ann(), Duration::from_secs(10))
            .await
            .unwrap();
        users.set_forever(&3u64, &ann()).await.unwrap();
        let fresh = |key: u64| {
            let users = users.clone();
            async move { users.get_fresh::<String>(&key).await.unwrap().is_some() }
        };
        assert!(fresh(1).await && fresh(2).await && fresh(3).await);
        clock.advance(Duration::from_secs(10));
        assert!(fresh(1).await && !fresh(2).await && fresh(3).await);
        clock.advance(TTL);
        assert!(!fresh(1).await && !fresh(2).await && fresh(3).await);
        clock.advance(GRACE * 24);
        assert!(fresh(3).await);
    }

    #[tokio::test]
    async fn a_stale_value_is_served_by_get_and_not_by_get_fresh() {
        let clock = ManualClock::new();
        let users = users(&clock);
        users.set(&1u64, &ann()).await.unwrap();
        clock.advance(TTL + Duration::from_secs(1));
        assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), None);
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
        assert_eq!(users.stats().stale, 1);
        clock.advance(GRACE);
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_value_is_stale_within_its_grace() {
        let users = users(&ManualClock::new());
        users.set(&1u64, &ann()).await.unwrap();
        users.expire(&1u64).await.unwrap();
        assert_eq!(users.get_fresh::<String>(&1u64).await.unwrap(), None);
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
    }

    #[tokio::test]
    async fn has_and_missing_see_fresh_values_only() {
        let clock = ManualClock::new();
        let users = users(&clock);
        assert!(!users.has(&1u64).await.unwrap());
        assert!(users.missing(&1u64).await.unwrap());
        users.set(&1u64, &ann()).await.unwrap();
        assert!(users.has(&1u64).await.unwrap());
        assert!(!users.missing(&1u64).await.unwrap());
        // Fresh until the instant its TTL ends, not at it (as every read judges it).
        clock.advance(TTL - Duration::from_millis(1));
        assert!(users.has(&1u64).await.unwrap());
        clock.advance(Duration::from_millis(1));
        assert!(!users.has(&1u64).await.unwrap(), "stale at its TTL");
        assert!(users.missing(&1u64).await.unwrap());
        // Still held for its grace: `get` serves it, `has` does not count it.
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), Some(ann()));
    }

    #[tokio::test]
    async fn pull_returns_the_value_and_deletes_it() {
        let users = users(&ManualClock::new());
        users.set(&1u64, &ann()).await.unwrap();
        assert_eq!(users.pull::<String>(&1u64).await.unwrap(), Some(ann()));
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
        assert_eq!(users.pull::<String>(&1u64).await.unwrap(), None);
    }

    #[tokio::test]
    async fn delete_delete_many_and_clear_remove_what_they_name() {
        let users = users(&ManualClock::new());
        for key in 1u64..=4 {
            users.set(&key, &ann()).await.unwrap();
        }
        let held = |key: u64| {
            let users = users.clone();
            async move { users.get::<String>(&key).await.unwrap().is_some() }
        };
        users.delete(&1u64).await.unwrap();
        assert!(!held(1).await && held(2).await);
        users.delete_many(&[2u64, 3]).await.unwrap();
        assert!(!held(2).await && !held(3).await && held(4).await);
        users.clear().await.unwrap();
        assert!(!held(4).await);
        assert_eq!(users.stats().evictions, 4);
    }

    #[tokio::test]
    async fn get_or_set_stores_the_factory_value_once() {
        let users = users(&ManualClock::new());
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let load = || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ann()
        };
        let first: String = users.get_or_set(&1u64, load).await.unwrap();
        assert_eq!(users.stats().misses, 1);
        let again: String = users.get_or_set(&1u64, load).await.unwrap();
        assert_eq!((first.as_str(), again.as_str()), ("ann", "ann"));
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        let detached: Result<String, crate::CacheError> = users
            .try_get_or_set_detached(&2u64, || async { Ok(ann()) })
            .await;
        assert_eq!(detached.unwrap(), "ann");
        assert_eq!(users.get::<String>(&2u64).await.unwrap(), Some(ann()));
    }
}
