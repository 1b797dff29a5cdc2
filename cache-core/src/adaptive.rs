//! Adaptive caching: the factory decides, from the value it produced, how long to keep it,
//! or not to keep it at all (Bentocache's `ctx.setTtl` / `ctx.skip`, FusionCache's
//! adaptive caching).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;

use crate::cache::Cache;
use crate::engine::Lifetime;
use crate::error::CacheError;
use crate::infallible::infallible_form;
use crate::CacheValue;

/// A factory's value with how long to keep it: what the factory of
/// [`Cache::get_or_set_adaptive`] returns.
///
/// `Adaptive::new(value)` keeps it for the cache's TTL; `.ttl(d)` for `d`; `.forever()`
/// with no expiry; `.no_store()` not at all (the value is still returned to the caller).
///
/// ```
/// use std::time::Duration;
/// use cache_core::Adaptive;
///
/// struct Token { secret: String, expires_in: Duration }
/// let token = Token { secret: "s3cr3t".into(), expires_in: Duration::from_secs(60) };
/// let ttl = token.expires_in;
/// let adaptive = Adaptive::new(token).ttl(ttl);
/// assert_eq!(adaptive.ttl_of(), Some(Some(Duration::from_secs(60))));
/// assert_eq!(adaptive.value().secret, "s3cr3t");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use = "an `Adaptive` is the factory's answer: return it"]
pub struct Adaptive<V> {
    value: V,
    /// `None`: not stored.
    lifetime: Option<Lifetime>,
}

impl<V> Adaptive<V> {
    /// `value`, kept for the cache's TTL (as `get_or_set` keeps it).
    ///
    /// ```
    /// let a = cache_core::Adaptive::new(5u32);
    /// assert_eq!(a.ttl_of(), Some(None));
    /// assert!(a.is_stored());
    /// ```
    pub fn new(value: V) -> Self {
        Adaptive {
            value,
            lifetime: Some(Lifetime::Default),
        }
    }

    /// Keeps the value fresh for `ttl` instead of the cache's TTL (the cache's grace still
    /// applies past it). A zero `ttl` is already expired: the value is not stored.
    ///
    /// ```
    /// use std::time::Duration;
    /// let a = cache_core::Adaptive::new(5u32).ttl(Duration::from_secs(30));
    /// assert_eq!(a.ttl_of(), Some(Some(Duration::from_secs(30))));
    /// assert!(!cache_core::Adaptive::new(5u32).ttl(Duration::ZERO).is_stored());
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.lifetime = (!ttl.is_zero()).then_some(Lifetime::For(ttl));
        self
    }

    /// Keeps the value with no expiry (the size bound may still evict it; remote tiers keep
    /// it for a year), as [`Cache::set_forever`] does.
    ///
    /// ```
    /// let a = cache_core::Adaptive::new(5u32).forever();
    /// assert!(a.is_stored());
    /// ```
    pub fn forever(mut self) -> Self {
        self.lifetime = Some(Lifetime::Forever);
        self
    }

    /// Returns the value to the caller without storing it: the next call runs the factory
    /// again (a partial answer, a value about to expire, a degraded fallback...).
    ///
    /// ```
    /// let a = cache_core::Adaptive::new(5u32).no_store();
    /// assert!(!a.is_stored());
    /// assert_eq!(a.ttl_of(), None);
    /// ```
    pub fn no_store(mut self) -> Self {
        self.lifetime = None;
        self
    }

    /// Whether the value will be stored.
    ///
    /// ```
    /// assert!(cache_core::Adaptive::new("x").is_stored());
    /// ```
    pub fn is_stored(&self) -> bool {
        self.lifetime.is_some()
    }

    /// How long the value will be kept fresh: `None` if it is not stored, `Some(None)` for
    /// the cache's TTL or forever, `Some(Some(ttl))` for its own TTL.
    ///
    /// ```
    /// use std::time::Duration;
    /// let a = cache_core::Adaptive::new(1u8).ttl(Duration::from_millis(10));
    /// assert_eq!(a.ttl_of(), Some(Some(Duration::from_millis(10))));
    /// assert_eq!(cache_core::Adaptive::new(1u8).forever().ttl_of(), Some(None));
    /// ```
    pub fn ttl_of(&self) -> Option<Option<Duration>> {
        self.lifetime.map(|lifetime| match lifetime {
            Lifetime::For(ttl) => Some(ttl),
            _ => None,
        })
    }

    /// The value.
    ///
    /// ```
    /// assert_eq!(*cache_core::Adaptive::new(3u8).value(), 3);
    /// ```
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The value, taken out.
    ///
    /// ```
    /// assert_eq!(cache_core::Adaptive::new(3u8).into_value(), 3);
    /// ```
    pub fn into_value(self) -> V {
        self.value
    }

    fn into_parts(self) -> (V, Option<Lifetime>) {
        (self.value, self.lifetime)
    }
}

