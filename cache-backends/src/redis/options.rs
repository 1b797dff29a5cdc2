//! The driver's options: where the data lives (`url`, `cluster`, or `sentinels` +
//! `service`), `operation_timeout`, `connect_timeout`, `max_value_size`, and the bus's
//! `heartbeat`.

use std::fmt;
use std::time::Duration;

use cache_core::codec::DEFAULT_MAX_VALUE_SIZE;
use cache_core::config::units::parse_duration;
use cache_core::config::TierConfig;
use cache_core::CacheError;

use super::topology::{self, Topology};

const KNOWN: &[&str] = &[
    "url",
    "cluster",
    "sentinels",
    "service",
    "operation_timeout",
    "connect_timeout",
    "max_value_size",
    "heartbeat",
    "runtime_connections",
];

/// How to reach Redis (one server, a Cluster, or through Sentinels), and how long to
/// wait for it.
///
/// `Debug` never shows the password.
///
/// ```
/// use cache_backends::redis::RedisOptions;
/// use std::time::Duration;
/// let opts = RedisOptions::new("redis://:s3cret@127.0.0.1:6379/0")
///     .operation_timeout(Duration::from_millis(250));
/// assert!(!format!("{opts:?}").contains("s3cret"));
/// let cluster = RedisOptions::cluster(["redis://:s3cret@10.0.0.1:7000", "redis://:s3cret@10.0.0.2:7000"]);
/// assert!(!format!("{cluster:?}").contains("s3cret"));
/// let ha = RedisOptions::sentinel(["redis://10.0.0.1:26379"], "mymaster");
/// ```
#[derive(Clone)]
pub struct RedisOptions {
    pub(crate) topology: Topology,
    pub(crate) operation_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_value_size: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) runtime_connections: bool,
}

impl RedisOptions {
    /// Default bound on one operation (a command round trip, connecting included): 1 s.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default bound on making a connection: 1 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// Default interval of the bus subscriber's liveness check: 1 s.
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
    /// The shortest heartbeat: 100 ms (a shorter one is read as this).
    pub const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
    /// The longest heartbeat: 1 h (a longer one is read as this).
    pub const MAX_HEARTBEAT: Duration = Duration::from_secs(3600);

