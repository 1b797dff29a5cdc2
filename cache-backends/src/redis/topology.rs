//! How connections are made for each topology: one server, a Redis Cluster, or the
//! master that a set of Sentinels names.
//!
//! - One server: a multiplexed connection to it.
//! - Cluster: redis's cluster connection, which keeps a connection per node, routes
//!   each command to its slot's master, follows `MOVED`/`ASK` and refreshes the slot
//!   map when the topology changes (a failover included). Its requests are bounded as a
//!   whole (retries and redirects included) by `operation_timeout`, and its retries
//!   wait tens of milliseconds, not the crate's default second and more, so a retry
//!   fits inside that bound.
//! - Sentinel: each connection starts by asking the Sentinels for the current master
//!   (checking that it says it is one), then connects to it. After a failover the old
//!   connection fails (or answers `READONLY` once its server is demoted), is dropped,
//!   and the next one is made to the promoted server.
//!
//! Subscribers (the bus) get a classic pub/sub connection: to the server, to the
//! current master, or on a cluster to any node that accepts (a `PUBLISH` reaches every
//! node of a cluster), trying the next one when a node is lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection, PubSub};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, Pipeline, RedisFuture,
    RedisResult, TlsMode, Value,
};

use std::fmt;

use cache_core::redact::redact_url;

/// Where a tier or bus finds its Redis: one server, a Cluster, or the master a set of
/// Sentinels names.
#[derive(Clone)]
pub(crate) enum Topology {
    /// One server: `redis://[user][:password@]host[:port][/db]`.
    Node(String),
    /// A Redis Cluster, reached through any of these nodes (seed URLs); the rest of the
    /// cluster is discovered from them.
    Cluster(Vec<String>),
    /// The current master of `service`, as these Sentinels name it.
    Sentinel {
        /// The Sentinels' URLs; their user, password and TLS apply to the master too.
        sentinels: Vec<String>,
        /// The master's name in the Sentinels' configuration (`sentinel monitor <name> ..`).
        service: String,
    },
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted =
            |urls: &[String]| -> Vec<String> { urls.iter().map(|u| redact_url(u)).collect() };
        match self {
            Topology::Node(url) => f.debug_tuple("Node").field(&redact_url(url)).finish(),
            Topology::Cluster(nodes) => f.debug_tuple("Cluster").field(&redacted(nodes)).finish(),
            Topology::Sentinel { sentinels, service } => f
                .debug_struct("Sentinel")
                .field("sentinels", &redacted(sentinels))
                .field("service", service)
                .finish(),
        }
    }
}

/// `text` with `password` replaced by `***` (driver errors may quote it).
pub(crate) fn redact_text(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_owned(),
    }
}

/// A live connection: to one server (or the Sentinels' master), or to a cluster.
/// Cheap to clone; every clone shares the same sockets.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server.
    Node(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How to make a connection for one topology.
pub(crate) enum Source {
    Node(Client),
    /// Boxed: it holds the slot map's lock and the subscriber's counter besides the client.
    Cluster(Box<ClusterSource>),
    /// Behind a mutex: the Sentinel client caches its connections to the Sentinels and
    /// asks them one lookup at a time.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

pub(crate) struct ClusterSource {
    client: ClusterClient,
    connect_timeout: Duration,
    operation_timeout: Duration,
    /// The seed nodes as configured, for subscribers when no node list is known yet.
    seeds: Vec<ConnectionInfo>,
    /// Which node the next subscriber tries first, so a lost node is not retried first.
    next_subscriber: AtomicUsize,
    /// The slot map and the masters' connections, for commands sent from their callers.
    router: super::router::Router,
}

/// A source, with what may be shown of it.
pub(crate) struct Opened {
    pub(crate) source: Source,
    /// Where it connects, never with the password: `redis://user@host:port/db`,
    /// `cluster redis://host:port,host:port`, `sentinel mymaster via redis://host:port,..`.
    pub(crate) target: String,
    /// The password, for scrubbing error messages.
    pub(crate) password: Option<String>,
}

/// Opens (without connecting) a client for `url`; the error says what was expected and
/// never repeats the URL, which may hold a password.
pub(crate) fn parse_client(url: &str) -> Result<Client, String> {
    let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
    if !scheme_ok {
        return Err(
            "a URL starting with redis:// or rediss:// (redis://[user][:password@]host[:port][/db])"
                .into(),
        );
    }
    if url.starts_with("rediss://") && !cfg!(feature = "redis-tls") {
        return Err("a redis:// URL: rediss:// (TLS) needs cachet's `redis-tls` feature".into());
    }
    Client::open(url).map_err(|e| {
        // redis's parse errors describe the problem without echoing the URL, but scrub
        // anyway in case a future version does.
        let why = redact_text(&e.to_string(), password_of(url).as_deref());
        format!("a valid Redis URL, redis://[user][:password@]host[:port][/db] ({why})")
    })
}

/// The password part of a URL, if any, for scrubbing messages.
pub(crate) fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_owned())
}

