//! The one error type of cachet.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in cachet, in plain words.
///
/// Annotated functions never see these: a failing cache makes them run their own code.
/// The programmatic API and manager construction return them.
///
/// ```
/// use cache_core::CacheError;
/// let err = CacheError::UnknownCache { cache: "users".into(), known: vec!["posts".into()] };
/// assert!(err.to_string().contains("users"));
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A configuration value is wrong: names where it came from, which field, and what was expected.
    /// (`expected` is shown redacted: credentials never appear in errors.)
    #[error("{}: `{field}`: {}", origin.display(), crate::redact::redact_text(expected))]
    Config {
        /// The file (or `<string>` / `<builder>` / `<env>`) the configuration came from.
        origin: ConfigOrigin,
        /// The dotted path of the offending field, e.g. `stores.tiered.l1.max_size`.
        field: String,
        /// What was expected, and what was found.
        expected: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read cache configuration file {}: {source}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The named cache does not exist (restricted by `cache_names`).
    #[error("no cache named `{cache}` (the configuration's `cache_names` allows only: {})", known.join(", "))]
    UnknownCache {
        /// The cache asked for.
        cache: String,
        /// The caches that exist.
        known: Vec<String>,
    },
    /// The named store does not exist.
    #[error("no store named `{store}` (configured stores: {})", known.join(", "))]
    UnknownStore {
        /// The store asked for.
        store: String,
        /// The stores that exist.
        known: Vec<String>,
    },
    /// An annotated function uses a cache this manager cannot resolve.
    #[error(
        "cache `{cache}` used by `{function}` ({file}:{line}) cannot be resolved: {}",
        crate::redact::redact_text(reason)
    )]
    UndeclaredCache {
        /// The cache name in the annotation.
        cache: String,
        /// The annotated function.
        function: String,
        /// Its source file.
        file: String,
        /// Its line.
        line: u32,
        /// Why it cannot be resolved.
        reason: String,
    },
    /// Two operations on one cache disagree on its key or value type (checked when a manager
    /// is built; a typed cache is checked at compile time instead).
    #[error("{0}")]
    TypeConflict(Box<crate::inventory::TypeConflict>),
    /// A cache or namespace name is not allowed.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A key could not be encoded from the value given.
    #[error("cannot encode cache key: {0}")]
    Key(#[from] crate::key::KeyError),
    /// A value could not be encoded or decoded for a remote tier.
    #[error("cannot encode or decode the cached value: {}", crate::redact::redact_text(.0))]
    Codec(String),
    /// A store tier (e.g. Redis) failed.
    #[error("store `{store}` failed: {source}")]
    Tier {
        /// The store.
        store: String,
        /// What failed.
        #[source]
        source: TierError,
    },
    /// The global manager was set twice.
    #[error(
        "the global cache manager is already initialised; call cachet::init once, before first use"
    )]
    AlreadyInitialized,
    /// The value-producing function took longer than the hard timeout.
    #[error("cache `{cache}`: the value factory took longer than the hard timeout of {timeout:?}")]
    Timeout {
        /// The cache.
        cache: String,
        /// The hard timeout.
        timeout: Duration,
    },
    /// The value-producing function panicked.
    #[error("cache `{cache}`: the value factory panicked")]
    FactoryPanicked {
        /// The cache.
        cache: String,
    },
    /// This call waited for a concurrent call on the same key (single flight), whose
    /// factory returned an error; the factory was not run again for this call. The
    /// concurrent call returned the factory's own error.
    #[error(
        "cache `{cache}`: the concurrent call computing this entry failed (its caller got the factory's error); not run again for this call"
    )]
    LeaderFailed {
        /// The cache.
        cache: String,
    },
}

