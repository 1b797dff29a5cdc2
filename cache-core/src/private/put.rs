//! The entry points of `#[cache_put]`: always run, then store.

use std::future::Future;

use super::cacheable::{on_fault_of, watches};
use super::key::{encoded, OpKey};
use super::resolve::resolve;
use super::timeout::OnTimeout;
use super::ttl::{store_policy, StoreDecision};
use crate::blocking;
use crate::fault;
use crate::invoke;
use crate::operation::Operation;
use crate::shape::Shape;
use crate::slot::Slot;
use crate::CacheValue;

/// `#[cache_put]` on an `async fn`; failed by a fault the manager's error handler fails
/// when `on_fault` can say so (`fault.rs`).
pub async fn put<S, F, T, D: StoreDecision>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    key: impl FnOnce(&S::Value) -> OpKey,
    unless: impl FnOnce(&S::Value) -> D,
    on_fault: T,
    body: F,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
    T: OnTimeout<S::Output>,
{
    // Boxed: the body's future is held once, whichever path awaits it (`private/mod.rs`).
    let body = Box::pin(body);
    if !enabled {
        return body.await;
    }
    let Some(caches) = resolve(op) else {
        return body.await;
    };
    let watch = watches(&caches);
    fault::failed_by(
        watch,
        on_fault_of(shape, on_fault),
        invoke::put_call(
            shape,
            &caches,
            |value| encoded(op, key(value)),
            store_policy(unless),
            op.after_commit,
            fault::isolated(watch, body),
        ),
    )
    .await
}

/// `#[cache_put]` on a plain `fn`.
pub fn put_blocking<S, T, D: StoreDecision>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    key: impl FnOnce(&S::Value) -> OpKey,
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
    blocking::run(put(shape, op, enabled, key, unless, on_fault, async move {
        body()
    }))
}
