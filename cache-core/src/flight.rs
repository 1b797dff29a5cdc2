//! Single flight: concurrent misses on one key run the function once.
//!
//! A miss takes the key's gate, looks again if need be, and only then runs the function;
//! callers that arrive meanwhile wait for the gate and then take the value the leader hands
//! over ([`FlightGuard::hand_over`]), never reading a tier again for it: the entry may
//! already be gone (evicted by a flood larger than the L1, or never written to a skipped
//! L2). A leader whose function returned an error hands that failure over the same way
//! ([`FlightGuard::hand_failure`]): the callers that waited for it do not each run the
//! function again, one after another, against whatever just failed (a stampede in slow
//! motion); what a waiter makes of a failure is the caller's (`invoke.rs`). The gate is
//! released by a guard's `Drop`, so a leader that panics or whose future is dropped hands
//! over to the next waiter, which looks again and, finding nothing, runs the function
//! itself.
//! Plain fns wait through [`crate::blocking::run`], so they share these gates with async
//! callers: a plain fn and an async fn on one cache key also run once.
//!
//! Looking again costs an L2 read, so a caller looks again only if a gate of its key's
//! stripe was released since it took its [`Ticket`] (see [`Flights::ticket`]).

use std::any::Any;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// How many release counters a store keeps; keys sharing one only cost each other an
/// extra look.
const STRIPES: usize = 64;

/// The gates of one store, by stored key, and its release counters.
#[derive(Default)]
pub(crate) struct Flights {
    /// Shared with the guards of detached refreshes, which outlive the borrow of a call.
    shared: Arc<Shared>,
}

struct Shared {
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    /// Releases so far, per stripe of keys (by [`stripe_of`]), bumped before each release.
    released: [AtomicU64; STRIPES],
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            gates: Mutex::default(),
            released: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Which release counter `key` shares. Any hash fixed for the process will do.
fn stripe_of(key: &str) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    // The remainder is below `STRIPES`, so it fits a usize.
    (hasher.finish() % STRIPES as u64) as usize
}

/// A key's stripe and its release count before a caller's first look.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    stripe: usize,
    seen: u64,
}

#[derive(Default)]
struct Gate {
    /// Who holds the gate, if anyone.
    held: Mutex<Option<Holder>>,
    released: Notify,
    /// What the last holder handed over, stamped with its stripe's release count after
    /// that release: a caller whose ticket is older missed it on its first look.
    handed: Mutex<Option<(u64, Outcome)>>,
}

/// A value a leader hands to the callers that waited for it.
pub(crate) type Handed = Arc<dyn Any + Send + Sync>;

/// What a leader hands over.
#[derive(Clone)]
enum Outcome {
    /// Its function's value.
    Value(Handed),
    /// Its function returned an error: a copy of it, when the call's shape can share it.
    Failed(Option<Handed>),
}

/// What a caller gets at the gate: the gate itself, or the value its holder handed over.
pub(crate) enum Entered<'a> {
    /// This caller holds the gate: it looks again if need be, then runs the function.
    Leader(FlightGuard<'a>),
    /// The holder's value, computed since this caller's first look.
    Handed(Handed),
    /// The holder's function failed since this caller's first look (its error, when the
    /// holder could share it).
    Failed(Option<Handed>),
}

/// Who holds a gate: the tokio task, or the thread when no task is running. A holder that
/// asks for its own gate again (a cached function calling a cached call on its own key) is
/// let through instead of waiting for itself forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
    /// Handed to a background refresh that has not started yet: nobody passes.
    Detached,
}

impl Holder {
    fn current() -> Self {
        tokio::task::try_id()
            .map_or_else(|| Holder::Thread(std::thread::current().id()), Holder::Task)
    }
}

enum Take {
    Taken,
    AlreadyOurs,
    Busy,
}

/// Cleans up after a caller whose wait for a gate was cancelled.
struct Waiting<'a> {
    flights: &'a Flights,
    key: &'a str,
    gate: &'a Arc<Gate>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // The map's reference and the waiter's own.
        self.flights.forget_if_unused(self.key, self.gate, 1);
    }
}

/// Held while one caller computes a key's value.
pub(crate) struct FlightGuard<'a> {
    flights: &'a Flights,
    key: String,
    gate: Arc<Gate>,
    /// Taken before the caller's first look; its stripe is bumped on release.
    ticket: Ticket,
    /// False for a re-entrant guard: the outer guard of the same holder releases the gate.
    releases: bool,
    /// What to hand to the waiters on release.
    handing: Option<Outcome>,
}

