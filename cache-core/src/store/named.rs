//! A named store: the tiers configured under `[stores.NAME]`, and their single-flight gates.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::remote::Remote;
use super::replay::{Pending, Replay, FIRST_RETRY, MAX_RETRY};
use super::versions::Versions;
use super::warn::RateLimit;
use super::{Bus, BusEvent, Invalidation, LocalTier, RemoteTier};
use crate::clock::Clock;
use crate::flight::Flights;

/// How long a holder keeps the distributed lock when `lock_timeout` is not set.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A store's distributed lock (`lock = "redis"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockSettings {
    /// How long a holder keeps the lock at most (`lock_timeout`): past it the lock
    /// expires, and another instance may run the function.
    pub(crate) ttl: Duration,
}

/// What a store is made of, before it is assembled.
pub(crate) struct StoreParts {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) l1: Option<Arc<dyn LocalTier>>,
    pub(crate) l2: Option<Arc<dyn RemoteTier>>,
    pub(crate) bus: Option<Arc<dyn Bus>>,
    pub(crate) circuit_breaker: Duration,
    pub(crate) max_value_size: usize,
    /// The shared tier's payload codec.
    pub(crate) codec: crate::codec::ValueCodec,
    /// The distributed lock (`lock = "redis"`), if any.
    pub(crate) lock: Option<LockSettings>,
    /// The manager's clock.
    pub(crate) clock: Clock,
}

/// The parts of one store, shared by every cache in it.
pub(crate) struct StoreInner {
    pub(crate) name: String,
    /// Key prefix of this store (`{prefix}:{cache}:{key}`).
    pub(crate) prefix: String,
    pub(crate) l1: Option<Arc<dyn LocalTier>>,
    pub(crate) l2: Option<Remote>,
    bus: Option<Arc<dyn Bus>>,
    bus_warnings: RateLimit,
    pub(crate) flights: Flights,
    /// Which L1 keys were written with which tag (`tags.rs`).
    pub(crate) tag_index: super::tag_index::TagIndex,
    /// The distributed lock across instances (`lock = "redis"`); only with an L2.
    pub(crate) lock: Option<LockSettings>,
    /// Orders the L1 changes of one key (`versions.rs`).
    pub(crate) versions: Arc<Versions>,
    /// What every timing of this store reads (`clock.rs`).
    pub(crate) clock: Clock,
    /// Changes the L2 missed, replayed when it is back (`replay.rs`).
    pub(crate) replay: Replay,
}

impl StoreInner {
    /// Assembles a store and, when it has a bus and an L1, starts listening: another
    /// instance's change drops the entries it names; a lost subscription clears the L1,
    /// since messages may have been missed meanwhile.
    pub(crate) fn new(parts: StoreParts) -> Self {
        let versions = Arc::new(Versions::default());
        if let (Some(bus), Some(l1)) = (&parts.bus, &parts.l1) {
            let l1 = l1.clone();
            let store = parts.name.clone();
            // Each removal is a change of the key: a put-back or backfill that started
            // before it is refused (`versions.rs`).
            let versions = versions.clone();
            bus.subscribe(Arc::new(move |event| match event {
                BusEvent::Invalidate(Invalidation::Keys(keys)) => keys.iter().for_each(|k| {
                    versions.change(k, || l1.remove(k));
                }),
                BusEvent::Invalidate(Invalidation::Scope(scope)) => versions.change_all(|| l1.remove_scope(&scope)),
                BusEvent::Invalidate(Invalidation::All) => versions.change_all(|| l1.clear()),
                BusEvent::Resubscribed => {
                    tracing::info!(store = %store, "cachet: bus resubscribed; clearing the L1, which may have missed changes");
                    versions.change_all(|| l1.clear());
                }
            }));
        }
        Self {
            name: parts.name,
            prefix: parts.prefix,
            l1: parts.l1,
            l2: parts.l2.map(|tier| {
                Remote::new(
                    tier,
                    parts.circuit_breaker,
                    parts.max_value_size,
                    parts.codec,
                    parts.clock.clone(),
                )
            }),
            bus: parts.bus,
            bus_warnings: RateLimit::default(),
            flights: Flights::default(),
            tag_index: super::tag_index::TagIndex::default(),
            lock: parts.lock,
            versions,
            clock: parts.clock,
            replay: Replay::default(),
        }
    }

