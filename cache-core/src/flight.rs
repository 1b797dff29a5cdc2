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
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

#[derive(Default)]
struct Gate {
    held: Mutex<bool>,
    released: Notify,
}

/// Held while one caller computes a key's value.
pub(crate) struct FlightGuard<'a> {
    flights: &'a Flights,
    key: String,
    gate: Arc<Gate>,
}

/// Locks ignoring poison: no user code runs while these locks are held, so a poisoned lock
/// still guards consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Gate {
    fn try_take(&self) -> bool {
        let mut held = lock(&self.held);
        !std::mem::replace(&mut *held, true)
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
        let gate = self.gate(key);
        loop {
            // Register for the wake-up before trying, so a release in between is not missed.
            let notified = gate.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if gate.try_take() {
                break;
            }
            notified.await;
        }
        FlightGuard {
            flights: self,
            key: key.to_owned(),
            gate,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.gates).len()
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.gate.held) = false;
        self.gate.released.notify_waiters();
        let mut gates = lock(&self.flights.gates);
        // Only the map and this guard hold the gate: nobody waits, so forget it.
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
