//! Changes the L2 did not take, replayed when it is back (issue 16, fault 3).
//!
//! A write or delete that could not reach the L2 (it failed, or the circuit breaker was
//! open) leaves the L2 holding the old value, and — for a write, which is announced only
//! once the L2 has it — the other instances' L1 copies too. So the change is queued here:
//! as soon as the L2 answers again, the replay deletes the keys from the L2 (or clears the
//! scope, or deletes by tag) and announces them on the bus, so every instance reads the
//! key afresh. Values are not kept: the queue holds keys only, and is bounded.
//!
//! A cached function's value that the L2 missed (a fill) changes nothing the other
//! instances hold, but leaves this instance's L1 holding what the L2 does not: one
//! [`Pending::OwnL1`] in the queue clears this instance's L1 once the L2 is back, however
//! many fills were missed, so they never fill the queue.
//!
//! When more than [`MAX_PENDING_KEYS`] keys are waiting, the queue lets go of the keys
//! and keeps the scopes (caches, namespaces) they belong to: on recovery each such scope
//! is cleared in the L2 and on every instance. Past [`MAX_PENDING_SCOPES`] scopes, it
//! keeps only the fact that changes were lost: on recovery the other instances are told
//! to clear their L1 for the whole store.
//!
//! A change the L2 *refuses* on replay (it answered, with an error that is not a lost
//! connection: a command it rejects, a key an ACL forbids) would be refused again on every
//! attempt, so it is dropped — counted ([`Replay::dropped`]) and logged — and the changes
//! behind it go on; only an unreachable L2 holds the queue back.
//!
//! This module holds the queue; the store replays it (`named.rs`: on cachet's background
//! runtime, waiting on the store's clock — the circuit breaker's remaining pause, then
//! growing pauses — until the queue is empty or the store is gone).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::Scope;
use crate::timer::lock_ignoring_poison as lock;

/// How many keys may wait for the L2 before the queue keeps their scopes instead.
pub(crate) const MAX_PENDING_KEYS: usize = 10_000;
/// How many scopes may wait before the queue keeps only "something was lost".
pub(crate) const MAX_PENDING_SCOPES: usize = 64;
/// The first pause between two replay attempts when the breaker is closed.
pub(crate) const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest pause between two replay attempts.
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(5);

/// One change the L2 did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Delete these keys (of `scope`) from the L2, then announce them.
    Keys { scope: Scope, keys: Vec<String> },
    /// Clear this scope in the L2, then announce it.
    Scope(Scope),
    /// Delete the entries of `scope` carrying any of these tags, then announce them.
    Tags { scope: Scope, tag_keys: Vec<String> },
    /// Changes were lost track of: clear the store in the L2, and tell the other
    /// instances to clear their L1.
    Everything,
    /// Values this instance computed went into its L1 but not into the unreachable L2
    /// (fills): its L1 holds what the L2 does not, so it clears its own L1, which then
    /// refills from the L2. The other instances were never told of those values.
    OwnL1,
}

/// The queue of a store's pending changes.
#[derive(Default)]
pub(crate) struct Replay {
    queue: Mutex<Queue>,
    /// Changes the L2 refused on replay, dropped.
    dropped: AtomicU64,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    /// Keys held by `Pending::Keys` entries.
    keys: usize,
    /// Whether a replay task is scheduled.
    running: bool,
}

impl Queue {
    fn push(&mut self, change: Pending) {
        if matches!(self.pending.front(), Some(Pending::Everything)) {
            return; // everything will be invalidated anyway
        }
        match &change {
            // Keys are not deduplicated (a repeated key only costs a repeated delete), so
            // a push stays cheap however long the queue.
            Pending::Keys { keys, .. } => {
                self.keys += keys.len();
                self.pending.push_back(change);
            }
            _ if self.pending.contains(&change) => {}
            _ => self.pending.push_back(change),
        }
        if self.keys > MAX_PENDING_KEYS {
            self.collapse();
        }
    }

    /// Too many keys: keep their scopes instead; too many scopes: keep only `Everything`.
    fn collapse(&mut self) {
        let mut collapsed: VecDeque<Pending> = VecDeque::new();
        for change in self.pending.drain(..) {
            let change = match change {
                Pending::Keys { scope, .. } => Pending::Scope(scope),
                other => other,
            };
            if !collapsed.contains(&change) {
                collapsed.push_back(change);
            }
            if collapsed.len() > MAX_PENDING_SCOPES {
                break;
            }
        }
        self.pending.clear();
        self.keys = 0;
        self.pending = if collapsed.len() > MAX_PENDING_SCOPES {
            tracing::warn!(
                "cachet: too many changes held back from an unreachable L2; the other instances will clear their L1 for this store once it is back"
            );
            VecDeque::from([Pending::Everything])
        } else {
            collapsed
        };
    }
}

impl Replay {
    /// Queues `change`; `true` when the replay must be started (it was not running).
    pub(crate) fn push(&self, change: Pending) -> bool {
        let mut queue = lock(&self.queue);
        queue.push(change);
        !std::mem::replace(&mut queue.running, true)
    }

    /// The replay could not be started: the next change tries again.
    pub(crate) fn not_running(&self) {
        lock(&self.queue).running = false;
    }

    /// The first change waiting, if any.
    pub(crate) fn front(&self) -> Option<Pending> {
        lock(&self.queue).pending.front().cloned()
    }

