//! Options of the `memory` driver: `max_entries = 10000` or `max_size = "64mb"`, and
//! `engine = "quick_cache"` (the default) or `engine = "moka"`.

use cache_core::config::units::parse_size;
use cache_core::config::TierConfig;
use cache_core::CacheError;

/// The default bound when none is configured.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// How a memory tier is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryBound {
    /// At most this many entries.
    Entries(u64),
    /// At most this many estimated bytes.
    Bytes(u64),
}

/// The cache library a memory tier runs on (`engine = "..."`). Both keep every behaviour
/// of the driver (bounds, per-entry expiry, scope clears); they differ in cost
/// (BENCHMARKS.md, "In-memory engine").
///
/// ```
/// use cache_backends::memory::MemoryEngine;
/// assert_eq!(MemoryEngine::default(), MemoryEngine::QuickCache);
/// assert_eq!(MemoryEngine::from_name("moka"), Some(MemoryEngine::Moka));
/// assert_eq!(MemoryEngine::Moka.name(), "moka");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MemoryEngine {
    /// quick_cache (the default): a read is a sharded hash lookup under a read lock, and
    /// it scales across threads on a hot key. Expired entries are never returned; they are
    /// dropped when read, and swept a part of the store at a time by later operations
    /// (each part about once a second).
    #[default]
    QuickCache,
    /// moka: W-TinyLFU admission, expiry on a timer wheel; its reads cost several times
    /// quick_cache's and do not scale across threads on a hot key.
    Moka,
}

impl MemoryEngine {
    /// Every engine, in the order error messages list them.
    pub const ALL: [MemoryEngine; 2] = [MemoryEngine::QuickCache, MemoryEngine::Moka];

    /// The engine's name in configuration (`engine = "quick_cache"`).
    ///
    /// ```
    /// use cache_backends::memory::MemoryEngine;
    /// assert_eq!(MemoryEngine::QuickCache.name(), "quick_cache");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            MemoryEngine::QuickCache => "quick_cache",
            MemoryEngine::Moka => "moka",
        }
    }

    /// The engine named `name` in configuration, if any.
    ///
    /// ```
    /// use cache_backends::memory::MemoryEngine;
    /// assert_eq!(MemoryEngine::from_name("quick_cache"), Some(MemoryEngine::QuickCache));
    /// assert_eq!(MemoryEngine::from_name("lru"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl std::fmt::Display for MemoryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of a memory tier.
///
/// ```
/// use cache_backends::memory::{MemoryBound, MemoryEngine, MemoryOptions};
/// let options = MemoryOptions::max_size(64 << 20).engine(MemoryEngine::Moka);
/// assert_eq!(options.bound, MemoryBound::Bytes(64 << 20));
/// assert_eq!(options.engine, MemoryEngine::Moka);
/// assert_eq!(MemoryOptions::default().engine, MemoryEngine::QuickCache);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// The bound.
    pub bound: MemoryBound,
    /// The cache library underneath.
    pub engine: MemoryEngine,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self::max_entries(DEFAULT_MAX_ENTRIES)
    }
}

impl MemoryOptions {
    /// Bounded in entries, on the default engine.
    ///
    /// ```
    /// use cache_backends::memory::{MemoryBound, MemoryOptions};
    /// assert_eq!(MemoryOptions::max_entries(500).bound, MemoryBound::Entries(500));
    /// ```
    pub fn max_entries(n: u64) -> Self {
        Self {
            bound: MemoryBound::Entries(n),
            engine: MemoryEngine::default(),
        }
    }

    /// Bounded in estimated bytes, on the default engine.
    ///
    /// ```
    /// use cache_backends::memory::{MemoryBound, MemoryOptions};
    /// assert_eq!(MemoryOptions::max_size(1 << 20).bound, MemoryBound::Bytes(1 << 20));
    /// ```
    pub fn max_size(bytes: u64) -> Self {
        Self {
            bound: MemoryBound::Bytes(bytes),
            engine: MemoryEngine::default(),
        }
    }

    /// The same bound on another engine.
    ///
    /// ```
    /// use cache_backends::memory::{MemoryEngine, MemoryOptions, MemoryTier};
    /// let tier = MemoryTier::new(MemoryOptions::max_entries(1000).engine(MemoryEngine::Moka));
    /// assert_eq!(tier.engine(), MemoryEngine::Moka);
    /// ```
    pub fn engine(mut self, engine: MemoryEngine) -> Self {
        self.engine = engine;
        self
    }

