//! TOML text to a validated [`ManagerConfig`].
//!
//! The text is read into a [`toml::Table`] and walked by hand, one function per kind of
//! table, carrying the dotted path of what is being read. That is more code than a serde
//! derive, but every error can then name the exact field (`stores.tiered.l1.driver`),
//! say what was expected and what was found, and list the keys allowed where a typo was
//! made, which is what someone fixing a config file at 3 a.m. needs.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::{Table, Value};

use super::units::parse_duration;
use super::{CacheConfig, CacheOptions, LockKind, ManagerConfig, StoreConfig, TierConfig};
use crate::error::{CacheError, ConfigOrigin};
use crate::options::{valid_ratio, OptionKind, OptionValue};

/// Keys of the top level besides the option set's ([`CacheOptions::OPTIONS`]), which sit
/// between `prefix` and `cache_names` in the list of allowed keys.
const TOP_KEYS_BEFORE: &[&str] = &["default_store", "prefix"];
const TOP_KEYS_AFTER: &[&str] = &["cache_names", "stores", "caches"];

/// The keys allowed at the top level: its own and every option of the set.
fn top_keys() -> Vec<&'static str> {
    let options = CacheOptions::OPTIONS.iter().map(|(name, _)| *name);
    TOP_KEYS_BEFORE
        .iter()
        .copied()
        .chain(options)
        .chain(TOP_KEYS_AFTER.iter().copied())
        .collect()
}

/// The keys allowed in `[caches.NAME]`: `store` and every option of the set.
fn cache_keys() -> Vec<&'static str> {
    let options = CacheOptions::OPTIONS.iter().map(|(name, _)| *name);
    std::iter::once("store").chain(options).collect()
}
const STORE_KEYS: &[&str] = &[
    "driver",
    "l1",
    "l2",
    "bus",
    "prefix",
    "l2_circuit_breaker",
    "lock",
    "lock_timeout",
    "codec",
];
/// Keys of a store table that belong to the store, not to a shorthand store's driver.
const STORE_OWN_KEYS: &[&str] = &[
    "driver",
    "prefix",
    "l2_circuit_breaker",
    "lock",
    "lock_timeout",
    "codec",
];
/// Characters refused in names: `:` separates the parts of a stored key, the others are
/// Redis glob syntax (`clear()` scans with `{prefix}:{cache}:*`) or TOML/log noise.
const FORBIDDEN_IN_NAMES: &[char] = &[':', '#', '*', '?', '[', ']', '\\'];

/// Parses and validates a TOML configuration (the schema of the crate's design page).
///
/// Every table refuses unknown keys. Errors are [`CacheError::Config`] naming `origin`, the
/// full dotted path of the offending field, what was expected and what was found. Tier
/// tables (`l1 = { driver = "memory", max_entries = 10000 }`) keep every key but `driver`
/// raw in [`TierConfig::options`], for the driver to check. Store names are checked only
/// when `stores` is not empty, and a missing `default_store` is left for the manager to
/// decide.
///
/// ```
/// use std::time::Duration;
/// use cache_core::config::parse_toml;
/// use cache_core::ConfigOrigin;
///
/// let config = parse_toml(
///     r#"
///     ttl = "10m"
///     [stores.memory]
///     l1 = { driver = "memory", max_size = "64mb" }
///     [caches.users]
///     ttl = "5m"
///     "#,
///     ConfigOrigin::String,
/// )?;
/// assert_eq!(config.defaults.ttl, Some(Duration::from_secs(600)));
/// assert_eq!(config.stores["memory"].l1.as_ref().map(|t| t.driver.as_str()), Some("memory"));
/// assert_eq!(config.caches["users"].options.ttl, Some(Duration::from_secs(300)));
///
/// let err = parse_toml("[stores.memory]\nl1 = { driver = 3 }", ConfigOrigin::String).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "<toml string>: `stores.memory.l1.driver`: expected a string naming a driver, \
///      e.g. \"memory\"; found an integer (3)",
/// );
/// # Ok::<(), cache_core::CacheError>(())
/// ```
pub fn parse_toml(text: &str, origin: ConfigOrigin) -> Result<ManagerConfig, CacheError> {
    let table: Table = match text.parse() {
        Ok(table) => table,
        Err(e) => return Err(syntax_error(text, &e, origin)),
    };
    Parser { origin }.manager(&table)
}

type Result<T, E = CacheError> = std::result::Result<T, E>;

/// Walks the parsed table; holds the origin every error names.
struct Parser {
    origin: ConfigOrigin,
}

impl Parser {
    fn error(&self, field: &str, expected: impl Into<String>) -> CacheError {
        CacheError::Config {
            origin: self.origin.clone(),
            field: field.to_owned(),
            expected: expected.into(),
        }
    }

    /// "expected {what}; found {what v is}".
    fn mismatch(&self, field: &str, what: &str, found: &Value) -> CacheError {
        let last = field.rsplit('.').next().unwrap_or(field);
        let found = match found {
            Value::String(_) if crate::redact::is_secret_name(last) => {
                "a string (not shown: the field is named like a secret)".to_owned()
            }
            other => describe(other),
        };
        self.error(field, format!("expected {what}; found {found}"))
    }

    /// The top level.
    fn manager(self, table: &Table) -> Result<ManagerConfig> {
        self.check_keys(table, "", &top_keys())?;
        let prefix = self.opt_name(table, "", "prefix", "a key prefix")?;
        let defaults = self.cache_options(table, "")?;
        let stores = match table.get("stores") {
            Some(value) => self.stores(value)?,
            None => BTreeMap::new(),
        };
        let default_store = self.opt_name(table, "", "default_store", "a store name")?;
        if let Some(store) = &default_store {
            self.check_store_exists("default_store", store, &stores)?;
        }
        let cache_names = match table.get("cache_names") {
            Some(value) => Some(self.cache_names(value)?),
            None => None,
        };
        let caches = match table.get("caches") {
            Some(value) => self.caches(value, &stores, cache_names.as_deref())?,
            None => BTreeMap::new(),
        };
        Ok(ManagerConfig {
            origin: self.origin,
            default_store,
            prefix,
            defaults,
            cache_names,
            stores,
            caches,
        })
    }

