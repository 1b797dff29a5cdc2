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
//! A runtime's connection is made with the shared connection's client and settings (one
//! server only: [`super::connection`]) and is retired at the runtime's next call after the
//! shared connection was found dead (a restart of the server) or the server answered
//! `READONLY`: made beside a shared connection that is gone, it may be to a server process
//! that is gone too. A timeout of the shared connection (a slow server) retires none.
//!
//! Each runtime's entry is held by a task of that runtime (the one that connects, then
//! keeps the entry's [`Kept`]): a runtime that shuts down drops its tasks, that one and the
//! connection's driver among them, and its entry is then dead and swept, even if its
//! connect never ended. Nothing of it is counted as a fault: no other caller ever used that
//! connection. A tier dropped, or an entry replaced, ends that task; the task does not own
//! the connection, which closes once the entry and the operations still using it (each
//! holds a clone) let it go.
//!
//! An operation failing on a runtime's connection retires it ([`Locals::retire`]): the
//! runtime's reads use the shared connection for [`RETRY_AFTER`], then it is made again. Only
//! failed connects lengthen that wait ([`Locals::connect_failed`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};
use std::task::{Context, RawWakerVTable};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;

use super::topology::Conn;

/// At most this many runtimes have a connection of their own per tier (and per bus: one
/// per shared connection); callers on more runtimes at once share the backend runtime's.
const MAX_RUNTIMES: usize = 64;

/// After a failed connect, the runtime's reads go through the backend's connection for
/// this long before another connect is tried (doubled after each further failed connect in
/// a row, up to [`RETRY_AT_MOST`]); so they do after its connection is retired by a failed
/// operation (which is not counted as a failed connect).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The longest wait between two connects of one runtime.
const RETRY_AT_MOST: Duration = Duration::from_secs(300);

/// How many steps of its runtime's timer [`within_driven_time`] counts its limit in.
const STEPS: u32 = 8;

/// A connect bounded by [`within_driven_time`] fails past this much of its runtime's time in
/// all, driven or not, at the least.
const CEILING_AT_LEAST: Duration = Duration::from_secs(30);

/// `work`'s output, or `None` once `work` has been pending for `limit` of the time its
/// runtime was driven, counted in steps of its timer: a step that ends late (by more than a
/// step) is a stretch the runtime sat idle, between two `block_on`s say, when `work` could
/// not make progress either, and does not count. (A wall-clock timer failed every connect
/// of a runtime driven now and then, its handshake spread over several of its turns.)
/// `None` too past ten times `limit` in all (at least [`CEILING_AT_LEAST`]), driven or not:
/// a runtime driven only in short turns, or starved of CPU, would otherwise count no step
/// and wait on a server that never answers for as long as it runs. Both are measured on the
/// runtime's clock (`tokio::time`), so a paused clock counts consistently.
pub(crate) async fn within_driven_time<F: std::future::Future>(
    limit: Duration,
    work: F,
) -> Option<F::Output> {
    within(limit, limit.saturating_mul(10).max(CEILING_AT_LEAST), work).await
}

/// [`within_driven_time`] with its ceiling given.
async fn within<F: std::future::Future>(
    limit: Duration,
    ceiling: Duration,
    work: F,
) -> Option<F::Output> {
    use futures_util::future::{select, Either};
    use tokio::time::Instant;
    let step = (limit / STEPS).max(Duration::from_millis(1));
    let mut work = std::pin::pin!(work);
    let mut driven = Duration::ZERO;
    let began = Instant::now();
    loop {
        let started = Instant::now();
        let tick = std::pin::pin!(tokio::time::sleep(step));
        match select(work.as_mut(), tick).await {
            Either::Left((out, _)) => return Some(out),
            Either::Right(((), _)) => {
                if started.elapsed() < step * 2 {
                    driven += step;
                }
                if driven >= limit || began.elapsed() >= ceiling {
                    return None;
                }
            }
        }
    }
}

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
    let wakers = tokio_wakers();
    let Some(known) = wakers.iter().position(|known| std::ptr::eq(*known, vtable)) else {
        refused_once();
        return None;
    };
    let in_task = known == TASK_WAKER;
    if in_task && MULTI_THREAD_WORKER.get() {
        return None;
    }
    let handle = Handle::try_current().ok()?;
    if handle.runtime_flavor() == RuntimeFlavor::CurrentThread {
        return Some(handle);
    }
    if in_task {
        MULTI_THREAD_WORKER.set(true);
    }
    None
}

