//! The entry points of `#[cacheable]`: async, detachable and blocking.

use std::future::Future;

use super::key::{encoded_probed, OpKey};
use super::resolve::{resolve, Resolved};
use super::timeout::{self, OnTimeout, Wait};
use super::ttl::{store_policy, StoreDecision};
use crate::blocking;
use crate::engine::{Engine, FirstL1, Lookup};
use crate::fault;
use crate::invoke::{self, Attached, BlockingBody, Detachable, DetachableBlocking};
use crate::operation::Operation;
use crate::shape::Shape;
use crate::slot::Slot;
use crate::CacheValue;

/// `#[cacheable]` on an `async fn` whose future borrows or is not `Send`: it runs in its
/// caller, bounded by the hard timeout when `on_timeout` can give up, and failed by a
/// fault the manager's error handler fails when `on_timeout` can say so (`fault.rs`).
pub fn cacheable_timed<S, F, T, D: StoreDecision>(
    shape: S,
    op: &'static Operation,
    key: OpKey,
    unless: impl FnOnce(&S::Value) -> D,
    on_timeout: T,
    body: F,
) -> impl Future<Output = S::Output>
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
    T: OnTimeout<S::Output>,
{
    cacheable_with(shape, op, key, unless, on_timeout, on_timeout, body)
}

/// [`cacheable_timed`] with what the hard timeout does and what a failed fault does apart
/// (a plain fn has no hard timeout, but can be failed).
async fn cacheable_with<S, F, T, U, D: StoreDecision>(
    shape: S,
    op: &'static Operation,
    key: OpKey,
    unless: impl FnOnce(&S::Value) -> D,
    on_timeout: T,
    on_fault: U,
    body: F,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
    T: OnTimeout<S::Output>,
    U: OnTimeout<S::Output>,
{
    match step::<S::Slot>(op, key, false) {
        // Boxed off the hit path: the body's future is held once (`private/mod.rs`).
        Step::Uncached => Box::pin(body).await,
        Step::Hit(value) | Step::Due(value, ..) => shape.rebuild(value),
        Step::Miss(caches, keys, local) => {
            let watch = watches(&caches);
            let body = Box::pin(fault::isolated(watch, body));
            let body = timeout::bounded(hard_timeout(&caches), on_timeout, body);
            let policy = store_policy(unless);
            let failing = FailsEarly { shape, on_fault };
            // Built inside the await (`fault::watched`).
            fault::failed_by(
                watch,
                on_fault_of(shape, on_fault),
                invoke::cached_call(failing, &caches, &keys, local, policy, || body, Attached),
            )
            .await
        }
    }
}

/// What a call whose fault the error handler failed returns (`fault.rs`): the fault's error
/// when the return type can carry it (`on_fault`, the hard timeout's probe), else its
/// output; a function's own error comes first.
pub(super) fn on_fault_of<S: Shape, T: OnTimeout<S::Output>>(
    shape: S,
    on_fault: T,
) -> impl FnOnce(crate::CacheError, S::Output) -> S::Output {
    move |error, output| match shape.cached(&output) {
        None => output,
        Some(_) => on_fault.error(error).unwrap_or(output),
    }
}

/// A function's shape, failing the call before its body runs when the error handler
/// failed a read of its lookup and the return type can carry the error (`on_fault`, the
/// hard timeout's probe): Spring's `CacheErrorHandler` rethrowing a get error fails the
/// call before the method runs. Everything else is the shape's.
#[derive(Clone, Copy)]
struct FailsEarly<S, U> {
    shape: S,
    on_fault: U,
}

impl<S: Shape, U: OnTimeout<S::Output>> Shape for FailsEarly<S, U> {
    type Output = S::Output;
    type Value = S::Value;
    type Slot = S::Slot;
    fn cached<'a>(&self, output: &'a S::Output) -> Option<&'a S::Value> {
        self.shape.cached(output)
    }
    fn rebuild(&self, value: S::Value) -> S::Output {
        self.shape.rebuild(value)
    }
    fn is_null(&self, value: &S::Value) -> bool {
        self.shape.is_null(value)
    }
    fn share_failure(&self, output: &S::Output) -> Option<crate::shape::SharedFailure> {
        self.shape.share_failure(output)
    }
    fn failed(
        &self,
        cache: &str,
        shared: Option<&crate::shape::SharedFailure>,
    ) -> Option<S::Output> {
        self.shape.failed(cache, shared)
    }
    fn fail_early(&self, error: crate::CacheError) -> Option<S::Output> {
        self.on_fault.error(error)
    }
}

/// Whether a fault in `caches` can fail the call: a manager's error handler is set.
pub(super) fn watches(caches: &[Engine]) -> bool {
    caches.iter().any(|c| c.inner.store.error_handler.is_some())
}

