//! The provider traits: what a tier of a store must do.
//!
//! A store is made of up to three parts, each supplied by a driver (see [`crate::driver`]):
//! an in-process [`LocalTier`] holding typed values, a [`RemoteTier`] holding bytes
//! (shared by every instance), and a [`Bus`] telling the other instances which local
//! entries to drop. Core orchestrates them; providers only store and fetch.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocation::allocated;
use super::l1_key::{L1Key, L1KeyRef};
use crate::error::TierError;

/// A boxed, sendable future, as returned by remote tiers and buses.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A typed value held by a local tier, with its timing.
///
/// ```
/// use cache_core::store::LocalEntry;
/// use std::sync::Arc;
/// let e = LocalEntry::new(Arc::new(42u64), None, None, 8);
/// assert_eq!(e.value.downcast_ref::<u64>(), Some(&42));
/// ```
#[derive(Clone)]
pub struct LocalEntry {
    /// The value itself; read back with `downcast_ref`, a read as another type is a miss.
    pub value: Arc<dyn Any + Send + Sync>,
    /// When the value stops being fresh (`None`: never).
    pub fresh_until: Option<Instant>,
    /// When the value must be dropped altogether, grace included (`None`: never).
    /// The tier must not return the entry after this instant.
    pub keep_until: Option<Instant>,
    /// Estimated size in bytes, for size-bounded tiers (the tag index's copies of the
    /// entry's key included: see [`LocalEntry::held_weight`]).
    pub weight: u32,
    /// When a hit should start a background refresh (eager refresh; `None`: never).
    pub refresh_at: Option<Instant>,
    /// Time to idle (`tti`): when the entry was last read; `None`: reads do not matter.
    pub(crate) idle: Option<Arc<crate::idle::Idle>>,
    /// The part of `weight` the tag index holds (its copies of the entry's key).
    tag_weight: u32,
}

impl LocalEntry {
    /// Builds an entry.
    pub fn new(
        value: Arc<dyn Any + Send + Sync>,
        fresh_until: Option<Instant>,
        keep_until: Option<Instant>,
        weight: u32,
    ) -> Self {
        Self {
            value,
            fresh_until,
            keep_until,
            weight,
            refresh_at: None,
            idle: None,
            tag_weight: 0,
        }
    }

    /// The same entry, the tag index's copies of its key (`bytes`) added to its `weight`:
    /// they live as long as the tier holds the entry, so `max_size` counts them, but a copy
    /// of the entry kept elsewhere (a front table's slot) does not keep them alive.
    ///
    /// ```
    /// use cache_core::store::LocalEntry;
    /// use std::sync::Arc;
    /// let e = LocalEntry::new(Arc::new(42u64), None, None, 300).kept_by_tag_index(2_000);
    /// assert_eq!((e.weight, e.held_weight()), (2_300, 300));
    /// ```
    #[must_use]
    pub fn kept_by_tag_index(mut self, bytes: u32) -> Self {
        self.weight = self.weight.saturating_add(bytes);
        self.tag_weight = self.tag_weight.saturating_add(bytes);
        self
    }

    /// What a copy of the entry keeps alive: its `weight` without the tag index's copies of
    /// its key ([`kept_by_tag_index`](Self::kept_by_tag_index)), which the index holds, not
    /// the entry.
    ///
    /// ```
    /// use cache_core::store::LocalEntry;
    /// use std::sync::Arc;
    /// assert_eq!(LocalEntry::new(Arc::new(42u64), None, None, 300).held_weight(), 300);
    /// ```
    pub fn held_weight(&self) -> u32 {
        self.weight.saturating_sub(self.tag_weight)
    }

