//! Events: what the caches of a manager do, told to the listeners subscribed with
//! [`crate::CacheManager::subscribe`] (Bentocache's and FusionCache's events).
//!
//! Each store has one [`EventHub`]; a subscription joins the hub of every store of its
//! manager. With no listener in the process, telling an event costs one relaxed atomic load
//! of a `static` ([`anyone_listening`]) and a branch, so the hit path does not pay for
//! events nobody listens to. With listeners, an event is told from the hub's snapshot of
//! them (an `Arc`'d slice, replaced on subscribe and unsubscribe): no copy per event.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

/// What happened (see [`CacheEvent`]).
///
/// ```
/// use cache_core::EventKind;
/// assert_ne!(EventKind::Hit, EventKind::StaleHit);
/// assert_eq!(format!("{:?}", EventKind::BreakerOpened), "BreakerOpened");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A lookup answered with a fresh value (from L1 or L2).
    Hit,
    /// A lookup answered with a value past its TTL, within its grace period.
    StaleHit,
    /// A lookup the cache could not answer.
    Miss,
    /// A value was stored (by `set`, a cached function's miss, a refresh...).
    Write,
    /// An entry was deleted.
    Delete,
    /// A cache (or namespace) was cleared: no key. With no cache, a whole store was (its
    /// admin clear: `Store::clear`, `Store::purge`, `cachet clear --store`).
    Clear,
    /// An entry was marked stale ([`crate::Cache::expire`]).
    Expire,
    /// A factory or cached function returned an error (or panicked).
    FactoryError,
    /// A factory or cached function took longer than the `hard_timeout`.
    FactoryTimeout,
    /// This instance told the other instances of a change on the bus: no cache or key.
    BusPublished,
    /// Another instance's change arrived on the bus: no cache or key.
    BusReceived,
    /// A call to the L2 failed (the caller carried on without it): no cache or key.
    L2Error,
    /// The L2's circuit breaker opened after a failure that says the L2 is unreachable.
    BreakerOpened,
    /// The L2's circuit breaker closed: the first call after it opened succeeded.
    BreakerClosed,
}

/// One event, told to every listener of the manager while it happens (on the thread doing
/// the cache's work): a listener should be quick, or hand the event on (a channel).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::{Arc, Mutex};
/// use cache_core::{CacheManager, EventKind, StoreBuilder, store::MapTier};
/// let manager = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let subscription = manager.subscribe(move |event| {
///     sink.lock().unwrap().push((event.kind, event.cache.map(str::to_owned)));
/// });
/// let users = manager.cache("users").unwrap();
/// users.set(&1u64, &"ann".to_string()).await.unwrap();
/// let _ = users.get::<String>(&1u64).await.unwrap();
/// drop(subscription); // no more events
/// let _ = users.get::<String>(&2u64).await.unwrap();
/// let users_name = Some("users".to_owned());
/// assert_eq!(*seen.lock().unwrap(), [(EventKind::Write, users_name.clone()), (EventKind::Hit, users_name)]);
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CacheEvent<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The store it happened in.
    pub store: &'a str,
    /// The cache, for events of one cache (not the bus, L2 and breaker events).
    pub cache: Option<&'a str>,
    /// The entry's key as stored (`{prefix}:{cache}:{encoded key}`), for events of one
    /// entry.
    pub key: Option<&'a str>,
}

/// A listener of a manager's events.
type Listener = Arc<dyn Fn(&CacheEvent<'_>) + Send + Sync>;

/// The listeners of one hub, as an event is told to them: shared, never copied per event.
type Listeners = Arc<[(u64, Listener)]>;

/// How many (hub, listener) subscriptions the process has: the one load an event costs
/// while nobody listens anywhere (a `static`: no pointer to follow from the cache to it).
static LISTENING: AtomicUsize = AtomicUsize::new(0);

/// Whether any hub of the process has a listener: callers tell events only then
/// (`Engine::tell`), through a call kept off the hot path.
#[inline]
pub(crate) fn anyone_listening() -> bool {
    LISTENING.load(Relaxed) != 0
}

/// Runs `tell` with the stored key `{base}:{key}`, joined in a buffer its thread reuses: an
/// event of an L1 key (a hit) told to listeners allocates nothing (a `String` per event
/// cost a listener about 640 instructions a hit). A listener whose own cache call tells an
/// event meanwhile (the buffer is in use) is told from a string of its own.
pub(crate) fn with_stored_key(base: &str, key: &[u8], tell: impl FnOnce(&str)) {
    thread_local! {
        static JOINED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let mut tell = Some(tell);
    let _ = JOINED.try_with(|joined| {
        let Ok(mut joined) = joined.try_borrow_mut() else {
            return;
        };
        joined.clear();
        let _ = crate::layout::write_entry(&mut *joined, base, key);
        if let Some(tell) = tell.take() {
            tell(&joined);
        }
        // A rare long key does not keep its room for the thread's life.
        joined.shrink_to(256);
    });
    if let Some(tell) = tell {
        let mut own = String::new();
        let _ = crate::layout::write_entry(&mut own, base, key);
        tell(&own);
    }
}

/// The listeners of one store's events.
pub(crate) struct EventHub {
    /// How many listeners this hub has.
    listening: AtomicUsize,
    /// The snapshot events are told from, replaced whole on subscribe and unsubscribe.
    listeners: RwLock<Listeners>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            listening: AtomicUsize::new(0),
            listeners: RwLock::new(Arc::new([])),
        }
    }
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("listeners", &self.listening.load(Relaxed))
            .finish()
    }
}

