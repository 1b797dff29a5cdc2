//! Turning a builder (or configuration) into a manager: every constructor of
//! [`CacheManager`] (in code, from TOML, from the environment, the no-op one) and
//! [`CacheManagerBuilder::build`]: stores through drivers, the default store, the
//! environment, the embedded default.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use std::path::Path;

use super::builder::{CacheManagerBuilder, StoreBuilder, StoreSpec};
use super::{declarations, CacheManager, ManagerInner};
use crate::clock::Clock;
use crate::codec;
use crate::config::{
    name_problem, parse_toml, LockKind, ManagerConfig, StoreConfig, TierConfig, EMBEDDED_DEFAULT,
};
use crate::driver::{driver_names, find_driver, BusSettings, DriverRegistration};
use crate::error::{CacheError, ConfigOrigin};
use crate::store::named::{LockSettings, StoreInner, StoreParts, DEFAULT_LOCK_TIMEOUT};
use crate::store::remote::DEFAULT_CIRCUIT_BREAKER;
use crate::store::LocalTier;

const DEFAULT_PREFIX: &str = "cachet";

static NEXT_MANAGER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl CacheManager {
    /// A builder for a manager configured in code.
    ///
    /// ```
    /// use cache_core::{store::MapTier, CacheManager, StoreBuilder};
    /// let manager = CacheManager::builder().store("main", StoreBuilder::new().l1(MapTier::new())).build().unwrap();
    /// assert_eq!(manager.default_store_name(), "main");
    /// ```
    pub fn builder() -> CacheManagerBuilder {
        CacheManagerBuilder::default()
    }

    /// A manager whose every cache is a no-op: lookups miss, writes are dropped
    /// (Spring's `spring.cache.type=none`), for tests.
    ///
    /// ```
    /// let manager = cache_core::CacheManager::none();
    /// assert_eq!(manager.cache("anything").unwrap().store_name(), "none");
    /// ```
    pub fn none() -> Self {
        Self::builder()
            .store("none", StoreBuilder::none())
            .validate_declarations(false)
            .build()
            .unwrap_or_else(|_| {
                unreachable!("a single no-op store with no declarations check always builds")
            })
    }

    /// A manager from TOML configuration text (see DESIGN.md for the schema).
    ///
    /// ```
    /// let err = cache_core::CacheManager::from_toml_str("ttl = 5").unwrap_err();
    /// assert!(err.to_string().contains("ttl"));
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, CacheError> {
        Self::from_config(parse_toml(text, ConfigOrigin::String)?)
    }

    /// A manager from a TOML configuration file. Errors name the file.
    ///
    /// ```
    /// let err = cache_core::CacheManager::from_toml_file("no/such/cachet.toml").unwrap_err();
    /// assert!(err.to_string().contains("no/such/cachet.toml"));
    /// ```
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, CacheError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CacheError::ConfigFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_config(parse_toml(&text, ConfigOrigin::File(path.to_owned()))?)
    }

    /// A manager from parsed configuration.
    ///
    /// ```
    /// use cache_core::{config::parse_toml, CacheManager, ConfigOrigin};
    /// let config = parse_toml("[stores.none]\ndriver = \"none\"", ConfigOrigin::String).unwrap();
    /// let manager = CacheManager::from_config(config).unwrap();
    /// assert_eq!(manager.default_store_name(), "none");
    /// ```
    pub fn from_config(config: ManagerConfig) -> Result<Self, CacheError> {
        CacheManagerBuilder::from_config(config).build()
    }

    /// The manager the environment asks for: `CACHET_TYPE=none` → [`CacheManager::none`];
    /// else the file named by `CACHET_CONFIG`, else `cachet.toml` in the working directory,
    /// else the embedded default (one bounded in-memory store); `CACHET_TYPE=memory` then
    /// forces every cache into one in-memory store.
    ///
    /// ```
    /// let manager = cache_core::CacheManager::from_env();
    /// # let _ = manager;
    /// ```
    pub fn from_env() -> Result<Self, CacheError> {
        from_env()
    }
}

