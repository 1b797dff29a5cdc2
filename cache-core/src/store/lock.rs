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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use std::future::Future;

use super::named::StoreInner;
use crate::layout::lock_key;
/// The first pause of a waiter between two looks at L2.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause of a waiter between two looks at L2.
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// A waiter that never got the lock nor a value within this many lock lifetimes runs
/// the function anyway.
const GIVE_UP_AFTER_TTLS: u32 = 3;

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
/// value another instance is computing. `stored` is the call's key in `store` (its first
/// cache's); `fresh` looks the call's caches up for a fresh value. `reentrant` is true when
/// the caller's local gate was already its own (a cached call on its own key from inside
/// the function): it holds the distributed lock too, so it must not wait for itself.
pub(crate) async fn acquire_or_wait<V, Fut>(
    store: &Arc<StoreInner>,
    stored: &str,
    mut fresh: impl FnMut() -> Fut,
    reentrant: bool,
) -> Acquired<V>
where
    Fut: Future<Output = Option<V>>,
{
    let (Some(settings), Some(remote), false) = (store.lock, &store.l2, reentrant) else {
        return Acquired::Leader(None);
    };
    let key = lock_key(&store.prefix, stored);
    let token = new_token();
    // Real time, not the store's clock: the lock lives in Redis, and expires by its time.
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
                if let Some(value) = fresh().await {
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
        // Real time: the lock lives in Redis, whose expiry is real time.
        crate::timer::pause(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
        if let Some(value) = fresh().await {
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
}