impl EventHub {
    /// Tells `kind` to the listeners, if any (two relaxed loads when there are none).
    #[inline]
    pub(crate) fn tell(
        &self,
        kind: EventKind,
        store: &str,
        cache: Option<&str>,
        key: Option<&str>,
    ) {
        if anyone_listening() && self.listening.load(Relaxed) != 0 {
            self.tell_listeners(&CacheEvent {
                kind,
                store,
                cache,
                key,
            });
        }
    }

    #[cold]
    #[inline(never)]
    fn tell_listeners(&self, event: &CacheEvent<'_>) {
        // The snapshot, out of the lock (one reference count): a listener may subscribe
        // or unsubscribe, which replaces the hub's snapshot, not this one.
        let listeners: Listeners = match self.listeners.read() {
            Ok(listeners) => listeners.clone(),
            Err(poisoned) => Arc::clone(poisoned.get_ref()),
        };
        for (_, listener) in listeners.iter() {
            // A listener's panic is its own: the cache's work goes on.
            if std::panic::catch_unwind(AssertUnwindSafe(|| listener(event))).is_err() {
                tracing::warn!(store = event.store, kind = ?event.kind, "cachet: an event listener panicked");
            }
        }
    }

    fn add(&self, id: u64, listener: Listener) {
        let mut listeners = self.listeners.write().unwrap_or_else(|p| p.into_inner());
        let next: Listeners = listeners
            .iter()
            .cloned()
            .chain(std::iter::once((id, listener)))
            .collect();
        self.replace(&mut listeners, next);
    }

    fn remove(&self, id: u64) {
        let mut listeners = self.listeners.write().unwrap_or_else(|p| p.into_inner());
        let next: Listeners = listeners
            .iter()
            .filter(|(i, _)| *i != id)
            .cloned()
            .collect();
        self.replace(&mut listeners, next);
    }

    /// Installs `next` (under the write lock), keeping the counts in step with it.
    fn replace(&self, listeners: &mut Listeners, next: Listeners) {
        let (before, after) = (listeners.len(), next.len());
        *listeners = next;
        self.listening.store(after, Relaxed);
        if after > before {
            LISTENING.fetch_add(after - before, Relaxed);
        } else {
            LISTENING.fetch_sub(before - after, Relaxed);
        }
    }
}

/// A subscription to a manager's events ([`crate::CacheManager::subscribe`]): the
/// listener is told events until this is dropped.
///
/// ```
/// let manager = cache_core::CacheManager::none();
/// let subscription = manager.subscribe(|event| println!("{event:?}"));
/// drop(subscription); // unsubscribed
/// ```
#[must_use = "dropping the subscription unsubscribes its listener"]
pub struct Subscription {
    id: u64,
    hubs: Vec<Arc<EventHub>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("stores", &self.hubs.len())
            .finish()
    }
}

impl Subscription {
    /// Subscribes `listener` to every hub in `hubs`.
    pub(crate) fn new(
        hubs: Vec<Arc<EventHub>>,
        listener: impl Fn(&CacheEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Relaxed);
        let listener: Listener = Arc::new(listener);
        for hub in &hubs {
            hub.add(id, listener.clone());
        }
        Subscription { id, hubs }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for hub in &self.hubs {
            hub.remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_stored_key_is_joined_in_the_threads_buffer_and_a_nested_one_on_its_own() {
        let mut told = Vec::new();
        with_stored_key("app:users", b"1", |outer| {
            told.push(outer.to_owned());
            // A listener's own cache call, told while the buffer is in use.
            with_stored_key("app:orders", b"k\\:2", |inner| told.push(inner.to_owned()));
            told.push(outer.to_owned());
        });
        with_stored_key("", b"bare", |key| told.push(key.to_owned()));
        let long = "x".repeat(10_000);
        with_stored_key("app:users", long.as_bytes(), |key| {
            told.push(key.len().to_string())
        });
        with_stored_key("app:users", b"2", |key| told.push(key.to_owned()));
        assert_eq!(
            told,
            [
                "app:users:1",
                "app:orders:k\\:2",
                "app:users:1",
                "bare",
                "10010",
                "app:users:2"
            ]
        );
    }

    #[test]
    fn listeners_hear_until_unsubscribed_and_a_panic_is_contained() {
        let hub = Arc::new(EventHub::default());
        hub.tell(EventKind::Hit, "s", None, None); // nobody listens
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = heard.clone();
        let sub = Subscription::new(vec![hub.clone()], move |e| {
            sink.lock()
                .unwrap()
                .push((e.kind, e.key.map(str::to_owned)))
        });
        let panicky = Subscription::new(vec![hub.clone()], |_| panic!("listener bug"));
        hub.tell(EventKind::Miss, "s", Some("c"), Some("k"));
        drop(panicky);
        drop(sub);
        hub.tell(EventKind::Hit, "s", None, None);
        assert_eq!(
            *heard.lock().unwrap(),
            [(EventKind::Miss, Some("k".to_owned()))]
        );
        assert_eq!(hub.listening.load(Relaxed), 0);
    }
}
