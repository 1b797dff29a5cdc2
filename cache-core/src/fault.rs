//! What happens when a cache fails (Spring's `CacheErrorHandler`): a [`CacheErrorHandler`]
//! set on the manager builder decides, fault by fault, whether it is logged (and counted:
//! the default, as before), only counted, or fails the call. Used by annotated and
//! programmatic calls alike.
//!
//! A call that a fault fails:
//! - a programmatic method returns `Err(CacheError::Tier { .. })` (`get`, `get_fresh`, `set`,
//!   `delete`, `delete_many`, `clear`, `get_or_set`, `try_get_or_set`, `get_many`, `set_many`,
//!   `get_or_set_many`, ...);
//! - an annotated function (`#[cacheable]`, `#[cache_put]`, `#[cache_evict]`, async or plain)
//!   returning `Result<T, E>` with `E: From<CacheError>` returns `Err(E::from(..))`. The
//!   return type is probed at compile time, as for the hard timeout, so an alias
//!   (`anyhow::Result<T>`) counts.
//! - an annotated function whose return type cannot carry a `CacheError` (a plain `T`,
//!   `Option<T>`, a `Result` whose error does not convert) cannot say "failed": it returns
//!   its value and the fault is logged, as with [`FaultAction::Log`].
//!
//! When: before the function runs (Spring's handler rethrowing a get error before the
//! method, and `processCacheEvicts(.., true, ..)` rethrowing before it):
//! - a tier that could not be read for the lookup of a `#[cacheable]`, `get_or_set`,
//!   `try_get_or_set`, `get_or_set_many` or `try_get_or_set_many` (the distributed lock's
//!   looks included): the body or factory does not run. The callers waiting for that call
//!   at the key's single-flight gate take its failure: each fails with the same error when
//!   its type can say so (none of them reads the tier again), the others run as when a
//!   leader's function failed;
//! - a failed eviction of a `#[cache_evict(before_invocation)]`.
//!
//! After the function ran: a fault of later cache work (storing the value, an eviction
//! after the invocation), once the value was stored where the cache took it; and bad bytes
//! read for the lookup (another type, another codec, garbage): the function's value
//! overwrites them, then the call fails (failing first would keep them, and fail every
//! call, until they expire).
//!
//! A call fails only for faults of its own cache operations: those of the cache calls its
//! body makes are the body's (each such call fails or not as the handler says). Faults of
//! work finishing in the background (a detached refresh, `background_l2_writes`, an
//! `after_commit` write applied by a transaction) and of `#[cacheable_many]` batches fail no
//! call.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::FutureExt;

use crate::error::{CacheError, TierError};
use crate::shape::SharedFailure;

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
    static FAILED: RefCell<Option<Failed>>;
}

/// A fault the handler failed, recorded for the call in progress.
struct Failed {
    failure: Failure,
    /// Whether the call fails before its function runs ([`fail_early`]) or only after.
    when: Failing,
}

/// What a failed fault fails a call with: made into a [`CacheError::Tier`] for each call it
/// fails (a single-flight leader failing early hands it to the callers waiting for it).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    store: String,
    /// The cache whose read failed.
    cache: String,
    message: String,
}

impl Failure {
    /// The cache whose read failed: a caller that would not read its L2 (a `force_fresh`
    /// or `skip_l2_read` view, other caches) is not failed by it.
    pub(crate) fn cache(&self) -> &str {
        &self.cache
    }

    /// The error of a call this failure fails.
    pub(crate) fn error(&self) -> CacheError {
        CacheError::Tier {
            store: self.store.clone(),
            source: TierError::new(self.message.clone()),
        }
    }
}

/// When a failed fault fails its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failing {
    /// Before the function runs, when the call's type can say so: a tier that could not
    /// be read (Spring's handler rethrowing a get error, before the method).
    Early,
    /// After the function ran: bad bytes read from a tier, which the function's value
    /// overwrites (failing first would keep them, and fail every call, until they expire).
    AfterRun,
}

/// Asks `handler` about `fault`: what the caller (which counts the fault) should do besides
/// counting it. A [`FaultAction::Fail`] is recorded for the call in progress, failing it
/// `when` says (an early failure recorded in the same call makes the call fail early).
pub(crate) fn decide(handler: &Handler, fault: &CacheFault<'_>, when: Failing) -> FaultAction {
    let action = handler
        .as_ref()
        .map_or(FaultAction::Log, |h| h.handle(fault));
    if action == FaultAction::Fail {
        let failure = Failure {
            store: fault.store.to_owned(),
            cache: fault.cache.to_owned(),
            message: format!(
                "{:?} on cache `{}` failed: {}",
                fault.operation, fault.cache, fault.error
            ),
        };
        // Outside a call that can fail (background work): nothing to fail.
        let _ = FAILED.try_with(|failed| {
            let mut failed = failed.borrow_mut();
            let recorded = failed.get_or_insert(Failed { failure, when });
            if when == Failing::Early {
                recorded.when = Failing::Early;
            }
        });
    }
    action
}

/// Runs `call`, and gives the fault that failed it, if the handler failed one (`watch`: a
/// handler is set; otherwise nothing can fail it and `call` runs as is).
///
/// A combinator, not an `async fn`, and callers build `call` inside the `.await` that
/// drives it: an `async` wrapper would keep a second copy of `call` in the caller's future
/// (see `private/mod.rs` for why, and what it cost nested calls). Here the scope adds a few
/// bytes.
pub(crate) fn watched<F: Future>(
    watch: bool,
    call: F,
) -> impl Future<Output = (F::Output, Option<CacheError>)> {
    if !watch {
        return Either::Left(call.map(no_fault));
    }
    let call = call.map(taken);
    Either::Right(FAILED.scope(RefCell::new(None), call))
}