std::thread_local! {
    /// Whether this thread has polled a task of a multi-thread runtime here: a worker of
    /// one, whose operations take the shared connection. Kept so that each one does not ask
    /// for the current runtime (`Handle::try_current` takes and drops a reference to the
    /// runtime's handle: a write to one cache line that every worker's reads shared, two
    /// per read; BENCHMARKS.md, "64 tasks, phase J"). It only ever sends an operation to the
    /// shared connection, which serves any caller: were the thread later to drive a
    /// `current_thread` runtime's tasks (a worker's `block_in_place` running one), those would
    /// read through the shared connection too, slower but sound.
    static MULTI_THREAD_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`tokio_wakers`]' index of a task's waker (any runtime's tasks share it); before it, a
/// `current_thread` runtime's `block_on`'s.
const TASK_WAKER: usize = 1;

/// Whether a poll inside a `current_thread` runtime's context with a waker of no tokio
/// scheduler was told of.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Tells once per process, at `debug`, that a poll inside a `current_thread` runtime's
/// context carried a waker of no tokio scheduler, so it used the shared connection: a
/// plain fn's wait does, as it should; so would every read of that runtime if tokio's
/// wakers were not recognised in this build (their vtables are told apart by address, which
/// a compiler need not keep unique), which would silently lose the runtime's connection.
fn refused_once() {
    if REFUSED.load(Ordering::Relaxed) {
        return;
    }
    let in_current_thread = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::CurrentThread);
    if in_current_thread && !REFUSED.swap(true, Ordering::Relaxed) {
        tracing::debug!(
            known_wakers = tokio_wakers().len(),
            "cachet: a poll in a current_thread runtime's context with a waker of no tokio scheduler (a plain fn's wait; or tokio's wakers not recognised in this build): its Redis operations use the shared connection (told once)"
        );
    }
}

/// One runtime's connection (a [`Conn`], or a stand-in in unit tests), or its making.
struct Local<C> {
    runtime: tokio::runtime::Id,
    /// The shared connection's generation (see [`Locals::get`]) this entry is for.
    generation: u64,
    /// The connect this entry's state is of: see [`Ticket`].
    attempt: u64,
    /// Connects failed in a row, whatever their generation (only a connect made resets
    /// it): each one doubles the wait before the next. Failed operations are not counted.
    failures: u32,
    /// Closed once the runtime's task holding the entry's [`Kept`] is gone: the runtime
    /// shut down. Dropping it (the entry replaced or swept, the tier dropped) ends that task.
    keeper: oneshot::Sender<()>,
    state: State<C>,
}

/// What the task of a runtime that connects, then keeps its entry, holds: see
/// [`Local::keeper`].
pub(crate) type Kept = oneshot::Receiver<()>;

enum State<C> {
    /// Being made by a task of the runtime.
    Connecting,
    /// Made, and driven by the runtime while its entry is live.
    Ready(C),
    /// The last connect failed at this instant.
    Failed(Instant),
    /// Connecting panicked (a runtime built without I/O or time): never again.
    Never,
}

impl<C> Local<C> {
    /// Whether the runtime still runs (the task holding the entry is there).
    fn live(&self) -> bool {
        !self.keeper.is_closed()
    }
}

/// How long a runtime's reads go through the shared connection after `failures` failed
/// connects in a row: [`RETRY_AFTER`], doubled for each further failure, at most
/// [`RETRY_AT_MOST`].
fn retry_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_AFTER
        .saturating_mul(1 << doublings)
        .min(RETRY_AT_MOST)
}

/// The connections of one tier made on its callers' `current_thread` runtimes.
pub(crate) struct Locals<C = Conn> {
    /// Read-locked by the reads of runtimes whose connection is ready (many runtimes read
    /// at once without waiting for each other), write-locked to change an entry.
    runtimes: RwLock<Vec<Local<C>>>,
    /// The last connect's number (see [`Ticket`]).
    attempts: AtomicU64,
}

impl<C> Default for Locals<C> {
    fn default() -> Self {
        Self {
            runtimes: RwLock::new(Vec::new()),
            attempts: AtomicU64::new(0),
        }
    }
}

/// One connect of one runtime, and the connection it made: what the outcome of the connect
/// ([`Locals::made`], [`Locals::connect_failed`], [`Locals::never`]) or of an operation on
/// that connection ([`Locals::retire`]) is reported with. An outcome acts only on the entry
/// still at that connect: one that comes late (the entry retired and connecting again
/// since, or at a newer generation) changes nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    runtime: tokio::runtime::Id,
    attempt: u64,
}

