//! One call of a cached function: look up, single flight, run, store. Shared by the
//! annotations and `get_or_set`, for async and (through [`crate::blocking`]) plain fns.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt;
use tracing::Instrument;

use crate::cache::{Cache, Lifetime, Lookup};
use crate::private::Shape;
use crate::stats::Event;
use crate::store::lock;
use crate::CacheValue;

/// Answers from the first cache holding a fresh value; otherwise runs `body` once per key
/// across concurrent callers and stores its cacheable outcome in every cache.
///
/// `caches` and `keys` are parallel: `keys[i]` is the stored key in `caches[i]`.
/// `policy` decides how long the function's value is kept, or that it is not stored.
pub(crate) async fn cached_call<S, F>(
    shape: S,
    caches: &[Cache],
    keys: &[String],
    policy: impl FnOnce(&S::Value) -> Option<Lifetime>,
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
        caches.iter().for_each(|c| c.count(Event::Miss));
        return body.await;
    };
    let mut stale = match find::<S::Value>(caches, keys).await {
        Found::Fresh(value) => return shape.rebuild(value),
        Found::Stale(value, keep_until) => Some((value, keep_until)),
        Found::Nothing => None,
    };
    let _flight = first.inner.store.flights.lock(&keys[0]).await;
    // Whoever held the gate before may have stored the value meanwhile.
    match find::<S::Value>(caches, keys).await {
        Found::Fresh(value) => return shape.rebuild(value),
        Found::Stale(value, keep_until) => stale = Some((value, keep_until)),
        Found::Nothing => {}
    }
    // Across instances too, on a store with `lock = "redis"` (released when dropped).
    let _lock = match lock::acquire_or_wait(caches, keys, _flight.is_reentrant()).await {
        lock::Acquired::Found(value) => return shape.rebuild(value),
        lock::Acquired::Leader(guard) => guard,
    };
    caches.iter().for_each(|c| c.count(Event::Miss));
    // The function's own events on a miss carry the cache and key.
    let span = tracing::debug_span!("cachet.miss", cache = first.name(), key = %keys[0], stale = stale.is_some());
    let body = body.instrument(span);
    let output = match stale {
        None => body.await,
        // With a stale value to fall back on, a panic is caught so the stale value can be
        // served; without one it propagates untouched.
        Some(_) => match AssertUnwindSafe(body).catch_unwind().await {
            Ok(output) => output,
            Err(panic) => match stale.take() {
                Some(stale) => return serve_stale(shape, caches, keys, stale, "panicked").await,
                None => std::panic::resume_unwind(panic),
            },
        },
    };
    match shape.cached(&output) {
        Some(value) => {
            let null_refused = shape.is_null(value) && !first.settings().allow_null_values;
            if let Some(lifetime) = policy(value).filter(|_| !null_refused) {
                store_all(caches, keys, value, lifetime).await;
            }
            output
        }
        None => match stale {
            Some(stale) => serve_stale(shape, caches, keys, stale, "returned an error").await,
            None => output,
        },
    }
}

/// Grace: the function failed, so the stale value is returned in its place. With a
/// `grace_backoff`, it is stored back as fresh for that long, so the function is not called
/// again meanwhile.
async fn serve_stale<S: Shape>(
    shape: S,
    caches: &[Cache],
    keys: &[String],
    (value, keep_until): (S::Value, Option<Instant>),
    failure: &str,
) -> S::Output
where
    S::Value: CacheValue,
{
    let first = &caches[0];
    first.count(Event::Stale);
    tracing::warn!(
        cache = first.name(),
        failure,
        "cachet: the function failed; serving the stale value (grace period)"
    );
    if let Some(fresh_for) = first.settings().grace_backoff {
        // Fresh for the backoff, but dropped when its grace period ends, as it would be.
        store_all(
            caches,
            keys,
            &value,
            Lifetime::Backoff {
                fresh_for,
                keep_until,
            },
        )
        .await;
    }
    shape.rebuild(value)
}

/// Runs `body`, then stores its cacheable outcome under the key `key_of` computes from it,
/// for as long as `policy` says (or not at all).
pub(crate) async fn put_call<S, F>(
    shape: S,
    caches: &[Cache],
    key_of: impl FnOnce(&S::Value) -> Option<String>,
    policy: impl FnOnce(&S::Value) -> Option<Lifetime>,
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
    if shape.is_null(value) && !first.settings().allow_null_values {
        return output;
    }
    let Some(lifetime) = policy(value) else {
        return output;
    };
    if let Some(encoded) = key_of(value) {
        let keys: Vec<String> = caches
            .iter()
            .map(|c| c.stored_key_of_encoded(&encoded))
            .collect();
        store_all(caches, &keys, value, lifetime).await;
    }
    output
}

/// What the caches hold for a call.
enum Found<V> {
    Fresh(V),
    Stale(V, Option<Instant>),
    Nothing,
}

/// The first fresh value in `caches`, else the first stale one (within grace).
async fn find<V: CacheValue>(caches: &[Cache], keys: &[String]) -> Found<V> {
    let mut stale = None;
    for (cache, key) in caches.iter().zip(keys) {
        match cache.lookup::<V>(key).await {
            Lookup::Fresh(value) => return Found::Fresh(value),
            Lookup::Stale(value, keep_until) if stale.is_none() => {
                stale = Some((value, keep_until))
            }
            Lookup::Stale(..) | Lookup::Miss => {}
        }
    }
    stale.map_or(Found::Nothing, |(value, keep_until)| {
        Found::Stale(value, keep_until)
    })
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
            // A failed clear is counted and logged by `remove_all`; the function never fails for it.
            EvictTarget::All => {
                let _ = cache.remove_all().await;
            }
        }
    }
}
