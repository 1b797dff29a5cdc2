//! After-commit writes and evictions (Spring's `TransactionAwareCacheDecorator`):
//! [`transaction`] runs a future with a list of pending cache operations in effect; the
//! `after_commit` operations made while it runs join that list instead of applying, and the
//! list is applied when the future returns `Ok`, dropped when it returns `Err`, panics or is
//! cancelled.
//!
//! The list is in effect for each poll of the future (a thread-local stack, as the testing
//! scopes are): tasks the future spawns run outside it, so their `after_commit` operations
//! apply at once. Nested transactions hand their operations to the enclosing one on `Ok`, so
//! nothing applies before the outermost commits.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// One deferred operation: the future that applies it.
pub(crate) type Deferred = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The operations deferred by one transaction, in the order they were made.
#[derive(Default)]
struct Pending(Mutex<Vec<Deferred>>);

impl Pending {
    fn push(&self, op: Deferred) {
        // Only pushes and a final take: a poisoned lock still holds a consistent list.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }

    fn take(&self) -> Vec<Deferred> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

thread_local! {
    /// The transactions in effect on this thread, innermost last.
    static STACK: RefCell<Vec<Arc<Pending>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `future`, deferring the `after_commit` cache writes and evictions made while it runs
/// (`#[cache_evict(.., after_commit)]`, `#[cache_put(.., after_commit)]`) until it returns
/// `Ok`; on `Err`, a panic or cancellation they are dropped. Other cache operations apply at
/// once, and reads inside see the cache as it is, not the pending operations.
///
/// Wrap the database transaction in it, committing inside: the cache then changes only once
/// the database has. Outside a `transaction`, `after_commit` operations apply at once.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let committed = cache_core::transaction(async {
///     // begin; write; commit (an `Err` rolls back and drops the pending evictions)
///     Ok::<_, std::io::Error>(42)
/// })
/// .await;
/// assert_eq!(committed.unwrap(), 42);
/// # });
/// ```
pub async fn transaction<T, E, F>(future: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let pending = Arc::new(Pending::default());
    let mut future = std::pin::pin!(future);
    let output = std::future::poll_fn(|cx| in_scope(&pending, || future.as_mut().poll(cx))).await;
    let deferred = pending.take();
    if output.is_ok() {
        match innermost() {
            // Nested: the enclosing transaction applies them when it commits.
            Some(outer) => deferred.into_iter().for_each(|op| outer.push(op)),
            None => {
                for op in deferred {
                    op.await;
                }
            }
        }
    }
    output
}

/// Runs `f` with `pending` as the innermost transaction; popped when `f` returns or unwinds.
fn in_scope<R>(pending: &Arc<Pending>, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            STACK.with(|stack| stack.borrow_mut().pop());
        }
    }
    STACK.with(|stack| stack.borrow_mut().push(pending.clone()));
    let _pop = Pop;
    f()
}

fn innermost() -> Option<Arc<Pending>> {
    STACK.with(|stack| stack.borrow().last().cloned())
}

/// Whether a transaction is in effect on this thread (an `after_commit` operation is then
/// deferred).
#[cfg(test)]
fn active() -> bool {
    STACK.with(|stack| !stack.borrow().is_empty())
}

/// Defers `op` to the innermost transaction's commit; `Err(op)` when none is in effect (the
/// caller applies it at once).
pub(crate) fn defer(op: Deferred) -> Result<(), Deferred> {
    match innermost() {
        Some(pending) => {
            pending.push(op);
            Ok(())
        }
        None => Err(op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Deferred) {
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        (n, move || {
            let m = m.clone();
            Box::pin(async move {
                m.fetch_add(1, Ordering::SeqCst);
            }) as Deferred
        })
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn applies_on_ok_drops_on_err() {
        let (n, op) = counter();
        block_on(async {
            let r: Result<(), ()> = transaction(async {
                assert!(active());
                assert!(defer(op()).is_ok());
                assert_eq!(n.load(Ordering::SeqCst), 0, "pending until the commit");
                Ok(())
            })
            .await;
            assert!(r.is_ok());
            assert_eq!(n.load(Ordering::SeqCst), 1);
            let r: Result<(), ()> = transaction(async {
                assert!(defer(op()).is_ok());
                Err(())
            })
            .await;
            assert!(r.is_err());
            assert_eq!(n.load(Ordering::SeqCst), 1, "dropped on Err");
            assert!(!active());
            assert!(defer(op()).is_err(), "no transaction: apply at once");
        });
    }

    #[test]
    fn nested_commits_wait_for_the_outermost() {
        let (n, op) = counter();
        block_on(async {
            let r: Result<(), ()> = transaction(async {
                let inner: Result<(), ()> = transaction(async {
                    assert!(defer(op()).is_ok());
                    Ok(())
                })
                .await;
                assert!(inner.is_ok());
                assert_eq!(n.load(Ordering::SeqCst), 0, "handed to the outer one");
                Err(())
            })
            .await;
            assert!(r.is_err());
            assert_eq!(n.load(Ordering::SeqCst), 0, "the outer one rolled back");
        });
    }

    #[test]
    fn a_panic_drops_them_and_leaves_no_scope() {
        let (n, op) = counter();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            block_on(async {
                let _: Result<(), ()> = transaction(async {
                    assert!(defer(op()).is_ok());
                    panic!("rolled back");
                })
                .await;
            })
        }));
        assert!(caught.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 0);
        assert!(!active());
    }
}
