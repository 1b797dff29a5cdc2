//! Connections driven by the caller's own `current_thread` runtime.
//!
//! Every connection of the driver lives on the backend runtime's thread
//! ([`crate::background`]), so that it outlives the runtimes that use it and works from
//! plain threads. The price, for a caller on a `current_thread` runtime reading one key
//! at a time, is two cross-thread wake-ups per read: the request wakes the backend thread,
//! which writes it, and the reply, read there, wakes the caller's thread again. A raw
//! connection made on the caller's runtime has neither: its driver task runs on the
//! caller's thread, between the caller's own polls.
//!
//! So a [`Locals`] keeps, per `current_thread` runtime that reads, one more connection made
//! on that runtime (its driver task spawned there), and a one-request operation uses it
//! when it is safe to: only when the poll comes from that runtime's own scheduler (a task
//! of it, or its `block_on`), recognised by the waker it polls with. A `current_thread`
//! runtime's tasks run only while the runtime is driven, so a caller that blocks the
//! runtime's thread instead of yielding to it (a plain fn's `blocking::run`, a
//! `futures::executor::block_on` inside a task) would wait forever for a driver task that
//! cannot run: such a poll carries another waker and goes through the backend runtime's
//! connection, as every operation did before. The first read from a runtime also goes
//! there, while the runtime's own connection is made in the background (a task of that
//! runtime); so does every read when that connection cannot be made.
//!
//! A runtime that shuts down drops its tasks, the connection's driver among them; its
//! entry is then dead (its keeper task, which holds a token, is gone) and is swept. Nothing
//! of it is counted as a fault: no other caller ever used that connection. A tier dropped
//! before the runtime ends its keeper task and closes its connection there.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, RawWakerVTable};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

use super::topology::Conn;

/// At most this many runtimes have a connection of their own per tier; callers on more
/// runtimes at once share the backend runtime's.
const MAX_RUNTIMES: usize = 64;

/// After a failed connect, the runtime's reads go through the backend's connection for
/// this long before another connect is tried.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The waker vtables of tokio's schedulers: a task's (any runtime's tasks share it) and a
/// `current_thread` runtime's `block_on`. Learned once, on a thread of its own (a runtime
/// cannot be started inside another's context), from a runtime made for the purpose.
fn tokio_wakers() -> &'static [&'static RawWakerVTable] {
    static WAKERS: OnceLock<Vec<&'static RawWakerVTable>> = OnceLock::new();
    WAKERS.get_or_init(|| {
        std::thread::Builder::new()
            .name("cachet-probe".into())
            .spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
                    return Vec::new();
                };
                let seen = |cx: &mut Context<'_>| {
                    let vtable: &'static RawWakerVTable = cx.waker().vtable();
                    std::task::Poll::Ready(vtable)
                };
                let in_block_on = rt.block_on(std::future::poll_fn(seen));
                let in_task = rt
                    .block_on(async { tokio::spawn(std::future::poll_fn(seen)).await })
                    .ok();
                let mut wakers = vec![in_block_on];
                wakers.extend(in_task);
                wakers
            })
            .ok()
            .and_then(|probe| probe.join().ok())
            .unwrap_or_default()
    })
}

/// The `current_thread` runtime whose scheduler is polling now, if the poll comes from it:
/// its context is entered and `cx`'s waker is a tokio scheduler's. `None` for a
/// multi-thread runtime, no runtime, or any other waker (see the module documentation).
pub(crate) fn driving_runtime(cx: &Context<'_>) -> Option<Handle> {
    let vtable = cx.waker().vtable();
    if !tokio_wakers()
        .iter()
        .any(|known| std::ptr::eq(*known, vtable))
    {
        return None;
    }
    let handle = Handle::try_current().ok()?;
    (handle.runtime_flavor() == RuntimeFlavor::CurrentThread).then_some(handle)
}

/// One runtime's connection, or its making.
struct Local {
    runtime: tokio::runtime::Id,
    state: State,
}

enum State {
    /// Being made by a task of the runtime.
    Connecting,
    /// Made; `alive` upgrades while the runtime (and so the connection's driver) runs.
    /// Dropping `_stop` (this entry replaced, or the tier dropped) ends the keeper task.
    Ready {
        conn: Conn,
        alive: Weak<()>,
        _stop: tokio::sync::oneshot::Sender<()>,
    },
    /// The last connect failed at this instant.
    Failed(Instant),
    /// Connecting panicked (a runtime built without I/O or time): never again.
    Never,
}

/// The connections of one tier made on its callers' `current_thread` runtimes.
#[derive(Default)]
pub(crate) struct Locals {
    runtimes: Mutex<Vec<Local>>,
}

