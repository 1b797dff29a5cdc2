//! Work that outlives a call: refreshes that finish after a soft timeout answered, eager
//! refreshes, the replay of changes an unreachable L2 missed. (Waits for time passing go
//! through the store's clock, `clock.rs`.)
//!
//! Refreshes run on the caller's tokio runtime when there is one, so a refresh shares the
//! application's runtime and dies with it. Plain fns called outside any runtime use
//! cachet's own small runtime instead: one thread, started on first use and never dropped
//! (so it is never dropped inside an async context). A `JoinHandle` can be awaited from
//! any runtime or from [`crate::blocking::run`], so callers need not know which one ran it.

use std::future::Future;
use std::sync::OnceLock;

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

/// Starts `future` on cachet's own runtime (work that must not die with the runtime of
/// whichever caller started it, such as the replay of changes an unreachable L2 missed),
/// or gives it back when that runtime cannot start.
pub(crate) fn spawn_own<F>(future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match own_handle() {
        Some(handle) => Ok(handle.spawn(future)),
        None => Err(future),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawns_on_its_own_runtime_without_a_caller_runtime() {
        let task = spawn_own(async { 5 }).ok().expect("a background runtime");
        assert_eq!(crate::blocking::run(task).ok(), Some(5));
    }

    #[tokio::test]
    async fn the_callers_runtime_is_preferred_for_refreshes() {
        assert_eq!(handle().map(|h| h.id()), Some(Handle::current().id()));
    }
}
