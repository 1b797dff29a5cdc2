//! The global manager: set once with [`init`], or built on first use from the environment.

use std::cell::RefCell;

use once_cell::sync::OnceCell;

use crate::error::CacheError;
use crate::manager::CacheManager;

static GLOBAL: OnceCell<CacheManager> = OnceCell::new();

tokio::task_local! {
    static TASK_MANAGER: CacheManager;
}

thread_local! {
    static THREAD_MANAGER: RefCell<Vec<CacheManager>> = const { RefCell::new(Vec::new()) };
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

/// The manager in effect: the one of [`crate::testing::with_manager`] when inside it, else
/// the global one, built on first use from the environment ([`CacheManager::from_env`];
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
    let mut f = Some(f);
    let mut call = |m: &CacheManager| (f.take().unwrap_or_else(|| unreachable!("called once")))(m);
    if let Ok(r) = TASK_MANAGER.try_with(&mut call) {
        return r;
    }
    if let Some(r) = THREAD_MANAGER
        .with(|stack| stack.borrow().last().cloned())
        .map(|m| call(&m))
    {
        return r;
    }
    call(global())
}

/// The manager of the `testing` scope in effect on this task or thread, if any: handed to
/// work that continues in the background, so a refresh's own cached calls use it too.
pub(crate) fn scoped() -> Option<CacheManager> {
    TASK_MANAGER
        .try_with(CacheManager::clone)
        .ok()
        .or_else(|| THREAD_MANAGER.with(|stack| stack.borrow().last().cloned()))
}

/// The global manager, when no `testing` scope is in effect on this task or thread.
pub(crate) fn unscoped_global() -> Option<&'static CacheManager> {
    let scoped = TASK_MANAGER.try_with(|_| ()).is_ok()
        || THREAD_MANAGER.with(|stack| !stack.borrow().is_empty());
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

pub(crate) async fn scope_task<F: std::future::Future>(
    manager: CacheManager,
    future: F,
) -> F::Output {
    TASK_MANAGER.scope(manager, future).await
}

pub(crate) fn scope_thread<R>(manager: CacheManager, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            THREAD_MANAGER.with(|stack| stack.borrow_mut().pop());
        }
    }
    THREAD_MANAGER.with(|stack| stack.borrow_mut().push(manager));
    let _pop = Pop;
    f()
}