/// `redis://user@host:port`: where `info` points, never with the password.
fn address(info: &ConnectionInfo) -> String {
    let (scheme, addr) = match info.addr() {
        ConnectionAddr::TcpTls { host, port, .. } => ("rediss", format!("{host}:{port}")),
        ConnectionAddr::Tcp(host, port) => ("redis", format!("{host}:{port}")),
        other => ("redis", other.to_string()),
    };
    let user = info
        .redis_settings()
        .username()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    // Built from parts that never hold the password; redacted all the same, as every
    // URL cachet shows is.
    cache_core::redact::redact_url(&format!("{scheme}://{user}{addr}"))
}

/// Every URL parsed, with the first one's password; several URLs must agree on it.
fn parse_all(urls: &[String]) -> Result<(Vec<ConnectionInfo>, Option<String>), String> {
    if urls.is_empty() {
        return Err("at least one URL".into());
    }
    let mut infos = Vec::with_capacity(urls.len());
    for url in urls {
        infos.push(parse_client(url)?.get_connection_info().clone());
    }
    let password = infos[0].redis_settings().password().map(str::to_owned);
    let username = infos[0].redis_settings().username().map(str::to_owned);
    let tls = matches!(infos[0].addr(), ConnectionAddr::TcpTls { .. });
    for info in &infos[1..] {
        let r = info.redis_settings();
        if r.password() != password.as_deref() || r.username() != username.as_deref() {
            return Err("URLs that all carry the same user and password".into());
        }
        if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) != tls {
            return Err("URLs that all use redis:// or all rediss://".into());
        }
    }
    Ok((infos, password))
}

/// Checks a topology's URLs without opening anything, for configuration errors.
pub(crate) fn check(topology: &Topology) -> Result<(), String> {
    open(topology, Duration::from_secs(1), Duration::from_secs(1)).map(|_| ())
}

