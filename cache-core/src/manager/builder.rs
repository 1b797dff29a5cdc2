//! Builders: a manager and its stores configured in code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::ManualClock;
use crate::codec::ValueCodec;
use crate::config::{CacheConfig, CacheOptions, ManagerConfig, StoreConfig, TierConfig};
use crate::error::ConfigOrigin;
use crate::store::{Bus, LocalTier, RemoteTier};

/// Builds a [`CacheManager`](crate::CacheManager) in code; the same options as the TOML configuration.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
/// let manager = CacheManager::builder()
///     .prefix("shop")
///     .store("main", StoreBuilder::new().l1(MapTier::new()))
///     .store("off", StoreBuilder::none())
///     .default_store("main")
///     .ttl(Duration::from_secs(600))
///     .cache_store("audit", "off")
///     .cache_ttl("users", Duration::from_secs(300))
///     .build()
///     .unwrap();
/// assert_eq!(manager.cache("audit").unwrap().store_name(), "off");
/// ```
#[derive(Default)]
#[must_use]
pub struct CacheManagerBuilder {
    pub(super) origin: Option<ConfigOrigin>,
    pub(super) prefix: Option<String>,
    pub(super) default_store: Option<String>,
    pub(super) defaults: CacheOptions,
    pub(super) cache_names: Option<Vec<String>>,
    pub(super) stores: BTreeMap<String, StoreSpec>,
    pub(super) caches: BTreeMap<String, CacheConfig>,
    pub(super) skip_declarations: bool,
    /// Codecs configuration may name (`codec = "NAME"`) besides the built-in ones.
    pub(super) codecs: BTreeMap<String, ValueCodec>,
    /// The clock of tests (`manual_clock`); the system's otherwise.
    pub(super) clock: Option<ManualClock>,
    /// What a fault does (`error_handler`); logged and counted otherwise.
    pub(super) error_handler: crate::fault::Handler,
}

/// What was set, redacted like every configuration holder ([`crate::redact`]).
///
/// ```
/// use cache_core::{CacheManager, config::parse_toml, ConfigOrigin};
/// let config = parse_toml(
///     "[stores.shared]\nl2 = { driver = \"redis\", url = \"redis://:s3cret@cache/0\" }",
///     ConfigOrigin::String,
/// )?;
/// let builder = CacheManager::builder().store_config("shared", config.stores["shared"].clone());
/// assert!(!format!("{builder:?}").contains("s3cret"));
/// # Ok::<(), cache_core::CacheError>(())
/// ```
impl std::fmt::Debug for CacheManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheManagerBuilder")
            .field("origin", &self.origin)
            .field("prefix", &self.prefix)
            .field("default_store", &self.default_store)
            .field("defaults", &self.defaults)
            .field("cache_names", &self.cache_names)
            .field("stores", &self.stores)
            .field("caches", &self.caches)
            .field("validate_declarations", &!self.skip_declarations)
            .field("manual_clock", &self.clock)
            .field("error_handler", &self.error_handler.is_some())
            .finish()
    }
}

/// A store given to the builder: built in code, or from configuration through drivers.
#[derive(Debug)]
pub(super) enum StoreSpec {
    Built(StoreBuilder),
    Config(Box<StoreConfig>),
}

/// The builder's setters of the defaults of every cache: `$name(value)` sets that option
/// of [`CacheManagerBuilder::options`]'s layer.
macro_rules! manager_defaults {
    ($( $(#[$doc:meta])* $name:ident: $ty:ty; )*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $name: $ty) -> Self {
                self.defaults.$name = Some($name);
                self
            }
        )*
    };
}

impl CacheManagerBuilder {
    pub(super) fn from_config(config: ManagerConfig) -> Self {
        Self {
            origin: Some(config.origin),
            prefix: config.prefix,
            default_store: config.default_store,
            defaults: config.defaults,
            cache_names: config.cache_names,
            stores: config
                .stores
                .into_iter()
                .map(|(k, v)| (k, StoreSpec::Config(Box::new(v))))
                .collect(),
            caches: config.caches,
            skip_declarations: false,
            codecs: BTreeMap::new(),
            clock: None,
            error_handler: None,
        }
    }

    /// Key prefix of remote tiers (default `cachet`), keeping applications apart.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Adds a store built in code.
    pub fn store(mut self, name: impl Into<String>, store: StoreBuilder) -> Self {
        self.stores.insert(name.into(), StoreSpec::Built(store));
        self
    }