/// Locks ignoring poison: no user code runs while these locks are held, so a poisoned lock
/// still guards consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Gate {
    /// What a holder handed over after `ticket` was taken, if anything.
    fn handed_since(&self, ticket: Ticket) -> Option<Outcome> {
        match &*lock(&self.handed) {
            Some((stamp, value)) if *stamp > ticket.seen => Some(value.clone()),
            _ => None,
        }
    }

    fn try_take(&self, me: Holder) -> Take {
        let mut held = lock(&self.held);
        match *held {
            None => {
                *held = Some(me);
                Take::Taken
            }
            Some(holder) if holder == me => Take::AlreadyOurs,
            Some(_) => Take::Busy,
        }
    }
}

impl Flights {
    /// Taken before the first look for `key`, and handed to [`Flights::lock`]; the guard's
    /// [`FlightGuard::look_again`] then says whether that look may be out of date.
    ///
    /// Why an unchanged stripe means the first look saw everything a holder stored: a
    /// holder stores before it releases, and bumps its stripe before it frees the gate
    /// (and so before waking waiters). A caller that waited for a holder takes the gate
    /// after that bump, so it sees the stripe moved and looks again. A caller that never
    /// waited but missed a whole store-and-release between its first look and the gate
    /// also sees the bump: the release came after the ticket (else the acquire load of the
    /// ticket saw the bump, and the store before it, in time for the first look) and
    /// before this caller took the gate. Other keys of the stripe only cost an extra look.
    /// Not covered, as before the second look only narrowed it: a `set` that takes no
    /// gate, or another process (the distributed lock looks again itself).
    pub(crate) fn ticket(&self, key: &str) -> Ticket {
        let stripe = stripe_of(key);
        Ticket {
            stripe,
            seen: self.shared.released[stripe].load(Ordering::Acquire),
        }
    }

    fn gate(&self, key: &str) -> Arc<Gate> {
        let mut gates = lock(&self.shared.gates);
        if let Some(gate) = gates.get(key) {
            return gate.clone();
        }
        let gate = Arc::new(Gate::default());
        gates.insert(key.to_owned(), gate.clone());
        gate
    }

    /// Waits for `key`'s gate without blocking the thread. `ticket` is `key`'s, taken
    /// before the caller's first look.
    pub(crate) async fn lock(&self, key: &str, ticket: Ticket) -> FlightGuard<'_> {
        match self.wait(key, ticket, false).await {
            Entered::Leader(guard) => guard,
            // Not asked for.
            Entered::Handed(_) | Entered::Failed(_) => {
                unreachable!("an outcome handed over to a caller that took none")
            }
        }
    }

    /// Waits for `key`'s gate, or for the value its holder hands over: a value handed over
    /// since `ticket` (taken before the caller's first look) is one the first look missed.
    pub(crate) async fn enter(&self, key: &str, ticket: Ticket) -> Entered<'_> {
        self.wait(key, ticket, true).await
    }

    async fn wait(&self, key: &str, ticket: Ticket, take_handed: bool) -> Entered<'_> {
        debug_assert_eq!(ticket.stripe, stripe_of(key), "a ticket for another key");
        let me = Holder::current();
        let gate = self.gate(key);
        // If this future is dropped while waiting, the gate must not outlive its last user.
        let waiting = Waiting {
            flights: self,
            key,
            gate: &gate,
        };
        let releases = loop {
            // Register for the wake-up before trying, so a release in between is not missed.
            let notified = gate.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if take_handed {
                if let Some(outcome) = gate.handed_since(ticket) {
                    drop(waiting);
                    return match outcome {
                        Outcome::Value(value) => Entered::Handed(value),
                        Outcome::Failed(error) => Entered::Failed(error),
                    };
                }
            }
            match gate.try_take(me) {
                Take::Taken => break true,
                Take::AlreadyOurs => break false,
                Take::Busy => notified.await,
            }
        };
        std::mem::forget(waiting);
        Entered::Leader(FlightGuard {
            flights: self,
            key: key.to_owned(),
            gate,
            ticket,
            releases,
            handing: None,
        })
    }

    /// Takes `key`'s gate if it is free (or already ours), without waiting.
    pub(crate) fn try_lock(&self, key: &str) -> Option<FlightGuard<'_>> {
        let ticket = self.ticket(key);
        let gate = self.gate(key);
        let releases = match gate.try_take(Holder::current()) {
            Take::Taken => true,
            Take::AlreadyOurs => false,
            Take::Busy => {
                self.forget_if_unused(key, &gate, 1);
                return None;
            }
        };
        Some(FlightGuard {
            flights: self,
            key: key.to_owned(),
            gate,
            ticket,
            releases,
            handing: None,
        })
    }

    /// Forgets `key`'s gate if nothing but the map and `our_refs` references refer to it
    /// and nobody holds it.
    fn forget_if_unused(&self, key: &str, gate: &Arc<Gate>, our_refs: usize) {
        let mut gates = lock(&self.shared.gates);
        if Arc::strong_count(gate) == 1 + our_refs && lock(&gate.held).is_none() {
            gates.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.shared.gates).len()
    }

    /// How many callers wait at `key`'s held gate now (the map and the holder hold the
    /// other two references).
    #[cfg(test)]
    pub(crate) fn waiting(&self, key: &str) -> usize {
        lock(&self.shared.gates)
            .get(key)
            .map_or(0, |gate| Arc::strong_count(gate).saturating_sub(2))
    }

    /// Another handle on the same gates and counters.
    fn share(&self) -> Flights {
        Flights {
            shared: self.shared.clone(),
        }
    }
}