    /// The option set ([`CacheOptions::OPTIONS`]) of the top level or of one
    /// `[caches.NAME]`, each read by its kind; the caller has already refused unknown keys.
    fn cache_options(&self, table: &Table, path: &str) -> Result<CacheOptions> {
        let mut options = CacheOptions::new();
        for &(name, kind) in CacheOptions::OPTIONS {
            let Some(value) = table.get(name) else {
                continue;
            };
            let field = join(path, name);
            let value = match kind {
                OptionKind::Duration => OptionValue::Duration(self.duration(value, &field)?),
                OptionKind::Bool => OptionValue::Bool(self.boolean(value, &field)?),
                OptionKind::Ratio => OptionValue::Ratio(self.ratio(value, &field, kind)?),
            };
            // The value was read by the option's own kind, so it always fits.
            options.set(name, value);
        }
        Ok(options)
    }

    /// A ratio option (`eager_refresh`): a fraction strictly between 0 and 1.
    fn ratio(&self, value: &Value, field: &str, kind: OptionKind) -> Result<f64> {
        let expected = kind.expected();
        match value {
            Value::Float(ratio) if valid_ratio(*ratio) => Ok(*ratio),
            Value::Float(ratio) => {
                Err(self.error(field, format!("expected {expected}; found {ratio}")))
            }
            other => Err(self.mismatch(field, expected, other)),
        }
    }

    /// `stores = { NAME = { .. }, .. }`.
    fn stores(&self, value: &Value) -> Result<BTreeMap<String, StoreConfig>> {
        let table = self.table(value, "stores", "a table of stores, e.g. [stores.memory]")?;
        let mut stores = BTreeMap::new();
        for (name, value) in table {
            let path = join("stores", name);
            self.check_name(&path, name, "a store name")?;
            stores.insert(name.clone(), self.store(value, &path)?);
        }
        Ok(stores)
    }

    /// One `[stores.NAME]`: either tiers (`l1`, `l2`, `bus`) or the one-tier shorthand
    /// (`driver = ".."` and that driver's options).
    fn store(&self, value: &Value, path: &str) -> Result<StoreConfig> {
        let table = self.table(
            value,
            path,
            "a table describing a store, e.g. { l1 = { driver = \"memory\" } }",
        )?;
        let prefix = self.opt_name(table, path, "prefix", "a key prefix")?;
        let l2_circuit_breaker = self.opt_duration(table, path, "l2_circuit_breaker")?;
        let codec = match table.get("codec") {
            None => None,
            Some(value) => Some(
                self.string(
                    value,
                    &join(path, "codec"),
                    "a codec name: \"msgpack\", \"bincode\", \"json\" or one the application registers",
                )?
                .to_owned(),
            ),
        };
        let tiers: Vec<&str> = ["l1", "l2", "bus"]
            .into_iter()
            .filter(|tier| table.contains_key(*tier))
            .collect();

        if table.contains_key("driver") {
            if !tiers.is_empty() {
                return Err(self.error(
                    path,
                    format!(
                        "expected either `driver` (the whole store is one tier) or tiers `l1`/`l2`/`bus`, \
                         not both; found `driver` and `{}`",
                        tiers.join("`, `")
                    ),
                ));
            }
            let options = table
                .iter()
                .filter(|(key, _)| !STORE_OWN_KEYS.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            let single = self.tier_from(table, path, options)?;
            let (lock, lock_timeout) = self.lock(table, path, Some(&single))?;
            return Ok(StoreConfig {
                prefix,
                single: Some(single),
                l1: None,
                l2: None,
                bus: None,
                l2_circuit_breaker,
                lock,
                lock_timeout,
                codec,
            });
        }

        self.check_keys(table, path, STORE_KEYS)?;
        if !table.contains_key("l1") && !table.contains_key("l2") {
            return Err(self.error(
                path,
                format!(
                    "expected a store: `driver = \"memory\"` for a one-tier store, or tiers `l1` and/or \
                     `l2` (and optionally `bus`); found {}",
                    if tiers.is_empty() {
                        "no tier".to_owned()
                    } else {
                        format!("only `{}`", tiers.join("`, `"))
                    }
                ),
            ));
        }
        let tier = |name: &str| -> Result<Option<TierConfig>> {
            match table.get(name) {
                Some(value) => self.tier(value, &join(path, name)).map(Some),
                None => Ok(None),
            }
        };
        let l2 = tier("l2")?;
        let (lock, lock_timeout) = self.lock(table, path, l2.as_ref())?;
        Ok(StoreConfig {
            prefix,
            single: None,
            l1: tier("l1")?,
            l2,
            bus: tier("bus")?,
            l2_circuit_breaker,
            lock,
            lock_timeout,
            codec,
        })
    }

    /// `lock = "none" | "redis" | "database" | "dynamodb"` and `lock_timeout` of a store whose shared tier is
    /// `shared` (its `l2`, or its one tier in the `driver = ".."` form).
    fn lock(
        &self,
        table: &Table,
        path: &str,
        shared: Option<&TierConfig>,
    ) -> Result<(LockKind, Option<Duration>)> {
        const LOCK: &str = "\"none\", \"redis\" or \"database\" (a lock in the store's \
                            Redis or database L2, so that instances sharing it compute a missing \
                            value once), or \"dynamodb\" (the same in its DynamoDB L2)";
        let field = join(path, "lock");
        let lock = match table.get("lock") {
            None => LockKind::None,
            Some(value) => match self.string(value, &field, LOCK)? {
                "none" => LockKind::None,
                "redis" => LockKind::Redis,
                "database" => LockKind::Database,
                "dynamodb" => LockKind::Dynamodb,
                _ => return Err(self.mismatch(&field, LOCK, value)),
            },
        };
        // The lock lives in the L2: its driver must be the one the lock names.
        if let Some(driver) = lock.driver() {
            let (what, option) = match lock {
                LockKind::Redis => ("Redis", "url"),
                LockKind::Dynamodb => ("DynamoDB", "table"),
                _ => ("database", "url"),
            };
            match shared {
                Some(tier) if tier.driver == driver => {}
                Some(tier) => {
                    return Err(self.error(
                        &field,
                        format!(
                            "expected `lock = \"{driver}\"` only on a store whose L2 is the \
                             {what} driver; this store's shared tier is the `{}` driver",
                            tier.driver
                        ),
                    ))
                }
                None => {
                    return Err(self.error(
                        &field,
                        format!(
                            "expected `lock = \"{driver}\"` only on a store with a {what} L2 \
                             (`l2 = {{ driver = \"{driver}\", {option} = \"..\" }}`); this store has no l2"
                        ),
                    ))
                }
            }
        }
        let lock_timeout = self.opt_duration(table, path, "lock_timeout")?;
        if let Some(timeout) = lock_timeout {
            let field = join(path, "lock_timeout");
            if lock == LockKind::None {
                return Err(self.error(
                    &field,
                    "expected `lock_timeout` only with `lock = \"redis\"` or `lock = \"database\"`, which \
                     it bounds; this store has no distributed lock",
                ));
            }
            if timeout.is_zero() {
                return Err(self.error(
                    &field,
                    "expected a duration above zero, e.g. \"10s\": how long a holder may keep \
                     the lock; found zero",
                ));
            }
        }
        Ok((lock, lock_timeout))
    }

    /// `l1 = { driver = "memory", max_entries = 10000 }`.
    fn tier(&self, value: &Value, path: &str) -> Result<TierConfig> {
        let table = self.table(
            value,
            path,
            "a table naming a driver and its options, e.g. { driver = \"memory\" }",
        )?;
        let options = table
            .iter()
            .filter(|(key, _)| key.as_str() != "driver")
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        self.tier_from(table, path, options)
    }

    /// A tier whose `driver` is read from `table`, with `options` already picked out.
    fn tier_from(&self, table: &Table, path: &str, options: Table) -> Result<TierConfig> {
        const DRIVER: &str = "a string naming a driver, e.g. \"memory\"";
        let field = join(path, "driver");
        let driver = match table.get("driver") {
            Some(value) => self.string(value, &field, DRIVER)?,
            None => return Err(self.error(&field, format!("expected {DRIVER}; found nothing"))),
        };
        if driver.trim().is_empty() {
            return Err(self.mismatch(&field, DRIVER, &Value::String(driver.to_owned())));
        }
        Ok(TierConfig {
            driver: driver.to_owned(),
            options,
            field: path.to_owned(),
            origin: self.origin.clone(),
        })
    }

    /// `cache_names = ["users", "products"]`.
    fn cache_names(&self, value: &Value) -> Result<Vec<String>> {
        let Value::Array(items) = value else {
            return Err(self.mismatch(
                "cache_names",
                "an array of cache names, e.g. [\"users\", \"products\"]",
                value,
            ));
        };
        let mut names: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = format!("cache_names[{i}]");
            let name = self.string(item, &field, "a cache name")?;
            self.check_name(&field, name, "a cache name")?;
            if names.iter().any(|n| n == name) {
                return Err(self.error(
                    &field,
                    format!("expected each cache listed once; found {name:?} a second time"),
                ));
            }
            names.push(name.to_owned());
        }
        Ok(names)
    }