    /// The entry, with a hit after `at` starting a background refresh (eager refresh).
    ///
    /// ```
    /// use cache_core::store::LocalEntry;
    /// use std::{sync::Arc, time::Instant};
    /// let at = Instant::now();
    /// let e = LocalEntry::new(Arc::new(1u8), None, None, 8).refresh_at(Some(at));
    /// assert_eq!(e.refresh_at, Some(at));
    /// ```
    #[must_use]
    pub fn refresh_at(mut self, at: Option<Instant>) -> Self {
        self.refresh_at = at;
        self
    }

    /// The entry, expiring once unread for `tti` (time to idle), as of `now_ticks`; reads
    /// renew its L2 copy, whose full lifetime ends `l2_lifetime` from now. Its weight
    /// grows by the idle record it then holds ([`IDLE_WEIGHT`]).
    #[must_use]
    pub(crate) fn idle_after(
        mut self,
        tti: Option<Duration>,
        now_ticks: u64,
        l2_lifetime: Duration,
    ) -> Self {
        self.idle = tti.map(|tti| Arc::new(crate::idle::Idle::new(tti, now_ticks, l2_lifetime)));
        if self.idle.is_some() {
            self.weight = self.weight.saturating_add(IDLE_WEIGHT);
        }
        self
    }
}

/// What an entry with a time to idle holds beyond one without: its idle record, in an
/// `Arc` allocation of its own (the record and the two counts, 48 bytes), as malloc
/// serves it (a 64-byte chunk).
const IDLE_WEIGHT: u32 =
    allocated(std::mem::size_of::<crate::idle::Idle>() + 2 * std::mem::size_of::<usize>()) as u32;

impl std::fmt::Debug for LocalEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEntry")
            .field("fresh_until", &self.fresh_until)
            .field("keep_until", &self.keep_until)
            .field("weight", &self.weight)
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

/// A set of stored keys sharing a cache (or namespace) path: every key that starts with
/// `{base}:` or `{base}#` (a nested namespace).
///
/// ```
/// use cache_core::store::Scope;
/// let s = Scope::new("app:users");
/// assert!(s.contains("app:users:42"));
/// assert!(s.contains("app:users#admins:7"));
/// assert!(!s.contains("app:users2:1"));
/// assert_eq!(s.redis_pattern(), "app:users[:#]*");
/// // glob characters and escapes in names match only themselves
/// assert_eq!(Scope::new("app:users#*").redis_pattern(), r"app:users#\*[:#]*");
/// assert_eq!(Scope::new(r"app:users#org\:42").redis_pattern(), r"app:users#org\\:42[:#]*");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    base: String,
}

impl Scope {
    /// The scope of every key under `base` (a `prefix:cache` or `prefix:cache#ns` path).
    pub fn new(base: impl Into<String>) -> Self {
        Self { base: base.into() }
    }

    /// The path this scope covers.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether a stored key belongs to this scope.
    pub fn contains(&self, key: &str) -> bool {
        crate::layout::in_scope(&self.base, key)
    }

    /// Whether an L1 entry's key belongs to this scope: [`Scope::contains`] of its stored
    /// key, decided without joining it.
    ///
    /// ```
    /// use cache_core::store::{L1Key, Scope};
    /// let s = Scope::new("app:users");
    /// assert!(s.covers(&L1Key::parse("app:users:42")));
    /// assert!(s.covers(&L1Key::parse("app:users#admins:7")));
    /// assert!(!s.covers(&L1Key::parse("app:users2:1")));
    /// ```
    pub fn covers(&self, key: &L1Key) -> bool {
        crate::layout::in_scope_split(&self.base, key.base(), key.key())
    }

    /// The Redis `SCAN MATCH` glob for this scope: the base with every glob character
    /// (`\ * ? [ ]`) escaped, so a namespace named `*` or holding an escaped `:` matches
    /// only its own keys.
    pub fn redis_pattern(&self) -> String {
        crate::layout::scope_pattern(&self.base)
    }

