//! Typed caches: a cache declared once with its key and value types (`cachet::caches!`),
//! so annotations naming it are checked by the compiler and programmatic calls need no
//! turbofish.
//!
//! A [`TypedCache`] holds no state: each call resolves its cache through the manager in
//! effect (the global one, or the scoped one inside `CacheManager::scope` or
//! `testing::with_manager`), exactly as a string name does, then applies the declaration's
//! options and tags ([`CacheDeclaration`]). `check` holds the traits generated code checks
//! keys and values with.

pub(crate) mod check;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;

use crate::cache::Cache;
use crate::declaration::CacheDeclaration;
use crate::error::CacheError;
use crate::value::CacheValue;

/// A cache declared with its key type `K` and value type `V`: `cachet::caches!` makes one
/// `static` per declaration. Its methods are [`Cache`]'s, typed: a key is anything `K`
/// borrows as (`&str` for a `String` key, as `HashMap::get` takes), a value is a `V`.
///
/// ```
/// use cache_core::{CacheDeclaration, CacheManager, TypedCache};
///
/// static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new(
///     "users", "USERS", module_path!(), file!(), line!(), "u64", "String",
/// ));
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let memory = || CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
/// cache_core::testing::with_manager(memory(), async {
///     USERS.set(&42, &"Ada".to_string()).await.unwrap();
///     let user = USERS.get(&42).await.unwrap();      // no turbofish: an `Option<String>`
///     assert_eq!(user.as_deref(), Some("Ada"));
/// })
/// .await;
/// # });
/// ```
pub struct TypedCache<K: ?Sized, V> {
    declaration: CacheDeclaration,
    types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V> std::fmt::Debug for TypedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypedCache")
            .field(&self.declaration)
            .finish()
    }
}

impl<K: ?Sized, V> TypedCache<K, V> {
    /// The typed cache of a declaration (`cachet::caches!` writes this).
    ///
    /// ```
    /// use cache_core::{CacheDeclaration, TypedCache};
    /// static ORDERS: TypedCache<(u64, String), u32> = TypedCache::new(CacheDeclaration::new(
    ///     "orders", "ORDERS", module_path!(), file!(), line!(), "(u64, String)", "u32",
    /// ));
    /// assert_eq!(ORDERS.name(), "orders");
    /// ```
    pub const fn new(declaration: CacheDeclaration) -> Self {
        Self {
            declaration,
            types: PhantomData,
        }
    }

    /// The cache's name (what configuration maps to a store).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "String"));
    /// assert_eq!(USERS.name(), "users");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.declaration.name
    }

    /// The declaration: where it is, its types as written, its options and tags.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "String"));
    /// assert_eq!(USERS.declaration().ident, "USERS");
    /// ```
    pub const fn declaration(&self) -> &CacheDeclaration {
        &self.declaration
    }

    /// The cache in the manager in effect, as a view with the declaration's options and
    /// tags: a plain [`Cache`], for what the typed methods do not cover.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "String"));
    /// let users = cache_core::testing::with_manager_sync(cache_core::CacheManager::none(), || USERS.cache()).unwrap();
    /// assert_eq!(users.name(), "users");
    /// ```
    pub fn cache(&self) -> Result<Cache, CacheError> {
        crate::global::cache(self.declaration.name).map(|cache| view_of(&self.declaration, cache))
    }
}

/// `cache` with a declaration's options and tags.
pub(crate) fn view_of(declaration: &CacheDeclaration, cache: Cache) -> Cache {
    let cache = if declaration.options == crate::options::CacheOptions::new() {
        cache
    } else {
        cache.with_options(declaration.options)
    };
    cache.tagged(declaration.tags)
}

