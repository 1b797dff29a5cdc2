//! A fault-injecting shared tier for tests: wraps any [`RemoteTier`] (a real Redis, most
//! usefully) and makes its operations fail, stall, vanish or return garbage, at random or
//! on command.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::{TierError, TierErrorKind};
use crate::store::{BoxFuture, RemoteTier, Scope};
use crate::timer::lock_ignoring_poison as lock;

/// The kinds of operation a [`FaultyTier`] can single out.
///
/// ```
/// use cache_core::testing::Operation;
/// assert_ne!(Operation::Get, Operation::Set);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// A read (`get`), and listing a tag's keys.
    Get,
    /// A write (`set`, `set_tagged`).
    Set,
    /// A delete (`delete_many`, `delete_tagged`).
    Delete,
    /// Clearing a scope (`clear_scope`).
    Clear,
    /// Taking or releasing a distributed lock.
    Lock,
    /// Administration (`ping`, `scan_scope`).
    Admin,
    /// Renewing an entry's TTL (`touch`: time to idle).
    Touch,
}

const OPERATIONS: usize = 7;

impl Operation {
    fn index(self) -> usize {
        self as usize
    }
}

/// What happens to an operation a rule catches.
///
/// ```
/// use cache_core::testing::{Fault, Latch};
/// use std::time::Duration;
/// let slow = Fault::Delay(Duration::from_millis(200));
/// let held = Fault::HoldReply(Latch::new());
/// # let _ = (slow, held);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Fault {
    /// Fails with an "unavailable" [`TierError`], as a dead server does (the circuit
    /// breaker counts it).
    Fail,
    /// Fails with a "refused" [`TierError`] (kind [`TierErrorKind::Other`]), as a server
    /// that is up but rejects the command does (a value too large, a key an ACL forbids):
    /// the circuit breaker does not count it, and trying again is refused again.
    Refuse,
    /// Waits this long before the operation is sent (a slow request).
    Delay(Duration),
    /// Sends the operation, then waits this long before answering (a slow
    /// acknowledgement: the server has done it, the caller does not know yet).
    DelayReply(Duration),
    /// Answers as if it succeeded without sending it: a write or delete is lost, a read
    /// finds nothing.
    Drop,
    /// Garbles the bytes: a read returns the stored bytes inverted (or garbage where
    /// nothing is stored), a write stores its bytes inverted.
    Corrupt,
    /// Parks the operation before it is sent until the latch is released.
    HoldRequest(Latch),
    /// Sends the operation, then parks its answer until the latch is released.
    HoldReply(Latch),
}

/// When and to what a [`FaultyTier`] applies a [`Fault`]: built with [`FaultRule::on`] or
/// [`FaultRule::any`], narrowed with [`key`](FaultRule::key), [`times`](FaultRule::times)
/// and [`probability`](FaultRule::probability).
///
/// ```
/// use cache_core::testing::{Fault, FaultRule, Operation};
/// // The next delete of one key fails; a fifth of all reads are slow.
/// let once = FaultRule::on(Operation::Delete, Fault::Fail).key("app:users:1").times(1);
/// let flaky = FaultRule::on(Operation::Get, Fault::Delay(std::time::Duration::from_millis(5)))
///     .probability(0.2);
/// # let _ = (once, flaky);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct FaultRule {
    operation: Option<Operation>,
    key: Option<String>,
    probability: f64,
    times: Option<u64>,
    fault: Fault,
}

impl FaultRule {
    /// Every operation of this kind gets `fault`.
    pub fn on(operation: Operation, fault: Fault) -> Self {
        Self {
            operation: Some(operation),
            ..Self::any(fault)
        }
    }

    /// Every operation, of any kind, gets `fault`.
    pub fn any(fault: Fault) -> Self {
        Self {
            operation: None,
            key: None,
            probability: 1.0,
            times: None,
            fault,
        }
    }

    /// Only operations on this stored key (one of the keys, for a delete of several).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Only the next `n` operations it matches; then the rule is spent.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Each matching operation is caught with this probability (0 to 1), drawn from the
    /// tier's seeded generator, so a run can be repeated with [`FaultyTier::with_seed`].
    pub fn probability(mut self, probability: f64) -> Self {
        self.probability = probability.clamp(0.0, 1.0);
        self
    }

    fn matches(&self, operation: Operation, keys: &[&str]) -> bool {
        self.operation.is_none_or(|op| op == operation)
            && self
                .key
                .as_deref()
                .is_none_or(|wanted| keys.contains(&wanted))
            && self.times != Some(0)
    }
}

