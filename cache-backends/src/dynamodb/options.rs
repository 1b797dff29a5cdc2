//! The driver's options: `table`, `region`, `endpoint`, `auto_create`,
//! `operation_timeout`, `connect_timeout`, `max_value_size`.

use std::fmt;
use std::time::Duration;

use cache_core::config::TierConfig;
use cache_core::CacheError;

const KNOWN: &[&str] = &[
    "table",
    "region",
    "endpoint",
    "auto_create",
    "operation_timeout",
    "connect_timeout",
    "max_value_size",
];

/// DynamoDB's limit on one item, attribute names and values included: 400 KB.
pub const DYNAMODB_ITEM_LIMIT: usize = 400 * 1024;

/// The largest value stored by default: DynamoDB's 400 KB item limit less 4 KiB for the
/// item's key (a partition key of at most 2 KiB, a sort key of at most 1 KiB) and its
/// other attributes, so a value of this size always fits in an item.
pub const DEFAULT_MAX_VALUE_SIZE: usize = DYNAMODB_ITEM_LIMIT - 4 * 1024;

/// Where the table is and how long to wait for it.
///
/// Credentials come from the standard AWS chain (environment, profile, web identity,
/// container and instance metadata) unless [`DynamoOptions::static_credentials`] gives
/// them in code. `Debug` never shows a secret.
///
/// ```
/// use cache_backends::dynamodb::DynamoOptions;
/// use std::time::Duration;
/// let opts = DynamoOptions::new("cachet")
///     .region("eu-west-1")
///     .endpoint("http://127.0.0.1:8000")
///     .static_credentials("AKIDEXAMPLE", "s3cret")
///     .operation_timeout(Duration::from_millis(500));
/// let shown = format!("{opts:?}");
/// assert!(shown.contains("eu-west-1") && !shown.contains("s3cret") && !shown.contains("AKIDEXAMPLE"));
/// ```
#[derive(Clone)]
pub struct DynamoOptions {
    pub(crate) table: String,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) auto_create: bool,
    pub(crate) operation_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_value_size: usize,
    pub(crate) credentials: Option<StaticCredentials>,
}

/// An access key given in code (tests, tools); never printed.
#[derive(Clone)]
pub(crate) struct StaticCredentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
}

impl DynamoOptions {
    /// Default bound on one operation, its retries included: 1 s.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default bound on opening a connection: 1 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

    /// Options for a table, with the region, endpoint and credentials of the standard AWS
    /// chain.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            region: None,
            endpoint: None,
            auto_create: false,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            credentials: None,
        }
    }

    /// The AWS region (`eu-west-1`); without it the standard chain decides
    /// (`AWS_REGION`, the profile, instance metadata).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Another endpoint than the region's, e.g. a local emulator
    /// (`http://127.0.0.1:8000`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Creates the table on first use when it does not exist (key schema `pk`/`sk`,
    /// on-demand billing) and turns on DynamoDB's TTL for `expires_at`. Off by default:
    /// in production, tables are usually made by infrastructure code.
    pub fn auto_create(mut self, yes: bool) -> Self {
        self.auto_create = yes;
        self
    }

    /// Bounds every operation, the SDK's retries included: past it the operation fails
    /// as unavailable.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Bounds opening each connection, so an unreachable endpoint costs at most this.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest value stored (default [`DEFAULT_MAX_VALUE_SIZE`]). A bigger value is
    /// not stored: the write fails, which a cache counts as an error and carries on.
    /// Values above [`DYNAMODB_ITEM_LIMIT`] never fit in an item anyway.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Signs with this access key instead of the standard chain's (tests, tools). The
    /// key never appears in `Debug` output, descriptions or errors.
    pub fn static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some(StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        });
        self
    }

    /// Checks what a builder was given, as configuration is checked.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.table.is_empty() {
            return Err((
                "table",
                "a table name (the dynamodb driver requires `table`)".into(),
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err((
                    "endpoint",
                    "a URL starting with http:// or https://, such as \"http://127.0.0.1:8000\""
                        .into(),
                ));
            }
        }
        if self.region.as_deref() == Some("") {
            return Err(("region", "a region name such as \"eu-west-1\"".into()));
        }
        if self.max_value_size == 0 || self.max_value_size > DYNAMODB_ITEM_LIMIT {
            return Err((
                "max_value_size",
                format!(
                    "a size in bytes greater than zero and at most {DYNAMODB_ITEM_LIMIT} \
                     (DynamoDB's 400 KB item limit), such as \"256kb\""
                ),
            ));
        }
        if self.operation_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(("operation_timeout", "a duration greater than zero".into()));
        }
        Ok(())
    }

    /// Reads the options of a `driver = "dynamodb"` tier, refusing unknown ones.
    ///
    /// ```
    /// use cache_backends::dynamodb::DynamoOptions;
    /// use cache_core::config::TierConfig;
    /// use cache_core::ConfigOrigin;
    /// let options = toml::from_str(r#"table = "cachet"
    ///                                  region = "eu-west-1"
    ///                                  max_value_size = "256kb""#).unwrap();
    /// let cfg = TierConfig::new("dynamodb", options, "stores.dynamo.l2", ConfigOrigin::String);
    /// let opts = DynamoOptions::from_tier_config(&cfg)?;
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn from_tier_config(cfg: &TierConfig) -> Result<Self, CacheError> {
        let mut table = None;
        let mut opts = Self::new(String::new());
        for (name, value) in &cfg.options {
            match name.as_str() {
                "table" => table = Some(cfg.string(name, value, "a table name (a string)")?),
                "region" => {
                    opts.region =
                        Some(cfg.string(name, value, "a region name such as \"eu-west-1\"")?)
                }
                "endpoint" => {
                    opts.endpoint =
                        Some(cfg.string(name, value, "a URL such as \"http://127.0.0.1:8000\"")?)
                }
                "auto_create" => opts.auto_create = cfg.boolean(name, value)?,
                "operation_timeout" => opts.operation_timeout = cfg.duration(name, value)?,
                "connect_timeout" => opts.connect_timeout = cfg.duration(name, value)?,
                // Sizes over DynamoDB's item limit are refused by `validate` below.
                "max_value_size" => opts.max_value_size = cfg.size(name, value)?,
                other => return Err(cfg.unknown_option(other, KNOWN)),
            }
        }
        opts.table = table.ok_or_else(|| {
            cfg.error(
                "table",
                "a table name such as \"cachet\" (the dynamodb driver requires `table`)",
            )
        })?;
        opts.validate()
            .map_err(|(field, why)| cfg.error(field, why))?;
        Ok(opts)
    }
}

