//! Distributed single flight: stampede protection across the instances sharing an L2.
//!
//! [`crate::flight`] lets one caller per process and key run the function. On a store
//! configured with `lock = "redis"`, that caller also takes a lock in the store's L2
//! (`SET {prefix}:~lock:{cache}:{key} <token> NX PX <lock_timeout>`) before running it:
//!
//! - the holder runs the function, stores the value (in L2, `SET .. PX` as always), and
//!   then releases the lock with a compare-and-delete, so it never deletes a lock that
//!   expired and was taken by another instance meanwhile;
//! - the others poll L2 for the value (pauses of 5 ms doubling to 50 ms) and return it
//!   without running the function once it is there; between polls they try the lock
//!   again, so when the holder let go without a value (an error, a panic) or died (the
//!   lock expires after `lock_timeout`), one of them takes it and runs the function;
//! - a waiter that has waited three lock lifetimes without ever getting the lock or a
//!   value stops waiting and runs the function, so a stream of failing holders cannot
//!   starve it;
//! - when the L2 is unreachable (or its breaker open), or the L2 does not support locks,
//!   the call runs as without the lock: the lock never fails a caller.
//!
//! Lock keys live under the store's prefix (`{prefix}:~lock:...`), so a Redis ACL user
//! limited to `~{prefix}:*` may take them. `~` is escaped in every encoded cache name, so
//! no cache's scope covers them: `clear()` never deletes a lock (a computation in flight
//! keeps its lock, which expires by itself), while clearing a whole store by its prefix
//! (`cachet clear`) does.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::named::StoreInner;
use crate::cache::{Cache, Lookup};
use crate::layout::lock_key;
use crate::CacheValue;

/// How long a holder keeps the lock when `lock_timeout` is not set.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// The first pause of a waiter between two looks at L2.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause of a waiter between two looks at L2.
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// A waiter that never got the lock nor a value within this many lock lifetimes runs
/// the function anyway.
const GIVE_UP_AFTER_TTLS: u32 = 3;

/// A store's distributed lock (`lock = "redis"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockSettings {
    /// How long a holder keeps the lock at most (`lock_timeout`): past it the lock
    /// expires, and another instance may run the function.
    pub(crate) ttl: Duration,
}

/// A token naming one holder, unique across processes and machines: the process id, a
/// per-process random number and a counter.
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        // `RandomState` is seeded from the OS's randomness; mix in the time for good measure.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish()
    });
    format!(
        "{:x}.{seed:016x}.{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a caller that passed its local gate does next.
pub(crate) enum Acquired<V> {
    /// Another instance computed the value meanwhile: return it.
    Found(V),
    /// Run the function; with a guard, this caller holds the distributed lock until the
    /// guard is dropped (after the value is stored).
    Leader(Option<LockGuard>),
}

/// The distributed lock of one key, released (compare-and-delete) when dropped.
pub(crate) struct LockGuard {
    store: Arc<StoreInner>,
    key: String,
    token: String,
}

impl LockGuard {
    /// Releases the lock now.
    async fn release(mut self) {
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        let store = self.store.clone();
        // With its key taken, the guard's `Drop` releases nothing.
        drop(self);
        unlock(&store, &key, &token).await;
    }
}

async fn unlock(store: &StoreInner, key: &str, token: &str) {
    let Some(remote) = &store.l2 else { return };
    match remote.unlock(&store.name, key, token).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!(
            store = %store.name,
            key,
            "cachet: the distributed lock had expired before its release; another instance may have run the function too (raise `lock_timeout`)"
        ),
        // Counted and logged by the breaker; the lock expires by itself.
        Err(_) => {}
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.key.is_empty() {
            return; // released already
        }
        // Drop cannot wait: the release (one round trip) runs on its own. Callers have
        // their value by then; waiters elsewhere poll for the value, not for the release.
        let store = self.store.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        let release = async move { unlock(&store, &key, &token).await };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(release);
            }
            // A plain fn outside any runtime: the tier runs its I/O on its own runtime, so
            // a short-lived thread can wait for it.
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name("cachet-unlock".into())
                    .spawn(move || crate::blocking::run(release));
                if spawned.is_err() {
                    tracing::debug!("cachet: cannot start a thread to release a distributed lock; it expires by itself");
                }
            }
        }
    }
}

