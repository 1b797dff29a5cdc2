//! Running cachet's async orchestration from plain (non-async) functions.
//!
//! The future is polled on the calling thread, so a plain fn's body runs where it was
//! called, with its borrows. A memory hit completes on the first poll. A future that must
//! wait (a remote tier, another caller's single flight) parks the thread; inside a
//! multi-thread tokio runtime the wait is wrapped in `block_in_place` so the runtime
//! moves its other tasks elsewhere. Remote tiers run their I/O on their own runtime, so the
//! wait never depends on the caller's runtime — except in a `current_thread` runtime where
//! the *other* side of a single flight is an async task of that same runtime: that task
//! cannot run while a plain fn blocks the thread (the documented caveat).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
}

/// Drives `future` to completion on this thread.
pub(crate) fn run<F: Future>(future: F) -> F::Output {
    WAKER.with(|waker| {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(waker);
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let mut wait = || loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ready_and_pending_futures_complete() {
        assert_eq!(run(async { 3 }), 3);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(5).unwrap();
        });
        assert_eq!(run(rx).unwrap(), 5);
        t.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_inside_a_multi_thread_runtime() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send(7).unwrap();
        });
        assert_eq!(run(rx).unwrap(), 7);
    }
}
