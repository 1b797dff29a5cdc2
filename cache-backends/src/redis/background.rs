//! The backend's own runtime: one small thread on which every Redis connection is made
//! and driven, and every operation runs.
//!
//! A connection's driver task lives on the runtime that created it, and dies with it. A
//! global cache manager outlives the short runtimes of `#[tokio::test]`s and may be used
//! from plain threads, so connections must not belong to whichever runtime happened to
//! call first. Callers await a `JoinHandle`, which works from any runtime (or a plain
//! `block_on`), and the work itself always runs here.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use cache_core::{TierError, TierErrorKind};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The handle of the backend runtime, started on first use. The runtime lives as long as
/// the process: it is never dropped, so it is never dropped inside an async context.
pub(crate) fn handle() -> Result<&'static Handle, TierError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cachet-redis")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the Redis background runtime: {e}"))
        })
        .as_ref()
        .map(Runtime::handle)
        .map_err(|e| TierError::with_kind(e.clone(), TierErrorKind::Other))
}

/// Runs `fut` on the backend runtime; the returned future resolves to its output, and
/// aborts the task when dropped early (a caller that gave up does not leave work behind).
pub(crate) fn run<T, F>(fut: F) -> Remote<T>
where
    F: Future<Output = Result<T, TierError>> + Send + 'static,
    T: Send + 'static,
{
    match handle() {
        Ok(h) => Remote {
            task: Some(h.spawn(fut)),
            failed: None,
        },
        Err(e) => Remote {
            task: None,
            failed: Some(e),
        },
    }
}

/// A task on the backend runtime, awaited from anywhere.
pub(crate) struct Remote<T> {
    task: Option<JoinHandle<Result<T, TierError>>>,
    failed: Option<TierError>,
}

impl<T> Future for Remote<T> {
    type Output = Result<T, TierError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            let err = self.failed.take().unwrap_or_else(|| {
                TierError::with_kind("polled after completion", TierErrorKind::Other)
            });
            return Poll::Ready(Err(err));
        };
        match Pin::new(task).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                self.task = None;
                Poll::Ready(out.unwrap_or_else(|join| {
                    Err(TierError::with_kind(
                        format!("redis operation task failed: {join}"),
                        TierErrorKind::Other,
                    ))
                }))
            }
        }
    }
}

impl<T> Drop for Remote<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
