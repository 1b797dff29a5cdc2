//! What every check shares: a prefix unique to the run, failing with the check's name,
//! waiting with a deadline, cleaning up.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::TierError;
use crate::store::{RemoteTier, Scope};

/// How long a check waits for something that must happen soon (an expiry) before failing.
pub(super) const DEADLINE: Duration = Duration::from_secs(15);

/// The TTL of keys a check writes but whose expiry it does not test: longer than any
/// check runs. With a minute, the checks that write and read back hundreds of keys
/// (`delete_many`, `clear_scopes`) took longer than that against an emulator on a loaded
/// machine, and keys written at their start expired before the last read: reported as
/// "survived"/"deleted" although the tier did nothing wrong.
pub(super) const LONG_TTL: Duration = Duration::from_secs(3600);

/// One check under way: its name, for failures, and its own key prefix.
pub(super) struct Check {
    name: &'static str,
    prefix: String,
}

impl Check {
    /// Starts the check `name` under a prefix no other run or check uses: the process id,
    /// the time and a counter.
    pub(super) fn new(name: &'static str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = format!(
            "cachet-conformance-{:x}-{nanos:x}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self { name, prefix }
    }

    /// The check's prefix: every key it writes starts with it and `:`.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A stored key under the check's prefix.
    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Fails the check.
    #[track_caller]
    pub(super) fn fail(&self, what: impl Display) -> ! {
        panic!("conformance check `{}` failed: {what}", self.name)
    }

    /// The value of a tier call that must succeed.
    #[track_caller]
    pub(super) fn ok<T>(&self, op: &str, result: Result<T, TierError>) -> T {
        match result {
            Ok(value) => value,
            Err(err) => self.fail(format_args!("{op} returned an error: {err}")),
        }
    }

    /// Fails unless `cond`.
    #[track_caller]
    pub(super) fn expect(&self, cond: bool, what: impl Display) {
        if !cond {
            self.fail(what);
        }
    }

    /// Polls `probe` until it answers true, failing with `what` after [`DEADLINE`].
    pub(super) async fn eventually<F, Fut>(&self, what: &str, mut probe: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if probe().await {
                return;
            }
            if started.elapsed() > DEADLINE {
                self.fail(format_args!("{what} (still not after {DEADLINE:?})"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Deletes everything the check wrote (called when it passed).
    pub(super) async fn clean(&self, tier: &dyn RemoteTier) {
        let scope = Scope::new(self.prefix.clone());
        self.ok("clear_scope (cleaning up)", tier.clear_scope(&scope).await);
    }
}

/// A byte pattern of `len` bytes that differs from its neighbours, so a truncated or
/// shifted read is noticed.
pub(super) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}
