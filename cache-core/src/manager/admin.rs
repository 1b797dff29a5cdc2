//! Administration of stores from outside the application: what the `cachet` CLI does.
//!
//! These operations address entries by their *encoded* key text (`42`, `alice`,
//! `42:alice`: what a stored key holds after `{prefix}:{cache}:`), call the shared tier
//! directly rather than through the circuit breaker, and return the tier's own error, so
//! a tool can say exactly what failed. Caches never use them.

use std::collections::BTreeMap;

use super::Store;
use crate::cache::Cache;
use crate::error::{CacheError, TierError, TierErrorKind};
use crate::events::EventKind;
use crate::store::named::StoreInner;
use crate::store::{Invalidation, Scope};

impl Store {
    /// The key prefix of this store: its stored keys are `{prefix}:{cache}:{key}`.
    ///
    /// ```
    /// let manager = cache_core::CacheManager::from_toml_str(
    ///     "prefix = \"shop\"\n[stores.none]\ndriver = \"none\"",
    /// ).unwrap();
    /// assert_eq!(manager.store("none").unwrap().prefix(), "shop");
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Whether this store has a shared tier (an L2, e.g. Redis), that other processes
    /// can see. A store of only an in-process tier keeps its entries inside each process.
    ///
    /// ```
    /// assert!(!cache_core::CacheManager::none().store("none").unwrap().is_shared());
    /// ```
    pub fn is_shared(&self) -> bool {
        self.inner.l2.is_some()
    }

    /// A description of the shared tier (e.g. `redis redis://user@host:6379/0`), never
    /// holding credentials; `None` when the store has none.
    ///
    /// ```
    /// assert_eq!(cache_core::CacheManager::none().store("none").unwrap().describe_shared(), None);
    /// ```
    pub fn describe_shared(&self) -> Option<String> {
        self.inner.l2.as_ref().map(|r| r.tier.describe())
    }

    /// The largest stored value the shared tier reads (`max_value_size`): a read
    /// fetches at most one byte more, and a longer value is a miss. `None` when the
    /// store has no shared tier.
    ///
    /// ```
    /// assert_eq!(cache_core::CacheManager::none().store("none").unwrap().max_value_size(), None);
    /// ```
    pub fn max_value_size(&self) -> Option<usize> {
        self.inner.l2.as_ref().map(|r| r.max_value_size)
    }

    /// Proves the shared tier can be reached now (connecting if need be), with the
    /// tier's own error when it cannot. A store with no shared tier has nothing to reach:
    /// `Ok`. Building a manager never connects, so this is where connections are proven.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cache_core::CacheError> {
    /// let manager = cache_core::CacheManager::from_toml_file("cachet.toml")?;
    /// for name in manager.store_names() {
    ///     match manager.store(&name)?.ping().await {
    ///         Ok(()) => println!("{name}: ok"),
    ///         Err(err) => println!("{name}: FAILED: {err}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self) -> Result<(), CacheError> {
        match &self.inner.l2 {
            Some(remote) => remote
                .tier
                .ping()
                .await
                .map_err(|e| tier_error(&self.inner, e)),
            None => Ok(()),
        }
    }

    /// Deletes every entry of this store, like [`Store::clear`], but past the circuit
    /// breaker and with the shared tier's own error when it fails. The other instances
    /// are told to drop their local copies.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// cache_core::CacheManager::none().store("none").unwrap().purge().await.unwrap();
    /// # });
    /// ```
    pub async fn purge(&self) -> Result<(), CacheError> {
        purge_scope(&self.inner, None, Scope::new(self.inner.prefix.clone())).await
    }

    /// Deletes the shared tier's expired entries that its server still holds (a
    /// database's rows past `expires_at`), in bounded batches, past the circuit breaker
    /// and with the tier's own error when it fails; how many went. Redis expires keys
    /// itself: 0.
    ///
    /// An error when the store has no shared tier.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cache_core::CacheError> {
    /// let manager = cache_core::CacheManager::from_toml_file("cachet.toml")?;
    /// let pruned = manager.store("db")?.prune().await?;
    /// println!("{pruned} expired rows deleted");
    /// # Ok(()) }
    /// ```
    pub async fn prune(&self) -> Result<u64, CacheError> {
        let store = &self.inner;
        let remote = store.l2.as_ref().ok_or_else(|| not_shared(store))?;
        remote.tier.prune().await.map_err(|e| tier_error(store, e))
    }

    /// How many keys each cache of this store holds in the shared tier, by cache name
    /// (as the application names it: stored keys escape reserved characters such as `:`
    /// in names, and this reads them back; namespaces count with their cache). Scans the store's prefix in bounded steps (Redis: `SCAN MATCH`); counts
    /// are a snapshot of a moving set, so approximate while entries come and go.
    ///
    /// An error when the store has no shared tier: in-process entries cannot be counted
    /// from another process.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cache_core::CacheError> {
    /// let manager = cache_core::CacheManager::from_toml_file("cachet.toml")?;
    /// for (cache, keys) in manager.store("redis")?.key_counts().await? {
    ///     println!("{cache}: {keys}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn key_counts(&self) -> Result<BTreeMap<String, u64>, CacheError> {
        let store = &self.inner;
        let remote = store.l2.as_ref().ok_or_else(|| not_shared(store))?;
        let scope = Scope::new(store.prefix.clone());
        let mut counts = BTreeMap::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = remote
                .tier
                .scan_scope(&scope, cursor)
                .await
                .map_err(|e| tier_error(store, e))?;
            for key in &keys {
                if let Some(cache) = cache_segment(&store.prefix, key) {
                    *counts.entry(cache).or_insert(0) += 1;
                }
            }
            if next == 0 {
                return Ok(counts);
            }
            cursor = next;
        }
    }
}

