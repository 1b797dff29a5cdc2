//! `Cache`: one named cache (or namespace) in one store, and its typed programmatic API.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock;
use crate::codec;
use crate::config::CacheOptions;
use crate::error::{CacheError, TierError};
use crate::invoke::Detachable;
use crate::key::encode_key_into;
use crate::layout;
use crate::shape::ResultShape;
use crate::stats::{CacheStats, Event, StatsCounters};
use crate::store::named::StoreInner;
use crate::store::remote::Skipped;
use crate::store::replay::Pending;
use crate::store::{Invalidation, LocalEntry, LocalTier, Scope};
use crate::CacheValue;
use futures_util::FutureExt;

/// How long a written entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// The cache's TTL.
    Default,
    /// This TTL.
    For(Duration),
    /// No expiry.
    Forever,
    /// A stale value served after a failure (`grace_backoff`): fresh for this long, but
    /// never kept past the end of its original grace period.
    Backoff {
        fresh_for: Duration,
        keep_until: Option<Instant>,
    },
}

/// Why a value is written: it decides what is owed to the other instances when the L2
/// misses the write (failed, or skipped by the open circuit breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// A cached function's value (a miss filled, a refresh, a stale value stored back):
    /// what the L2 and the other instances hold is as good a cached copy, expiring with
    /// its TTL, so a missed write is only counted.
    Fill,
    /// The application changed the value (`set`, `#[cache_put]`): an L2 that missed it is
    /// brought in line, and the other instances told, once it is back (`replay.rs`).
    Change,
}

/// What a lookup found.
pub(crate) enum Lookup<V> {
    Fresh(V),
    /// Past its TTL but within grace, with the instant it must be dropped: served only
    /// when refreshing fails.
    Stale(V, Option<Instant>),
    Miss,
}

/// What a write owes the tiers after L1: see [`Cache::finish_write`].
struct RemoteWrite {
    stored: String,
    /// The L2 bytes (`None`: no L2 write).
    encoded: Option<Result<Vec<u8>, codec::CodecError>>,
    /// The L2 TTL.
    ttl: Duration,
    /// The L1 entry written and the version its insert left, for the put-back.
    local: Option<(LocalEntry, u64)>,
    why: Write,
}

/// A named cache in a store: cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// Get one from [`crate::CacheManager::cache`] (or `cachet::cache("users")`). Keys are any
/// `serde::Serialize` value, encoded as the annotations encode them, so
/// `cache.get::<User>(&42u64)` reads what `#[cacheable("users")] fn find(id: u64)` stored
/// for `find(42)`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
/// let manager = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
/// let users = manager.cache("users").unwrap();
/// users.set(&42u64, &"ann".to_string()).await.unwrap();
/// assert_eq!(users.get::<String, _>(&42u64).await.unwrap().as_deref(), Some("ann"));
/// let n: u32 = users.get_or_set(&7u64, || async { 7 }).await.unwrap();
/// assert_eq!(n, 7);
/// # });
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<CacheInner>,
}

