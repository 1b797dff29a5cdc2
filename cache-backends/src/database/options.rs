//! The driver's options: `url`, `table`, `auto_create`, `max_connections`,
//! `operation_timeout`, `connect_timeout`, `max_value_size`, `prune_interval`.

use std::fmt;
use std::time::Duration;

use cache_core::codec::DEFAULT_MAX_VALUE_SIZE;
use cache_core::config::TierConfig;
use cache_core::CacheError;

use super::dialect::{Dialect, Table};

const KNOWN: &[&str] = &[
    "url",
    "table",
    "auto_create",
    "max_connections",
    "operation_timeout",
    "connect_timeout",
    "max_value_size",
    "prune_interval",
];

/// How to reach a database, which table to use, and how long to wait for it.
///
/// `Debug` never shows the password.
///
/// ```
/// use cache_backends::database::DatabaseOptions;
/// use std::time::Duration;
/// let opts = DatabaseOptions::new("postgres://app:s3cret@127.0.0.1:5432/app")
///     .table("cachet_entries")
///     .operation_timeout(Duration::from_millis(500));
/// assert!(!format!("{opts:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct DatabaseOptions {
    pub(crate) url: String,
    pub(crate) table: String,
    pub(crate) auto_create: bool,
    pub(crate) max_connections: u32,
    pub(crate) operation_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_value_size: usize,
    pub(crate) prune_interval: Option<Duration>,
}

impl DatabaseOptions {
    /// The default table: `cachet_entries` (tags in `cachet_entries_tags`).
    pub const DEFAULT_TABLE: &'static str = "cachet_entries";
    /// Default bound on one operation, waiting for a pooled connection included: 1 s.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default bound on making a connection: 1 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default size of the connection pool: 10.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

    /// Options for a database URL: `postgres://user:password@host:port/db`,
    /// `mysql://user:password@host:port/db`, `sqlite://PATH` or `sqlite::memory:`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            table: Self::DEFAULT_TABLE.to_owned(),
            auto_create: true,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            prune_interval: None,
        }
    }

    /// The table of entries (default `cachet_entries`): letters, digits and `_`, optionally
    /// `schema.table`. Tags live in `{table}_tags`.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Whether to create the tables and their indexes at first use (default true). When
    /// false, a missing table is an error naming it and showing the DDL to run.
    pub fn auto_create(mut self, yes: bool) -> Self {
        self.auto_create = yes;
        self
    }

    /// The most connections the pool opens (default 10).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Bounds every operation, waiting for a connection included: past it the operation
    /// fails as unavailable.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Bounds every connection attempt, so a dead server costs at most this.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most bytes a read fetches (default 16 MiB): a bigger stored value is fetched
    /// only up to one byte past this, and the codec then refuses it (a miss).
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Deletes expired rows every `interval` in the background, in bounded batches (default:
    /// never; `cachet prune` does it on demand).
    pub fn prune_interval(mut self, interval: Option<Duration>) -> Self {
        self.prune_interval = interval;
        self
    }

    /// Reads the options of a `driver = "database"` tier, refusing unknown ones.
    ///
    /// ```
    /// use cache_backends::database::DatabaseOptions;
    /// use cache_core::config::TierConfig;
    /// use cache_core::ConfigOrigin;
    /// let options = toml::from_str(r#"url = "sqlite::memory:"
    ///                                 prune_interval = "5m""#).unwrap();
    /// let cfg = TierConfig::new("database", options, "stores.local.l2", ConfigOrigin::String);
    /// let opts = DatabaseOptions::from_tier_config(&cfg)?;
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn from_tier_config(cfg: &TierConfig) -> Result<Self, CacheError> {
        let mut url = None;
        let mut opts = Self::new(String::new());
        for (name, value) in &cfg.options {
            match name.as_str() {
                "url" => {
                    url = Some(cfg.string(
                        name,
                        value,
                        "a database URL string such as \"postgres://user@127.0.0.1:5432/app\"",
                    )?)
                }
                "table" => {
                    opts.table = cfg.string(
                        name,
                        value,
                        "a table name string such as \"cachet_entries\"",
                    )?
                }
                "auto_create" => opts.auto_create = cfg.boolean(name, value)?,
                "max_connections" => {
                    opts.max_connections = cfg.count(name, value, "connections")?
                }
                "operation_timeout" => opts.operation_timeout = cfg.duration(name, value)?,
                "connect_timeout" => opts.connect_timeout = cfg.duration(name, value)?,
                "prune_interval" => opts.prune_interval = Some(cfg.duration(name, value)?),
                "max_value_size" => opts.max_value_size = cfg.size(name, value)?,
                other => return Err(cfg.unknown_option(other, KNOWN)),
            }
        }
        opts.url = url.ok_or_else(|| {
            cfg.error(
                "url",
                "a database URL such as \"postgres://user@127.0.0.1:5432/app\", \"mysql://..\" or \"sqlite://var/cache.db\" (the database driver requires `url`)",
            )
        })?;
        // Check now, so a bad URL or table is a configuration error, not a runtime fault.
        Dialect::of_url(&opts.url).map_err(|why| cfg.error("url", why))?;
        Table::new(&opts.table).map_err(|why| cfg.error("table", why))?;
        Ok(opts)
    }

    /// The URL without its password, for descriptions and errors.
    pub(crate) fn target(&self) -> String {
        redacted_target(&self.url)
    }
}

