//! Single flight: concurrent misses on one key run the function once.
//!
//! A miss takes the key's gate, looks again, and only then runs the function; callers that
//! arrive meanwhile wait for the gate and then find the stored value. The gate is released
//! by a guard's `Drop`, so a leader that panics or whose future is dropped hands over to
//! the next waiter, which looks again and, finding nothing, runs the function itself.
//! Plain fns wait through [`crate::blocking::run`], so they share these gates with async
//! callers: a plain fn and an async fn on one cache key also run once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The gates of one store, by stored key.
#[derive(Default)]
pub(crate) struct Flights {
    /// Shared with the guards of detached refreshes, which outlive the borrow of a call.
    gates: Arc<Mutex<HashMap<String, Arc<Gate>>>>,
}

#[derive(Default)]
struct Gate {
    /// Who holds the gate, if anyone.
    held: Mutex<Option<Holder>>,
    released: Notify,
}

/// Who holds a gate: the tokio task, or the thread when no task is running. A holder that
/// asks for its own gate again (a cached function calling a cached call on its own key) is
/// let through instead of waiting for itself forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
    /// Handed to a background refresh that has not started yet: nobody passes.
    Detached,
}

impl Holder {
    fn current() -> Self {
        tokio::task::try_id()
            .map_or_else(|| Holder::Thread(std::thread::current().id()), Holder::Task)
    }
}

enum Take {
    Taken,
    AlreadyOurs,
    Busy,
}

/// Cleans up after a caller whose wait for a gate was cancelled.
struct Waiting<'a> {
    flights: &'a Flights,
    key: &'a str,
    gate: &'a Arc<Gate>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // The map's reference and the waiter's own.
        self.flights.forget_if_unused(self.key, self.gate, 1);
    }
}

/// Held while one caller computes a key's value.
pub(crate) struct FlightGuard<'a> {
    flights: &'a Flights,
    key: String,
    gate: Arc<Gate>,
    /// False for a re-entrant guard: the outer guard of the same holder releases the gate.
    releases: bool,
}

/// Locks ignoring poison: no user code runs while these locks are held, so a poisoned lock
/// still guards consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Gate {
    fn try_take(&self, me: Holder) -> Take {
        let mut held = lock(&self.held);
        match *held {
            None => {
                *held = Some(me);
                Take::Taken
            }
            Some(holder) if holder == me => Take::AlreadyOurs,
            Some(_) => Take::Busy,
        }
    }
}

impl Flights {
    fn gate(&self, key: &str) -> Arc<Gate> {
        let mut gates = lock(&self.gates);
        if let Some(gate) = gates.get(key) {
            return gate.clone();
        }
        let gate = Arc::new(Gate::default());
        gates.insert(key.to_owned(), gate.clone());
        gate
    }

    /// Waits for `key`'s gate without blocking the thread.
    pub(crate) async fn lock(&self, key: &str) -> FlightGuard<'_> {
        let me = Holder::current();
        let gate = self.gate(key);
        // If this future is dropped while waiting, the gate must not outlive its last user.
        let waiting = Waiting {
            flights: self,
            key,
            gate: &gate,
        };
        let releases = loop {
            // Register for the wake-up before trying, so a release in between is not missed.
            let notified = gate.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match gate.try_take(me) {
                Take::Taken => break true,
                Take::AlreadyOurs => break false,
                Take::Busy => notified.await,
            }
        };
        std::mem::forget(waiting);
        FlightGuard {
            flights: self,
            key: key.to_owned(),
            gate,
            releases,
        }
    }

    /// Takes `key`'s gate if it is free (or already ours), without waiting.
    pub(crate) fn try_lock(&self, key: &str) -> Option<FlightGuard<'_>> {
        let gate = self.gate(key);
        let releases = match gate.try_take(Holder::current()) {
            Take::Taken => true,
            Take::AlreadyOurs => false,
            Take::Busy => {
                self.forget_if_unused(key, &gate, 1);
                return None;
            }
        };
        Some(FlightGuard {
            flights: self,
            key: key.to_owned(),
            gate,
            releases,
        })
    }

    /// Forgets `key`'s gate if nothing but the map and `our_refs` references refer to it
    /// and nobody holds it.
    fn forget_if_unused(&self, key: &str, gate: &Arc<Gate>, our_refs: usize) {
        let mut gates = lock(&self.gates);
        if Arc::strong_count(gate) == 1 + our_refs && lock(&gate.held).is_none() {
            gates.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.gates).len()
    }
}

