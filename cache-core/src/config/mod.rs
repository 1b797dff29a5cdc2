//! Configuration: the TOML schema of DESIGN.md parsed into typed, validated values.
//!
//! Parsing lives in [`parse_toml`]; durations and sizes in [`units`]. Errors name the origin
//! (file), the dotted field path and what was expected.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{CacheError, ConfigOrigin};

mod parse;
pub mod units;

pub(crate) use parse::name_problem;
pub use parse::parse_toml;

/// Options that apply to a cache; set globally (top level), per cache (`[caches.NAME]`),
/// or per annotation. `None` means "inherit".
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// How long an entry stays fresh. `None` at every level: until evicted.
    pub ttl: Option<Duration>,
    /// How long past `ttl` a stale entry is kept to be served when the function fails.
    pub grace: Option<Duration>,
    /// After a failed refresh served the stale value, serve it (as fresh) this long before
    /// calling the function again.
    pub grace_backoff: Option<Duration>,
    /// Soft timeout: with a stale entry, answer with it after this long.
    pub timeout: Option<Duration>,
    /// Hard timeout: give up on the function after this long.
    pub hard_timeout: Option<Duration>,
    /// Whether `None` results are cached.
    pub allow_null_values: Option<bool>,
    /// Eager refresh: a hit past this fraction of an entry's TTL (0 < x < 1) answers at
    /// once and refreshes the entry in the background.
    pub eager_refresh: Option<f64>,
}

impl CacheOptions {
    /// No option set: everything is inherited.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cache_core::CacheOptions::new().ttl(Duration::from_secs(300)).grace(Duration::from_secs(3600));
    /// assert_eq!(options.ttl, Some(Duration::from_secs(300)));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long entries stay fresh.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets how long past `ttl` stale entries are kept for failures.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Sets how long a stale value served after a failure is served before retrying.
    #[must_use]
    pub fn grace_backoff(mut self, backoff: Duration) -> Self {
        self.grace_backoff = Some(backoff);
        self
    }

    /// Sets the soft timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the hard timeout.
    #[must_use]
    pub fn hard_timeout(mut self, timeout: Duration) -> Self {
        self.hard_timeout = Some(timeout);
        self
    }

    /// Sets whether `None` results are cached.
    #[must_use]
    pub fn allow_null_values(mut self, allow: bool) -> Self {
        self.allow_null_values = Some(allow);
        self
    }

    /// Sets the eager refresh point: a hit past this fraction of an entry's TTL (strictly
    /// between 0 and 1; checked when the manager is built) returns the cached value and
    /// starts one background refresh.
    ///
    /// ```
    /// let options = cache_core::CacheOptions::new().eager_refresh(0.8);
    /// assert_eq!(options.eager_refresh, Some(0.8));
    /// ```
    #[must_use]
    pub fn eager_refresh(mut self, ratio: f64) -> Self {
        self.eager_refresh = Some(ratio);
        self
    }
}

/// One tier of a store as configured: `{ driver = "memory", max_entries = 10000 }`.
///
/// `Debug` shows the options redacted ([`crate::redact`]): URLs without their passwords,
/// and `***` for options named like secrets.
///
/// ```
/// use cache_core::{config::TierConfig, ConfigOrigin};
/// let tier = TierConfig {
///     driver: "redis".into(),
///     options: toml::from_str(r#"url = "redis://:s3cret@cache:6379/0""#).unwrap(),
///     field: "stores.shared.l2".into(),
///     origin: ConfigOrigin::String,
/// };
/// let shown = format!("{tier:?}");
/// assert!(shown.contains("redis://:***@cache:6379/0") && !shown.contains("s3cret"));
/// ```
#[derive(Clone, PartialEq)]
pub struct TierConfig {
    /// The driver name (`memory`, `redis`, `none`, ...).
    pub driver: String,
    /// The driver's own options (everything but `driver`), checked by the driver.
    pub options: toml::Table,
    /// Where this tier was configured, e.g. `stores.tiered.l1`, for error messages.
    pub field: String,
    /// The configuration's origin, for error messages.
    pub origin: ConfigOrigin,
}

impl TierConfig {
    /// An error about one of this tier's options, naming origin and full field path.
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    ///
    /// let tier = TierConfig {
    ///     driver: "memory".into(),
    ///     options: toml::Table::new(),
    ///     field: "stores.m.l1".into(),
    ///     origin: ConfigOrigin::File("cachet.toml".into()),
    /// };
    /// let err = tier.error("max_size", "expected a size like \"64mb\"; found an array");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "cachet.toml: `stores.m.l1.max_size`: expected a size like \"64mb\"; found an array",
    /// );
    /// ```
    pub fn error(&self, option: &str, expected: impl Into<String>) -> CacheError {
        CacheError::Config {
            origin: self.origin.clone(),
            field: if option.is_empty() {
                self.field.clone()
            } else {
                format!("{}.{option}", self.field)
            },
            expected: crate::redact::redact_text(&expected.into()),
        }
    }
}

