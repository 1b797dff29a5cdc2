//! The conformance suite every shared-tier (L2) driver passes: one set of checks, run by
//! each driver's tests through a small [`Fixture`], so Redis, the databases and any new
//! driver promise the same things (what Bentocache's driver test suite and Micronaut's
//! cache TCK do for theirs).
//!
//! A driver's test implements [`Fixture`] for a tier connected to a real server and
//! calls [`run_all`]; each check is also a public function, to run alone while working
//! on a driver. A check that fails panics with its name and what differed. Every check
//! writes under a prefix of its own, unique to the run (`cachet-conformance-…`), and
//! clears it when it passes, so runs in parallel on one server never collide.
//!
//! What is checked:
//!
//! | check | promise |
//! |---|---|
//! | [`get_set_overwrite`] | a value reads back as written; an overwrite replaces value and TTL |
//! | [`ttl_and_expiry`] | a value is a miss once its TTL passed (even before any cleanup); sub-millisecond TTLs expire; a write after expiry works |
//! | [`delete_many`] | exactly the listed keys go, in batches of any size |
//! | [`clear_scopes`] | `clear_scope` deletes exactly what [`Scope::contains`](crate::store::Scope::contains) says, with `%` `_` `*` `?` `[` `\` `:` `#` in names never widening it |
//! | [`scan`] | with the `scan` capability, a scan lists exactly a scope's keys; without it, scanning fails |
//! | [`tags`] | with the `tags` capability, tag sets list, union, delete and outlive their entries, memberships last their `tags_ttl` past a touched entry's first expiry, and at least the entry's TTL; without it, tagged writes fail |
//! | [`lock`] | with the `lock` capability, one holder at a time, expiry, foreign release refused; without it, locking fails |
//! | [`bad_bytes`] | the tier returns the bytes it was given; garbage is a miss for a cache, and is overwritten |
//! | [`max_value_size`] | a value of `max_value_size` bytes reads back whole; a bigger one is never returned whole nor costs more than one byte past the limit |
//! | [`concurrent_writers`] | concurrent writes of one key all succeed and one of them wins |
//! | [`every_key_expires`] | entries, tag sets and locks all carry an expiry on the server |
//! | [`touch`] | with the `touch` capability, touching a live entry moves its expiry on the server later, never sooner, and keeps its bytes; a missing or expired key is not touched nor brought back; without it, touching moves nothing |
//! | [`batches`] | `get_many` answers one value per key in order, `set_many` stores each entry with its TTL (the last of a key twice), over many keys; a cache's batch load through the tier |
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cache_core::store::{BoxFuture, RemoteTier};
//! use cache_core::testing::conformance::{run_all, Capabilities, Expiry, Fixture};
//!
//! struct MyFixture {
//!     tier: Arc<dyn RemoteTier>,
//! }
//!
//! impl Fixture for MyFixture {
//!     fn tier(&self) -> Arc<dyn RemoteTier> {
//!         self.tier.clone()
//!     }
//!     fn expiry_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Expiry> {
//!         // ask the server directly (e.g. Redis `PTTL key`)
//!         Box::pin(async move { Expiry::In(Duration::from_secs(1)) })
//!     }
//!     fn max_value_size(&self) -> usize {
//!         64 * 1024
//!     }
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities::none().tags(true).lock(true).scan(true).touch(true)
//!     }
//! }
//!
//! # async fn demo(tier: Arc<dyn RemoteTier>) {
//! run_all(&MyFixture { tier }).await;
//! # }
//! ```

mod basic;
mod batch;
mod bytes;
mod lock;
mod scopes;
mod support;
mod tags;
mod touch;

use std::sync::Arc;
use std::time::Duration;

pub use basic::{
    concurrent_writers, delete_many, every_key_expires, get_set_overwrite, ttl_and_expiry,
};
pub use batch::batches;
pub use bytes::{bad_bytes, max_value_size};
pub use lock::lock;
pub use scopes::{clear_scopes, scan};
pub use tags::tags;
pub use touch::touch;

use crate::store::{BoxFuture, RemoteTier};

/// What a driver's test gives the suite: the tier under test, connected to a real server,
/// and a way to see what the server holds.
///
/// ```
/// use cache_core::testing::conformance::{Capabilities, Fixture};
/// // A fixture says which optional operations its tier claims to support.
/// fn claims(f: &impl Fixture) -> Capabilities { f.capabilities() }
/// ```
pub trait Fixture: Send + Sync {
    /// The tier under test. Called for every check; may return the same tier each time.
    fn tier(&self) -> Arc<dyn RemoteTier>;