impl FlightGuard<'_> {
    /// Whether the holder already held this gate (a cached call on its own key from
    /// inside the function): the outer guard releases it.
    pub(crate) fn is_reentrant(&self) -> bool {
        !self.releases
    }

    /// Whether a gate of this key's stripe was released since the ticket: only then may a
    /// holder have stored a value the first look did not see (see [`Flights::ticket`]).
    pub(crate) fn look_again(&self) -> bool {
        self.flights.shared.released[self.ticket.stripe].load(Ordering::Acquire) != self.ticket.seen
    }

    /// Whether anyone else is at this gate now (waiting, or about to): only then is a value
    /// worth handing over.
    fn has_company(&self) -> bool {
        // The map's reference and this guard's.
        Arc::strong_count(&self.gate) > 2
    }

    /// Hands `value` to the callers waiting at this gate when it is released, so they
    /// need not read a tier for it. `value` is made only if someone waits.
    pub(crate) fn hand_over(&mut self, value: impl FnOnce() -> Handed) {
        if self.releases && self.has_company() {
            self.handing = Some(Outcome::Value(value()));
        }
    }

    /// Tells the callers waiting at this gate, when it is released, that the function
    /// failed, so they need not each run it again; `error` (made only if someone waits)
    /// is the error they may take, when the call can share it.
    pub(crate) fn hand_failure(&mut self, error: impl FnOnce() -> Option<Handed>) {
        if self.releases && self.has_company() {
            self.handing = Some(Outcome::Failed(error()));
        }
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        release(
            self.flights,
            &self.key,
            &self.gate,
            self.ticket.stripe,
            self.releases,
            self.handing.take(),
        );
    }
}

fn release(
    flights: &Flights,
    key: &str,
    gate: &Arc<Gate>,
    stripe: usize,
    releases: bool,
    handing: Option<Outcome>,
) {
    if releases {
        // Bumped before the gate is free: whoever takes it next (a waiter, or a caller that
        // never waited) takes it after the bump, so its `look_again` sees it.
        let stamp = flights.shared.released[stripe].fetch_add(1, Ordering::AcqRel) + 1;
        // A holder without a value clears the last one: it may be older than a change
        // this holder saw (its callers look again instead).
        *lock(&gate.handed) = handing.map(|value| (stamp, value));
        *lock(&gate.held) = None;
        gate.released.notify_waiters();
    }
    // Only the map and this guard refer to the gate: nobody waits, so forget it.
    flights.forget_if_unused(key, gate, 1);
}

/// A gate handed over to a refresh running in the background (a soft timeout, an eager
/// refresh): released when the refresh ends, not when the caller returns.
pub(crate) struct DetachedFlight {
    flights: Flights,
    key: String,
    gate: Arc<Gate>,
    stripe: usize,
    releases: bool,
    handing: Option<Outcome>,
}