impl CacheManagerBuilder {
    /// Builds the manager. Never connects to a server.
    pub fn build(self) -> Result<CacheManager, CacheError> {
        build(self)
    }
}

fn build(builder: CacheManagerBuilder) -> Result<CacheManager, CacheError> {
    let origin = builder.origin.clone().unwrap_or(ConfigOrigin::Builder);
    check_names(&builder, &origin)?;
    let prefix = builder
        .prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    let clock = builder.clock.clone().map(Clock::from).unwrap_or_default();
    let mut stores = BTreeMap::new();
    for (name, spec) in builder.stores {
        let mut store = match spec {
            StoreSpec::Built(b) => StoreInner::new(StoreParts {
                lock: built_lock(&name, &b)?,
                name: name.clone(),
                prefix: b.prefix.unwrap_or_else(|| prefix.clone()),
                l1: b.l1,
                l2: b.l2,
                bus: b.bus,
                circuit_breaker: b.circuit_breaker.unwrap_or(DEFAULT_CIRCUIT_BREAKER),
                max_value_size: codec::DEFAULT_MAX_VALUE_SIZE,
                codec: b.codec,
                clock: clock.clone(),
            }),
            StoreSpec::Config(config) => {
                let codec = codec_of(&name, &config, &builder.codecs, &origin)?;
                store_from_config(&name, &prefix, &config, codec, &clock)?
            }
        };
        store.error_handler = builder.error_handler.clone();
        stores.insert(name, Arc::new(store));
    }
    if stores.is_empty() {
        let default = parse_toml(EMBEDDED_DEFAULT, ConfigOrigin::Default)?;
        for (name, config) in &default.stores {
            stores.insert(
                name.clone(),
                Arc::new(
                    store_from_config(name, &prefix, config, codec::ValueCodec::default(), &clock)
                        .map(|mut store| {
                            store.error_handler = builder.error_handler.clone();
                            store
                        })?,
                ),
            );
        }
    }
    let default_store = match builder.default_store {
        Some(name) if stores.contains_key(&name) => name,
        Some(name) => {
            return Err(CacheError::Config {
                origin,
                field: "default_store".into(),
                expected: format!(
                    "the name of a configured store ({}); found `{name}`",
                    join(stores.keys())
                ),
            })
        }
        None if stores.len() == 1 => stores.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(CacheError::Config {
                origin,
                field: "default_store".into(),
                expected: format!(
                    "a store name, required when several stores are configured ({})",
                    join(stores.keys())
                ),
            })
        }
    };
    // Every layer of the option set the builder holds, each option checked by its kind.
    let layers = std::iter::once((String::new(), &builder.defaults)).chain(
        builder
            .caches
            .iter()
            .map(|(cache, c)| (format!("caches.{cache}."), &c.options)),
    );
    for (path, options) in layers {
        if let Some((option, kind, found)) = options.invalid() {
            return Err(CacheError::Config {
                origin,
                field: format!("{path}{option}"),
                expected: format!("{}; found {found}", kind.expected()),
            });
        }
    }
    for (cache, config) in &builder.caches {
        if let Some(store) = config.store.as_ref().filter(|s| !stores.contains_key(*s)) {
            return Err(CacheError::Config {
                origin,
                field: format!("caches.{cache}.store"),
                expected: format!(
                    "the name of a configured store ({}); found `{store}`",
                    join(stores.keys())
                ),
            });
        }
    }
    let manager = CacheManager {
        inner: Arc::new(ManagerInner {
            id: NEXT_MANAGER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            stores,
            default_store,
            defaults: builder.defaults,
            caches_config: builder.caches,
            cache_names: builder.cache_names,
            caches: RwLock::new(HashMap::new()),
            by_name: RwLock::new(HashMap::new()),
        }),
    };
    if !builder.skip_declarations {
        declarations::check(&manager)?;
    }
    Ok(manager)
}