impl Cache {
    /// The stored key of an already-encoded key text: `{prefix}:{cache}:{key}`
    /// (`{prefix}:{cache}#{ns}:{key}` in a namespace). Key text is what the key encoding
    /// produces (`42` for `42u64`, `alice`, `42:alice` for a tuple), so administration
    /// tools can take it from a command line.
    ///
    /// ```
    /// let manager = cache_core::CacheManager::from_toml_str(
    ///     "prefix = \"shop\"\n[stores.none]\ndriver = \"none\"",
    /// ).unwrap();
    /// let users = manager.cache("users").unwrap();
    /// assert_eq!(users.stored_key_for("42"), "shop:users:42");
    /// assert_eq!(users.namespace("admins").stored_key_for("7"), "shop:users#admins:7");
    /// ```
    pub fn stored_key_for(&self, key_text: &str) -> String {
        self.engine.stored_key_of_encoded(key_text)
    }

    /// The bytes stored in the shared tier under an already-encoded key text (see
    /// [`Cache::stored_key_for`]): the envelope, readable with
    /// [`crate::codec::read_meta`] without knowing the value's type. `None` when there
    /// is no entry. At most [`Store::max_value_size`] + 1 bytes are read, so a longer
    /// value comes back cut there. An error when the tier fails or the store has no
    /// shared tier.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cache_core::CacheError> {
    /// use cache_core::codec::{read_meta, DEFAULT_MAX_VALUE_SIZE};
    /// let manager = cache_core::CacheManager::from_toml_file("cachet.toml")?;
    /// let users = manager.store("redis")?.cache("users");
    /// if let Some(bytes) = users.read_raw("42").await? {
    ///     println!("{} bytes: {:?}", bytes.len(), read_meta(&bytes, DEFAULT_MAX_VALUE_SIZE));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_raw(&self, key_text: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let store = &self.engine.inner.store;
        let remote = store.l2.as_ref().ok_or_else(|| not_shared(store))?;
        remote
            .tier
            .get(&self.stored_key_for(key_text))
            .await
            .map_err(|e| tier_error(store, e))
    }

    /// Deletes the entry under an already-encoded key text (see
    /// [`Cache::stored_key_for`]) from every tier and tells the other instances, with
    /// the shared tier's own error when it fails.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.delete_raw("42").await.unwrap();
    /// # });
    /// ```
    pub async fn delete_raw(&self, key_text: &str) -> Result<(), CacheError> {
        let store = &self.engine.inner.store;
        let keys = [self.stored_key_for(key_text)];
        if let Some(l1) = &store.l1 {
            l1.remove(&self.engine.l1_key(&keys[0]));
        }
        self.engine.tell(EventKind::Delete, Some(&keys[0]));
        if let Some(remote) = &store.l2 {
            remote
                .tier
                .delete_many(&keys)
                .await
                .map_err(|e| tier_error(store, e))?;
        }
        store.announce(Invalidation::Keys(keys.to_vec())).await;
        Ok(())
    }

    /// Deletes every entry of this cache (or namespace), like [`Cache::clear`], but past
    /// the circuit breaker and with the shared tier's own error when it fails.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.namespace("admins").purge().await.unwrap();
    /// # });
    /// ```
    pub async fn purge(&self) -> Result<(), CacheError> {
        purge_scope(
            &self.engine.inner.store,
            Some(self.name()),
            self.engine.scope(),
        )
        .await
    }
}