impl FlightGuard<'_> {
    /// Hands the gate over to a background refresh. Until the refresh [`adopt`]s it, nobody
    /// passes it, not even this guard's holder calling again.
    ///
    /// [`adopt`]: DetachedFlight::adopt
    pub(crate) fn detach(mut self) -> DetachedFlight {
        if self.releases {
            *lock(&self.gate.held) = Some(Holder::Detached);
        }
        let detached = DetachedFlight {
            flights: self.flights.share(),
            key: self.key.clone(),
            gate: self.gate.clone(),
            stripe: self.ticket.stripe,
            releases: self.releases,
            handing: None,
        };
        // Dropped without releasing; the detached guard's reference keeps the gate mapped.
        self.releases = false;
        detached
    }
}

impl DetachedFlight {
    /// Makes the running task (or thread) the holder, so the refresh's own cached calls on
    /// its key pass the gate instead of waiting for themselves.
    pub(crate) fn adopt(&self) {
        if self.releases {
            *lock(&self.gate.held) = Some(Holder::current());
        }
    }

    /// [`FlightGuard::hand_over`], for the refresh's value.
    pub(crate) fn hand_over(&mut self, value: impl FnOnce() -> Handed) {
        if self.has_company() {
            self.handing = Some(Outcome::Value(value()));
        }
    }

    /// [`FlightGuard::hand_failure`], for the refresh's failure.
    pub(crate) fn hand_failure(&mut self, error: impl FnOnce() -> Option<Handed>) {
        if self.has_company() {
            self.handing = Some(Outcome::Failed(error()));
        }
    }

    fn has_company(&self) -> bool {
        // The map's reference and this guard's.
        self.releases && Arc::strong_count(&self.gate) > 2
    }
}

