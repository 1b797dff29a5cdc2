//! The global manager: set once with [`init`], or built on first use from the environment.

use once_cell::sync::OnceCell;

use crate::error::CacheError;
use crate::manager::CacheManager;
use crate::scopes;

static GLOBAL: OnceCell<CacheManager> = OnceCell::new();

/// Sets the global manager. Call it once, before the first cached call; a second call (or a
/// call after the lazy default was built) is [`CacheError::AlreadyInitialized`].
///
/// ```
/// let _ = cache_core::init(cache_core::CacheManager::none());
/// ```
pub fn init(manager: CacheManager) -> Result<(), CacheError> {
    GLOBAL
        .set(manager)
        .map_err(|_| CacheError::AlreadyInitialized)
}

/// Builds the global manager from the environment now ([`CacheManager::from_env`]),
/// returning configuration errors instead of logging them, so a service can fail fast.
///
/// ```no_run
/// cache_core::init_from_env().expect("cache configuration");
/// ```
pub fn init_from_env() -> Result<(), CacheError> {
    init(CacheManager::from_env()?)
}

/// The manager in effect: the one of the innermost [`crate::testing::with_manager`] or
/// [`crate::testing::with_manager_sync`] when inside one, else the global one, built on first use from the environment ([`CacheManager::from_env`];
/// a configuration error is logged and the embedded default used).
///
/// ```
/// let users = cache_core::manager().cache("users");
/// # let _ = users;
/// ```
pub fn manager() -> CacheManager {
    with_current(CacheManager::clone)
}

/// The cache of that name in the manager in effect (`manager().cache(name)`).
///
/// ```
/// let users = cache_core::cache("users").unwrap();
/// assert_eq!(users.name(), "users");
/// ```
pub fn cache(name: &str) -> Result<crate::Cache, CacheError> {
    with_current(|m| m.cache(name))
}

pub(crate) fn with_current<R>(f: impl FnOnce(&CacheManager) -> R) -> R {
    // Cloned out (an `Arc` clone) so `f` may enter scopes of its own without a borrow of
    // the stack still held.
    match scopes::current() {
        Some(scoped) => match scoped.get::<CacheManager>() {
            Some(manager) => f(manager),
            None => f(global()),
        },
        None => f(global()),
    }
}

/// The global manager, when no `testing` scope is in effect on this thread.
pub(crate) fn unscoped_global() -> Option<&'static CacheManager> {
    (!scoped()).then(global)
}

/// Whether a `testing` scope is in effect on this thread (one relaxed load when no scope
/// is in effect on any thread).
#[inline]
pub(crate) fn scoped() -> bool {
    scopes::any()
}

/// `future` polled with `manager` in effect (see [`scopes::scope_task`]).
pub(crate) async fn scope_task<F: std::future::Future>(
    manager: CacheManager,
    future: F,
) -> F::Output {
    scopes::scope_task(scopes::Scoped::new(manager), future).await
}

/// `f` run with `manager` in effect on this thread (see [`scopes::scope_thread`]).
pub(crate) fn scope_thread<R>(manager: CacheManager, f: impl FnOnce() -> R) -> R {
    scopes::scope_thread(scopes::Scoped::new(manager), f)
}

fn global() -> &'static CacheManager {
    GLOBAL.get_or_init(|| {
        CacheManager::from_env().unwrap_or_else(|err| {
            tracing::error!(error = %err, "cachet: cannot build the cache manager from the environment; using the embedded default");
            CacheManager::builder()
                .validate_declarations(false)
                .build()
                .unwrap_or_else(|_| CacheManager::none())
        })
    })
}
