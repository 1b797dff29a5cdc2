//! Options of the `memory` driver: `max_entries = 10000` or `max_size = "64mb"`.

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

/// Options of a memory tier.
///
/// ```
/// use cache_backends::memory::{MemoryBound, MemoryOptions};
/// assert_eq!(MemoryOptions::max_size(64 << 20).bound, MemoryBound::Bytes(64 << 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// The bound.
    pub bound: MemoryBound,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self::max_entries(DEFAULT_MAX_ENTRIES)
    }
}

impl MemoryOptions {
    /// Bounded in entries.
    pub fn max_entries(n: u64) -> Self {
        Self {
            bound: MemoryBound::Entries(n),
        }
    }

    /// Bounded in estimated bytes.
    pub fn max_size(bytes: u64) -> Self {
        Self {
            bound: MemoryBound::Bytes(bytes),
        }
    }

    /// Reads `max_entries` / `max_size` from a tier's configuration; anything else is an error.
    ///
    /// ```
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// use cache_backends::memory::MemoryOptions;
    /// let mut options = toml::Table::new();
    /// options.insert("max_size".into(), "1kb".into());
    /// let tier = TierConfig { driver: "memory".into(), options, field: "stores.m.l1".into(), origin: ConfigOrigin::String };
    /// assert_eq!(MemoryOptions::from_config(&tier).unwrap(), MemoryOptions::max_size(1024));
    /// ```
    pub fn from_config(config: &TierConfig) -> Result<Self, CacheError> {
        let mut bound = None;
        for (name, value) in &config.options {
            let this = match name.as_str() {
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
                other => {
                    return Err(config.error(
                        other,
                        "no such option for the memory driver (allowed: max_entries, max_size)",
                    ))
                }
            };
            if bound.replace(this).is_some() {
                return Err(config.error("", "either max_entries or max_size, not both"));
            }
        }
        Ok(Self {
            bound: bound.unwrap_or(MemoryBound::Entries(DEFAULT_MAX_ENTRIES)),
        })
    }
}