/// Field by field like a derived `Debug`, with every free-text field redacted
/// ([`crate::redact::redact_text`]): errors are logged and unwrapped, and credentials never
/// appear in either.
impl std::fmt::Debug for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::redact_text;
        match self {
            CacheError::Config {
                origin,
                field,
                expected,
            } => f
                .debug_struct("Config")
                .field("origin", origin)
                .field("field", field)
                .field("expected", &redact_text(expected))
                .finish(),
            CacheError::ConfigFile { path, source } => f
                .debug_struct("ConfigFile")
                .field("path", path)
                .field("source", source)
                .finish(),
            CacheError::UnknownCache { cache, known } => f
                .debug_struct("UnknownCache")
                .field("cache", cache)
                .field("known", known)
                .finish(),
            CacheError::UnknownStore { store, known } => f
                .debug_struct("UnknownStore")
                .field("store", store)
                .field("known", known)
                .finish(),
            CacheError::UndeclaredCache {
                cache,
                function,
                file,
                line,
                reason,
            } => f
                .debug_struct("UndeclaredCache")
                .field("cache", cache)
                .field("function", function)
                .field("file", file)
                .field("line", line)
                .field("reason", &redact_text(reason))
                .finish(),
            CacheError::InvalidName { name, reason } => f
                .debug_struct("InvalidName")
                .field("name", name)
                .field("reason", reason)
                .finish(),
            CacheError::TypeConflict(c) => f.debug_tuple("TypeConflict").field(c).finish(),
            CacheError::Key(e) => f.debug_tuple("Key").field(e).finish(),
            CacheError::Codec(why) => f.debug_tuple("Codec").field(&redact_text(why)).finish(),
            CacheError::Tier { store, source } => f
                .debug_struct("Tier")
                .field("store", store)
                .field("source", source)
                .finish(),
            CacheError::AlreadyInitialized => f.write_str("AlreadyInitialized"),
            CacheError::Timeout { cache, timeout } => f
                .debug_struct("Timeout")
                .field("cache", cache)
                .field("timeout", timeout)
                .finish(),
            CacheError::LeaderFailed { cache } => f
                .debug_struct("LeaderFailed")
                .field("cache", cache)
                .finish(),
            CacheError::FactoryPanicked { cache } => f
                .debug_struct("FactoryPanicked")
                .field("cache", cache)
                .finish(),
        }
    }
}

/// Where a configuration came from, for error messages.
///
/// ```
/// use cache_core::ConfigOrigin;
/// assert_eq!(ConfigOrigin::File("cachet.toml".into()).display(), "cachet.toml");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// A TOML file.
    File(PathBuf),
    /// A TOML string given in code.
    String,
    /// The builder.
    Builder,
    /// An environment variable.
    Env(&'static str),
    /// The embedded default configuration.
    Default,
}

impl ConfigOrigin {
    /// A short human description.
    pub fn display(&self) -> String {
        match self {
            ConfigOrigin::File(p) => p.display().to_string(),
            ConfigOrigin::String => "<toml string>".into(),
            ConfigOrigin::Builder => "<builder>".into(),
            ConfigOrigin::Env(v) => format!("environment variable {v}"),
            ConfigOrigin::Default => "<embedded default configuration>".into(),
        }
    }
}

/// The failure of one tier operation (a provider's own error, boxed), e.g. a Redis error.
///
/// The message is redacted when the error is made ([`crate::redact::redact_text`]), so a
/// driver error repeating a connection URL never shows its password.
///
/// ```
/// use cache_core::TierError;
/// let e = TierError::new("connection refused");
/// assert_eq!(e.to_string(), "connection refused");
/// let e = TierError::new("cannot reach redis://app:s3cret@cache:6379/0");
/// assert_eq!(e.to_string(), "cannot reach redis://app:***@cache:6379/0");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TierError {
    message: String,
    kind: TierErrorKind,
}

/// What sort of tier failure this is; decides whether the circuit breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TierErrorKind {
    /// The server could not be reached, the connection dropped, or the operation timed out.
    Unavailable,
    /// Anything else (a refused command, a protocol error).
    Other,
}

impl TierError {
    /// A tier error of kind [`TierErrorKind::Unavailable`].
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: crate::redact::redact_text(&message.into()),
            kind: TierErrorKind::Unavailable,
        }
    }

    /// A tier error of the given kind.
    pub fn with_kind(message: impl Into<String>, kind: TierErrorKind) -> Self {
        Self {
            message: crate::redact::redact_text(&message.into()),
            kind,
        }
    }

    /// What sort of failure this is.
    pub fn kind(&self) -> TierErrorKind {
        self.kind
    }
}