/// A source for `topology`; nothing connects yet.
pub(crate) fn open(
    topology: &Topology,
    connect_timeout: Duration,
    operation_timeout: Duration,
) -> Result<Opened, String> {
    match topology {
        Topology::Node(url) => {
            let client = parse_client(url)?;
            let info = client.get_connection_info();
            let target = format!("{}/{}", address(info), info.redis_settings().db());
            let password = info.redis_settings().password().map(str::to_owned);
            Ok(Opened {
                source: Source::Node(client),
                target,
                password,
            })
        }
        Topology::Cluster(urls) => {
            let (seeds, password) = parse_all(urls)?;
            if seeds.iter().any(|s| s.redis_settings().db() != 0) {
                return Err("URLs without a database number: a cluster has database 0 only".into());
            }
            let client = ClusterClientBuilder::new(seeds.clone())
                .connection_timeout(connect_timeout)
                .response_timeout(operation_timeout)
                .overall_response_timeout(Some(operation_timeout))
                // Retries after a lost node wait 10-200 ms (10 ms × 2^n, jittered), so
                // several fit inside one operation_timeout while a failover settles.
                .retry_wait_formula(10, 2)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()
                .map_err(|e| {
                    format!(
                        "cluster seed URLs a cluster client accepts ({})",
                        redact_text(&e.to_string(), password.as_deref())
                    )
                })?;
            let target = format!(
                "cluster {}",
                seeds.iter().map(address).collect::<Vec<_>>().join(",")
            );
            Ok(Opened {
                source: Source::Cluster(Box::new(ClusterSource {
                    client,
                    connect_timeout,
                    operation_timeout,
                    seeds,
                    next_subscriber: AtomicUsize::new(0),
                    router: super::router::Router::default(),
                })),
                target,
                password,
            })
        }
        Topology::Sentinel { sentinels, service } => {
            let (infos, password) = parse_all(sentinels)?;
            let first = &infos[0];
            let mut node = SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(first.redis_settings().clone());
            if let ConnectionAddr::TcpTls { insecure, .. } = first.addr() {
                node = node.set_tls_mode(if *insecure {
                    TlsMode::Insecure
                } else {
                    TlsMode::Secure
                });
            }
            let target = format!(
                "sentinel {service} via {}",
                infos.iter().map(address).collect::<Vec<_>>().join(",")
            );
            let client = SentinelClient::build(
                infos,
                service.clone(),
                Some(node),
                SentinelServerType::Master,
            )
            .map_err(|e| {
                format!(
                    "Sentinel URLs a Sentinel client accepts ({})",
                    redact_text(&e.to_string(), password.as_deref())
                )
            })?;
            Ok(Opened {
                source: Source::Sentinel(tokio::sync::Mutex::new(client)),
                target,
                password,
            })
        }
    }
}

impl ClusterSource {
    /// The routes for commands sent from their callers (see [`super::router`]).
    pub(crate) fn router(&self) -> &super::router::Router {
        &self.router
    }

    /// The first seed: its user, password and TLS are every node's.
    pub(crate) fn seed(&self) -> &ConnectionInfo {
        &self.seeds[0]
    }

    /// A RESP3 cluster client delivering what the servers push (sharded messages,
    /// subscription changes, lost connections) to `pushes`: the sharded bus subscriber's.
    pub(crate) fn push_client(
        &self,
        pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    ) -> RedisResult<ClusterClient> {
        ClusterClientBuilder::new(self.seeds.clone())
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.operation_timeout)
            .overall_response_timeout(Some(self.operation_timeout))
            .retry_wait_formula(10, 2)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
    }
}

impl Source {
    /// The cluster's source, if this is one.
    pub(crate) fn cluster(&self) -> Option<&ClusterSource> {
        match self {
            Source::Cluster(cluster) => Some(cluster.as_ref()),
            _ => None,
        }
    }

    /// The client of the one server, if that is what this connects to (not a cluster, not
    /// Sentinel).
    pub(crate) fn node(&self) -> Option<&Client> {
        match self {
            Source::Node(client) => Some(client),
            _ => None,
        }
    }

    /// Connects: to the server, the cluster, or the master the Sentinels name now.
    pub(crate) async fn connect(&self, config: &AsyncConnectionConfig) -> RedisResult<Conn> {
        match self {
            Source::Node(client) => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map(Conn::Node),
            Source::Cluster(cluster) => cluster
                .client
                .get_async_connection()
                .await
                .map(Conn::Cluster),
            Source::Sentinel(sentinel) => {
                let master = sentinel.lock().await.async_get_client().await?;
                master
                    .get_multiplexed_async_connection_with_config(config)
                    .await
                    .map(Conn::Node)
            }
        }
    }