    /// Options for a server URL: `redis://[user][:password@]host[:port][/db]`, or
    /// `rediss://` for TLS (needs the `redis-tls` feature).
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_topology(Topology::Node(url.into()))
    }

    /// Options for a Redis Cluster reached through any of `nodes` (seed URLs of the
    /// cluster's nodes, `redis://[user][:password@]host:port`; every seed carries the same
    /// credentials). Keys spread over the cluster's slots; see the module documentation for
    /// what the driver does differently on a cluster.
    ///
    /// ```
    /// use cache_backends::redis::{RedisOptions, RedisTier};
    /// let tier = RedisTier::new(&RedisOptions::cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]))?;
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn cluster<I>(nodes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::with_topology(Topology::Cluster(
            nodes.into_iter().map(Into::into).collect(),
        ))
    }

    /// Options for the current master of `service`, as the Sentinels at `sentinels` name it
    /// (`redis://[user][:password@]host:port` each; their user, password, database and TLS
    /// are used for the master too). A failover is followed: the connection is made again
    /// to whichever server the Sentinels promote.
    ///
    /// ```
    /// use cache_backends::redis::{RedisOptions, RedisTier};
    /// let opts = RedisOptions::sentinel(["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"], "mymaster");
    /// let tier = RedisTier::new(&opts)?;
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn sentinel<I>(sentinels: I, service: impl Into<String>) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::with_topology(Topology::Sentinel {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            service: service.into(),
        })
    }

    fn with_topology(topology: Topology) -> Self {
        Self {
            topology,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            heartbeat: Self::DEFAULT_HEARTBEAT,
            runtime_connections: true,
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

    /// How often a bus subscriber checks that the node it listens on still answers
    /// (default [`DEFAULT_HEARTBEAT`](Self::DEFAULT_HEARTBEAT), 1 s; `Duration::ZERO`
    /// turns the check off). A subscription only listens: a node that stops answering
    /// without closing the connection (frozen, or cut off by a network partition) would
    /// leave it deaf until the node thaws or the connection dies. So every `heartbeat`
    /// the subscriber sends a `PING` on its subscribed connection; one unanswered within
    /// three times `operation_timeout` (or the heartbeat, if longer), or failing on the
    /// connection, counts as a lost subscription (an error reply does not: the node is
    /// alive),
    /// made again from a fresh view of the servers (the promoted master, after a
    /// failover), and the store then treats its L1 as suspect, as after any lost
    /// subscription. Only the bus uses it (an L2 table refuses it). A heartbeat other than
    /// zero is read within [`MIN_HEARTBEAT`](Self::MIN_HEARTBEAT) and
    /// [`MAX_HEARTBEAT`](Self::MAX_HEARTBEAT) (the configuration refuses values outside).
    /// TOML: `heartbeat = "1s"`, or `heartbeat = "off"`.
    ///
    /// ```
    /// use cache_backends::redis::RedisOptions;
    /// use std::time::Duration;
    /// let opts = RedisOptions::new("redis://127.0.0.1:6379/0").heartbeat(Duration::from_millis(500));
    /// # let _ = opts;
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = if every.is_zero() {
            every
        } else {
            every.clamp(Self::MIN_HEARTBEAT, Self::MAX_HEARTBEAT)
        };
        self
    }

    /// Whether a caller on a `current_thread` tokio runtime gets a connection of that
    /// runtime (default `true`; one server only, not Sentinel nor a cluster). Every connection
    /// of the driver is driven by its own small background runtime, so that it works from
    /// any runtime or none and outlives them; a read from a `current_thread` runtime then
    /// costs two wake-ups of another thread. With this on, a runtime of that kind whose
    /// own scheduler awaits a read, write or touch has one more connection made on it (in
    /// the background, at its first such call) and uses it from then on: a read costs
    /// what a raw connection of that runtime costs. The connection closes when the
    /// runtime shuts down. Off: one connection per tier, whatever the callers. Such a
    /// connection times its requests on its runtime's clock: turn it off for a runtime that
    /// pauses time (`tokio::time::pause`), whose clock jumps to the next timer while the
    /// runtime waits for Redis. TOML: `runtime_connections = false`.
    ///
    /// ```
    /// use cache_backends::redis::RedisOptions;
    /// let opts = RedisOptions::new("redis://127.0.0.1:6379/0").runtime_connections(false);
    /// # let _ = opts;
    /// ```
    pub fn runtime_connections(mut self, on: bool) -> Self {
        self.runtime_connections = on;
        self
    }

    /// The most bytes a read fetches (default [`DEFAULT_MAX_VALUE_SIZE`], 16 MiB). A
    /// bigger stored value is fetched only up to one byte past this, so it never costs
    /// more memory than that, and the codec then refuses it as oversized (a miss).
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Reads the options of a `driver = "redis"` tier, refusing unknown ones, and
    /// `heartbeat`, which only a bus has ([`from_bus_config`](Self::from_bus_config)).
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
        Self::from_config(cfg, Role::Tier)
    }

    /// Reads the options of a `driver = "redis"` bus: a tier's options and `heartbeat`.
    ///
    /// ```
    /// use cache_backends::redis::RedisOptions;
    /// use cache_core::config::TierConfig;
    /// use cache_core::ConfigOrigin;
    /// let options = toml::from_str(r#"url = "redis://127.0.0.1/1"
    ///                                 heartbeat = "500ms""#).unwrap();
    /// let cfg = TierConfig::new("redis", options, "stores.tiered.bus", ConfigOrigin::String);
    /// let opts = RedisOptions::from_bus_config(&cfg)?;
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn from_bus_config(cfg: &TierConfig) -> Result<Self, CacheError> {
        Self::from_config(cfg, Role::Bus)
    }

    fn from_config(cfg: &TierConfig, role: Role) -> Result<Self, CacheError> {
        let (mut url, mut cluster, mut sentinels, mut service) = (None, None, None, None);
        let mut opts = Self::new(String::new());
        for (name, value) in &cfg.options {
            match name.as_str() {
                "url" => {
                    url = Some(cfg.string(
                        name,
                        value,
                        "a Redis URL string such as \"redis://127.0.0.1:6379/0\"",
                    )?)
                }
                "cluster" | "sentinels" => {
                    let urls = url_list(value).ok_or_else(|| {
                        cfg.error(
                            name,
                            "a non-empty array of Redis URLs such as [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"]",
                        )
                    })?;
                    if name == "cluster" {
                        cluster = Some(urls);
                    } else {
                        sentinels = Some(urls);
                    }
                }
                "service" => {
                    let text = value
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            cfg.error(
                                name,
                                "the master's name in the Sentinels' configuration, such as \"mymaster\"",
                            )
                        })?;
                    service = Some(text.to_owned());
                }
                "operation_timeout" => opts.operation_timeout = cfg.duration(name, value)?,
                "connect_timeout" => opts.connect_timeout = cfg.duration(name, value)?,
                "max_value_size" => opts.max_value_size = cfg.size(name, value)?,
                "heartbeat" if role == Role::Tier => return Err(cfg.error(
                    name,
                    "no such option on an L2 tier: `heartbeat` checks a bus subscription, so it \
                         belongs in the store's `bus = { driver = \"redis\", .. }` table (an L2 \
                         tier's every command is bounded by `operation_timeout` already)",
                )),
                "heartbeat" => opts.heartbeat = heartbeat(cfg, name, value)?,
                "runtime_connections" => {
                    opts.runtime_connections = value
                        .as_bool()
                        .ok_or_else(|| cfg.error(name, format!("true or false (found {value})")))?
                }
                other => return Err(cfg.unknown_option(other, KNOWN)),
            }
        }
        opts.topology = match (url, cluster, sentinels, service) {
            (Some(url), None, None, None) => Topology::Node(url),
            (None, Some(nodes), None, None) => Topology::Cluster(nodes),
            (None, None, Some(sentinels), Some(service)) => Topology::Sentinel { sentinels, service },
            (None, None, Some(_), None) => {
                return Err(cfg.error(
                    "service",
                    "the master's name to ask the Sentinels for, such as \"mymaster\" (`sentinels` requires `service`)",
                ))
            }
            (None, None, None, Some(_)) => {
                return Err(cfg.error(
                    "sentinels",
                    "the Sentinels' URLs, such as [\"redis://10.0.0.1:26379\"] (`service` names a master they monitor)",
                ))
            }
            (None, None, None, None) => {
                return Err(cfg.error(
                    "url",
                    "a Redis URL such as \"redis://127.0.0.1:6379/0\" (the redis driver requires `url`, `cluster` or `sentinels` + `service`)",
                ))
            }
            _ => {
                return Err(cfg.error(
                    "",
                    "one of `url` (one server), `cluster` (a Redis Cluster) or `sentinels` + `service` (Redis Sentinel), not several",
                ))
            }
        };
        // Parse now, so a bad URL is a configuration error and not a runtime fault.
        let field = match &opts.topology {
            Topology::Node(_) => "url",
            Topology::Cluster(_) => "cluster",
            Topology::Sentinel { .. } => "sentinels",
        };
        topology::check(&opts.topology).map_err(|why| cfg.error(field, why))?;
        Ok(opts)
    }

    /// The error for a bad URL given in code.
    pub(crate) fn builder_error(why: String) -> CacheError {
        crate::builder_error("url", &why)
    }
}