/// Every name set in code that becomes part of a stored key, a Redis pattern or a channel,
/// held to the rule TOML holds it to ([`name_problem`]): a prefix `a:b` would otherwise
/// alias store `a`'s cache `b`.
fn check_names(builder: &CacheManagerBuilder, origin: &ConfigOrigin) -> Result<(), CacheError> {
    let refuse = |field: String, name: &str, what: &str| match name_problem(name, what) {
        None => Ok(()),
        Some(expected) => Err(CacheError::Config {
            origin: origin.clone(),
            field,
            expected,
        }),
    };
    if let Some(prefix) = &builder.prefix {
        refuse("prefix".into(), prefix, "a key prefix")?;
    }
    for (name, spec) in &builder.stores {
        refuse(format!("stores.{name}"), name, "a store name")?;
        let prefix = match spec {
            StoreSpec::Built(b) => b.prefix.as_deref(),
            StoreSpec::Config(c) => c.prefix.as_deref(),
        };
        if let Some(prefix) = prefix {
            refuse(format!("stores.{name}.prefix"), prefix, "a key prefix")?;
        }
    }
    for (i, name) in builder.cache_names.iter().flatten().enumerate() {
        refuse(format!("cache_names[{i}]"), name, "a cache name")?;
    }
    for name in builder.caches.keys() {
        refuse(format!("caches.{name}"), name, "a cache name")?;
    }
    Ok(())
}

/// The distributed lock of a store built in code: only with an L2, and a timeout above zero.
fn built_lock(
    name: &str,
    store: &super::builder::StoreBuilder,
) -> Result<Option<LockSettings>, CacheError> {
    let Some(ttl) = store.lock else {
        return Ok(None);
    };
    let problem = if store.l2.is_none() {
        "a distributed lock only on a store with an L2 to hold it (`StoreBuilder::l2`); this store has none"
    } else if ttl.is_zero() {
        "a distributed lock timeout above zero: how long a holder may keep the lock; found zero"
    } else {
        return Ok(Some(LockSettings { ttl }));
    };
    Err(CacheError::Config {
        origin: ConfigOrigin::Builder,
        field: format!("stores.{name}.lock"),
        expected: format!("expected {problem}"),
    })
}

fn join<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none configured".into()
    } else {
        names.join(", ")
    }
}

/// The codec a configured store names: a built-in one, or one registered on the builder.
fn codec_of(
    store: &str,
    config: &StoreConfig,
    registered: &BTreeMap<String, codec::ValueCodec>,
    origin: &ConfigOrigin,
) -> Result<codec::ValueCodec, CacheError> {
    let Some(name) = config.codec.as_deref() else {
        return Ok(codec::ValueCodec::default());
    };
    let error = |expected: String| CacheError::Config {
        origin: origin.clone(),
        field: format!("stores.{store}.codec"),
        expected,
    };
    match codec::ValueCodec::builtin(name) {
        Ok(Some(codec)) => Ok(codec),
        Err(why) => Err(error(why)),
        Ok(None) => registered.get(name).cloned().ok_or_else(|| {
            let mut known = vec!["msgpack", "bincode", "json"];
            known.extend(registered.keys().map(String::as_str));
            error(format!(
                "one of the codecs {}; found `{name}`",
                known.join(", ")
            ))
        }),
    }
}