/// Deletes a scope from every tier of a store (of `cache`, or the whole store), tells the
/// listeners (`Clear`) and then the other instances.
async fn purge_scope(
    store: &StoreInner,
    cache: Option<&str>,
    scope: Scope,
) -> Result<(), CacheError> {
    if let Some(l1) = &store.l1 {
        l1.remove_scope(&scope);
    }
    // As a cache's own clear tells it: once this instance's copies are gone.
    store
        .events
        .tell(EventKind::Clear, &store.name, cache, None);
    if let Some(remote) = &store.l2 {
        remote
            .tier
            .clear_scope(&scope)
            .await
            .map_err(|e| tier_error(store, e))?;
    }
    store.announce(Invalidation::Scope(scope)).await;
    Ok(())
}

/// The cache name in a stored key of the store with this prefix (see `layout.rs`).
fn cache_segment(prefix: &str, key: &str) -> Option<String> {
    crate::layout::cache_of(prefix, key)
}

fn tier_error(store: &StoreInner, source: TierError) -> CacheError {
    CacheError::Tier {
        store: store.name.clone(),
        source,
    }
}

fn not_shared(store: &StoreInner) -> CacheError {
    tier_error(
        store,
        TierError::with_kind(
            "the store has no shared tier: its entries live inside each process",
            TierErrorKind::Other,
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::MapTier;
    use crate::{CacheManager, StoreBuilder};

    #[test]
    fn cache_segment_stops_at_a_key_or_a_namespace() {
        let seg = |key| cache_segment("app", key);
        assert_eq!(seg("app:users:42").as_deref(), Some("users"));
        assert_eq!(seg("app:users#admins:7").as_deref(), Some("users"));
        assert_eq!(seg("app:users:42:alice").as_deref(), Some("users"));
        assert_eq!(seg("apple:users:1"), None);
        assert_eq!(seg("app:__bus"), None);
        // names holding reserved characters are escaped in stored keys, and read back
        assert_eq!(seg("app:orders\\:eu:1").as_deref(), Some("orders:eu"));
        assert_eq!(seg("app:a\\#b#ns:1").as_deref(), Some("a#b"));
        assert_eq!(seg("app:c\\:\\\\tmp:1").as_deref(), Some("c:\\tmp"));
    }

    #[tokio::test]
    async fn in_process_stores_are_not_shared() {
        let manager = CacheManager::builder()
            .store("mem", StoreBuilder::new().l1(MapTier::new()))
            .build()
            .unwrap();
        let store = manager.store("mem").unwrap();
        assert!(!store.is_shared());
        assert!(store.ping().await.is_ok());
        let err = store.key_counts().await.unwrap_err();
        assert!(err.to_string().contains("no shared tier"), "{err}");
        let users = store.cache("users");
        assert!(users.read_raw("1").await.is_err());
        users.set(&1u64, &true).await.unwrap();
        users.delete_raw("1").await.unwrap();
        assert_eq!(users.get::<bool>(&1u64).await.unwrap(), None);
        users.set(&2u64, &true).await.unwrap();
        store.purge().await.unwrap();
        assert_eq!(users.get::<bool>(&2u64).await.unwrap(), None);
    }
}