/// After the local gate: on a store with a distributed lock, takes it, or waits for the
/// value another instance is computing. `reentrant` is true when the caller's local gate
/// was already its own (a cached call on its own key from inside the function): it holds
/// the distributed lock too, so it must not wait for itself.
pub(crate) async fn acquire_or_wait<V: CacheValue>(
    caches: &[Cache],
    keys: &[String],
    reentrant: bool,
) -> Acquired<V> {
    let (Some(first), Some(stored)) = (caches.first(), keys.first()) else {
        return Acquired::Leader(None);
    };
    let store = &first.inner.store;
    let (Some(settings), Some(remote), false) = (store.lock, &store.l2, reentrant) else {
        return Acquired::Leader(None);
    };
    let key = lock_key(&store.prefix, stored);
    let token = new_token();
    let started = Instant::now();
    let give_up = settings.ttl.saturating_mul(GIVE_UP_AFTER_TTLS);
    let mut pause = FIRST_PAUSE;
    let mut waited = false;
    loop {
        match remote
            .try_lock(&store.name, &key, &token, settings.ttl)
            .await
        {
            Ok(true) => {
                let guard = LockGuard {
                    store: store.clone(),
                    key,
                    token,
                };
                // The last holder may have stored the value and let go between our last
                // look and taking the lock.
                if let Some(value) = fresh::<V>(caches, keys).await {
                    guard.release().await;
                    return Acquired::Found(value);
                }
                if waited {
                    tracing::debug!(
                        store = %store.name,
                        key = %stored,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "cachet: distributed lock released or expired without a value; running the function"
                    );
                }
                return Acquired::Leader(Some(guard));
            }
            Ok(false) => {}
            Err(_) => {
                // Counted and logged by the breaker: carry on without the lock.
                tracing::debug!(store = %store.name, key = %stored, "cachet: distributed lock unavailable; running without it");
                return Acquired::Leader(None);
            }
        }
        if !waited {
            waited = true;
            tracing::debug!(store = %store.name, key = %stored, "cachet: another instance holds the distributed lock; waiting for its value");
        }
        if started.elapsed() >= give_up {
            tracing::debug!(
                store = %store.name,
                key = %stored,
                waited_ms = started.elapsed().as_millis() as u64,
                "cachet: distributed lock wait timed out; running the function without the lock"
            );
            return Acquired::Leader(None);
        }
        Pause::new(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
        if let Some(value) = fresh::<V>(caches, keys).await {
            tracing::debug!(
                store = %store.name,
                key = %stored,
                waited_ms = started.elapsed().as_millis() as u64,
                "cachet: another instance computed the value"
            );
            return Acquired::Found(value);
        }
    }
}

/// The first fresh value of the call in `caches`.
async fn fresh<V: CacheValue>(caches: &[Cache], keys: &[String]) -> Option<V> {
    for (cache, key) in caches.iter().zip(keys) {
        if let Lookup::Fresh(value) = cache.lookup::<V>(key).await {
            return Some(value);
        }
    }
    None
}

/// A pause that works wherever cached calls run: in any tokio runtime (with or without
/// its timer enabled), and in plain fns driven by [`crate::blocking::run`], which may
/// block the very thread a `current_thread` runtime's timer needs. One timer thread of
/// its own, started on the first wait, wakes every pausing waiter (at most one per key
/// and process: the others wait at the local gate).
struct Pause {
    duration: Duration,
    state: Option<Arc<PauseState>>,
}

#[derive(Default)]
struct PauseState {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl PauseState {
    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        if let Some(waker) = lock_ignoring_poison(&self.waker).take() {
            waker.wake();
        }
    }
}

/// The pauses under way, by deadline, served by the timer thread.
struct Timer {
    pending: Mutex<Vec<(Instant, Arc<PauseState>)>>,
    changed: Condvar,
}

/// No user code runs while these locks are held, so a poisoned one still guards
/// consistent data.
fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Timer {
    /// The timer, its thread started on first use; `None` if no thread can be started.
    fn get() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                pending: Mutex::new(Vec::new()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("cachet-lock-timer".into())
                .spawn(move || timer.run())
                .ok()
                .map(|_| timer)
        })
    }

    fn add(&self, deadline: Instant, state: Arc<PauseState>) {
        lock_ignoring_poison(&self.pending).push((deadline, state));
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut pending = lock_ignoring_poison(&self.pending);
        loop {
            let now = Instant::now();
            pending.retain(|(deadline, state)| {
                let due = *deadline <= now;
                if due {
                    state.finish();
                }
                !due
            });
            pending = match pending.iter().map(|(deadline, _)| *deadline).min() {
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

impl Pause {
    fn new(duration: Duration) -> Self {
        Self {
            duration,
            state: None,
        }
    }
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        let state = self.state.get_or_insert_with(|| {
            let state = Arc::new(PauseState::default());
            match Timer::get() {
                Some(timer) => timer.add(Instant::now() + duration, state.clone()),
                // No thread to time it: look again at once rather than never.
                None => state.done.store(true, Ordering::Release),
            }
            state
        });
        // The waker is stored before `done` is checked, so a wake in between is not lost.
        *lock_ignoring_poison(&state.waker) = Some(cx.waker().clone());
        if state.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_sit_under_the_prefix_and_outside_every_cache_scope() {
        assert_eq!(lock_key("shop", "shop:users:42"), "shop:~lock:users:42");
        assert_eq!(
            lock_key("shop", "shop:users#admins:42"),
            "shop:~lock:users#admins:42"
        );
        let key = lock_key("shop", "shop:users:42");
        assert!(super::super::Scope::new("shop").contains(&key));
        // A cache name is encoded with `~` escaped, so no cache's base is `shop:~lock`.
        let mut base = String::from("shop:");
        crate::key::encode_key_into("~lock", &mut base).unwrap();
        assert_eq!(base, r"shop:\~lock");
        assert!(!super::super::Scope::new(base).contains(&key));
        assert!(!super::super::Scope::new("shop:users").contains(&key));
    }

    #[test]
    fn tokens_are_unique() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{:x}.", std::process::id())), "{a}");
    }

    #[test]
    fn pauses_end_outside_any_runtime() {
        let start = Instant::now();
        crate::blocking::run(Pause::new(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pauses_end_in_a_current_thread_runtime() {
        let start = Instant::now();
        Pause::new(Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn one_timer_serves_many_pauses_in_deadline_order() {
        let long = std::thread::spawn(|| crate::blocking::run(Pause::new(Duration::from_secs(2))));
        std::thread::sleep(Duration::from_millis(20));
        crate::blocking::run(Pause::new(Duration::from_millis(10)));
        assert!(
            !long.is_finished(),
            "a later, shorter pause is not held up by a longer one"
        );
        long.join().unwrap();
    }
}