    /// How every key of this scope starts: `{base}:` (its entries and tag indexes) or
    /// `{base}#` (its namespaces'). A key is in the scope exactly when it starts with one of
    /// them: drivers find a scope's keys by these prefixes (key ranges, sort-key prefixes).
    ///
    /// ```
    /// use cache_core::store::Scope;
    /// let s = Scope::new("app:users");
    /// assert_eq!(s.starts(), ["app:users:", "app:users#"]);
    /// assert!(s.starts().iter().any(|start| "app:users#admins:7".starts_with(start.as_str())));
    /// ```
    pub fn starts(&self) -> [String; 2] {
        crate::layout::scope_starts(&self.base)
    }
}

/// An in-process tier of typed values (e.g. moka). Operations are synchronous and cheap.
///
/// Entries are filed under an [`L1Key`]: the key space of their cache (or namespace) and
/// their encoded key, with a hash that both carry (hash them with [`crate::store::L1Hasher`]).
/// Lookups pass the borrowed [`L1KeyRef`], equal to the stored key by
/// [`crate::store::Equivalent`], so a hit builds no joined string and allocates nothing.
///
/// Implementations must honour `LocalEntry::keep_until` (never return an entry past it)
/// and respect their size bound.
pub trait LocalTier: Send + Sync + 'static {
    /// The entry under `key`, if present and not past `keep_until`.
    fn get(&self, key: &L1KeyRef<'_>) -> Option<LocalEntry>;
    /// Reads the entry under `key` in place, if present and not past `keep_until`: calls
    /// `read` with a borrow of it and returns `true`, or returns `false` without calling it.
    ///
    /// This is the hit path's read: the caller clones only what it takes out (the value),
    /// never the entry, so no reference count is touched and threads reading one hot key
    /// write no cache line beyond the tier's own. `read` may run under the tier's read lock:
    /// it must be short and must not call back into the tier.
    ///
    /// The default implementation reads through [`LocalTier::get`] (a clone of the entry);
    /// a tier that can lend its entries overrides it.
    ///
    /// ```
    /// use cache_core::store::{L1Key, L1KeyRef, LocalEntry, LocalTier, MapTier};
    /// use std::sync::Arc;
    /// let tier = MapTier::new();
    /// tier.insert(L1Key::parse("app:users:1"), LocalEntry::new(Arc::new(7u32), None, None, 8));
    /// let mut seen = None;
    /// let key = L1KeyRef::parse("app:users:1");
    /// assert!(tier.read(&key, &mut |e| seen = e.value.downcast_ref::<u32>().copied()));
    /// assert_eq!(seen, Some(7));
    /// assert!(!tier.read(&L1KeyRef::parse("app:users:2"), &mut |_| unreachable!()));
    /// ```
    fn read(&self, key: &L1KeyRef<'_>, read: &mut dyn FnMut(&LocalEntry)) -> bool {
        match self.get(key) {
            Some(entry) => {
                read(&entry);
                true
            }
            None => false,
        }
    }
    /// [`LocalTier::read`], also handing `read` the instant at which the tier found the
    /// entry not past its `keep_until`, when it read the system's monotonic clock
    /// (`Instant::now()`) for that during this call; `None` otherwise (an entry that never
    /// expires, or a tier that keeps time by another clock). A store on the system's clock
    /// judges a timed hit at that instant instead of reading the clock once more: on
    /// virtual machines a clock read can cost more than the rest of the judgement.
    ///
    /// The default implementation is [`LocalTier::read`], handing `None`.
    ///
    /// ```
    /// use cache_core::store::{L1Key, L1KeyRef, LocalEntry, LocalTier, MapTier};
    /// use std::sync::Arc;
    /// let tier = MapTier::new();
    /// tier.insert(L1Key::parse("app:users:1"), LocalEntry::new(Arc::new(7u32), None, None, 8));
    /// let mut at = Some(std::time::Instant::now());
    /// assert!(tier.read_at(&L1KeyRef::parse("app:users:1"), &mut |_, now| at = now));
    /// assert_eq!(at, None);
    /// ```
    fn read_at(
        &self,
        key: &L1KeyRef<'_>,
        read: &mut dyn FnMut(&LocalEntry, Option<Instant>),
    ) -> bool {
        self.read(key, &mut |entry| read(entry, None))
    }
    /// Stores an entry, replacing any other under the key.
    fn insert(&self, key: L1Key, entry: LocalEntry);
    /// Drops one entry.
    fn remove(&self, key: &L1KeyRef<'_>);
    /// Drops every entry of a scope (a cache or namespace): those whose key it
    /// [covers](Scope::covers).
    fn remove_scope(&self, scope: &Scope);
    /// Drops every entry.
    fn clear(&self);
    /// How many entries are held (approximate).
    fn entry_count(&self) -> u64;
    /// The driver's name, for logs.
    fn driver(&self) -> &'static str;
    /// What one entry costs the tier beyond its key and value, in bytes: added to every
    /// entry's weight so a `max_size` bound holds in resident memory.
    fn entry_overhead(&self) -> u32 {
        96
    }
}

/// A shared tier of bytes (e.g. Redis). Every call may fail; core counts failures,
/// trips a circuit breaker and falls back to the function.
pub trait RemoteTier: Send + Sync + 'static {
    /// The bytes under `key`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, TierError>>;
    /// Stores bytes under `key` with a physical time to live, set atomically with the value.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>>;
    /// Deletes keys (pipelined where the provider can).
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), TierError>>;
    /// Deletes every key of a scope, in batches, touching nothing outside it.
    fn clear_scope<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), TierError>>;
    /// A description for logs and errors, never holding credentials.
    fn describe(&self) -> String;

    /// The bytes under each of `keys`, in the order of `keys` (`None` for a missing key),
    /// in as few round trips as the provider can (Redis: one pipeline; a database: one
    /// `IN (..)` statement per few hundred keys). The same bounds as [`RemoteTier::get`]
    /// hold for every value (at most `max_value_size + 1` bytes each).
    ///
    /// The default implementation reads the keys one by one: right, but one round trip
    /// per key.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// let keys = ["app:users:1".to_string(), "app:users:2".to_string()];
    /// let found = tier.get_many(&keys).await?;
    /// assert_eq!(found.len(), keys.len());
    /// # Ok(()) }
    /// ```
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, TierError>> {
        Box::pin(async move {
            let mut found = Vec::with_capacity(keys.len());
            for key in keys {
                found.push(self.get(key).await?);
            }
            Ok(found)
        })
    }

    /// Stores each entry like [`RemoteTier::set`] (each value with its own TTL, set
    /// atomically with it), in as few round trips as the provider can. A key listed twice
    /// ends up with its last value. An error may leave some of the entries written.
    ///
    /// The default implementation writes the entries one by one.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// use cache_core::store::RemoteEntry;
    /// use std::time::Duration;
    /// let minute = Duration::from_secs(60);
    /// tier.set_many(vec![
    ///     RemoteEntry::new("app:users:1", b"one".to_vec(), minute),
    ///     RemoteEntry::new("app:users:2", b"two".to_vec(), minute),
    /// ]).await?;
    /// # Ok(()) }
    /// ```
    fn set_many<'a>(&'a self, entries: Vec<RemoteEntry>) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async move {
            for entry in entries {
                self.set(&entry.key, entry.value, entry.ttl).await?;
            }
            Ok(())
        })
    }

    /// Proves the tier can be reached now (e.g. Redis `PING`), connecting if need be.
    /// For administration tools; caches never call it.
    ///
    /// The default implementation answers that the provider does not support it.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) {
    /// match tier.ping().await {
    ///     Ok(()) => println!("{}: ok", tier.describe()),
    ///     Err(err) => println!("{}: FAILED: {err}", tier.describe()),
    /// }
    /// # }
    /// ```
    fn ping(&self) -> BoxFuture<'_, Result<(), TierError>> {
        Box::pin(async { Err(unsupported("ping")) })
    }

    /// Keeps the live entry under `key` for at least `ttl` from now: its expiry is raised
    /// to now + `ttl` when that is later, and never lowered (as Redis' `PEXPIRE .. GT`
    /// does). `Ok(true)` when the expiry was raised; `Ok(false)` when nothing moved: no
    /// entry, an expired one (which a touch never brings back), or one that already lives
    /// that long. Time to idle (`tti`) on the shared tier: entries are touched when read,
    /// at most once per `tti / 10` by each instance holding an L1 copy. The entry's bytes
    /// (and the freshness they record) are unchanged. Core never asks for more than what
    /// is left of the entry's full lifetime (the expiry its bytes record, grace included),
    /// so a touched entry never outlives its own envelope, nor the tag memberships written
    /// with it (see [`RemoteTier::set_tagged`]).
    ///
    /// Why never lower: a touch is computed from the copy its caller last saw, and
    /// another instance may have written a newer entry under the key since, for longer.
    /// A touch that set the expiry would cut that entry short (an early miss everywhere).
    ///
    /// The default implementation touches nothing and answers `Ok(false)`: the provider's
    /// entries then live by the TTL they were written with (bounded by the `tti`).
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// let kept = tier.touch("app:sessions:42", std::time::Duration::from_secs(600)).await?;
    /// println!("still there: {kept}");
    /// # Ok(()) }
    /// ```
    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, TierError>> {
        let _ = (key, ttl);
        Box::pin(async { Ok(false) })
    }

    /// Deletes the entries past their expiry that the server still holds, in bounded
    /// batches, and returns how many went (`cachet prune`). Expired entries are misses
    /// already; pruning gives their space back. For administration tools and a driver's
    /// own background pruning; caches never call it.
    ///
    /// The default implementation prunes nothing and answers 0: right for servers that
    /// expire keys themselves (Redis).
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// let pruned = tier.prune().await?;
    /// println!("{pruned} expired entries deleted");
    /// # Ok(()) }
    /// ```
    fn prune(&self) -> BoxFuture<'_, Result<u64, TierError>> {
        Box::pin(async { Ok(0) })
    }

    /// One bounded step of a scan of the keys of `scope` (e.g. Redis `SCAN MATCH`):
    /// start with cursor `0`, pass each returned cursor back in, and stop when it is `0`
    /// again. A step may return no key, and a key may be returned twice (Redis' `SCAN`
    /// guarantees). For administration tools (`cachet stats`); caches never call it.
    ///
    /// The default implementation answers that the provider does not support it.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// let scope = cache_core::store::Scope::new("app:users");
    /// let (mut cursor, mut keys) = (0, 0);
    /// loop {
    ///     let (next, page) = tier.scan_scope(&scope, cursor).await?;
    ///     keys += page.len();
    ///     if next == 0 {
    ///         break;
    ///     }
    ///     cursor = next;
    /// }
    /// println!("{keys} keys in app:users");
    /// # Ok(()) }
    /// ```
    fn scan_scope<'a>(
        &'a self,
        scope: &'a Scope,
        cursor: u64,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>), TierError>> {
        let _ = (scope, cursor);
        Box::pin(async { Err(unsupported("scan")) })
    }

    /// Stores bytes under `key` like [`RemoteTier::set`] (for `ttl`), and adds `key` to
    /// each of the tag sets `tag_keys` (stored keys themselves, under the same prefix) for
    /// `tags_ttl`, all at once: the value never exists without its set memberships, and no
    /// set expires before the entries it lists (each membership lasts `tags_ttl` from now,
    /// and each set's TTL is raised to that when shorter, never lowered).
    ///
    /// `tags_ttl` is how long the entry may live at most: with a time to idle (`tti`) the
    /// entry is written for less than its full lifetime and renewed by
    /// [`RemoteTier::touch`] as it is read, and its memberships must still be there when
    /// it is (else `delete_by_tag` would no longer find an entry that is still served). A
    /// `tags_ttl` shorter than `ttl` counts as `ttl` ([`memberships_ttl`]).
    ///
    /// The default implementation answers that the provider does not support tags, so a
    /// tagged write to such a tier fails (counted and logged) rather than storing an
    /// entry that `delete_by_tag` could not find.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// use std::time::Duration;
    /// let tags = ["app:products:=tag:sale".to_string()];
    /// // Written for a minute (renewed by reads up to an hour), listed for the hour.
    /// let (ttl, tags_ttl) = (Duration::from_secs(60), Duration::from_secs(3600));
    /// tier.set_tagged("app:products:42", b"bytes".to_vec(), ttl, &tags, tags_ttl).await?;
    /// assert_eq!(tier.tagged_keys(&tags).await?, ["app:products:42"]);
    /// # Ok(()) }
    /// ```
    fn set_tagged<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tag_keys: &'a [String],
        tags_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let _ = (key, value, ttl, tag_keys, tags_ttl);
        Box::pin(async { Err(unsupported("tags")) })
    }

    /// Every key listed in any of the tag sets `tag_keys` (their union, in no order).
    ///
    /// The default implementation answers that the provider does not support tags.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// let keys = tier.tagged_keys(&["app:products:=tag:sale".to_string()]).await?;
    /// println!("{} entries tagged `sale`", keys.len());
    /// # Ok(()) }
    /// ```
    fn tagged_keys<'a>(
        &'a self,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TierError>> {
        let _ = tag_keys;
        Box::pin(async { Err(unsupported("tags")) })
    }

    /// Deletes `keys` and removes them from the tag sets `tag_keys` (members added
    /// meanwhile stay listed), pipelined where the provider can.
    ///
    /// The default implementation answers that the provider does not support tags.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// let tags = ["app:products:=tag:sale".to_string()];
    /// let keys = tier.tagged_keys(&tags).await?;
    /// tier.delete_tagged(&keys, &tags).await?;
    /// # Ok(()) }
    /// ```
    fn delete_tagged<'a>(
        &'a self,
        keys: &'a [String],
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let _ = (keys, tag_keys);
        Box::pin(async { Err(unsupported("tags")) })
    }

    /// Takes the lock `key` for `ttl` unless someone holds it, recording `token` as its
    /// holder (Redis: `SET key token NX PX ttl`): `Ok(true)` when taken, `Ok(false)` when
    /// another holder has it. The lock must vanish by itself after `ttl`, so a crashed
    /// holder cannot block the others for longer. For a store's distributed single flight
    /// (`lock = "redis"`).
    ///
    /// The default implementation answers that the provider does not support it; a store
    /// then runs without the distributed lock.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// use std::time::Duration;
    /// if tier.try_lock("app:~lock:users:42", "my-token", Duration::from_secs(10)).await? {
    ///     // ... compute and store the value ...
    ///     tier.unlock("app:~lock:users:42", "my-token").await?;
    /// }
    /// # Ok(()) }
    /// ```
    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let _ = (key, token, ttl);
        Box::pin(async { Err(unsupported("locks")) })
    }

    /// Releases the lock `key` if `token` still holds it, atomically (Redis: a
    /// compare-and-delete script), so a holder whose lock expired and was taken by
    /// another never deletes the other's lock. `Ok(true)` when released, `Ok(false)` when
    /// the lock was gone or held by another token.
    ///
    /// The default implementation answers that the provider does not support it.
    ///
    /// ```no_run
    /// # async fn demo(tier: &dyn cache_core::store::RemoteTier) -> Result<(), cache_core::TierError> {
    /// let released = tier.unlock("app:~lock:users:42", "my-token").await?;
    /// println!("released: {released}");
    /// # Ok(()) }
    /// ```
    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let _ = (key, token);
        Box::pin(async { Err(unsupported("locks")) })
    }
}

