//! The entry points of `#[cache_evict]`: evict one key or all, before or after the call.

use std::future::Future;

use super::cacheable::{on_fault_of, watches};
use super::key::{encoded, OpKey};
use super::resolve::resolve;
use super::timeout::OnTimeout;
use crate::blocking;
use crate::fault;
use crate::invoke::{self, EvictTarget};
use crate::operation::{Operation, OperationKind};
use crate::shape::Shape;

/// `#[cache_evict]` on an `async fn`. `before` is the key evicted before invocation (with
/// `before_invocation`), `after` computes the key evicted after success otherwise; with
/// `all_entries` they only say whether to evict ([`super::every_key`]) or not
/// ([`super::no_key`]: a condition over `result` that is false). Failed by a fault the
/// manager's error handler fails when `on_fault` can say so (`fault.rs`): before its body
/// runs for an eviction before the invocation, after it otherwise.
pub async fn evict<S, F, T>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    before: OpKey,
    after: impl FnOnce(&S::Value) -> OpKey,
    on_fault: T,
    body: F,
) -> S::Output
where
    S: Shape,
    F: Future<Output = S::Output>,
    T: OnTimeout<S::Output>,
{
    // Boxed: the body's future is held once, whichever path awaits it (`private/mod.rs`).
    let body = Box::pin(body);
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
    // Each eviction is watched, the body is not (its cache calls are its own): each built
    // inside its await (`fault::watched`).
    let watch = watches(&caches);
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
            let evict = invoke::evict_all_after(&caches, target, op.after_commit);
            // A failed eviction fails the call before its body runs, when its type can say
            // so, as Spring's `processCacheEvicts(.., true, ..)` rethrows before the
            // method; otherwise it was logged, and the body runs.
            if let Some(output) = fault::watched(watch, evict)
                .await
                .1
                .and_then(|fault| on_fault.error(fault))
            {
                return output;
            }
        }
        return fault::isolated(watch, body).await;
    }
    let output = fault::isolated(watch, body).await;
    // Only a successful call (anything but `Err`) evicts.
    let Some(target) = shape.cached(&output).and_then(|value| target(after(value))) else {
        return output;
    };
    let evict = invoke::evict_all_after(&caches, target, op.after_commit);
    let failed = fault::watched(watch, evict).await.1;
    match failed {
        Some(fault) => on_fault_of(shape, on_fault)(fault, output),
        None => output,
    }
}

/// `#[cache_evict]` on a plain `fn`.
pub fn evict_blocking<S, T>(
    shape: S,
    op: &'static Operation,
    enabled: bool,
    before: OpKey,
    after: impl FnOnce(&S::Value) -> OpKey,
    on_fault: T,
    body: impl FnOnce() -> S::Output,
) -> S::Output
where
    S: Shape,
    T: OnTimeout<S::Output>,
{
    blocking::run(evict(
        shape,
        op,
        enabled,
        before,
        after,
        on_fault,
        async move { body() },
    ))
}