impl Cache {
    infallible_form! {
        /// Like [`Cache::get_or_set_detached`] (its factory may finish in the background, so it
        /// owns what it needs), but the factory decides from its value how long to keep
        /// it, or not to keep it (see [`Adaptive`]). Single flight, grace and stats are as for
        /// `get_or_set`.
        ///
        /// ```
        /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
        /// use std::time::Duration;
        /// use cache_core::{Adaptive, CacheManager, StoreBuilder, store::MapTier};
        /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
        /// let tokens = m.cache("tokens").unwrap();
        /// let token: String = tokens
        ///     .get_or_set_adaptive(&"api", || async {
        ///         let (token, expires_in) = ("t-1".to_string(), Duration::from_secs(50));
        ///         Adaptive::new(token).ttl(expires_in) // kept as long as the token is valid
        ///     })
        ///     .await
        ///     .unwrap();
        /// assert_eq!(token, "t-1");
        /// assert!(tokens.has(&"api").await.unwrap());
        /// # });
        /// ```
        get_or_set_adaptive => try_get_or_set_adaptive, Adaptive<V>, + Send + 'static
    }

    /// Like [`Cache::try_get_or_set_detached`], but an `Ok` carries how long to keep the value, or
    /// not to keep it (see [`Adaptive`]). An `Err` is returned and not stored (a stale value
    /// within grace is served in its place).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{Adaptive, CacheError, CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let quotes = m.cache("quotes").unwrap();
    /// let partial: Result<Vec<u32>, CacheError> = quotes
    ///     .try_get_or_set_adaptive(&"eur", || async {
    ///         let (rows, complete) = (vec![1, 2], false);
    ///         let answer = Adaptive::new(rows);
    ///         Ok(if complete { answer } else { answer.no_store() }) // returned, not kept
    ///     })
    ///     .await;
    /// assert_eq!(partial.unwrap(), [1, 2]);
    /// assert!(quotes.missing(&"eur").await.unwrap());
    /// # });
    /// ```
    pub async fn try_get_or_set_adaptive<V, E, F, Fut>(
        &self,
        key: &(impl Serialize + ?Sized),
        factory: F,
    ) -> Result<V, E>
    where
        V: CacheValue,
        E: From<CacheError> + Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Adaptive<V>, E>> + Send + 'static,
    {
        // The cached value is `V`; the factory's decision travels beside it, from the body
        // (where the `Adaptive` is taken apart) to the store step.
        let decided: Arc<OnceLock<Option<Lifetime>>> = Arc::new(OnceLock::new());
        let slot = decided.clone();
        let factory = move || {
            let adaptive = factory();
            async move {
                let (value, lifetime) = adaptive.await?.into_parts();
                // Set once: this body runs once per call.
                let _ = slot.set(lifetime);
                Ok(value)
            }
        };
        let policy = move |_: &V| {
            // Only an `Ok` is stored, and an `Ok` has set the slot.
            decided.get().copied().unwrap_or(Some(Lifetime::Default))
        };
        self.detached_get_or_set(key, policy, factory).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        let a = Adaptive::new(1u8);
        assert_eq!(a.lifetime, Some(Lifetime::Default));
        let a = a.ttl(Duration::from_secs(2));
        assert_eq!(a.lifetime, Some(Lifetime::For(Duration::from_secs(2))));
        assert_eq!(a.clone().forever().lifetime, Some(Lifetime::Forever));
        assert_eq!(a.clone().no_store().lifetime, None);
        assert_eq!(a.ttl(Duration::ZERO).lifetime, None);
    }
}
