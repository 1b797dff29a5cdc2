//! The option set: every setting that configuration, a builder, an annotation or a call can
//! override, declared once, and the one merge that layers them.
//!
//! A cache's settings are the layers below, merged by [`CacheOptions::overlay`], each layer
//! overriding only what it sets:
//!
//! 1. cachet's defaults ([`CacheOptions::DEFAULTS`]),
//! 2. the manager's options: the configuration's top level, then the builder's setters
//!    (`CacheManagerBuilder::ttl`, ...),
//! 3. the cache's own: `[caches.NAME]`, then the builder's `cache_ttl` / `cache_options`,
//! 4. an annotation's (`#[cacheable("users", ttl = "5m")]`): the view of its caches,
//! 5. a call's ([`crate::Cache::with_options`]): a view of a view.
//!
//! Adding an option means: one line in [`option_set!`] below, its key in the TOML schema
//! (read from [`CacheOptions::OPTIONS`], so usually nothing), a row in the macro crate's
//! option table if annotations may set it, and the docs.

use std::time::Duration;

/// How an option's value is written and checked, in TOML and in annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionKind {
    /// A duration: `"5m"`, `"200ms"`.
    Duration,
    /// A fraction strictly between 0 and 1: `0.8`.
    Ratio,
    /// `true` or `false`.
    Bool,
}

/// One option's value, as read from configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OptionValue {
    Duration(Duration),
    Ratio(f64),
    Bool(bool),
}

impl std::fmt::Display for OptionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionValue::Duration(d) => write!(f, "{d:?}"),
            OptionValue::Ratio(r) => write!(f, "{r}"),
            OptionValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A type an option holds.
trait OptionType: Copy {
    fn from_value(value: OptionValue) -> Option<Self>;
}

impl OptionType for Duration {
    fn from_value(value: OptionValue) -> Option<Self> {
        match value {
            OptionValue::Duration(d) => Some(d),
            _ => None,
        }
    }
}

impl OptionType for f64 {
    fn from_value(value: OptionValue) -> Option<Self> {
        match value {
            OptionValue::Ratio(r) => Some(r),
            _ => None,
        }
    }
}