/// What a table configures: an L2 tier or a bus (only a bus has `heartbeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Tier,
    Bus,
}

/// `heartbeat = "1s"`: [`RedisOptions::MIN_HEARTBEAT`] to [`RedisOptions::MAX_HEARTBEAT`], or
/// `"off"`; a refusal names the field, the bounds, and what was wrong with the text.
fn heartbeat(cfg: &TierConfig, name: &str, value: &toml::Value) -> Result<Duration, CacheError> {
    if value.as_str() == Some("off") {
        return Ok(Duration::ZERO);
    }
    let expected =
        "a duration from \"100ms\" to \"1h\", such as \"1s\", or \"off\" (no liveness check)";
    let every = value
        .as_str()
        .ok_or_else(|| format!("found {value}"))
        .and_then(parse_duration)
        .map_err(|why| cfg.error(name, format!("{expected} ({why})")))?;
    if every < RedisOptions::MIN_HEARTBEAT || every > RedisOptions::MAX_HEARTBEAT {
        let why = if every.is_zero() {
            "zero would ping without pause; \"off\" turns the check off".to_owned()
        } else if every < RedisOptions::MIN_HEARTBEAT {
            format!("{every:?} would ping the server too often")
        } else {
            format!("{every:?} would leave a deaf subscription unnoticed for that long")
        };
        return Err(cfg.error(name, format!("{expected} ({why})")));
    }
    Ok(every)
}