    /// How long the server will keep `key` (a stored key as given to the tier: an entry, a
    /// tag set or a lock), read from the server itself (Redis `PTTL`, a database's expiry
    /// column): what proves that every key the tier writes expires by itself.
    fn expiry_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Expiry>;

    /// The tier's `max_value_size`: the most bytes a read returns whole. Keep it small
    /// (e.g. 64 KiB) so the checks stay quick.
    fn max_value_size(&self) -> usize;

    /// The optional operations the tier claims. Claimed ones are checked; unclaimed ones
    /// must fail rather than pretend (a tagged write to a tier without tags must not store
    /// an entry that deleting by tag could never find).
    fn capabilities(&self) -> Capabilities;
}

/// How long the server keeps a key, as a [`Fixture`] reads it.
///
/// ```
/// use cache_core::testing::conformance::Expiry;
/// use std::time::Duration;
/// assert!(Expiry::In(Duration::from_secs(5)).within(Duration::from_secs(10)));
/// assert!(!Expiry::Never.within(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The server holds no such key (it never existed, was deleted or has expired).
    Absent,
    /// The server holds the key with no expiry: a conformance failure for any key.
    Never,
    /// The server drops the key (or treats it as gone) after this long.
    In(Duration),
}

impl Expiry {
    /// Whether the key is absent or expires within `bound`.
    pub fn within(self, bound: Duration) -> bool {
        match self {
            Expiry::Absent => true,
            Expiry::Never => false,
            Expiry::In(left) => left <= bound,
        }
    }
}

/// The optional [`RemoteTier`] operations a tier claims: tags
/// ([`RemoteTier::set_tagged`] and friends), the distributed lock
/// ([`RemoteTier::try_lock`], [`RemoteTier::unlock`]), scans
/// ([`RemoteTier::scan_scope`]) and renewing an entry's expiry ([`RemoteTier::touch`]).
///
/// ```
/// use cache_core::testing::conformance::Capabilities;
/// let caps = Capabilities::none().lock(true);
/// assert!(caps.has_lock() && !caps.has_tags() && !caps.has_scan() && !caps.has_touch());
/// assert!(Capabilities::all().has_scan() && Capabilities::all().has_touch());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    tags: bool,
    lock: bool,
    scan: bool,
    touch: bool,
}

impl Capabilities {
    /// No optional operation.
    pub const fn none() -> Self {
        Self {
            tags: false,
            lock: false,
            scan: false,
            touch: false,
        }
    }

    /// Every optional operation.
    pub const fn all() -> Self {
        Self {
            tags: true,
            lock: true,
            scan: true,
            touch: true,
        }
    }

    /// With (or without) tags.
    #[must_use]
    pub const fn tags(mut self, yes: bool) -> Self {
        self.tags = yes;
        self
    }

    /// With (or without) the distributed lock.
    #[must_use]
    pub const fn lock(mut self, yes: bool) -> Self {
        self.lock = yes;
        self
    }

    /// With (or without) scans.
    #[must_use]
    pub const fn scan(mut self, yes: bool) -> Self {
        self.scan = yes;
        self
    }

    /// With (or without) touch: renewing an entry's expiry.
    #[must_use]
    pub const fn touch(mut self, yes: bool) -> Self {
        self.touch = yes;
        self
    }

    /// Whether tags are claimed.
    pub const fn has_tags(&self) -> bool {
        self.tags
    }

    /// Whether the lock is claimed.
    pub const fn has_lock(&self) -> bool {
        self.lock
    }

    /// Whether scans are claimed.
    pub const fn has_scan(&self) -> bool {
        self.scan
    }

    /// Whether touch is claimed.
    pub const fn has_touch(&self) -> bool {
        self.touch
    }
}

/// Runs every check of the suite, one after the other, panicking at the first that fails
/// with the check's name and what differed. Each check's duration goes to stderr (shown by
/// `cargo test -- --nocapture`, or with a failure): a slow server shows there first.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::run_all(fixture).await;
/// # }
/// ```
pub async fn run_all(fixture: &impl Fixture) {
    macro_rules! timed {
        ($($check:ident),*) => {$(
            let started = std::time::Instant::now();
            $check(fixture).await;
            eprintln!("conformance: `{}` passed in {:.1?}", stringify!($check), started.elapsed());
        )*};
    }
    timed!(
        get_set_overwrite,
        ttl_and_expiry,
        delete_many,
        clear_scopes,
        scan,
        tags,
        lock,
        bad_bytes,
        max_value_size,
        concurrent_writers,
        every_key_expires,
        touch,
        batches
    );
}
