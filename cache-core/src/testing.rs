//! Running code against its own manager, so parallel tests never share cache state.

use std::future::Future;

use crate::manager::CacheManager;

/// Runs `future` with `manager` in effect for every cached call made while polling it
/// (annotated async and plain fns alike), whatever the global manager is. Tasks spawned
/// from it do not inherit it.
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

/// Runs `f` with `manager` in effect on this thread (for plain, non-async tests).
///
/// ```
/// use cache_core::{testing::with_manager_sync, CacheManager};
/// let store = with_manager_sync(CacheManager::none(), || cache_core::manager().default_store_name().to_owned());
/// assert_eq!(store, "none");
/// ```
pub fn with_manager_sync<R>(manager: CacheManager, f: impl FnOnce() -> R) -> R {
    crate::global::scope_thread(manager, f)
}