impl std::fmt::Debug for TierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierConfig")
            .field("driver", &self.driver)
            .field("options", &crate::redact::redact_table(&self.options))
            .field("field", &self.field)
            .field("origin", &self.origin)
            .finish()
    }
}

/// One `[stores.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Key prefix for this store's remote tier (default: the top-level `prefix`).
    pub prefix: Option<String>,
    /// The shorthand form `driver = "none"` / `driver = "memory"` (+ that driver's options):
    /// the whole store is this one tier.
    pub single: Option<TierConfig>,
    /// In-process tier.
    pub l1: Option<TierConfig>,
    /// Shared tier.
    pub l2: Option<TierConfig>,
    /// Invalidation bus.
    pub bus: Option<TierConfig>,
    /// How long to stop calling a failing L2 (`l2_circuit_breaker = "10s"`).
    pub l2_circuit_breaker: Option<Duration>,
    /// Stampede protection across instances (`lock = "redis"`; default `"none"`).
    pub lock: LockKind,
    /// How long a holder keeps the distributed lock at most (`lock_timeout = "10s"`,
    /// the default); only with `lock = "redis"`.
    pub lock_timeout: Option<Duration>,
}

/// A store's stampede protection across instances: `lock = "none"` (the default) or
/// `lock = "redis"`.
///
/// Single flight always holds within one process. With `lock = "redis"`, a store whose
/// L2 is Redis also takes a lock there (`SET {prefix}:~lock:{cache}:{key} <token> NX PX
/// <lock_timeout>`) before running a missing key's function, so across every instance
/// sharing that Redis the function runs once; the others wait for its value. A holder
/// that dies holds the lock at most `lock_timeout`. When Redis cannot be reached, calls
/// run as without the lock.
///
/// ```
/// use cache_core::config::{parse_toml, LockKind};
/// use cache_core::ConfigOrigin;
///
/// let config = parse_toml(
///     r#"
///     [stores.shared]
///     l2 = { driver = "redis", url = "redis://127.0.0.1:6379/0" }
///     lock = "redis"
///     lock_timeout = "5s"
///     "#,
///     ConfigOrigin::String,
/// )?;
/// assert_eq!(config.stores["shared"].lock, LockKind::Redis);
/// # Ok::<(), cache_core::CacheError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockKind {
    /// No lock across instances: single flight is per process.
    #[default]
    None,
    /// A lock in the store's Redis L2.
    Redis,
    /// A lock in the store's DynamoDB L2 (`lock = "dynamodb"`).
    Dynamodb,
}

impl LockKind {
    /// The driver of the L2 the lock lives in (`None` for no lock).
    ///
    /// ```
    /// use cache_core::config::LockKind;
    /// assert_eq!(LockKind::Dynamodb.driver(), Some("dynamodb"));
    /// assert_eq!(LockKind::None.driver(), None);
    /// ```
    pub fn driver(self) -> Option<&'static str> {
        match self {
            LockKind::None => None,
            LockKind::Redis => Some("redis"),
            LockKind::Dynamodb => Some("dynamodb"),
        }
    }
}

/// One `[caches.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheConfig {
    /// The store this cache lives in (default: `default_store`).
    pub store: Option<String>,
    /// Options overriding the global ones.
    pub options: CacheOptions,
}

/// Used when neither code nor a file configures anything: one bounded in-memory store.
pub(crate) const EMBEDDED_DEFAULT: &str = r#"
default_store = "memory"

[stores.memory]
l1 = { driver = "memory", max_entries = 10000 }
"#;

/// The embedded default configuration: what an application runs on when neither code nor
/// a file configures anything (no `CACHET_CONFIG`, no `./cachet.toml`): one bounded
/// in-memory store named `memory`. Its origin is [`ConfigOrigin::Default`].
///
/// ```
/// let config = cache_core::config::embedded_default();
/// assert_eq!(config.default_store.as_deref(), Some("memory"));
/// assert_eq!(config.stores.keys().collect::<Vec<_>>(), ["memory"]);
/// ```
pub fn embedded_default() -> ManagerConfig {
    parse_toml(EMBEDDED_DEFAULT, ConfigOrigin::Default)
        .unwrap_or_else(|e| unreachable!("the embedded default configuration parses: {e}"))
}

/// The whole configuration of a [`crate::CacheManager`].
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// Where it came from.
    pub origin: ConfigOrigin,
    /// The store of caches not listed in `caches` (required when there are several stores).
    pub default_store: Option<String>,
    /// Key prefix for remote tiers (default `cachet`).
    pub prefix: Option<String>,
    /// Options for every cache.
    pub defaults: CacheOptions,
    /// When set, only these caches exist.
    pub cache_names: Option<Vec<String>>,
    /// Named stores.
    pub stores: BTreeMap<String, StoreConfig>,
    /// Per-cache settings.
    pub caches: BTreeMap<String, CacheConfig>,
}