    /// `caches = { NAME = { store = "..", ttl = ".." }, .. }`.
    fn caches(
        &self,
        value: &Value,
        stores: &BTreeMap<String, StoreConfig>,
        cache_names: Option<&[String]>,
    ) -> Result<BTreeMap<String, CacheConfig>> {
        let table = self.table(value, "caches", "a table of caches, e.g. [caches.users]")?;
        let mut caches = BTreeMap::new();
        for (name, value) in table {
            let path = join("caches", name);
            self.check_name(&path, name, "a cache name")?;
            if let Some(allowed) = cache_names {
                if !allowed.contains(name) {
                    return Err(self.error(
                        &path,
                        format!(
                            "expected one of the caches listed in `cache_names` ({}), as no other cache \
                             exists; found {name:?}",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            let table = self.table(
                value,
                &path,
                "a table of cache settings, e.g. { store = \"memory\", ttl = \"5m\" }",
            )?;
            self.check_keys(table, &path, &cache_keys())?;
            let store = self.opt_name(table, &path, "store", "a store name")?;
            if let Some(store) = &store {
                self.check_store_exists(&join(&path, "store"), store, stores)?;
            }
            let options = self.cache_options(table, &path)?;
            caches.insert(name.clone(), CacheConfig { store, options });
        }
        Ok(caches)
    }

    /// Refuses keys of `table` not in `allowed`, listing the allowed ones.
    fn check_keys(&self, table: &Table, path: &str, allowed: &[&str]) -> Result<()> {
        match table.keys().find(|key| !allowed.contains(&key.as_str())) {
            None => Ok(()),
            Some(key) => {
                let hint = match closest(key, allowed.iter().copied()) {
                    Some(near) => format!(" (did you mean `{near}`?)"),
                    None => String::new(),
                };
                Err(self.error(
                    &join(path, key),
                    format!(
                        "expected one of the keys {}; found the unknown key `{key}`{hint}",
                        allowed.join(", ")
                    ),
                ))
            }
        }
    }

    /// Refuses a `store` / `default_store` naming no configured store, unless no store is
    /// configured at all (the manager then supplies its defaults).
    fn check_store_exists(
        &self,
        field: &str,
        store: &str,
        stores: &BTreeMap<String, StoreConfig>,
    ) -> Result<()> {
        if stores.is_empty() || stores.contains_key(store) {
            return Ok(());
        }
        let hint = match closest(store, stores.keys().map(String::as_str)) {
            Some(near) => format!(" (did you mean {near:?}?)"),
            None => String::new(),
        };
        let known: Vec<&str> = stores.keys().map(String::as_str).collect();
        Err(self.error(
            field,
            format!(
                "expected the name of a configured store ({}); found {store:?}{hint}",
                known.join(", ")
            ),
        ))
    }

    /// Names go into stored keys (`{prefix}:{cache}:{key}`) and Redis glob patterns.
    fn check_name(&self, field: &str, name: &str, what: &str) -> Result<()> {
        match name_problem(name, what) {
            None => Ok(()),
            Some(expected) => Err(self.error(field, expected)),
        }
    }

    fn opt_name(&self, table: &Table, path: &str, key: &str, what: &str) -> Result<Option<String>> {
        let Some(value) = table.get(key) else {
            return Ok(None);
        };
        let field = join(path, key);
        let name = self.string(value, &field, &format!("{what} (a string)"))?;
        self.check_name(&field, name, what)?;
        Ok(Some(name.to_owned()))
    }

    fn opt_duration(&self, table: &Table, path: &str, key: &str) -> Result<Option<Duration>> {
        match table.get(key) {
            Some(value) => self.duration(value, &join(path, key)).map(Some),
            None => Ok(None),
        }
    }

    fn duration(&self, value: &Value, field: &str) -> Result<Duration> {
        match value {
            Value::String(text) => {
                parse_duration(text).map_err(|message| self.error(field, message))
            }
            Value::Integer(n) => Err(self.error(
                field,
                format!(
                    "expected a duration as a string with a unit, e.g. \"30s\" or \"5m\"; found \
                     an integer ({n}) (write \"{n}s\" for {n} seconds)"
                ),
            )),
            other => Err(self.mismatch(
                field,
                "a duration as a string with a unit, e.g. \"30s\" or \"5m\"",
                other,
            )),
        }
    }

    fn string<'v>(&self, value: &'v Value, field: &str, what: &str) -> Result<&'v str> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(self.mismatch(field, what, other)),
        }
    }

    fn boolean(&self, value: &Value, field: &str) -> Result<bool> {
        match value {
            Value::Boolean(b) => Ok(*b),
            other => Err(self.mismatch(field, "a boolean (true or false)", other)),
        }
    }

    fn table<'v>(&self, value: &'v Value, field: &str, what: &str) -> Result<&'v Table> {
        match value {
            Value::Table(t) => Ok(t),
            other => Err(self.mismatch(field, what, other)),
        }
    }
}