/// A database URL as it may be shown: the password masked; a SQLite path as it is.
pub(crate) fn redacted_target(url: &str) -> String {
    if url.starts_with("sqlite:") {
        // A path, no credentials (and `sqlite::memory:` is not URL-shaped).
        return url.to_owned();
    }
    cache_core::redact::redact_url(url)
}

impl fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("url", &self.target())
            .field("table", &self.table)
            .field("auto_create", &self.auto_create)
            .field("max_connections", &self.max_connections)
            .field("operation_timeout", &self.operation_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_value_size", &self.max_value_size)
            .field("prune_interval", &self.prune_interval)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cache_core::ConfigOrigin;

    use super::*;

    fn cfg(options: &str) -> TierConfig {
        TierConfig::new(
            "database",
            toml::from_str(options).unwrap(),
            "stores.db.l2",
            ConfigOrigin::String,
        )
    }

    #[test]
    fn options_are_read_and_unknown_ones_refused() {
        let opts = DatabaseOptions::from_tier_config(&cfg(r#"url = "sqlite::memory:"
               table = "app.cache"
               auto_create = false
               max_connections = 3
               operation_timeout = "250ms"
               connect_timeout = "2s"
               max_value_size = "1mb"
               prune_interval = "5m""#))
        .unwrap();
        assert_eq!(opts.table, "app.cache");
        assert!(!opts.auto_create);
        assert_eq!(opts.max_connections, 3);
        assert_eq!(opts.operation_timeout, Duration::from_millis(250));
        assert_eq!(opts.connect_timeout, Duration::from_secs(2));
        assert_eq!(opts.max_value_size, 1024 * 1024);
        assert_eq!(opts.prune_interval, Some(Duration::from_secs(300)));
        let err = DatabaseOptions::from_tier_config(&cfg("url = \"sqlite::memory:\"\nttl = 1"))
            .unwrap_err();
        assert!(err.to_string().contains("stores.db.l2.ttl"), "{err}");
        let err = DatabaseOptions::from_tier_config(&cfg("table = \"x\"")).unwrap_err();
        assert!(err.to_string().contains("requires `url`"), "{err}");
    }

    #[test]
    fn bad_urls_and_tables_are_configuration_errors_that_never_echo_a_password() {
        let err = DatabaseOptions::from_tier_config(&cfg("url = \"oracle://u:hunter2@h/db\""))
            .unwrap_err();
        assert!(err.to_string().contains("stores.db.l2.url"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        for table in [
            "x; DROP TABLE y",
            "",
            "a.b.c",
            "1abc",
            "naïve",
            &"t".repeat(60),
        ] {
            let options = format!("url = \"sqlite::memory:\"\ntable = \"{table}\"");
            let err = DatabaseOptions::from_tier_config(&cfg(&options)).unwrap_err();
            assert!(
                err.to_string().contains("stores.db.l2.table"),
                "{table}: {err}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let opts = DatabaseOptions::new("postgres://app:hunter2@db:5432/app");
        let text = format!("{opts:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("postgres://app:***@db:5432/app"), "{text}");
        assert_eq!(redacted_target("sqlite::memory:"), "sqlite::memory:");
    }
}