/// A TOML array of strings, non-empty.
fn url_list(value: &toml::Value) -> Option<Vec<String>> {
    let urls = value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()?;
    (!urls.is_empty()).then_some(urls)
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("topology", &self.topology)
            .field("operation_timeout", &self.operation_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_value_size", &self.max_value_size)
            .field("heartbeat", &self.heartbeat)
            .field("runtime_connections", &self.runtime_connections)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cache_core::ConfigOrigin;

    use super::*;

    fn read(toml_text: &str) -> Result<RedisOptions, CacheError> {
        let options = toml::from_str(toml_text).unwrap();
        let cfg = TierConfig::new("redis", options, "stores.tiered.bus", ConfigOrigin::String);
        RedisOptions::from_bus_config(&cfg)
    }

    /// The refusal of `heartbeat = {text}` in a bus table, as displayed.
    fn refused(text: &str) -> String {
        read(&format!(
            "url = \"redis://127.0.0.1/0\"\nheartbeat = {text}"
        ))
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn a_bad_heartbeat_is_refused_naming_the_field_the_bounds_and_the_reason() {
        for text in [
            "\"10x\"",
            "\"often\"",
            "\"0s\"",
            "\"1ms\"",
            "\"99ms\"",
            "\"1000d\"",
            "\"2h\"",
            "\"OFF\"",
            "false",
            "1",
        ] {
            let err = refused(text);
            assert!(
                err.contains("`stores.tiered.bus.heartbeat`"),
                "{text}: {err}"
            );
            assert!(err.contains("from \"100ms\" to \"1h\""), "{text}: {err}");
            assert!(err.contains("\"off\""), "{text}: {err}");
        }
        // The parser's own reason is kept.
        assert!(
            refused("\"10x\"").contains("unknown unit \"x\""),
            "{}",
            refused("\"10x\"")
        );
        assert!(
            refused("\"1s!\"").contains("unexpected character"),
            "{}",
            refused("\"1s!\"")
        );
        assert!(refused("1").contains("found 1"), "{}", refused("1"));
        assert!(refused("\"0s\"").contains("\"off\" turns the check off"));
        assert!(refused("\"1ms\"").contains("too often"));
        assert!(refused("\"1000d\"").contains("unnoticed"));
        // The bounds themselves are accepted.
        for (text, every) in [("100ms", 100), ("1h", 3_600_000)] {
            let opts = read(&format!(
                "url = \"redis://127.0.0.1/0\"\nheartbeat = \"{text}\""
            ))
            .unwrap();
            assert_eq!(opts.heartbeat, Duration::from_millis(every));
        }
    }

    #[test]
    fn heartbeat_in_an_l2_table_is_refused_naming_the_file_and_field() {
        let path = std::path::PathBuf::from("/etc/shop/cachet.toml");
        let options = toml::from_str("url = \"redis://127.0.0.1/0\"\nheartbeat = \"1s\"").unwrap();
        let cfg = TierConfig::new(
            "redis",
            options,
            "stores.shared.l2",
            ConfigOrigin::File(path),
        );
        let err = RedisOptions::from_tier_config(&cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cachet.toml"), "{err}");
        assert!(err.contains("`stores.shared.l2.heartbeat`"), "{err}");
        assert!(err.contains("bus = {"), "{err}");
        // The same table without it is a tier; as a bus it keeps its heartbeat.
        let options = toml::from_str("url = \"redis://127.0.0.1/0\"").unwrap();
        let cfg = TierConfig::new("redis", options, "stores.shared.l2", ConfigOrigin::String);
        assert!(RedisOptions::from_tier_config(&cfg).is_ok());
        assert_eq!(
            read("url = \"redis://127.0.0.1/0\"\nheartbeat = \"1s\"")
                .unwrap()
                .heartbeat,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn runtime_connections_are_on_unless_turned_off() {
        let url = r#"url = "redis://127.0.0.1/0""#;
        assert!(read(url).unwrap().runtime_connections);
        assert!(
            !read(&format!("{url}\nruntime_connections = false"))
                .unwrap()
                .runtime_connections
        );
        let err = read(&format!("{url}\nruntime_connections = \"no\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`stores.tiered.bus.runtime_connections`"),
            "{err}"
        );
        assert!(err.contains("true or false"), "{err}");
    }

    #[test]
    fn a_heartbeat_given_in_code_is_kept_within_its_bounds() {
        let opts = |every| {
            RedisOptions::new("redis://127.0.0.1/0")
                .heartbeat(every)
                .heartbeat
        };
        assert_eq!(opts(Duration::ZERO), Duration::ZERO);
        assert_eq!(opts(Duration::from_millis(1)), RedisOptions::MIN_HEARTBEAT);
        assert_eq!(opts(Duration::from_millis(250)), Duration::from_millis(250));
        assert_eq!(opts(Duration::MAX), RedisOptions::MAX_HEARTBEAT);
    }

    #[test]
    fn heartbeat_is_read_from_config_and_defaults_to_a_second() {
        let url = r#"url = "redis://127.0.0.1/0""#;
        assert_eq!(read(url).unwrap().heartbeat, Duration::from_secs(1));
        let every = read(&format!("{url}\nheartbeat = \"250ms\"")).unwrap();
        assert_eq!(every.heartbeat, Duration::from_millis(250));
        let off = read(&format!("{url}\nheartbeat = \"off\"")).unwrap();
        assert!(off.heartbeat.is_zero());
        assert!(format!("{every:?}").contains("heartbeat: 250ms"));
        let err = read(&format!("{url}\nheartbeat = \"often\"")).unwrap_err();
        assert!(err.to_string().contains("\"off\""), "{err}");
        assert!(read(&format!("{url}\nheartbeat = \"0s\"")).is_err());
    }
}