/// Why `name` cannot be a name (`what`: "a key prefix", "a cache name", ...), as
/// "expected ...; found ...", or `None` when it can. Names go into stored keys
/// (`{prefix}:{cache}:{key}`) and Redis glob patterns: TOML and the builders share this
/// one rule, so a name refused in one is refused in the other.
pub(crate) fn name_problem(name: &str, what: &str) -> Option<String> {
    if name.is_empty() {
        return Some(format!("expected {what}; found an empty string"));
    }
    name.chars()
        .find(|c| FORBIDDEN_IN_NAMES.contains(c) || c.is_whitespace() || c.is_control())
        .map(|c| {
            format!(
                "expected {what} without whitespace or any of `: # * ? [ ] \\` (names are \
                 part of stored keys and Redis patterns); found {}, which contains {}",
                quote(name),
                describe_char(c)
            )
        })
}

/// `path.key`, quoting `key` as TOML would when it is not a bare key (`stores."a b"`).
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare { key.to_owned() } else { quote(key) };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// What a value is, for "found ..." (strings shown, shortened and without credentials).
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "an empty string".to_owned(),
        Value::String(s) => format!("the string {}", quote(s)),
        Value::Integer(n) => format!("an integer ({n})"),
        Value::Float(x) => format!("a float ({x})"),
        Value::Boolean(b) => format!("a boolean ({b})"),
        Value::Datetime(d) => format!("a date-time ({d})"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

/// A string as shown in an error: quoted, at most 60 characters, and redacted
/// ([`crate::redact::redact_text`]: URL passwords and `secret=...` values masked), since
/// credentials never appear in error messages.
fn quote(s: &str) -> String {
    const MAX: usize = 60;
    let masked = crate::redact::redact_text(s);
    if masked.chars().count() > MAX {
        let short: String = masked.chars().take(MAX - 3).collect();
        format!("{:?}", short + "...")
    } else {
        format!("{masked:?}")
    }
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        c if c.is_whitespace() || c.is_control() => format!("the character {c:?}"),
        c => format!("`{c}`"),
    }
}

/// The candidate nearest to `word` when it is plausibly a typo of it.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// A TOML syntax error: the position as line:column, and as the field the nearest key.
fn syntax_error(text: &str, error: &toml::de::Error, origin: ConfigOrigin) -> CacheError {
    let message = error
        .message()
        .trim()
        .lines()
        .collect::<Vec<_>>()
        .join("; ");
    let (field, expected) = match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            (
                nearest_key(text, line),
                format!(
                    "expected valid TOML; found a syntax error at line {line}, column {column}: {message}"
                ),
            )
        }
        None => (
            String::new(),
            format!("expected valid TOML; found a syntax error: {message}"),
        ),
    };
    CacheError::Config {
        origin,
        field,
        expected,
    }
}

/// The dotted key written on `line` (1-based), under the last `[table]` header above it;
/// a best effort for syntax errors, where no parsed key exists yet.
fn nearest_key(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(current) = lines.get(line.saturating_sub(1)) else {
        return String::new();
    };
    if let Some(header) = header_of(current) {
        return header;
    }
    let table = lines[..line.saturating_sub(1)]
        .iter()
        .rev()
        .find_map(|l| header_of(l))
        .unwrap_or_default();
    let key = current
        .split_once('=')
        .map(|(key, _)| normalize_key(key))
        .filter(|key| {
            !key.is_empty()
                && key.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' ')
                })
        })
        .unwrap_or_default();
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

/// `[stores.memory]` / `[[x]]` -> `stores.memory` / `x`.
fn header_of(line: &str) -> Option<String> {
    let line = line.trim_start();
    if !line.starts_with('[') {
        return None;
    }
    let inner = line.trim_start_matches('[');
    // An unclosed header (`[stores.memory`) is itself a common syntax error: take the line.
    let end = inner.find([']', '#']).unwrap_or(inner.len());
    Some(normalize_key(&inner[..end]))
}

