//! Work that outlives a call: refreshes that finish after a soft timeout answered, eager
//! refreshes, and the timers that bound waits.
//!
//! Both run on the caller's tokio runtime when there is one, so a refresh shares the
//! application's runtime and dies with it. Plain fns called outside any runtime use
//! cachet's own small runtime instead: one thread, started on first use and never dropped
//! (so it is never dropped inside an async context). A `JoinHandle` can be awaited from
//! any runtime or from [`crate::blocking::run`], so callers need not know which one ran it.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();

/// The caller's runtime, else cachet's own; `None` (logged once) if that cannot start.
pub(crate) fn handle() -> Option<Handle> {
    Handle::try_current().ok().or_else(own_handle)
}

/// cachet's own runtime (never the caller's), started on first use.
pub(crate) fn own_handle() -> Option<Handle> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cachet-background")
                .enable_all()
                .build()
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "cachet: cannot start the background runtime; soft timeouts and eager refreshes wait for the function instead");
                })
                .ok()
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
}

/// Starts `future` in the background, or gives it back when no runtime can run it.
pub(crate) fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match handle() {
        Some(handle) => Ok(handle.spawn(future)),
        None => Err(future),
    }
}

/// Completes after `duration`, from any runtime or none; never, if no runtime can time it
/// (the caller then waits for whatever it raced against).
pub(crate) async fn sleep(duration: Duration) {
    if Handle::try_current().is_ok() {
        return tokio::time::sleep(duration).await;
    }
    // The timer is created on the runtime that drives it.
    match spawn(async move { tokio::time::sleep(duration).await }) {
        Ok(timer) => {
            // A timer task is never aborted, so it can only fail by its runtime shutting
            // down, which cachet's own never does.
            let _ = timer.await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawns_and_times_without_a_runtime() {
        let task = spawn(async { 5 }).ok().expect("a background runtime");
        assert_eq!(crate::blocking::run(task).ok(), Some(5));
        crate::blocking::run(sleep(Duration::from_millis(5)));
    }

    #[tokio::test]
    async fn uses_the_current_runtime() {
        let task = spawn(async { tokio::task::try_id().is_some() })
            .ok()
            .expect("the test's runtime");
        assert_eq!(task.await.ok(), Some(true));
        sleep(Duration::from_millis(1)).await;
    }
}
