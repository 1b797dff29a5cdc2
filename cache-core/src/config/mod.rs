//! Configuration: the TOML schema of DESIGN.md parsed into typed, validated values.
//!
//! Parsing lives in [`parse_toml`]; durations and sizes in [`units`]. Errors name the origin
//! (file), the dotted field path and what was expected.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{CacheError, ConfigOrigin};

mod parse;
pub mod units;

pub use crate::options::CacheOptions;
pub use parse::parse_toml;

/// One tier of a store as configured: `{ driver = "memory", max_entries = 10000 }`.
#[derive(Debug, Clone, PartialEq)]
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
            expected: expected.into(),
        }
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
}

/// One `[caches.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheConfig {
    /// The store this cache lives in (default: `default_store`).
    pub store: Option<String>,
    /// Options overriding the global ones.
    pub options: CacheOptions,
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
