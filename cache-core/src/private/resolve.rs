//! An operation's caches in the manager in effect, resolved once per manager.

use std::sync::Arc;

use crate::engine::Engine;
use crate::operation::{Operation, Resolution};

/// The caches of an operation in the manager in effect; `None` (and a warning) when one
/// cannot be resolved: the function then runs uncached rather than failing.
#[inline]
pub(super) fn resolve(op: &'static Operation) -> Option<Resolved> {
    if let Some(resolution) = recorded(op) {
        return Some(Resolved::Global(&resolution.caches));
    }
    resolve_slow(op)
}

/// The operation's resolution, when it is the one in effect for this call: the global
/// manager's outside any scope (one relaxed load when no scope is in effect anywhere), or
/// that of `manager = path` when the path hands over the manager it was made in (an address
/// compared). The global manager never changes once built, nor does a `static` manager, so
/// their caches are resolved once and borrowed: no lock and no reference count on the hit
/// path. `None` the first time, in a scope, or when the path hands over another manager.
#[inline]
pub(super) fn recorded(op: &'static Operation) -> Option<&'static Resolution> {
    // The global manager's record is only ever made for an operation without `manager =
    // path` (`resolve_slow`): found, it is the one, with no look at `op.manager` first.
    if let Some(Some(resolution)) = op.global_caches.get() {
        return (!crate::global::scoped()).then_some(resolution);
    }
    recorded_own(op)
}

/// [`recorded`] of an operation with `manager = path`.
#[inline]
fn recorded_own(op: &'static Operation) -> Option<&'static Resolution> {
    match op.manager {
        None => None,
        Some(own) => {
            let (at, id, resolution) = op.own_caches.get()?;
            let handed = own();
            let same = *at == address(handed);
            // The path hands over a `&'static CacheManager`, whose id is fixed for its
            // life: the same address is the same manager (only a `static mut` reassigned
            // under a live reference, undefined behaviour already, could break it).
            debug_assert!(
                !same
                    || handed
                        .downcast_ref::<crate::CacheManager>()
                        .map(crate::CacheManager::id)
                        == Some(*id),
                "cachet: `manager = path` handed over another manager at the recorded address"
            );
            same.then_some(resolution)
        }
    }
}

/// Where a manager handed over by `manager = path` lives.
fn address(manager: &(dyn std::any::Any + Send + Sync)) -> usize {
    (manager as *const (dyn std::any::Any + Send + Sync)).cast::<()>() as usize
}

/// [`resolve`] the first time in the global manager, in a `testing` scope, or with
/// `manager = path` the first time (or when the path hands over another manager).
#[cold]
#[inline(never)]
fn resolve_slow(op: &'static Operation) -> Option<Resolved> {
    // `manager = path`: that manager's caches, whatever the global or scoped one is.
    if let Some(own) = op.manager {
        let handed = own();
        let Some(manager) = handed.downcast_ref::<crate::CacheManager>() else {
            // Generated code only ever hands a `CacheManager` over.
            return None;
        };
        // Another address, the same manager (a clone of it): its caches are the same.
        if let Some((_, id, resolution)) = op.own_caches.get() {
            if *id == manager.id() {
                return Some(Resolved::Global(&resolution.caches));
            }
        }
        if let Some(caches) = op.resolved.get(manager.id()) {
            return Some(Resolved::Scoped(caches));
        }
        let caches = resolve_in(op, manager)?;
        if op.own_caches.get().is_none() {
            let _ = op
                .own_caches
                .set((address(handed), manager.id(), Resolution::new(&caches)));
        }
        op.resolved.set(manager.id(), caches.clone());
        return Some(Resolved::Scoped(caches));
    }
    if let Some(global) = crate::global::unscoped_global() {
        return op
            .global_caches
            .get_or_init(|| resolve_in(op, global).map(|caches| Resolution::new(&caches)))
            .as_ref()
            .map(|resolution| Resolved::Global(&resolution.caches));
    }
    crate::global::with_current(|manager| {
        if let Some(caches) = op.resolved.get(manager.id()) {
            return Some(Resolved::Scoped(caches));
        }
        let caches = resolve_in(op, manager)?;
        op.resolved.set(manager.id(), caches.clone());
        Some(Resolved::Scoped(caches))
    })
}

fn resolve_in(op: &'static Operation, manager: &crate::CacheManager) -> Option<Arc<[Engine]>> {
    let caches = op
        .caches
        .iter()
        // With `tags = [..]`, the function writes through tagged views of its caches.
        .enumerate()
        .map(|(i, name)| {
            let cache = manager.cache(name)?;
            // A typed cache's declaration is a layer under the annotation's options.
            let cache = match op.typed.get(i) {
                Some(declaration) => crate::typed::view_of(declaration, cache),
                None => cache,
            };
            Ok::<_, crate::CacheError>(cache.tagged(op.tags))
        })
        .collect::<Result<Vec<_>, _>>();
    match caches {
        Ok(caches) => Some(caches.into_iter().map(|c| op.view_of(c).engine).collect()),
        Err(err) => {
            tracing::warn!(function = op.function, file = op.file, line = op.line, error = %err, "cachet: cache not resolved; calling the function uncached");
            None
        }
    }
}

/// An operation's caches: borrowed from the operation (the global manager, or the one of
/// `manager = path`) or shared (a `testing::with_manager` scope).
pub(super) enum Resolved {
    Global(&'static [Engine]),
    Scoped(Arc<[Engine]>),
}

impl std::ops::Deref for Resolved {
    type Target = [Engine];
    fn deref(&self) -> &[Engine] {
        match self {
            Resolved::Global(caches) => caches,
            Resolved::Scoped(caches) => caches,
        }
    }
}