impl Drop for DetachedFlight {
    fn drop(&mut self) {
        release(
            &self.flights,
            &self.key,
            &self.gate,
            self.stripe,
            self.releases,
            self.handing.take(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holder_at_a_time_and_gates_are_forgotten() {
        let flights = Arc::new(Flights::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (flights, inside) = (flights.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = flights.lock("k", flights.ticket("k")).await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_holder_hands_over() {
        let flights = Arc::new(Flights::default());
        let f2 = flights.clone();
        let holder = tokio::spawn(async move {
            let _g = f2.lock("k", f2.ticket("k")).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let f3 = flights.clone();
        let waiter = tokio::spawn(async move {
            let _g = f3.lock("k", f3.ticket("k")).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        holder.abort();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    /// Gate "k" held by a caller on another thread, until [`HeldElsewhere::release`].
    struct HeldElsewhere {
        release: std::sync::mpsc::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    }

    impl HeldElsewhere {
        /// Returns once the other thread holds the gate; on release it runs `finish` on its
        /// guard, then drops the guard.
        fn hold(
            flights: &Arc<Flights>,
            finish: impl FnOnce(&mut FlightGuard<'_>) + Send + 'static,
        ) -> Self {
            let (held_tx, held_rx) = std::sync::mpsc::channel();
            let (release, release_rx) = std::sync::mpsc::channel::<()>();
            let flights = flights.clone();
            let thread = std::thread::spawn(move || {
                crate::blocking::run(async {
                    let mut guard = flights.lock("k", flights.ticket("k")).await;
                    held_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    finish(&mut guard);
                })
            });
            held_rx.recv().unwrap();
            Self { release, thread }
        }

        /// Lets the holder finish and waits until its guard is dropped.
        fn release(self) {
            self.release.send(()).unwrap();
            self.thread.join().unwrap();
        }
    }

    #[test]
    fn a_waiter_dropped_after_the_release_leaves_no_gate_behind() {
        let flights = Arc::new(Flights::default());
        let holder = HeldElsewhere::hold(&flights, |_| {});
        {
            let mut waiting = Box::pin(flights.lock("k", flights.ticket("k")));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(waiting.as_mut().poll(&mut cx).is_pending());
            holder.release();
            // Woken by the release, but dropped before it runs again.
        }
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn the_holder_passes_its_own_gate_again() {
        let flights = Flights::default();
        let outer = flights.lock("k", flights.ticket("k")).await;
        let inner = tokio::time::timeout(
            Duration::from_secs(5),
            flights.lock("k", flights.ticket("k")),
        )
        .await
        .expect("no self-deadlock");
        drop(inner);
        assert!(
            lock(&outer.gate.held).is_some(),
            "the inner guard does not release the outer one's gate"
        );
        drop(outer);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_detached_gate_is_held_until_its_refresh_ends() {
        let flights = Flights::default();
        let guard = flights.lock("k", flights.ticket("k")).await;
        assert!(flights.try_lock("k").is_some(), "re-entrant for its holder");
        let detached = guard.detach();
        assert!(
            flights.try_lock("k").is_none(),
            "not even the former holder passes a detached gate"
        );
        let refresh = tokio::spawn(async move {
            detached.adopt();
            let inner = detached.flights.share();
            // The refresh's own calls on its key pass.
            let passes = inner.try_lock("k").is_some();
            drop(detached);
            passes
        });
        assert!(refresh.await.unwrap());
        assert!(
            flights.try_lock("k").is_some(),
            "released when the refresh ended"
        );
        assert_eq!(flights.len(), 0);
    }

    /// A key other than `key` whose stripe is (or is not) `key`'s.
    fn neighbour(key: &str, same_stripe: bool) -> String {
        (0..)
            .map(|i| format!("other-{i}"))
            .find(|k| (stripe_of(k) == stripe_of(key)) == same_stripe)
            .expect("64 stripes")
    }

    #[tokio::test]
    async fn without_a_release_since_the_ticket_there_is_no_second_look() {
        let flights = Flights::default();
        let ticket = flights.ticket("k");
        // Holders of keys on other stripes don't count.
        drop(flights.try_lock(&neighbour("k", false)));
        let guard = flights.lock("k", ticket).await;
        assert!(!guard.look_again());
    }

    #[tokio::test]
    async fn a_release_on_the_keys_stripe_since_the_ticket_means_a_second_look() {
        let flights = Flights::default();
        for other in ["k".to_owned(), neighbour("k", true)] {
            let ticket = flights.ticket("k");
            // A whole store-and-release between the first look and the gate, uncontended.
            let holder = flights.lock(&other, flights.ticket(&other)).await;
            drop(holder);
            let guard = flights.lock("k", ticket).await;
            assert!(guard.look_again(), "after a release of {other:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_looks_again_after_its_holder_releases() {
        let flights = Arc::new(Flights::default());
        let holder = flights.lock("k", flights.ticket("k")).await;
        let f2 = flights.clone();
        let waiter = tokio::spawn(async move { f2.lock("k", f2.ticket("k")).await.look_again() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(holder);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_detached_gate_counts_as_released_when_its_refresh_ends() {
        let flights = Flights::default();
        let ticket = flights.ticket("k");
        let detached = flights.lock("k", flights.ticket("k")).await.detach();
        assert!(flights.try_lock("k").is_none());
        drop(detached);
        assert!(flights.lock("k", ticket).await.look_again());
    }

    #[tokio::test]
    async fn a_reentrant_guard_does_not_count_as_a_release() {
        let flights = Flights::default();
        let ticket = flights.ticket("k");
        let outer = flights.lock("k", ticket).await;
        let inner = flights.lock("k", flights.ticket("k")).await;
        assert!(inner.is_reentrant());
        drop(inner);
        assert!(!outer.look_again(), "the inner guard released nothing");
        drop(outer);
        assert_eq!(
            flights.ticket("k").seen,
            ticket.seen + 1,
            "the outer guard's release counts once"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_is_handed_to_the_callers_that_waited_for_it() {
        let flights = Arc::new(Flights::default());
        let mut holder = flights.lock("k", flights.ticket("k")).await;
        let f2 = flights.clone();
        let waiter = tokio::spawn(async move {
            matches!(f2.enter("k", f2.ticket("k")).await, Entered::Failed(None))
        });
        // The waiter holds a reference to the gate once it waits at it.
        while !holder.has_company() {
            tokio::task::yield_now().await;
        }
        holder.hand_failure(|| None);
        drop(holder);
        assert!(waiter.await.unwrap(), "the waiter took the failure");
        // A caller that arrives after the failure runs the function itself.
        assert!(matches!(
            flights.enter("k", flights.ticket("k")).await,
            Entered::Leader(_)
        ));
    }

    #[test]
    fn blocking_and_async_share_gates() {
        let flights = Arc::new(Flights::default());
        let g = crate::blocking::run(flights.lock("k", flights.ticket("k")));
        let f2 = flights.clone();
        let t =
            std::thread::spawn(move || drop(crate::blocking::run(f2.lock("k", f2.ticket("k")))));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!t.is_finished());
        drop(g);
        t.join().unwrap();
    }

    #[tokio::test]
    async fn a_value_handed_over_before_the_ticket_is_not_taken() {
        let flights = Flights::default();
        // Another reference (a caller about to wait) keeps the gate, and what its holder
        // hands over, mapped after the release.
        let kept = flights.gate("k");
        let mut leader = flights.lock("k", flights.ticket("k")).await;
        leader.hand_over(|| Arc::new(1u32));
        drop(leader);
        // Taken after that release: this caller's first look saw what the holder stored,
        // so the handed value is no news to it, and it may be older than what it saw.
        let ticket = flights.ticket("k");
        match flights.enter("k", ticket).await {
            Entered::Leader(guard) => {
                drop(kept);
                drop(guard);
            }
            Entered::Handed(_) | Entered::Failed(_) => {
                panic!("an outcome handed over before the ticket was taken")
            }
        }
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn a_released_gate_stays_mapped_while_a_waiter_takes_it() {
        let flights = Arc::new(Flights::default());
        let holder = HeldElsewhere::hold(&flights, |_| {});
        let mut waiting = Box::pin(flights.lock("k", flights.ticket("k")));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        holder.release();
        let std::task::Poll::Ready(guard) = waiting.as_mut().poll(&mut cx) else {
            panic!("the woken waiter takes the released gate");
        };
        // A caller on another thread now finds the gate held, not a fresh gate of its own.
        let newcomer_got_in =
            std::thread::scope(|s| s.spawn(|| flights.try_lock("k").is_some()).join().unwrap());
        assert!(!newcomer_got_in, "two holders of one key at once");
        drop(guard);
        drop(waiting);
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn a_waiter_takes_the_value_its_holder_hands_over() {
        let flights = Arc::new(Flights::default());
        let holder = HeldElsewhere::hold(&flights, |guard| guard.hand_over(|| Arc::new(7u32)));
        let ticket = flights.ticket("k");
        let mut waiting = Box::pin(flights.enter("k", ticket));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        holder.release();
        match waiting.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Entered::Handed(value)) => {
                assert_eq!(value.downcast_ref::<u32>(), Some(&7));
            }
            _ => panic!("the waiter runs the function again instead of taking the value"),
        }
        drop(waiting);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_value_is_made_only_when_someone_waits() {
        let flights = Flights::default();
        let mut guard = flights.lock("k", flights.ticket("k")).await;
        let made = AtomicUsize::new(0);
        guard.hand_over(|| {
            made.fetch_add(1, Ordering::SeqCst);
            Arc::new(1u32)
        });
        guard.hand_failure(|| {
            made.fetch_add(1, Ordering::SeqCst);
            None
        });
        let mut refresh = guard.detach();
        refresh.hand_over(|| {
            made.fetch_add(1, Ordering::SeqCst);
            Arc::new(2u32)
        });
        drop(refresh);
        assert_eq!(made.load(Ordering::SeqCst), 0, "a clone nobody takes");
        assert_eq!(flights.len(), 0);
    }

    /// A gate detached to a background refresh, with a caller waiting at it; `finish`
    /// ends the refresh and returns what the caller entered with.
    fn wait_for_a_detached_refresh(finish: impl FnOnce(&mut DetachedFlight)) -> Option<Outcome> {
        let flights = Flights::default();
        let guard = crate::blocking::run(flights.lock("k", flights.ticket("k")));
        let mut detached = guard.detach();
        let ticket = flights.ticket("k");
        let mut waiting = Box::pin(flights.enter("k", ticket));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        finish(&mut detached);
        drop(detached);
        let std::task::Poll::Ready(entered) = waiting.as_mut().poll(&mut cx) else {
            panic!("the refresh's end releases the gate");
        };
        match entered {
            Entered::Leader(_) => None,
            Entered::Handed(value) => Some(Outcome::Value(value)),
            Entered::Failed(error) => Some(Outcome::Failed(error)),
        }
    }

    #[test]
    fn a_background_refresh_hands_its_value_to_the_waiting_callers() {
        match wait_for_a_detached_refresh(|refresh| refresh.hand_over(|| Arc::new(9u32))) {
            Some(Outcome::Value(value)) => assert_eq!(value.downcast_ref::<u32>(), Some(&9)),
            _ => panic!("the refresh's value is not handed over"),
        }
    }

    #[test]
    fn a_background_refresh_hands_its_failure_to_the_waiting_callers() {
        let error = wait_for_a_detached_refresh(|refresh| {
            refresh.hand_failure(|| Some(Arc::new("refused")));
        });
        match error {
            Some(Outcome::Failed(Some(error))) => {
                assert_eq!(error.downcast_ref::<&str>(), Some(&"refused"));
            }
            _ => panic!("the refresh's failure is not handed over"),
        }
    }
}
