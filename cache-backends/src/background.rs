//! The backend's own runtime: one small thread on which every connection of the remote
//! drivers (Redis, databases, the DynamoDB SDK's HTTP connections) is made and driven.
//!
//! A connection's driver task lives on the runtime that created it, and dies with it. A
//! global cache manager outlives the short runtimes of `#[tokio::test]`s and may be used
//! from plain threads, so connections must not belong to whichever runtime happened to
//! call first. Operations are polled by their caller (any runtime, or a plain
//! `block_on`) inside this runtime's context: whatever they create while running —
//! connections and their driver tasks, sockets, timers — belongs to this runtime, while
//! the operation itself costs no task, no hop to this thread and back, and no wake-up
//! of it beyond the connection driver's own.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use cache_core::{TierError, TierErrorKind};
use tokio::runtime::{Handle, Runtime};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The handle of the backend runtime, started on first use. The runtime lives as long as
/// the process: it is never dropped, so it is never dropped inside an async context.
pub(crate) fn handle() -> Result<&'static Handle, TierError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cachet-io")
                .enable_all()
                .build()
                .map_err(|e| {
                    format!("cannot start the background runtime of the remote drivers: {e}")
                })
        })
        .as_ref()
        .map(Runtime::handle)
        .map_err(|e| TierError::with_kind(e.clone(), TierErrorKind::Other))
}

type Work<'a, T> = Pin<Box<dyn Future<Output = Result<T, TierError>> + Send + 'a>>;

/// Runs `fut` in the backend runtime's context; the returned future resolves to its
/// output, and drops the work when dropped early (a caller that gave up does not leave
/// work behind).
pub(crate) fn run<'a, T, F>(fut: F) -> Remote<'a, T>
where
    F: Future<Output = Result<T, TierError>> + Send + 'a,
{
    match handle() {
        Ok(h) => Remote {
            runtime: Some(h),
            work: Some(Box::pin(fut)),
            failed: None,
        },
        Err(e) => Remote {
            runtime: None,
            work: None,
            failed: Some(e),
        },
    }
}

/// An operation on the backend runtime's resources, awaited from anywhere.
///
/// Each poll enters the backend runtime's context (as `tokio_util`'s `TokioContext`
/// does), so a timer or a task the operation creates is the backend runtime's, and works
/// however the caller is run. An earlier design spawned every operation onto the backend
/// thread: with 64 concurrent callers that one thread ran all their work, and every
/// operation paid a task and two cross-thread wake-ups (BENCHMARKS.md, "Redis L2").
/// The DynamoDB driver runs the SDK's calls the same way: hyper's connection tasks and
/// the SDK's timers belong to this runtime, whichever runtime awaits the call.
pub(crate) struct Remote<'a, T> {
    runtime: Option<&'static Handle>,
    work: Option<Work<'a, T>>,
    failed: Option<TierError>,
}

/// [`run`] without the box, for the one-request operations of the Redis driver on a live
/// connection (`redis::connection`'s `run_one`), whose future the tier boxes once already:
/// the future `make` makes, polled inline, its first poll in the backend runtime's context.
/// A second box per read cost an allocation, its free and a ~500-byte copy of the future
/// (BENCHMARKS.md, "64 tasks, phase J"). Made here rather than handed over made: a future
/// handed over would take its room twice in this one (as an argument, and pinned).
///
/// The first poll only, so every operation given to it must make its timers and sockets
/// at its first poll (`run_one`'s contract): such an operation makes what it makes there
/// (redis's response timeout, a timer, is armed when the request is sent), and what it may
/// make later (a new connection, after one found dead) it makes through [`run`], which
/// enters the context at every poll. Entering takes and drops a reference to the runtime's handle, a write to one
/// cache line that every caller thread shares: once per read, not at every poll. Dropped
/// early, the future is dropped outside the context: nothing of it needs one then (tokio's
/// timers and sockets keep the handle of the runtime they were made on), and a guard
/// entering it there would make this future `!Send`.
#[cfg(feature = "redis")]
pub(crate) async fn in_context<T, F>(make: impl FnOnce() -> F) -> Result<T, TierError>
where
    F: Future<Output = Result<T, TierError>>,
{
    let runtime = handle()?;
    first_poll_in(Some(runtime), std::pin::pin!(make())).await
}

/// `fut`, its first poll in `runtime`'s context (none: in the caller's), the next ones in the
/// caller's: [`in_context`]'s poll, for a future that is made already and costs nothing to
/// hand over (a box, or a pinned reference).
#[cfg(feature = "redis")]
pub(crate) async fn first_poll_in<F: Future + Unpin>(
    runtime: Option<&'static Handle>,
    mut fut: F,
) -> F::Output {
    let mut runtime = runtime;
    std::future::poll_fn(|cx| {
        let _context = runtime.take().map(Handle::enter);
        Pin::new(&mut fut).poll(cx)
    })
    .await
}

impl<T> Future for Remote<'_, T> {
    type Output = Result<T, TierError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(work) = this.work.as_mut() else {
            let err = this.failed.take().unwrap_or_else(|| {
                TierError::with_kind("polled after completion", TierErrorKind::Other)
            });
            return Poll::Ready(Err(err));
        };
        let out = {
            let _context = this.runtime.map(Handle::enter);
            work.as_mut().poll(cx)
        };
        if out.is_ready() {
            this.work = None;
        }
        out
    }
}

impl<T> Drop for Remote<'_, T> {
    fn drop(&mut self) {
        // Dropped mid-flight: release its timers and sockets in the context they
        // belong to.
        if let Some(work) = self.work.take() {
            let _context = self.runtime.map(Handle::enter);
            drop(work);
        }
    }
}

/// The one listener task of a bus (`RedisBus`, `PostgresBus`): started once on the backend
/// runtime by the first `subscribe`, aborted when the slot (the bus) is dropped. Only the
/// drivers with a bus build it.
#[cfg(any(feature = "redis", feature = "postgres"))]
#[derive(Debug, Default)]
pub(crate) struct SubscriberSlot {
    task: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

#[cfg(any(feature = "redis", feature = "postgres"))]
impl SubscriberSlot {
    /// An empty slot: no listener yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Spawns `listener()` on the backend runtime unless a listener runs already (a second
    /// subscriber is refused with a warning naming `channel`: the first handler stays);
    /// `what` names the bus in the error logged when the runtime cannot start.
    pub(crate) fn start<F, Fut>(&self, what: &str, channel: &str, listener: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Ok(mut guard) = self.task.lock() else {
            return;
        };
        if guard.is_some() {
            tracing::warn!(%channel, "bus subscribed twice; keeping the first handler");
            return;
        }
        match handle() {
            Ok(rt) => *guard = Some(rt.spawn(listener()).abort_handle()),
            Err(e) => tracing::error!(error = %e, "cannot start the {what} listener"),
        }
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.task.lock() {
            if let Some(task) = guard.take() {
                task.abort();
            }
        }
    }
}
