//! One call of a cached function: look up, single flight, run, store. Shared by the
//! annotations and `get_or_set`, for async and (through [`crate::blocking`]) plain fns.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::background;
use crate::engine::{Engine, FirstL1, Lifetime, Lookup, Write};
use crate::events::EventKind;
use crate::flight::{DetachedFlight, Entered, FlightGuard, Handed, Ticket};
use crate::shape::Shape;
use crate::slot::Slot;
use crate::stats::Event;
use crate::store::lock;
use crate::CacheValue;

/// Answers from the first cache holding a fresh value; otherwise runs `body()` once per key
/// across concurrent callers and stores its cacheable outcome in every cache.
///
/// `caches` and `keys` are parallel: `keys[i]` is the stored key in `caches[i]`. `local`
/// says whether the caller already found the first cache's L1 empty under `keys[0]`.
/// `policy` decides how long the function's value is kept, or that it is not stored.
/// `mode` says whether `body` may finish in the background ([`Detachable`]): then, with a
/// stale value and a soft timeout, the caller is answered with the stale value at the
/// timeout, and a fresh hit past its eager refresh point starts a background refresh.
///
/// Before the key's single-flight gate a caller reads only the first cache's L1 (no I/O);
/// the rest (L2, the other caches) is read by the gate's holder, which hands what it found
/// or computed to the callers waiting: concurrent callers of a cold key read L2 once in
/// total.
pub(crate) async fn cached_call<S, F, P, M>(
    shape: S,
    caches: &[Engine],
    keys: &[String],
    local: FirstL1,
    policy: P,
    body: impl FnOnce() -> F,
    _mode: M,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
    P: FnOnce(&S::Value) -> Option<Lifetime>,
    M: Mode<S, F, P>,
{
    let Some(first) = caches
        .first()
        .filter(|_| !caches.iter().all(Engine::is_noop))
    else {
        count_misses(caches, keys);
        return body().await;
    };
    // The first cache's view: an annotation's own timeout over the cache's.
    let timeout = first.settings().timeout;
    let flights = &first.inner.store.flights;
    // Before the first look: the gate then tells whether a holder may have stored since
    // (see `Flights::ticket`), so the holder reads the first L1 again only if need be.
    let ticket = flights.ticket(&keys[0]);
    // `force_fresh`: the function runs and its value is stored, hit or not.
    let force = first.skips(|o| o.force_fresh);
    let mut stale = match local {
        _ if force => None,
        FirstL1::Empty => None,
        FirstL1::Unread => match first.look_l1::<S::Slot>(&keys[0]) {
            (Lookup::Fresh(value), due) => {
                if due && M::DETACHABLE {
                    refresh_behind::<S, F, P, M>(shape, caches, keys, policy, body);
                }
                return shape.rebuild(value);
            }
            (Lookup::Stale(value, keep_until), _) => Some((value, keep_until)),
            (Lookup::Miss, _) => None,
        },
    };
    // Whether anything but the first L1 may hold the value: read by the gate's holder.
    let more = !force && (caches.len() > 1 || first.inner.store.l2.is_some());
    let entered = match (timeout, stale.take()) {
        // With a stale value, another caller's refresh is waited for no longer than the
        // soft timeout either.
        (Some(limit), Some(old)) => match first
            .clock()
            .within(limit, enter_gate::<S::Slot>(first, &keys[0], ticket))
            .await
        {
            Some(entered) => {
                stale = Some(old);
                entered
            }
            None => return serve_stale_at_timeout(shape, first, old.0, "another caller's refresh"),
        },
        // The other tiers may hold a stale value: past the soft timeout, this caller reads
        // them itself, serves a stale value it finds, or waits on for the gate.
        (Some(limit), None) if more => match first
            .clock()
            .within(limit, enter_gate::<S::Slot>(first, &keys[0], ticket))
            .await
        {
            Some(entered) => entered,
            None => match find_due::<S::Slot>(caches, keys, FirstL1::Empty).await.0 {
                Lookup::Fresh(value) => return shape.rebuild(value),
                Lookup::Stale(value, _) => {
                    return serve_stale_at_timeout(shape, first, value, "another caller's refresh")
                }
                Lookup::Miss => enter_gate::<S::Slot>(first, &keys[0], ticket).await,
            },
        },
        (_, old) => {
            stale = old;
            enter_gate::<S::Slot>(first, &keys[0], ticket).await
        }
    };
    // The leader's value, handed over: no tier is read again for it.
    let mut flight = match entered {
        Gate::Leader(flight) => flight,
        Gate::Handed(value) => return shape.rebuild(value),
        // Boxed: a rare path, kept out of every call's future (nested cached calls, each
        // holding the next one's future, must fit a thread's stack).
        Gate::GaveUp => {
            let ungated = run_ungated(shape, caches, keys, policy, body, stale, force);
            return Box::pin(ungated).await;
        }
        // The leader's function failed: no second run, one after another, for each
        // caller that waited for it. Grace serves the stale value; a shape that can say
        // "failed" says it; any other caller runs the function, holding the gate.
        Gate::Failed(shared) => {
            match shared.as_ref().and_then(crate::fault::handed_failure) {
                // Its holder's lookup failed a read (`fault.rs`) before any function ran:
                // this call fails with it too when it would have made that read and its
                // type can say so (no tier is read again for it); otherwise it takes the
                // gate and carries on as any holder does.
                Some(failure) => {
                    if reads_l2_of(caches, failure.cache(), force) {
                        if let Some(output) = shape.fail_early(failure.error()) {
                            return output;
                        }
                    }
                }
                None => {
                    if let Some(old) = stale.take() {
                        let why = "failed in the call it waited for";
                        return serve_stale(shape, caches, keys, old, why).await;
                    }
                    if let Some(output) = shape.failed(first.name(), shared.as_ref()) {
                        count_misses(caches, keys);
                        return output;
                    }
                }
            }
            first.inner.store.flights.lock(&keys[0], ticket).await
        }
    };
    // The holder's look: the other tiers and caches, and the first L1 again only if
    // whoever held the gate since the first look may have stored meanwhile.
    let first_l1 = if flight.look_again() {
        FirstL1::Unread
    } else {
        FirstL1::Empty
    };
    if !force && (more || first_l1 == FirstL1::Unread) {
        match find_due::<S::Slot>(caches, keys, first_l1).await {
            (Lookup::Fresh(value), due) => {
                // The callers waiting take it: none of them reads a tier for it.
                flight.hand_over(|| Arc::new(value.clone()));
                if due && M::DETACHABLE {
                    drop(flight);
                    refresh_behind::<S, F, P, M>(shape, caches, keys, policy, body);
                }
                return shape.rebuild(value);
            }
            (Lookup::Stale(value, keep_until), _) => {
                // The first L1's stale value, read first, comes first.
                stale = stale.or(Some((value, keep_until)));
            }
            (Lookup::Miss, _) => {}
        }
    }
    if let Some(output) = failed_early(&shape, &mut flight) {
        return output;
    }
    // Across instances too, on a store with `lock = "redis"` (released when dropped).
    let fresh = || fresh::<S::Slot>(caches, keys);
    let reentrant = flight.is_reentrant();
    let mut dlock =
        match lock::acquire_or_wait(&first.inner.store, &keys[0], fresh, reentrant).await {
            lock::Acquired::Found(value) => return shape.rebuild(value),
            lock::Acquired::Leader(guard) => guard,
        };
    // The lock's own looks (while waiting, and once taken) may have failed a read too: the
    // lock is released (dropped) with the gate.
    if let Some(output) = failed_early(&shape, &mut flight) {
        return output;
    }
    count_misses(caches, keys);
    // The function's own events on a miss carry the cache and key.
    let span = tracing::debug_span!("cachet.miss", cache = first.name(), key = %keys[0], stale = stale.is_some());
    // Soft timeout: the function runs in the background, the caller waits for it at most
    // `limit`, then answers with the stale value.
    // The gate and the distributed lock are held until the value is stored: by this caller,
    // or by the background job that finishes the function.
    let (body, policy, mut flight, mut detached, _dlock) = match (timeout, stale.take()) {
        (Some(limit), Some(old)) if M::DETACHABLE => {
            let job = Job {
                shape,
                caches: caches.to_vec(),
                keys: keys.to_vec(),
                policy,
                body: body(),
                flight: flight.detach(),
                dlock: dlock.take(),
                span: span.clone(),
                scope: crate::scopes::current(),
            };
            match M::spawn(job) {
                Ok(refresh) => {
                    return wait_or_stale(shape, caches, keys, refresh, limit, old).await
                }
                // No runtime to run it: the caller runs it, holding the gate again.
                Err(job) => {
                    stale = Some(old);
                    job.flight.adopt();
                    (job.body, job.policy, None, Some(job.flight), job.dlock)
                }
            }
        }
        (_, old) => {
            stale = old;
            (body(), policy, Some(flight), None, dlock.take())
        }
    };
    let body = body.instrument(span);
    let output = match stale {
        None => body.await,
        // With a stale value to fall back on, a panic is caught so the stale value can be
        // served; without one it propagates untouched.
        Some(_) => match AssertUnwindSafe(body).catch_unwind().await {
            Ok(output) => output,
            Err(panic) => match stale.take() {
                Some(stale) => {
                    first.tell(EventKind::FactoryError, Some(&keys[0]));
                    return serve_stale(shape, caches, keys, stale, "panicked").await;
                }
                None => std::panic::resume_unwind(panic),
            },
        },
    };
    match shape.cached(&output) {
        Some(value) => {
            let null_refused = shape.is_null(value) && !first.settings().allows_null_values();
            if let Some(lifetime) = policy(value).filter(|_| !null_refused) {
                store_all::<S::Slot>(caches, keys, value, lifetime, Write::Fill).await;
            }
            // The waiters take this value, whether or not a tier kept it.
            let handed = || -> Handed { Arc::new(value.clone()) };
            match (&mut flight, &mut detached) {
                (Some(flight), _) => flight.hand_over(handed),
                (None, Some(detached)) => detached.hand_over(handed),
                (None, None) => {}
            }
            output
        }
        None => {
            first.tell(EventKind::FactoryError, Some(&keys[0]));
            // The callers waiting for this one take the failure instead of running again.
            let shared = || shape.share_failure(&output);
            match (&mut flight, &mut detached) {
                (Some(flight), _) => flight.hand_failure(shared),
                (None, Some(detached)) => detached.hand_failure(shared),
                (None, None) => {}
            }
            match stale {
                Some(stale) => serve_stale(shape, caches, keys, stale, "returned an error").await,
                None => output,
            }
        }
    }
}

/// Whether a lookup of `caches` (none when `force`) reads the L2 of the cache named
/// `cache`: the read a holder's early failure ([`failed_early`]) failed.
pub(crate) fn reads_l2_of(caches: &[Engine], cache: &str, force: bool) -> bool {
    !force && caches.iter().any(|c| c.name() == cache && c.reads_l2())
}

/// A read the error handler failed (`fault.rs`) fails the call here, its function not run,
/// when its type can say so; the callers waiting at the gate take the same failure (each
/// fails as its type can, or runs the function itself), instead of each reading the tier
/// that failed again, one after another.
fn failed_early<S: Shape>(shape: &S, flight: &mut FlightGuard<'_>) -> Option<S::Output> {
    let (output, failure) = crate::fault::fail_early(|error| shape.fail_early(error))?;
    flight.hand_failure(|| Some(failure));
    Some(output)
}

/// What a caller that waited at the gate was handed instead of the gate.
pub(crate) enum Handover<V> {
    /// The leader's value.
    Value(V),
    /// The leader's function returned an error, or its lookup failed a read (what it
    /// shared of either: [`crate::fault::handed_failure`] tells them apart).
    Failed(Option<crate::shape::SharedFailure>),
}

/// Waits at the single-flight gate of `key` (the first cache's): `Ok` with the gate, or
/// `Err` with what its holder handed over (a value of this call's type, or its failure; a
/// value of another type, from a function sharing the cache, is not taken). Batches wait
/// without the `wait_timeout` of [`enter_gate`] (a batch bounds its waits as a whole).
pub(crate) async fn enter<'a, K: Slot>(
    first: &'a Engine,
    key: &str,
    ticket: Ticket,
) -> Result<FlightGuard<'a>, Handover<K::Value>> {
    let flights = &first.inner.store.flights;
    match flights.enter(key, ticket).await {
        Entered::Leader(flight) => Ok(flight),
        Entered::Handed(value) => match value.downcast_ref::<K::Value>() {
            Some(value) => {
                first.count(Event::L1Hit);
                Err(Handover::Value(value.clone()))
            }
            None => Ok(flights.lock(key, ticket).await),
        },
        Entered::Failed(shared) => Err(Handover::Failed(shared)),
    }
}

