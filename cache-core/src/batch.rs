//! Batch operations of a cache: [`Cache::get_many`], [`Cache::set_many`] and
//! [`Cache::get_or_set_many`]. Every key is looked up in L1 first; the rest are read from
//! L2 in one call ([`crate::store::RemoteTier::get_many`]: one Redis pipeline, one SQL
//! statement), and written back in one ([`crate::store::RemoteTier::set_many`]).
//!
//! A failed batch load (its factory returned an error, or took longer than the hard timeout)
//! answers with the stale values of the keys it was asked for, within grace, when each of them
//! has one, as a single call does; when one has none, the error is returned.
//!
//! The options a batch honours: each entry is written as a single call writes it (`ttl`,
//! `jitter`, `grace`, `tti`, `l1_ttl`, tags, `skip_l2_write`, `skip_bus`,
//! `background_l2_writes`); reads skip L2 with `skip_l2_read`; `force_fresh` loads every key;
//! `hard_timeout` bounds the factory; `wait_timeout` bounds the whole wait for other callers'
//! gates. Three do not apply, because each answers one caller about one key:
//! - the distributed lock (`lock = "redis"`): holding one lock per key of a batch across
//!   instances would serialise overlapping batches key by key for the lock's timeout and
//!   could not be taken atomically for all keys; a batch's loads are single-flighted per key
//!   within the instance only;
//! - the soft `timeout`: it answers with a stale value while the factory finishes in the
//!   background, but a batch's factory borrows from its caller (it runs within the call) and
//!   loads keys of which some may have no stale value;
//! - `eager_refresh`: a batch serves its hits as they are (one background load per key is
//!   what a batch avoids); the entries it writes carry their refresh point, so a single call
//!   refreshes them early.
//!
//! Single flight holds per key, as for single calls: a batch load takes the gate of every
//! key it loads (in the order of their stored keys, so two batches never wait for each
//! other in a cycle), so a concurrent `get_or_set` or `#[cacheable]` call on one of those
//! keys waits for the batch and takes its value instead of loading its own; a key whose
//! gate another caller holds is waited for, and its value taken, instead of being loaded
//! twice.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures_util::FutureExt;
use serde::Serialize;
use tracing::Instrument;

use crate::cache::Cache;
use crate::engine::{Engine, Lifetime, Lookup, Prepared, RemoteOutcome, Write};
use crate::error::CacheError;
use crate::events::EventKind;
use crate::fault::FaultOperation;
use crate::flight::FlightGuard;
use crate::shape::SharedFailure;
use crate::stats::Event;
use crate::store::{Invalidation, RemoteEntry};
use crate::CacheValue;

/// The distinct keys of a batch, each with its stored key, in the caller's order (a key
/// given twice is looked up once).
pub(crate) struct Keys<K> {
    pub(crate) keys: Vec<K>,
    pub(crate) stored: Vec<String>,
}

impl<K: Serialize + Eq + Hash + Clone> Keys<K> {
    pub(crate) fn new(cache: &Engine, keys: &[K]) -> Result<Self, CacheError> {
        let stored = keys
            .iter()
            .map(|key| cache.stored_key(key))
            .collect::<Result<Vec<String>, _>>()?;
        // A key given twice is kept once, where it first appears; the stored keys are
        // compared borrowed, not copied into the set.
        let first: Vec<bool> = {
            let mut seen = std::collections::HashSet::with_capacity(stored.len());
            stored.iter().map(|s| seen.insert(s.as_str())).collect()
        };
        if first.iter().all(|&f| f) {
            return Ok(Keys {
                keys: keys.to_vec(),
                stored,
            });
        }
        let (keys, stored) = keys
            .iter()
            .zip(stored)
            .zip(first)
            .filter(|(_, first)| *first)
            .map(|((key, stored), _)| (key.clone(), stored))
            .unzip();
        Ok(Keys { keys, stored })
    }

    /// The keys with a value in `found`, each with its value.
    fn into_map<V>(self, found: Vec<Option<V>>) -> HashMap<K, V> {
        self.keys
            .into_iter()
            .zip(found)
            .filter_map(|(key, value)| Some((key, value?)))
            .collect()
    }
}

impl Engine {
    /// The fresh value of type `V` under each of `stored`, in order: L1 first, then one L2
    /// call for the rest (backfilling L1). Counts hits and faults; misses are counted by
    /// the caller.
    pub(crate) async fn lookup_many<V: CacheValue>(&self, stored: &[String]) -> Vec<Option<V>> {
        self.lookup_many_graced(stored).await.0
    }