    /// A store with no tier: every lookup misses and writes are dropped (`none`).
    pub(crate) fn is_noop(&self) -> bool {
        self.l1.is_none() && self.l2.is_none()
    }

    /// Tells the other instances (if there is a bus) that these entries changed.
    pub(crate) async fn announce(&self, message: Invalidation) {
        let Some(bus) = &self.bus else { return };
        if let Err(err) = bus.publish(message).await {
            if let Some(suppressed) = self.bus_warnings.check(10_000, self.clock.ticks_ms()) {
                tracing::warn!(store = %self.name, bus = %bus.describe(), error = %err, suppressed, "cachet: cannot publish an invalidation");
            }
        }
    }
}

/// The replay of changes the L2 missed (the queue: `replay.rs`).
impl StoreInner {
    /// Queues a change the L2 did not take, and starts the replay if it is not running.
    pub(crate) fn defer(self: &Arc<Self>, change: Pending) {
        if self.l2.is_none() {
            return;
        }
        if self.replay.push(change) {
            let store = Arc::downgrade(self);
            if crate::background::spawn_own(replay(store)).is_err() {
                // No runtime to replay on: the next deferred change tries again.
                self.replay.not_running();
                tracing::warn!(store = %self.name, "cachet: cannot start the replay of changes held back from the L2");
            }
        }
    }

    /// Replays the waiting changes in order until one fails; `true` when all went through.
    async fn replay_once(&self) -> bool {
        let Some(remote) = &self.l2 else {
            return true;
        };
        while let Some(change) = self.replay.front() {
            let taken = match &change {
                Pending::Keys { keys, .. } => remote.delete(&self.name, keys).await.is_ok(),
                Pending::Scope(scope) => remote.clear(&self.name, scope).await.is_ok(),
                Pending::Tags { scope, tag_keys } => {
                    match remote.tagged_keys(&self.name, tag_keys).await {
                        Ok(listed) => {
                            let keys: Vec<String> = listed
                                .into_iter()
                                .filter(|key| crate::layout::is_entry_of(scope.base(), key))
                                .collect();
                            let deleted = remote
                                .delete_tagged(&self.name, &keys, tag_keys)
                                .await
                                .is_ok();
                            if deleted && !keys.is_empty() {
                                self.announce(Invalidation::Keys(keys)).await;
                            }
                            deleted
                        }
                        Err(_) => false,
                    }
                }
                Pending::Everything => true,
            };
            if !taken {
                return false;
            }
            match change.clone() {
                Pending::Keys { keys, .. } => self.announce(Invalidation::Keys(keys)).await,
                Pending::Scope(scope) => self.announce(Invalidation::Scope(scope)).await,
                Pending::Tags { .. } => {}
                Pending::Everything => self.announce(Invalidation::All).await,
            }
            self.replay.done(&change);
        }
        true
    }
}

/// The replay task of a store: waits for the L2, replays, until nothing is left.
async fn replay(store: Weak<StoreInner>) {
    let mut retry = FIRST_RETRY;
    loop {
        // The store is not kept alive by a pause.
        let (clock, wait) = {
            let Some(store) = store.upgrade() else { return };
            let reopens_in = store
                .l2
                .as_ref()
                .map_or(Duration::ZERO, |remote| remote.breaker_reopens_in());
            (store.clock.clone(), reopens_in.max(retry))
        };
        clock.sleep(wait).await;
        let Some(store) = store.upgrade() else { return };
        if store.replay_once().await {
            if store.replay.finish_if_empty() {
                tracing::info!(store = %store.name, "cachet: the L2 is back; the changes it missed were replayed");
                return;
            }
            retry = FIRST_RETRY;
        } else {
            retry = (retry * 2).min(MAX_RETRY);
        }
    }
}

impl std::fmt::Debug for StoreInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::redact_text;
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("l1", &self.l1.as_ref().map(|t| t.driver()))
            .field(
                "l2",
                &self.l2.as_ref().map(|r| redact_text(&r.tier.describe())),
            )
            .field(
                "bus",
                &self.bus.as_ref().map(|b| redact_text(&b.describe())),
            )
            .field("lock", &self.lock)
            .finish()
    }
}