/// One entry of a [`RemoteTier::set_many`]: a stored key, its bytes and their time to live.
///
/// ```
/// use cache_core::store::RemoteEntry;
/// let e = RemoteEntry::new("app:users:1", b"bytes".to_vec(), std::time::Duration::from_secs(5));
/// assert_eq!((e.key.as_str(), e.value.len()), ("app:users:1", 5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The stored key.
    pub key: String,
    /// The bytes.
    pub value: Vec<u8>,
    /// The physical time to live, set atomically with the value.
    pub ttl: Duration,
}

impl RemoteEntry {
    /// An entry.
    pub fn new(key: impl Into<String>, value: Vec<u8>, ttl: Duration) -> Self {
        Self {
            key: key.into(),
            value,
            ttl,
        }
    }
}

/// How long the tag memberships of a [`RemoteTier::set_tagged`] write last: `tags_ttl`,
/// or the entry's `ttl` when that is longer (a membership must never end before the
/// entry it lists, or `delete_by_tag` would stop finding an entry still served). Each
/// tier applies it, so the promise holds for any caller; the conformance suite's
/// [`tags`](crate::testing::conformance::tags) check pins it.
///
/// ```
/// use cache_core::store::memberships_ttl;
/// use std::time::Duration;
/// let (minute, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
/// assert_eq!(memberships_ttl(minute, hour), hour);
/// assert_eq!(memberships_ttl(hour, minute), hour, "a shorter tags_ttl counts as the ttl");
/// ```
pub fn memberships_ttl(ttl: Duration, tags_ttl: Duration) -> Duration {
    tags_ttl.max(ttl)
}