/// What [`Locals::get`] found for a runtime.
pub(crate) enum Found<C = Conn> {
    /// Its own connection.
    Ready(C, Ticket),
    /// None yet: the caller makes one on a task of the runtime, which holds this until the
    /// entry goes (see [`Local::keeper`]), and uses the backend's meanwhile.
    Make(Kept, Ticket),
    /// None, being made or recently failed, or too many runtimes: use the backend's.
    Shared,
}

impl<C: Clone> Locals<C> {
    /// The connection of `runtime` made for the shared connection's `generation`, or what
    /// to do without one. The generation changes whenever the shared connection is found
    /// dead (a server restart) or the server answers `READONLY`, not on a timeout: a
    /// runtime's connection of an older one is retired (it is likely dead too) and a new
    /// one made.
    pub(crate) fn get(&self, runtime: tokio::runtime::Id, generation: u64) -> Found<C> {
        if let Some((conn, ticket)) = self.ready(runtime, generation) {
            return Found::Ready(conn, ticket);
        }
        let mut runtimes = self
            .runtimes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(local) = runtimes.iter_mut().find(|l| l.runtime == runtime) {
            let current = local.generation == generation && local.live();
            let ticket = Ticket {
                runtime,
                attempt: local.attempt,
            };
            match &local.state {
                State::Ready(conn) if current => return Found::Ready(conn.clone(), ticket),
                State::Connecting if current => return Found::Shared,
                State::Never if local.live() => return Found::Shared,
                State::Failed(at) if current && at.elapsed() < retry_after(local.failures) => {
                    return Found::Shared
                }
                _ => {}
            }
            // Dropping the old keeper ends the old task; the old connection closes once the
            // operations still using it end (they hold clones of it).
            let (keeper, kept) = oneshot::channel();
            local.keeper = keeper;
            local.generation = generation;
            local.attempt = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
            local.state = State::Connecting;
            let ticket = Ticket {
                runtime,
                attempt: local.attempt,
            };
            return Found::Make(kept, ticket);
        }
        // Runtimes shut down since, their connects ended or not, are swept before a new
        // one is counted.
        runtimes.retain(Local::live);
        if runtimes.len() >= MAX_RUNTIMES {
            return Found::Shared;
        }
        let (keeper, kept) = oneshot::channel();
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        runtimes.push(Local {
            runtime,
            generation,
            attempt,
            failures: 0,
            keeper,
            state: State::Connecting,
        });
        Found::Make(kept, Ticket { runtime, attempt })
    }

    /// `runtime`'s connection, if it is ready, made for `generation`, and the runtime runs.
    fn ready(&self, runtime: tokio::runtime::Id, generation: u64) -> Option<(C, Ticket)> {
        let runtimes = self.runtimes.read().unwrap_or_else(PoisonError::into_inner);
        let local = runtimes.iter().find(|l| l.runtime == runtime)?;
        match &local.state {
            State::Ready(conn) if local.generation == generation && local.live() => {
                let ticket = Ticket {
                    runtime,
                    attempt: local.attempt,
                };
                Some((conn.clone(), ticket))
            }
            _ => None,
        }
    }

    /// The connect of `ticket` made `conn`: kept unless the entry moved on meanwhile (a
    /// newer generation, the runtime gone), when it is dropped here.
    pub(crate) fn made(&self, ticket: Ticket, conn: C) {
        self.connecting(ticket, |local| {
            local.state = State::Ready(conn);
            local.failures = 0;
        });
    }

    /// The connect of `ticket` failed: the runtime's reads go through the backend's
    /// connection for a while, longer after each failed connect in a row. How many connects
    /// failed in a row (0 for an entry that moved on meanwhile).
    pub(crate) fn connect_failed(&self, ticket: Ticket) -> u32 {
        self.connecting(ticket, |local| {
            local.state = State::Failed(Instant::now());
            local.failures = local.failures.saturating_add(1);
            local.failures
        })
        .unwrap_or(0)
    }

    /// The connect of `ticket` panicked: the runtime's reads use the backend's connection
    /// for as long as it runs.
    pub(crate) fn never(&self, ticket: Ticket) {
        self.connecting(ticket, |local| local.state = State::Never);
    }

    /// An operation failed on the connection of `ticket` (it is dead, or timed out): that
    /// connection is retired and the runtime's reads go through the backend's connection
    /// for [`RETRY_AFTER`] before the next connect. Not a failed connect: the count of
    /// those is kept as it is, and operations failing at once on one connection retire it
    /// once. A late failure, of a connection retired already, changes nothing (a newer
    /// connect in progress among others).
    pub(crate) fn retire(&self, ticket: Ticket) {
        let mut runtimes = self
            .runtimes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(local) = runtimes.iter_mut().find(|l| {
            l.runtime == ticket.runtime
                && l.attempt == ticket.attempt
                && matches!(l.state, State::Ready(_))
        }) {
            local.state = State::Failed(Instant::now());
        }
    }