pub(crate) struct CacheInner {
    pub(crate) name: Arc<str>,
    /// `{prefix}:{cache}` or `{prefix}:{cache}#{ns}...`: every stored key is `{base}:{key}`.
    pub(crate) base: String,
    pub(crate) store: Arc<StoreInner>,
    pub(crate) settings: Arc<CacheOptions>,
    pub(crate) stats: Arc<StatsCounters>,
    /// The tags this handle's writes carry (see `tags.rs`); empty for a plain handle.
    pub(crate) tags: crate::tags::Tags,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &&*self.inner.name)
            .field("base", &self.inner.base)
            .field("store", &self.inner.store.name)
            .field("settings", &self.inner.settings)
            .finish()
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` with an empty reusable buffer (a fresh one when the thread's is in use).
fn with_scratch<R>(f: impl FnOnce(&mut String) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            f(&mut buf)
        }
        Err(_) => f(&mut String::new()),
    })
}

/// A rough size for size-bounded tiers: the key, the value's inline size behind its `Arc`,
/// and the tier's own per-entry overhead. Heap data owned by the value is not counted.
fn estimate_weight<V>(key: &str, tier: &dyn LocalTier) -> u32 {
    const ARC_HEADER: usize = 16;
    let bytes = key.len() + std::mem::size_of::<V>() + ARC_HEADER + tier.entry_overhead() as usize;
    bytes.try_into().unwrap_or(u32::MAX)
}

impl Cache {
    pub(crate) fn new(
        name: Arc<str>,
        base: String,
        store: Arc<StoreInner>,
        settings: Arc<CacheOptions>,
        stats: Arc<StatsCounters>,
    ) -> Self {
        Cache {
            inner: Arc::new(CacheInner {
                name,
                base,
                store,
                settings,
                stats,
                tags: crate::tags::Tags::default(),
            }),
        }
    }

    /// The cache's name.
    ///
    /// ```
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.name(), "users");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The name of the store holding this cache.
    ///
    /// ```
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.store_name(), "none");
    /// ```
    pub fn store_name(&self) -> &str {
        &self.inner.store.name
    }

    /// A snapshot of this cache's counters.
    ///
    /// ```
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.stats().hits, 0);
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot()
    }

    /// A nested namespace: its own keys, clearable on its own; cleared with its parent.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let users = m.cache("users").unwrap();
    /// let admins = users.namespace("admins");
    /// admins.set(&1u64, &true).await.unwrap();
    /// users.set(&1u64, &false).await.unwrap();
    /// admins.clear().await.unwrap();
    /// assert_eq!(users.get::<bool, _>(&1u64).await.unwrap(), Some(false));
    /// # });
    /// ```
    pub fn namespace(&self, name: &str) -> Cache {
        Cache::new(
            self.inner.name.clone(),
            layout::namespace_base(&self.inner.base, name),
            self.inner.store.clone(),
            self.inner.settings.clone(),
            self.inner.stats.clone(),
        )
        .tagged(self.tags())
    }

    /// A view of this cache whose settings are overridden by `options` (each option set
    /// replaces the cache's; unset ones are inherited): per-call options. The view shares
    /// the cache's entries, single flight and stats, and every method honours its settings:
    /// TTL and grace of the entries it writes, grace backoff, timeouts. The original handle
    /// is unaffected. A zero `grace` turns grace off for what the view writes.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use cache_core::{CacheManager, CacheOptions, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// let users = m.cache("users").unwrap();
    /// let patient = users.with_options(
    ///     CacheOptions::new().ttl(Duration::from_secs(60)).grace(Duration::from_secs(3600)),
    /// );
    /// let n: u32 = patient.get_or_set(&1u64, || async { 1 }).await.unwrap(); // fresh 1m, kept 1h more
    /// assert_eq!(users.get::<u32, _>(&1u64).await.unwrap(), Some(n));       // same entries
    /// # });
    /// ```
    pub fn with_options(&self, options: CacheOptions) -> Cache {
        // A ratio outside (0, 1) (which building a manager rejects) is ignored here.
        let settings = self.settings().overlay(&options.valid_only());
        Cache::new(
            self.inner.name.clone(),
            self.inner.base.clone(),
            self.inner.store.clone(),
            Arc::new(settings),
            self.inner.stats.clone(),
        )
        // A view keeps the tags of the handle it was made from.
        .tagged(self.tags())
    }

    pub(crate) fn scope(&self) -> Scope {
        Scope::new(self.inner.base.clone())
    }

    pub(crate) fn is_noop(&self) -> bool {
        self.inner.store.is_noop()
    }

    pub(crate) fn settings(&self) -> &CacheOptions {
        &self.inner.settings
    }

    pub(crate) fn count(&self, event: Event) {
        self.inner.stats.record(event, 1);
    }

    /// `{base}:{encoded key}`.
    pub(crate) fn stored_key_of_encoded(&self, encoded: &str) -> String {
        layout::entry_key(&self.inner.base, encoded)
    }

    pub(crate) fn stored_key<K: Serialize + ?Sized>(&self, key: &K) -> Result<String, CacheError> {
        let stored = layout::entry_key_of(&self.inner.base, key)
            .inspect_err(|_| self.count(Event::Error))?;
        Ok(stored)
    }

    // ----- tier orchestration, shared by the programmatic API and the annotations -----

    /// Looks `stored` up in L1, then L2 (backfilling L1 with the remaining TTL); counts
    /// hits and faults (misses are counted by the caller, once per call).
    pub(crate) async fn lookup<V: CacheValue>(&self, stored: &str) -> Lookup<V> {
        self.lookup_due(stored).await.0
    }

    /// [`Cache::lookup`], and whether a fresh value is past its eager refresh point.
    pub(crate) async fn lookup_due<V: CacheValue>(&self, stored: &str) -> (Lookup<V>, bool) {
        let (local, due) = self.probe_local(stored);
        if matches!(local, Lookup::Fresh(_)) {
            return (local, due);
        }
        match self.lookup_remote(stored).await {
            (Lookup::Miss, _) => (local, false),
            remote => remote,
        }
    }

    /// [`Cache::fresh_in_l1_by_encoded`], and whether the value is past its eager refresh
    /// point.
    pub(crate) fn fresh_in_l1_due_by_encoded<V: CacheValue>(
        &self,
        encoded: &str,
    ) -> Option<(V, bool)> {
        self.inner.store.l1.as_ref()?;
        with_scratch(|buf| {
            layout::push_entry_start(buf, &self.inner.base);
            buf.push_str(encoded);
            match self.probe_local::<V>(buf) {
                (Lookup::Fresh(value), due) => Some((value, due)),
                (Lookup::Stale(..) | Lookup::Miss, _) => None,
            }
        })
    }

    /// `look(self, stored)` with the stored key of `key` encoded straight into a reused
    /// buffer: a hit allocates nothing for the key. `None` without L1, or for a key that
    /// cannot be encoded.
    pub(crate) fn in_l1<K: Serialize + ?Sized, R>(
        &self,
        key: &K,
        look: impl FnOnce(&Cache, &str) -> Option<R>,
    ) -> Option<R> {
        self.inner.store.l1.as_ref()?;
        with_scratch(|buf| {
            layout::push_entry_start(buf, &self.inner.base);
            encode_key_into(key, buf).ok()?;
            look(self, buf)
        })
    }

    /// The fresh L1 value under `stored`, counted as a hit. With `eager`, a value past its
    /// eager refresh point is not taken (nor counted): the caller's full path serves it and
    /// starts the refresh.
    pub(crate) fn fresh_in_l1_stored<V: CacheValue>(&self, stored: &str, eager: bool) -> Option<V> {
        match self.peek_local::<V>(stored) {
            (Lookup::Fresh(value), due) if !(eager && due) => {
                self.count(Event::L1Hit);
                Some(value)
            }
            _ => None,
        }
    }

    /// The fresh L1 value under `{base}:` + what `write_key` appends, the stored key built
    /// in a reused buffer: a hit allocates nothing for it. `None` from `write_key` (a key
    /// that cannot be encoded) is a miss.
    fn fresh_in_l1<V: CacheValue>(
        &self,
        write_key: impl FnOnce(&mut String) -> Option<()>,
    ) -> Option<V> {
        self.inner.store.l1.as_ref()?;
        with_scratch(|buf| {
            layout::push_entry_start(buf, &self.inner.base);
            write_key(buf)?;
            match self.lookup_local::<V>(buf) {
                Lookup::Fresh(value) => Some(value),
                Lookup::Stale(..) | Lookup::Miss => None,
            }
        })
    }

    fn lookup_local<V: CacheValue>(&self, stored: &str) -> Lookup<V> {
        self.probe_local(stored).0
    }

    /// The L1 lookup, and whether a fresh hit is past the entry's eager refresh point: one
    /// more comparison on the entry already read. Counts a fresh hit.
    fn probe_local<V: CacheValue>(&self, stored: &str) -> (Lookup<V>, bool) {
        let probed = self.peek_local(stored);
        if matches!(probed.0, Lookup::Fresh(_)) {
            self.count(Event::L1Hit);
        }
        probed
    }

    /// [`Cache::probe_local`] without counting.
    fn peek_local<V: CacheValue>(&self, stored: &str) -> (Lookup<V>, bool) {
        let Some(l1) = &self.inner.store.l1 else {
            return (Lookup::Miss, false);
        };
        let Some(entry) = l1.get(stored) else {
            return (Lookup::Miss, false);
        };
        // Another type under this key (two functions sharing a cache) is a miss.
        let Some(value) = entry.value.downcast_ref::<V>() else {
            return (Lookup::Miss, false);
        };
        let timed = entry.fresh_until.is_some() || entry.refresh_at.is_some();
        let now = timed.then(|| self.inner.store.clock.now());
        let passed = |at: Option<Instant>| at.zip(now).is_some_and(|(at, now)| at <= now);
        // The tier drops entries by real time; the store's clock (a test's manual one)
        // decides too.
        if passed(entry.keep_until) {
            return (Lookup::Miss, false);
        }
        if let Some(idle) = &entry.idle {
            if !idle.read(self.inner.store.clock.ticks_ms()) {
                return (Lookup::Miss, false);
            }
        }
        if passed(entry.fresh_until) {
            if passed(self.grace_ends(entry.fresh_until)) {
                return (Lookup::Miss, false);
            }
            return (Lookup::Stale(value.clone(), entry.keep_until), false);
        }
        (Lookup::Fresh(value.clone()), passed(entry.refresh_at))
    }

    async fn lookup_remote<V: CacheValue>(&self, stored: &str) -> (Lookup<V>, bool) {
        let store = &self.inner.store;
        let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_read))
        else {
            return (Lookup::Miss, false);
        };
        // Noted before the read: a change of the key meanwhile refuses the backfill.
        let seen = store.l1.as_ref().map(|_| store.versions.current(stored));
        let bytes = match remote.get(&store.name, stored).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return (Lookup::Miss, false),
            Err(Skipped) => {
                self.count(Event::Error);
                return (Lookup::Miss, false);
            }
        };
        let (value, meta) = match remote.codec.decode::<V>(
            &bytes,
            codec::fingerprint::<V>(),
            remote.max_value_size,
        ) {
            Ok(decoded) => decoded,
            Err(err) => {
                // Another type, an older format or garbage: a miss, overwritten by the next write.
                self.count(Event::Error);
                tracing::debug!(cache = self.name(), key = stored, error = %err, "cachet: undecodable L2 value; treated as a miss");
                return (Lookup::Miss, false);
            }
        };
        let timing =
            clock::Timing::from_unix_ms(&store.clock, meta.fresh_until_ms, meta.keep_until_ms);
        if timing.is_gone() {
            return (Lookup::Miss, false);
        }
        // The envelope does not carry the refresh point: it is placed by this cache's TTL.
        let settings = self.settings();
        let refresh_at = settings
            .eager_refresh
            .zip(settings.ttl)
            .zip(timing.fresh_until)
            .and_then(|((ratio, ttl), fresh_until)| {
                fresh_until.checked_sub(ttl.mul_f64(1.0 - ratio))
            });
        if let (Some(l1), Some(seen)) = (&store.l1, seen) {
            let (fresh_until, keep_until) = self.l1_bounds(timing.fresh_until, timing.keep_until);
            let entry = LocalEntry::new(
                Arc::new(value.clone()),
                fresh_until,
                keep_until,
                estimate_weight::<V>(stored, l1.as_ref()),
            )
            .refresh_at(refresh_at)
            .idle_after(settings.tti, store.clock.ticks_ms());
            store
                .versions
                .insert_if_unchanged(stored, seen, || l1.insert(stored, entry));
        }
        if timing.is_fresh() {
            self.count(Event::L2Hit);
            let due = refresh_at.is_some_and(|at| at <= store.clock.now());
            (Lookup::Fresh(value), due)
        } else if self
            .grace_ends(timing.fresh_until)
            .is_some_and(|end| end <= store.clock.now())
        {
            // Within the entry's grace but past this call's.
            (Lookup::Miss, false)
        } else {
            (Lookup::Stale(value, timing.keep_until), false)
        }
    }

    /// When this view's grace ends for an entry fresh until `fresh_until`: a call's grace
    /// bounds what it may serve (the entry's own grace bounds how long it is kept).
    /// `None`: no bound beyond the entry's.
    fn grace_ends(&self, fresh_until: Option<Instant>) -> Option<Instant> {
        let grace = self.settings().grace?;
        fresh_until.and_then(|at| at.checked_add(grace))
    }

    /// Whether a flag of this view's options is on (`skip_l2_read`, `skip_bus`, ...).
    pub(crate) fn skips(&self, flag: impl FnOnce(&CacheOptions) -> Option<bool>) -> bool {
        CacheOptions::on(flag(self.settings()))
    }

    /// An L1 copy's bounds: the entry's, shortened to `l1_ttl` from now when that is set.
    fn l1_bounds(
        &self,
        fresh_until: Option<Instant>,
        keep_until: Option<Instant>,
    ) -> (Option<Instant>, Option<Instant>) {
        let Some(limit) = self
            .settings()
            .l1_ttl
            .and_then(|l1_ttl| self.inner.store.clock.now().checked_add(l1_ttl))
        else {
            return (fresh_until, keep_until);
        };
        let bound = |at: Option<Instant>| Some(at.map_or(limit, |at| at.min(limit)));
        (bound(fresh_until), bound(keep_until))
    }

    /// Tells the other instances, unless this view skips the bus.
    pub(crate) async fn announce(&self, invalidation: Invalidation) {
        if !self.skips(|o| o.skip_bus) {
            self.inner.store.announce(invalidation).await;
        }
    }

    /// Stores `value` under `stored` in every tier, and tells the other instances. Hits
    /// past `eager_refresh` of the TTL (this view's setting) are due for a refresh. `why`
    /// decides what a missed L2 write owes the other instances. With
    /// `background_l2_writes`, the L2 write and the bus message finish in the background
    /// once L1 holds the value.
    pub(crate) async fn write<V: CacheValue>(
        &self,
        stored: &str,
        value: V,
        lifetime: Lifetime,
        why: Write,
    ) {
        let store = &self.inner.store;
        if self.is_noop() {
            return;
        }
        let settings = self.settings();
        let ttl = |ttl: Option<Duration>| crate::jitter::jittered(ttl, settings.jitter);
        let timing = match lifetime {
            Lifetime::Default => {
                clock::Timing::starting_now(&store.clock, ttl(settings.ttl), settings.grace)
            }
            Lifetime::For(for_ttl) => {
                clock::Timing::starting_now(&store.clock, ttl(Some(for_ttl)), settings.grace)
            }
            Lifetime::Forever => clock::Timing::starting_now(&store.clock, None, settings.grace),
            Lifetime::Backoff {
                fresh_for,
                keep_until,
            } => clock::Timing::until(&store.clock, fresh_for, keep_until),
        };
        // A stale value stored back after a failure is not refreshed early.
        let refresh_at = match lifetime {
            Lifetime::Backoff { .. } => None,
            _ => settings
                .eager_refresh
                .and_then(|ratio| timing.refresh_point(ratio)),
        };
        let remote = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_write));
        let encoded = remote.map(|remote| {
            let meta = codec::EnvelopeMeta {
                fingerprint: codec::fingerprint::<V>(),
                fresh_until_ms: timing.fresh_until_ms,
                keep_until_ms: timing.keep_until_ms,
            };
            remote.codec.encode(&value, &meta)
        });
        let local = store.l1.as_ref().map(|l1| {
            let weight = estimate_weight::<V>(stored, l1.as_ref());
            let value: Arc<dyn Any + Send + Sync> = Arc::new(value);
            let (fresh_until, keep_until) = self.l1_bounds(timing.fresh_until, timing.keep_until);
            let entry = LocalEntry::new(value, fresh_until, keep_until, weight)
                .refresh_at(refresh_at)
                .idle_after(settings.tti, store.clock.ticks_ms());
            // The version this write's insert leaves, for its put-back (`versions.rs`).
            let mine = if store.l2.is_some() {
                store
                    .versions
                    .change(stored, || l1.insert(stored, entry.clone()))
            } else {
                // Without an L2 there is no backfill nor put-back to order.
                l1.insert(stored, entry.clone());
                0
            };
            if !self.inner.tags.is_empty() {
                store
                    .tag_index
                    .add(self.inner.tags.keys(), stored, l1.as_ref());
            }
            (entry, mine)
        });
        self.count(Event::Put);
        let remote_write = RemoteWrite {
            stored: stored.to_owned(),
            encoded,
            ttl: timing.physical_ttl(),
            local,
            why,
        };
        if self.skips(|o| o.background_l2_writes) && store.l2.is_some() {
            let cache = self.clone();
            if let Some(runtime) = crate::background::handle() {
                runtime.spawn(async move { cache.finish_write(remote_write).await });
                return;
            }
        }
        self.finish_write(remote_write).await;
    }

    /// The part of a write after L1: the L2 write, the L1 put-back it orders, and the bus
    /// message (or, when L2 missed a change, the replay owed).
    async fn finish_write(&self, write: RemoteWrite) {
        let store = &self.inner.store;
        let RemoteWrite {
            stored,
            encoded,
            ttl,
            local,
            why,
        } = write;
        let stored = stored.as_str();
        let (stored_remotely, l2_missed) = match (&store.l2, encoded) {
            (Some(remote), Some(Ok(bytes))) if self.inner.tags.is_empty() => {
                let taken = remote.set(&store.name, stored, bytes, ttl).await.is_ok();
                (taken, !taken)
            }
            (Some(remote), Some(Ok(bytes))) => {
                let taken = remote
                    .set_tagged(&store.name, stored, bytes, ttl, self.inner.tags.keys())
                    .await
                    .is_ok();
                (taken, !taken)
            }
            (Some(_), Some(Err(err))) => {
                tracing::warn!(cache = self.name(), error = %err, "cachet: cannot encode the value for L2");
                (false, false)
            }
            // No L2, or this view skips writing it.
            _ => (true, false),
        };
        if let (Some(l1), Some((entry, mine))) = (&store.l1, local) {
            if store.l2.is_some() {
                // A lookup that read L2 before this write may have backfilled the old value
                // meanwhile: this instance ignores its own bus message, so put ours back —
                // unless the key changed since our insert (a delete, a newer write, another
                // instance's invalidation): then which of the racing L2 operations landed
                // last is unknown here, so L1 lets go and the next lookup reads L2.
                let versions = &store.versions;
                if !versions.change_if_unchanged(stored, mine, || l1.insert(stored, entry)) {
                    versions.change(stored, || l1.remove(stored));
                }
            }
        }
        if stored_remotely {
            self.announce(Invalidation::Keys(vec![stored.to_owned()]))
                .await;
        } else {
            // Not announced: the other instances keep what L2 still holds, until the L2
            // is back and the replay deletes it there and announces it (`replay.rs`).
            self.count(Event::Error);
            if l2_missed && why == Write::Change {
                store.defer(Pending::Keys {
                    scope: self.scope(),
                    keys: vec![stored.to_owned()],
                });
            }
        }
    }

    /// Deletes entries from every tier, and tells the other instances.
    pub(crate) async fn remove(&self, stored: &[String]) {
        let store = &self.inner.store;
        let drop_local = || {
            if let Some(l1) = &store.l1 {
                for key in stored {
                    store.versions.change(key, || l1.remove(key));
                }
            }
        };
        drop_local();
        self.inner
            .stats
            .record(Event::Eviction, stored.len() as u64);
        let remote = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_write));
        let removed = match remote {
            Some(remote) => remote.delete(&store.name, stored).await.is_ok(),
            None => true,
        };
        if remote.is_some() {
            // A lookup that read L2 before the delete reached it may have backfilled the
            // old value after the first removal.
            drop_local();
        }
        if !removed {
            self.count(Event::Error);
            // The L2 still holds the entries: deleted there once it is back (`replay.rs`).
            store.defer(Pending::Keys {
                scope: self.scope(),
                keys: stored.to_vec(),
            });
        }
        // Announced whether or not L2 took it: the other instances' L1 copies must go
        // either way (with L2 down they cannot read the old value back from it).
        self.announce(Invalidation::Keys(stored.to_vec())).await;
    }

    /// Deletes every entry of this cache (or namespace) from every tier, and tells the
    /// other instances.
    pub(crate) async fn remove_all(&self) -> Result<(), CacheError> {
        let store = &self.inner.store;
        let scope = self.scope();
        let drop_local = || {
            if let Some(l1) = &store.l1 {
                store.versions.change_all(|| l1.remove_scope(&scope));
            }
        };
        drop_local();
        self.count(Event::Eviction);
        if let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_write))
        {
            if remote.clear(&store.name, &scope).await.is_err() {
                self.count(Event::Error);
                // The other instances' L1 copies go whether or not L2 took the clear; the
                // L2 is cleared once it is back (`replay.rs`).
                store.defer(Pending::Scope(scope.clone()));
                self.announce(Invalidation::Scope(scope)).await;
                return Err(CacheError::Tier {
                    store: store.name.clone(),
                    source: TierError::new(format!(
                        "cannot clear cache `{}` in {}",
                        self.name(),
                        remote.tier.describe()
                    )),
                });
            }
            // A lookup that read L2 before the clear may have backfilled old values.
            drop_local();
        }
        self.announce(Invalidation::Scope(scope)).await;
        Ok(())
    }

    // ----- the programmatic API -----

    /// The clock every timing of this cache reads (the manager's).
    pub(crate) fn clock(&self) -> &clock::Clock {
        &self.inner.store.clock
    }

    /// `future` bounded by the cache's hard timeout, when one is set.
    async fn bounded<T>(&self, future: impl Future<Output = T>) -> Result<T, CacheError> {
        match self.settings().hard_timeout {
            Some(limit) => {
                self.clock()
                    .within(limit, future)
                    .await
                    .ok_or_else(|| CacheError::Timeout {
                        cache: self.name().to_owned(),
                        timeout: limit,
                    })
            }
            None => Ok(future.await),
        }
    }

    /// The value under `key`, if present and of type `V` (another type is a miss): a fresh
    /// value, or else one past its TTL but within its grace period (counted as `stale`),
    /// as Bentocache's `get` does. [`Cache::get_fresh`] reads fresh values only. A view's
    /// `grace` ([`Cache::with_options`]) bounds how stale a value it returns may be.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.get::<String, _>(&1u64).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn get<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
    ) -> Result<Option<V>, CacheError> {
        self.read(key, true).await
    }

    /// The value under `key`, if present, fresh and of type `V`: unlike [`Cache::get`],
    /// never a value past its TTL, even within its grace period.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.get_fresh::<String, _>(&1u64).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn get_fresh<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
    ) -> Result<Option<V>, CacheError> {
        self.read(key, false).await
    }

    /// [`Cache::get`] (`stale`: within grace too) or [`Cache::get_fresh`].
    async fn read<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
        stale: bool,
    ) -> Result<Option<V>, CacheError> {
        if let Some(value) = self.fresh_in_l1(|buf| encode_key_into(key, buf).ok()) {
            return Ok(Some(value));
        }
        let stored = self.stored_key(key)?;
        match self.lookup::<V>(&stored).await {
            Lookup::Fresh(v) => Ok(Some(v)),
            Lookup::Stale(v, _) if stale => {
                self.count(Event::Stale);
                Ok(Some(v))
            }
            Lookup::Stale(..) | Lookup::Miss => {
                self.count(Event::Miss);
                Ok(None)
            }
        }
    }

    /// Marks the entry under `key` stale now, in every tier and on every instance, but
    /// keeps it for its grace period: the next read through a cached function or
    /// `get_or_set` refreshes it, and a failing refresh is still answered with the stale
    /// value (Bentocache's and FusionCache's `expire`). Without grace, the entry is gone.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
    /// let m = CacheManager::builder()
    ///     .store("main", StoreBuilder::new().l1(MapTier::new()))
    ///     .ttl(Duration::from_secs(60))
    ///     .grace(Duration::from_secs(3600))
    ///     .build()
    ///     .unwrap();
    /// let rates = m.cache("rates").unwrap();
    /// rates.set(&"eur", &100u32).await.unwrap();
    /// rates.expire(&"eur").await.unwrap();
    /// assert_eq!(rates.get_fresh::<u32, _>(&"eur").await.unwrap(), None);
    /// assert_eq!(rates.get::<u32, _>(&"eur").await.unwrap(), Some(100)); // within grace
    /// # });
    /// ```
    pub async fn expire<K: Serialize + ?Sized>(&self, key: &K) -> Result<(), CacheError> {
        let stored = self.stored_key(key)?;
        let store = &self.inner.store;
        let grace = self.settings().grace.unwrap_or_default();
        if let Some(l1) = &store.l1 {
            let now = store.clock.now();
            crate::expire::expire_local(l1.as_ref(), &store.versions, &stored, grace, now);
        }
        if let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_write))
        {
            let now_ms = store.clock.unix_ms();
            if !crate::expire::expire_remote(remote, &store.name, &stored, grace, now_ms).await {
                self.count(Event::Error);
            }
        }
        // The other instances drop their L1 copies and read the stale one back from L2.
        self.announce(Invalidation::Keys(vec![stored])).await;
        Ok(())
    }

    /// Stores `value` under `key` for the cache's TTL.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.set(&1u64, &"ann".to_string()).await.unwrap(); // dropped: the `none` store keeps nothing
    /// # });
    /// ```
    pub async fn set<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<(), CacheError> {
        self.set_lifetime(key, value, Lifetime::Default).await
    }

    /// Stores `value` under `key` for `ttl`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.set_with(&1u64, &"ann".to_string(), std::time::Duration::from_secs(60)).await.unwrap();
    /// # });
    /// ```
    pub async fn set_with<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
        value: &V,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.set_lifetime(key, value, Lifetime::For(ttl)).await
    }

    /// Stores `value` under `key` with no expiry (it can still be evicted by the size bound;
    /// remote tiers keep it for a year).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.set_forever(&1u64, &"ann".to_string()).await.unwrap();
    /// # });
    /// ```
    pub async fn set_forever<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<(), CacheError> {
        self.set_lifetime(key, value, Lifetime::Forever).await
    }

    async fn set_lifetime<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
        value: &V,
        lifetime: Lifetime,
    ) -> Result<(), CacheError> {
        let stored = self.stored_key(key)?;
        self.write(&stored, value.clone(), lifetime, Write::Change)
            .await;
        Ok(())
    }

    /// `future` bounded by the cache's hard timeout, as [`Cache::bounded`], owning what it
    /// needs so it can finish in the background.
    fn bounded_owned<T, E: From<CacheError>>(
        &self,
        future: impl Future<Output = Result<T, E>>,
    ) -> impl Future<Output = Result<T, E>> {
        let cache = self.clone();
        async move {
            match cache.bounded(future).await {
                Ok(result) => result,
                Err(timeout) => Err(E::from(timeout)),
            }
        }
    }

    /// The value under `key`, or else the factory's value, stored. Concurrent callers on one
    /// key run the factory once.
    ///
    /// The factory's future must be `Send + 'static` (capture clones or `Arc`s, with
    /// `async move`), as foyer's `fetch` asks, because it may finish after this call
    /// returned: with a soft `timeout` and a stale value, the caller is answered with the
    /// stale value at the timeout while the factory keeps running in the background and
    /// stores its value when done; with `eager_refresh`, a hit late in the entry's TTL
    /// returns at once and refreshes the entry in the background.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// let name: String = users.get_or_set(&1u64, || async { "ann".to_string() }).await.unwrap();
    /// assert_eq!(name, "ann");
    /// // What the factory needs, it owns.
    /// let db = std::sync::Arc::new(vec!["bob".to_string()]);
    /// let name: String = users.get_or_set(&2u64, move || async move { db[0].clone() }).await.unwrap();
    /// assert_eq!(name, "bob");
    /// # });
    /// ```
    pub async fn get_or_set<V, K, F, Fut>(&self, key: &K, factory: F) -> Result<V, CacheError>
    where
        V: CacheValue,
        K: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        self.try_get_or_set(key, move || factory().map(Ok::<V, CacheError>))
            .await
    }

    /// Like [`Cache::get_or_set`] with a fallible factory: an `Err` is returned and not stored.
    /// The factory's future must be `Send + 'static` for the same reason; its error type
    /// need not be `Send`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::CacheError;
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// let r: Result<u32, CacheError> = users.try_get_or_set(&1u64, || async { Ok(5) }).await;
    /// assert_eq!(r.unwrap(), 5);
    /// # });
    /// ```
    pub async fn try_get_or_set<V, E, K, F, Fut>(&self, key: &K, factory: F) -> Result<V, E>
    where
        V: CacheValue,
        E: From<CacheError> + 'static,
        K: Serialize + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        self.detached_get_or_set(key, |_: &V| Some(Lifetime::Default), factory)
            .await
    }

    /// The value under `key`, or else `factory`'s `Ok`, stored as `policy` says: the one
    /// path of `get_or_set`, `try_get_or_set` and their adaptive forms. The factory's future
    /// is bounded by the hard timeout and owned, so it may finish in the background.
    pub(crate) async fn detached_get_or_set<V, E, K, Fut>(
        &self,
        key: &K,
        policy: impl FnOnce(&V) -> Option<Lifetime> + Send + 'static,
        factory: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        V: CacheValue,
        E: From<CacheError> + 'static,
        K: Serialize + ?Sized,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let stored = self.stored_key(key)?;
        let shape = ResultShape::<V, E>::default();
        let caches = std::slice::from_ref(self);
        let keys = std::slice::from_ref(&stored);
        let factory = || self.bounded_owned(factory());
        crate::invoke::cached_call(shape, caches, keys, policy, factory, Detachable).await
    }

    /// Whether a fresh value is stored under `key` (of any type).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert!(!users.has(&1u64).await.unwrap());
    /// # });
    /// ```
    pub async fn has<K: Serialize + ?Sized>(&self, key: &K) -> Result<bool, CacheError> {
        let stored = self.stored_key(key)?;
        let store = &self.inner.store;
        let now = store.clock.now();
        if let Some(entry) = store.l1.as_ref().and_then(|l1| l1.get(&stored)) {
            if entry.fresh_until.is_none_or(|until| until > now) {
                return Ok(true);
            }
        }
        let Some(remote) = &store.l2 else {
            return Ok(false);
        };
        match remote.get(&store.name, &stored).await {
            Ok(Some(bytes)) => Ok(remote
                .codec
                .read_meta(&bytes, remote.max_value_size)
                .is_ok_and(|meta| {
                    clock::Timing::from_unix_ms(
                        &store.clock,
                        meta.fresh_until_ms,
                        meta.keep_until_ms,
                    )
                    .is_fresh()
                })),
            Ok(None) => Ok(false),
            Err(Skipped) => {
                self.count(Event::Error);
                Ok(false)
            }
        }
    }

    /// The opposite of [`Cache::has`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert!(users.missing(&1u64).await.unwrap());
    /// # });
    /// ```
    pub async fn missing<K: Serialize + ?Sized>(&self, key: &K) -> Result<bool, CacheError> {
        Ok(!self.has(key).await?)
    }

    /// The value under `key`, deleting it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// assert_eq!(users.pull::<String, _>(&1u64).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn pull<V: CacheValue, K: Serialize + ?Sized>(
        &self,
        key: &K,
    ) -> Result<Option<V>, CacheError> {
        let value = self.get(key).await?;
        self.delete(key).await?;
        Ok(value)
    }

    /// Deletes the entry under `key`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.delete(&1u64).await.unwrap();
    /// # });
    /// ```
    pub async fn delete<K: Serialize + ?Sized>(&self, key: &K) -> Result<(), CacheError> {
        let stored = self.stored_key(key)?;
        self.remove(std::slice::from_ref(&stored)).await;
        Ok(())
    }

    /// Deletes the entries under several keys.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.delete_many(&[1u64, 2, 3]).await.unwrap();
    /// # });
    /// ```
    pub async fn delete_many<K: Serialize>(&self, keys: &[K]) -> Result<(), CacheError> {
        let stored = keys
            .iter()
            .map(|k| self.stored_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        self.remove(&stored).await;
        Ok(())
    }

    /// Deletes every entry of this cache (or namespace, nested namespaces included), and
    /// nothing else.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let users = cache_core::CacheManager::none().cache("users").unwrap();
    /// users.clear().await.unwrap();
    /// # });
    /// ```
    pub async fn clear(&self) -> Result<(), CacheError> {
        self.remove_all().await
    }
}
