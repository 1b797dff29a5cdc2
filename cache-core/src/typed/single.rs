//! A typed cache's single-key operations: [`Cache`]'s, with the key and value types of the
//! declaration, so no call needs a turbofish.

use std::borrow::Borrow;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::TypedCache;
use crate::adaptive::Adaptive;
#[cfg(doc)]
use crate::cache::Cache;
use crate::error::CacheError;
use crate::value::CacheValue;

impl<K, V> TypedCache<K, V>
where
    K: Serialize + ?Sized,
    V: CacheValue,
{
    /// [`Cache::get`]: the value under `key`, if present (fresh or within grace). A key is
    /// anything the key type borrows as: a `&str` for a `String` key. A cached `None` (see
    /// [`TypedCache::has`]) reads as `None`.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     assert_eq!(USERS.get(&1).await.unwrap(), None);
    ///     USERS.set(&1, &7).await.unwrap();
    ///     let found: Option<u32> = USERS.get(&1).await.unwrap(); // no turbofish
    ///     assert_eq!(found, Some(7));
    /// }).await;
    /// # });
    /// ```
    pub async fn get<Q>(&self, key: &Q) -> Result<Option<V>, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.get(key).await
    }

    /// [`Cache::get_fresh`]: the value under `key`, if present and fresh (never one past its
    /// TTL, even within grace).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set(&1, &7).await.unwrap();
    ///     assert_eq!(USERS.get_fresh(&1).await.unwrap(), Some(7));
    ///     USERS.expire(&1).await.unwrap();
    ///     assert_eq!(USERS.get_fresh(&1).await.unwrap(), None);
    /// }).await;
    /// # });
    /// ```
    pub async fn get_fresh<Q>(&self, key: &Q) -> Result<Option<V>, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.get_fresh(key).await
    }

    /// [`Cache::set`]: stores `value` under `key` for the cache's TTL.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set(&1, &7).await.unwrap();
    ///     assert_eq!(USERS.get(&1).await.unwrap(), Some(7));
    /// }).await;
    /// # });
    /// ```
    pub async fn set<Q>(&self, key: &Q, value: &V) -> Result<(), CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.set(key, value).await
    }

    /// [`Cache::set_with`]: stores `value` under `key` for `ttl`.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set_with(&1, &7, std::time::Duration::from_secs(60)).await.unwrap();
    ///     assert_eq!(USERS.get(&1).await.unwrap(), Some(7));
    /// }).await;
    /// # });
    /// ```
    pub async fn set_with<Q>(&self, key: &Q, value: &V, ttl: Duration) -> Result<(), CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.set_with(key, value, ttl).await
    }

    /// [`Cache::set_forever`]: stores `value` under `key` with no expiry (the size bound may
    /// still evict it).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set_forever(&1, &7).await.unwrap();
    ///     assert_eq!(USERS.get_fresh(&1).await.unwrap(), Some(7));
    /// }).await;
    /// # });
    /// ```
    pub async fn set_forever<Q>(&self, key: &Q, value: &V) -> Result<(), CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.set_forever(key, value).await
    }

    /// [`Cache::expire`]: marks the entry under `key` stale now, everywhere, keeping it for its
    /// grace period (without grace, it is gone): the next `get_or_set` or cached call
    /// refreshes it, and a failing refresh is answered with the stale value.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set(&1, &7).await.unwrap();
    ///     USERS.expire(&1).await.unwrap();
    ///     assert!(USERS.missing(&1).await.unwrap()); // no fresh value (and no grace here)
    /// }).await;
    /// # });
    /// ```
    pub async fn expire<Q>(&self, key: &Q) -> Result<(), CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.expire(key).await
    }

    /// [`Cache::get_or_set`]: the cached value, or `factory`'s (stored), with single flight.
    /// The factory may borrow from its caller; [`TypedCache::get_or_set_detached`] is the
    /// form whose factory may finish in the background (soft timeout, eager refresh).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     let loads = std::cell::Cell::new(0);
    ///     let load = || async { loads.set(loads.get() + 1); 7 }; // borrows `loads`
    ///     assert_eq!(USERS.get_or_set(&1, load).await.unwrap(), 7);
    ///     assert_eq!(USERS.get_or_set(&1, load).await.unwrap(), 7);
    ///     assert_eq!(loads.get(), 1);
    /// }).await;
    /// # });
    /// ```
    pub async fn get_or_set<Q, F, Fut>(&self, key: &Q, factory: F) -> Result<V, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        self.cache()?.get_or_set(key, factory).await
    }

    /// [`Cache::try_get_or_set`]: as [`TypedCache::get_or_set`] with a fallible factory (an
    /// `Err` is returned, not stored; within grace, the stale value is returned).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     let down = || async { Err::<u32, _>(cache_core::CacheError::Codec("db down".into())) };
    ///     assert!(USERS.try_get_or_set(&1, down).await.is_err());
    ///     assert_eq!(USERS.get(&1).await.unwrap(), None); // an `Err` is not stored
    ///     let v = USERS.try_get_or_set(&1, || async { Ok::<_, cache_core::CacheError>(7) }).await;
    ///     assert_eq!(v.unwrap(), 7);
    /// }).await;
    /// # });
    /// ```
    pub async fn try_get_or_set<Q, E, F, Fut>(&self, key: &Q, factory: F) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        E: From<CacheError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.cache()?.try_get_or_set(key, factory).await
    }

    /// [`Cache::get_or_set_detached`]: [`TypedCache::get_or_set`] whose factory may finish
    /// after the call returned (past a soft `timeout`, or refreshing early with
    /// `eager_refresh`), so its future owns what it needs.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     let base = std::sync::Arc::new(7u32);
    ///     let v = USERS.get_or_set_detached(&1, move || async move { *base }).await.unwrap();
    ///     assert_eq!(v, 7);
    /// }).await;
    /// # });
    /// ```
    pub async fn get_or_set_detached<Q, F, Fut>(&self, key: &Q, factory: F) -> Result<V, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.cache()?.get_or_set_detached(key, factory).await
    }

    /// [`Cache::try_get_or_set_detached`]: [`TypedCache::try_get_or_set`] whose factory may
    /// finish in the background, as [`TypedCache::get_or_set_detached`]'s.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     let v = USERS
    ///         .try_get_or_set_detached(&1, || async { Ok::<_, cache_core::CacheError>(7) })
    ///         .await;
    ///     assert_eq!(v.unwrap(), 7);
    /// }).await;
    /// # });
    /// ```
    pub async fn try_get_or_set_detached<Q, E, F, Fut>(&self, key: &Q, factory: F) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        E: From<CacheError> + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        self.cache()?.try_get_or_set_detached(key, factory).await
    }

    /// [`Cache::get_or_set_adaptive`]: [`TypedCache::get_or_set_detached`] whose factory
    /// decides from its value how long to keep it, or not to keep it ([`Adaptive`]).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     let v = USERS
    ///         .get_or_set_adaptive(&1, || async { cache_core::Adaptive::new(7).no_store() })
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(v, 7);
    ///     assert!(USERS.missing(&1).await.unwrap()); // returned, not kept
    /// }).await;
    /// # });
    /// ```
    pub async fn get_or_set_adaptive<Q, F, Fut>(&self, key: &Q, factory: F) -> Result<V, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Adaptive<V>> + Send + 'static,
    {
        self.cache()?.get_or_set_adaptive(key, factory).await
    }

    /// [`Cache::try_get_or_set_adaptive`]: [`TypedCache::get_or_set_adaptive`] with a
    /// fallible factory.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     use std::time::Duration;
    ///     let v = USERS
    ///         .try_get_or_set_adaptive(&1, || async {
    ///             Ok::<_, cache_core::CacheError>(cache_core::Adaptive::new(7).ttl(Duration::from_secs(5)))
    ///         })
    ///         .await;
    ///     assert_eq!(v.unwrap(), 7);
    ///     assert_eq!(USERS.get(&1).await.unwrap(), Some(7));
    /// }).await;
    /// # });
    /// ```
    pub async fn try_get_or_set_adaptive<Q, E, F, Fut>(&self, key: &Q, factory: F) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        E: From<CacheError> + Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Adaptive<V>, E>> + Send + 'static,
    {
        self.cache()?.try_get_or_set_adaptive(key, factory).await
    }

    /// [`Cache::has`]: whether a fresh value is under `key`. A `None` that an
    /// `Option<V>`-returning `#[cacheable]` on this cache stored (the null marker) is had,
    /// though [`TypedCache::get`] reads it as `None`: it is a cached absence, which answers
    /// that function without running it (Spring's wrapper holding `null`).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     assert!(!USERS.has(&1).await.unwrap());
    ///     USERS.set(&1, &7).await.unwrap();
    ///     assert!(USERS.has(&1).await.unwrap());
    /// }).await;
    /// # });
    /// ```
    pub async fn has<Q>(&self, key: &Q) -> Result<bool, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.has(key).await
    }

    /// [`Cache::missing`]: whether no fresh value is under `key` (the opposite of
    /// [`TypedCache::has`]: a cached `None` is not missing).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     assert!(USERS.missing(&1).await.unwrap());
    ///     USERS.set(&1, &7).await.unwrap();
    ///     assert!(!USERS.missing(&1).await.unwrap());
    /// }).await;
    /// # });
    /// ```
    pub async fn missing<Q>(&self, key: &Q) -> Result<bool, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.missing(key).await
    }

    /// [`Cache::pull`]: the value under `key`, deleting it.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set(&1, &7).await.unwrap();
    ///     assert_eq!(USERS.pull(&1).await.unwrap(), Some(7));
    ///     assert_eq!(USERS.pull(&1).await.unwrap(), None);
    /// }).await;
    /// # });
    /// ```
    pub async fn pull<Q>(&self, key: &Q) -> Result<Option<V>, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.pull(key).await
    }

    /// [`Cache::delete`]: removes the entry under `key`.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set(&1, &7).await.unwrap();
    ///     USERS.delete(&1).await.unwrap();
    ///     assert_eq!(USERS.get(&1).await.unwrap(), None);
    /// }).await;
    /// # });
    /// ```
    pub async fn delete<Q>(&self, key: &Q) -> Result<(), CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.cache()?.delete(key).await
    }

    /// [`Cache::clear`]: removes every entry of the cache, and nothing else.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set(&1, &7).await.unwrap();
    ///     USERS.clear().await.unwrap();
    ///     assert_eq!(USERS.get(&1).await.unwrap(), None);
    /// }).await;
    /// # });
    /// ```
    pub async fn clear(&self) -> Result<(), CacheError> {
        self.cache()?.clear().await
    }
}
