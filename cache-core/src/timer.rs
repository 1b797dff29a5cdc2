//! The one timer of cachet: a pause that ends after a real duration, wherever cachet's
//! futures run.
//!
//! Cached calls run in any tokio runtime (with or without its timer enabled) and in plain
//! fns driven by [`crate::blocking::run`], which may block the very thread a
//! `current_thread` runtime's timer needs. So pauses are served by one thread of cachet's
//! own, started on the first pause: it wakes each pause at its deadline, earliest first.
//! Everything in the engine that waits for time passing goes through
//! [`crate::clock::Clock::sleep`], which uses this timer for the system clock; only waits
//! that are about real time outside the process (polling a Redis lock, a chaos delay)
//! use [`pause`] directly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A future that completes after `duration` of real time.
pub(crate) fn pause(duration: Duration) -> Pause {
    Pause {
        duration,
        state: None,
    }
}

/// See [`pause`].
pub(crate) struct Pause {
    duration: Duration,
    state: Option<Arc<PauseState>>,
}

/// The shared end of a pause: done once its deadline passed, waking whoever polls it.
#[derive(Default)]
pub(crate) struct PauseState {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl PauseState {
    /// Marks the pause done and wakes its future.
    pub(crate) fn finish(&self) {
        self.done.store(true, Ordering::Release);
        if let Some(waker) = lock_ignoring_poison(&self.waker).take() {
            waker.wake();
        }
    }

    /// Ready once finished; otherwise remembers the waker. The waker is stored before
    /// `done` is checked, so a finish in between is not lost.
    pub(crate) fn poll_done(&self, cx: &Context<'_>) -> Poll<()> {
        *lock_ignoring_poison(&self.waker) = Some(cx.waker().clone());
        if self.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// No user code runs while these locks are held, so a poisoned one still guards
/// consistent data.
pub(crate) fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One pending pause: its deadline, a tie-breaker keeping the heap's order total, and
/// its state.
struct Pending(Instant, u64, Arc<PauseState>);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// The pauses under way, earliest deadline first, served by the timer thread.
struct Timer {
    pending: Mutex<BinaryHeap<Reverse<Pending>>>,
    changed: Condvar,
    next_id: AtomicU64,
}

impl Timer {
    /// The timer, its thread started on first use; `None` if no thread can be started.
    fn get() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                pending: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
                next_id: AtomicU64::new(0),
            }));
            std::thread::Builder::new()
                .name("cachet-timer".into())
                .spawn(move || timer.run())
                .ok()
                .map(|_| timer)
        })
    }

    fn add(&self, deadline: Instant, state: Arc<PauseState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock_ignoring_poison(&self.pending).push(Reverse(Pending(deadline, id, state)));
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut pending = lock_ignoring_poison(&self.pending);
        loop {
            let now = Instant::now();
            while pending.peek().is_some_and(|Reverse(p)| p.0 <= now) {
                if let Some(Reverse(Pending(_, _, state))) = pending.pop() {
                    state.finish();
                }
            }
            pending = match pending.peek().map(|Reverse(p)| p.0) {
                Some(next) => {
                    self.changed
                        .wait_timeout(pending, next.saturating_duration_since(now))
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
                None => self
                    .changed
                    .wait(pending)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            };
        }
    }
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let state = self.state.get_or_insert_with(|| {
            let state = Arc::new(PauseState::default());
            match (duration.is_zero(), Timer::get()) {
                (false, Some(timer)) => timer.add(Instant::now() + duration, state.clone()),
                // Nothing to wait for, or no thread to time it: done at once rather than
                // never.
                _ => state.done.store(true, Ordering::Release),
            }
            state
        });
        state.poll_done(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_end_outside_any_runtime() {
        let start = Instant::now();
        crate::blocking::run(pause(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pauses_end_in_a_current_thread_runtime() {
        let start = Instant::now();
        pause(Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn one_timer_serves_many_pauses_in_deadline_order() {
        let long = std::thread::spawn(|| crate::blocking::run(pause(Duration::from_secs(2))));
        std::thread::sleep(Duration::from_millis(20));
        crate::blocking::run(pause(Duration::from_millis(10)));
        assert!(
            !long.is_finished(),
            "a later, shorter pause is not held up by a longer one"
        );
        long.join().unwrap();
    }
}
