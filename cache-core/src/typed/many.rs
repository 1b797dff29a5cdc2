//! A typed cache's batch operations: [`Cache`]'s `get_many`, `set_many`, `delete_many` and
//! `get_or_set_many`, with the declaration's key and value types.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use serde::Serialize;

use super::TypedCache;
#[cfg(doc)]
use crate::cache::Cache;
use crate::error::CacheError;
use crate::value::CacheValue;

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
