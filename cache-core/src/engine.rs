//! The engine under a [`crate::Cache`] handle (as moka's `cache.rs` sits over its
//! `base_cache.rs`): one named cache (or namespace) in one store, its settings and counters,
//! and the tier orchestration every call shares — L1 then L2 lookups with backfill, writes
//! to every tier, deletes, clears. The annotations' calls (`invoke.rs`), the distributed
//! lock and tags work on engines; the handle adds only the typed public API.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock;
use crate::codec;
use crate::config::CacheOptions;
use crate::direct_key::{with_direct, Closure, Direct, UseKey};
use crate::error::{CacheError, TierError};
use crate::events::EventKind;
use crate::fault::{CacheFault, Failing, FaultAction, FaultOperation};
use crate::idle::IdleRead;
use crate::key::encode_key_into;
use crate::layout::{self, StoredKey};
use crate::scalar_key::KeyBuf;
use crate::slot::{self, Slot};
use crate::stats::{Event, StatsCounters};
use crate::store::named::StoreInner;
use crate::store::remote::Skipped;
use crate::store::replay::Pending;
use crate::store::tag_index;
use crate::store::tag_index::Tags;
use crate::store::{Invalidation, KeySpace, L1Key, L1KeyRef, LocalEntry, LocalTier, Scope};

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
    /// A cached function's value (a miss filled, a refresh, a stale value stored back).
    /// When an unreachable L2 missed it, this instance's L1 holds what the L2 does not:
    /// this instance clears its L1 once the L2 is back (`replay.rs`), so it agrees with
    /// the L2 again; the other instances hold nothing this changed. When the L2 refused
    /// it (too large, say), there is nothing to bring in line.
    Fill,
    /// The application changed the value (`set`, `#[cache_put]`): an L2 that missed it,
    /// unreachable or refusing, is brought in line, and the other instances told, once it
    /// is back (`replay.rs`).
    Change,
}

/// What a lookup found (in one tier, one cache, or the first of a call's caches that
/// holds something).
pub(crate) enum Lookup<V> {
    Fresh(V),
    /// Past its TTL but within grace, with the instant it must be dropped: served only
    /// when refreshing fails.
    Stale(V, Option<Instant>),
    Miss,
}

/// What a call knows of its first cache's L1 under its key before the full lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstL1 {
    /// Not read yet (or read and holding something the full path must see again).
    Unread,
    /// Read by the hit path, holding nothing usable: the full path goes straight to L2.
    Empty,
}

/// The hit path's verdict on the L1 entry its tier lent it ([`Engine::judge_untimed`],
/// [`Engine::judge_timed`]): one tag for the hit path to check after the read (a result
/// and a separate renewal to check cost a hit ~5 instructions more). A tag byte of its
/// own: a tag folded into the TTL's niche took seven instructions to read.
#[repr(u8)]
pub(crate) enum Verdict<V> {
    /// Fresh (and, for an entry point that starts eager refreshes, not due for one): a hit.
    Fresh(V),
    /// Nothing taken: what the full path may skip.
    Missed(FirstL1),
    /// An idle-timed entry (`tti`) judged in full, whose read renews its L2 copy for this
    /// TTL: the judgement, and the renewal owed.
    Touched(Result<V, FirstL1>, Duration),
}

impl<V> Verdict<V> {
    /// The verdict on what the entry's value reads as for the slot: fresh, or empty.
    #[inline(always)]
    fn of(value: Option<V>) -> Self {
        match value {
            Some(value) => Verdict::Fresh(value),
            None => Verdict::Missed(FirstL1::Empty),
        }
    }
}

/// A write made in L1, its bytes ready for L2 (see [`Engine::prepare_write`]).
pub(crate) struct Prepared {
    /// The envelope for L2; `None` without L2, or when the value cannot be encoded.
    pub(crate) bytes: Option<Vec<u8>>,
    /// The physical time to live in L2 (with a `tti`, at most that: reads renew it).
    pub(crate) ttl: Duration,
    /// The entry's full lifetime in L2, grace included: how long a `tti`'s renewals may
    /// keep it at most, and so how long its tag memberships are written for.
    pub(crate) lifetime: Duration,
    /// The L1 entry inserted and the version its insert left, for the put-back.
    local: Option<(LocalEntry, u64)>,
}

/// What became of a write's L2 half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteOutcome {
    /// L2 took it.
    Stored,
    /// L2 could not be reached, or was skipped (open breaker): owed to it once it is back.
    Missed,
    /// L2 answered and refused it (too large, a command it rejects).
    Refused,
    /// The value could not be encoded for L2: nothing owed.
    Unencodable,
    /// The store has no L2.
    NoL2,
}

impl std::fmt::Display for RemoteOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RemoteOutcome::Stored => "stored",
            RemoteOutcome::Missed => "the L2 is unreachable (or its circuit breaker is open)",
            RemoteOutcome::Refused => "the L2 refused the value",
            RemoteOutcome::Unencodable => "the value cannot be encoded for the L2",
            RemoteOutcome::NoL2 => "no L2",
        })
    }
}

