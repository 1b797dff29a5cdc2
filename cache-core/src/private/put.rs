//! The entry points of `#[cache_put]`: always run, then store.

use std::future::Future;

use super::key::{encoded, OpKey};
use super::resolve::resolve;
use super::ttl::{store_policy, StoreDecision};
use crate::blocking;
use crate::invoke;
use crate::operation::Operation;
use crate::shape::Shape;
use crate::slot::Slot;
use crate::CacheValue;

/// `#[cache_put]` on an `async fn`.
pub async fn put<S, F, D: StoreDecision>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    key: impl FnOnce(&S::Value) -> OpKey,
    unless: impl FnOnce(&S::Value) -> D,
    body: F,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
{
    if !enabled {
        return body.await;
    }
    let Some(caches) = resolve(op) else {
        return body.await;
    };
    invoke::put_call(
        shape,
        &caches,
        |value| encoded(op, key(value)),
        store_policy(unless),
        op.after_commit,
        body,
    )
    .await
}

/// `#[cache_put]` on a plain `fn`.
pub fn put_blocking<S, D: StoreDecision>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    key: impl FnOnce(&S::Value) -> OpKey,
    unless: impl FnOnce(&S::Value) -> D,
    body: impl FnOnce() -> S::Output,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
{
    blocking::run(put(shape, op, enabled, key, unless, async move { body() }))
}