    /// Adds a store whose L1 is the `memory` driver with its default bound (needs the
    /// `memory` feature of `cachet`; building fails otherwise).
    pub fn memory_store(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        let l1 = TierConfig {
            driver: "memory".into(),
            options: toml::Table::new(),
            field: format!("stores.{name}.l1"),
            origin: ConfigOrigin::Builder,
        };
        let store = StoreConfig {
            prefix: None,
            single: None,
            l1: Some(l1),
            l2: None,
            bus: None,
            l2_circuit_breaker: None,
            lock: Default::default(),
            lock_timeout: None,
            codec: None,
        };
        self.stores.insert(name, StoreSpec::Config(Box::new(store)));
        self
    }

    /// Adds a store from its configuration (as parsed from a `[stores.NAME]` table).
    pub fn store_config(mut self, name: impl Into<String>, store: StoreConfig) -> Self {
        self.stores
            .insert(name.into(), StoreSpec::Config(Box::new(store)));
        self
    }

    /// The store of caches placed nowhere else (needed when there are several stores).
    pub fn default_store(mut self, name: impl Into<String>) -> Self {
        self.default_store = Some(name.into());
        self
    }

    /// Default options of every cache (the manager's layer of the option set): each option
    /// `options` sets replaces the one set before; the others are kept.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{CacheManager, CacheOptions, StoreBuilder, store::MapTier};
    /// let manager = CacheManager::builder()
    ///     .store("main", StoreBuilder::new().l1(MapTier::new()))
    ///     .options(CacheOptions::new().ttl(Duration::from_secs(60)).eager_refresh(0.8))
    ///     .build()
    ///     .unwrap();
    /// # let _ = manager;
    /// ```
    pub fn options(mut self, options: CacheOptions) -> Self {
        self.defaults = self.defaults.overlay(&options);
        self
    }