impl RemoteOutcome {
    pub(crate) fn of<T>(result: Result<T, Skipped>) -> Self {
        match result {
            Ok(_) => RemoteOutcome::Stored,
            Err(Skipped::Unavailable) => RemoteOutcome::Missed,
            Err(Skipped::Refused) => RemoteOutcome::Refused,
        }
    }
}

/// One named cache (or namespace, or view with its own settings or tags) in one store:
/// cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub(crate) struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) name: Arc<str>,
    /// `{prefix}:{cache}` or `{prefix}:{cache}#{ns}...`: every stored key is `{base}:{key}`.
    pub(crate) base: String,
    /// The base as L1 files it: an L1 key is this space and the encoded key.
    pub(crate) space: KeySpace,
    pub(crate) store: Arc<StoreInner>,
    pub(crate) settings: Arc<CacheOptions>,
    pub(crate) stats: Arc<StatsCounters>,
    /// The tags this handle's writes carry (see `tags.rs`); empty for a plain handle.
    pub(crate) tags: Tags,
}

thread_local! {
    /// A thread's buffer for the encoded key of a lookup.
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` on `key` encoded: straight from the value when it is one integer or one string
/// with nothing to escape (`direct_key.rs`), on the stack when it is of the usual forms
/// (integers, strings, tuples of them: `scalar_key.rs`), else into a reused buffer (the
/// thread's, or a fresh one when the thread's is in use); `None` for a key that cannot be
/// encoded.
#[inline]
pub(crate) fn with_encoded<K: Serialize + ?Sized, R>(
    key: &K,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    with_encoded_by(key, Closure(f))
}

/// [`with_encoded`] for a [`UseKey`]: the hit path's probe, whose use of the key is inlined
/// into the encoding whatever its size.
#[inline(always)]
pub(crate) fn with_encoded_by<K: Serialize + ?Sized, U: UseKey>(
    key: &K,
    user: U,
) -> Option<U::Out> {
    let user = match with_direct(key, user) {
        Direct::Done(done) => return Some(done),
        Direct::Declined(user) => user,
        Direct::Failed => return None,
    };
    if let Some(buf) = KeyBuf::encode(key) {
        return Some(user.use_key(buf.as_bytes()));
    }
    with_encoded_slow(key, |encoded| user.use_key(encoded))
}

/// [`with_encoded`] of a key the stack buffer does not take.
#[inline(never)]
fn with_encoded_slow<K: Serialize + ?Sized, R>(key: &K, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let encoded = |buf: &mut String| {
        buf.clear();
        encode_key_into(key, buf).ok()
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            encoded(&mut buf)?;
            Some(f(buf.as_bytes()))
        }
        Err(_) => {
            let mut buf = String::new();
            encoded(&mut buf)?;
            Some(f(buf.as_bytes()))
        }
    })
}

/// A rough size for size-bounded tiers: what the entry's L1 key holds of its own (the
/// allocation of an encoded key too long to be held inline; the base is shared), the value's inline size
/// behind its `Arc`, and the tier's own per-entry overhead (which counts the key's inline
/// part). Heap data owned by the value is not counted.
fn estimate_weight<V>(key: &L1Key, tier: &dyn LocalTier) -> u32 {
    const ARC_HEADER: usize = 16;
    let bytes =
        key.heap_len() + std::mem::size_of::<V>() + ARC_HEADER + tier.entry_overhead() as usize;
    bytes.try_into().unwrap_or(u32::MAX)
}

impl Engine {
    pub(crate) fn new(
        name: Arc<str>,
        base: String,
        store: Arc<StoreInner>,
        settings: Arc<CacheOptions>,
        stats: Arc<StatsCounters>,
    ) -> Self {
        Engine {
            inner: Arc::new(EngineInner {
                name,
                // Shared with every other handle on the same base (views, namespaces,
                // each resolution by name): one per base, none per entry.
                space: store.key_spaces.of(&base),
                base,
                store,
                settings,
                stats,
                tags: Tags::default(),
            }),
        }
    }

    /// An engine over the same cache (its name, store and stats) under `base`, with
    /// `settings` and no tags: a namespace's or a view's, whose handle adds its tags.
    pub(crate) fn view(&self, base: String, settings: Arc<CacheOptions>) -> Self {
        let inner = &self.inner;
        Engine::new(
            inner.name.clone(),
            base,
            inner.store.clone(),
            settings,
            inner.stats.clone(),
        )
    }

    /// The cache's name.
    pub(crate) fn name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) fn scope(&self) -> Scope {
        Scope::new(self.inner.base.clone())
    }

    pub(crate) fn is_noop(&self) -> bool {
        self.inner.store.is_noop()
    }

    /// Whether a lookup of this view reads L2: its store has one and the view does not
    /// skip it (`skip_l2_read`).
    pub(crate) fn reads_l2(&self) -> bool {
        self.inner.store.l2.is_some() && !self.skips(|o| o.skip_l2_read)
    }

    pub(crate) fn settings(&self) -> &CacheOptions {
        &self.inner.settings
    }

    pub(crate) fn count(&self, event: Event) {
        self.inner.stats.record(event, 1);
    }

    /// A fault of this cache: counted, then what the manager's error handler decides
    /// (`fault.rs`): whether the caller logs it (`Log`, the default, and `Fail`, which also
    /// fails the call in progress) or not (`Count`).
    pub(crate) fn fault(
        &self,
        operation: FaultOperation,
        key: Option<&str>,
        error: &dyn std::fmt::Display,
    ) -> bool {
        self.fault_failing(operation, key, error, Failing::Early)
    }

    /// [`Engine::fault`], failing the call (under [`FaultAction::Fail`]) `when` says: bad
    /// bytes fail it only after its function ran and overwrote them.
    pub(crate) fn fault_failing(
        &self,
        operation: FaultOperation,
        key: Option<&str>,
        error: &dyn std::fmt::Display,
        when: Failing,
    ) -> bool {
        self.count(Event::Error);
        let handler = &self.inner.store.error_handler;
        if handler.is_none() {
            return true;
        }
        let error = error.to_string();
        let fault = CacheFault {
            cache: self.name(),
            store: &self.inner.store.name,
            operation,
            key,
            error: &error,
        };
        crate::fault::decide(handler, &fault, when) != FaultAction::Count
    }

    /// Tells the manager's event listeners of `kind` in this cache: while nobody in the
    /// process listens, one relaxed load of a `static` and a branch (`events.rs`).
    #[inline]
    pub(crate) fn tell(&self, kind: EventKind, key: Option<&str>) {
        if crate::events::anyone_listening() {
            self.tell_listeners(kind, key);
        }
    }

    /// [`Engine::tell`] past its gate: kept out of line, so the hit path holds no setup
    /// for it.
    #[cold]
    #[inline(never)]
    fn tell_listeners(&self, kind: EventKind, key: Option<&str>) {
        let store = &self.inner.store;
        store
            .events
            .tell(kind, &store.name, Some(&*self.inner.name), key);
    }

    /// `{base}:{encoded key}`.
    pub(crate) fn stored_key_of_encoded(&self, encoded: &str) -> String {
        layout::entry_key(&self.inner.base, encoded)
    }

    /// The L1 key of an encoded key of this cache.
    #[inline]
    pub(crate) fn l1_key_of_encoded<'a>(&'a self, encoded: &'a [u8]) -> L1KeyRef<'a> {
        self.inner.space.key_ref(encoded)
    }

    /// The L1 key of a stored key: this cache's space and the encoded key when the key is
    /// one of this cache's (`{base}:{key}`, the usual case: cut in place), else the
    /// stored key read back ([`L1KeyRef::parse`], the same parts: `layout.rs`, point 7).
    pub(crate) fn l1_key<'a>(&'a self, stored: &'a str) -> L1KeyRef<'a> {
        match layout::entry_of(&self.inner.base, stored) {
            Some(encoded) => self.l1_key_of_encoded(encoded.as_bytes()),
            None => L1KeyRef::parse(stored),
        }
    }

    /// [`Engine::l1_key`], owned, for an insert (sharing this cache's key space).
    pub(crate) fn l1_key_owned(&self, stored: &str) -> L1Key {
        match layout::entry_of(&self.inner.base, stored) {
            Some(encoded) => self.inner.space.key(encoded.as_bytes()),
            None => L1Key::parse(stored),
        }
    }

    /// The stored key of `key` for one read, in a spare buffer ([`StoredKey`]).
    pub(crate) fn read_key<K: Serialize + ?Sized>(&self, key: &K) -> Result<StoredKey, CacheError> {
        let stored =
            StoredKey::of(&self.inner.base, key).inspect_err(|_| self.count(Event::Error))?;
        Ok(stored)
    }

    /// [`Engine::stored_key_of_encoded`] for one read, in a spare buffer ([`StoredKey`]);
    /// `None` if `encoded` is not UTF-8 (never: the encoder writes whole `str`s and ASCII
    /// only).
    #[inline]
    pub(crate) fn read_key_of_encoded(&self, encoded: &[u8]) -> Option<StoredKey> {
        let encoded = std::str::from_utf8(encoded).ok()?;
        Some(StoredKey::of_encoded(&self.inner.base, encoded))
    }

    pub(crate) fn stored_key<K: Serialize + ?Sized>(&self, key: &K) -> Result<String, CacheError> {
        let stored = layout::entry_key_of(&self.inner.base, key)
            .inspect_err(|_| self.count(Event::Error))?;
        Ok(stored)
    }

    // ----- tier orchestration, shared by the programmatic API and the annotations -----

    /// Looks `stored` up in L1, then L2 (backfilling L1 with the remaining TTL); counts
    /// hits and faults (misses are counted by the caller, once per call).
    pub(crate) async fn lookup<V: Slot>(&self, stored: &str) -> Lookup<V::Value> {
        self.lookup_due::<V>(stored, FirstL1::Unread).await.0
    }

    /// [`Engine::lookup`], and whether a fresh value is past its eager refresh point.
    /// `local` says whether L1 was read already (and held nothing): then only L2 is.
    pub(crate) async fn lookup_due<V: Slot>(
        &self,
        stored: &str,
        local: FirstL1,
    ) -> (Lookup<V::Value>, bool) {
        // Without L1 there is nothing to look at: its key is not even built (an L2-only
        // store's every read came here; BENCHMARKS.md, "64 tasks, phase J").
        let (local, due) = match local {
            FirstL1::Unread if self.has_l1() => self.look_l1::<V>(stored),
            FirstL1::Unread | FirstL1::Empty => (Lookup::Miss, false),
        };
        if matches!(local, Lookup::Fresh(_)) {
            return (local, due);
        }
        match self.lookup_remote::<V>(stored).await {
            (Lookup::Miss, _) => (local, false),
            remote => remote,
        }
    }

    /// Whether this cache's store has an L1.
    #[inline]
    pub(crate) fn has_l1(&self) -> bool {
        self.inner.store.l1.is_some()
    }

    /// Runs `f` on `key` encoded (its L1 key is [`Engine::l1_key_of_encoded`]), in a
    /// reused buffer: a hit allocates nothing for the key. `None` without L1 (there is
    /// nothing to look at without I/O), or for a key that cannot be encoded.
    pub(crate) fn with_encoded_key<K: Serialize + ?Sized, R>(
        &self,
        key: &K,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        self.inner.store.l1.as_ref()?;
        with_encoded(key, f)
    }

    /// [`Engine::tell`] of an L1 key: its stored key is joined only when someone listens.
    #[inline]
    pub(crate) fn tell_key(&self, kind: EventKind, key: &L1KeyRef<'_>) {
        if crate::events::anyone_listening() {
            self.tell_key_listeners(kind, key);
        }
    }

    /// [`Engine::tell_key`] past its gate, out of line: the stored key joined in the
    /// thread's buffer ([`crate::events::with_stored_key`]), not a new `String`.
    #[cold]
    #[inline(never)]
    fn tell_key_listeners(&self, kind: EventKind, key: &L1KeyRef<'_>) {
        crate::events::with_stored_key(key.base(), key.key(), |stored| {
            self.tell_listeners(kind, Some(stored));
        });
    }

    /// The hit path's judgement ([`Engine::judge_l1`] as the hit path needs it), in one pass
    /// over the lent entry, in two parts: the
    /// value when it is fresh (and, with `eager`, not due for a refresh), else what the
    /// full path may skip. An untimed entry (no TTL, no eager refresh, no `tti`) is judged
    /// without reading the clock ([`Engine::judge_untimed`], inlined into the tier's
    /// callback); a timed one ([`Engine::judge_timed`], out of line) with one clock read and
    /// three comparisons; anything else (stale, idle-timed, due, expired by the store's
    /// clock) goes to the full judgement. `judged_at` is the instant the tier read the
    /// system's clock at for this entry (see [`crate::store::LocalTier::read_at`]): on the
    /// system's clock, the hit is judged at it, and the clock is not read a second time.
    ///
    /// This part: an untimed entry, whose `keep_until` is the tier's to honour (as in
    /// `judge_l1`): its value, read without the clock; `None` for any other entry.
    #[inline(always)]
    pub(crate) fn judge_untimed<V: Slot>(entry: &LocalEntry) -> Option<Verdict<V::Value>> {
        if entry.idle.is_none() && entry.fresh_until.is_none() && entry.refresh_at.is_none() {
            return Some(Verdict::of(slot::from_l1::<V>(&entry.value)));
        }
        None
    }

    /// [`Engine::judge_untimed`]'s other part: an entry that is not untimed, its verdict
    /// written to `verdict`. Out of line: inlined, its clock read and full judgement made
    /// the untimed hit's callback save six registers. Its arguments are the callback's, in
    /// the callback's registers, and the verdict is its last (returned, it would take the
    /// first register and move every other): the callback moves none of them before it
    /// knows which judgement it makes.
    #[inline(never)]
    pub(crate) fn judge_timed<V: Slot, const EAGER: bool>(
        &self,
        entry: &LocalEntry,
        judged_at: Option<Instant>,
        verdict: &mut Verdict<V::Value>,
    ) {
        *verdict = self.judge_timed_at::<V>(entry, EAGER, judged_at);
    }

    /// [`Engine::judge_timed`]'s verdict.
    #[inline(always)]
    fn judge_timed_at<V: Slot>(
        &self,
        entry: &LocalEntry,
        eager: bool,
        judged_at: Option<Instant>,
    ) -> Verdict<V::Value> {
        if entry.idle.is_none() {
            let clock = &self.inner.store.clock;
            let now = match judged_at {
                Some(at) if clock.is_system() => at,
                _ => clock.now(),
            };
            if entry.keep_until.is_none_or(|at| at > now)
                && entry.fresh_until.is_none_or(|at| at > now)
                && !(eager && entry.refresh_at.is_some_and(|at| at <= now))
            {
                return Verdict::of(slot::from_l1::<V>(&entry.value));
            }
        }
        self.judge_hit_slow::<V>(entry, eager)
    }

    /// [`Engine::judge_timed`] past its fast cases: the full judgement.
    #[inline(never)]
    fn judge_hit_slow<V: Slot>(&self, entry: &LocalEntry, eager: bool) -> Verdict<V::Value> {
        let mut touch = None;
        let judged = match self.judge_l1::<V>(entry, &mut touch) {
            (Lookup::Fresh(value), due) if !(eager && due) => Ok(value),
            // Nothing usable: the full path need not read L1 again.
            (Lookup::Miss, _) => Err(FirstL1::Empty),
            // A stale value, or one due for a refresh: the full path reads it.
            _ => Err(FirstL1::Unread),
        };
        match (touch, judged) {
            (Some(ttl), judged) => Verdict::Touched(judged, ttl),
            (None, Ok(value)) => Verdict::Fresh(value),
            (None, Err(first_l1)) => Verdict::Missed(first_l1),
        }
    }

    /// The L1 lookup, and whether a fresh hit is past the entry's eager refresh point: one
    /// more comparison on the entry already read. Counts a fresh hit.
    pub(crate) fn look_l1<V: Slot>(&self, stored: &str) -> (Lookup<V::Value>, bool) {
        self.look_l1_at::<V>(&self.l1_key(stored))
    }

    /// [`Engine::look_l1`] of an L1 key.
    pub(crate) fn look_l1_at<V: Slot>(&self, key: &L1KeyRef<'_>) -> (Lookup<V::Value>, bool) {
        let found = self.read_l1::<V>(key);
        if matches!(found.0, Lookup::Fresh(_)) {
            self.count(Event::L1Hit);
            self.tell_key(EventKind::Hit, key);
        }
        found
    }

    /// The one reader of L1 (it counts nothing): the entry under `key`, if of type `V`
    /// and not past its grace period by the store's clock.
    fn read_l1<V: Slot>(&self, key: &L1KeyRef<'_>) -> (Lookup<V::Value>, bool) {
        let Some(l1) = &self.inner.store.l1 else {
            return (Lookup::Miss, false);
        };
        // Borrowed in place: only the value is cloned, the entry's reference counts are
        // not touched (threads hitting one key share no written cache line here).
        let mut found = (Lookup::Miss, false);
        // `tti`: the L2 copy's renewal, when this read is the one due for it (started
        // outside the tier's lock).
        let mut touch = None;
        l1.read(key, &mut |entry| {
            found = self.judge_l1::<V>(entry, &mut touch)
        });
        if let Some(tti) = touch {
            self.touch_l2(&key.to_string(), tti);
        }
        found
    }

    /// What an L1 entry holds for a lookup of slot `V` (see [`Engine::read_l1`]); `touch`
    /// is set to the renewal's TTL when this read is due to renew the L2 copy.
    #[inline]
    fn judge_l1<V: Slot>(
        &self,
        entry: &LocalEntry,
        touch: &mut Option<Duration>,
    ) -> (Lookup<V::Value>, bool) {
        // Another type under this key (two functions sharing a cache) is a miss; the null
        // marker is what the slot reads it as (`slot.rs`).
        let Some(value) = slot::from_l1::<V>(&entry.value) else {
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
            match idle.read(self.inner.store.clock.ticks_ms()) {
                IdleRead::Expired => return (Lookup::Miss, false),
                IdleRead::Touch(ttl) => *touch = Some(ttl),
                IdleRead::Alive => {}
            }
        }
        if passed(entry.fresh_until) {
            if passed(self.grace_ends(entry.fresh_until)) {
                return (Lookup::Miss, false);
            }
            return (Lookup::Stale(value, entry.keep_until), false);
        }
        (Lookup::Fresh(value), passed(entry.refresh_at))
    }

    /// Time to idle on L2: renews the TTL of `stored`'s L2 copy to `ttl` (the `tti`, or
    /// what is left of the copy's lifetime when less), in the background (a hit does not
    /// wait for it). Reads of an L1 copy call it at most once per `tti / 10`
    /// ([`crate::idle::Idle::read`]); each read of the L2 copy calls it.
    #[cold]
    #[inline(never)]
    pub(crate) fn touch_l2(&self, stored: &str, ttl: Duration) {
        if self.inner.store.l2.is_none() || self.skips(|o| o.skip_l2_write) {
            return;
        }
        let Some(runtime) = crate::background::handle() else {
            return;
        };
        let (engine, stored) = (self.clone(), stored.to_owned());
        runtime.spawn(async move {
            let store = &engine.inner.store;
            if let Some(remote) = &store.l2 {
                if remote.touch(&store.name, &stored, ttl).await.is_err() {
                    engine.count(Event::Error);
                }
            }
        });
    }

    /// [`Engine::lookup_due`] when L1 holds nothing to weigh against L2 (none, or read and
    /// empty): L2 alone, decoded and counted by [`Engine::accept_remote`].
    pub(crate) async fn lookup_remote<V: Slot>(&self, stored: &str) -> (Lookup<V::Value>, bool) {
        let store = &self.inner.store;
        let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_read))
        else {
            return (Lookup::Miss, false);
        };
        // Noted before the read: a change of the key meanwhile refuses the backfill.
        let seen = self.version_seen(stored);
        let bytes = match remote.get(&store.name, stored).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return (Lookup::Miss, false),
            Err(skipped) => {
                self.fault(FaultOperation::Get, Some(stored), &skipped);
                return (Lookup::Miss, false);
            }
        };
        self.accept_remote::<V>(stored, &bytes, seen)
    }

    /// The version of `stored` in L1 before an L2 read, for [`Engine::accept_remote`]'s
    /// backfill (`None` without L1).
    pub(crate) fn version_seen(&self, stored: &str) -> Option<u64> {
        let store = &self.inner.store;
        store.l1.as_ref().map(|_| store.versions.current(stored))
    }

    /// What bytes read from L2 under `stored` hold for a lookup: decoded (another type,
    /// an older format or garbage is a miss), backfilled into L1 unless the key changed
    /// since `seen`, and counted as an L2 hit when fresh.
    pub(crate) fn accept_remote<V: Slot>(
        &self,
        stored: &str,
        bytes: &[u8],
        seen: Option<u64>,
    ) -> (Lookup<V::Value>, bool) {
        let store = &self.inner.store;
        let Some(remote) = &store.l2 else {
            return (Lookup::Miss, false);
        };
        let (value, meta) = match slot::decode::<V>(&remote.codec, bytes, remote.max_value_size) {
            Ok(Some(decoded)) => decoded,
            // The null marker, which this type reads as no value: a miss, not a fault.
            Ok(None) => return (Lookup::Miss, false),
            Err(err) => {
                // Another type, an older format or garbage: a miss, overwritten by the next
                // write (a failed call fails after its function ran, so that it does).
                if self.fault_failing(FaultOperation::Get, Some(stored), &err, Failing::AfterRun) {
                    tracing::debug!(cache = self.name(), key = stored, error = %err, "cachet: undecodable L2 value; treated as a miss");
                }
                return (Lookup::Miss, false);
            }
        };
        let times = clock::RemoteTimes::read(&store.clock, meta.fresh_until_ms, meta.keep_until_ms);
        if times.is_gone() {
            return (Lookup::Miss, false);
        }
        let settings = self.settings();
        if times.is_fresh()
            && store.l1.is_none()
            && settings.tti.is_none()
            && settings.eager_refresh.is_none()
        {
            // A fresh hit with nothing to place on the monotonic clock: no L1 copy, no TTL
            // to renew, no refresh point (what the rest of this function does, all skipped).
            self.l2_hit(stored);
            return (Lookup::Fresh(value), false);
        }
        let timing = times.timing(&store.clock);
        // Read: not idle. The L1 copy made below starts its own count of a tenth. Never
        // renewed past the entry's own lifetime (its envelope's expiry).
        let lifetime = timing.physical_ttl();
        if let Some(tti) = settings.tti {
            self.touch_l2(stored, tti.min(lifetime));
        }
        // The envelope does not carry the refresh point: it is placed by this cache's TTL.
        let refresh_at = settings
            .eager_refresh
            .zip(settings.ttl)
            .zip(timing.fresh_until)
            .and_then(|((ratio, ttl), fresh_until)| {
                fresh_until.checked_sub(ttl.mul_f64(1.0 - ratio))
            });
        if let (Some(l1), Some(seen)) = (&store.l1, seen) {
            let (fresh_until, keep_until) = self.l1_bounds(timing.fresh_until, timing.keep_until);
            let key = self.l1_key_owned(stored);
            // The copy lists no tag, but earlier tagged writes of the key may have.
            let tagged = tag_index::weight(stored, store.tag_index.copies_with(&[], stored));
            let entry = LocalEntry::new(
                slot::to_l1::<V>(value.clone()),
                fresh_until,
                keep_until,
                estimate_weight::<V::Stored>(&key, l1.as_ref()),
            )
            .kept_by_tag_index(tagged.try_into().unwrap_or(u32::MAX))
            .refresh_at(refresh_at)
            .idle_after(settings.tti, store.clock.ticks_ms(), lifetime);
            store
                .versions
                .insert_if_unchanged(stored, seen, || l1.insert(key, entry));
        }
        if timing.is_fresh() {
            self.l2_hit(stored);
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

    /// A fresh value read from L2 under `stored`: counted and told.
    fn l2_hit(&self, stored: &str) {
        self.count(Event::L2Hit);
        self.tell(EventKind::Hit, Some(stored));
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
    /// decides what a missed L2 write owes the other instances.
    pub(crate) async fn write<V: Slot>(
        &self,
        stored: &str,
        value: V::Value,
        lifetime: Lifetime,
        why: Write,
    ) {
        if self.is_noop() {
            return;
        }
        let prepared = self.prepare_write::<V>(stored, value, lifetime);
        if self.skips(|o| o.background_l2_writes) && self.inner.store.l2.is_some() {
            if let Some(runtime) = crate::background::handle() {
                let (engine, stored) = (self.clone(), stored.to_owned());
                runtime.spawn(async move { engine.finish_write(&stored, prepared, why).await });
                return;
            }
        }
        self.finish_write(stored, prepared, why).await;
    }

    /// The part of a write after L1 (in the background with `background_l2_writes`): the
    /// L2 write, its settling, and the bus message.
    async fn finish_write(&self, stored: &str, mut prepared: Prepared, why: Write) {
        let store = &self.inner.store;
        let remote = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_write));
        let outcome = match (remote, prepared.bytes.take()) {
            (Some(remote), Some(bytes)) if self.inner.tags.is_empty() => {
                RemoteOutcome::of(remote.set(&store.name, stored, bytes, prepared.ttl).await)
            }
            (Some(remote), Some(bytes)) => RemoteOutcome::of(
                remote
                    .set_tagged(
                        &store.name,
                        stored,
                        bytes,
                        prepared.ttl,
                        self.inner.tags.keys(),
                        prepared.lifetime,
                    )
                    .await,
            ),
            (Some(_), None) => RemoteOutcome::Unencodable,
            (None, _) => RemoteOutcome::NoL2,
        };
        if self.settle_write(stored, prepared, outcome, why) {
            self.announce(Invalidation::Keys(vec![stored.to_owned()]))
                .await;
        }
    }

    /// The first half of a write: the entry's timing, its bytes for L2 (`None` when it
    /// cannot be encoded: logged) and its L1 insert (with its tags), counted as a put.
    pub(crate) fn prepare_write<V: Slot>(
        &self,
        stored: &str,
        value: V::Value,
        lifetime: Lifetime,
    ) -> Prepared {
        let store = &self.inner.store;
        let settings = self.settings();
        let eager_refresh = settings.eager_refresh;
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
            _ => eager_refresh.and_then(|ratio| timing.refresh_point(ratio)),
        };
        // The L2 copy's full lifetime, grace included (a `tti` writes it for less).
        let lifetime = timing.physical_ttl();
        let remote = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_write));
        let bytes = remote.and_then(|remote| {
            // The fingerprint is the slot's to set (the stored type's, or the null marker's).
            let meta = codec::EnvelopeMeta {
                fingerprint: 0,
                fresh_until_ms: timing.times.fresh_until_ms,
                keep_until_ms: timing.times.keep_until_ms,
            };
            slot::encode::<V>(&remote.codec, &value, meta)
                .inspect_err(|err| {
                    tracing::warn!(cache = self.name(), error = %err, "cachet: cannot encode the value for L2");
                })
                .ok()
        });
        let local = store.l1.as_ref().map(|l1| {
            let key = self.l1_key_owned(stored);
            // The tag index keeps the entry's stored key once per set listing it while L1
            // holds it: this write's tags, and those of earlier writes of the key.
            let copies = store.tag_index.copies_with(self.inner.tags.keys(), stored);
            let tagged = tag_index::weight(stored, copies);
            let weight = estimate_weight::<V::Stored>(&key, l1.as_ref());
            let value: Arc<dyn Any + Send + Sync> = slot::to_l1::<V>(value);
            let (fresh_until, keep_until) = self.l1_bounds(timing.fresh_until, timing.keep_until);
            let entry = LocalEntry::new(value, fresh_until, keep_until, weight)
                .kept_by_tag_index(tagged.try_into().unwrap_or(u32::MAX))
                .refresh_at(refresh_at)
                .idle_after(settings.tti, store.clock.ticks_ms(), lifetime);
            // The version this write's insert leaves, for its put-back (`versions.rs`).
            let mine = if store.l2.is_some() {
                store
                    .versions
                    .change(stored, || l1.insert(key, entry.clone()))
            } else {
                // Without an L2 there is no backfill nor put-back to order.
                l1.insert(key, entry.clone());
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
        self.tell(EventKind::Write, Some(stored));
        Prepared {
            bytes,
            // With a `tti`, the L2 copy lives at most that long unless read (and touched,
            // never past `lifetime`).
            ttl: settings.tti.map_or(lifetime, |tti| lifetime.min(tti)),
            lifetime,
            local,
        }
    }

    /// The second half of a write, once L2 answered: the L1 put-back, and what a missed L2
    /// write owes. Whether the other instances are to be told (by the caller, so a batch
    /// tells them once).
    pub(crate) fn settle_write(
        &self,
        stored: &str,
        prepared: Prepared,
        outcome: RemoteOutcome,
        why: Write,
    ) -> bool {
        let store = &self.inner.store;
        if let (Some(l1), Some((entry, mine))) = (&store.l1, prepared.local) {
            if store.l2.is_some() {
                // A lookup that read L2 before this write may have backfilled the old value
                // meanwhile: this instance ignores its own bus message, so put ours back —
                // unless the key changed since our insert (a delete, a newer write, another
                // instance's invalidation): then which of the racing L2 operations landed
                // last is unknown here, so L1 lets go and the next lookup reads L2.
                let versions = &store.versions;
                let insert = || l1.insert(self.l1_key_owned(stored), entry);
                if !versions.change_if_unchanged(stored, mine, insert) {
                    versions.change(stored, || l1.remove(&self.l1_key(stored)));
                }
            }
        }
        match outcome {
            RemoteOutcome::Stored | RemoteOutcome::NoL2 => true,
            RemoteOutcome::Missed | RemoteOutcome::Refused | RemoteOutcome::Unencodable => {
                // Not announced: the other instances keep what L2 still holds, until the L2
                // is back and the replay deletes it there and announces it (`replay.rs`).
                self.fault(FaultOperation::Put, Some(stored), &outcome);
                let owed = match (outcome, why) {
                    (RemoteOutcome::Missed | RemoteOutcome::Refused, Write::Change) => {
                        Some(Pending::Keys {
                            scope: self.scope(),
                            keys: vec![stored.to_owned()],
                        })
                    }
                    // This instance's L1 holds what the unreachable L2 does not.
                    (RemoteOutcome::Missed, Write::Fill) => Some(Pending::OwnL1),
                    _ => None,
                };
                if let Some(change) = owed {
                    store.defer(change);
                }
                false
            }
        }
    }

    /// Deletes entries from every tier, and tells the other instances.
    pub(crate) async fn remove(&self, stored: &[String]) {
        let store = &self.inner.store;
        let drop_local = || {
            if let Some(l1) = &store.l1 {
                for key in stored {
                    store.versions.change(key, || l1.remove(&self.l1_key(key)));
                }
            }
        };
        drop_local();
        self.inner
            .stats
            .record(Event::Eviction, stored.len() as u64);
        for key in stored {
            self.tell(EventKind::Delete, Some(key));
        }
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
            self.fault(
                FaultOperation::Evict,
                stored.first().map(String::as_str),
                &"the L2 did not take the delete",
            );
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
        self.tell(EventKind::Clear, None);
        if let Some(remote) = store
            .l2
            .as_ref()
            .filter(|_| !self.skips(|o| o.skip_l2_write))
        {
            if remote.clear(&store.name, &scope).await.is_err() {
                self.fault(
                    FaultOperation::Clear,
                    None,
                    &"the L2 did not take the clear",
                );
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

    /// The clock every timing of this cache reads (the manager's).
    pub(crate) fn clock(&self) -> &clock::Clock {
        &self.inner.store.clock
    }

    /// `future` bounded by the cache's hard timeout, when one is set.
    pub(crate) async fn bounded<T>(
        &self,
        future: impl Future<Output = T>,
    ) -> Result<T, CacheError> {
        match self.settings().hard_timeout {
            Some(limit) => self.clock().within(limit, future).await.ok_or_else(|| {
                self.tell(EventKind::FactoryTimeout, None);
                CacheError::Timeout {
                    cache: self.name().to_owned(),
                    timeout: limit,
                }
            }),
            None => Ok(future.await),
        }
    }

    /// `future` bounded by the cache's hard timeout, as [`Engine::bounded`], owning what it
    /// needs so it can finish in the background.
    pub(crate) fn bounded_owned<T, E: From<CacheError>>(
        &self,
        future: impl Future<Output = Result<T, E>>,
    ) -> impl Future<Output = Result<T, E>> {
        let engine = self.clone();
        async move {
            match engine.bounded(future).await {
                Ok(result) => result,
                Err(timeout) => Err(E::from(timeout)),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::MapTier;
    use crate::testing::{Fault, FaultRule, FaultyTier, Operation};
    use crate::{CacheManager, StoreBuilder};

    /// A fault names the cache and store it happened in, and the key, to the manager's
    /// error handler.
    #[tokio::test]
    async fn a_fault_names_its_cache_store_and_key() {
        let l2 = FaultyTier::new(FaultyTier::blackhole());
        l2.inject(FaultRule::on(Operation::Get, Fault::Fail));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler = {
            let seen = seen.clone();
            move |fault: &CacheFault<'_>| {
                let key = fault.key.map(str::to_owned);
                let mut seen = seen.lock().unwrap();
                seen.push((fault.cache.to_owned(), fault.store.to_owned(), key));
                FaultAction::Count
            }
        };
        let m = CacheManager::builder()
            .store("main", StoreBuilder::new().l2(l2))
            .error_handler(handler)
            .build()
            .unwrap();
        let users = m.cache("users").unwrap();
        assert_eq!(users.get::<u64>(&1u64).await.unwrap(), None);
        let seen = seen.lock().unwrap();
        let expected = (
            "users".to_owned(),
            "main".to_owned(),
            Some("cachet:users:1".to_owned()),
        );
        assert_eq!(*seen, [expected]);
    }

    /// An entry's weight counts what its key holds on the heap of its own, the value's
    /// inline size behind its `Arc` (with the `Arc`'s counts), and the tier's per-entry
    /// overhead: each part moves it by its own size (size-bounded tiers evict by it).
    #[test]
    fn an_entrys_weight_counts_its_keys_heap_bytes_its_value_and_the_tiers_overhead() {
        let tier = MapTier::new();
        let space = KeySpace::new("app:c");
        let short = space.key(b"1");
        let long = space.key(&[b'k'; 30]);
        assert_eq!(long.heap_len(), 48, "30 bytes in malloc's 48-byte chunk");
        let weight = |key: &L1Key| estimate_weight::<u64>(key, &*tier) as usize;
        // The value's `Arc` allocation: its two counts and the value.
        let arc = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<u64>();
        assert_eq!(weight(&short), tier.entry_overhead() as usize + arc);
        // The key's 30 bytes are a 48-byte allocation (malloc's 8-byte header, 16-byte
        // steps): counting the 30 alone under-counted every long key by up to 23 bytes.
        assert_eq!(
            weight(&long) - weight(&short),
            48,
            "the key's heap allocation"
        );
        let big = estimate_weight::<[u8; 64]>(&short, &*tier) as usize;
        assert_eq!(big - weight(&short), 64 - 8, "the value's inline size");
    }
}