/// A gate an operation parks at ([`Fault::HoldRequest`], [`Fault::HoldReply`]) until the
/// test releases it: the deterministic way to put an operation "in flight" while the test
/// does something else. Cheap to clone; clones are the same latch.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_core::testing::Latch;
/// let latch = Latch::new();
/// assert_eq!(latch.reached_count(), 0);
/// latch.release(); // parked operations (and later ones) pass
/// assert!(latch.is_released());
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Latch {
    state: Arc<LatchState>,
}

#[derive(Debug, Default)]
struct LatchState {
    reached: AtomicUsize,
    released: std::sync::atomic::AtomicBool,
    changed: Notify,
}

impl Latch {
    /// A latch not yet released.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets every operation parked here (and every later one) through.
    pub fn release(&self) {
        self.state.released.store(true, Ordering::SeqCst);
        self.state.changed.notify_waiters();
    }

    /// Whether [`Latch::release`] was called.
    pub fn is_released(&self) -> bool {
        self.state.released.load(Ordering::SeqCst)
    }

    /// How many operations have reached the latch so far (parked or passed).
    pub fn reached_count(&self) -> usize {
        self.state.reached.load(Ordering::SeqCst)
    }

    /// Waits until at least one operation has reached the latch.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use cache_core::store::{MapTier, RemoteTier};
    /// use cache_core::testing::{Fault, FaultRule, FaultyTier, Latch, Operation};
    /// # let redis: Arc<dyn RemoteTier> = cache_core::testing::FaultyTier::new(
    /// #     cache_core::testing::FaultyTier::blackhole()).clone();
    /// let tier = FaultyTier::new(redis);
    /// let latch = Latch::new();
    /// tier.inject(FaultRule::on(Operation::Set, Fault::HoldReply(latch.clone())).times(1));
    /// let t = tier.clone();
    /// let write = tokio::spawn(async move { t.set("k", b"v".to_vec(), std::time::Duration::from_secs(9)).await });
    /// latch.reached().await;        // the write was sent and its answer is parked
    /// latch.release();
    /// write.await.unwrap().unwrap();
    /// # });
    /// ```
    pub async fn reached(&self) {
        self.reached_at_least(1).await;
    }

    /// Waits until at least `n` operations have reached the latch.
    pub async fn reached_at_least(&self, n: usize) {
        loop {
            let notified = self.state.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reached_count() >= n {
                return;
            }
            notified.await;
        }
    }

    async fn park(&self) {
        self.state.reached.fetch_add(1, Ordering::SeqCst);
        self.state.changed.notify_waiters();
        loop {
            let notified = self.state.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_released() {
                return;
            }
            notified.await;
        }
    }
}

/// A [`RemoteTier`] that injects faults into another: the chaos kit's L2, for testing
/// how an application (and cachet) behaves when its shared tier fails, stalls, loses
/// writes or returns garbage. Rules ([`FaultRule`]) say which operations get which
/// [`Fault`], at random (seeded) or on command; with no rule, every operation passes
/// through untouched. Counters tell how many operations of each kind completed.
///
/// Hand it to a store as its L2 (`StoreBuilder::l2`); keep a clone to steer it.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
/// use cache_core::testing::{Fault, FaultRule, FaultyTier, Operation};
/// # let redis = FaultyTier::blackhole(); // in a real test: a RedisTier
/// let l2 = FaultyTier::new(redis);
/// let manager = CacheManager::builder()
///     .store("main", StoreBuilder::new().l1(MapTier::new()).l2(l2.clone()))
///     .build()
///     .unwrap();
/// let users = manager.cache("users").unwrap();
/// l2.inject(FaultRule::any(Fault::Fail)); // the server is down
/// users.set(&1u64, &"ann".to_string()).await.unwrap(); // never fails the caller
/// assert_eq!(l2.completed(Operation::Set), 0);
/// l2.heal(); // back up
/// # });
/// ```
pub struct FaultyTier {
    inner: Arc<dyn RemoteTier>,
    rules: Mutex<Vec<FaultRule>>,
    rng: AtomicU64,
    completed: [AtomicU64; OPERATIONS],
    injected: AtomicU64,
}

impl FaultyTier {
    /// Wraps `inner`, with no rule yet (everything passes through).
    pub fn new(inner: Arc<dyn RemoteTier>) -> Arc<Self> {
        Self::with_seed(inner, 0x5eed_cac4)
    }