fn store_from_config(
    name: &str,
    prefix: &str,
    config: &StoreConfig,
    codec: codec::ValueCodec,
    clock: &Clock,
) -> Result<StoreInner, CacheError> {
    let prefix = config.prefix.clone().unwrap_or_else(|| prefix.to_owned());
    let mut parts = StoreParts {
        name: name.to_owned(),
        prefix,
        l1: None,
        l2: None,
        bus: None,
        circuit_breaker: config.l2_circuit_breaker.unwrap_or(DEFAULT_CIRCUIT_BREAKER),
        max_value_size: codec::DEFAULT_MAX_VALUE_SIZE,
        codec,
        clock: clock.clone(),
        // Checked by the parser: `lock = "redis"` only with a Redis L2.
        lock: (config.lock != LockKind::None).then(|| LockSettings {
            ttl: config.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
        }),
    };
    if let Some(single) = &config.single {
        // `driver = "..."` alone: the store is that one tier, local or remote.
        if single.driver != "none" {
            let driver = driver_of(single)?;
            match (driver.local, driver.remote) {
                (Some(build), _) => parts.l1 = Some(build(single)?),
                (None, Some(build)) => parts.l2 = Some(build(single)?),
                (None, None) => {
                    return Err(single.error(
                        "driver",
                        format!("a driver that can hold values; `{}` cannot", single.driver),
                    ))
                }
            }
        }
    }
    if let Some(l1) = &config.l1 {
        parts.l1 = Some(local_tier(l1)?);
    }
    if let Some(l2) = &config.l2 {
        let build = driver_of(l2)?.remote.ok_or_else(|| {
            l2.error(
                "driver",
                format!(
                    "a driver that can be a shared (L2) tier; `{}` cannot",
                    l2.driver
                ),
            )
        })?;
        parts.l2 = Some(build(l2)?);
    }
    if let Some(bus) = &config.bus {
        if parts.l1.is_none() {
            return Err(bus.error(
                "",
                "a bus only where the store has an l1 to keep coherent; this store has none",
            ));
        }
        let build = driver_of(bus)?.bus.ok_or_else(|| {
            bus.error(
                "driver",
                format!("a driver that can be a bus; `{}` cannot", bus.driver),
            )
        })?;
        parts.bus = Some(build(bus, &BusSettings::for_prefix(&parts.prefix))?);
    }
    Ok(StoreInner::new(parts))
}

fn known_drivers() -> String {
    let mut names = driver_names();
    names.push("none");
    names.join(", ")
}

fn driver_of(tier: &TierConfig) -> Result<&'static DriverRegistration, CacheError> {
    find_driver(&tier.driver).ok_or_else(|| {
        tier.error(
            "driver",
            format!(
                "a known driver ({}); found `{}` (is the cachet feature of that name enabled?)",
                known_drivers(),
                tier.driver
            ),
        )
    })
}

fn local_tier(tier: &TierConfig) -> Result<Arc<dyn LocalTier>, CacheError> {
    let build = driver_of(tier)?.local.ok_or_else(|| {
        tier.error(
            "driver",
            format!(
                "a driver that can be an in-process tier; `{}` cannot",
                tier.driver
            ),
        )
    })?;
    build(tier)
}
fn from_env() -> Result<CacheManager, CacheError> {
    let kind = std::env::var("CACHET_TYPE").ok();
    match kind.as_deref().map(str::trim) {
        Some("none") => return Ok(CacheManager::none()),
        Some("memory") | Some("") | None => {}
        Some(other) => {
            return Err(CacheError::Config {
                origin: ConfigOrigin::Env("CACHET_TYPE"),
                field: "CACHET_TYPE".into(),
                expected: format!("`none` or `memory`; found `{other}`"),
            })
        }
    }
    let config = if let Some(path) = std::env::var_os("CACHET_CONFIG") {
        let text = std::fs::read_to_string(&path).map_err(|source| CacheError::ConfigFile {
            path: path.clone().into(),
            source,
        })?;
        Some(parse_toml(&text, ConfigOrigin::File(path.into()))?)
    } else if std::path::Path::new("cachet.toml").is_file() {
        let text =
            std::fs::read_to_string("cachet.toml").map_err(|source| CacheError::ConfigFile {
                path: "cachet.toml".into(),
                source,
            })?;
        Some(parse_toml(&text, ConfigOrigin::File("cachet.toml".into()))?)
    } else {
        None
    };
    let mut config = match config {
        Some(config) => config,
        None => parse_toml(EMBEDDED_DEFAULT, ConfigOrigin::Default)?,
    };
    if kind.as_deref() == Some("memory") {
        let memory = parse_toml(EMBEDDED_DEFAULT, ConfigOrigin::Env("CACHET_TYPE"))?;
        config.stores = memory.stores;
        config.default_store = memory.default_store;
        for cache in config.caches.values_mut() {
            cache.store = None;
        }
    }
    CacheManager::from_config(config)
}
