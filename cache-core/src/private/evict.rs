//! The entry points of `#[cache_evict]`: evict one key or all, before or after the call.

use std::future::Future;

use super::key::{encoded, OpKey};
use super::resolve::resolve;
use crate::blocking;
use crate::invoke::{self, EvictTarget};
use crate::operation::{Operation, OperationKind};
use crate::shape::Shape;

/// `#[cache_evict]` on an `async fn`. `before` is the key evicted before invocation (with
/// `before_invocation`), `after` computes the key evicted after success otherwise; with
/// `all_entries` they only say whether to evict ([`super::every_key`]) or not
/// ([`super::no_key`]: a condition over `result` that is false).
pub async fn evict<S, F>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    before: OpKey,
    after: impl FnOnce(&S::Value) -> OpKey,
    body: F,
) -> S::Output
where
    S: Shape,
    F: Future<Output = S::Output>,
{
    let OperationKind::Evict {
        all_entries,
        before_invocation,
    } = op.kind
    else {
        return body.await;
    };
    if !enabled {
        return body.await;
    }
    let Some(caches) = resolve(op) else {
        return body.await;
    };
    // A bypassed key (a condition over `result` that is false) evicts nothing.
    let target = |key: OpKey| {
        let encoded = encoded(op, key)?;
        Some(if all_entries {
            EvictTarget::All
        } else {
            EvictTarget::Key(encoded)
        })
    };
    if before_invocation {
        if let Some(target) = target(before) {
            invoke::evict_all_after(&caches, target, op.after_commit).await;
        }
        return body.await;
    }
    let output = body.await;
    // Only a successful call (anything but `Err`) evicts.
    if let Some(target) = shape.cached(&output).and_then(|value| target(after(value))) {
        invoke::evict_all_after(&caches, target, op.after_commit).await;
    }
    output
}

/// `#[cache_evict]` on a plain `fn`.
pub fn evict_blocking<S>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    before: OpKey,
    after: impl FnOnce(&S::Value) -> OpKey,
    body: impl FnOnce() -> S::Output,
) -> S::Output
where
    S: Shape,
{
    blocking::run(evict(
        shape,
        op,
        enabled,
        before,
        after,
        async move { body() },
    ))
}