/// What waiting at the single-flight gate gave.
enum Gate<'a, V> {
    /// The gate: this caller reads the other tiers and runs the function.
    Leader(FlightGuard<'a>),
    /// The value the gate's holder handed over.
    Handed(V),
    /// The holder took longer than `wait_timeout`: this caller goes on without the gate.
    GaveUp,
    /// The holder's function returned an error (shared, when its shape could).
    Failed(Option<Handed>),
}

/// Waits at the single-flight gate of `key` (the first cache's), no longer than the
/// cache's `wait_timeout`: the gate, or the value its holder handed over (of this call's
/// type; a value of another type, from a function sharing the cache, is not taken).
async fn enter_gate<'a, K: Slot>(
    first: &'a Engine,
    key: &str,
    ticket: Ticket,
) -> Gate<'a, K::Value> {
    let flights = &first.inner.store.flights;
    let gate = async {
        match flights.enter(key, ticket).await {
            Entered::Leader(flight) => Gate::Leader(flight),
            Entered::Handed(value) => match value.downcast_ref::<K::Value>() {
                Some(value) => {
                    first.count(Event::L1Hit);
                    Gate::Handed(value.clone())
                }
                None => Gate::Leader(flights.lock(key, ticket).await),
            },
            Entered::Failed(shared) => Gate::Failed(shared),
        }
    };
    match first.settings().wait_timeout {
        Some(limit) => first
            .clock()
            .within(limit, gate)
            .await
            .unwrap_or(Gate::GaveUp),
        None => gate.await,
    }
}