    /// Wraps `inner`, drawing [`FaultRule::probability`] from a generator seeded with
    /// `seed`, so a failing run can be replayed.
    pub fn with_seed(inner: Arc<dyn RemoteTier>, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            inner,
            rules: Mutex::new(Vec::new()),
            // xorshift needs a non-zero state
            rng: AtomicU64::new(seed | 1),
            completed: std::array::from_fn(|_| AtomicU64::new(0)),
            injected: AtomicU64::new(0),
        })
    }

    /// A tier that stores nothing and finds nothing (every write is dropped): a stand-in
    /// for examples; in tests, wrap a real server.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::store::RemoteTier;
    /// let hole = cache_core::testing::FaultyTier::blackhole();
    /// hole.set("k", vec![1], std::time::Duration::from_secs(1)).await.unwrap();
    /// assert_eq!(hole.get("k").await.unwrap(), None);
    /// # });
    /// ```
    pub fn blackhole() -> Arc<dyn RemoteTier> {
        Arc::new(Blackhole)
    }

    /// Adds a rule; rules are tried in the order they were added, and the first one that
    /// matches an operation (and, with a probability, is drawn) decides its fault.
    pub fn inject(&self, rule: FaultRule) -> &Self {
        lock(&self.rules).push(rule);
        self
    }

    /// Removes every rule: the tier is healthy again. Operations parked on a latch stay
    /// parked until it is released.
    pub fn heal(&self) {
        lock(&self.rules).clear();
    }

    /// How many operations of this kind the wrapped tier completed (faults excluded: a
    /// failed, dropped or corrupted-on-read operation is not counted).
    pub fn completed(&self, operation: Operation) -> u64 {
        self.completed[operation.index()].load(Ordering::SeqCst)
    }

    /// How many operations a rule caught so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// A draw in [0, 1) from the seeded xorshift generator.
    fn draw(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        loop {
            let mut next = x;
            next ^= next << 13;
            next ^= next >> 7;
            next ^= next << 17;
            match self
                .rng
                .compare_exchange_weak(x, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return (next >> 11) as f64 / (1u64 << 53) as f64,
                Err(seen) => x = seen,
            }
        }
    }

    /// The fault for this operation, if a rule catches it.
    fn fault_for(&self, operation: Operation, keys: &[&str]) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        for rule in rules.iter_mut() {
            if !rule.matches(operation, keys) {
                continue;
            }
            if rule.probability < 1.0 && self.draw() >= rule.probability {
                continue;
            }
            if let Some(times) = &mut rule.times {
                *times -= 1;
            }
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Some(rule.fault.clone());
        }
        None
    }

    /// Runs `call` (the wrapped tier's operation) under the fault a rule picks.
    /// `dropped` is the answer of a dropped operation; `corrupt` garbles an answer.
    fn run<'a, T: 'a>(
        &'a self,
        operation: Operation,
        keys: &[&str],
        call: impl std::future::Future<Output = Result<T, TierError>> + 'a,
        dropped: impl FnOnce() -> T + 'a,
        corrupt: impl FnOnce(T) -> T + 'a,
    ) -> impl std::future::Future<Output = Result<T, TierError>> + 'a {
        // Picked when the operation is made, so `keys` need not outlive it.
        let fault = self.fault_for(operation, keys);
        self.apply(fault, operation, call, dropped, corrupt)
    }

    /// [`FaultyTier::run`] with the fault already picked (a write garbles its bytes
    /// before the call is made).
    async fn apply<T>(
        &self,
        fault: Option<Fault>,
        operation: Operation,
        call: impl std::future::Future<Output = Result<T, TierError>>,
        dropped: impl FnOnce() -> T,
        corrupt: impl FnOnce(T) -> T,
    ) -> Result<T, TierError> {
        let done = |result: Result<T, TierError>| {
            if result.is_ok() {
                self.completed[operation.index()].fetch_add(1, Ordering::SeqCst);
            }
            result
        };
        match fault {
            None => done(call.await),
            Some(Fault::Fail) => Err(TierError::new(format!(
                "injected fault: {operation:?} failed (chaos kit)"
            ))),
            Some(Fault::Refuse) => Err(TierError::with_kind(
                format!("injected fault: {operation:?} refused (chaos kit)"),
                TierErrorKind::Other,
            )),
            Some(Fault::Drop) => Ok(dropped()),
            Some(Fault::Delay(pause)) => {
                crate::timer::pause(pause).await;
                done(call.await)
            }
            Some(Fault::DelayReply(pause)) => {
                let result = call.await;
                crate::timer::pause(pause).await;
                done(result)
            }
            Some(Fault::HoldRequest(latch)) => {
                latch.park().await;
                done(call.await)
            }
            Some(Fault::HoldReply(latch)) => {
                let result = call.await;
                latch.park().await;
                done(result)
            }
            Some(Fault::Corrupt) => done(call.await.map(corrupt)),
        }
    }
}

