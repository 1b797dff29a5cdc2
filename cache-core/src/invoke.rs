//! One call of a cached function: look up, single flight, run, store. Shared by the
//! annotations and `get_or_set`, for async and (through [`crate::blocking`]) plain fns.

use std::future::Future;

use crate::cache::{Cache, Lifetime, Lookup};
use crate::private::Shape;
use crate::CacheValue;

/// Answers from the first cache holding a fresh value; otherwise runs `body` once per key
/// across concurrent callers and stores its cacheable outcome in every cache.
///
/// `caches` and `keys` are parallel: `keys[i]` is the stored key in `caches[i]`.
pub(crate) async fn cached_call<S, F>(
    shape: S,
    caches: &[Cache],
    keys: &[String],
    lifetime: Lifetime,
    unless: impl FnOnce(&S::Value) -> bool,
    body: F,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    F: Future<Output = S::Output>,
{
    let Some(first) = caches
        .first()
        .filter(|_| !caches.iter().all(Cache::is_noop))
    else {
        caches.iter().for_each(|c| c.count(|s| &s.misses));
        return body.await;
    };
    if let Some(value) = find_fresh::<S::Value>(caches, keys).await {
        return shape.rebuild(value);
    }
    let _flight = first.inner.store.flights.lock(&keys[0]).await;
    // Whoever held the gate before may have stored the value meanwhile.
    if let Some(value) = find_fresh::<S::Value>(caches, keys).await {
        return shape.rebuild(value);
    }
    caches.iter().for_each(|c| c.count(|s| &s.misses));
    let output = body.await;
    if let Some(value) = shape.cached(&output) {
        let null_refused = shape.is_null(value) && !first.settings().allow_null_values;
        if !null_refused && !unless(value) {
            store_all(caches, keys, value, lifetime).await;
        }
    }
    output
}

/// Runs `body`, then stores its cacheable outcome under the key `key_of` computes from it.
pub(crate) async fn put_call<S, F>(
    shape: S,
    caches: &[Cache],
    lifetime: Lifetime,
    key_of: impl FnOnce(&S::Value) -> Option<String>,
    unless: impl FnOnce(&S::Value) -> bool,
    body: F,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    F: Future<Output = S::Output>,
{
    let output = body.await;
    let Some(value) = shape.cached(&output) else {
        return output;
    };
    let Some(first) = caches.first() else {
        return output;
    };
    if shape.is_null(value) && !first.settings().allow_null_values || unless(value) {
        return output;
    }
    if let Some(encoded) = key_of(value) {
        let keys: Vec<String> = caches
            .iter()
            .map(|c| c.stored_key_of_encoded(&encoded))
            .collect();
        store_all(caches, &keys, value, lifetime).await;
    }
    output
}

async fn find_fresh<V: CacheValue>(caches: &[Cache], keys: &[String]) -> Option<V> {
    for (cache, key) in caches.iter().zip(keys) {
        if let Lookup::Fresh(value) = cache.lookup::<V>(key).await {
            return Some(value);
        }
    }
    None
}

async fn store_all<V: CacheValue>(
    caches: &[Cache],
    keys: &[String],
    value: &V,
    lifetime: Lifetime,
) {
    for (cache, key) in caches.iter().zip(keys) {
        cache.write(key, value.clone(), lifetime).await;
    }
}

/// What an eviction removes.
pub(crate) enum EvictTarget {
    /// One encoded key, in every cache.
    Key(String),
    /// Every entry of every cache.
    All,
}

/// Removes `target` from every cache.
pub(crate) async fn evict_all(caches: &[Cache], target: &EvictTarget) {
    for cache in caches {
        match target {
            EvictTarget::Key(encoded) => {
                cache.remove(&[cache.stored_key_of_encoded(encoded)]).await
            }
            EvictTarget::All => cache.remove_all().await,
        }
    }
}