/// `wait_timeout`: the caller holding the gate is slow, so this one reads the other tiers
/// itself and, finding nothing fresh, runs the function too and stores its value (the
/// last of the two writes wins); a failure falls back on a stale value as usual.
async fn run_ungated<S, F, P>(
    shape: S,
    caches: &[Engine],
    keys: &[String],
    policy: P,
    body: impl FnOnce() -> F,
    mut stale: Option<(S::Value, Option<Instant>)>,
    force: bool,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
    P: FnOnce(&S::Value) -> Option<Lifetime>,
{
    let first = &caches[0];
    tracing::debug!(cache = first.name(), key = %keys[0], "cachet: wait_timeout; running the function without waiting any longer");
    if !force {
        match find_due::<S::Slot>(caches, keys, FirstL1::Unread).await.0 {
            Lookup::Fresh(value) => return shape.rebuild(value),
            Lookup::Stale(value, keep_until) => stale = stale.or(Some((value, keep_until))),
            Lookup::Miss => {}
        }
    }
    if let Some((output, _)) = crate::fault::fail_early(|error| shape.fail_early(error)) {
        return output;
    }
    count_misses(caches, keys);
    let output = body().await;
    match shape.cached(&output) {
        Some(value) => {
            let null_refused = shape.is_null(value) && !first.settings().allows_null_values();
            if let Some(lifetime) = policy(value).filter(|_| !null_refused) {
                store_all::<S::Slot>(caches, keys, value, lifetime, Write::Fill).await;
            }
            output
        }
        None => {
            first.tell(EventKind::FactoryError, Some(&keys[0]));
            match stale {
                Some(stale) => serve_stale(shape, caches, keys, stale, "returned an error").await,
                None => output,
            }
        }
    }
}

/// Soft timeout: the caller waits for the background refresh at most `limit`.
async fn wait_or_stale<S: Shape>(
    shape: S,
    caches: &[Engine],
    keys: &[String],
    refresh: JoinHandle<Refreshed<S::Value>>,
    limit: Duration,
    stale: (S::Value, Option<Instant>),
) -> S::Output
where
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
{
    match caches[0].clock().within(limit, refresh).await {
        Some(Ok(Refreshed::Value(value))) => shape.rebuild(value),
        Some(Ok(Refreshed::Failed(failure))) => {
            serve_stale(shape, caches, keys, stale, failure).await
        }
        // The runtime running the refresh shut down under it.
        Some(Err(_)) => serve_stale(shape, caches, keys, stale, "was cancelled").await,
        None => serve_stale_at_timeout(shape, &caches[0], stale.0, "the function"),
    }
}

/// Soft timeout: `waited_for` is slower than the timeout, so the stale value answers
/// meanwhile; the refresh stores the fresh one when it finishes.
fn serve_stale_at_timeout<S: Shape>(
    shape: S,
    first: &Engine,
    value: S::Value,
    waited_for: &str,
) -> S::Output {
    first.count(Event::Stale);
    first.tell(EventKind::StaleHit, None);
    tracing::debug!(
        cache = first.name(),
        waited_for,
        "cachet: soft timeout; serving the stale value while the refresh finishes"
    );
    shape.rebuild(value)
}

/// Eager refresh: starts one background refresh of a fresh entry past its refresh point,
/// unless one is running already (the gate is busy). Never waits.
pub(crate) fn refresh_behind<S, F, P, M>(
    shape: S,
    caches: &[Engine],
    keys: &[String],
    policy: P,
    body: impl FnOnce() -> F,
) where
    S: Shape,
    M: Mode<S, F, P>,
{
    let Some(first) = caches.first() else {
        return;
    };
    let Some(flight) = first.inner.store.flights.try_lock(&keys[0]) else {
        return;
    };
    tracing::debug!(cache = first.name(), key = %keys[0], "cachet: eager refresh");
    let job = Job {
        shape,
        caches: caches.to_vec(),
        keys: keys.to_vec(),
        policy,
        body: body(),
        flight: flight.detach(),
        // An eager refresh replaces a value that is still fresh: no instance is waiting for
        // it, so it takes no distributed lock.
        dlock: None,
        span: tracing::debug_span!("cachet.refresh", cache = first.name(), key = %keys[0]),
        scope: crate::scopes::current(),
    };
    // Without a runtime to run it, the entry simply expires as it would have.
    let _ = M::spawn(job);
}

/// A function run that may continue in the background, with what it needs to store its
/// value and the gate it releases when done.
pub(crate) struct Job<S, F, P> {
    shape: S,
    caches: Vec<Engine>,
    keys: Vec<String>,
    policy: P,
    body: F,
    flight: DetachedFlight,
    /// The distributed lock (`lock = "redis"`), released once the value is stored.
    dlock: Option<lock::LockGuard>,
    span: tracing::Span,
    /// The caller's `testing` scope, kept in effect for the background run.
    scope: Option<crate::scopes::Scoped>,
}

/// A background refresh's failure when its function returned an error.
const RETURNED_AN_ERROR: &str = "returned an error";

/// How a background refresh ended.
pub(crate) enum Refreshed<V> {
    /// The function's cacheable value (stored, unless the policy refused it).
    Value(V),
    /// It returned an error or panicked: nothing was stored.
    Failed(&'static str),
}

impl<S, F, P> Job<S, F, P>
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
    P: FnOnce(&S::Value) -> Option<Lifetime>,
{
    async fn run(self) -> Refreshed<S::Value> {
        self.flight.adopt();
        let Job {
            shape,
            caches,
            keys,
            policy,
            body,
            flight,
            dlock,
            span,
            scope: _,
        } = self;
        // The output (its error type need not be `Send`) is gone before the next await.
        // What it shares of an error (a clone, for the callers waiting) is `Send`.
        let (refreshed, lifetime, shared) =
            match AssertUnwindSafe(body.instrument(span)).catch_unwind().await {
                Ok(output) => match shape.cached(&output) {
                    Some(value) => {
                        let null_refused =
                            shape.is_null(value) && !caches[0].settings().allows_null_values();
                        let lifetime = policy(value).filter(|_| !null_refused);
                        (Refreshed::Value(value.clone()), lifetime, None)
                    }
                    None => (
                        Refreshed::Failed(RETURNED_AN_ERROR),
                        None,
                        shape.share_failure(&output),
                    ),
                },
                Err(_) => (Refreshed::Failed("panicked"), None, None),
            };
        let mut flight = flight;
        match (&refreshed, lifetime) {
            (Refreshed::Value(value), Some(lifetime)) => {
                store_all::<S::Slot>(&caches, &keys, value, lifetime, Write::Fill).await;
                flight.hand_over(|| Arc::new(value.clone()));
            }
            (Refreshed::Failed(failure), _) => {
                caches[0].tell(EventKind::FactoryError, Some(&keys[0]));
                // An error is handed over (a panic hands the gate over, as for a caller).
                if *failure == RETURNED_AN_ERROR {
                    flight.hand_failure(|| shared);
                }
                tracing::debug!(
                    cache = caches[0].name(),
                    key = %keys[0],
                    failure,
                    "cachet: a background refresh failed; the entry keeps its value"
                )
            }
            (Refreshed::Value(value), None) => flight.hand_over(|| Arc::new(value.clone())),
        }
        drop(flight);
        drop(dlock);
        refreshed
    }
}

/// A job running in the background (its outcome), or given back to run in place.
pub(crate) type Spawned<S, F, P> = Result<JoinHandle<Refreshed<<S as Shape>::Value>>, Job<S, F, P>>;

/// Whether a call's function may finish in the background: [`Attached`] or [`Detachable`].
pub(crate) trait Mode<S: Shape, F, P> {
    /// Whether [`Mode::spawn`] can run a job.
    const DETACHABLE: bool;
    /// Runs `job` in the background, or gives it back.
    #[allow(clippy::result_large_err)]
    fn spawn(job: Job<S, F, P>) -> Spawned<S, F, P>;
}

/// The function runs in its caller (it borrows from it, or is not `Send`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attached;

/// The function (a `Send + 'static` future) may finish in the background.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detachable;

impl<S: Shape, F, P> Mode<S, F, P> for Attached {
    const DETACHABLE: bool = false;
    fn spawn(job: Job<S, F, P>) -> Spawned<S, F, P> {
        Err(job)
    }
}

impl<S, F, P> Mode<S, F, P> for Detachable
where
    S: Shape + Send + 'static,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output> + Send + 'static,
    P: FnOnce(&S::Value) -> Option<Lifetime> + Send + 'static,
{
    const DETACHABLE: bool = true;
    fn spawn(job: Job<S, F, P>) -> Spawned<S, F, P> {
        let Some(runtime) = background::handle() else {
            return Err(job);
        };
        Ok(match job.scope.clone() {
            Some(scope) => runtime.spawn(crate::scopes::scope_task(scope, job.run())),
            None => runtime.spawn(job.run()),
        })
    }
}

/// Counts a miss in each cache, and tells its listeners.
fn count_misses(caches: &[Engine], keys: &[String]) {
    for (cache, key) in caches.iter().zip(keys) {
        cache.count(Event::Miss);
        cache.tell(EventKind::Miss, Some(key));
    }
}

/// Grace: the function failed, so the stale value is returned in its place. With a
/// `grace_backoff`, it is stored back as fresh for that long, so the function is not called
/// again meanwhile.
async fn serve_stale<S: Shape>(
    shape: S,
    caches: &[Engine],
    keys: &[String],
    (value, keep_until): (S::Value, Option<Instant>),
    failure: &str,
) -> S::Output
where
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
{
    let first = &caches[0];
    first.count(Event::Stale);
    first.tell(EventKind::StaleHit, Some(&keys[0]));
    tracing::warn!(
        cache = first.name(),
        failure,
        "cachet: the function failed; serving the stale value (grace period)"
    );
    if let Some(fresh_for) = first.settings().grace_backoff {
        // Fresh for the backoff, but dropped when its grace period ends, as it would be.
        store_all::<S::Slot>(
            caches,
            keys,
            &value,
            Lifetime::Backoff {
                fresh_for,
                keep_until,
            },
            Write::Fill,
        )
        .await;
    }
    shape.rebuild(value)
}

/// Runs `body`, then stores its cacheable outcome under the key `key_of` computes from it,
/// for as long as `policy` says (or not at all).
pub(crate) async fn put_call<S, F>(
    shape: S,
    caches: &[Engine],
    key_of: impl FnOnce(&S::Value) -> Option<String>,
    policy: impl FnOnce(&S::Value) -> Option<Lifetime>,
    after_commit: bool,
    body: F,
) -> S::Output
where
    S: Shape,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    F: Future<Output = S::Output>,
{
    let output = body.await;
    let Some(value) = shape.cached(&output) else {
        return output;
    };
    let Some(first) = caches.first() else {
        return output;
    };
    if shape.is_null(value) && !first.settings().allows_null_values() {
        return output;
    }
    let Some(lifetime) = policy(value) else {
        return output;
    };
    if let Some(encoded) = key_of(value) {
        let keys: Vec<String> = caches
            .iter()
            .map(|c| c.stored_key_of_encoded(&encoded))
            .collect();
        if after_commit {
            let (caches, value) = (caches.to_vec(), value.clone());
            let store = Box::pin(async move {
                store_all::<S::Slot>(&caches, &keys, &value, lifetime, Write::Change).await
            });
            // Outside a transaction it applies at once.
            if let Err(store) = crate::transaction::defer(store) {
                store.await;
            }
        } else {
            store_all::<S::Slot>(caches, &keys, value, lifetime, Write::Change).await;
        }
    }
    output
}

/// The first fresh value in `caches`, else the first stale one (within grace), and whether
/// the fresh value found is past its eager refresh point. `first_l1` says whether the first
/// cache's L1 is known empty already (then only its L2 is read).
async fn find_due<V: Slot>(
    caches: &[Engine],
    keys: &[String],
    first_l1: FirstL1,
) -> (Lookup<V::Value>, bool) {
    let mut stale = None;
    for (i, (cache, key)) in caches.iter().zip(keys).enumerate() {
        let local = if i == 0 { first_l1 } else { FirstL1::Unread };
        match cache.lookup_due::<V>(key, local).await {
            (Lookup::Fresh(value), due) => return (Lookup::Fresh(value), due),
            (Lookup::Stale(value, keep_until), _) if stale.is_none() => {
                stale = Some((value, keep_until))
            }
            (Lookup::Stale(..) | Lookup::Miss, _) => {}
        }
    }
    let found = stale.map_or(Lookup::Miss, |(value, keep_until)| {
        Lookup::Stale(value, keep_until)
    });
    (found, false)
}

/// The first fresh value of the call in `caches` (the distributed lock's look for the value
/// another instance stored).
async fn fresh<V: Slot>(caches: &[Engine], keys: &[String]) -> Option<V::Value> {
    for (cache, key) in caches.iter().zip(keys) {
        if let Lookup::Fresh(value) = cache.lookup::<V>(key).await {
            return Some(value);
        }
    }
    None
}

async fn store_all<V: Slot>(
    caches: &[Engine],
    keys: &[String],
    value: &V::Value,
    lifetime: Lifetime,
    why: Write,
) {
    for (cache, key) in caches.iter().zip(keys) {
        cache.write::<V>(key, value.clone(), lifetime, why).await;
    }
}

/// What an eviction removes.
pub(crate) enum EvictTarget {
    /// One encoded key, in every cache.
    Key(String),
    /// Every entry of every cache.
    All,
}

/// Removes `target` from every cache, or, with `after_commit` inside a
/// [`crate::transaction`], when it commits.
pub(crate) async fn evict_all_after(caches: &[Engine], target: EvictTarget, after_commit: bool) {
    if !after_commit {
        return evict_all(caches, &target).await;
    }
    let caches = caches.to_vec();
    let evict = Box::pin(async move { evict_all(&caches, &target).await });
    if let Err(evict) = crate::transaction::defer(evict) {
        evict.await;
    }
}

/// Removes `target` from every cache.
pub(crate) async fn evict_all(caches: &[Engine], target: &EvictTarget) {
    for cache in caches {
        match target {
            EvictTarget::Key(encoded) => {
                cache.remove(&[cache.stored_key_of_encoded(encoded)]).await
            }
            // A failed clear is counted and logged by `remove_all`; the function never fails for it.
            EvictTarget::All => {
                let _ = cache.remove_all().await;
            }
        }
    }
}

/// A plain fn's body as a future that runs it where it is polled, so the attached path
/// runs it in its caller; [`DetachableBlocking`] takes the closure out to run it on a
/// blocking thread instead.
pub(crate) struct BlockingBody<C>(Option<C>);

impl<C> BlockingBody<C> {
    pub(crate) fn new(body: C) -> Self {
        BlockingBody(Some(body))
    }
}

// The closure is never pinned: it is moved out before it runs.
impl<C> Unpin for BlockingBody<C> {}

impl<C: FnOnce() -> O, O> Future for BlockingBody<C> {
    type Output = O;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<O> {
        match self.0.take() {
            Some(body) => std::task::Poll::Ready(body()),
            None => panic!("a cachet BlockingBody was polled after it completed"),
        }
    }
}

/// A plain fn whose closure (`Send + 'static`) may finish in the background: it runs on a
/// blocking thread of cachet's own runtime — never the caller's, whose thread the caller
/// blocks while it waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DetachableBlocking;

impl<S, C, P> Mode<S, BlockingBody<C>, P> for DetachableBlocking
where
    S: Shape + Send + 'static,
    S::Value: CacheValue,
    S::Slot: Slot<Value = S::Value>,
    S::Output: Send + 'static,
    C: FnOnce() -> S::Output + Send + 'static,
    P: FnOnce(&S::Value) -> Option<Lifetime> + Send + 'static,
{
    const DETACHABLE: bool = true;
    fn spawn(mut job: Job<S, BlockingBody<C>, P>) -> Spawned<S, BlockingBody<C>, P> {
        let (Some(runtime), Some(body)) = (background::own_handle(), job.body.0.take()) else {
            return Err(job);
        };
        let scope = job.scope.clone();
        // A plain fn's testing scope is its thread's: the blocking thread gets it too.
        let body = move || match scope {
            Some(scope) => crate::scopes::scope_thread(scope, body),
            None => body(),
        };
        let Job {
            shape,
            caches,
            keys,
            policy,
            flight,
            dlock,
            span,
            scope,
            ..
        } = job;
        let job = Job {
            shape,
            caches,
            keys,
            policy,
            body: async move {
                match tokio::task::spawn_blocking(body).await {
                    Ok(output) => output,
                    // Re-raised here, caught by the job as any panic of the function.
                    Err(err) => match err.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        Err(_) => std::panic::resume_unwind(Box::new("cancelled")),
                    },
                }
            },
            flight,
            dlock,
            span,
            scope,
        };
        Ok(runtime.spawn(job.run()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    // One cached call through several caches on in-process stores under a manual clock: which
    // cache answers, when the function runs (its closure is counted when called, so a refresh
    // started in the background is seen at once), what is stored, and evictions. Written for
    // cargo-mutants (README, "Mutation testing"); what a call does with an L2 is tested against
    // a real Redis in the root package's `tests/`.

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use super::*;
    use crate::shape::{FallibleShape, OptionShape, ResultShape, ValueShape};
    use crate::store::MapTier;
    use crate::testing::ManualClock;
    use crate::{Cache, CacheError, CacheManager, CacheOptions, StoreBuilder};

    const TTL: Duration = Duration::from_secs(30);
    const GRACE: Duration = Duration::from_secs(3600);

    /// A manager of one in-process store (30 s TTL, an hour of grace) on `clock`, with
    /// `options` over that.
    fn manager(clock: &ManualClock, options: CacheOptions) -> CacheManager {
        CacheManager::builder()
            .store("main", StoreBuilder::new().l1(MapTier::new()))
            .ttl(TTL)
            .grace(GRACE)
            .options(options)
            .manual_clock(clock.clone())
            .build()
            .unwrap()
    }

    fn caches(manager: &CacheManager, names: &[&str]) -> Vec<Cache> {
        names.iter().map(|n| manager.cache(n).unwrap()).collect()
    }

    fn engines(caches: &[Cache]) -> Vec<Engine> {
        caches.iter().map(|c| c.engine.clone()).collect()
    }

    fn keys(engines: &[Engine], key: u64) -> Vec<String> {
        engines
            .iter()
            .map(|e| e.stored_key(&key).unwrap())
            .collect()
    }

    /// The stored key of `key`, as an annotation computes it from a value.
    fn key_of<V>(key: u64) -> impl FnOnce(&V) -> Option<String> {
        move |_| Some(crate::key::encode_key(&key).unwrap())
    }

    /// Every value is stored for the cache's TTL.
    fn cache_ttl<V>(_: &V) -> Option<Lifetime> {
        Some(Lifetime::Default)
    }

    async fn held(cache: &Cache, key: u64) -> Option<String> {
        cache.get::<String>(&key).await.unwrap()
    }

    /// A function's future, as the tests' calls take it.
    type Body = std::pin::Pin<Box<dyn Future<Output = Result<String, CacheError>> + Send>>;

    /// A function answering `value` at once.
    fn answer(value: &str) -> Body {
        let value = value.to_owned();
        Box::pin(async move { Ok(value) })
    }

    /// A function answering `value` once `release` is sent (or dropped).
    fn after(release: tokio::sync::oneshot::Receiver<()>, value: &str) -> Body {
        let value = value.to_owned();
        Box::pin(async move {
            let _ = release.await;
            Ok(value)
        })
    }

    /// `f(key)` cached in `caches` (the first decides), whose function answers `value` and is
    /// counted in `runs` when called.
    async fn call<M>(caches: &[Cache], key: u64, runs: &AtomicUsize, value: &str, mode: M) -> String
    where
        M: Mode<FallibleShape<String, CacheError>, Body, fn(&String) -> Option<Lifetime>>,
    {
        call_body(caches, key, runs, answer(value), mode).await
    }

    /// [`call`] whose function is `body`.
    async fn call_body<M>(
        caches: &[Cache],
        key: u64,
        runs: &AtomicUsize,
        body: Body,
        mode: M,
    ) -> String
    where
        M: Mode<FallibleShape<String, CacheError>, Body, fn(&String) -> Option<Lifetime>>,
    {
        let engines = engines(caches);
        let keys = keys(&engines, key);
        let policy: fn(&String) -> Option<Lifetime> = cache_ttl;
        let body = || {
            runs.fetch_add(1, SeqCst);
            body
        };
        let shape = FallibleShape::<String, CacheError>::default();
        cached_call(shape, &engines, &keys, FirstL1::Unread, policy, body, mode)
            .await
            .unwrap()
    }

    /// [`call_body`] in a task of its own, counted in `runs`.
    fn spawn_call<M>(
        caches: &[Cache],
        key: u64,
        runs: &Arc<AtomicUsize>,
        body: Body,
        mode: M,
    ) -> JoinHandle<String>
    where
        M: Mode<FallibleShape<String, CacheError>, Body, fn(&String) -> Option<Lifetime>>
            + Send
            + 'static,
    {
        let (caches, runs) = (caches.to_vec(), runs.clone());
        tokio::spawn(async move { call_body(&caches, key, &runs, body, mode).await })
    }

    /// Moves `clock` on by `step` until `task` (a caller waiting on a timeout of that clock) is
    /// done; `false` if it is not after a few seconds of real time.
    async fn advance_until_done<T>(
        clock: &ManualClock,
        task: &JoinHandle<T>,
        step: Duration,
    ) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while !task.is_finished() && std::time::Instant::now() < deadline {
            clock.advance(step);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.is_finished()
    }

    /// Polls `check` (in real time) until it holds, failing with `never` after a deadline.
    async fn until(never: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(std::time::Instant::now() < deadline, "{never}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until an L2 call reached `latch`, failing after a deadline: a call that never
    /// reads the L2 fails the test instead of hanging it.
    async fn until_reached(latch: &crate::testing::Latch) {
        let reached = tokio::time::timeout(Duration::from_secs(10), latch.reached()).await;
        assert!(reached.is_ok(), "no L2 call reached the latch");
    }

    /// Waits until `runs` reaches `n`: a function has started.
    async fn until_runs(runs: &AtomicUsize, n: usize) {
        until("the function never ran", async || runs.load(SeqCst) >= n).await;
    }

    /// Waits until `cache` holds `value` under `key` (a background job's store).
    async fn until_held(cache: &Cache, key: u64, value: &str) {
        let never = format!("`{value}` never stored");
        until(&never, async || {
            held(cache, key).await.as_deref() == Some(value)
        })
        .await;
    }

    /// Waits until `n` callers wait at `key`'s single-flight gate in `cache`.
    async fn until_waiting(cache: &Cache, key: u64, n: usize) {
        let stored = cache.engine.stored_key(&key).unwrap();
        let flights = &cache.engine.inner.store.flights;
        until("nobody waits", async || flights.waiting(&stored) >= n).await;
    }

    #[tokio::test]
    async fn the_function_runs_once_and_a_miss_is_counted_once() {
        let m = manager(&ManualClock::new(), CacheOptions::new());
        let c = caches(&m, &["a"]);
        let runs = AtomicUsize::new(0);
        assert_eq!(call(&c, 1, &runs, "x", Attached).await, "x");
        assert_eq!(call(&c, 1, &runs, "y", Attached).await, "x");
        assert_eq!(runs.load(SeqCst), 1);
        assert_eq!((c[0].stats().misses, c[0].stats().hits), (1, 1));
    }

    #[tokio::test]
    async fn a_later_cache_answers_when_the_first_holds_nothing() {
        let m = manager(&ManualClock::new(), CacheOptions::new());
        let c = caches(&m, &["a", "b"]);
        c[1].set(&1u64, &"b".to_owned()).await.unwrap();
        let runs = AtomicUsize::new(0);
        assert_eq!(call(&c, 1, &runs, "body", Attached).await, "b");
        assert_eq!(call(&c, 1, &runs, "body", Detachable).await, "b");
        assert_eq!(
            runs.load(SeqCst),
            0,
            "neither ran the function nor refreshed"
        );
    }

    #[tokio::test]
    async fn force_fresh_runs_the_function_over_every_value_held() {
        let m = manager(&ManualClock::new(), CacheOptions::new());
        let c = caches(&m, &["a", "b"]);
        c[0].set(&1u64, &"a".to_owned()).await.unwrap();
        c[1].set(&1u64, &"b".to_owned()).await.unwrap();
        let forced = [
            c[0].with_options(CacheOptions::new().force_fresh(true)),
            c[1].clone(),
        ];
        let runs = AtomicUsize::new(0);
        assert_eq!(call(&forced, 1, &runs, "new", Attached).await, "new");
        assert_eq!(runs.load(SeqCst), 1);
        assert_eq!(held(&c[0], 1).await.as_deref(), Some("new"));
        assert_eq!(held(&c[1], 1).await.as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn only_a_detachable_call_refreshes_a_hit_past_its_refresh_point() {
        let clock = ManualClock::new();
        // Not allowing null values must not keep a value from being stored.
        let options = CacheOptions::new()
            .eager_refresh(0.5)
            .allow_null_values(false);
        let m = manager(&clock, options);
        let c = caches(&m, &["a", "b"]);
        c[0].set(&1u64, &"old".to_owned()).await.unwrap();
        c[1].set(&2u64, &"old".to_owned()).await.unwrap();
        let runs = AtomicUsize::new(0);
        // Not due yet: no call refreshes.
        assert_eq!(call(&c, 1, &runs, "new", Detachable).await, "old");
        assert_eq!(call(&c, 2, &runs, "new", Detachable).await, "old");
        assert_eq!(runs.load(SeqCst), 0);
        clock.advance(TTL * 2 / 3);
        // Due, from the first cache's L1 and from a later cache: an attached call serves it
        // and starts nothing.
        assert_eq!(call(&c, 1, &runs, "new", Attached).await, "old");
        assert_eq!(call(&c, 2, &runs, "new", Attached).await, "old");
        assert_eq!(runs.load(SeqCst), 0);
        // A detachable one serves it and refreshes it in the background.
        assert_eq!(call(&c, 1, &runs, "new", Detachable).await, "old");
        assert_eq!(runs.load(SeqCst), 1);
        until_held(&c[0], 1, "new").await;
    }

    #[tokio::test]
    async fn a_stale_value_answers_a_failure_from_the_first_cache_holding_one() {
        let clock = ManualClock::new();
        let m = manager(&clock, CacheOptions::new());
        let c = caches(&m, &["a", "b", "c"]);
        c[1].set(&1u64, &"b".to_owned()).await.unwrap();
        c[2].set(&1u64, &"c".to_owned()).await.unwrap();
        clock.advance(TTL + Duration::from_secs(1));
        let engines = engines(&c);
        let keys = keys(&engines, 1);
        let failing = || async {
            Err::<String, _>(CacheError::Timeout {
                cache: "a".into(),
                timeout: TTL,
            })
        };
        let shape = FallibleShape::<String, CacheError>::default();
        let out = cached_call(
            shape,
            &engines,
            &keys,
            FirstL1::Unread,
            cache_ttl,
            failing,
            Attached,
        );
        assert_eq!(out.await.unwrap(), "b");
    }

    /// `f(key)` returning `None` (once `release` is sent, if given), cached in `cache` (values
    /// of `Option<String>`), in a task of its own.
    fn spawn_none<M>(
        cache: &Cache,
        key: u64,
        runs: &Arc<AtomicUsize>,
        release: Option<tokio::sync::oneshot::Receiver<()>>,
        mode: M,
    ) -> JoinHandle<Option<String>>
    where
        M: Mode<OptionShape<String>, NoneBody, fn(&Option<String>) -> Option<Lifetime>>
            + Send
            + 'static,
    {
        let (cache, runs) = (cache.clone(), runs.clone());
        tokio::spawn(async move {
            let engines = engines(std::slice::from_ref(&cache));
            let keys = keys(&engines, key);
            let body = || -> NoneBody {
                runs.fetch_add(1, SeqCst);
                Box::pin(async move {
                    if let Some(release) = release {
                        let _ = release.await;
                    }
                    None
                })
            };
            let policy: fn(&Option<String>) -> Option<Lifetime> = cache_ttl;
            let shape = OptionShape::<String>::default();
            cached_call(shape, &engines, &keys, FirstL1::Unread, policy, body, mode).await
        })
    }

    /// The future of a function returning `Option<String>`.
    type NoneBody = std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send>>;

    async fn call_none(cache: &Cache, key: u64, runs: &Arc<AtomicUsize>) -> Option<String> {
        spawn_none(cache, key, runs, None, Attached).await.unwrap()
    }

    /// Waits until nobody holds `key`'s single-flight gate in `cache` (a background refresh
    /// finished).
    async fn until_gate_free(cache: &Cache, key: u64) {
        let stored = cache.engine.stored_key(&key).unwrap();
        let flights = &cache.engine.inner.store.flights;
        until("the gate stays held", async || {
            flights.try_lock(&stored).is_some()
        })
        .await;
    }

    #[tokio::test]
    async fn a_none_is_stored_only_where_null_values_are_allowed() {
        let m = manager(&ManualClock::new(), CacheOptions::new());
        let allowed = m.cache("a").unwrap();
        let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(call_none(&allowed, 1, &runs).await, None);
        assert_eq!(call_none(&allowed, 1, &runs).await, None);
        assert_eq!(runs.load(SeqCst), 1, "stored");
        assert_eq!(call_none(&refused, 2, &runs).await, None);
        assert_eq!(call_none(&refused, 2, &runs).await, None);
        assert_eq!(runs.load(SeqCst), 3, "not stored");
        // A value is stored whatever the setting.
        let c = [refused];
        assert_eq!(call(&c, 3, &runs, "x", Attached).await, "x");
        assert_eq!(call(&c, 3, &runs, "y", Attached).await, "x");
        assert_eq!(runs.load(SeqCst), 4);
    }

    #[tokio::test]
    async fn a_put_stores_its_value_and_a_none_only_where_allowed() {
        let m = manager(&ManualClock::new(), CacheOptions::new());
        let allowed = m.cache("a").unwrap();
        let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
        let put = |cache: &Cache, key: u64, value: Option<String>| {
            let engines = engines(std::slice::from_ref(cache));
            async move {
                let shape = OptionShape::<String>::default();
                put_call(shape, &engines, key_of(key), cache_ttl, false, async {
                    value
                })
                .await
            }
        };
        put(&refused, 1, Some("x".into())).await;
        assert_eq!(held(&allowed, 1).await.as_deref(), Some("x"));
        put(&allowed, 2, None).await;
        assert!(allowed.has(&2u64).await.unwrap(), "a null stored");
        put(&refused, 3, None).await;
        assert!(!allowed.has(&3u64).await.unwrap(), "no null stored");
        // Any other shape stores its value as is.
        let engines = engines(std::slice::from_ref(&refused));
        let value = async { "v".to_owned() };
        put_call(
            ValueShape::default(),
            &engines,
            key_of(4),
            cache_ttl,
            false,
            value,
        )
        .await;
        assert_eq!(held(&allowed, 4).await.as_deref(), Some("v"));
    }

    #[tokio::test]
    async fn an_eviction_applies_at_once_unless_it_waits_for_the_commit() {
        let m = manager(&ManualClock::new(), CacheOptions::new());
        let c = caches(&m, &["a", "b"]);
        for key in 1u64..=4 {
            for cache in &c {
                cache.set(&key, &"v".to_owned()).await.unwrap();
            }
        }
        let engines = engines(&c);
        let key = |k: u64| EvictTarget::Key(crate::key::encode_key(&k).unwrap());
        evict_all_after(&engines, key(1), false).await;
        assert_eq!((held(&c[0], 1).await, held(&c[1], 1).await), (None, None));
        assert!(held(&c[0], 2).await.is_some());
        let committed: Result<(), CacheError> = crate::transaction::transaction(async {
            evict_all_after(&engines, key(2), false).await;
            assert_eq!(held(&c[0], 2).await, None, "at once, in a transaction too");
            evict_all_after(&engines, key(3), true).await;
            assert!(held(&c[0], 3).await.is_some(), "at the commit");
            Ok(())
        })
        .await;
        committed.unwrap();
        assert_eq!((held(&c[0], 3).await, held(&c[1], 3).await), (None, None));
        evict_all(&engines, &EvictTarget::All).await;
        assert_eq!((held(&c[0], 4).await, held(&c[1], 4).await), (None, None));
    }

    #[tokio::test]
    async fn past_its_soft_timeout_a_detachable_call_answers_stale_and_stores_later() {
        let clock = ManualClock::new();
        let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
        let c = caches(&m, &["a"]);
        c[0].set(&1u64, &"old".to_owned()).await.unwrap();
        clock.advance(TTL + Duration::from_secs(1));
        let (release, slow) = tokio::sync::oneshot::channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let caller = spawn_call(&c, 1, &runs, after(slow, "new"), Detachable);
        let answered = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
        let _ = release.send(());
        assert!(answered, "not answered at the soft timeout");
        assert_eq!(caller.await.unwrap(), "old");
        until_held(&c[0], 1, "new").await;
    }

    /// Caches `a` and `b` (a soft timeout of 1 s on `clock`): a call of key 1 running in
    /// them (the leader, answering "leader") until `release` is sent, and `b` holding "b"
    /// under that key meanwhile.
    async fn a_slow_call_while_b_holds(
        clock: &ManualClock,
    ) -> (
        Vec<Cache>,
        tokio::sync::oneshot::Sender<()>,
        JoinHandle<String>,
    ) {
        let m = manager(clock, CacheOptions::new().timeout(Duration::from_secs(1)));
        let c = caches(&m, &["a", "b"]);
        let (release, slow) = tokio::sync::oneshot::channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = spawn_call(&c, 1, &runs, after(slow, "leader"), Attached);
        until_runs(&runs, 1).await;
        c[1].set(&1u64, &"b".to_owned()).await.unwrap();
        (c, release, leader)
    }

    #[tokio::test]
    async fn past_its_soft_timeout_a_waiting_call_takes_what_another_cache_holds() {
        let clock = ManualClock::new();
        let (c, release, leader) = a_slow_call_while_b_holds(&clock).await;
        let second = Arc::new(AtomicUsize::new(0));
        let caller = spawn_call(&c, 1, &second, answer("second"), Attached);
        let answered = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
        let _ = release.send(());
        assert!(answered, "waited for the slow caller past the soft timeout");
        assert_eq!(caller.await.unwrap(), "b");
        assert_eq!(second.load(SeqCst), 0);
        assert_eq!(leader.await.unwrap(), "leader");
    }

    #[tokio::test]
    async fn past_its_wait_timeout_a_call_reads_the_other_caches_then_runs_and_stores() {
        let clock = ManualClock::new();
        let options = CacheOptions::new()
            .wait_timeout(Duration::from_secs(1))
            .allow_null_values(false);
        let m = manager(&clock, options);
        let c = caches(&m, &["a", "b"]);
        let (release, slow) = tokio::sync::oneshot::channel();
        let (release_2, slow_2) = tokio::sync::oneshot::channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = spawn_call(&c, 1, &runs, after(slow, "leader"), Attached);
        let leader_2 = spawn_call(&c, 2, &runs, after(slow_2, "leader"), Attached);
        until_runs(&runs, 2).await;
        // Key 1: another cache holds it now.
        c[1].set(&1u64, &"b".to_owned()).await.unwrap();
        let second = Arc::new(AtomicUsize::new(0));
        let caller = spawn_call(&c, 1, &second, answer("second"), Attached);
        let found = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
        // Key 2: nothing anywhere: it runs the function too, and stores its value.
        let third = Arc::new(AtomicUsize::new(0));
        let caller_2 = spawn_call(&c, 2, &third, answer("third"), Attached);
        let ran = advance_until_done(&clock, &caller_2, Duration::from_secs(1)).await;
        let stored = held(&c[0], 2).await;
        let (_, _) = (release.send(()), release_2.send(()));
        assert!(found && ran, "waited past the wait timeout");
        assert_eq!(caller.await.unwrap(), "b");
        assert_eq!(second.load(SeqCst), 0);
        assert_eq!(caller_2.await.unwrap(), "third");
        assert_eq!((third.load(SeqCst), stored.as_deref()), (1, Some("third")));
        assert_eq!(leader.await.unwrap(), "leader");
        assert_eq!(leader_2.await.unwrap(), "leader");
    }

    #[tokio::test]
    async fn past_its_wait_timeout_a_none_is_stored_only_where_allowed() {
        let clock = ManualClock::new();
        let m = manager(
            &clock,
            CacheOptions::new().wait_timeout(Duration::from_secs(1)),
        );
        let allowed = m.cache("a").unwrap();
        let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
        for (cache, key, stored) in [(&allowed, 1, true), (&refused, 2, false)] {
            let (release, slow) = tokio::sync::oneshot::channel();
            let runs = Arc::new(AtomicUsize::new(0));
            let leader = spawn_call(
                std::slice::from_ref(cache),
                key,
                &runs,
                after(slow, "x"),
                Attached,
            );
            until_runs(&runs, 1).await;
            let caller = spawn_none(cache, key, &runs, None, Attached);
            let gave_up = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
            let had = allowed.has(&key).await.unwrap();
            let _ = release.send(());
            assert!(gave_up, "waited past the wait timeout");
            assert_eq!(caller.await.unwrap(), None);
            assert_eq!(had, stored, "key {key}");
            leader.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_background_refresh_stores_a_none_only_where_allowed() {
        let clock = ManualClock::new();
        let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
        let allowed = m.cache("a").unwrap();
        let refused = allowed.with_options(CacheOptions::new().allow_null_values(false));
        for (cache, key, stored) in [(&allowed, 1, true), (&refused, 2, false)] {
            cache.set(&key, &"old".to_owned()).await.unwrap();
            clock.advance(TTL + Duration::from_secs(1));
            let (release, slow) = tokio::sync::oneshot::channel();
            let runs = Arc::new(AtomicUsize::new(0));
            let caller = spawn_none(cache, key, &runs, Some(slow), Detachable);
            let answered = advance_until_done(&clock, &caller, Duration::from_secs(1)).await;
            let _ = release.send(());
            assert!(answered, "not answered at the soft timeout");
            assert_eq!(caller.await.unwrap().as_deref(), Some("old"));
            until_gate_free(cache, key).await;
            // A stored `None` is fresh; the old value is stale.
            assert_eq!(allowed.has(&key).await.unwrap(), stored, "key {key}");
        }
    }

    #[tokio::test]
    async fn a_background_refresh_that_fails_hands_its_failure_to_the_callers_waiting() {
        let clock = ManualClock::new();
        let m = manager(&clock, CacheOptions::new().timeout(Duration::from_secs(1)));
        let a = m.cache("a").unwrap();
        a.set(&1u64, &"old".to_owned()).await.unwrap();
        clock.advance(TTL + Duration::from_secs(1));
        // The first caller is answered stale at its soft timeout; its refresh goes on, and fails.
        let (release, slow) = tokio::sync::oneshot::channel::<()>();
        let failing = Box::pin(async move {
            let _ = slow.await;
            Err(CacheError::Timeout {
                cache: "a".into(),
                timeout: TTL,
            })
        });
        let runs = Arc::new(AtomicUsize::new(0));
        let first = spawn_call(std::slice::from_ref(&a), 1, &runs, failing, Detachable);
        assert!(advance_until_done(&clock, &first, Duration::from_secs(1)).await);
        assert_eq!(first.await.unwrap(), "old");
        // A caller with a longer soft timeout waits for that refresh at the gate...
        let patient = a.with_options(CacheOptions::new().timeout(Duration::from_secs(3600)));
        let second = Arc::new(AtomicUsize::new(0));
        let waiter = spawn_call(&[patient], 1, &second, answer("second"), Attached);
        until_waiting(&a, 1, 1).await;
        // ...and takes its failure: the stale value, without running the function again.
        let _ = release.send(());
        assert_eq!(waiter.await.unwrap(), "old");
        assert_eq!(second.load(SeqCst), 0);
    }

    /// The future of a function returning `Result<String, String>`, whose error the callers
    /// waiting for it cannot take (they run the function themselves).
    type ResultBody = std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

    /// `f(key)` of `Result<String, String>` cached in `cache`, in a task of its own, counted in
    /// `runs` when called.
    fn spawn_result(
        cache: &Cache,
        key: u64,
        runs: &Arc<AtomicUsize>,
        body: ResultBody,
    ) -> JoinHandle<Result<String, String>> {
        let (cache, runs) = (cache.clone(), runs.clone());
        tokio::spawn(async move {
            let engines = engines(std::slice::from_ref(&cache));
            let keys = keys(&engines, key);
            let body = || {
                runs.fetch_add(1, SeqCst);
                body
            };
            let shape = ResultShape::<String, String>::default();
            cached_call(
                shape,
                &engines,
                &keys,
                FirstL1::Unread,
                cache_ttl,
                body,
                Attached,
            )
            .await
        })
    }

    /// A function failing once `release` is sent.
    fn fail_after(release: tokio::sync::oneshot::Receiver<()>) -> ResultBody {
        Box::pin(async move {
            let _ = release.await;
            Err("boom".to_owned())
        })
    }

    fn ok(value: &str) -> ResultBody {
        let value = value.to_owned();
        Box::pin(async move { Ok(value) })
    }

    #[tokio::test]
    async fn a_caller_whose_leader_failed_reads_what_was_stored_meanwhile_unless_forced() {
        let m = manager(&ManualClock::new(), CacheOptions::new());
        let a = m.cache("a").unwrap();
        let forced = a.with_options(CacheOptions::new().force_fresh(true));
        // Key 1 holds a fresh value, key 2 is stored while the caller waits; each caller
        // waits for a leader that fails, then holds the gate itself.
        a.set(&1u64, &"old".to_owned()).await.unwrap();
        for (caller, key, expected, ran) in [(&forced, 1, "second", 1), (&a, 2, "meanwhile", 0)] {
            let (release, slow) = tokio::sync::oneshot::channel();
            let runs = Arc::new(AtomicUsize::new(0));
            let leader = spawn_result(caller, key, &runs, fail_after(slow));
            until_runs(&runs, 1).await;
            let second = Arc::new(AtomicUsize::new(0));
            let waiter = spawn_result(caller, key, &second, ok("second"));
            until_waiting(caller, key, 1).await;
            if key == 2 {
                a.set(&key, &"meanwhile".to_owned()).await.unwrap();
            }
            let _ = release.send(());
            assert_eq!(leader.await.unwrap(), Err("boom".to_owned()));
            assert_eq!(waiter.await.unwrap().as_deref(), Ok(expected), "key {key}");
            assert_eq!(second.load(SeqCst), ran, "key {key}");
        }
    }

    /// Under `Fail`, a cold key's read that fails fails the call before its function runs,
    /// and the callers that waited for it at the gate take that failure: the L2 is read
    /// once in all, not again by each waiter, one after another. A waiter whose type cannot
    /// carry the error runs its function, as when a leader's function failed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_callers_waiting_for_a_failed_read_take_its_failure_without_reading_again() {
        use crate::testing::{Fault, FaultRule, Operation};
        const CALLERS: usize = 8;
        // Refused, the breaker stays closed; unavailable, with the breaker off: either way
        // nothing but the hand-over keeps the waiters off the L2.
        for (fault, breaker) in [(Fault::Refuse, None), (Fault::Fail, Some(Duration::ZERO))] {
            let (m, down, held) = failing_reads(FaultRule::on(Operation::Get, fault), breaker);
            let a = m.cache("a").unwrap();
            let runs = Arc::new(AtomicUsize::new(0));
            let callers: Vec<_> = (0..CALLERS)
                .map(|_| {
                    let (a, runs) = (a.clone(), runs.clone());
                    tokio::spawn(async move {
                        let factory = || async move {
                            runs.fetch_add(1, SeqCst);
                            Ok::<u64, CacheError>(1)
                        };
                        a.try_get_or_set(&1u64, factory).await
                    })
                })
                .collect();
            until_reached(&held).await;
            // Its function answers once the others are done (the value it hands over on
            // release would otherwise be what a late waker takes).
            let (done, others_done) = tokio::sync::oneshot::channel::<()>();
            let other_runs = Arc::new(AtomicUsize::new(0));
            let other_body: ResultBody = Box::pin(async move {
                let _ = others_done.await;
                Ok("other".to_owned())
            });
            let other = spawn_result(&a, 1, &other_runs, other_body);
            until_waiting(&a, 1, CALLERS).await;
            held.release();
            for caller in callers {
                let r = tokio::time::timeout(Duration::from_secs(10), caller).await;
                let r = r
                    .unwrap_or_else(|_| panic!("a waiter never answered"))
                    .unwrap();
                assert!(matches!(r, Err(CacheError::Tier { .. })), "{r:?}");
            }
            assert_eq!(runs.load(SeqCst), 0, "no factory ran");
            let _ = done.send(());
            assert_eq!(other.await.unwrap().as_deref(), Ok("other"));
            assert_eq!(other_runs.load(SeqCst), 1, "it ran its function");
            assert_eq!(
                down.injected(),
                2,
                "the L2 was read once for the fallible callers, once by the other"
            );
        }
    }

    /// A manager whose store's L2 fails the reads `rule` catches (`breaker`: the circuit
    /// breaker's setting), under a `Fail` handler; the first read waits for the latch (its
    /// fault decided before it waits). The inner tier counts the reads that reached it.
    fn failing_reads(
        rule: crate::testing::FaultRule,
        breaker: Option<Duration>,
    ) -> (
        CacheManager,
        Arc<crate::testing::FaultyTier>,
        crate::testing::Latch,
    ) {
        use crate::testing::{Fault, FaultRule, FaultyTier, Latch, Operation};
        use crate::{CacheFault, FaultAction};
        let down = FaultyTier::new(FaultyTier::blackhole());
        down.inject(rule);
        let held = Latch::new();
        let l2 = FaultyTier::new(down.clone());
        l2.inject(FaultRule::on(Operation::Get, Fault::HoldRequest(held.clone())).times(1));
        let mut store = StoreBuilder::new().l1(MapTier::new()).l2(l2);
        if let Some(breaker) = breaker {
            store = store.l2_circuit_breaker(breaker);
        }
        let m = CacheManager::builder()
            .store("main", store)
            .error_handler(|_: &CacheFault<'_>| FaultAction::Fail)
            .build()
            .unwrap();
        (m, down, held)
    }

    /// A caller waiting at the gate of a call whose read failed early, that would not have
    /// made that read (`force_fresh`, `skip_l2_read`), is not failed by it: it takes the
    /// gate and runs (or finds the value stored meanwhile), reading no L2.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_that_reads_no_l2_is_not_failed_by_its_holders_failed_read() {
        let skipping = [
            CacheOptions::new().force_fresh(true),
            CacheOptions::new().skip_l2_read(true),
        ];
        for view in skipping {
            let (m, down, held) = failing_reads(refused_reads(), None);
            let a = m.cache("a").unwrap();
            let runs = Arc::new(AtomicUsize::new(0));
            let call = |cache: Cache| {
                let runs = runs.clone();
                tokio::spawn(async move {
                    let factory = || async move {
                        runs.fetch_add(1, SeqCst);
                        Ok::<u64, CacheError>(1)
                    };
                    cache.try_get_or_set(&1u64, factory).await
                })
            };
            let leader = call(a.clone());
            until_reached(&held).await;
            let waiter = call(a.with_options(view));
            until_waiting(&a, 1, 1).await;
            held.release();
            let r = leader.await.unwrap();
            assert!(matches!(r, Err(CacheError::Tier { .. })), "{r:?}");
            assert_eq!(waiter.await.unwrap().unwrap(), 1, "{view:?}");
            assert_eq!(runs.load(SeqCst), 1, "the waiter's factory ran ({view:?})");
            assert_eq!(down.injected(), 1, "only the holder read the L2 ({view:?})");
        }
    }

    /// Every L2 read refused.
    fn refused_reads() -> crate::testing::FaultRule {
        use crate::testing::{Fault, FaultRule, Operation};
        FaultRule::on(Operation::Get, Fault::Refuse)
    }

    /// A batch load whose factory counts its runs in `ran`.
    fn counted_load(
        ran: &Arc<AtomicUsize>,
    ) -> impl FnOnce(Vec<u64>) -> std::future::Ready<Result<HashMap<u64, u64>, CacheError>> {
        let ran = ran.clone();
        move |keys| {
            ran.fetch_add(1, SeqCst);
            std::future::ready(Ok(keys.into_iter().map(|k| (k, k)).collect()))
        }
    }

    /// `try_get_or_set(1)` on `cache`, in a task of its own (the factory answers 1).
    fn spawn_one(cache: &Cache) -> tokio::task::JoinHandle<Result<u64, CacheError>> {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .try_get_or_set(&1u64, || async { Ok::<u64, CacheError>(1) })
                .await
        })
    }

    /// A batch whose own first read failed fails at once, before it waits at any gate (key
    /// 1's is held by a call still reading) or runs its factory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_whose_read_failed_fails_before_waiting_at_a_gate() {
        let (m, _, held) = failing_reads(refused_reads(), None);
        let a = m.cache("a").unwrap();
        let single = spawn_one(&a);
        until_reached(&held).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let batch = a.try_get_or_set_many(&[1u64, 2], counted_load(&ran));
        let r = tokio::time::timeout(Duration::from_secs(30), batch).await;
        let r = r.expect("the batch waited for the gate held by the call still reading");
        assert!(matches!(r, Err(CacheError::Tier { .. })), "{r:?}");
        held.release();
        let r = single.await.unwrap();
        assert!(matches!(r, Err(CacheError::Tier { .. })), "{r:?}");
        assert_eq!(ran.load(SeqCst), 0, "no factory ran");
    }

    /// A batch waiting at a gate whose holder's read failed early takes that failure, as a
    /// single call does, without reading the L2 again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_waiting_for_a_failed_read_takes_its_failure_without_reading_again() {
        use crate::testing::Operation::Get;
        // Only the first read fails: the call holding key 1's gate.
        let (m, down, held) = failing_reads(refused_reads().times(1), None);
        let a = m.cache("a").unwrap();
        let single = spawn_one(&a);
        until_reached(&held).await;
        // Its own first read finds nothing: it waits at key 1's gate.
        let ran = Arc::new(AtomicUsize::new(0));
        let batch = {
            let (a, ran) = (a.clone(), ran.clone());
            tokio::spawn(async move { a.try_get_or_set_many(&[1u64, 2], counted_load(&ran)).await })
        };
        until_waiting(&a, 1, 1).await;
        let read = down.completed(Get);
        held.release();
        let r = single.await.unwrap();
        assert!(matches!(r, Err(CacheError::Tier { .. })), "{r:?}");
        let r = batch.await.unwrap();
        assert!(matches!(r, Err(CacheError::Tier { .. })), "{r:?}");
        assert_eq!(down.completed(Get), read, "the batch read the L2 again");
        assert_eq!(ran.load(SeqCst), 0, "no factory ran");
    }

    #[tokio::test]
    async fn a_forced_call_waits_for_the_running_call_past_its_soft_timeout() {
        let clock = ManualClock::new();
        let (c, release, leader) = a_slow_call_while_b_holds(&clock).await;
        // Forced: it does not take the other cache's value past its soft timeout; it waits
        // for the value being made.
        let forced = [
            c[0].with_options(CacheOptions::new().force_fresh(true)),
            c[1].clone(),
        ];
        let second = Arc::new(AtomicUsize::new(0));
        let caller = spawn_call(&forced, 1, &second, answer("second"), Attached);
        for _ in 0..5 {
            clock.advance(Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = release.send(());
        assert_eq!(leader.await.unwrap(), "leader");
        assert_eq!(caller.await.unwrap(), "leader");
        assert_eq!(second.load(SeqCst), 0);
    }

    /// A function failing with `Timeout`.
    fn failing() -> Body {
        Box::pin(async {
            Err(CacheError::Timeout {
                cache: "a".into(),
                timeout: TTL,
            })
        })
    }

    /// A stale value stored back after a failure (`grace_backoff`) is fresh for the backoff
    /// with no eager refresh point (engine.rs, `prepare_write`'s `Lifetime::Backoff` arm): the
    /// function is not called again before the backoff ends, however far into it.
    #[tokio::test]
    async fn a_value_stored_back_for_a_grace_backoff_is_not_refreshed_early() {
        let clock = ManualClock::new();
        let backoff = Duration::from_secs(10);
        let options = CacheOptions::new()
            .eager_refresh(0.5)
            .grace_backoff(backoff);
        let m = manager(&clock, options);
        let c = caches(&m, &["a"]);
        c[0].set(&1u64, &"old".to_owned()).await.unwrap();
        clock.advance(TTL + Duration::from_secs(1));
        let runs = AtomicUsize::new(0);
        assert_eq!(call_body(&c, 1, &runs, failing(), Attached).await, "old");
        assert_eq!(runs.load(SeqCst), 1);
        // Past half the backoff (where a refresh point at the TTL's ratio would fall): a
        // fresh hit, which no call refreshes.
        clock.advance(backoff * 3 / 4);
        assert_eq!(call(&c, 1, &runs, "new", Detachable).await, "old");
        assert_eq!(runs.load(SeqCst), 1, "refreshed within the backoff");
        // Past the backoff: stale, so the function runs again.
        clock.advance(backoff / 2);
        assert_eq!(call(&c, 1, &runs, "new", Attached).await, "new");
        assert_eq!(runs.load(SeqCst), 2);
    }

    /// A function's value the unreachable L2 missed leaves this instance's L1 holding what
    /// the L2 does not: it is owed to the L2 (engine.rs, `settle_write`'s `(Missed, Fill)`
    /// arm), and once the L2 is back this instance lets go of its L1, which then reads the
    /// L2 again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fill_the_l2_missed_leaves_the_l1_once_the_l2_is_back() {
        use crate::testing::{Fault, FaultRule, FaultyTier, Operation};
        let clock = ManualClock::new();
        let l2 = FaultyTier::new(FaultyTier::blackhole());
        l2.inject(FaultRule::on(Operation::Set, Fault::Fail).times(1));
        let m = CacheManager::builder()
            .store("main", StoreBuilder::new().l1(MapTier::new()).l2(l2))
            .ttl(TTL)
            .manual_clock(clock.clone())
            .build()
            .unwrap();
        let c = caches(&m, &["a"]);
        let runs = AtomicUsize::new(0);
        assert_eq!(call(&c, 1, &runs, "filled", Attached).await, "filled");
        let store = m.store("main").unwrap();
        assert_eq!(
            store.pending_changes(),
            1,
            "nothing owed for the missed fill"
        );
        assert_eq!(held(&c[0], 1).await.as_deref(), Some("filled"), "from L1");
        // Past the circuit breaker's pause: the L2 is tried again, and answers.
        clock.advance(Duration::from_secs(10));
        until("the L1 kept the value the L2 never took", async || {
            held(&c[0], 1).await.is_none()
        })
        .await;
        assert_eq!(store.pending_changes(), 0);
    }
}