impl<K, V> TypedCache<K, V>
where
    K: Serialize + ?Sized,
    V: CacheValue,
{
    /// [`Cache::get`]: the value under `key`, if present (fresh or within grace).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<String, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "String", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// cache_core::testing::with_manager(cache_core::CacheManager::none(), async {
    ///     assert_eq!(USERS.get("ada").await.unwrap(), None);   // a `&str` for a `String` key
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

    /// [`Cache::get_fresh`]: the value under `key`, if present and fresh.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// cache_core::testing::with_manager(cache_core::CacheManager::none(), async {
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

    /// [`Cache::get_or_set`]: the cached value, or `factory`'s (stored), with single flight.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     assert_eq!(USERS.get_or_set(&1, || async { 7 }).await.unwrap(), 7);
    ///     assert_eq!(USERS.get_or_set(&1, || async { 8 }).await.unwrap(), 7);
    /// }).await;
    /// # });
    /// ```
    pub async fn get_or_set<Q, F, Fut>(&self, key: &Q, factory: F) -> Result<V, CacheError>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.cache()?.get_or_set(key, factory).await
    }

    /// [`Cache::try_get_or_set`]: as [`TypedCache::get_or_set`] with a fallible factory
    /// (an `Err` is returned, not stored; within grace, the stale value is returned).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, CacheError, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     let v = USERS.try_get_or_set(&1, || async { Ok::<_, CacheError>(7) }).await;
    ///     assert_eq!(v.unwrap(), 7);
    /// }).await;
    /// # });
    /// ```
    pub async fn try_get_or_set<Q, E, F, Fut>(&self, key: &Q, factory: F) -> Result<V, E>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        E: From<CacheError> + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        self.cache()?.try_get_or_set(key, factory).await
    }

    /// [`Cache::has`]: whether a value is under `key`.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// cache_core::testing::with_manager(cache_core::CacheManager::none(), async {
    ///     assert!(!USERS.has(&1).await.unwrap());
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

    /// [`Cache::clear`]: removes every entry of the cache.
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

impl<K, V> TypedCache<K, V>
where
    K: Serialize + Eq + Hash + Clone,
    V: CacheValue,
{
    /// [`Cache::get_many`]: the values under `keys` that are cached.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set_many(&[(1, 10), (2, 20)]).await.unwrap();
    ///     let found = USERS.get_many(&[1, 3]).await.unwrap();
    ///     assert_eq!(found.len(), 1);
    ///     assert_eq!(found[&1], 10);
    /// }).await;
    /// # });
    /// ```
    pub async fn get_many(&self, keys: &[K]) -> Result<HashMap<K, V>, CacheError> {
        self.cache()?.get_many(keys).await
    }

    /// [`Cache::set_many`]: stores every entry.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set_many(&[(1, 10)]).await.unwrap();
    ///     assert_eq!(USERS.get(&1).await.unwrap(), Some(10));
    /// }).await;
    /// # });
    /// ```
    pub async fn set_many(&self, entries: &[(K, V)]) -> Result<(), CacheError> {
        self.cache()?.set_many(entries).await
    }

    /// [`Cache::delete_many`]: removes the entries under `keys`.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set_many(&[(1, 10), (2, 20)]).await.unwrap();
    ///     USERS.delete_many(&[1, 2]).await.unwrap();
    ///     assert!(USERS.get_many(&[1, 2]).await.unwrap().is_empty());
    /// }).await;
    /// # });
    /// ```
    pub async fn delete_many(&self, keys: &[K]) -> Result<(), CacheError> {
        self.cache()?.delete_many(keys).await
    }

    /// [`Cache::get_or_set_many`]: the cached values, and `factory`'s for the missing keys
    /// (called once, with only those), stored one entry per key.
    ///
    /// ```
    /// # use std::collections::HashMap;
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     USERS.set(&1, &10).await.unwrap();
    ///     let all = USERS
    ///         .get_or_set_many(&[1, 2], |missing| async move {
    ///             assert_eq!(missing, [2]);
    ///             missing.into_iter().map(|k| (k, k as u32 * 10)).collect::<HashMap<_, _>>()
    ///         })
    ///         .await
    ///         .unwrap();
    ///     assert_eq!((all[&1], all[&2]), (10, 20));
    /// }).await;
    /// # });
    /// ```
    pub async fn get_or_set_many<F, Fut>(
        &self,
        keys: &[K],
        factory: F,
    ) -> Result<HashMap<K, V>, CacheError>
    where
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = HashMap<K, V>>,
    {
        self.cache()?.get_or_set_many(keys, factory).await
    }

    /// [`Cache::try_get_or_set_many`]: as [`TypedCache::get_or_set_many`] with a fallible
    /// factory.
    ///
    /// ```
    /// # use std::collections::HashMap;
    /// # use cache_core::{CacheDeclaration, CacheError, TypedCache};
    /// # static USERS: TypedCache<u64, u32> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "u32"));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let memory = || cache_core::CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
    /// cache_core::testing::with_manager(memory(), async {
    ///     let all = USERS
    ///         .try_get_or_set_many(&[1], |missing| async move {
    ///             Ok::<_, CacheError>(missing.into_iter().map(|k| (k, 1)).collect::<HashMap<_, _>>())
    ///         })
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(all[&1], 1);
    /// }).await;
    /// # });
    /// ```
    pub async fn try_get_or_set_many<E, F, Fut>(
        &self,
        keys: &[K],
        factory: F,
    ) -> Result<HashMap<K, V>, E>
    where
        E: From<CacheError>,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, E>>,
    {
        self.cache()?.try_get_or_set_many(keys, factory).await
    }
}