    /// [`Engine::lookup_many`], and the stale value (within this view's grace) of each key
    /// that has no fresh one: what a failed batch load falls back on.
    pub(crate) async fn lookup_many_graced<V: CacheValue>(
        &self,
        stored: &[String],
    ) -> (Vec<Option<V>>, Vec<Option<V>>) {
        let mut found: Vec<Option<V>> = Vec::with_capacity(stored.len());
        let mut stale: Vec<Option<V>> = Vec::with_capacity(stored.len());
        let mut pending = Vec::new();
        for (i, key) in stored.iter().enumerate() {
            let (fresh, old) = match self.look_l1::<V>(key).0 {
                Lookup::Fresh(value) => (Some(value), None),
                Lookup::Stale(value, _) => (None, Some(value)),
                Lookup::Miss => (None, None),
            };
            if fresh.is_none() {
                pending.push(i);
            }
            found.push(fresh);
            stale.push(old);
        }
        let store = &self.inner.store;
        let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !pending.is_empty() && !self.skips(|o| o.skip_l2_read))
        else {
            return (found, stale);
        };
        let keys: Vec<String> = pending.iter().map(|&i| stored[i].clone()).collect();
        // Noted before the read: a change of a key meanwhile refuses its backfill.
        let seen: Vec<Option<u64>> = keys.iter().map(|k| self.version_seen(k)).collect();
        match remote.get_many(&store.name, &keys).await {
            Ok(values) => {
                for ((i, bytes), seen) in pending.into_iter().zip(values).zip(seen) {
                    let Some(bytes) = bytes else { continue };
                    match self.accept_remote::<V>(&stored[i], &bytes, seen).0 {
                        Lookup::Fresh(value) => found[i] = Some(value),
                        Lookup::Stale(value, _) => stale[i] = Some(value),
                        Lookup::Miss => {}
                    }
                }
            }
            Err(err) => {
                self.fault(FaultOperation::Get, None, &err);
            }
        }
        (found, stale)
    }

    /// Stores each value under its stored key in every tier: L1 one by one, L2 in one call,
    /// and tells the other instances once. Tagged writes go one by one (each joins its tag
    /// sets atomically with its value).
    pub(crate) async fn write_many<V: CacheValue>(
        &self,
        entries: Vec<(String, V)>,
        lifetime: Lifetime,
        why: Write,
    ) {
        let store = &self.inner.store;
        if self.is_noop() || entries.is_empty() {
            return;
        }
        if store.l2.is_none() || !self.inner.tags.is_empty() || self.skips(|o| o.skip_l2_write) {
            for (stored, value) in entries {
                self.write::<V>(&stored, value, lifetime, why).await;
            }
            return;
        }
        let mut prepared = Vec::with_capacity(entries.len());
        let mut batch = Vec::with_capacity(entries.len());
        for (stored, value) in entries {
            let mut write = self.prepare_write::<V>(&stored, value, lifetime);
            let encoded = match write.bytes.take() {
                Some(bytes) => {
                    batch.push(RemoteEntry::new(stored.clone(), bytes, write.ttl));
                    true
                }
                None => false,
            };
            prepared.push((stored, write, encoded));
        }
        // `background_l2_writes`: the caller is answered once L1 holds the values.
        if self.skips(|o| o.background_l2_writes) {
            if let Some(runtime) = crate::background::handle() {
                let engine = self.clone();
                runtime.spawn(async move { engine.finish_many(prepared, batch, why).await });
                return;
            }
        }
        self.finish_many(prepared, batch, why).await;
    }

    /// The part of a batch write after L1 (in the background with `background_l2_writes`):
    /// the one L2 write, the settling of each entry, and one bus message.
    async fn finish_many(
        &self,
        prepared: Vec<(String, Prepared, bool)>,
        batch: Vec<RemoteEntry>,
        why: Write,
    ) {
        let store = &self.inner.store;
        let Some(remote) = &store.l2 else { return };
        let outcome = if batch.is_empty() {
            RemoteOutcome::Unencodable
        } else {
            RemoteOutcome::of(remote.set_many(&store.name, batch).await)
        };
        let mut announce = Vec::with_capacity(prepared.len());
        for (stored, write, encoded) in prepared {
            let outcome = if encoded {
                outcome
            } else {
                RemoteOutcome::Unencodable
            };
            if self.settle_write(&stored, write, outcome, why) {
                announce.push(stored);
            }
        }
        if !announce.is_empty() {
            self.announce(Invalidation::Keys(announce)).await;
        }
    }

    /// Runs a batch factory, bounded by the hard timeout when asked.
    async fn run_factory<T, E: From<CacheError>>(
        &self,
        bounded: bool,
        factory: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        if bounded {
            self.bounded(factory).await?
        } else {
            factory.await
        }
    }

    /// The one path of the batch loads (programmatic and `#[cacheable_many]`): the value
    /// under each of `stored` (the stored keys of `keys`, distinct), the missing ones from
    /// one call of `factory`, stored for `lifetime`. A `fallible` load (programmatic: its
    /// caller can be answered with a `CacheError`, the only ones this returns) has its
    /// factory bounded by the cache's hard timeout, and is failed before its factory runs
    /// by a read the manager's error handler failed (`fault.rs`); `#[cacheable_many]`'s
    /// never fails for the cache.
    pub(crate) async fn load_many<V, E, K, F, Fut>(
        &self,
        keys: &[K],
        stored: &[String],
        lifetime: Lifetime,
        fallible: bool,
        factory: F,
    ) -> Result<Vec<Option<V>>, E>
    where
        V: CacheValue,
        E: From<CacheError>,
        K: Eq + Hash + Clone,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, E>>,
    {
        if self.is_noop() {
            self.inner.stats.record(Event::Miss, keys.len() as u64);
            let mut loaded = self.run_factory(fallible, factory(keys.to_vec())).await?;
            return Ok(keys.iter().map(|k| loaded.remove(k)).collect());
        }
        let flights = &self.inner.store.flights;
        // Before the first look, as for a single call (see `Flights::ticket`).
        let tickets: Vec<_> = stored.iter().map(|s| flights.ticket(s)).collect();
        // `force_fresh`: every key is loaded and stored, hit or not.
        let force = self.skips(|o| o.force_fresh);
        let (mut found, mut stale) = if force {
            (vec![None; stored.len()], vec![None; stored.len()])
        } else {
            self.lookup_many_graced::<V>(stored).await
        };
        let mut order: Vec<usize> = (0..stored.len()).filter(|&i| found[i].is_none()).collect();
        // A read the error handler failed fails the batch here, before it waits at any
        // gate or runs its factory, as it fails a single call (`fault.rs`).
        if fallible && !order.is_empty() {
            if let Some((err, _)) = crate::fault::fail_early(|error| Some(E::from(error))) {
                return Err(err);
            }
        }
        // One order for every batch: two batches never hold gates the other waits for.
        order.sort_by(|&a, &b| stored[a].cmp(&stored[b]));
        let mut gates: Vec<(usize, FlightGuard<'_>)> = Vec::with_capacity(order.len());
        // `wait_timeout` bounds the batch's whole wait for other callers' gates: past it,
        // the keys still held by others are loaded by this batch too, without their gate.
        let deadline = self
            .settings()
            .wait_timeout
            .map(|limit| self.clock().now() + limit);
        let mut ungated: Vec<usize> = Vec::new();
        for i in order {
            let entering = crate::invoke::enter::<V>(self, &stored[i], tickets[i]);
            let entered = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(self.clock().now());
                    match self.clock().within(left, entering).await {
                        Some(entered) => entered,
                        None => {
                            ungated.push(i);
                            continue;
                        }
                    }
                }
                None => entering.await,
            };
            match entered {
                Ok(gate) => gates.push((i, gate)),
                // Another caller loaded it meanwhile and handed it over.
                Err(crate::invoke::Handover::Value(value)) => found[i] = Some(value),
                // Its function failed: this batch loads the key itself. Its holder's lookup
                // failed a read (`fault.rs`) this batch makes too: the batch fails with it,
                // as a single call waiting there does, and hands it on.
                Err(crate::invoke::Handover::Failed(shared)) => {
                    let early = shared
                        .as_ref()
                        .filter(|_| fallible)
                        .and_then(|shared| crate::fault::handed_failure(shared))
                        .filter(|f| {
                            crate::invoke::reads_l2_of(std::slice::from_ref(self), f.cache(), force)
                        });
                    if let (Some(failure), Some(shared)) = (early, &shared) {
                        let err = failure.error();
                        hand_failure(&mut gates, shared);
                        return Err(E::from(err));
                    }
                    gates.push((i, flights.lock(&stored[i], tickets[i]).await))
                }
            }
        }
        if !ungated.is_empty() {
            tracing::debug!(
                cache = self.name(),
                keys = ungated.len(),
                "cachet: wait_timeout; the batch loads the keys other callers are still loading"
            );
        }
        // Whoever held a gate since the first look may have stored its value meanwhile
        // (and a key waited for in vain may have been stored by now).
        let again: Vec<usize> = gates
            .iter()
            .filter(|(_, gate)| gate.look_again())
            .map(|(i, _)| *i)
            .chain(ungated.iter().copied())
            .collect();
        if !again.is_empty() && !force {
            let keys: Vec<String> = again.iter().map(|&i| stored[i].clone()).collect();
            let (fresh, old) = self.lookup_many_graced::<V>(&keys).await;
            for ((i, value), old) in again.into_iter().zip(fresh).zip(old) {
                found[i] = value;
                if old.is_some() {
                    stale[i] = old;
                }
            }
        }
        let mut missing: Vec<usize> = gates
            .iter()
            .map(|(i, _)| *i)
            .chain(ungated)
            .filter(|&i| found[i].is_none())
            .collect();
        // The factory gets the keys in the caller's order, not the gates'.
        missing.sort_unstable();
        // A read the error handler failed fails the batch here, its factory not run, as it
        // fails a single call (`fault.rs`); the callers waiting at its gates take the failure.
        if fallible && !missing.is_empty() {
            if let Some((err, failure)) = crate::fault::fail_early(|error| Some(E::from(error))) {
                hand_failure(&mut gates, &failure);
                return Err(err);
            }
        }
        self.inner.stats.record(Event::Miss, missing.len() as u64);
        for &i in &missing {
            self.tell(EventKind::Miss, Some(&stored[i]));
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let asked: Vec<K> = missing.iter().map(|&i| keys[i].clone()).collect();
        let span =
            tracing::debug_span!("cachet.miss_many", cache = self.name(), keys = asked.len());
        let mut loaded = match self
            .run_factory(fallible, factory(asked).instrument(span))
            .await
        {
            Ok(loaded) => loaded,
            // Grace: when every key the factory was asked for has a stale value, the batch
            // answers with them, as a single call does; else the factory's error.
            Err(err) if missing.iter().all(|&i| stale[i].is_some()) => {
                self.inner.stats.record(Event::Stale, missing.len() as u64);
                tracing::warn!(
                    cache = self.name(),
                    keys = missing.len(),
                    "cachet: the batch factory failed; serving the stale values (grace period)"
                );
                drop(err);
                for i in missing {
                    found[i] = stale[i].take();
                }
                return Ok(found);
            }
            Err(err) => return Err(err),
        };
        let mut writes = Vec::with_capacity(missing.len());
        for i in missing {
            if let Some(value) = loaded.remove(&keys[i]) {
                writes.push((stored[i].clone(), value.clone()));
                found[i] = Some(value);
            }
        }
        self.write_many(writes, lifetime, Write::Fill).await;
        // The waiters take these values, whether or not a tier kept them.
        for (i, gate) in &mut gates {
            if let Some(value) = &found[*i] {
                gate.hand_over(|| Arc::new(value.clone()));
            }
        }
        drop(gates);
        Ok(found)
    }
}

