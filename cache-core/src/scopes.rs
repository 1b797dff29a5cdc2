//! The `testing` scopes in effect on this thread: which manager a cached call uses when a
//! test runs it inside [`crate::testing::with_manager`] or
//! [`crate::testing::with_manager_sync`].
//!
//! The stack holds the scope's manager type-erased ([`Scoped`]), so this module (and the
//! call machinery that hands a caller's scope on to its background refresh) sits below the
//! manager: `global.rs` puts the manager in and takes it out.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many scopes are in effect on all threads together: while none is (a service, which
/// never enters one), [`any`] answers without touching the thread's stack. Written only
/// when a scope is entered or left, so the hit path only reads a cache line nobody writes.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// The manager of one scope, type-erased (a `CacheManager`, see `global.rs`).
#[derive(Clone)]
pub(crate) struct Scoped(Arc<dyn Any + Send + Sync>);

impl Scoped {
    /// Wraps a scope's manager.
    pub(crate) fn new<M: Any + Send + Sync>(manager: M) -> Self {
        Scoped(Arc::new(manager))
    }

    /// The manager, if it is an `M`.
    pub(crate) fn get<M: Any>(&self) -> Option<&M> {
        self.0.downcast_ref()
    }
}

thread_local! {
    /// The scopes in effect on this thread, innermost last. Both kinds live here:
    /// [`scope_thread`] pushes for the length of its closure and [`scope_task`] for the
    /// length of each poll of its future, so whichever scope was entered last (the
    /// innermost, as the code nests them) is on top, whatever its kind.
    static SCOPES: RefCell<Vec<Scoped>> = const { RefCell::new(Vec::new()) };
}

/// The innermost scope in effect on this thread, if any: handed to work that continues in
/// the background, so a refresh's own cached calls use it too.
pub(crate) fn current() -> Option<Scoped> {
    SCOPES.with(|stack| stack.borrow().last().cloned())
}

/// Whether any scope is in effect on this thread.
#[inline]
pub(crate) fn any() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0 && SCOPES.with(|stack| !stack.borrow().is_empty())
}

/// Polls `future` with `scope` in effect: pushed for each poll, popped after it, so
/// scopes entered while polling (a `with_manager_sync` in the future's body, a nested
/// `with_manager`) sit above it, and tasks it spawns (polled elsewhere) do not see it.
pub(crate) async fn scope_task<F: std::future::Future>(scope: Scoped, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| scope_thread(scope.clone(), || future.as_mut().poll(cx))).await
}

/// Runs `f` with `scope` on top of this thread's scopes. The entry is popped when `f`
/// returns or unwinds, so a panicking test leaves no scope behind.
pub(crate) fn scope_thread<R>(scope: Scoped, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPES.with(|stack| stack.borrow_mut().pop());
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    // Counted before the push: a thread that sees its own scope on its stack has seen the
    // count raised (program order on that thread).
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    SCOPES.with(|stack| stack.borrow_mut().push(scope));
    let _pop = Pop;
    f()
}