/// `#[cacheable]` on a detachable `async fn` (no receiver, no generics, no borrowed
/// arguments): its `Send + 'static` future may finish in the background, for a soft
/// timeout or an eager refresh.
pub async fn cacheable_detachable<S, F, U, T, D>(
    shape: S,
    op: &'static Operation,
    key: OpKey,
    unless: U,
    on_timeout: T,
    body: F,
) -> S::Output
where
    S: Shape + Send + 'static,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output> + Send + 'static, // not `Send`? add `detach = false` to `#[cacheable]`
    U: FnOnce(&S::Value) -> D + Send + 'static,
    D: StoreDecision + 'static,
    T: OnTimeout<S::Output> + Send + 'static,
{
    match step::<S::Slot>(op, key, true) {
        // Boxed off the hit path: the body's future is held once (`private/mod.rs`).
        Step::Uncached => Box::pin(body).await,
        Step::Hit(value) => shape.rebuild(value),
        Step::Due(value, caches, keys) => {
            let body = timeout::bounded(hard_timeout(&caches), on_timeout, body);
            let policy = store_policy(unless);
            invoke::refresh_behind::<_, _, _, Detachable>(shape, &caches, &keys, policy, || body);
            shape.rebuild(value)
        }
        Step::Miss(caches, keys, local) => {
            let watch = watches(&caches);
            let body = Box::pin(fault::isolated(watch, body));
            let body = timeout::bounded(hard_timeout(&caches), on_timeout, body);
            let policy = store_policy(unless);
            let failing = FailsEarly {
                shape,
                on_fault: on_timeout,
            };
            fault::failed_by(
                watch,
                on_fault_of(shape, on_timeout),
                invoke::cached_call(failing, &caches, &keys, local, policy, || body, Detachable),
            )
            .await
        }
    }
}

/// Where a `#[cacheable]` call goes after its key and the first cache's L1.
enum Step<V> {
    /// No key, or no caches: the function runs uncached.
    Uncached,
    /// A fresh L1 value.
    Hit(V),
    /// A fresh L1 value past its eager refresh point.
    Due(V, Resolved, Vec<String>),
    /// Anything else: the full lookup (from L2 when the probe found the first cache's L1
    /// empty), single flight and store.
    Miss(Resolved, Vec<String>, FirstL1),
}

fn step<V: Slot>(op: &'static Operation, key: OpKey, eager: bool) -> Step<V::Value> {
    let Some((encoded, local)) = encoded_probed(op, key) else {
        return Step::Uncached;
    };
    let Some(caches) = resolve(op) else {
        return Step::Uncached;
    };
    let keys: Vec<String> = caches
        .iter()
        .map(|c| c.stored_key_of_encoded(&encoded))
        .collect();
    // `force_fresh` (a `#[cache_put]` stacked over it, say): the function runs, hit or not.
    if local == FirstL1::Empty || caches.first().is_some_and(|c| c.skips(|o| o.force_fresh)) {
        // The probe read the first cache's L1 under this key: nothing there.
        return Step::Miss(caches, keys, local);
    }
    // Not probed (or something was there): the first cache's L1, then the full path.
    let Some(first) = caches.first() else {
        return Step::Miss(caches, keys, local);
    };
    match first.look_l1::<V>(&keys[0]) {
        (Lookup::Fresh(value), true) if eager => Step::Due(value, caches, keys),
        (Lookup::Fresh(value), _) => Step::Hit(value),
        (Lookup::Miss, _) => Step::Miss(caches, keys, FirstL1::Empty),
        (Lookup::Stale(..), _) => Step::Miss(caches, keys, FirstL1::Unread),
    }
}

/// The hard timeout of a call (the view's: the annotation's over the cache's), and the
/// cache its error names.
fn hard_timeout(caches: &[Engine]) -> Option<(std::time::Duration, String, crate::clock::Clock)> {
    let first = caches.first()?;
    let limit = first.settings().hard_timeout?;
    Some((limit, first.name().to_owned(), first.clock().clone()))
}

/// `#[cacheable]` on a plain `fn`.
pub fn cacheable_blocking<S, T, D: StoreDecision>(
    shape: S,
    op: &'static Operation,
    key: OpKey,
    unless: impl FnOnce(&S::Value) -> D,
    on_fault: T,
    body: impl FnOnce() -> S::Output,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    T: OnTimeout<S::Output>,
{
    // No hard timeout (`Wait`): the body runs on this thread, which nothing could free.
    let body = async move { body() };
    blocking::run(cacheable_with(shape, op, key, unless, Wait, on_fault, body))
}

/// `#[cacheable]` on a detachable plain `fn` (no receiver, no generics, no borrowed
/// arguments): with a soft timeout and a stale value, or past its eager refresh point, its
/// body runs on a blocking thread in the background.
pub fn cacheable_detachable_blocking<S, U, C, D, T>(
    shape: S,
    op: &'static Operation,
    key: OpKey,
    unless: U,
    on_fault: T,
    body: C,
) -> S::Output
where
    S: Shape + Send + 'static,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    S::Output: Send + 'static, // not `Send`? add `detach = false` to `#[cacheable]`
    U: FnOnce(&S::Value) -> D + Send + 'static,
    D: StoreDecision + 'static,
    C: FnOnce() -> S::Output + Send + 'static, // not `Send`? add `detach = false` to `#[cacheable]`
    T: OnTimeout<S::Output> + Send + 'static,
{
    match step::<S::Slot>(op, key, true) {
        Step::Uncached => body(),
        Step::Hit(value) => shape.rebuild(value),
        Step::Due(value, caches, keys) => {
            invoke::refresh_behind::<_, _, _, DetachableBlocking>(
                shape,
                &caches,
                &keys,
                store_policy(unless),
                || BlockingBody::new(body),
            );
            shape.rebuild(value)
        }
        Step::Miss(caches, keys, local) => {
            let watch = watches(&caches);
            // The body runs on this thread (or a blocking one): its faults are its own.
            let body = move || fault::isolated_sync(watch, body);
            blocking::run(fault::failed_by(
                watch,
                on_fault_of(shape, on_fault),
                invoke::cached_call(
                    FailsEarly { shape, on_fault },
                    &caches,
                    &keys,
                    local,
                    store_policy(unless),
                    || BlockingBody::new(body),
                    DetachableBlocking,
                ),
            ))
        }
    }
}