impl OptionType for bool {
    fn from_value(value: OptionValue) -> Option<Self> {
        match value {
            OptionValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// Whether a ratio option (`eager_refresh`) is in range: strictly between 0 and 1.
pub(crate) fn valid_ratio(ratio: f64) -> bool {
    ratio > 0.0 && ratio < 1.0
}

impl OptionKind {
    /// Whether `value` is acceptable for an option of this kind (beyond its type).
    fn accepts(self, value: OptionValue) -> bool {
        match (self, value) {
            (OptionKind::Ratio, OptionValue::Ratio(r)) => valid_ratio(r),
            (OptionKind::Duration, OptionValue::Duration(_))
            | (OptionKind::Bool, OptionValue::Bool(_)) => true,
            _ => false,
        }
    }

    /// What a value of this kind looks like, for error messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            OptionKind::Duration => "a duration like \"30s\", \"5m\" or \"1h 30m\"",
            OptionKind::Ratio => "a fraction of the TTL strictly between 0 and 1, e.g. 0.8",
            OptionKind::Bool => "true or false",
        }
    }
}

/// Declares the option set: its fields (with their docs), const setters, the merge, the
/// table of names and kinds, and the setter by name the TOML parser uses.
macro_rules! option_set {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty => $kind:ident; )*) => {
        /// Settings of a cache; `None` means "inherit from the layer below". A cache's
        /// settings are these layers, each merged over the one before by
        /// [`CacheOptions::overlay`]: cachet's [`CacheOptions::DEFAULTS`]; the manager's
        /// (the configuration's top level, then the builder's setters); the cache's own
        /// (`[caches.NAME]`, then the builder's `cache_options`); an annotation's
        /// (`#[cacheable("users", ttl = "5m")]`); a call's
        /// ([`crate::Cache::with_options`]).
        ///
        /// ```
        /// use std::time::Duration;
        /// use cache_core::CacheOptions;
        ///
        /// let cache = CacheOptions::new().ttl(Duration::from_secs(300)).grace(Duration::from_secs(3600));
        /// let call = CacheOptions::new().ttl(Duration::from_secs(60));
        /// let merged = cache.overlay(&call);
        /// assert_eq!(merged.ttl, Some(Duration::from_secs(60)));
        /// assert_eq!(merged.grace, Some(Duration::from_secs(3600)));
        /// ```
        #[derive(Debug, Clone, Copy, Default, PartialEq)]
        #[non_exhaustive]
        pub struct CacheOptions {
            $( $(#[$doc])* pub $name: Option<$ty>, )*
        }

        impl CacheOptions {
            /// No option set: everything is inherited.
            ///
            /// ```
            /// assert_eq!(cache_core::CacheOptions::new(), cache_core::CacheOptions::default());
            /// ```
            pub const fn new() -> Self {
                Self { $( $name: None, )* }
            }

            $(
                #[doc = concat!("Sets `", stringify!($name), "` (see the field of that name).")]
                ///
                /// ```
                /// let options = cache_core::CacheOptions::new();
                /// assert_eq!(options, cache_core::CacheOptions::default());
                /// ```
                #[must_use]
                pub const fn $name(mut self, value: $ty) -> Self {
                    self.$name = Some(value);
                    self
                }
            )*

            /// The one merge: `over`'s options where it sets them, `self`'s elsewhere. Every
            /// layer (configuration, builder, annotation, call) is applied with it.
            ///
            /// ```
            /// use std::time::Duration;
            /// use cache_core::CacheOptions;
            /// let base = CacheOptions::new().ttl(Duration::from_secs(5)).allow_null_values(false);
            /// let over = CacheOptions::new().ttl(Duration::from_secs(1));
            /// assert_eq!(base.overlay(&over), CacheOptions::new().ttl(Duration::from_secs(1)).allow_null_values(false));
            /// ```
            #[must_use]
            pub const fn overlay(self, over: &Self) -> Self {
                Self {
                    $( $name: match over.$name {
                        Some(value) => Some(value),
                        None => self.$name,
                    }, )*
                }
            }

            /// Every option's name (as in TOML and annotations) and kind.
            pub(crate) const OPTIONS: &'static [(&'static str, OptionKind)] =
                &[ $( (stringify!($name), OptionKind::$kind), )* ];

            /// Sets the option `name` to `value`; `false` for an unknown name or a value of
            /// another kind.
            pub(crate) fn set(&mut self, name: &str, value: OptionValue) -> bool {
                match name {
                    $( stringify!($name) => match <$ty as OptionType>::from_value(value) {
                        Some(value) => {
                            self.$name = Some(value);
                            true
                        }
                        None => false,
                    }, )*
                    _ => false,
                }
            }

            /// The first option set to a value its kind refuses (a ratio out of range),
            /// with that value: configuration and builders refuse it.
            pub(crate) fn invalid(&self) -> Option<(&'static str, OptionKind, String)> {
                $(
                    if let Some(value) = self.$name {
                        let kind = OptionKind::$kind;
                        let value = value.into_value();
                        if !kind.accepts(value) {
                            return Some((stringify!($name), kind, value.to_string()));
                        }
                    }
                )*
                None
            }

            /// These options without any its kind refuses: a per-call view ignores an
            /// out-of-range ratio rather than failing.
            pub(crate) fn valid_only(mut self) -> Self {
                $(
                    if self.$name.is_some_and(|v| !OptionKind::$kind.accepts(v.into_value())) {
                        self.$name = None;
                    }
                )*
                self
            }
        }
    };
}

/// A value back into an [`OptionValue`], for checks by kind.
trait IntoValue {
    fn into_value(self) -> OptionValue;
}

impl IntoValue for Duration {
    fn into_value(self) -> OptionValue {
        OptionValue::Duration(self)
    }
}

impl IntoValue for f64 {
    fn into_value(self) -> OptionValue {
        OptionValue::Ratio(self)
    }
}

impl IntoValue for bool {
    fn into_value(self) -> OptionValue {
        OptionValue::Bool(self)
    }
}

option_set! {
    /// How long an entry stays fresh. `None` at every level: until evicted.
    ttl: Duration => Duration;
    /// How long past `ttl` a stale entry is kept to be served when the function fails
    /// (zero: no grace).
    grace: Duration => Duration;
    /// After a failed refresh served the stale value, serve it (as fresh) this long before
    /// calling the function again.
    grace_backoff: Duration => Duration;
    /// Soft timeout: with a stale entry, answer with it after this long.
    timeout: Duration => Duration;
    /// Hard timeout: give up on the function after this long.
    hard_timeout: Duration => Duration;
    /// Whether `None` results are cached (default `true`).
    allow_null_values: bool => Bool;
    /// Eager refresh: a hit past this fraction of an entry's TTL (0 < x < 1) answers at
    /// once and refreshes the entry in the background.
    eager_refresh: f64 => Ratio;
    /// Time to idle: an entry not read for this long expires, even within its TTL (in L1;
    /// an L2 copy is kept by its TTL). Caffeine's `expireAfterAccess`.
    tti: Duration => Duration;
    /// Each write's TTL gets a random extra in `[0, jitter]`, so entries written together
    /// do not expire together.
    jitter: Duration => Duration;
    /// L1 copies live at most this long (fresh and stale alike), then are read from L2
    /// again: a bound on how stale an instance's L1 can be without a bus.
    l1_ttl: Duration => Duration;
    /// A single-flight waiter waits this long at most for the caller running the function,
    /// then runs it itself (the store's `lock_timeout` bounds the distributed lock instead).
    wait_timeout: Duration => Duration;
    /// The caller gets its value once L1 holds it; the L2 write and the bus message finish
    /// in the background.
    background_l2_writes: bool => Bool;
    /// Run the function and store its value even when a fresh value is cached.
    force_fresh: bool => Bool;
    /// Do not read L2 (L1 only, then the function).
    skip_l2_read: bool => Bool;
    /// Do not write or delete in L2 (L1 and the bus only).
    skip_l2_write: bool => Bool;
    /// Do not tell the other instances (no bus message) about writes and deletes.
    skip_bus: bool => Bool;
}

