//! Tools for tests: running code against its own manager, so parallel tests never share
//! cache state; the chaos kit — a fault-injecting shared tier ([`FaultyTier`]); and the
//! conformance suite every L2 driver passes ([`conformance`]).

use std::future::Future;

mod chaos;
pub mod conformance;

pub use crate::clock::ManualClock;
pub use chaos::{Fault, FaultRule, FaultyTier, Latch, Operation};

use crate::manager::CacheManager;

/// Runs `future` with `manager` in effect for every cached call made while polling it
/// (annotated async and plain fns alike), whatever the global manager is. Tasks spawned
/// from it do not inherit it.
///
/// Scopes nest, and the innermost wins whichever its kind: a [`with_manager_sync`] or
/// another `with_manager` inside `future` takes over for its extent, and `future` wins
/// over a [`with_manager_sync`] it is polled inside.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_core::{testing::with_manager, CacheManager};
/// let seen = with_manager(CacheManager::none(), async {
///     cache_core::manager().default_store_name().to_owned()
/// }).await;
/// assert_eq!(seen, "none");
/// # });
/// ```
pub async fn with_manager<F: Future>(manager: CacheManager, future: F) -> F::Output {
    crate::global::scope_task(manager, future).await
}

/// Runs `f` with `manager` in effect on this thread (for plain, non-async tests), also
/// inside a [`with_manager`] future: the innermost scope wins.
///
/// ```
/// use cache_core::{testing::with_manager_sync, CacheManager};
/// let store = with_manager_sync(CacheManager::none(), || cache_core::manager().default_store_name().to_owned());
/// assert_eq!(store, "none");
/// ```
pub fn with_manager_sync<R>(manager: CacheManager, f: impl FnOnce() -> R) -> R {
    crate::global::scope_thread(manager, f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::MapTier;
    use crate::StoreBuilder;

    /// A manager whose default store is named `name`, so tests can tell managers apart.
    fn named(name: &str) -> CacheManager {
        CacheManager::builder()
            .store(name, StoreBuilder::new().l1(MapTier::new()))
            .validate_declarations(false)
            .build()
            .unwrap()
    }

    fn current() -> String {
        crate::manager().default_store_name().to_owned()
    }

    #[tokio::test]
    async fn a_sync_scope_inside_an_async_one_wins() {
        with_manager(named("outer"), async {
            assert_eq!(current(), "outer");
            assert_eq!(with_manager_sync(named("inner"), current), "inner");
            // and the annotations' path, which reads the same scopes
            let cache = with_manager_sync(named("inner"), || crate::cache("users").unwrap());
            assert_eq!(cache.store_name(), "inner");
            assert_eq!(current(), "outer");
            tokio::task::yield_now().await;
            assert_eq!(current(), "outer");
        })
        .await;
    }

    #[test]
    fn an_async_scope_inside_a_sync_one_wins_across_awaits() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        with_manager_sync(named("outer"), || {
            let seen = rt.block_on(with_manager(named("middle"), async {
                let before = current();
                tokio::task::yield_now().await;
                let inner = with_manager_sync(named("inner"), current);
                let nested = with_manager(named("nested"), async { current() }).await;
                (before, inner, nested, current())
            }));
            assert_eq!(
                seen,
                (
                    "middle".to_owned(),
                    "inner".to_owned(),
                    "nested".to_owned(),
                    "middle".to_owned()
                )
            );
            assert_eq!(current(), "outer");
        });
    }

    #[test]
    fn a_future_made_outside_a_sync_scope_and_polled_inside_it_is_innermost() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fut = with_manager(named("task"), async { current() });
        let seen = with_manager_sync(named("thread"), || rt.block_on(fut));
        assert_eq!(seen, "task");
    }

    #[tokio::test]
    async fn spawned_tasks_and_a_panicking_scope_leave_nothing_behind() {
        let spawned = with_manager(named("scoped"), async {
            tokio::spawn(async { current() }).await.unwrap()
        })
        .await;
        assert_ne!(spawned, "scoped");
        let panicked = std::panic::catch_unwind(|| {
            with_manager_sync(named("doomed"), || panic!("the test failed"))
        });
        assert!(panicked.is_err());
        assert!(crate::global::unscoped_global().is_some());
    }
}
