//! A store's shared tier as core uses it: every call behind the circuit breaker, faults
//! counted and logged (rate-limited), never returned to a cached function.

use std::sync::Arc;
use std::time::Duration;

use super::breaker::Breaker;
use super::warn::RateLimit;
use super::{RemoteTier, Scope};
use crate::clock::Clock;
use crate::error::{TierError, TierErrorKind};
use crate::events::{EventHub, EventKind};

/// How long a failing L2 is left alone by default (`l2_circuit_breaker`).
pub(crate) const DEFAULT_CIRCUIT_BREAKER: Duration = Duration::from_secs(5);
/// How often one store logs an L2 fault at most.
const WARN_EVERY_MS: u64 = 10_000;

/// The L2 of a store.
pub(crate) struct Remote {
    pub(crate) tier: Arc<dyn RemoteTier>,
    breaker: Breaker,
    warnings: RateLimit,
    clock: Clock,
    pub(crate) max_value_size: usize,
    /// How values are encoded for this tier (`codec = ".."`).
    pub(crate) codec: crate::codec::ValueCodec,
    /// The store's event listeners: L2 errors and the breaker's changes.
    events: Arc<EventHub>,
}

/// The L2 was not asked (breaker open) or failed: the caller carries on without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skipped {
    /// Not asked (the breaker is open), or the tier could not be reached: the same call
    /// may go through later.
    Unavailable,
    /// The tier answered and refused the call (a value too large, a command it rejects):
    /// the same call would be refused again.
    Refused,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Skipped::Unavailable => "the L2 is unreachable (or its circuit breaker is open)",
            Skipped::Refused => "the L2 refused the call",
        })
    }
}

impl Remote {
    pub(crate) fn new(
        tier: Arc<dyn RemoteTier>,
        breaker: Duration,
        max_value_size: usize,
        codec: crate::codec::ValueCodec,
        clock: Clock,
        events: Arc<EventHub>,
    ) -> Self {
        Self {
            events,
            tier,
            breaker: Breaker::new(breaker, clock.clone()),
            warnings: RateLimit::default(),
            max_value_size,
            codec,
            clock,
        }
    }

    /// How long the circuit breaker keeps the tier alone from now (zero when closed).
    pub(crate) fn breaker_reopens_in(&self) -> Duration {
        self.breaker.reopens_in()
    }

    async fn call<T>(
        &self,
        store: &str,
        op: &'static str,
        call: impl std::future::Future<Output = Result<T, TierError>>,
    ) -> Result<T, Skipped> {
        if !self.breaker.allows() {
            return Err(Skipped::Unavailable);
        }
        match call.await {
            Ok(value) => {
                if self.breaker.reset() {
                    self.events
                        .tell(EventKind::BreakerClosed, store, None, None);
                }
                Ok(value)
            }
            Err(err) => {
                self.events.tell(EventKind::L2Error, store, None, None);
                let skipped = if err.kind() == TierErrorKind::Unavailable {
                    if self.breaker.trip() {
                        self.events
                            .tell(EventKind::BreakerOpened, store, None, None);
                    }
                    Skipped::Unavailable
                } else {
                    Skipped::Refused
                };
                if let Some(suppressed) = self.warnings.check(WARN_EVERY_MS, self.clock.ticks_ms())
                {
                    tracing::warn!(
                        store,
                        op,
                        tier = %self.tier.describe(),
                        error = %err,
                        suppressed,
                        "cachet: L2 fault; carrying on without it"
                    );
                }
                Err(skipped)
            }
        }
    }

    /// Reads `key` (see [`RemoteTier::get`]). [`call`](Self::call)'s future itself, not one
    /// more around it: a level less at each of a read's polls.
    pub(crate) fn get<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, Skipped>> + 'a {
        self.call(store, "get", self.tier.get(key))
    }

    pub(crate) async fn set(
        &self,
        store: &str,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), Skipped> {
        self.call(store, "set", self.tier.set(key, bytes, ttl))
            .await
    }

    /// Keeps `key`'s entry for `ttl` from now (see [`RemoteTier::touch`]).
    pub(crate) async fn touch(
        &self,
        store: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<bool, Skipped> {
        self.call(store, "touch", self.tier.touch(key, ttl)).await
    }

    /// Reads several keys in one call (see [`RemoteTier::get_many`]).
    pub(crate) async fn get_many(
        &self,
        store: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, Skipped> {
        let found = self
            .call(store, "get_many", self.tier.get_many(keys))
            .await?;
        // A provider answering for other keys than asked is a fault, not a mix-up.
        if found.len() != keys.len() {
            tracing::warn!(store, tier = %self.tier.describe(), asked = keys.len(), answered = found.len(), "cachet: L2 answered a batch read with the wrong number of values; ignored");
            return Err(Skipped::Refused);
        }
        Ok(found)
    }

    /// Writes several entries in one call (see [`RemoteTier::set_many`]).
    pub(crate) async fn set_many(
        &self,
        store: &str,
        entries: Vec<super::RemoteEntry>,
    ) -> Result<(), Skipped> {
        self.call(store, "set_many", self.tier.set_many(entries))
            .await
    }

    pub(crate) async fn delete(&self, store: &str, keys: &[String]) -> Result<(), Skipped> {
        self.call(store, "delete", self.tier.delete_many(keys))
            .await
    }

    pub(crate) async fn clear(&self, store: &str, scope: &Scope) -> Result<(), Skipped> {
        self.call(store, "clear", self.tier.clear_scope(scope))
            .await
    }

    pub(crate) async fn set_tagged(
        &self,
        store: &str,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        tag_keys: &[String],
        tags_ttl: Duration,
    ) -> Result<(), Skipped> {
        self.call(
            store,
            "set",
            self.tier.set_tagged(key, bytes, ttl, tag_keys, tags_ttl),
        )
        .await
    }

    pub(crate) async fn tagged_keys(
        &self,
        store: &str,
        tag_keys: &[String],
    ) -> Result<Vec<String>, Skipped> {
        self.call(store, "tagged_keys", self.tier.tagged_keys(tag_keys))
            .await
    }

    pub(crate) async fn delete_tagged(
        &self,
        store: &str,
        keys: &[String],
        tag_keys: &[String],
    ) -> Result<(), Skipped> {
        self.call(
            store,
            "delete_tagged",
            self.tier.delete_tagged(keys, tag_keys),
        )
        .await
    }

    /// Takes a distributed lock (see [`RemoteTier::try_lock`]).
    pub(crate) async fn try_lock(
        &self,
        store: &str,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, Skipped> {
        self.call(store, "lock", self.tier.try_lock(key, token, ttl))
            .await
    }

    /// Releases a distributed lock this token holds (see [`RemoteTier::unlock`]).
    pub(crate) async fn unlock(
        &self,
        store: &str,
        key: &str,
        token: &str,
    ) -> Result<bool, Skipped> {
        self.call(store, "unlock", self.tier.unlock(key, token))
            .await
    }
}
