//! An operation's caches in the manager in effect, resolved once per manager.

use std::sync::Arc;

use crate::engine::Engine;
use crate::operation::Operation;

/// The caches of an operation in the manager in effect; `None` (and a warning) when one
/// cannot be resolved: the function then runs uncached rather than failing.
#[inline]
pub(super) fn resolve(op: &'static Operation) -> Option<Resolved> {
    // The global manager never changes once built: its caches are resolved once per
    // operation and borrowed, with no lock and no reference counting on the hit path.
    if op.manager.is_none() {
        if let Some(Some(caches)) = op.global_caches.get() {
            if !crate::global::scoped() {
                return Some(Resolved::Global(caches));
            }
        }
    }
    resolve_slow(op)
}

/// [`resolve`] the first time in the global manager, in a `testing` scope, or with
/// `manager = path`.
#[cold]
#[inline(never)]
fn resolve_slow(op: &'static Operation) -> Option<Resolved> {
    // `manager = path`: that manager's caches, whatever the global or scoped one is.
    if let Some(own) = op.manager {
        let Some(manager) = own().downcast_ref::<crate::CacheManager>() else {
            // Generated code only ever hands a `CacheManager` over.
            return None;
        };
        // The path names a `static`: its caches are resolved once and borrowed, with no
        // lock and no reference count on the hit path (the id check keeps a path that
        // hands over another manager correct, through the shared slot below).
        if let Some((id, caches)) = op.own_caches.get() {
            if *id == manager.id() {
                return Some(Resolved::Global(caches));
            }
        }
        if let Some(caches) = op.resolved.get(manager.id()) {
            return Some(Resolved::Scoped(caches));
        }
        let caches = resolve_in(op, manager)?;
        if op.own_caches.get().is_none() {
            let _ = op
                .own_caches
                .set((manager.id(), caches.to_vec().into_boxed_slice()));
        }
        op.resolved.set(manager.id(), caches.clone());
        return Some(Resolved::Scoped(caches));
    }
    if let Some(global) = crate::global::unscoped_global() {
        return op
            .global_caches
            .get_or_init(|| resolve_in(op, global).map(|caches| caches.to_vec().into_boxed_slice()))
            .as_deref()
            .map(Resolved::Global);
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