    // The defaults of every cache, one setter per option of the set: each sets its option
    // in `defaults`, as `options(CacheOptions::new().NAME(value))` would.
    manager_defaults! {
        /// Default time to live of every cache.
        ttl: Duration;
        /// Default grace period of every cache.
        grace: Duration;
        /// Default grace backoff of every cache: after a failure served a stale value, serve it
        /// this long before calling the function again.
        grace_backoff: Duration;
        /// Default soft timeout of every cache.
        timeout: Duration;
        /// Default hard timeout of every cache.
        hard_timeout: Duration;
        /// Default eager refresh of every cache: a hit past this fraction of an entry's TTL
        /// (strictly between 0 and 1, checked by [`build`](Self::build)) returns the cached
        /// value and refreshes the entry in the background.
        ///
        /// ```
        /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
        /// let store = || StoreBuilder::new().l1(MapTier::new());
        /// assert!(CacheManager::builder().store("main", store()).eager_refresh(0.8).build().is_ok());
        /// let err = CacheManager::builder().store("main", store()).eager_refresh(1.5).build().unwrap_err();
        /// assert!(err.to_string().contains("`eager_refresh`"));
        /// ```
        eager_refresh: f64;
        /// Default time to idle of every cache: an entry not read for this long expires.
        ///
        /// ```
        /// use std::time::Duration;
        /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
        /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new()))
        ///     .tti(Duration::from_secs(600)).build().unwrap();
        /// # let _ = m;
        /// ```
        tti: Duration;
        /// Default TTL jitter of every cache: each write's TTL gets a random extra in
        /// `[0, jitter]`.
        ///
        /// ```
        /// use std::time::Duration;
        /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
        /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new()))
        ///     .jitter(Duration::from_secs(30)).build().unwrap();
        /// # let _ = m;
        /// ```
        jitter: Duration;
        /// Default bound on how long L1 copies live in every cache (shorter than the TTL).
        ///
        /// ```
        /// use std::time::Duration;
        /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
        /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new()))
        ///     .l1_ttl(Duration::from_secs(30)).build().unwrap();
        /// # let _ = m;
        /// ```
        l1_ttl: Duration;
        /// How long a single-flight waiter waits for the running caller before it runs the
        /// function itself, in every cache.
        ///
        /// ```
        /// use std::time::Duration;
        /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
        /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new()))
        ///     .wait_timeout(Duration::from_secs(5)).build().unwrap();
        /// # let _ = m;
        /// ```
        wait_timeout: Duration;
        /// Whether callers are answered once L1 holds their value, the L2 write and the bus
        /// message finishing in the background, in every cache.
        ///
        /// ```
        /// use cache_core::{CacheManager, StoreBuilder, store::MapTier};
        /// let m = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new()))
        ///     .background_l2_writes(true).build().unwrap();
        /// # let _ = m;
        /// ```
        background_l2_writes: bool;
        /// Whether `None` results are cached (default `true`).
        allow_null_values: bool;
    }

    /// Only these caches exist; others are an error (and annotations using them fail the build).
    pub fn cache_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cache_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Puts cache `cache` in store `store`.
    pub fn cache_store(mut self, cache: impl Into<String>, store: impl Into<String>) -> Self {
        self.caches.entry(cache.into()).or_default().store = Some(store.into());
        self
    }

    /// Sets cache `cache`'s time to live.
    pub fn cache_ttl(mut self, cache: impl Into<String>, ttl: Duration) -> Self {
        self.caches.entry(cache.into()).or_default().options.ttl = Some(ttl);
        self
    }

    /// Sets all of cache `cache`'s options at once.
    pub fn cache_options(mut self, cache: impl Into<String>, options: CacheOptions) -> Self {
        self.caches.entry(cache.into()).or_default().options = options;
        self
    }

    /// Whether building checks that every annotated function's caches resolve (default
    /// `true`). Turn off for managers meant for a part of the program only.
    pub fn validate_declarations(mut self, validate: bool) -> Self {
        self.skip_declarations = !validate;
        self
    }

    /// Makes an application's codec available to configuration by its name: a
    /// `[stores.NAME]` with `codec = "<its name>"` encodes with it.
    ///
    /// ```
    /// # use cache_core::codec::{Codec, CodecError, ValueCodec, erased_serde};
    /// # struct Cbor;
    /// # impl Codec for Cbor {
    /// #     fn name(&self) -> &str { "cbor" }
    /// #     fn id(&self) -> u8 { 201 }
    /// #     fn encode(&self, _: &dyn erased_serde::Serialize, _: &mut Vec<u8>) -> Result<(), CodecError> { unimplemented!() }
    /// #     fn decode<'de>(&self, _: &'de [u8], _: &mut dyn FnMut(&mut dyn erased_serde::Deserializer<'de>) -> Result<(), erased_serde::Error>) -> Result<(), CodecError> { unimplemented!() }
    /// # }
    /// use cache_core::{config::parse_toml, CacheManager, ConfigOrigin};
    /// let config = parse_toml("[stores.main]\ndriver = \"none\"\ncodec = \"cbor\"", ConfigOrigin::String)?;
    /// let manager = CacheManager::builder()
    ///     .store_config("main", config.stores["main"].clone())
    ///     .register_codec(ValueCodec::custom(Cbor).unwrap())
    ///     .build()?;
    /// # let _ = manager;
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn register_codec(mut self, codec: ValueCodec) -> Self {
        self.codecs.insert(codec.name().to_owned(), codec);
        self
    }

    /// Makes every timing of the manager — entries' freshness, grace and eager refresh,
    /// soft and hard timeouts, the L2 circuit breaker — follow `clock`, which stands still
    /// until the test advances it: TTL and grace tests without sleeping. See
    /// [`ManualClock`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use cache_core::{CacheManager, StoreBuilder, store::MapTier, testing::ManualClock};
    /// let clock = ManualClock::new();
    /// let manager = CacheManager::builder()
    ///     .store("main", StoreBuilder::new().l1(MapTier::new()))
    ///     .ttl(Duration::from_secs(30))
    ///     .grace(Duration::from_secs(3600))
    ///     .manual_clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// let rates = manager.cache("rates").unwrap();
    /// rates.set(&"eur", &100u32).await.unwrap();
    /// clock.advance(Duration::from_secs(31)); // stale, within grace
    /// assert_eq!(rates.get_fresh::<u32>(&"eur").await.unwrap(), None);
    /// assert_eq!(rates.get::<u32>(&"eur").await.unwrap(), Some(100));
    /// # });
    /// ```
    pub fn manual_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Decides what each fault of a cache does (Spring's `CacheErrorHandler`): log it (and
    /// count it, the default), only count it, or fail the call. Used by annotated and
    /// programmatic calls of every store of the manager; an annotated call fails when its
    /// return type can carry the error (`Result<T, E>` with `E: From<CacheError>`), before its
    /// body runs when its lookup's read failed (see [`crate::CacheErrorHandler`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_core::{store::MapTier, CacheFault, CacheManager, FaultAction, FaultOperation};
    /// use cache_core::StoreBuilder;
    /// let manager = CacheManager::builder()
    ///     .store("main", StoreBuilder::new().l1(MapTier::new()))
    ///     .error_handler(|fault: &CacheFault<'_>| match fault.operation {
    ///         FaultOperation::Put => FaultAction::Fail,
    ///         _ => FaultAction::Count,
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let users = manager.cache("users").unwrap();
    /// users.set(&1u64, &"ann".to_string()).await.unwrap(); // memory never fails
    /// # });
    /// ```
    pub fn error_handler(mut self, handler: impl crate::fault::CacheErrorHandler) -> Self {
        self.error_handler = Some(std::sync::Arc::new(handler));
        self
    }
}

