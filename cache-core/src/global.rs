//! The global manager: set once with [`init`], or built on first use from the environment.

use std::cell::RefCell;

use once_cell::sync::OnceCell;

use crate::error::CacheError;
use crate::manager::CacheManager;

static GLOBAL: OnceCell<CacheManager> = OnceCell::new();

thread_local! {
    /// The `testing` scopes in effect on this thread, innermost last. Both kinds live here:
    /// [`scope_thread`] pushes for the length of its closure and [`scope_task`] for the
    /// length of each poll of its future, so whichever scope was entered last (the
    /// innermost, as the code nests them) is on top, whatever its kind.
    static SCOPES: RefCell<Vec<CacheManager>> = const { RefCell::new(Vec::new()) };
}

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
    match SCOPES.with(|stack| stack.borrow().last().cloned()) {
        Some(scoped) => f(&scoped),
        None => f(global()),
    }
}

/// The manager of the scope in effect on this thread, if any: handed to work that
/// continues in the background, so a refresh's own cached calls use it too.
pub(crate) fn scoped() -> Option<CacheManager> {
    SCOPES.with(|stack| stack.borrow().last().cloned())
}

/// The global manager, when no `testing` scope is in effect on this thread.
pub(crate) fn unscoped_global() -> Option<&'static CacheManager> {
    let scoped = SCOPES.with(|stack| !stack.borrow().is_empty());
    (!scoped).then(global)
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

/// Polls `future` with `manager` in effect: pushed for each poll, popped after it, so
/// scopes entered while polling (a `with_manager_sync` in the future's body, a nested
/// `with_manager`) sit above it, and tasks it spawns (polled elsewhere) do not see it.
pub(crate) async fn scope_task<F: std::future::Future>(
    manager: CacheManager,
    future: F,
) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| scope_thread(manager.clone(), || future.as_mut().poll(cx))).await
}

/// Runs `f` with `manager` on top of this thread's scopes. The entry is popped when `f`
/// returns or unwinds, so a panicking test leaves no scope behind.
pub(crate) fn scope_thread<R>(manager: CacheManager, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPES.with(|stack| stack.borrow_mut().pop());
        }
    }
    SCOPES.with(|stack| stack.borrow_mut().push(manager));
    let _pop = Pop;
    f()
}
