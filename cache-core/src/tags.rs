//! Tags: entries written with tags can be deleted by tag, in every tier and on every
//! instance (Bentocache's `tags` / `deleteByTag`).
//!
//! # Design: an index, not lazy invalidation
//!
//! Each tag of a cache (or namespace) has an index listing the stored keys written with
//! it, and `delete_by_tag` deletes exactly those keys:
//!
//! * in the shared tier, the index is a Redis set under `{base}:=tag:{tag}` (inside the
//!   cache's own key space, so the ACL pattern `~{prefix}:*` covers it and `clear()`
//!   removes it; no encoded key starts with `=`, so it never collides with an entry). A
//!   tagged write stores the value and adds the key to its sets in one transaction (on a
//!   Redis Cluster, where they hash to different slots, in three ordered steps instead: see
//!   the redis driver's `tags` module), and raises each set's TTL to the entry's (never
//!   lowers it), so a set outlives what it lists and still expires;
//! * in the local tier, the store keeps a tag → keys map, pruned of entries the tier no
//!   longer holds as it grows;
//! * `delete_by_tag` reads the sets' union, deletes those keys (and only those members
//!   from the sets, so a write racing with it stays listed), and announces the keys on the
//!   bus as any delete does: other instances drop them from their L1 with the message
//!   kind every version understands, and no value ever travels.
//!
//! Reads never look at tags: a hit on a tagged entry costs what a hit on an untagged one
//! does, and a tagged write costs no extra round trip (the set updates ride in the same
//! transaction as the `SET`). Lazy invalidation (Bentocache's per-tag timestamps) would
//! instead put a timestamp check on every read of a tagged entry.
//!
//! An index may list a key that was overwritten since without the tag: deleting by tag
//! then evicts it too. Evicting more than asked is always safe for a cache; evicting less
//! never happens for writes that completed before `delete_by_tag` started.

use std::sync::Arc;

use crate::cache::Cache;
use crate::error::{CacheError, TierError};
use crate::events::EventKind;
use crate::layout::is_entry_of;
use crate::stats::Event;
use crate::store::replay::Pending;
use crate::store::tag_index::Tags;
use crate::store::{Invalidation, L1KeyRef};