impl CacheOptions {
    /// cachet's own defaults, the lowest layer: `None` results are cached; nothing else is
    /// set (no TTL, no grace, no timeouts, no eager refresh).
    ///
    /// ```
    /// assert_eq!(cache_core::CacheOptions::DEFAULTS.allow_null_values, Some(true));
    /// ```
    pub const DEFAULTS: CacheOptions = CacheOptions::new().allow_null_values(true);

    /// Merges layers, lowest first, over [`CacheOptions::DEFAULTS`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::CacheOptions;
    /// let global = CacheOptions::new().ttl(Duration::from_secs(600));
    /// let own = CacheOptions::new().grace(Duration::from_secs(60));
    /// let resolved = CacheOptions::layered([&global, &own]);
    /// assert_eq!(resolved.ttl, Some(Duration::from_secs(600)));
    /// assert_eq!(resolved.grace, Some(Duration::from_secs(60)));
    /// assert_eq!(resolved.allow_null_values, Some(true));
    /// ```
    #[must_use]
    pub fn layered<'a>(layers: impl IntoIterator<Item = &'a CacheOptions>) -> CacheOptions {
        layers
            .into_iter()
            .fold(Self::DEFAULTS, |merged, layer| merged.overlay(layer))
    }

    /// Whether `None` results are cached, as resolved (`true` unless a layer says no).
    pub(crate) fn allows_null_values(&self) -> bool {
        self.allow_null_values.unwrap_or(true)
    }

    /// Whether `option` is set to `true` in this (resolved) set.
    pub(crate) fn on(option: Option<bool>) -> bool {
        option.unwrap_or(false)
    }

    /// Whether no option is set.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_option_once() {
        let names: Vec<&str> = CacheOptions::OPTIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "ttl",
                "grace",
                "grace_backoff",
                "timeout",
                "hard_timeout",
                "allow_null_values",
                "eager_refresh",
                "tti",
                "jitter",
                "l1_ttl",
                "wait_timeout",
                "background_l2_writes",
                "force_fresh",
                "skip_l2_read",
                "skip_l2_write",
                "skip_bus"
            ]
        );
    }

    #[test]
    fn set_by_name_checks_the_kind() {
        let mut o = CacheOptions::new();
        assert!(o.set("ttl", OptionValue::Duration(Duration::from_secs(1))));
        assert!(!o.set("ttl", OptionValue::Bool(true)));
        assert!(!o.set("nope", OptionValue::Bool(true)));
        assert!(o.set("eager_refresh", OptionValue::Ratio(0.5)));
        assert_eq!(o.ttl, Some(Duration::from_secs(1)));
        assert_eq!(o.eager_refresh, Some(0.5));
    }

    #[test]
    fn later_layers_win_and_unset_options_are_inherited() {
        let a = CacheOptions::new()
            .ttl(Duration::from_secs(1))
            .allow_null_values(false);
        let b = CacheOptions::new().ttl(Duration::from_secs(2));
        let c = CacheOptions::layered([&a, &b]);
        assert_eq!(c.ttl, Some(Duration::from_secs(2)));
        assert!(!c.allows_null_values());
        assert!(CacheOptions::layered([]).allows_null_values());
    }

    #[test]
    fn out_of_range_ratios_are_found_and_dropped() {
        let o = CacheOptions::new().eager_refresh(1.5);
        assert_eq!(o.invalid().map(|(n, ..)| n), Some("eager_refresh"));
        assert_eq!(o.valid_only(), CacheOptions::new());
        assert!(CacheOptions::new().eager_refresh(0.8).invalid().is_none());
        assert!(CacheOptions::new().is_empty());
    }
}