/// The error of an optional [`RemoteTier`] operation a provider does not implement.
fn unsupported(what: &str) -> TierError {
    TierError::with_kind(
        format!("this store's shared tier does not support {what}"),
        crate::error::TierErrorKind::Other,
    )
}

/// What an instance tells the others to drop from their local tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// These stored keys changed.
    Keys(Vec<String>),
    /// Every key of this scope changed.
    Scope(Scope),
    /// Everything changed.
    All,
}

/// What a bus delivers to its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// Another instance changed these entries.
    Invalidate(Invalidation),
    /// The subscription was lost and is back: messages may have been missed, so the
    /// local tier can no longer be trusted.
    Resubscribed,
}

/// Handler called by a bus for every event from another instance.
pub type BusHandler = Arc<dyn Fn(BusEvent) + Send + Sync>;

/// A channel telling other instances which local entries to drop (e.g. Redis pub/sub).
pub trait Bus: Send + Sync + 'static {
    /// Tells the other instances. Messages from this instance must not be delivered back
    /// to its own handler.
    fn publish<'a>(&'a self, message: Invalidation) -> BoxFuture<'a, Result<(), TierError>>;
    /// Starts delivering the other instances' messages to `handler`. Called once, from
    /// inside a tokio runtime or not; the bus runs its own task or thread.
    fn subscribe(&self, handler: BusHandler);
    /// A description for logs, never holding credentials.
    fn describe(&self) -> String;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::MapTier;

    /// A local tier that implements only what it must, keeping every default method:
    /// the defaults a third-party driver gets.
    struct Defaults(Arc<MapTier>);

    impl LocalTier for Defaults {
        fn get(&self, key: &L1KeyRef<'_>) -> Option<LocalEntry> {
            self.0.get(key)
        }
        fn insert(&self, key: L1Key, entry: LocalEntry) {
            self.0.insert(key, entry);
        }
        fn remove(&self, key: &L1KeyRef<'_>) {
            self.0.remove(key);
        }
        fn remove_scope(&self, scope: &Scope) {
            self.0.remove_scope(scope);
        }
        fn clear(&self) {
            self.0.clear();
        }
        fn entry_count(&self) -> u64 {
            self.0.entry_count()
        }
        fn driver(&self) -> &'static str {
            "defaults"
        }
    }

    #[test]
    fn the_default_read_lends_what_get_finds_and_only_that() {
        let tier = Defaults(MapTier::new());
        tier.insert(
            L1Key::parse("app:users:1"),
            LocalEntry::new(Arc::new(7u32), None, None, 8),
        );
        let mut seen = None;
        let found = tier.read(&L1KeyRef::parse("app:users:1"), &mut |e| {
            seen = e.value.downcast_ref::<u32>().copied();
        });
        assert!(found, "a held entry is read");
        assert_eq!(seen, Some(7), "and lent to the reader");
        let mut called = false;
        assert!(
            !tier.read(&L1KeyRef::parse("app:users:2"), &mut |_| called = true),
            "a missing entry is not read"
        );
        assert!(!called, "nor is the reader called for it");
    }

    #[test]
    fn the_default_entry_overhead_covers_at_least_the_entry_the_tier_holds() {
        // A size bound holds in resident memory only if each entry's weight counts what
        // the tier keeps for it beyond key and value: at least the `LocalEntry` itself.
        let overhead = Defaults(MapTier::new()).entry_overhead() as usize;
        assert!(
            overhead >= std::mem::size_of::<LocalEntry>(),
            "{overhead} < {}",
            std::mem::size_of::<LocalEntry>()
        );
    }

    /// The tag index's copies of a key count in the entry's weight, not in what a copy of
    /// the entry holds, its idle record included.
    #[test]
    fn the_tag_index_part_is_left_out_of_the_held_weight() {
        let plain = LocalEntry::new(Arc::new(1u8), None, None, 100);
        assert_eq!((plain.weight, plain.held_weight()), (100, 100));
        let tagged = LocalEntry::new(Arc::new(1u8), None, None, 100)
            .kept_by_tag_index(500)
            .idle_after(Some(Duration::from_secs(1)), 0, Duration::from_secs(60));
        assert_eq!(
            (tagged.weight, tagged.held_weight()),
            (100 + 500 + 64, 100 + 64)
        );
    }

    /// An entry with a time to idle holds an idle record of its own (an `Arc`
    /// allocation): its weight counts it, or a `max_size` bound under-counts every such
    /// entry by that much.
    #[test]
    fn an_idle_entrys_weight_counts_its_idle_record() {
        let plain = LocalEntry::new(Arc::new(1u8), None, None, 100);
        assert_eq!(plain.idle_after(None, 0, Duration::ZERO).weight, 100);
        let idle = LocalEntry::new(Arc::new(1u8), None, None, 100).idle_after(
            Some(Duration::from_secs(1)),
            0,
            Duration::from_secs(60),
        );
        // The record (32 bytes) and the `Arc`'s two counts: 48 bytes, in a 64-byte chunk.
        let record = std::mem::size_of::<crate::idle::Idle>() + 2 * std::mem::size_of::<usize>();
        assert_eq!(record, 48);
        assert_eq!(idle.weight, 100 + 64);
    }

    #[test]
    fn an_entrys_debug_shows_its_timing_and_weight() {
        let at = Instant::now();
        let entry = LocalEntry::new(Arc::new(1u8), Some(at), None, 12).refresh_at(Some(at));
        let shown = format!("{entry:?}");
        for field in [
            "fresh_until: Some(",
            "keep_until: None",
            "weight: 12",
            "refresh_at: Some(",
        ] {
            assert!(shown.contains(field), "{field} in {shown}");
        }
    }

    #[test]
    fn a_scope_keeps_its_base_and_escapes_it_for_redis() {
        let scope = Scope::new("app:users#ns");
        assert_eq!(scope.base(), "app:users#ns");
        assert_eq!(scope.redis_pattern(), "app:users#ns[:#]*");
    }

    #[test]
    fn memberships_last_at_least_as_long_as_their_entry() {
        let (minute, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(memberships_ttl(minute, hour), hour);
        assert_eq!(memberships_ttl(hour, minute), hour);
    }
}
