//! The entry point of `#[cacheable_many]`, and the shapes of its results: a map or a list
//! of key–value pairs, or a `Result` of one, decided by a trait at compile time.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hash::Hash;

use serde::Serialize;

use super::resolve::resolve;
use crate::batch::Keys;
use crate::engine::Lifetime;
use crate::error::CacheError;
use crate::operation::Operation;
use crate::CacheValue;

/// What a `#[cacheable_many]` function may return for keys of type `K`: `HashMap<K, V>`,
/// `Vec<(K, V)>`, or a `Result` of either (only `Ok` is cached).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a result `#[cacheable_many]` can cache for keys of type `{K}`",
    label = "expected `HashMap<{K}, V>`, `Vec<({K}, V)>`, or a `Result` of one",
    note = "the keys of the result must be of the type the keys argument holds"
)]
pub trait ManyOutput<K>: Sized {
    /// The type of one cached value.
    type Value: CacheValue;
    /// The function's error (`Infallible` for a plain map or list).
    type Error;
    /// The loaded values by key, or the function's error.
    fn into_map(self) -> Result<HashMap<K, Self::Value>, Self::Error>;
    /// The answer made of these entries, in the order of the keys asked for.
    fn from_entries(entries: Vec<(K, Self::Value)>) -> Self;
    /// The answer for the function's error.
    fn from_error(error: Self::Error) -> Self;
}

impl<K: Eq + Hash, V: CacheValue> ManyOutput<K> for HashMap<K, V> {
    type Value = V;
    type Error = Infallible;
    fn into_map(self) -> Result<HashMap<K, V>, Infallible> {
        Ok(self)
    }
    fn from_entries(entries: Vec<(K, V)>) -> Self {
        entries.into_iter().collect()
    }
    fn from_error(error: Infallible) -> Self {
        match error {}
    }
}

impl<K: Eq + Hash, V: CacheValue> ManyOutput<K> for Vec<(K, V)> {
    type Value = V;
    type Error = Infallible;
    fn into_map(self) -> Result<HashMap<K, V>, Infallible> {
        Ok(self.into_iter().collect())
    }
    fn from_entries(entries: Vec<(K, V)>) -> Self {
        entries
    }
    fn from_error(error: Infallible) -> Self {
        match error {}
    }
}

impl<K, T, E> ManyOutput<K> for Result<T, E>
where
    T: ManyOutput<K, Error = Infallible>,
{
    type Value = T::Value;
    type Error = E;
    fn into_map(self) -> Result<HashMap<K, T::Value>, E> {
        self.map(|ok| match ok.into_map() {
            Ok(map) => map,
            Err(never) => match never {},
        })
    }
    fn from_entries(entries: Vec<(K, T::Value)>) -> Self {
        Ok(T::from_entries(entries))
    }
    fn from_error(error: E) -> Self {
        Err(error)
    }
}

/// The function's error or a cache fault, inside a batch load.
enum Failed<E> {
    Body(E),
    Cache(CacheError),
}

impl<E> From<CacheError> for Failed<E> {
    fn from(err: CacheError) -> Self {
        Failed::Cache(err)
    }
}

/// `#[cacheable_many]` on an `async fn`: the cached values of `keys`, and the body's for the
/// others (called once, with only those), stored one entry per key.
pub async fn cacheable_many<K, R, F, Fut>(op: &'static Operation, keys: &[K], body: F) -> R
where
    K: Serialize + Eq + Hash + Clone,
    R: ManyOutput<K>,
    F: FnOnce(Vec<K>) -> Fut,
    Fut: Future<Output = R>,
{
    let Some(caches) = resolve(op) else {
        return body(keys.to_vec()).await;
    };
    let Some(cache) = caches.first() else {
        return body(keys.to_vec()).await;
    };
    // A key that cannot be encoded fails no call: the body runs uncached.
    let keys = match Keys::new(cache, keys) {
        Ok(keys) => keys,
        Err(err) => {
            tracing::warn!(function = op.function, error = %err, "cachet: a key cannot be encoded; calling the function uncached");
            return body(keys.to_vec()).await;
        }
    };
    let loaded = cache
        .load_many(
            &keys.keys,
            &keys.stored,
            Lifetime::Default,
            false,
            |missing| async move { body(missing).await.into_map().map_err(Failed::Body) },
        )
        .await;
    match loaded {
        Ok(found) => R::from_entries(
            keys.keys
                .into_iter()
                .zip(found)
                .filter_map(|(key, value)| Some((key, value?)))
                .collect(),
        ),
        Err(Failed::Body(err)) => R::from_error(err),
        // Not fallible (`false` above), so the cache has no fault to report here.
        Err(Failed::Cache(err)) => unreachable!("an unbounded batch load failed: {err}"),
    }
}
