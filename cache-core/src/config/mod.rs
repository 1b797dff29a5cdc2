//! Configuration: the TOML schema of DESIGN.md parsed into typed, validated values.
//!
//! Parsing lives in [`parse_toml`]; durations and sizes in [`units`]; a driver reads its own
//! options with [`TierConfig`]'s helpers (`tier_options.rs`). Errors name the origin (file),
//! the dotted field path and what was expected.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{CacheError, ConfigOrigin};

mod parse;
mod tier_options;
pub mod units;

pub use crate::options::CacheOptions;
pub(crate) use parse::name_problem;
pub use parse::parse_toml;

/// One tier of a store as configured: `{ driver = "memory", max_entries = 10000 }`.
///
/// `Debug` shows the options redacted ([`crate::redact`]): URLs without their passwords,
/// and `***` for options named like secrets.
///
/// ```
/// use cache_core::{config::TierConfig, ConfigOrigin};
/// let options = toml::from_str(r#"url = "redis://:s3cret@cache:6379/0""#).unwrap();
/// let tier = TierConfig::new("redis", options, "stores.shared.l2", ConfigOrigin::String);
/// let shown = format!("{tier:?}");
/// assert!(shown.contains("redis://:***@cache:6379/0") && !shown.contains("s3cret"));
/// ```
#[derive(Clone, PartialEq)]
#[non_exhaustive]
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
    /// A tier of `driver` with `options` (everything but `driver`), configured at `field`
    /// (e.g. `stores.tiered.l1`) of `origin`.
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let tier = TierConfig::new("memory", toml::Table::new(), "stores.m.l1", ConfigOrigin::String);
    /// assert_eq!(tier.driver, "memory");
    /// ```
    pub fn new(
        driver: impl Into<String>,
        options: toml::Table,
        field: impl Into<String>,
        origin: ConfigOrigin,
    ) -> Self {
        Self {
            driver: driver.into(),
            options,
            field: field.into(),
            origin,
        }
    }

    /// An error about one of this tier's options, naming origin and full field path.
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    ///
    /// let tier = TierConfig::new(
    ///     "memory",
    ///     toml::Table::new(),
    ///     "stores.m.l1",
    ///     ConfigOrigin::File("cachet.toml".into()),
    /// );
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
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
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
    /// The shared tier's payload codec by name (`codec = "msgpack"`, the default, `"bincode"`,
    /// `"json"`, or one registered with [`crate::CacheManagerBuilder::register_codec`]).
    pub codec: Option<String>,
}

impl StoreConfig {
    /// A store with no tier yet (a no-op until given one); set its fields or use the
    /// setters below.
    ///
    /// ```
    /// use cache_core::config::{StoreConfig, TierConfig};
    /// use cache_core::ConfigOrigin;
    /// let l1 = TierConfig::new("memory", toml::Table::new(), "stores.main.l1", ConfigOrigin::Builder);
    /// let store = StoreConfig::new().l1(l1).prefix("shop");
    /// assert_eq!(store.prefix.as_deref(), Some("shop"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the key prefix of this store's remote tier.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Makes the whole store this one tier (the shorthand `driver = ".."` form, e.g. the
    /// `none` driver).
    #[must_use]
    pub fn single(mut self, tier: TierConfig) -> Self {
        self.single = Some(tier);
        self
    }

    /// Sets the in-process tier.
    #[must_use]
    pub fn l1(mut self, tier: TierConfig) -> Self {
        self.l1 = Some(tier);
        self
    }

    /// Sets the shared tier.
    #[must_use]
    pub fn l2(mut self, tier: TierConfig) -> Self {
        self.l2 = Some(tier);
        self
    }

    /// Sets the invalidation bus.
    #[must_use]
    pub fn bus(mut self, tier: TierConfig) -> Self {
        self.bus = Some(tier);
        self
    }

    /// Sets how long to stop calling a failing L2.
    #[must_use]
    pub fn l2_circuit_breaker(mut self, pause: std::time::Duration) -> Self {
        self.l2_circuit_breaker = Some(pause);
        self
    }

    /// Sets the stampede protection across instances, and how long a holder keeps the
    /// lock at most (`None`: the default).
    #[must_use]
    pub fn lock(mut self, lock: LockKind, timeout: Option<std::time::Duration>) -> Self {
        self.lock = lock;
        self.lock_timeout = timeout;
        self
    }
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
    /// A lock in the store's database L2 (`lock = "database"`): a row with an expiry,
    /// released by compare-and-delete.
    Database,
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
            LockKind::Database => Some("database"),
            LockKind::Dynamodb => Some("dynamodb"),
        }
    }
}

/// One `[caches.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// The store this cache lives in (default: `default_store`).
    pub store: Option<String>,
    /// Options overriding the global ones.
    pub options: CacheOptions,
}

impl CacheConfig {
    /// A cache in the default store, inheriting every option.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{config::CacheConfig, CacheOptions};
    /// let users = CacheConfig::new().store("redis").options(CacheOptions::new().ttl(Duration::from_secs(60)));
    /// assert_eq!(users.store.as_deref(), Some("redis"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts the cache in this store.
    #[must_use]
    pub fn store(mut self, store: impl Into<String>) -> Self {
        self.store = Some(store.into());
        self
    }

    /// Sets the cache's own options (its layer of the option set).
    #[must_use]
    pub fn options(mut self, options: CacheOptions) -> Self {
        self.options = options;
        self
    }
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
#[non_exhaustive]
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

impl ManagerConfig {
    /// An empty configuration from `origin`: no store, no cache, no option (building a
    /// manager from it gives the embedded default store). Fill in its fields as needed.
    ///
    /// ```
    /// use cache_core::config::{ManagerConfig, StoreConfig, TierConfig};
    /// use cache_core::{CacheManager, ConfigOrigin};
    /// let mut config = ManagerConfig::new(ConfigOrigin::String);
    /// config.prefix = Some("shop".into());
    /// let none = TierConfig::new("none", toml::Table::new(), "stores.off", ConfigOrigin::String);
    /// config.stores.insert("off".into(), StoreConfig::new().single(none));
    /// let manager = CacheManager::from_config(config).unwrap();
    /// assert_eq!(manager.store("off").unwrap().prefix(), "shop");
    /// ```
    pub fn new(origin: ConfigOrigin) -> Self {
        Self {
            origin,
            default_store: None,
            prefix: None,
            defaults: CacheOptions::new(),
            cache_names: None,
            stores: BTreeMap::new(),
            caches: BTreeMap::new(),
        }
    }
}