/// A store built in code from tiers.
///
/// ```
/// use cache_core::{StoreBuilder, store::MapTier};
/// let store = StoreBuilder::new().prefix("app").l1(MapTier::new());
/// # let _ = store;
/// ```
#[derive(Default)]
#[must_use]
pub struct StoreBuilder {
    pub(super) prefix: Option<String>,
    pub(super) l1: Option<Arc<dyn LocalTier>>,
    pub(super) l2: Option<Arc<dyn RemoteTier>>,
    pub(super) bus: Option<Arc<dyn Bus>>,
    pub(super) circuit_breaker: Option<Duration>,
    /// The distributed lock's timeout, when enabled.
    pub(super) lock: Option<Duration>,
    /// The shared tier's payload codec (default MessagePack).
    pub(super) codec: ValueCodec,
}

/// The tiers by their drivers' descriptions, redacted ([`crate::redact::redact_text`]).
impl std::fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::redact_text;
        f.debug_struct("StoreBuilder")
            .field("prefix", &self.prefix)
            .field("l1", &self.l1.as_ref().map(|t| t.driver()))
            .field("l2", &self.l2.as_ref().map(|t| redact_text(&t.describe())))
            .field(
                "bus",
                &self.bus.as_ref().map(|b| redact_text(&b.describe())),
            )
            .field("l2_circuit_breaker", &self.circuit_breaker)
            .field("distributed_lock", &self.lock)
            .field("codec", &self.codec)
            .finish()
    }
}

impl StoreBuilder {
    /// A store with no tiers yet (a no-op until given one).
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps nothing: every lookup misses.
    pub fn none() -> Self {
        Self::default()
    }

    /// Key prefix of this store (default: the manager's).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The in-process tier.
    pub fn l1(mut self, tier: Arc<dyn LocalTier>) -> Self {
        self.l1 = Some(tier);
        self
    }

    /// The shared tier (e.g. Redis).
    pub fn l2(mut self, tier: Arc<dyn RemoteTier>) -> Self {
        self.l2 = Some(tier);
        self
    }

    /// The bus keeping other instances' L1 coherent (needs an L1).
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// How the shared tier encodes values (default [`ValueCodec::msgpack`]; `codec = ".."`
    /// in configuration). Entries another codec wrote are misses.
    ///
    /// ```
    /// use cache_core::{codec::ValueCodec, StoreBuilder};
    /// let store = StoreBuilder::new().codec(ValueCodec::msgpack());
    /// # let _ = store;
    /// ```
    pub fn codec(mut self, codec: ValueCodec) -> Self {
        self.codec = codec;
        self
    }

    /// How long to stop calling a failing L2 (default 5 s; zero: never stop).
    pub fn l2_circuit_breaker(mut self, pause: Duration) -> Self {
        self.circuit_breaker = Some(pause);
        self
    }

    /// Stampede protection across instances (`lock = "redis"` in configuration): before
    /// running a missing key's function, take a lock in the L2, held at most `timeout`
    /// (e.g. 10 s, the configuration's default), so that across every instance sharing
    /// the L2 the function runs once and the others wait for its value. Needs an L2 that
    /// supports locks (Redis); building fails without an L2, and an L2 that does not
    /// support locks is used without them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{CacheManager, StoreBuilder};
    /// // Without an L2 there is nothing to lock in: a configuration error.
    /// let err = CacheManager::builder()
    ///     .store("main", StoreBuilder::new().distributed_lock(Duration::from_secs(10)))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("stores.main.lock"), "{err}");
    /// ```
    pub fn distributed_lock(mut self, timeout: Duration) -> Self {
        self.lock = Some(timeout);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::store::MapTier;
    use crate::{CacheManager, CacheOptions, StoreBuilder};

    /// Issue 15's runtime options set on the builder are every cache's defaults, under a
    /// cache's own options and a view's.
    #[test]
    fn the_builders_runtime_options_are_every_caches_defaults() {
        let secs = Duration::from_secs;
        let own = CacheOptions::new().tti(secs(60)).skip_bus(true);
        let manager = CacheManager::builder()
            .store("main", StoreBuilder::new().l1(MapTier::new()))
            .tti(secs(600))
            .jitter(secs(30))
            .l1_ttl(secs(20))
            .wait_timeout(secs(5))
            .background_l2_writes(true)
            .cache_options("users", own)
            .build()
            .unwrap();
        let defaults = CacheOptions::new()
            .tti(secs(600))
            .jitter(secs(30))
            .l1_ttl(secs(20))
            .wait_timeout(secs(5))
            .background_l2_writes(true);
        let settings = |cache: &crate::Cache| *cache.engine.settings();
        assert_eq!(
            settings(&manager.cache("orders").unwrap()),
            CacheOptions::layered([&defaults])
        );
        let users = manager.cache("users").unwrap();
        assert_eq!(settings(&users), CacheOptions::layered([&defaults, &own]));
        let call = CacheOptions::new().force_fresh(true).skip_l2_read(true);
        assert_eq!(
            settings(&users.with_options(call)),
            CacheOptions::layered([&defaults, &own, &call])
        );
    }
}
