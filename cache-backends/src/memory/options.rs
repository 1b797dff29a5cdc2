//! Options of the `memory` driver: `max_entries = 10000` or `max_size = "64mb"`,
//! `engine = "quick_cache"` (the default) or `engine = "moka"`, and on quick_cache
//! `front_table` (on by default; `front_table = false` turns it off) and
//! `front_max_weight = "1kb"`.

use cache_core::config::units::parse_size;
use cache_core::config::TierConfig;
use cache_core::CacheError;

/// The default bound when none is configured.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// The heaviest entry a front table takes in by default (`front_max_weight = "1kb"`): an
/// entry's estimated weight, as `max_size` counts it (on quick_cache, 222 bytes of the
/// engine's own per entry, the value's inline size and `Arc` header, a long key's bytes)
/// but for the tag index's copies of its key, which a front table does not keep alive
/// ([`LocalEntry::held_weight`](cache_core::store::LocalEntry::held_weight)), so values of up to about 780 inline bytes. Whatever this limit, a
/// thread's table keeps at most 256 KiB of entries (by these weights) alive past their
/// removal, over all tiers.
///
/// Options built in code start from it (this module is private: the constant is read
/// through the options it fills in):
///
/// ```
/// use cache_backends::memory::MemoryOptions;
/// assert_eq!(MemoryOptions::max_entries(1000).front_max_weight, 1024);
/// assert_eq!(MemoryOptions::max_size(64 << 20).front_max_weight, 1024);
/// ```
pub const DEFAULT_FRONT_MAX_WEIGHT: u32 = 1024;

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
/// assert!(MemoryOptions::default().front_table);
/// assert_eq!(MemoryOptions::default().front_max_weight, 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// The bound.
    pub bound: MemoryBound,
    /// The cache library underneath.
    pub engine: MemoryEngine,
    /// Whether reads go through a per-thread front table first (on quick_cache, where it
    /// is the default; moka ignores it: see [`MemoryOptions::front_table`]).
    pub front_table: bool,
    /// The heaviest entry a front table takes in, by its estimated weight (see
    /// [`MemoryOptions::front_max_weight`]).
    pub front_max_weight: u32,
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
            front_table: true,
            front_max_weight: DEFAULT_FRONT_MAX_WEIGHT,
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
            front_table: true,
            front_max_weight: DEFAULT_FRONT_MAX_WEIGHT,
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

    /// Reads through a per-thread front table first (`front_table = true`, the default), or
    /// not (`front_table = false`). quick_cache only: moka keeps its own read path
    /// (configuration refuses `front_table = true` with `engine = "moka"`; here it is
    /// ignored there).
    ///
    /// Each thread keeps up to 2,048 entries it reads (one a slot, by key hash: a key is
    /// taken in on its first read at an empty slot while the thread's budget lasts, or when the thread reads it twice in a
    /// row at a slot holding another key, with no read of that key in between), each with
    /// the version its shard had when it was read. A read of a held entry whose shard has not changed since is served without
    /// the shard's lock: threads reading one hot key then write no shared cache line, and
    /// the read does a fraction of the work. Any change to a shard (an insert, a removal,
    /// an eviction, an expired entry dropped, a scope clear, `clear`) makes the clones of
    /// its entries stale, so a read never returns an entry older than a completed change.
    ///
    /// The cost: an entry a thread holds stays alive after it was removed, replaced or
    /// evicted, until that thread reads the same key again, takes another key into the
    /// slot (reads it twice in a row there), or exits (a dropped tier's are let go when
    /// the thread's budget is spent): up to 256 KiB of entries per thread
    /// by their estimated weights (whatever the number of tiers), outside `max_entries` /
    /// `max_size`, with the value's `Drop` running later, on that thread; besides them, the
    /// table (16 KiB of pointers a thread that read through it, and a ~150-byte box per
    /// held entry) and the slots' marks (16 KiB of every thread's thread-local block).
    /// A thread that only reads other keys keeps what it holds for as long as it runs, and
    /// on the main thread a held value's `Drop` may never run (Rust does not promise to run
    /// the main thread's thread-local destructors). Leave it off for values whose release
    /// must be prompt (large buffers, handles), or bound what is held with
    /// [`MemoryOptions::front_max_weight`]. A read of a key the table does not hold costs a
    /// few instructions more than with the table off (BENCHMARKS.md, "Issue 14, phase J (front
    /// table)").
    ///
    /// ```
    /// use cache_backends::memory::{MemoryOptions, MemoryTier};
    /// use cache_core::store::{L1Key, L1KeyRef, LocalEntry, LocalTier};
    /// use std::sync::Arc;
    /// let tier = MemoryTier::new(MemoryOptions::max_entries(1000));
    /// assert!(tier.front_table(), "on by default");
    /// assert!(!MemoryTier::new(MemoryOptions::max_entries(1000).front_table(false)).front_table());
    /// tier.insert(L1Key::parse("app:users:1"), LocalEntry::new(Arc::new(7u32), None, None, 64));
    /// let key = L1KeyRef::parse("app:users:1");
    /// for _ in 0..3 {
    ///     assert_eq!(tier.get(&key).unwrap().value.downcast_ref::<u32>(), Some(&7));
    /// }
    /// tier.remove(&key);
    /// assert!(tier.get(&key).is_none());
    /// ```
    pub fn front_table(mut self, on: bool) -> Self {
        self.front_table = on;
        self
    }

    /// The heaviest entry a front table takes in (`front_max_weight = "1kb"`, the
    /// default): an entry is compared by its estimated weight, as `max_size` counts it
    /// (the engine's per-entry overhead, the value's inline size, a long key's bytes; heap
    /// data owned by the value, such as a `String`'s bytes, is not counted), but for the
    /// tag index's copies of its key, which a table's copy of the entry does not keep alive
    /// ([`LocalEntry::held_weight`](cache_core::store::LocalEntry::held_weight)). Heavier
    /// entries are read through the lock every time. A thread's table keeps at most 256 KiB
    /// of entries, by these weights, alive past their removal, whatever this limit (an
    /// entry heavier than those 256 KiB is never taken in, whatever this limit). `0`
    /// takes nothing in: the tier
    /// then reads without a front table, as with `front_table(false)` (in a configuration
    /// file, `front_max_weight = 0` is an error).
    ///
    /// ```
    /// use cache_backends::memory::{MemoryOptions, MemoryTier};
    /// use cache_core::store::{L1Key, L1KeyRef, LocalEntry, LocalTier};
    /// use std::sync::Arc;
    /// let options = MemoryOptions::max_entries(1000).front_max_weight(300);
    /// assert_eq!(options.front_max_weight, 300);
    /// let tier = MemoryTier::new(options);
    /// let (light, heavy) = (Arc::new([0u8; 8]), Arc::new([0u8; 3800]));
    /// tier.insert(L1Key::parse("app:small:1"), LocalEntry::new(light.clone(), None, None, 64));
    /// tier.insert(L1Key::parse("app:big:1"), LocalEntry::new(heavy.clone(), None, None, 4096));
    /// for name in ["app:small:1", "app:big:1"] {
    ///     let key = L1KeyRef::parse(name);
    ///     for _ in 0..3 {
    ///         assert!(tier.get(&key).is_some());
    ///     }
    ///     tier.remove(&key);
    /// }
    /// // Weighing 64, the small entry was taken into this thread's table, which still holds
    /// // it; weighing 4,096, the big one never was: removed, it is let go at once.
    /// assert_eq!(Arc::strong_count(&light), 2);
    /// assert_eq!(Arc::strong_count(&heavy), 1);
    ///
    /// assert!(!MemoryTier::new(MemoryOptions::default().front_max_weight(0)).front_table());
    /// ```
    pub fn front_max_weight(mut self, weight: u32) -> Self {
        self.front_max_weight = weight;
        self
    }

    /// Reads `max_entries` / `max_size`, `engine`, `front_table` and `front_max_weight`
    /// from a tier's configuration; anything else is an error.
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
    ///
    /// let mut options = toml::Table::new();
    /// options.insert("front_table".into(), false.into());
    /// let tier = TierConfig::new("memory", options, "stores.m.l1", ConfigOrigin::String);
    /// assert!(!MemoryOptions::from_config(&tier).unwrap().front_table);
    ///
    /// let mut options = toml::Table::new();
    /// options.insert("front_max_weight".into(), "512b".into());
    /// let tier = TierConfig::new("memory", options, "stores.m.l1", ConfigOrigin::String);
    /// assert_eq!(MemoryOptions::from_config(&tier).unwrap().front_max_weight, 512);
    /// ```
    pub fn from_config(config: &TierConfig) -> Result<Self, CacheError> {
        let mut bound = None;
        let mut engine = MemoryEngine::default();
        let mut front_table = None;
        let mut front_max_weight = None;
        for (name, value) in &config.options {
            let this = match name.as_str() {
                "front_max_weight" => {
                    let weight = size_above_zero(value, MAX_WEIGHT, FRONT_MAX_WEIGHT_EXPECTED)
                        .map_err(|why| config.error(name, why))?;
                    // At most `MAX_WEIGHT`, so it fits.
                    front_max_weight = Some(weight as u32);
                    continue;
                }
                "front_table" => {
                    front_table = Some(value.as_bool().ok_or_else(|| {
                        config.error(name, format!("expected true or false; found {value}"))
                    })?);
                    continue;
                }
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
                "max_size" => MemoryBound::Bytes(
                    size_above_zero(value, u64::MAX, "a size above zero, like \"64mb\"")
                        .map_err(|why| config.error(name, why))?,
                ),
                other => {
                    return Err(config.error(
                        other,
                        "no such option for the memory driver \
                     (allowed: max_entries, max_size, engine, front_table, front_max_weight)",
                    ))
                }
            };
            if bound.replace(this).is_some() {
                return Err(config.error("", "either max_entries or max_size, not both"));
            }
        }
        let on_quick_cache = |key: &str| match engine {
            MemoryEngine::QuickCache => Ok(()),
            _ => Err(config.error(
                key,
                format!("applies to engine = \"quick_cache\" only; this tier is on {engine}"),
            )),
        };
        if front_table == Some(true) {
            on_quick_cache("front_table")?;
        }
        let defaults = Self::default();
        let front_table = front_table.unwrap_or(defaults.front_table);
        if front_max_weight.is_some() {
            on_quick_cache("front_max_weight")?;
            if !front_table {
                return Err(config.error(
                    "front_max_weight",
                    "limits what the front table takes in, which is off on this tier: drop \
                     it, or set `front_table = true`",
                ));
            }
        }
        Ok(Self {
            bound: bound.unwrap_or(MemoryBound::Entries(DEFAULT_MAX_ENTRIES)),
            engine,
            front_table,
            front_max_weight: front_max_weight.unwrap_or(defaults.front_max_weight),
        })
    }
}

