//! The `redis` driver: an L2 tier ([`RedisTier`]) and an invalidation bus ([`RedisBus`]).
//!
//! ```toml
//! [stores.tiered]
//! l1  = { driver = "memory", max_entries = 10000 }
//! l2  = { driver = "redis", url = "redis://127.0.0.1:6379/0", operation_timeout = "1s" }
//! bus = { driver = "redis", url = "redis://127.0.0.1:6379/0", connect_timeout = "1s" }
//! ```
//!
//! Options: where the data lives — `url` (one server:
//! `redis://[user][:password@]host[:port][/db]`, or `rediss://` with the `redis-tls`
//! feature), `cluster = ["redis://host:port", ..]` (a Redis Cluster, through any of these
//! seed nodes) or `sentinels = ["redis://host:26379", ..]` with `service = "mymaster"`
//! (the master the Sentinels name; their user, password and TLS apply to it too) —, then
//! `operation_timeout` (default `1s`: bounds every operation, connecting included) and
//! `connect_timeout` (default `1s`: bounds each (re)connection, so a dead server costs at
//! most that) and `max_value_size` (default 16 MiB, bytes or a size string: a read fetches
//! at most this plus one byte, so a huge value stored by someone else costs no more memory
//! than that and decodes as a miss). Unknown options are errors.
//!
//! ```toml
//! [stores.shared]
//! l2  = { driver = "redis", cluster = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"] }
//! bus = { driver = "redis", cluster = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"] }
//!
//! [stores.ha]
//! l2  = { driver = "redis", sentinels = ["redis://10.0.0.1:26379"], service = "mymaster" }
//! bus = { driver = "redis", sentinels = ["redis://10.0.0.1:26379"], service = "mymaster" }
//! ```
//!
//! # How it runs
//!
//! - Building never connects. The connection is made on first use and re-made on the next
//!   operation after a fault (refused, dropped, timed out).
//! - Connections live on a small runtime of the backend's own (one thread, started on
//!   first use); every operation is polled by its caller inside that runtime's context,
//!   so what it creates (connections, timers) belongs there: tiers and buses work from
//!   any tokio runtime, including `#[tokio::test]` runtimes that end while a global
//!   manager lives on, and from plain threads.
//! - Every key is written with `SET key value PX ttl`: none exists without a TTL. Reads
//!   are `GETRANGE key 0 max_value_size`.
//!   `clear_scope` deletes with `SCAN MATCH {scope}[:#]* COUNT 500` + `UNLINK`, touching
//!   nothing outside the scope; nothing here ever sends `FLUSHDB`, `FLUSHALL` or `KEYS`.
//! - Distributed locks (a store's `lock = "redis"`): `SET {prefix}:~lock:.. <token> NX PX
//!   <lock_timeout>` to take one, and a compare-and-delete script (`EVAL`, the key in
//!   `KEYS`) to release it, which never deletes another holder's lock.
//! - Errors are [`cache_core::TierError`]s: `Unavailable` for connection faults and
//!   timeouts (the circuit breaker counts those), `Other` for refused commands.
//!   Descriptions, errors, `Debug` output and logs never hold the password.
//!
//! # Sentinel and Cluster
//!
//! How each topology connects, and how a failover is followed, is in `topology.rs`; what
//! differs on a cluster (masters scanned one by one, one node per command) in
//! `cluster.rs`; tags without cross-slot transactions, with the argument for why they stay
//! right, in `tags.rs`. Nothing in cache-core knows the topology: a cluster or a Sentinel
//! setup is one more way for the tier and the bus to reach Redis.

mod batch;
mod bus;
mod cluster;
mod connection;
mod local;
use crate::message;
mod options;
mod router;
mod subscription;
mod tags;
mod tier;
mod topology;

use std::sync::Arc;

use cache_core::config::TierConfig;
use cache_core::driver::{BusSettings, DriverRegistration};
use cache_core::store::{Bus, RemoteTier};
use cache_core::CacheError;

pub use crate::message::{MAX_MESSAGE_SIZE, MESSAGE_VERSION};
pub use bus::{BusCheck, BusCounters, RedisBus};
pub use options::RedisOptions;
pub use tier::RedisTier;

fn build_remote(cfg: &TierConfig) -> Result<Arc<dyn RemoteTier>, CacheError> {
    let opts = RedisOptions::from_tier_config(cfg)?;
    let conn = connection::Connection::new(&opts).map_err(|why| cfg.error("url", why))?;
    Ok(Arc::new(RedisTier::from_connection(conn)))
}

fn build_bus(cfg: &TierConfig, settings: &BusSettings) -> Result<Arc<dyn Bus>, CacheError> {
    let opts = RedisOptions::from_bus_config(cfg)?;
    let conn = connection::Connection::new(&opts).map_err(|why| cfg.error("url", why))?;
    Ok(Arc::new(RedisBus::from_connection(
        conn,
        settings.channel.clone(),
    )))
}

inventory::submit! {
    DriverRegistration {
        name: "redis",
        local: None,
        remote: Some(build_remote),
        bus: Some(build_bus),
    }
}