/// Hands `failure` to the callers waiting at each of `gates`, which the batch lets go.
fn hand_failure(gates: &mut [(usize, FlightGuard<'_>)], failure: &SharedFailure) {
    for (_, gate) in gates {
        gate.hand_failure(|| Some(failure.clone()));
    }
}

impl Cache {
    /// The fresh values of type `V` under `keys` (hits only: a key missing from the map
    /// is a miss), read from L1 first and from L2 in one round trip for the rest.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let users = m.cache("users").unwrap();
    /// users.set_many(&[(1u64, "ann".to_string()), (2, "bob".to_string())]).await.unwrap();
    /// let found = users.get_many::<String, _>(&[1u64, 2, 3]).await.unwrap();
    /// assert_eq!(found.len(), 2);
    /// assert_eq!(found[&2], "bob");
    /// # });
    /// ```
    pub async fn get_many<V, K>(&self, keys: &[K]) -> Result<HashMap<K, V>, CacheError>
    where
        V: CacheValue,
        K: Serialize + Eq + Hash + Clone,
    {
        let keys = Keys::new(&self.engine, keys)?;
        let lookup = self
            .engine
            .lookup_many::<V>(&keys.stored)
            .map(Ok::<_, CacheError>);
        let found = crate::fault::checked(self.watched(), lookup).await?;
        let misses = found.iter().filter(|v| v.is_none()).count();
        self.engine.inner.stats.record(Event::Miss, misses as u64);
        for (stored, _) in keys.stored.iter().zip(&found).filter(|(_, v)| v.is_none()) {
            self.engine.tell(EventKind::Miss, Some(stored));
        }
        Ok(keys.into_map(found))
    }

    /// Stores each value under its key for the cache's TTL: in L1 one by one, in L2 in one
    /// round trip (one Redis pipeline, one SQL statement per few hundred entries).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let users = m.cache("users").unwrap();
    /// users.set_many(&[(1u64, "ann".to_string()), (2, "bob".to_string())]).await.unwrap();
    /// assert_eq!(users.get::<String>(&1u64).await.unwrap().as_deref(), Some("ann"));
    /// # });
    /// ```
    pub async fn set_many<V, K>(&self, entries: &[(K, V)]) -> Result<(), CacheError>
    where
        V: CacheValue,
        K: Serialize,
    {
        let entries = entries
            .iter()
            .map(|(key, value)| Ok((self.engine.stored_key(key)?, value.clone())))
            .collect::<Result<Vec<_>, CacheError>>()?;
        let write = self
            .engine
            .write_many(entries, Lifetime::Default, Write::Change);
        crate::fault::checked(self.watched(), write.map(Ok)).await
    }

    /// The values under `keys`: those cached, and for the others the factory's, stored. The
    /// factory runs once, with only the keys that missed, and returns a map of their values;
    /// a key it leaves out is not stored and is missing from the answer. Its values are
    /// stored in one L2 round trip.
    ///
    /// Single flight per key: a concurrent `get_or_set` (or `#[cacheable]` call) on one of
    /// the keys being loaded waits for this batch and takes its value; a key another caller
    /// is loading is waited for and taken from it, not loaded again. The factory is bounded
    /// by the cache's hard timeout; when it fails and every key it was asked for has a stale
    /// value within grace, those answer. The options honoured are a single call's but three:
    /// the distributed lock (`lock = "redis"`) is not taken (a batch loads with this
    /// instance's single flight), and the soft `timeout` and `eager_refresh` do not apply
    /// (the factory runs within the call; hits are served as they are): the README's
    /// batch section says why. Under a [`crate::FaultAction::Fail`] error handler, a batch
    /// read of a tier that could not be read fails the call before the factory runs, as it
    /// fails [`Cache::get_or_set`]; bad bytes fail it after the factory's values overwrote
    /// them.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::collections::HashMap;
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let users = m.cache("users").unwrap();
    /// users.set(&1u64, &"ann".to_string()).await.unwrap();
    /// let all = users
    ///     .get_or_set_many(&[1u64, 2, 3], |missing: Vec<u64>| async move {
    ///         assert_eq!(missing, [2, 3]); // only the keys that missed
    ///         missing.into_iter().map(|id| (id, format!("user {id}"))).collect::<HashMap<_, _>>()
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(all[&1], "ann");
    /// assert_eq!(all[&3], "user 3");
    /// # });
    /// ```
    pub async fn get_or_set_many<V, K, F, Fut>(
        &self,
        keys: &[K],
        factory: F,
    ) -> Result<HashMap<K, V>, CacheError>
    where
        V: CacheValue,
        K: Serialize + Eq + Hash + Clone,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = HashMap<K, V>>,
    {
        self.try_get_or_set_many(keys, move |missing| {
            factory(missing).map(Ok::<_, CacheError>)
        })
        .await
    }

    /// Like [`Cache::get_or_set_many`] with a fallible factory: an `Err` is returned, and
    /// nothing of it stored.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::collections::HashMap;
    /// use cache_core::CacheError;
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// let r: Result<HashMap<u64, u32>, CacheError> = users
    ///     .try_get_or_set_many(&[1u64], |missing: Vec<u64>| async move {
    ///         Ok(missing.into_iter().map(|id| (id, 7)).collect())
    ///     })
    ///     .await;
    /// assert_eq!(r.unwrap()[&1], 7);
    /// # });
    /// ```
    pub async fn try_get_or_set_many<V, E, K, F, Fut>(
        &self,
        keys: &[K],
        factory: F,
    ) -> Result<HashMap<K, V>, E>
    where
        V: CacheValue,
        E: From<CacheError>,
        K: Serialize + Eq + Hash + Clone,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, E>>,
    {
        let keys = Keys::new(&self.engine, keys)?;
        let load =
            self.engine
                .load_many(&keys.keys, &keys.stored, Lifetime::Default, true, factory);
        let found = crate::fault::checked(self.watched(), load).await?;
        Ok(keys.into_map(found))
    }
}