/// ` stores . memory ` -> `stores.memory`.
fn normalize_key(key: &str) -> String {
    key.split('.').map(str::trim).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> ConfigOrigin {
        ConfigOrigin::File("cachet.toml".into())
    }

    fn parse(text: &str) -> ManagerConfig {
        match parse_toml(text, origin()) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    /// The error's text, after checking it is a `Config` error naming origin and field.
    fn error(text: &str, field: &str) -> String {
        let err = match parse_toml(text, origin()) {
            Ok(config) => panic!("parsed: {config:#?}"),
            Err(e) => e,
        };
        match &err {
            CacheError::Config {
                origin: o,
                field: f,
                ..
            } => {
                assert_eq!(o, &origin(), "{err}");
                assert_eq!(f, field, "{err}");
            }
            other => panic!("not a config error: {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("cachet.toml: `{field}`: ")),
            "{message}"
        );
        message
    }

    /// [`error`]'s message for `text`, which names `field` and holds every one of `parts`.
    fn refused(text: &str, field: &str, parts: &[&str]) {
        assert_contains(&error(text, field), parts);
    }

    fn assert_contains(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    }

    fn table(text: &str) -> Table {
        match text.parse() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn tier(driver: &str, options: &str, field: &str) -> Option<TierConfig> {
        Some(TierConfig {
            driver: driver.into(),
            options: table(options),
            field: field.into(),
            origin: origin(),
        })
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    const FULL: &str = r#"
default_store = "tiered"
prefix = "shop"
ttl = "10m"
grace = "6h"
grace_backoff = "30s"
timeout = "200ms"
hard_timeout = "2s"
allow_null_values = true
cache_names = ["users", "products"]

[stores.memory]
l1 = { driver = "memory", max_size = "64mb" }
[stores.tiered]
l1  = { driver = "memory", max_entries = 10000 }
l2  = { driver = "redis", url = "redis://127.0.0.1:6379/0" }
bus = { driver = "redis", url = "redis://127.0.0.1:6379/0" }
l2_circuit_breaker = "10s"
[stores.none]
driver = "none"
[stores.posts]
prefix = "posts"
l2 = { driver = "redis", url = "redis://127.0.0.1:6379/0" }

[caches.users]
store = "tiered"
ttl = "5m"
grace = "1h"
timeout = "50ms"
hard_timeout = "1s"
eager_refresh = 0.9
allow_null_values = false
"#;

    #[test]
    fn full_example() {
        let redis = r#"url = "redis://127.0.0.1:6379/0""#;
        let stores = BTreeMap::from([
            (
                "memory".to_owned(),
                StoreConfig {
                    prefix: None,
                    single: None,
                    l1: tier("memory", r#"max_size = "64mb""#, "stores.memory.l1"),
                    l2: None,
                    bus: None,
                    l2_circuit_breaker: None,
                    lock: LockKind::None,
                    lock_timeout: None,
                    codec: None,
                },
            ),
            (
                "tiered".to_owned(),
                StoreConfig {
                    prefix: None,
                    single: None,
                    l1: tier("memory", "max_entries = 10000", "stores.tiered.l1"),
                    l2: tier("redis", redis, "stores.tiered.l2"),
                    bus: tier("redis", redis, "stores.tiered.bus"),
                    l2_circuit_breaker: secs(10),
                    lock: LockKind::None,
                    lock_timeout: None,
                    codec: None,
                },
            ),
            (
                "none".to_owned(),
                StoreConfig {
                    prefix: None,
                    single: tier("none", "", "stores.none"),
                    l1: None,
                    l2: None,
                    bus: None,
                    l2_circuit_breaker: None,
                    lock: LockKind::None,
                    lock_timeout: None,
                    codec: None,
                },
            ),
            (
                "posts".to_owned(),
                StoreConfig {
                    prefix: Some("posts".into()),
                    single: None,
                    l1: None,
                    l2: tier("redis", redis, "stores.posts.l2"),
                    bus: None,
                    l2_circuit_breaker: None,
                    lock: LockKind::None,
                    lock_timeout: None,
                    codec: None,
                },
            ),
        ]);
        let caches = BTreeMap::from([(
            "users".to_owned(),
            CacheConfig {
                store: Some("tiered".into()),
                options: CacheOptions {
                    ttl: secs(300),
                    grace: secs(3600),
                    grace_backoff: None,
                    timeout: Some(Duration::from_millis(50)),
                    hard_timeout: secs(1),
                    allow_null_values: Some(false),
                    eager_refresh: Some(0.9),
                    ..CacheOptions::new()
                },
            },
        )]);
        let expected = ManagerConfig {
            origin: origin(),
            default_store: Some("tiered".into()),
            prefix: Some("shop".into()),
            defaults: CacheOptions {
                ttl: secs(600),
                grace: secs(6 * 3600),
                grace_backoff: secs(30),
                timeout: Some(Duration::from_millis(200)),
                hard_timeout: secs(2),
                allow_null_values: Some(true),
                eager_refresh: None,
                ..CacheOptions::new()
            },
            cache_names: Some(vec!["users".into(), "products".into()]),
            stores,
            caches,
        };
        assert_eq!(parse(FULL), expected);
    }

    #[test]
    fn empty_config_is_valid() {
        let expected = ManagerConfig {
            origin: origin(),
            default_store: None,
            prefix: None,
            defaults: CacheOptions::default(),
            cache_names: None,
            stores: BTreeMap::new(),
            caches: BTreeMap::new(),
        };
        assert_eq!(parse(""), expected);
        assert_eq!(parse("# nothing here\n\n"), expected);
    }

    #[test]
    fn realistic_config() {
        let config = parse(
            r#"
# cachet.toml of a small web service
prefix = "blog"
ttl = "15m"
grace = "1d"
[stores.local]
l1 = { driver = "memory", max_entries = 50_000 }
[stores.shared]
l1 = { driver = "memory", max_size = "32mb" }
l2 = { driver = "redis", url = "redis://cache.internal:6379/2" }
bus = { driver = "redis", url = "redis://cache.internal:6379/2" }
[caches.sessions]
store = "shared"
ttl = "30m"
"#,
        );
        assert_eq!(config.prefix.as_deref(), Some("blog"));
        assert_eq!(
            config.default_store, None,
            "two stores: the manager decides"
        );
        assert_eq!(config.defaults.ttl, secs(900));
        assert_eq!(config.defaults.grace, secs(86_400));
        assert_eq!(config.stores.len(), 2);
        let local = &config.stores["local"];
        assert_eq!(
            local.l1,
            tier("memory", "max_entries = 50000", "stores.local.l1")
        );
        let shared = &config.stores["shared"];
        assert_eq!(
            shared.l2.as_ref().map(|t| t.options["url"].as_str()),
            Some(Some("redis://cache.internal:6379/2"))
        );
        assert!(shared.bus.is_some());
        assert_eq!(config.caches["sessions"].store.as_deref(), Some("shared"));
        assert_eq!(config.caches["sessions"].options.ttl, secs(1800));
        assert_eq!(config.caches["sessions"].options.grace, None, "inherits");
    }

    #[test]
    fn shorthand_store_keeps_driver_options() {
        let config = parse(
            r#"
[stores.small]
driver = "memory"
max_entries = 100
prefix = "small"
l2_circuit_breaker = "5s"
"#,
        );
        let store = &config.stores["small"];
        assert_eq!(
            store.single,
            tier("memory", "max_entries = 100", "stores.small")
        );
        assert_eq!(store.prefix.as_deref(), Some("small"));
        assert_eq!(store.l2_circuit_breaker, secs(5));
        assert_eq!((&store.l1, &store.l2, &store.bus), (&None, &None, &None));
    }

    #[test]
    fn store_references_are_unchecked_without_stores() {
        let config = parse("default_store = \"redis\"\n[caches.users]\nstore = \"memory\"\n");
        assert_eq!(config.default_store.as_deref(), Some("redis"));
        assert_eq!(config.caches["users"].store.as_deref(), Some("memory"));
    }

    #[test]
    fn tier_errors_name_the_tier_field() {
        refused(
            "[stores.tiered]\nl1 = { driver = 3 }",
            "stores.tiered.l1.driver",
            &["expected a string naming a driver, e.g. \"memory\"; found an integer (3)"],
        );
        refused(
            "[stores.tiered]\nl1 = { max_entries = 10 }",
            "stores.tiered.l1.driver",
            &["a string naming a driver", "found nothing"],
        );
        refused(
            "[stores.tiered]\nl1 = { driver = \" \" }",
            "stores.tiered.l1.driver",
            &["a string naming a driver", "found the string \" \""],
        );
        refused(
            "[stores.tiered]\nl2 = \"redis\"",
            "stores.tiered.l2",
            &[
                "expected a table naming a driver",
                "found the string \"redis\"",
            ],
        );
        refused(
            "[stores.none]\ndriver = false",
            "stores.none.driver",
            &["a string naming a driver", "found a boolean (false)"],
        );
    }

    #[test]
    fn wrong_types() {
        let cases: &[(&str, &str, &str)] = &[
            ("prefix = 1", "prefix", "expected a key prefix (a string); found an integer (1)"),
            ("default_store = []", "default_store", "expected a store name (a string); found an array"),
            ("allow_null_values = \"yes\"", "allow_null_values", "expected a boolean (true or false); found the string \"yes\""),
            ("cache_names = \"users\"", "cache_names", "expected an array of cache names, e.g. [\"users\", \"products\"]; found the string \"users\""),
            ("cache_names = [\"users\", 2]", "cache_names[1]", "expected a cache name; found an integer (2)"),
            ("stores = 1", "stores", "expected a table of stores, e.g. [stores.memory]; found an integer (1)"),
            ("stores.memory = \"memory\"", "stores.memory", "expected a table describing a store"),
            ("caches = [1]", "caches", "expected a table of caches, e.g. [caches.users]; found an array"),
            ("[caches]\nusers = 5", "caches.users", "expected a table of cache settings"),
            ("[caches.users]\nallow_null_values = 1", "caches.users.allow_null_values", "expected a boolean (true or false); found an integer (1)"),
            ("[caches.users]\nstore = 1.5", "caches.users.store", "expected a store name (a string); found a float (1.5)"),
            ("ttl = 300", "ttl", "expected a duration as a string with a unit, e.g. \"30s\" or \"5m\"; found an integer (300) (write \"300s\" for 300 seconds)"),
            ("grace = true", "grace", "expected a duration as a string with a unit, e.g. \"30s\" or \"5m\"; found a boolean (true)"),
            ("[caches.users]\ntimeout = 1979-05-27", "caches.users.timeout", "found a date-time (1979-05-27)"),
            ("[stores.tiered]\nl2 = { driver = \"redis\" }\nl2_circuit_breaker = 10", "stores.tiered.l2_circuit_breaker", "found an integer (10)"),
            ("eager_refresh = 1.0", "eager_refresh", "expected a fraction of the TTL strictly between 0 and 1, e.g. 0.8; found 1"),
            ("[caches.users]\neager_refresh = 0.0", "caches.users.eager_refresh", "strictly between 0 and 1, e.g. 0.8; found 0"),
            ("[caches.users]\neager_refresh = \"80%\"", "caches.users.eager_refresh", "found the string \"80%\""),
        ];
        for (text, field, expected) in cases {
            refused(text, field, &[expected]);
        }
    }

    #[test]
    fn unknown_keys_list_the_allowed_ones() {
        refused(
            "ttl2 = \"5m\"",
            "ttl2",
            &[
                "one of the keys default_store, prefix, ttl, grace, grace_backoff, timeout, \
                 hard_timeout, allow_null_values, eager_refresh, tti, jitter, l1_ttl, \
                 wait_timeout, background_l2_writes, force_fresh, skip_l2_read, skip_l2_write, \
                 skip_bus, cache_names, stores, caches",
                "found the unknown key `ttl2` (did you mean `ttl`?)",
            ],
        );
        refused("[caches.users]\ntll = \"5m\"", "caches.users.tll", &[
                "store, ttl, grace, grace_backoff, timeout, hard_timeout, allow_null_values, eager_refresh",
                "(did you mean `ttl`?)",
            ]);
        refused(
            "[stores.tiered]\nl1 = { driver = \"memory\" }\nl3 = { driver = \"redis\" }",
            "stores.tiered.l3",
            &["driver, l1, l2, bus, prefix, l2_circuit_breaker", "`l3`"],
        );
        let message = error("[caches.users]\nzzzzzzzzz = 1", "caches.users.zzzzzzzzz");
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn bad_durations_carry_the_units_message() {
        refused(
            "ttl = \"5 minuts\"",
            "ttl",
            &[
                "\"5 minuts\" is not a duration: unknown unit \"minuts\"",
                "\"1h 30m\"",
            ],
        );
        refused(
            "[caches.users]\ngrace = \"-1h\"",
            "caches.users.grace",
            &["\"-1h\" is negative"],
        );
        refused(
            "[stores.s]\nl2 = { driver = \"redis\" }\nl2_circuit_breaker = \"\"",
            "stores.s.l2_circuit_breaker",
            &["an empty string is not a duration"],
        );
    }

    #[test]
    fn driver_with_tiers_is_an_error() {
        refused("[stores.mixed]\ndriver = \"memory\"\nl2 = { driver = \"redis\" }\nbus = { driver = \"redis\" }",
            "stores.mixed", &[
                "expected either `driver` (the whole store is one tier) or tiers",
                "found `driver` and `l2`, `bus`",
            ]);
    }

    #[test]
    fn store_without_tiers_is_an_error() {
        refused(
            "[stores.empty]",
            "stores.empty",
            &["expected a store: `driver = \"memory\"`", "found no tier"],
        );
        refused("[stores.p]\nprefix = \"p\"", "stores.p", &["found no tier"]);
        refused(
            "[stores.b]\nbus = { driver = \"redis\" }",
            "stores.b",
            &["found only `bus`"],
        );
    }

    #[test]
    fn unknown_stores_are_errors_listing_the_stores() {
        let stores = "[stores.memory]\nl1 = { driver = \"memory\" }\n[stores.tiered]\nl1 = { driver = \"memory\" }\n";
        refused(&format!("default_store = \"teired\"\n{stores}"),
            "default_store", &["expected the name of a configured store (memory, tiered); found \"teired\" (did you mean \"tiered\"?)"]);
        let message = error(
            &format!("{stores}[caches.users]\nstore = \"redis\""),
            "caches.users.store",
        );
        assert_contains(
            &message,
            &["the name of a configured store (memory, tiered); found \"redis\""],
        );
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn invalid_names() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "prefix = \"\"",
                "prefix",
                "expected a key prefix; found an empty string",
            ),
            (
                "prefix = \"my app\"",
                "prefix",
                "found \"my app\", which contains a space",
            ),
            (
                "prefix = \"a:b\"",
                "prefix",
                "found \"a:b\", which contains `:`",
            ),
            (
                "default_store = \"x*\"",
                "default_store",
                "expected a store name without whitespace or any of `: # * ? [ ] \\`",
            ),
            (
                "cache_names = [\"users\", \"\"]",
                "cache_names[1]",
                "expected a cache name; found an empty string",
            ),
            (
                "cache_names = [\"us?rs\"]",
                "cache_names[0]",
                "which contains `?`",
            ),
            (
                "[stores.\"a b\"]\ndriver = \"none\"",
                "stores.\"a b\"",
                "expected a store name without",
            ),
            (
                "[stores.\"\"]\ndriver = \"none\"",
                "stores.\"\"",
                "expected a store name; found an empty string",
            ),
            (
                "[stores.\"x[1]\"]\ndriver = \"none\"",
                "stores.\"x[1]\"",
                "which contains `[`",
            ),
            (
                "[stores.s]\ndriver = \"none\"\nprefix = \"a#b\"",
                "stores.s.prefix",
                "which contains `#`",
            ),
            (
                "[caches.\"a\\\\b\"]\nttl = \"1s\"",
                "caches.\"a\\\\b\"",
                "which contains `\\`",
            ),
            (
                "[caches.\"tab\\there\"]",
                "caches.\"tab\\there\"",
                "which contains a tab",
            ),
            (
                "[caches.users]\nstore = \"]\"",
                "caches.users.store",
                "which contains `]`",
            ),
        ];
        for (text, field, expected) in cases {
            refused(text, field, &[expected]);
        }
    }

    /// Issue 15's options, at the top level and under `[caches.NAME]`: each parsed by its
    /// kind, and in effect on the manager's caches (a cache's own over the top level's,
    /// the rest inherited).
    #[test]
    fn the_runtime_options_parse_at_the_top_level_and_per_cache_and_take_effect() {
        let config = parse(
            r#"
tti = "10m"
jitter = "30s"
l1_ttl = "1m"
wait_timeout = "5s"
background_l2_writes = true

[stores.none]
driver = "none"

[caches.users]
tti = "2m"
force_fresh = true
skip_l2_read = true
skip_l2_write = true
skip_bus = true
"#,
        );
        let top = CacheOptions {
            tti: secs(600),
            jitter: secs(30),
            l1_ttl: secs(60),
            wait_timeout: secs(5),
            background_l2_writes: Some(true),
            ..CacheOptions::new()
        };
        let users = CacheOptions {
            tti: secs(120),
            force_fresh: Some(true),
            skip_l2_read: Some(true),
            skip_l2_write: Some(true),
            skip_bus: Some(true),
            ..CacheOptions::new()
        };
        assert_eq!(config.defaults, top);
        assert_eq!(config.caches["users"].options, users);
        let manager = crate::CacheManager::from_config(config).unwrap();
        let settings = |cache: &str| *manager.cache(cache).unwrap().engine.settings();
        assert_eq!(settings("users"), CacheOptions::layered([&top, &users]));
        assert_eq!(settings("orders"), CacheOptions::layered([&top]));
    }

    #[test]
    fn cache_names_restrict_configured_caches() {
        refused(
            "cache_names = [\"users\", \"users\"]",
            "cache_names[1]",
            &["expected each cache listed once; found \"users\" a second time"],
        );
        refused(
            "cache_names = [\"users\", \"products\"]\n[caches.orders]\nttl = \"1m\"",
            "caches.orders",
            &[
                "expected one of the caches listed in `cache_names` (users, products)",
                "found \"orders\"",
            ],
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        refused(
            "ttl = \"5m\"\n[stores.memory]\nl1 = { driver = memory }\n",
            "stores.memory.l1",
            &["expected valid TOML; found a syntax error at line 3, column"],
        );
        refused(
            "prefix = \"unterminated\n",
            "prefix",
            &["at line 1, column"],
        );
        refused(
            "ttl = \"5m\"\nttl = \"6m\"\n",
            "ttl",
            &["at line 2, column 1", "duplicate key"],
        );
        refused("[stores.memory\n", "stores.memory", &["at line 1, column"]);
    }

    #[test]
    fn credentials_are_masked_in_found_values() {
        let message = error(
            "[stores.s]\nl2 = { driver = \"redis\" }\nprefix = \"redis://user:secret@host:6379/0\"",
            "stores.s.prefix",
        );
        assert!(!message.contains("secret"), "{message}");
        assert_contains(&message, &["redis://user:***@host:6379/0"]);
    }

    #[test]
    fn distributed_lock_options() {
        let redis = "l2 = { driver = \"redis\", url = \"redis://h\" }";
        let config = parse(&format!(
            "[stores.a]\n{redis}\nlock = \"redis\"\nlock_timeout = \"3s\"\n\
             [stores.b]\ndriver = \"redis\"\nurl = \"redis://h\"\nlock = \"redis\"\n\
             [stores.c]\n{redis}\nlock = \"none\"\n[stores.d]\n{redis}\n"
        ));
        assert_eq!(config.stores["a"].lock, LockKind::Redis);
        assert_eq!(config.stores["a"].lock_timeout, secs(3));
        // The one-tier form keeps `lock` for the store, not for the driver's options.
        assert_eq!(config.stores["b"].lock, LockKind::Redis);
        let single = config.stores["b"].single.as_ref().unwrap();
        assert!(!single.options.contains_key("lock"));
        assert_eq!(config.stores["c"].lock, LockKind::None);
        assert_eq!(config.stores["d"].lock, LockKind::None);
        assert_eq!(config.stores["d"].lock_timeout, None);

        refused(
            &format!("[stores.s]\n{redis}\nlock = \"zookeeper\""),
            "stores.s.lock",
            &[
                "\"none\", \"redis\" or \"database\"",
                "found the string \"zookeeper\"",
            ],
        );
        refused(
            &format!("[stores.s]\n{redis}\nlock = true"),
            "stores.s.lock",
            &["found a boolean (true)"],
        );
        // A lock in DynamoDB needs a DynamoDB L2.
        let dynamo = "l2 = { driver = \"dynamodb\", table = \"t\" }";
        let config = parse(&format!(
            "[stores.a]\n{dynamo}\nlock = \"dynamodb\"\nlock_timeout = \"3s\""
        ));
        assert_eq!(config.stores["a"].lock, LockKind::Dynamodb);
        refused(
            &format!("[stores.s]\n{redis}\nlock = \"dynamodb\""),
            "stores.s.lock",
            &["whose L2 is the DynamoDB driver", "the `redis` driver"],
        );
        refused(
            "[stores.s]\nl1 = { driver = \"memory\" }\nlock = \"redis\"",
            "stores.s.lock",
            &["only on a store with a Redis L2", "has no l2"],
        );
        refused(
            "[stores.s]\ndriver = \"memory\"\nlock = \"redis\"",
            "stores.s.lock",
            &["whose L2 is the Redis driver", "the `memory` driver"],
        );
        // A database lock lives in a database L2, and only there.
        let database = "l2 = { driver = \"database\", url = \"sqlite::memory:\" }";
        let config = parse_toml(
            &format!("[stores.db]\n{database}\nlock = \"database\"\nlock_timeout = \"4s\""),
            ConfigOrigin::String,
        )
        .unwrap();
        assert_eq!(config.stores["db"].lock, LockKind::Database);
        assert_eq!(
            config.stores["db"].lock_timeout,
            Some(Duration::from_secs(4))
        );
        refused(
            &format!("[stores.s]\n{redis}\nlock = \"database\""),
            "stores.s.lock",
            &["whose L2 is the database driver", "the `redis` driver"],
        );
        refused(
            &format!("[stores.s]\n{database}\nlock = \"redis\""),
            "stores.s.lock",
            &["whose L2 is the Redis driver", "the `database` driver"],
        );
        refused(
            &format!("[stores.s]\n{redis}\nlock_timeout = \"5s\""),
            "stores.s.lock_timeout",
            &["only with `lock = \"redis\"`"],
        );
        refused(
            &format!("[stores.s]\n{redis}\nlock = \"redis\"\nlock_timeout = \"0s\""),
            "stores.s.lock_timeout",
            &["above zero", "found zero"],
        );
        refused(
            &format!("[stores.s]\n{redis}\nlock = \"redis\"\nlock_timeout = 5"),
            "stores.s.lock_timeout",
            &["write \"5s\""],
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(join("", "ttl"), "ttl");
        assert_eq!(join("stores", "a.b"), "stores.\"a.b\"");
        assert_eq!(edit_distance("ttl", "tll"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            closest("hard_timout", top_keys().into_iter()),
            Some("hard_timeout")
        );
        assert_eq!(quote(&"x".repeat(100)).len(), 62);
        assert_eq!(nearest_key("a = 1\n[t.u]\n b . c = 2", 3), "t.u.b.c");
        assert_eq!(nearest_key("[ t ]", 1), "t");
        assert_eq!(nearest_key("", 1), "");
    }

    proptest::proptest! {
        /// Syntax errors and odd names go through byte offsets and slicing: never a panic.
        #[test]
        fn garbage_never_panics(text in "[a-z_\\[\\]=\" \n.{},0-9:#@/é\t-]{0,80}") {
            let _ = parse_toml(&text, ConfigOrigin::String);
        }
    }
}