impl Cache {
    /// A view of this cache whose writes carry `tags` (added to the view's own, if any),
    /// so that [`Cache::delete_by_tag`] can delete them later. Reads are the same as the
    /// cache's; the view is as cheap as any handle, and namespaces made from it keep its
    /// tags. Any string is a tag; repeated ones count once.
    ///
    /// `#[cacheable("products", tags = ["catalog"])]` writes through such a view.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let products = m.cache("products").unwrap();
    /// let catalog = products.tagged(["catalog"]);
    /// assert_eq!(catalog.tags().collect::<Vec<_>>(), ["catalog"]);
    /// catalog.set(&1u64, &"chair".to_string()).await.unwrap();
    /// products.set(&2u64, &"desk".to_string()).await.unwrap();
    /// // reads see every entry, whichever handle wrote it
    /// assert_eq!(catalog.get::<String>(&2u64).await.unwrap().as_deref(), Some("desk"));
    /// products.delete_by_tag("catalog").await.unwrap();
    /// assert_eq!(products.get::<String>(&1u64).await.unwrap(), None);
    /// assert_eq!(products.get::<String>(&2u64).await.unwrap().as_deref(), Some("desk"));
    /// # });
    /// ```
    pub fn tagged<I>(&self, tags: I) -> Cache
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let added: Vec<I::Item> = tags.into_iter().collect();
        if added.is_empty() {
            return self.clone();
        }
        let names = self
            .engine
            .inner
            .tags
            .names
            .iter()
            .map(String::as_str)
            .chain(added.iter().map(AsRef::as_ref));
        let tags = Tags::new(&self.engine.inner.base, names);
        let inner = &self.engine.inner;
        let mut view = Cache {
            engine: self.engine.view(inner.base.clone(), inner.settings.clone()),
        };
        // `view` was made just above: its `Arc` has no other owner yet, so this always applies.
        if let Some(inner) = Arc::get_mut(&mut view.engine.inner) {
            inner.tags = tags;
        }
        view
    }

    /// The tags this handle's writes carry (none for a cache from the manager).
    ///
    /// ```
    /// let products = cache_core::CacheManager::none().cache("products").unwrap();
    /// assert_eq!(products.tags().count(), 0);
    /// let view = products.tagged(["sale", "catalog", "sale"]);
    /// assert_eq!(view.tags().collect::<Vec<_>>(), ["sale", "catalog"]);
    /// ```
    pub fn tags(&self) -> impl Iterator<Item = &str> + '_ {
        self.engine.inner.tags.names.iter().map(String::as_str)
    }

    /// Deletes every entry of this cache (or namespace) written with `tag`, from every
    /// tier, and tells the other instances to drop them from their local tier.
    ///
    /// Tags belong to one cache and namespace: `users.delete_by_tag("x")` never touches
    /// `products`, nor `users.namespace("admins")`. An error means the shared tier could
    /// not be reached; the local tier has been cleaned anyway, and the call can be retried.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let products = m.cache("products").unwrap();
    /// products.tagged(["sale"]).set(&1u64, &10u32).await.unwrap();
    /// products.tagged(["new"]).set(&2u64, &20u32).await.unwrap();
    /// products.delete_by_tag("sale").await.unwrap();
    /// assert!(products.missing(&1u64).await.unwrap());
    /// assert!(products.has(&2u64).await.unwrap());
    /// # });
    /// ```
    pub async fn delete_by_tag(&self, tag: &str) -> Result<(), CacheError> {
        self.delete_by_tags(&[tag]).await
    }

    /// Deletes every entry of this cache (or namespace) written with any of `tags`; see
    /// [`Cache::delete_by_tag`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let products = m.cache("products").unwrap();
    /// products.tagged(["sale"]).set(&1u64, &10u32).await.unwrap();
    /// products.tagged(["new"]).set(&2u64, &20u32).await.unwrap();
    /// products.delete_by_tags(&["sale", "new"]).await.unwrap();
    /// assert!(products.missing(&1u64).await.unwrap() && products.missing(&2u64).await.unwrap());
    /// # });
    /// ```
    pub async fn delete_by_tags<T: AsRef<str>>(&self, tags: &[T]) -> Result<(), CacheError> {
        let store = &self.engine.inner.store;
        let base = &self.engine.inner.base;
        let tag_keys = Tags::new(base, tags.iter().map(AsRef::as_ref)).keys;
        if tag_keys.is_empty() || self.engine.is_noop() {
            return Ok(());
        }
        let mut keys = store.tag_index.take(&tag_keys);
        let drop_local = |keys: &[String]| {
            if let Some(l1) = &store.l1 {
                keys.iter().for_each(|key| {
                    store
                        .versions
                        .change(key, || l1.remove(&L1KeyRef::parse(key)));
                });
            }
        };
        drop_local(&keys);
        if let Some(remote) = &store.l2 {
            let failed = |what: &str| {
                self.engine.count(Event::Error);
                CacheError::Tier {
                    store: store.name.clone(),
                    source: TierError::new(format!(
                        "cannot {what} the tagged entries of cache `{}` in {}",
                        self.name(),
                        remote.tier.describe()
                    )),
                }
            };
            let listed = match remote.tagged_keys(&store.name, &tag_keys).await {
                Ok(listed) => listed,
                Err(_) => {
                    // Which entries carry the tags only L2 knows (the other instances may
                    // hold tagged entries they read from it): every copy of this cache's
                    // entries goes, here and on the other instances.
                    if let Some(l1) = &store.l1 {
                        store
                            .versions
                            .change_all(|| l1.remove_scope(&self.engine.scope()));
                    }
                    store
                        .announce(Invalidation::Scope(self.engine.scope()))
                        .await;
                    // Deleted by tag in the L2 once it is back (`replay.rs`).
                    store.defer(Pending::Tags {
                        scope: self.engine.scope(),
                        tag_keys: tag_keys.clone(),
                    });
                    return Err(failed("list"));
                }
            };
            // Only this cache's own entries, whatever else a set may have been given.
            keys.extend(listed.into_iter().filter(|key| is_entry_of(base, key)));
            keys.sort_unstable();
            keys.dedup();
            drop_local(&keys);
            if remote
                .delete_tagged(&store.name, &keys, &tag_keys)
                .await
                .is_err()
            {
                // The other instances' L1 copies go whether or not L2 took the delete;
                // the L2 deletes by tag once it is back (`replay.rs`).
                store.defer(Pending::Tags {
                    scope: self.engine.scope(),
                    tag_keys: tag_keys.clone(),
                });
                if !keys.is_empty() {
                    store.announce(Invalidation::Keys(keys)).await;
                }
                return Err(failed("delete"));
            }
            // A lookup that read L2 before the delete may have backfilled an old value.
            drop_local(&keys);
        }
        self.engine
            .inner
            .stats
            .record(Event::Eviction, keys.len() as u64);
        for key in &keys {
            self.engine.tell(EventKind::Delete, Some(key));
        }
        if !keys.is_empty() {
            store.announce(Invalidation::Keys(keys)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::layout::tag_key;

    #[test]
    fn tag_keys_live_in_the_cache_key_space_and_never_collide_with_entries() {
        assert_eq!(tag_key("app:products", "sale"), "app:products:=tag:sale");
        assert_eq!(
            tag_key("app:products#eu", "a:b"),
            r"app:products#eu:=tag:a\:b"
        );
        // a key `=tag:sale` is escaped, so it is an entry and not the tag set
        let mut entry = "app:products:".to_string();
        crate::key::encode_key_into("=tag:sale", &mut entry).unwrap();
        assert_ne!(entry, tag_key("app:products", "sale"));
        assert!(crate::store::Scope::new("app:products").contains(&tag_key("app:products", "x")));
    }

    #[test]
    fn only_direct_entries_belong_to_a_base() {
        assert!(is_entry_of("app:p", "app:p:42"));
        assert!(!is_entry_of("app:p", "app:p#ns:42"));
        assert!(!is_entry_of("app:p", "app:p2:42"));
        assert!(!is_entry_of("app:p", "app:p:=tag:x"));
        assert!(!is_entry_of("app:p", "other:p:42"));
    }
}