impl FlightGuard<'_> {
    /// Whether the holder already held this gate (a cached call on its own key from
    /// inside the function): the outer guard releases it.
    pub(crate) fn is_reentrant(&self) -> bool {
        !self.releases
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        release(self.flights, &self.key, &self.gate, self.releases);
    }
}

fn release(flights: &Flights, key: &str, gate: &Arc<Gate>, releases: bool) {
    if releases {
        *lock(&gate.held) = None;
        gate.released.notify_waiters();
    }
    // Only the map and this guard refer to the gate: nobody waits, so forget it.
    flights.forget_if_unused(key, gate, 1);
}

/// A gate handed over to a refresh running in the background (a soft timeout, an eager
/// refresh): released when the refresh ends, not when the caller returns.
pub(crate) struct DetachedFlight {
    flights: Flights,
    key: String,
    gate: Arc<Gate>,
    releases: bool,
}

impl FlightGuard<'_> {
    /// Hands the gate over to a background refresh. Until the refresh [`adopt`]s it, nobody
    /// passes it, not even this guard's holder calling again.
    ///
    /// [`adopt`]: DetachedFlight::adopt
    pub(crate) fn detach(mut self) -> DetachedFlight {
        if self.releases {
            *lock(&self.gate.held) = Some(Holder::Detached);
        }
        let detached = DetachedFlight {
            flights: Flights {
                gates: self.flights.gates.clone(),
            },
            key: self.key.clone(),
            gate: self.gate.clone(),
            releases: self.releases,
        };
        // Dropped without releasing; the detached guard's reference keeps the gate mapped.
        self.releases = false;
        detached
    }
}

impl DetachedFlight {
    /// Makes the running task (or thread) the holder, so the refresh's own cached calls on
    /// its key pass the gate instead of waiting for themselves.
    pub(crate) fn adopt(&self) {
        if self.releases {
            *lock(&self.gate.held) = Some(Holder::current());
        }
    }
}

impl Drop for DetachedFlight {
    fn drop(&mut self) {
        release(&self.flights, &self.key, &self.gate, self.releases);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holder_at_a_time_and_gates_are_forgotten() {
        let flights = Arc::new(Flights::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (flights, inside) = (flights.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = flights.lock("k").await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_holder_hands_over() {
        let flights = Arc::new(Flights::default());
        let f2 = flights.clone();
        let holder = tokio::spawn(async move {
            let _g = f2.lock("k").await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let f3 = flights.clone();
        let waiter = tokio::spawn(async move {
            let _g = f3.lock("k").await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        holder.abort();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_waiter_dropped_after_the_release_leaves_no_gate_behind() {
        let flights = Arc::new(Flights::default());
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let f2 = flights.clone();
        let holder = std::thread::spawn(move || {
            crate::blocking::run(async {
                let _guard = f2.lock("k").await;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        });
        held_rx.recv().unwrap();
        {
            let mut waiting = Box::pin(flights.lock("k"));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            release_tx.send(()).unwrap();
            holder.join().unwrap();
            // Woken by the release, but dropped before it runs again.
        }
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn the_holder_passes_its_own_gate_again() {
        let flights = Flights::default();
        let outer = flights.lock("k").await;
        let inner = tokio::time::timeout(Duration::from_secs(5), flights.lock("k"))
            .await
            .expect("no self-deadlock");
        drop(inner);
        assert!(
            lock(&outer.gate.held).is_some(),
            "the inner guard does not release the outer one's gate"
        );
        drop(outer);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_detached_gate_is_held_until_its_refresh_ends() {
        let flights = Flights::default();
        let guard = flights.lock("k").await;
        assert!(flights.try_lock("k").is_some(), "re-entrant for its holder");
        let detached = guard.detach();
        assert!(
            flights.try_lock("k").is_none(),
            "not even the former holder passes a detached gate"
        );
        let refresh = tokio::spawn(async move {
            detached.adopt();
            let inner = Flights {
                gates: detached.flights.gates.clone(),
            };
            // The refresh's own calls on its key pass.
            let passes = inner.try_lock("k").is_some();
            drop(detached);
            passes
        });
        assert!(refresh.await.unwrap());
        assert!(
            flights.try_lock("k").is_some(),
            "released when the refresh ended"
        );
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn blocking_and_async_share_gates() {
        let flights = Arc::new(Flights::default());
        let g = crate::blocking::run(flights.lock("k"));
        let f2 = flights.clone();
        let t = std::thread::spawn(move || drop(crate::blocking::run(f2.lock("k"))));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!t.is_finished());
        drop(g);
        t.join().unwrap();
    }
}
