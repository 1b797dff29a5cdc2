//! What happens when a cache fails (Spring's `CacheErrorHandler`): a [`CacheErrorHandler`]
//! set on the manager builder decides, fault by fault, whether it is logged (and counted:
//! the default, as before), only counted, or fails the call. Used by annotated and
//! programmatic calls alike.
//!
//! A call that a fault fails: the programmatic method returns `Err(CacheError::Tier { .. })`
//! (a `get`, `set`, `delete`, `delete_many`, `get_or_set`, `try_get_or_set`, ...). Annotated
//! functions follow the handler's `Log` and `Count`, but are never failed: their fault is
//! logged, as by default (failing them needs the fault carried out of every entry point, and
//! the scope that carries it made nested annotated calls overflow the stack in debug builds;
//! left for later). Faults of work finishing in the background (a detached refresh,
//! `background_l2_writes`) fail no call: the call has returned.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use crate::error::{CacheError, TierError};

/// Which cache operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultOperation {
    /// Reading an entry (Spring's `handleCacheGetError`), bad bytes included.
    Get,
    /// Writing an entry (`handleCachePutError`).
    Put,
    /// Deleting entries (`handleCacheEvictError`).
    Evict,
    /// Clearing a cache (`handleCacheClearError`).
    Clear,
}

/// One fault, as the handler sees it.
///
/// ```
/// use cache_core::{CacheFault, FaultAction, FaultOperation};
/// fn decide(fault: &CacheFault<'_>) -> FaultAction {
///     match fault.operation {
///         FaultOperation::Put if fault.cache == "orders" => FaultAction::Fail,
///         _ => FaultAction::Log,
///     }
/// }
/// # let _ = decide;
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CacheFault<'a> {
    /// The cache.
    pub cache: &'a str,
    /// The store it is in.
    pub store: &'a str,
    /// What was being done.
    pub operation: FaultOperation,
    /// The stored key, when one key was involved.
    pub key: Option<&'a str>,
    /// What went wrong, in plain words (never a credential).
    pub error: &'a str,
}

/// What to do about a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FaultAction {
    /// Count it in the cache's `errors` and log it (the default).
    #[default]
    Log,
    /// Count it only.
    Count,
    /// Count and log it, and fail the call (see the module's docs for which calls can fail).
    Fail,
}

/// Decides what a fault does (Spring's `CacheErrorHandler`). Any
/// `Fn(&CacheFault<'_>) -> FaultAction + Send + Sync + 'static` is one.
///
/// ```
/// use cache_core::{store::MapTier, CacheFault, CacheManager, FaultAction, StoreBuilder};
/// let manager = CacheManager::builder()
///     .store("main", StoreBuilder::new().l1(MapTier::new()))
///     .error_handler(|_: &CacheFault<'_>| FaultAction::Count)
///     .build()
///     .unwrap();
/// # let _ = manager;
/// ```
pub trait CacheErrorHandler: Send + Sync + 'static {
    /// What `fault` does.
    fn handle(&self, fault: &CacheFault<'_>) -> FaultAction;
}

impl<F> CacheErrorHandler for F
where
    F: Fn(&CacheFault<'_>) -> FaultAction + Send + Sync + 'static,
{
    fn handle(&self, fault: &CacheFault<'_>) -> FaultAction {
        self(fault)
    }
}

/// The manager's handler, shared by its stores (`None`: the default, [`FaultAction::Log`]).
pub(crate) type Handler = Option<Arc<dyn CacheErrorHandler>>;

tokio::task_local! {
    /// The fault that fails the call being made, if any.
    static FAILED: RefCell<Option<CacheError>>;
}

/// Asks `handler` about `fault`: what the caller (which counts the fault) should do besides
/// counting it. A [`FaultAction::Fail`] is recorded for the call in progress.
pub(crate) fn decide(handler: &Handler, fault: &CacheFault<'_>) -> FaultAction {
    let action = handler
        .as_ref()
        .map_or(FaultAction::Log, |h| h.handle(fault));
    if action == FaultAction::Fail {
        let error = CacheError::Tier {
            store: fault.store.to_owned(),
            source: TierError::new(format!(
                "{:?} on cache `{}` failed: {}",
                fault.operation, fault.cache, fault.error
            )),
        };
        // Outside a call that can fail (background work): nothing to fail.
        let _ = FAILED.try_with(|failed| {
            failed.borrow_mut().get_or_insert(error);
        });
    }
    action
}

/// Runs `call`, and gives the fault that failed it, if the handler failed one.
///
/// Callers run `call` as is when no handler is set, and box this otherwise: nested cached
/// calls each hold the next one's future, so a call's future must not grow for a handler
/// most managers do not have.
pub(crate) async fn failing<T>(call: impl Future<Output = T>) -> (T, Option<CacheError>) {
    FAILED
        .scope(RefCell::new(None), async {
            let out = call.await;
            let failed = FAILED.with(|f| f.borrow_mut().take());
            (out, failed)
        })
        .await
}

/// [`failing`] for a programmatic call: its error, or the fault's.
pub(crate) async fn checked<T, E: From<CacheError>>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match failing(call).await {
        (result, None) => result,
        (Ok(_), Some(fault)) => Err(E::from(fault)),
        (Err(err), Some(_)) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_fault_fails_only_the_call_it_happened_in() {
        let fail: Handler = Some(Arc::new(|_: &CacheFault<'_>| FaultAction::Fail));
        let fault = CacheFault {
            cache: "c",
            store: "s",
            operation: FaultOperation::Get,
            key: None,
            error: "down",
        };
        let (_, failed) = failing(async { decide(&fail, &fault) }).await;
        assert!(failed.is_some_and(|e| e.to_string().contains("down")));
        let (_, failed) = failing(async {}).await;
        assert!(failed.is_none());
        let checked: Result<(), CacheError> = checked(async {
            decide(&fail, &fault);
            Ok(())
        })
        .await;
        assert!(checked.is_err());
        // Outside a call: decided, nothing recorded, no panic.
        assert_eq!(decide(&fail, &fault), FaultAction::Fail);
        assert_eq!(decide(&None, &fault), FaultAction::Log);
    }
}