/// The heaviest weight an entry can have (weights are `u32`).
const MAX_WEIGHT: u64 = u32::MAX as u64;

/// What `front_max_weight` must be.
const FRONT_MAX_WEIGHT_EXPECTED: &str = "a size above zero and below \"4gb\", like \"1kb\"";

/// A size option (`"64mb"`, `"512b"`, or a whole number of bytes) above zero and at most
/// `max` bytes; else what was `expected` and what was found, so `0`, `"0b"`, `-1` and
/// `"lots"` are all told the same expectation.
fn size_above_zero(value: &toml::Value, max: u64, expected: &str) -> Result<u64, String> {
    let size = match value {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("found {value}")),
        toml::Value::String(s) => parse_size(s),
        other => Err(format!("found {other}")),
    };
    match size {
        Ok(bytes @ 1..) if bytes <= max => Ok(bytes),
        Ok(_) => Err(format!("{expected}; found {value}")),
        Err(why) if why.starts_with("found ") => Err(format!("{expected}; {why}")),
        Err(why) => Err(format!("{expected}: {why}")),
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

    /// Each of `values` given to `field` is refused with `expected` and the value found.
    fn assert_refused(field: &str, expected: &str, values: &[&str]) {
        for value in values {
            assert_eq!(
                parse(&format!("{field} = {value}")).unwrap_err(),
                format!("cachet.toml: `stores.m.l1.{field}`: {expected}; found {value}")
            );
        }
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
        assert!(
            err.contains("max_entries, max_size, engine, front_table, front_max_weight"),
            "{err}"
        );
    }

    #[test]
    fn front_table_is_a_bool_on_quick_cache() {
        assert_eq!(parse("front_table = true"), Ok(MemoryOptions::default()));
        assert!(MemoryOptions::default().front_table, "on by default");
        assert_eq!(
            parse("front_table = false\nmax_entries = 7"),
            Ok(MemoryOptions::max_entries(7).front_table(false))
        );
        assert_eq!(
            parse("front_table = \"yes\"").unwrap_err(),
            "cachet.toml: `stores.m.l1.front_table`: expected true or false; found \"yes\""
        );
        assert_eq!(
            parse("front_table = true\nengine = \"moka\"").unwrap_err(),
            "cachet.toml: `stores.m.l1.front_table`: applies to engine = \"quick_cache\" \
             only; this tier is on moka"
        );
        assert_eq!(
            parse("front_table = false\nengine = \"moka\""),
            Ok(MemoryOptions::default()
                .engine(MemoryEngine::Moka)
                .front_table(false))
        );
    }

    #[test]
    fn max_size_is_a_size_above_zero() {
        let expected = "a size above zero, like \"64mb\"";
        assert_refused("max_size", expected, &["0", "\"0kb\"", "-1", "true"]);
        let err = parse("max_size = \"1.5gb\"").unwrap_err();
        let field = "cachet.toml: `stores.m.l1.max_size`";
        assert!(err.starts_with(&format!("{field}: {expected}: ")), "{err}");
        assert_eq!(parse("max_size = 4096"), Ok(MemoryOptions::max_size(4096)));
    }

    #[test]
    fn front_max_weight_is_a_size_on_quick_cache_with_the_table_on() {
        assert_eq!(
            parse("front_max_weight = \"2kb\"\nfront_table = true"),
            Ok(MemoryOptions::default()
                .front_table(true)
                .front_max_weight(2048))
        );
        assert_eq!(
            parse("front_max_weight = 300"),
            Ok(MemoryOptions::default().front_max_weight(300))
        );
        let expected = "a size above zero and below \"4gb\", like \"1kb\"";
        assert_refused(
            "front_max_weight",
            expected,
            &["\"4gb\"", "0", "\"0b\"", "-1"],
        );
        let err = parse("front_max_weight = \"lots\"").unwrap_err();
        assert!(
            err.starts_with(&format!(
                "cachet.toml: `stores.m.l1.front_max_weight`: {expected}: \"lots\" is not a size"
            )),
            "{err}"
        );
        assert_eq!(
            parse("front_max_weight = \"1kb\"\nengine = \"moka\"").unwrap_err(),
            "cachet.toml: `stores.m.l1.front_max_weight`: applies to engine = \
             \"quick_cache\" only; this tier is on moka"
        );
        assert_eq!(
            parse("front_max_weight = \"1kb\"\nfront_table = false").unwrap_err(),
            "cachet.toml: `stores.m.l1.front_max_weight`: limits what the front table takes \
             in, which is off on this tier: drop it, or set `front_table = true`"
        );
    }
}