impl fmt::Debug for DynamoOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoOptions")
            .field("table", &self.table)
            .field("region", &self.region)
            .field(
                "endpoint",
                &self.endpoint.as_deref().map(cache_core::redact::redact_url),
            )
            .field("auto_create", &self.auto_create)
            .field("operation_timeout", &self.operation_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_value_size", &self.max_value_size)
            .field(
                "credentials",
                &if self.credentials.is_some() {
                    "static (redacted)"
                } else {
                    "the standard AWS chain"
                },
            )
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
            "dynamodb",
            toml::from_str(options).unwrap(),
            "stores.dynamo.l2",
            ConfigOrigin::String,
        )
    }

    #[test]
    fn every_option_is_read() {
        let opts = DynamoOptions::from_tier_config(&cfg(r#"
            table = "cachet"
            region = "eu-west-1"
            endpoint = "http://127.0.0.1:8000"
            auto_create = true
            operation_timeout = "250ms"
            connect_timeout = "2s"
            max_value_size = "100kb""#))
        .unwrap();
        assert_eq!(opts.table, "cachet");
        assert_eq!(opts.region.as_deref(), Some("eu-west-1"));
        assert_eq!(opts.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
        assert!(opts.auto_create);
        assert_eq!(opts.operation_timeout, Duration::from_millis(250));
        assert_eq!(opts.connect_timeout, Duration::from_secs(2));
        assert_eq!(opts.max_value_size, 100 * 1024);
        let defaults = DynamoOptions::from_tier_config(&cfg(r#"table = "t""#)).unwrap();
        assert!(!defaults.auto_create);
        assert_eq!(defaults.max_value_size, DEFAULT_MAX_VALUE_SIZE);
        assert_eq!(defaults.region, None);
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            ("region = \"eu-west-1\"", "table"),
            ("table = \"t\"\ntabel = \"u\"", "tabel"),
            ("table = \"t\"\nmax_value_size = \"1mb\"", "max_value_size"),
            ("table = \"t\"\nmax_value_size = 0", "max_value_size"),
            ("table = \"t\"\nendpoint = \"127.0.0.1:8000\"", "endpoint"),
            ("table = \"t\"\nauto_create = \"yes\"", "auto_create"),
            (
                "table = \"t\"\noperation_timeout = \"0s\"",
                "operation_timeout",
            ),
            ("table = 7", "table"),
        ];
        for (text, field) in cases {
            match DynamoOptions::from_tier_config(&cfg(text)) {
                Err(CacheError::Config { field: f, .. }) => {
                    assert_eq!(f, format!("stores.dynamo.l2.{field}"), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // The item limit itself is allowed.
        let at_limit = format!("table = \"t\"\nmax_value_size = {DYNAMODB_ITEM_LIMIT}");
        assert!(DynamoOptions::from_tier_config(&cfg(&at_limit)).is_ok());
    }
}
