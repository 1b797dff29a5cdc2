//! The driver's options: `url`, `operation_timeout`, `connect_timeout`, `max_value_size`.

use std::fmt;
use std::time::Duration;

use cache_core::codec::DEFAULT_MAX_VALUE_SIZE;
use cache_core::config::units::{parse_duration, parse_size};
use cache_core::config::TierConfig;
use cache_core::{CacheError, ConfigOrigin};

const KNOWN: &str = "url, operation_timeout, connect_timeout, max_value_size";

/// How to reach a Redis server, and how long to wait for it.
///
/// `Debug` never shows the password.
///
/// ```
/// use cache_backends::redis::RedisOptions;
/// use std::time::Duration;
/// let opts = RedisOptions::new("redis://:s3cret@127.0.0.1:6379/0")
///     .operation_timeout(Duration::from_millis(250));
/// assert!(!format!("{opts:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct RedisOptions {
    pub(crate) url: String,
    pub(crate) operation_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_value_size: usize,
}

impl RedisOptions {
    /// Default bound on one operation (a command round trip, connecting included): 1 s.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default bound on making a connection: 1 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

    /// Options for a server URL: `redis://[user][:password@]host[:port][/db]`, or
    /// `rediss://` for TLS (needs the `redis-tls` feature).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
        }
    }

    /// Bounds every operation: past it the operation fails as unavailable.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Bounds every (re)connection attempt, so a dead server costs at most this.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most bytes a read fetches (default [`DEFAULT_MAX_VALUE_SIZE`], 16 MiB). A
    /// bigger stored value is fetched only up to one byte past this, so it never costs
    /// more memory than that, and the codec then refuses it as oversized (a miss).
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Reads the options of a `driver = "redis"` tier, refusing unknown ones.
    ///
    /// ```
    /// use cache_backends::redis::RedisOptions;
    /// use cache_core::config::TierConfig;
    /// use cache_core::ConfigOrigin;
    /// let options = toml::from_str(r#"url = "redis://127.0.0.1/1"
    ///                                 operation_timeout = "250ms""#).unwrap();
    /// let cfg = TierConfig::new("redis", options, "stores.tiered.l2", ConfigOrigin::String);
    /// let opts = RedisOptions::from_tier_config(&cfg)?;
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn from_tier_config(cfg: &TierConfig) -> Result<Self, CacheError> {
        let mut url = None;
        let mut opts = Self::new(String::new());
        for (name, value) in &cfg.options {
            match name.as_str() {
                "url" => {
                    let text = value.as_str().ok_or_else(|| {
                        cfg.error(
                            name,
                            "a Redis URL string such as \"redis://127.0.0.1:6379/0\"",
                        )
                    })?;
                    url = Some(text.to_owned());
                }
                "operation_timeout" | "connect_timeout" => {
                    let parsed = value
                        .as_str()
                        .ok_or_else(|| "not a string".to_owned())
                        .and_then(parse_duration)
                        .map_err(|why| {
                            cfg.error(
                                name,
                                format!("a duration such as \"1s\" or \"250ms\" ({why})"),
                            )
                        })?;
                    if parsed.is_zero() {
                        return Err(cfg.error(name, "a duration greater than zero"));
                    }
                    if name == "operation_timeout" {
                        opts.operation_timeout = parsed;
                    } else {
                        opts.connect_timeout = parsed;
                    }
                }
                "max_value_size" => {
                    let size = match value {
                        toml::Value::Integer(n) => u64::try_from(*n).map_err(|e| e.to_string()),
                        toml::Value::String(text) => parse_size(text),
                        _ => Err("neither a string nor an integer".to_owned()),
                    };
                    opts.max_value_size = size
                        .ok()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            cfg.error(
                                name,
                                "a size in bytes greater than zero, such as \"16mb\" or 1048576",
                            )
                        })?;
                }
                other => {
                    return Err(cfg.error(
                        other,
                        format!("no such option for the redis driver (known options: {KNOWN})"),
                    ))
                }
            }
        }
        opts.url = url.ok_or_else(|| {
            cfg.error(
                "url",
                "a Redis URL such as \"redis://127.0.0.1:6379/0\" (the redis driver requires `url`)",
            )
        })?;
        // Parse now, so a bad URL is a configuration error and not a runtime fault.
        super::connection::parse_client(&opts.url).map_err(|why| cfg.error("url", why))?;
        Ok(opts)
    }

    /// The error for a bad URL given in code.
    pub(crate) fn builder_error(why: String) -> CacheError {
        CacheError::Config {
            origin: ConfigOrigin::Builder,
            field: "url".into(),
            expected: why,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &cache_core::redact::redact_url(&self.url))
            .field("operation_timeout", &self.operation_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_value_size", &self.max_value_size)
            .finish()
    }
}