/// What [`Locals::get`] found for a runtime.
pub(crate) enum Found {
    /// Its own connection.
    Ready(Conn),
    /// None yet: the caller makes one (a task of the runtime) and uses the backend's.
    Make,
    /// None, being made or recently failed, or too many runtimes: use the backend's.
    Shared,
}

impl Locals {
    /// The connection of `runtime`, or what to do without one.
    pub(crate) fn get(&self, runtime: tokio::runtime::Id) -> Found {
        let mut runtimes = self.runtimes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(local) = runtimes.iter_mut().find(|l| l.runtime == runtime) {
            return match &local.state {
                State::Ready { conn, alive, .. } if alive.strong_count() > 0 => {
                    Found::Ready(conn.clone())
                }
                State::Failed(at) if at.elapsed() < RETRY_AFTER => Found::Shared,
                State::Connecting | State::Never => Found::Shared,
                _ => {
                    local.state = State::Connecting;
                    Found::Make
                }
            };
        }
        // Runtimes shut down since are swept before a new one is counted.
        runtimes.retain(|l| match &l.state {
            State::Ready { alive, .. } => alive.strong_count() > 0,
            State::Failed(at) => at.elapsed() < RETRY_AFTER,
            State::Connecting | State::Never => true,
        });
        if runtimes.len() >= MAX_RUNTIMES {
            return Found::Shared;
        }
        runtimes.push(Local {
            runtime,
            state: State::Connecting,
        });
        Found::Make
    }

    /// `runtime`'s connection is made; it lives while `alive` does, and the keeper task
    /// holding `alive`'s token until `stop` is dropped.
    pub(crate) fn made(
        &self,
        runtime: tokio::runtime::Id,
        conn: Conn,
        alive: Weak<()>,
        stop: tokio::sync::oneshot::Sender<()>,
    ) {
        self.set(
            runtime,
            State::Ready {
                conn,
                alive,
                _stop: stop,
            },
        );
    }

    /// `runtime`'s connection could not be made, or failed: its reads go through the
    /// backend's connection for a while.
    pub(crate) fn failed(&self, runtime: tokio::runtime::Id) {
        self.set(runtime, State::Failed(Instant::now()));
    }

    /// Connecting on `runtime` panicked: its reads use the backend's connection.
    pub(crate) fn never(&self, runtime: tokio::runtime::Id) {
        self.set(runtime, State::Never);
    }

    fn set(&self, runtime: tokio::runtime::Id, state: State) {
        let mut runtimes = self.runtimes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(local) = runtimes.iter_mut().find(|l| l.runtime == runtime) {
            local.state = state;
        }
    }

    /// How many runtimes have a live connection of their own (for tests).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        let runtimes = self.runtimes.lock().unwrap_or_else(PoisonError::into_inner);
        runtimes
            .iter()
            .filter(|l| matches!(&l.state, State::Ready { alive, .. } if alive.strong_count() > 0))
            .count()
    }
}

/// The token a runtime's keeper task holds for as long as the runtime runs.
pub(crate) fn token() -> (Arc<()>, Weak<()>) {
    let token = Arc::new(());
    let alive = Arc::downgrade(&token);
    (token, alive)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::task::Poll;

    fn driving() -> bool {
        futures_util::FutureExt::now_or_never(poll_fn(|cx| Poll::Ready(driving_runtime(cx))))
            .flatten()
            .is_some()
    }

    #[test]
    fn only_a_current_thread_runtimes_own_polls_count() {
        let ct = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let from_block_on = ct.block_on(poll_fn(|cx| Poll::Ready(driving_runtime(cx).is_some())));
        assert!(from_block_on, "block_on of a current_thread runtime");
        let from_task = ct
            .block_on(async {
                tokio::spawn(poll_fn(|cx| Poll::Ready(driving_runtime(cx).is_some()))).await
            })
            .unwrap();
        assert!(from_task, "a task of a current_thread runtime");
        // Inside its context but polled by another executor (a plain fn's wait).
        let entered = ct.enter();
        assert!(!driving(), "a foreign waker inside the runtime's context");
        drop(entered);
        let mt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let from_mt = mt
            .block_on(async {
                tokio::spawn(poll_fn(|cx| Poll::Ready(driving_runtime(cx).is_some()))).await
            })
            .unwrap();
        assert!(!from_mt, "a multi-thread runtime's task");
        assert!(!driving(), "no runtime");
    }

    #[test]
    fn a_runtime_gets_one_connection_made_once_and_swept_when_it_is_gone() {
        let locals = Locals::default();
        let ct = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let id = ct.handle().id();
        assert!(matches!(locals.get(id), Found::Make));
        assert!(matches!(locals.get(id), Found::Shared), "being made");
        locals.failed(id);
        assert!(matches!(locals.get(id), Found::Shared), "failed recently");
        assert_eq!(locals.live(), 0);
        drop(ct);
    }
}