fn no_fault<T>(out: T) -> (T, Option<CacheError>) {
    (out, None)
}

/// The output with the fault recorded in the scope it completed in.
fn taken<T>(out: T) -> (T, Option<CacheError>) {
    let failed = FAILED.try_with(|f| f.borrow_mut().take()).ok().flatten();
    (out, failed.map(|failed| failed.failure.error()))
}

/// Before a call's function runs: the fault the handler failed so far in this call (a
/// failed read of its lookup), taken, as the call's output if `fail` can make one of it
/// (its return type can carry the error), with the failure itself, for the callers that
/// wait for this one ([`handed_failure`]). The function then does not run, as Spring's
/// `CacheErrorHandler` rethrowing a get error fails the call before its method. `None`
/// outside a watched call, with no fault, with a fault that fails the call only after its
/// function ran ([`Failing::AfterRun`]: kept for then), or when the output cannot say so
/// (the fault was logged when it was decided; the function runs).
pub(crate) fn fail_early<O>(
    fail: impl FnOnce(CacheError) -> Option<O>,
) -> Option<(O, SharedFailure)> {
    let failure = FAILED
        .try_with(|f| {
            let mut failed = f.borrow_mut();
            match failed.as_ref()?.when {
                Failing::Early => failed.take().map(|failed| failed.failure),
                Failing::AfterRun => None,
            }
        })
        .ok()
        .flatten()?;
    let output = fail(failure.error())?;
    Some((output, Arc::new(failure)))
}

/// The error a caller that waited at a single-flight gate fails with, when the gate's
/// holder failed early ([`fail_early`]) and handed over `shared`: the same failure, so the
/// waiters do not each read the tier that failed again, one after another. `None` for any
/// other failure handed over (a function's own error). Only a caller that would
/// have made the read that failed ([`Failure::cache`]) takes it.
pub(crate) fn handed_failure(shared: &SharedFailure) -> Option<&Failure> {
    shared.downcast_ref::<Failure>()
}

/// `body` with its own (discarded) fault scope when `watch`: the cache calls a function's
/// body makes fail that body's calls as they say, never the annotated call around it.
pub(crate) fn isolated<F: Future>(watch: bool, body: F) -> impl Future<Output = F::Output> {
    if !watch {
        return Either::Left(body);
    }
    Either::Right(FAILED.scope(RefCell::new(None), body))
}

/// [`isolated`] for a plain fn's body, run where it is called.
pub(crate) fn isolated_sync<T>(watch: bool, body: impl FnOnce() -> T) -> T {
    if !watch {
        return body();
    }
    FAILED.sync_scope(RefCell::new(None), body)
}

/// [`watched`] for a programmatic call: its error, or the fault's.
pub(crate) fn checked<T, E: From<CacheError>>(
    watch: bool,
    call: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Result<T, E>> {
    watched(watch, call).map(|outcome| match outcome {
        (result, None) => result,
        (Ok(_), Some(fault)) => Err(E::from(fault)),
        (Err(err), Some(_)) => Err(err),
    })
}

/// [`watched`] for an annotated call: its output, or what `fail` makes of it and the fault
/// (`private::cacheable::on_fault_of`: the fault's error when the function's return type can
/// carry it, else the output, the fault logged by `Engine::fault`).
pub(crate) fn failed_by<O>(
    watch: bool,
    fail: impl FnOnce(CacheError, O) -> O,
    call: impl Future<Output = O>,
) -> impl Future<Output = O> {
    watched(watch, call).map(|(output, failed)| match failed {
        None => output,
        Some(fault) => fail(fault, output),
    })
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
        let (_, failed) = watched(true, async { decide(&fail, &fault, Failing::Early) }).await;
        assert!(failed.is_some_and(|e| e.to_string().contains("down")));
        let (_, failed) = watched(true, async {}).await;
        assert!(failed.is_none());
        // Unwatched: nothing is recorded.
        let (_, failed) = watched(false, async { decide(&fail, &fault, Failing::Early) }).await;
        assert!(failed.is_none());
        // A body's own faults stay in its scope.
        let (_, failed) = watched(
            true,
            isolated(true, async { decide(&fail, &fault, Failing::Early) }),
        )
        .await;
        assert!(failed.is_none());
        let checked: Result<(), CacheError> = checked(true, async {
            decide(&fail, &fault, Failing::Early);
            Ok(())
        })
        .await;
        assert!(checked.is_err());
        // Bad bytes fail the call after its function ran, not before; a tier fault in the
        // same call fails it early.
        let (early, failed) = watched(true, async {
            decide(&fail, &fault, Failing::AfterRun);
            fail_early(Some)
        })
        .await;
        assert!(early.is_none() && failed.is_some());
        let (early, failed) = watched(true, async {
            decide(&fail, &fault, Failing::AfterRun);
            decide(&fail, &fault, Failing::Early);
            fail_early(Some)
        })
        .await;
        assert!(failed.is_none());
        // The failure handed to the callers waiting is the same error; nothing else is.
        let (error, shared) = early.unwrap();
        let handed = handed_failure(&shared).unwrap().error();
        assert_eq!(handed.to_string(), error.to_string());
        assert!(handed.to_string().contains("down"));
        assert!(handed_failure(&(Arc::new("boom") as SharedFailure)).is_none());
        // Outside a call: decided, nothing recorded, no panic.
        assert_eq!(decide(&fail, &fault, Failing::Early), FaultAction::Fail);
        assert_eq!(decide(&None, &fault, Failing::Early), FaultAction::Log);
    }
}
