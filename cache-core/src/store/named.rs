//! A named store: the tiers configured under `[stores.NAME]`, and their single-flight gates.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::remote::{Remote, Skipped};
use super::replay::{Pending, Replay, FIRST_RETRY, MAX_RETRY};
use super::versions::Versions;
use super::warn::RateLimit;
use super::{Bus, BusEvent, Invalidation, LocalTier, RemoteTier};
use crate::clock::{Clock, Sleep};
use crate::events::{EventHub, EventKind};
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
    /// Logs dropped replays, rate-limited.
    replay_warnings: RateLimit,
    /// The listeners of this store's events (`events.rs`).
    pub(crate) events: Arc<EventHub>,
    /// What a fault does (the manager's `error_handler`; `fault.rs`).
    pub(crate) error_handler: crate::fault::Handler,
    /// The key spaces of its caches and namespaces, shared by all their handles.
    pub(crate) key_spaces: super::KeySpaces,
}

impl StoreInner {
    /// Assembles a store and, when it has a bus and an L1, starts listening: another
    /// instance's change drops the entries it names; a lost subscription clears the L1,
    /// since messages may have been missed meanwhile.
    pub(crate) fn new(parts: StoreParts) -> Self {
        let versions = Arc::new(Versions::default());
        let events = Arc::new(EventHub::default());
        if let (Some(bus), Some(l1)) = (&parts.bus, &parts.l1) {
            let l1 = l1.clone();
            let store = parts.name.clone();
            let versions = versions.clone();
            let events = events.clone();
            bus.subscribe(Arc::new(move |event| match event {
                BusEvent::Invalidate(message) => {
                    events.tell(EventKind::BusReceived, &store, None, None);
                    drop_from_l1(l1.as_ref(), &versions, &message)
                }
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
                    events.clone(),
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
            replay_warnings: RateLimit::default(),
            events,
            error_handler: None,
            key_spaces: super::KeySpaces::default(),
        }
    }

    /// A store with no tier: every lookup misses and writes are dropped (`none`).
    pub(crate) fn is_noop(&self) -> bool {
        self.l1.is_none() && self.l2.is_none()
    }

    /// Tells the other instances (if there is a bus) that these entries changed.
    pub(crate) async fn announce(&self, message: Invalidation) {
        let Some(bus) = &self.bus else { return };
        let published = bus.publish(message).await;
        if published.is_ok() {
            self.events
                .tell(EventKind::BusPublished, &self.name, None, None);
        }
        if let Err(err) = published {
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
            // The first pause starts now, not when the background runtime gets to the
            // task: a test's manual clock may move in between.
            let first = self.replay_pause(FIRST_RETRY);
            if crate::background::spawn_own(replay(store, first)).is_err() {
                // No runtime to replay on: the next deferred change tries again.
                self.replay.not_running();
                tracing::warn!(store = %self.name, "cachet: cannot start the replay of changes held back from the L2");
            }
        }
    }

    /// The pause before the next replay attempt: `retry`, or longer while the circuit
    /// breaker keeps the L2 alone.
    fn replay_pause(&self, retry: Duration) -> Sleep {
        let reopens_in = self
            .l2
            .as_ref()
            .map_or(Duration::ZERO, |remote| remote.breaker_reopens_in());
        self.clock.sleep(reopens_in.max(retry))
    }

    /// Replays the waiting changes in order until the L2 cannot be reached; `true` when
    /// all went through. A change the L2 refuses is dropped (`replay.rs`).
    async fn replay_once(&self) -> bool {
        let Some(remote) = &self.l2 else {
            return true;
        };
        while let Some(change) = self.replay.front() {
            let outcome = match &change {
                Pending::Keys { keys, .. } => remote.delete(&self.name, keys).await,
                Pending::Scope(scope) => remote.clear(&self.name, scope).await,
                Pending::Tags { scope, tag_keys } => {
                    self.replay_tags(remote, scope, tag_keys).await
                }
                // Which keys changed is lost: the whole store goes, in the L2 too, or
                // the other instances would read back what the lost changes replaced.
                Pending::Everything => {
                    let all = super::Scope::new(self.prefix.clone());
                    remote.clear(&self.name, &all).await
                }
                Pending::OwnL1 => Ok(()),
            };
            match outcome {
                Ok(()) => self.replay.done(&change),
                Err(Skipped::Unavailable) => return false,
                Err(Skipped::Refused) => {
                    // Announced all the same: the other instances read the key afresh,
                    // whatever the L2 kept.
                    self.replay.refused(&change);
                    if let Some(suppressed) =
                        self.replay_warnings.check(10_000, self.clock.ticks_ms())
                    {
                        tracing::warn!(store = %self.name, dropped = self.replay.dropped(), suppressed, "cachet: the L2 refused a change held back while it was unreachable; dropped it");
                    }
                }
            }
            match change {
                Pending::Keys { keys, .. } => self.settle(Invalidation::Keys(keys)).await,
                Pending::Scope(scope) => self.settle(Invalidation::Scope(scope)).await,
                Pending::Tags { .. } => {}
                Pending::Everything => self.settle(Invalidation::All).await,
                Pending::OwnL1 => {
                    if let Some(l1) = &self.l1 {
                        drop_from_l1(l1.as_ref(), &self.versions, &Invalidation::All);
                    }
                }
            }
        }
        true
    }

    /// A replayed change reaches every L1: the other instances' through the bus, and this
    /// instance's own, which ignores its own messages. This instance may hold a value the
    /// L2 never took (the write it missed) or one written since, while the replay just
    /// deleted the key there: dropping it makes every instance read the L2 again.
    async fn settle(&self, message: Invalidation) {
        if let Some(l1) = &self.l1 {
            drop_from_l1(l1.as_ref(), &self.versions, &message);
        }
        self.announce(message).await;
    }

    /// Deletes the L2 entries of `scope` carrying any of the tags, and announces them.
    async fn replay_tags(
        &self,
        remote: &Remote,
        scope: &super::Scope,
        tag_keys: &[String],
    ) -> Result<(), Skipped> {
        let keys: Vec<String> = remote
            .tagged_keys(&self.name, tag_keys)
            .await?
            .into_iter()
            .filter(|key| crate::layout::is_entry_of(scope.base(), key))
            .collect();
        let deleted = remote.delete_tagged(&self.name, &keys, tag_keys).await;
        if !matches!(deleted, Err(Skipped::Unavailable)) && !keys.is_empty() {
            self.settle(Invalidation::Keys(keys)).await;
        }
        deleted
    }
}

/// Drops what `message` names from `l1`. Each removal is a change of the key: a put-back
/// or backfill that started before it is refused (`versions.rs`).
fn drop_from_l1(l1: &dyn LocalTier, versions: &Versions, message: &Invalidation) {
    match message {
        Invalidation::Keys(keys) => keys.iter().for_each(|k| {
            versions.change(k, || l1.remove(&super::L1KeyRef::parse(k)));
        }),
        Invalidation::Scope(scope) => versions.change_all(|| l1.remove_scope(scope)),
        Invalidation::All => versions.change_all(|| l1.clear()),
    }
}

/// The replay task of a store: waits (`first`, then growing pauses), replays, until
/// nothing is left.
async fn replay(store: Weak<StoreInner>, first: Sleep) {
    let mut pause = first;
    let mut retry = FIRST_RETRY;
    loop {
        pause.await;
        // The store is not kept alive by a pause.
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
        pause = store.replay_pause(retry);
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
