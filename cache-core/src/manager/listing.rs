//! Which caches a manager knows: what an administration endpoint lists (Spring's
//! `/actuator/caches`).
//!
//! A manager makes caches on demand, so "every cache" is every name something has told it
//! of: `cache_names`, a `[caches.NAME]` section, an annotated function, or a handle made
//! so far (in any store).

use std::collections::BTreeSet;

use super::{read, CacheManager};
use crate::cache::Cache;
use crate::manager::declarations::declared_caches;

impl CacheManager {
    /// Every cache this manager knows, sorted by name then store: the names `cache_names`
    /// allows, those with a `[caches.NAME]` section, those annotated functions declare,
    /// and every cache handle made so far in any store (a name used in two stores through
    /// [`CacheManager::store`] is listed once per store).
    ///
    /// ```
    /// let manager = cache_core::CacheManager::from_toml_str(
    ///     "[stores.none]\ndriver = \"none\"\n[caches.users]\nttl = \"5m\"",
    /// ).unwrap();
    /// manager.cache("orders").unwrap();
    /// let names: Vec<String> = manager.caches().iter().map(|c| c.name().to_owned()).collect();
    /// assert!(names.contains(&"users".to_string()) && names.contains(&"orders".to_string()));
    /// ```
    pub fn caches(&self) -> Vec<Cache> {
        let mut caches: Vec<Cache> = self
            .named_caches()
            .iter()
            .filter_map(|name| self.cache(name).ok())
            .collect();
        caches.extend(read(&self.inner.caches).values().cloned());
        caches.sort_by(|a, b| (a.name(), a.store_name()).cmp(&(b.name(), b.store_name())));
        caches.dedup_by(|a, b| a.name() == b.name() && a.store_name() == b.store_name());
        caches
    }

    /// Whether this manager knows a cache of that name (see [`CacheManager::caches`]):
    /// unlike [`CacheManager::cache`], asking never makes one.
    ///
    /// ```
    /// let manager = cache_core::CacheManager::none();
    /// assert!(!manager.knows_cache("users"));
    /// manager.cache("users").unwrap();
    /// assert!(manager.knows_cache("users"));
    /// ```
    pub fn knows_cache(&self, name: &str) -> bool {
        if let Some(allowed) = &self.inner.cache_names {
            // Only these can be made at all.
            return allowed.iter().any(|n| n == name);
        }
        self.inner.caches_config.contains_key(name)
            || read(&self.inner.caches).keys().any(|(_, n)| n == name)
            || declared_caches().iter().any(|d| d.cache == name)
    }

    /// The names configuration and annotations tell of (not the handles made so far).
    fn named_caches(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.inner.caches_config.keys().cloned().collect();
        names.extend(declared_caches().into_iter().map(|d| d.cache.to_owned()));
        if let Some(allowed) = &self.inner.cache_names {
            names.retain(|n| allowed.contains(n));
            names.extend(allowed.iter().cloned());
        }
        names
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::CacheManager;

    fn names(manager: &CacheManager) -> Vec<(String, String)> {
        manager
            .caches()
            .iter()
            .map(|c| (c.name().to_owned(), c.store_name().to_owned()))
            .collect()
    }

    #[test]
    fn lists_configured_allowed_and_made_caches_once_per_store() {
        let manager = CacheManager::from_toml_str(
            "default_store = \"a\"\ncache_names = [\"users\", \"orders\"]\n\
             [stores.a]\ndriver = \"none\"\n[stores.b]\ndriver = \"none\"\n\
             [caches.orders]\nstore = \"b\"",
        )
        .unwrap();
        assert!(manager.knows_cache("users"));
        assert!(!manager.knows_cache("carts"));
        manager.store("b").unwrap().cache("users");
        manager.cache("users").unwrap();
        assert_eq!(
            names(&manager),
            [("orders", "b"), ("users", "a"), ("users", "b")]
                .map(|(n, s)| (n.to_owned(), s.to_owned()))
        );
    }

    #[test]
    fn without_cache_names_a_cache_is_known_once_made() {
        let manager = CacheManager::none();
        assert!(!manager.knows_cache("carts"));
        assert!(!names(&manager).contains(&("carts".into(), "none".into())));
        manager.cache("carts").unwrap();
        assert!(manager.knows_cache("carts"));
        assert!(names(&manager).contains(&("carts".into(), "none".into())));
    }
}