    /// Reads `max_entries` / `max_size` and `engine` from a tier's configuration; anything
    /// else is an error.
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// use cache_backends::memory::{MemoryEngine, MemoryOptions};
    /// let mut options = toml::Table::new();
    /// options.insert("max_size".into(), "1kb".into());
    /// options.insert("engine".into(), "moka".into());
    /// let tier = TierConfig::new("memory", options, "stores.m.l1", ConfigOrigin::String);
    /// assert_eq!(
    ///     MemoryOptions::from_config(&tier).unwrap(),
    ///     MemoryOptions::max_size(1024).engine(MemoryEngine::Moka),
    /// );
    /// ```
    pub fn from_config(config: &TierConfig) -> Result<Self, CacheError> {
        let mut bound = None;
        let mut engine = MemoryEngine::default();
        for (name, value) in &config.options {
            let this = match name.as_str() {
                "engine" => {
                    engine = value
                        .as_str()
                        .and_then(MemoryEngine::from_name)
                        .ok_or_else(|| {
                            let names: Vec<_> = MemoryEngine::ALL
                                .iter()
                                .map(|e| format!("\"{e}\""))
                                .collect();
                            config.error(
                                name,
                                format!("expected one of {}; found {value}", names.join(", ")),
                            )
                        })?;
                    continue;
                }
                "max_entries" => match value.as_integer() {
                    Some(n) if n > 0 => MemoryBound::Entries(n as u64),
                    _ => {
                        return Err(config.error(
                            name,
                            format!("a positive whole number of entries; found {value}"),
                        ))
                    }
                },
                "max_size" => {
                    let size = match value {
                        toml::Value::Integer(n) if *n > 0 => Ok(*n as u64),
                        toml::Value::String(s) => parse_size(s),
                        other => Err(format!("found {other}")),
                    };
                    match size {
                        Ok(bytes) if bytes > 0 => MemoryBound::Bytes(bytes),
                        Ok(_) => return Err(config.error(name, "a size above zero, like \"64mb\"")),
                        Err(why) => {
                            return Err(config
                                .error(name, format!("a size like \"64mb\" or \"512kb\": {why}")))
                        }
                    }
                }
                other => return Err(config.error(
                    other,
                    "no such option for the memory driver (allowed: max_entries, max_size, engine)",
                )),
            };
            if bound.replace(this).is_some() {
                return Err(config.error("", "either max_entries or max_size, not both"));
            }
        }
        Ok(Self {
            bound: bound.unwrap_or(MemoryBound::Entries(DEFAULT_MAX_ENTRIES)),
            engine,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::ConfigOrigin;

    fn parse(options: &str) -> Result<MemoryOptions, String> {
        let tier = TierConfig::new(
            "memory",
            toml::from_str(options).expect("a TOML table"),
            "stores.m.l1",
            ConfigOrigin::File("cachet.toml".into()),
        );
        MemoryOptions::from_config(&tier).map_err(|e| e.to_string())
    }

    #[test]
    fn engine_is_read_with_the_bound() {
        assert_eq!(parse(""), Ok(MemoryOptions::default()));
        assert_eq!(
            parse("engine = \"moka\"\nmax_entries = 7"),
            Ok(MemoryOptions::max_entries(7).engine(MemoryEngine::Moka))
        );
        assert_eq!(
            parse("engine = \"quick_cache\"\nmax_size = \"2kb\""),
            Ok(MemoryOptions::max_size(2048).engine(MemoryEngine::QuickCache))
        );
    }

    #[test]
    fn unknown_engine_names_field_and_choices() {
        let err = parse("engine = \"lru\"").unwrap_err();
        assert_eq!(
            err,
            "cachet.toml: `stores.m.l1.engine`: expected one of \"quick_cache\", \"moka\"; \
             found \"lru\""
        );
        let err = parse("engine = 3").unwrap_err();
        assert!(
            err.contains("`stores.m.l1.engine`") && err.contains("found 3"),
            "{err}"
        );
    }

    #[test]
    fn unknown_option_lists_engine() {
        let err = parse("engines = \"moka\"").unwrap_err();
        assert!(err.contains("`stores.m.l1.engines`"), "{err}");
        assert!(err.contains("max_entries, max_size, engine"), "{err}");
    }
}