impl std::fmt::Debug for FaultyTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyTier")
            .field("inner", &self.inner.describe())
            .field("rules", &lock(&self.rules).len())
            .finish_non_exhaustive()
    }
}

/// Inverted bytes: never a valid envelope, the same length.
fn garble(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.is_empty() {
        return b"\xc1garbage".to_vec();
    }
    bytes.into_iter().map(|b| !b).collect()
}

/// The bytes a write stores under `fault`: garbled for [`Fault::Corrupt`].
fn garble_if(fault: &Option<Fault>, bytes: Vec<u8>) -> Vec<u8> {
    match fault {
        Some(Fault::Corrupt) => garble(bytes),
        _ => bytes,
    }
}

impl RemoteTier for FaultyTier {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, TierError>> {
        Box::pin(self.run(
            Operation::Get,
            &[key],
            self.inner.get(key),
            || None,
            |found| Some(garble(found.unwrap_or_default())),
        ))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async move {
            let fault = self.fault_for(Operation::Set, &[key]);
            let value = garble_if(&fault, value);
            let call = self.inner.set(key, value, ttl);
            self.apply(fault, Operation::Set, call, || (), |()| ())
                .await
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async move {
            let names: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.run(
                Operation::Delete,
                &names,
                self.inner.delete_many(keys),
                || (),
                |()| (),
            )
            .await
        })
    }

    fn clear_scope<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(self.run(
            Operation::Clear,
            &[scope.base()],
            self.inner.clear_scope(scope),
            || (),
            |()| (),
        ))
    }

    fn describe(&self) -> String {
        format!("chaos({})", self.inner.describe())
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), TierError>> {
        Box::pin(self.run(Operation::Admin, &[], self.inner.ping(), || (), |()| ()))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, TierError>> {
        Box::pin(self.run(
            Operation::Touch,
            &[key],
            self.inner.touch(key, ttl),
            || true,
            |kept| kept,
        ))
    }

    fn scan_scope<'a>(
        &'a self,
        scope: &'a Scope,
        cursor: u64,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>), TierError>> {
        Box::pin(self.run(
            Operation::Admin,
            &[scope.base()],
            self.inner.scan_scope(scope, cursor),
            || (0, Vec::new()),
            |page| page,
        ))
    }

    fn set_tagged<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tag_keys: &'a [String],
        tags_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async move {
            let fault = self.fault_for(Operation::Set, &[key]);
            let value = garble_if(&fault, value);
            let call = self.inner.set_tagged(key, value, ttl, tag_keys, tags_ttl);
            self.apply(fault, Operation::Set, call, || (), |()| ())
                .await
        })
    }

    fn tagged_keys<'a>(
        &'a self,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TierError>> {
        Box::pin(async move {
            let names: Vec<&str> = tag_keys.iter().map(String::as_str).collect();
            self.run(
                Operation::Get,
                &names,
                self.inner.tagged_keys(tag_keys),
                Vec::new,
                |keys| keys,
            )
            .await
        })
    }

    fn delete_tagged<'a>(
        &'a self,
        keys: &'a [String],
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async move {
            let names: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.run(
                Operation::Delete,
                &names,
                self.inner.delete_tagged(keys, tag_keys),
                || (),
                |()| (),
            )
            .await
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        Box::pin(self.run(
            Operation::Lock,
            &[key],
            self.inner.try_lock(key, token, ttl),
            || true,
            |taken| taken,
        ))
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        Box::pin(self.run(
            Operation::Lock,
            &[key],
            self.inner.unlock(key, token),
            || true,
            |released| released,
        ))
    }
}

/// Stores nothing; see [`FaultyTier::blackhole`].
struct Blackhole;

impl RemoteTier for Blackhole {
    fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, TierError>> {
        Box::pin(async { Ok(None) })
    }
    fn set<'a>(
        &'a self,
        _: &'a str,
        _: Vec<u8>,
        _: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async { Ok(()) })
    }
    fn delete_many<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async { Ok(()) })
    }
    fn clear_scope<'a>(&'a self, _: &'a Scope) -> BoxFuture<'a, Result<(), TierError>> {
        Box::pin(async { Ok(()) })
    }
    fn describe(&self) -> String {
        "blackhole".into()
    }
}