    /// `change` on the entry of `ticket`'s runtime, if it is still connecting for that
    /// ticket.
    fn connecting<R>(&self, ticket: Ticket, change: impl FnOnce(&mut Local<C>) -> R) -> Option<R> {
        let mut runtimes = self
            .runtimes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        runtimes
            .iter_mut()
            .find(|l| {
                l.runtime == ticket.runtime
                    && l.attempt == ticket.attempt
                    && matches!(l.state, State::Connecting)
            })
            .map(change)
    }

    /// How long `runtime`'s reads go through the shared connection after its entry's last
    /// failure, if the entry is failed (for tests).
    #[cfg(test)]
    fn waits(&self, runtime: tokio::runtime::Id) -> Option<Duration> {
        let runtimes = self.runtimes.read().unwrap_or_else(PoisonError::into_inner);
        let local = runtimes.iter().find(|l| l.runtime == runtime)?;
        matches!(local.state, State::Failed(_)).then(|| retry_after(local.failures))
    }

    /// Moves `runtime`'s last failure `by` into the past, as if that long went by (for tests).
    #[cfg(test)]
    fn age(&self, runtime: tokio::runtime::Id, by: Duration) {
        let mut runtimes = self
            .runtimes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(local) = runtimes.iter_mut().find(|l| l.runtime == runtime) {
            if let State::Failed(at) = &mut local.state {
                *at = at.checked_sub(by).unwrap_or(*at);
            }
        }
    }