    /// Drops the first change (done), unless the queue was collapsed meanwhile.
    pub(crate) fn done(&self, change: &Pending) {
        let mut queue = lock(&self.queue);
        if queue.pending.front() == Some(change) {
            if let Some(Pending::Keys { keys, .. }) = queue.pending.pop_front() {
                queue.keys = queue.keys.saturating_sub(keys.len());
            }
        }
    }

    /// Drops the first change, which the L2 refused (retrying would be refused again),
    /// counting it — unless the queue was collapsed meanwhile.
    pub(crate) fn refused(&self, change: &Pending) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.done(change);
    }

    /// How many changes the L2 refused on replay, dropped.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How many changes are waiting.
    pub(crate) fn len(&self) -> usize {
        lock(&self.queue).pending.len()
    }

    /// Ends the replay task if nothing is left; `false` when more came meanwhile.
    pub(crate) fn finish_if_empty(&self) -> bool {
        let mut queue = lock(&self.queue);
        if queue.pending.is_empty() {
            queue.running = false;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(scope: &str, n: usize) -> Pending {
        Pending::Keys {
            scope: Scope::new(scope),
            keys: (0..n).map(|i| format!("{scope}:{i}")).collect(),
        }
    }

    #[test]
    fn too_many_keys_collapse_into_their_scopes_then_into_everything() {
        let mut queue = Queue::default();
        queue.push(keys("app:users", 10));
        queue.push(Pending::Scope(Scope::new("app:posts")));
        queue.push(Pending::Scope(Scope::new("app:posts"))); // the same scope, once
        assert_eq!(queue.pending.len(), 2);
        queue.push(keys("app:orders", MAX_PENDING_KEYS));
        assert_eq!(
            Vec::from(queue.pending.clone()),
            [
                Pending::Scope(Scope::new("app:users")),
                Pending::Scope(Scope::new("app:posts")),
                Pending::Scope(Scope::new("app:orders")),
            ]
        );
        for i in 0..MAX_PENDING_SCOPES {
            queue.push(keys(&format!("app:c{i}"), MAX_PENDING_KEYS + 1));
        }
        assert_eq!(Vec::from(queue.pending.clone()), [Pending::Everything]);
        queue.push(keys("app:users", 1));
        assert_eq!(queue.pending.len(), 1, "everything covers later changes");
    }

    #[test]
    fn keys_are_kept_up_to_the_bound_and_scopes_up_to_theirs() {
        let mut queue = Queue::default();
        queue.push(keys("app:users", 3));
        assert_eq!(Vec::from(queue.pending.clone()), [keys("app:users", 3)]);
        queue.push(keys("app:posts", MAX_PENDING_KEYS - 3));
        assert_eq!(queue.keys, MAX_PENDING_KEYS, "exactly the bound: kept");
        assert!(matches!(queue.pending[1], Pending::Keys { .. }));
        queue.push(keys("app:users", 1));
        assert_eq!(
            Vec::from(queue.pending.clone()),
            [
                Pending::Scope(Scope::new("app:users")),
                Pending::Scope(Scope::new("app:posts")),
            ],
            "one key past the bound: scopes"
        );
        assert_eq!(queue.keys, 0);

        // Exactly MAX_PENDING_SCOPES scopes are kept as scopes; one more is everything.
        let mut queue = Queue::default();
        for i in 0..MAX_PENDING_SCOPES - 1 {
            queue.push(Pending::Scope(Scope::new(format!("app:c{i}"))));
        }
        queue.push(keys("app:last", MAX_PENDING_KEYS + 1));
        assert_eq!(queue.pending.len(), MAX_PENDING_SCOPES);
        assert_eq!(
            queue.pending.back(),
            Some(&Pending::Scope(Scope::new("app:last")))
        );
        queue.push(keys("app:more", MAX_PENDING_KEYS + 1));
        assert_eq!(Vec::from(queue.pending.clone()), [Pending::Everything]);
    }

    #[test]
    fn the_replay_task_is_started_once_until_it_finishes_or_fails_to_start() {
        let replay = Replay::default();
        assert_eq!((replay.len(), replay.dropped()), (0, 0));
        assert!(replay.finish_if_empty(), "nothing queued: done");
        assert!(replay.push(keys("app:users", 1)));
        assert!(!replay.push(keys("app:users", 1)), "already running");
        replay.not_running();
        assert!(
            replay.push(keys("app:posts", 1)),
            "a task that could not start is started by the next change"
        );
        assert!(!replay.finish_if_empty(), "changes are waiting");
        assert!(!replay.push(keys("app:posts", 1)), "still running");
        for _ in 0..4 {
            let change = replay.front().expect("four changes are waiting");
            replay.done(&change);
        }
        assert_eq!((replay.len(), lock(&replay.queue).keys), (0, 0));
        assert!(replay.finish_if_empty());
        assert!(replay.push(keys("app:users", 1)), "finished: started again");
    }

    #[test]
    fn a_refused_change_is_counted_and_dropped() {
        let replay = Replay::default();
        assert!(
            replay.push(keys("app:users", 2)),
            "the first push starts the replay"
        );
        assert!(!replay.push(Pending::Scope(Scope::new("app:posts"))));
        assert_eq!(replay.len(), 2);
        let first = replay.front().unwrap();
        replay.refused(&first);
        assert_eq!((replay.len(), replay.dropped()), (1, 1));
        assert_eq!(
            replay.front(),
            Some(Pending::Scope(Scope::new("app:posts")))
        );
        replay.refused(&first); // no longer in front: nothing to drop
        assert_eq!(replay.len(), 1);
        assert_eq!(lock(&replay.queue).keys, 0);
    }
}