    /// A fresh classic pub/sub connection. On a cluster, `live` (the data connection, if
    /// any) supplies the node list; nodes are tried in turn from the one after the last
    /// used, each bounded by `per_node`.
    pub(crate) async fn pubsub(
        &self,
        live: Option<Conn>,
        per_node: Duration,
    ) -> RedisResult<PubSub> {
        match self {
            Source::Node(client) => client.get_async_pubsub().await,
            Source::Sentinel(sentinel) => {
                let master = sentinel.lock().await.async_get_client().await?;
                master.get_async_pubsub().await
            }
            Source::Cluster(cluster) => {
                let mut nodes = Vec::new();
                if let Some(Conn::Cluster(mut c)) = live {
                    if let Ok(found) = super::cluster::nodes(&mut c).await {
                        let template = &cluster.seeds[0];
                        nodes.extend(
                            found.into_iter().map(|(host, port)| {
                                super::cluster::node_info(template, host, port)
                            }),
                        );
                    }
                }
                if nodes.is_empty() {
                    nodes = cluster.seeds.clone();
                }
                let start = cluster.next_subscriber.fetch_add(1, Ordering::Relaxed);
                let mut last = None;
                for i in 0..nodes.len() {
                    let info = nodes[(start + i) % nodes.len()].clone();
                    let attempt = async { Client::open(info)?.get_async_pubsub().await };
                    match tokio::time::timeout(per_node, attempt).await {
                        Ok(Ok(ps)) => return Ok(ps),
                        Ok(Err(e)) => last = Some(e),
                        Err(_) => {
                            last = Some(redis::RedisError::from(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "no cluster node accepted a subscriber in time",
                            )))
                        }
                    }
                }
                Err(last.unwrap_or_else(|| {
                    redis::RedisError::from(std::io::Error::other(
                        "no cluster node to subscribe to",
                    ))
                }))
            }
        }
    }

    /// Whether this is a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Source::Cluster(_))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_is_found() {
        assert_eq!(password_of("redis://:pw@h:1/0").as_deref(), Some("pw"));
        assert_eq!(password_of("redis://u:p%40w@h/0").as_deref(), Some("p%40w"));
        assert_eq!(password_of("redis://u@h/0"), None);
        assert_eq!(password_of("redis://h:6379/0"), None);
    }

    #[test]
    fn targets_never_hold_the_password() {
        let d = Duration::from_secs(1);
        let node = open(
            &Topology::Node("redis://bob:hunter2@127.0.0.1:7/3".into()),
            d,
            d,
        )
        .unwrap();
        assert_eq!(node.target, "redis://bob@127.0.0.1:7/3");
        assert_eq!(node.password.as_deref(), Some("hunter2"));
        let cluster = open(
            &Topology::Cluster(vec![
                "redis://:hunter2@10.0.0.1:7000".into(),
                "redis://:hunter2@10.0.0.2:7000".into(),
            ]),
            d,
            d,
        )
        .unwrap();
        assert_eq!(
            cluster.target,
            "cluster redis://10.0.0.1:7000,redis://10.0.0.2:7000"
        );
        assert!(cluster.source.is_cluster());
        let sentinel = open(
            &Topology::Sentinel {
                sentinels: vec!["redis://:hunter2@10.0.0.1:26379".into()],
                service: "mymaster".into(),
            },
            d,
            d,
        )
        .unwrap();
        assert_eq!(
            sentinel.target,
            "sentinel mymaster via redis://10.0.0.1:26379"
        );
    }

    #[test]
    fn bad_topologies_are_refused_without_echoing_urls() {
        for topology in [
            Topology::Node("http://x:pw@h".into()),
            Topology::Node("redis://:pw@h:notaport/0".into()),
            Topology::Cluster(vec![]),
            Topology::Cluster(vec!["redis://:pw@h:1".into(), "redis://:other@h:2".into()]),
            Topology::Cluster(vec!["redis://:pw@h:1/3".into()]),
            Topology::Sentinel {
                sentinels: vec!["pw".into()],
                service: "m".into(),
            },
        ] {
            let why = check(&topology).unwrap_err();
            assert!(!why.contains("pw") && !why.contains("other"), "{why}");
        }
    }
}