    /// How many runtimes have a live connection of their own (for tests).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        let runtimes = self.runtimes.read().unwrap_or_else(PoisonError::into_inner);
        runtimes
            .iter()
            .filter(|l| l.live() && matches!(l.state, State::Ready(_)))
            .count()
    }
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
        // Inside its context but polled by another executor (a plain fn's wait): told once.
        let entered = ct.enter();
        assert!(!driving(), "a foreign waker inside the runtime's context");
        assert!(REFUSED.load(Ordering::Relaxed), "told of");
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

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// A `Locals` of stand-in connections (numbers) and a runtime (kept alive by the caller).
    fn locals() -> (Locals<u32>, tokio::runtime::Runtime) {
        (Locals::default(), current_thread())
    }

    /// Makes `id`'s connection (`conn`) at `generation`: the entry's keeper, and its ticket.
    fn make(
        locals: &Locals<u32>,
        id: tokio::runtime::Id,
        generation: u64,
        conn: u32,
    ) -> (Kept, Ticket) {
        let Found::Make(kept, ticket) = locals.get(id, generation) else {
            panic!("a connect is due");
        };
        locals.made(ticket, conn);
        (kept, ticket)
    }

    #[test]
    fn a_runtime_gets_one_connect_at_a_time_and_waits_after_a_failure() {
        let (locals, ct) = locals();
        let id = ct.handle().id();
        let (_kept, ticket) = make(&locals, id, 0, 7);
        assert!(matches!(locals.get(id, 0), Found::Ready(7, _)), "made");
        assert_eq!(locals.live(), 1);
        locals.retire(ticket);
        assert_eq!(locals.live(), 0, "retired by a failed operation");
        locals.age(id, RETRY_AFTER);
        let Found::Make(_kept, ticket) = locals.get(id, 0) else {
            panic!("connected again after the wait");
        };
        assert!(matches!(locals.get(id, 0), Found::Shared), "being made");
        assert_eq!(locals.connect_failed(ticket), 1);
        assert!(
            matches!(locals.get(id, 0), Found::Shared),
            "failed recently"
        );
        assert_eq!(locals.live(), 0);
    }

    #[test]
    fn runtimes_dropped_before_their_connect_ends_free_their_slots() {
        let locals = Locals::<u32>::default();
        for _ in 0..MAX_RUNTIMES + 36 {
            let rt = current_thread();
            let Found::Make(kept, _) = locals.get(rt.handle().id(), 0) else {
                panic!("a new runtime makes its connection");
            };
            // Its connecting task, still connecting when the runtime goes.
            drop(rt.spawn(async move {
                let _kept = kept;
                std::future::pending::<()>().await;
            }));
            drop(rt);
        }
        let rt = current_thread();
        assert!(
            matches!(locals.get(rt.handle().id(), 0), Found::Make(..)),
            "a new runtime gets a connection of its own"
        );
    }

    #[test]
    fn a_new_generation_retires_the_runtimes_connection_and_ends_its_task() {
        let (locals, ct) = locals();
        let id = ct.handle().id();
        let Found::Make(mut old, old_ticket) = locals.get(id, 0) else {
            panic!("the first call makes the connection");
        };
        let Found::Make(_new, _) = locals.get(id, 1) else {
            panic!("made again for the new generation");
        };
        assert_eq!(
            old.try_recv(),
            Err(oneshot::error::TryRecvError::Closed),
            "the retired connection's task is told to end"
        );
        assert_eq!(
            locals.connect_failed(old_ticket),
            0,
            "an old generation's failure is ignored"
        );
        locals.made(old_ticket, 7);
        assert!(
            matches!(locals.get(id, 1), Found::Shared),
            "still being made: neither the old failure nor the old connection is taken"
        );
    }

    #[test]
    fn failed_operations_retire_the_connection_without_lengthening_the_wait() {
        let (locals, ct) = locals();
        let id = ct.handle().id();
        let (_kept, ticket) = make(&locals, id, 0, 7);
        // Ten reads in flight on it time out (a stalled server).
        for _ in 0..10 {
            locals.retire(ticket);
        }
        assert_eq!(locals.live(), 0, "the connection is retired");
        assert_eq!(locals.waits(id), Some(RETRY_AFTER), "one step, not ten");
        // A connect after the wait fails: the first failed connect, the first step.
        locals.age(id, RETRY_AFTER);
        let Found::Make(_kept, ticket) = locals.get(id, 0) else {
            panic!("connected again after the wait");
        };
        assert_eq!(locals.connect_failed(ticket), 1);
        assert_eq!(locals.waits(id), Some(RETRY_AFTER));
    }

    #[test]
    fn a_late_failed_operation_leaves_a_newer_connect_alone() {
        let (locals, ct) = locals();
        let id = ct.handle().id();
        let (_kept, first) = make(&locals, id, 0, 7);
        locals.retire(first);
        locals.age(id, RETRY_AFTER);
        let Found::Make(_kept, second) = locals.get(id, 0) else {
            panic!("connected again after the wait");
        };
        // One more read of the first connection ends now, failed.
        locals.retire(first);
        locals.made(second, 8);
        assert!(
            matches!(locals.get(id, 0), Found::Ready(8, _)),
            "the newer connection is kept"
        );
        locals.retire(first);
        assert_eq!(locals.live(), 1, "and stays");
    }

    /// A connect on a runtime driven only now and then, in turns too short to count (each
    /// step ends late), against a server that never answers (a pending future), still
    /// fails once its ceiling is past.
    #[test]
    fn a_connect_never_counted_as_driven_still_ends_at_its_ceiling() {
        let ct = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let limit = Duration::from_millis(80);
        let (done, ended) = std::sync::mpsc::channel();
        ct.spawn(async move {
            let out = within(limit, limit * 3, std::future::pending::<()>()).await;
            let _ = done.send(out);
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            // Idle for three steps (10 ms each) between two short turns.
            std::thread::sleep(Duration::from_millis(30));
            ct.block_on(tokio::task::yield_now());
            if let Ok(out) = ended.try_recv() {
                assert_eq!(out, None);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the connect never ended"
            );
        }
    }

    #[test]
    fn failed_connects_in_a_row_wait_longer_each_time_until_one_is_made() {
        let (locals, ct) = locals();
        let id = ct.handle().id();
        for (failures, wait) in [(1, RETRY_AFTER), (2, RETRY_AFTER * 2), (3, RETRY_AFTER * 4)] {
            let Found::Make(_kept, ticket) = locals.get(id, 0) else {
                panic!("a connect is due");
            };
            assert_eq!(locals.connect_failed(ticket), failures);
            assert_eq!(locals.waits(id), Some(wait));
            assert!(matches!(locals.get(id, 0), Found::Shared), "waiting");
            locals.age(id, wait);
        }
        // A new generation ends the wait, not the count.
        let Found::Make(_kept, ticket) = locals.get(id, 1) else {
            panic!("a new generation connects at once");
        };
        assert_eq!(locals.connect_failed(ticket), 4);
        locals.age(id, RETRY_AFTER * 8);
        let (_kept, ticket) = make(&locals, id, 1, 7);
        locals.retire(ticket);
        assert_eq!(
            locals.waits(id),
            Some(RETRY_AFTER),
            "a connect made resets it"
        );
        assert_eq!(retry_after(40), RETRY_AT_MOST);
    }
}
