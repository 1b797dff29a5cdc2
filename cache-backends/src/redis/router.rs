//! Routing on the caller's side on a Redis Cluster: the slot map, and a multiplexed
//! connection to each master, so a one-key command (the tier's `GETRANGE`, `SET`,
//! `PEXPIRE`) goes from its caller straight to its key's master.
//!
//! The cluster client of the redis crate routes every request through one task of its
//! own, on cachet's backend thread: each read crossed to that thread, to the routing task,
//! then to the node connection and back (BENCHMARKS.md, "Redis Cluster L2"). With the
//! routes known here, a read costs what it costs on one server: the caller hands the
//! command to its node's connection.
//!
//! The cluster connection stays the authority and the fallback. The map is read from
//! `CLUSTER SLOTS` through it, in the background; until then, for a slot whose master
//! could not be reached, and for a command whose direct attempt failed in a way the
//! topology explains (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `READONLY`, a lost or
//! timed-out node), the command goes through the cluster connection, which follows
//! redirects and failovers, and the map is read again (at most once per
//! [`REFRESH_GAP`]). An attempt whose node or connection failed (io, timeout, a dropped
//! or refused connection) drops that connection at once, so a dead master costs one
//! failed attempt, not one per caller; an answer about the key's slot (`MOVED`, `ASK`,
//! `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`, `READONLY`) keeps it for the
//! master's other slots ([`misroute`]). A command sent directly may be sent again through
//! the cluster connection, so only idempotent commands (a read, a `SET`, a `PEXPIRE`) go
//! this way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, RedisError, RetryMethod};

use super::cluster::{self, Node, SlotRange, SLOTS};

/// The least time between two readings of the slot map: a failover, while it settles,
/// fails many commands, and each asks for a new map.
pub(crate) const REFRESH_GAP: Duration = Duration::from_millis(250);

/// No master known for a slot.
const UNROUTED: u16 = u16::MAX;

/// The slot map and the masters' connections, as last read.
struct Table {
    /// Which reading of the map this is (a route names it, so a failure reported after
    /// the table was replaced drops nothing of the new one).
    generation: u64,
    /// For each slot, the index of its master in `masters`, or [`UNROUTED`].
    owner: Box<[u16]>,
    /// Each master once, with its connection; `None` once it failed (its slots go
    /// through the cluster connection until the next reading).
    masters: Vec<(Node, Option<MultiplexedConnection>)>,
}

impl Table {
    /// The table for `ranges`, with the connections made for their masters.
    fn new(
        generation: u64,
        ranges: &[SlotRange],
        masters: Vec<(Node, Option<MultiplexedConnection>)>,
    ) -> Self {
        let mut owner = vec![UNROUTED; SLOTS].into_boxed_slice();
        for range in ranges {
            let Some(index) = masters.iter().position(|(node, _)| *node == range.master) else {
                continue;
            };
            let index = u16::try_from(index).unwrap_or(UNROUTED);
            for slot in range.first..=range.last {
                owner[usize::from(slot)] = index;
            }
        }
        Self {
            generation,
            owner,
            masters,
        }
    }

    fn master_of(&self, slot: u16) -> Option<(usize, &MultiplexedConnection)> {
        let index = usize::from(*self.owner.get(usize::from(slot))?);
        let (_, conn) = self.masters.get(index)?;
        Some((index, conn.as_ref()?))
    }
}

/// A command's way to its key's master: the node's connection, and which one it is (to
/// drop it if it fails).
pub(crate) struct Route {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) at: RouteId,
}

/// Which master of which reading of the map a [`Route`] leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteId {
    generation: u64,
    master: usize,
}

/// The routes of one cluster connection (see the module docs).
#[derive(Default)]
pub(crate) struct Router {
    table: RwLock<Option<Table>>,
    /// Set while a reading of the map is under way, so the callers that want one start one.
    refreshing: AtomicBool,
    /// When the last reading started.
    last_refresh: Mutex<Option<Instant>>,
}

impl Router {
    /// The route to `key`'s master, if it is known and its connection has not failed.
    pub(crate) fn route(&self, key: &[u8]) -> Option<Route> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let table = table.as_ref()?;
        let (master, conn) = table.master_of(cluster::slot_of(key))?;
        Some(Route {
            conn: conn.clone(),
            at: RouteId {
                generation: table.generation,
                master,
            },
        })
    }

    /// Drops the connection of a route whose command failed: its slots go through the
    /// cluster connection until the map is read again.
    pub(crate) fn failed(&self, route: RouteId) {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(table) = table.as_mut().filter(|t| t.generation == route.generation) {
            if let Some((_, conn)) = table.masters.get_mut(route.master) {
                *conn = None;
            }
        }
    }

    /// Whether a reading of the map should start now: none is under way and the last
    /// started at least [`REFRESH_GAP`] ago. `true` claims it: the caller must call
    /// [`install`](Self::install) or [`abandon`](Self::abandon) when done.
    pub(crate) fn claim_refresh(&self) -> bool {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut last = self
            .last_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < REFRESH_GAP) {
            self.refreshing.store(false, Ordering::Release);
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// The connections of the current table that may serve `masters` again: a master
    /// still at the same address whose connection has not failed keeps it.
    fn reusable(&self, master: &Node) -> Option<MultiplexedConnection> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table
            .as_ref()?
            .masters
            .iter()
            .find(|(node, _)| node == master)
            .and_then(|(_, conn)| conn.clone())
    }

    /// Reads the map (`ranges`, from `CLUSTER SLOTS`), connects to the masters it has no
    /// live connection to (each bounded by the config's connection timeout; one that
    /// cannot be reached is left unrouted), and installs the new table.
    pub(crate) async fn install(
        &self,
        ranges: Vec<SlotRange>,
        seed: &ConnectionInfo,
        config: &AsyncConnectionConfig,
    ) {
        let mut masters: Vec<Node> = ranges.iter().map(|r| r.master.clone()).collect();
        masters.sort();
        masters.dedup();
        let connected = join_all(masters.into_iter().map(|master| async move {
            if let Some(conn) = self.reusable(&master) {
                return (master, Some(conn));
            }
            let info = cluster::node_info(seed, master.0.clone(), master.1);
            let conn = connect(info, config).await.ok();
            (master, conn)
        }))
        .await;
        let mut current = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let generation = current.as_ref().map_or(0, |t| t.generation.wrapping_add(1));
        *current = Some(Table::new(generation, &ranges, connected));
        drop(current);
        self.refreshing.store(false, Ordering::Release);
    }

    /// Ends a claimed reading that could not read the map; the table stays as it was.
    pub(crate) fn abandon(&self) {
        self.refreshing.store(false, Ordering::Release);
    }
}

async fn connect(
    info: ConnectionInfo,
    config: &AsyncConnectionConfig,
) -> Result<MultiplexedConnection, RedisError> {
    Client::open(info)?
        .get_multiplexed_async_connection_with_config(config)
        .await
}

/// What a direct attempt's error says about its route, when it says anything: then the
/// cluster connection may do better, and the map should be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misroute {
    /// The node is gone or its connection is broken (io, timeout, dropped, refused, a
    /// reply that calls for a new connection): the connection is dropped.
    Node,
    /// The node answered for the key's slot (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`,
    /// `LOADING`, `MASTERDOWN`, `READONLY`): its connection is sound and kept for its other
    /// slots.
    Slot,
}

/// Sorts a direct attempt's error: `None` for the server's own answer to the command (a
/// wrong type, a script error), which no other node would answer differently.
pub(crate) fn misroute(e: &RedisError) -> Option<Misroute> {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        return Some(Misroute::Node);
    }
    match e.retry_method() {
        RetryMethod::NoRetry => None,
        _ => Some(Misroute::Slot),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn range(first: u16, last: u16, port: u16) -> SlotRange {
        SlotRange {
            first,
            last,
            master: ("127.0.0.1".into(), port),
            replicas: Vec::new(),
        }
    }

    #[test]
    fn errors_about_a_slot_keep_the_connection_and_errors_of_the_node_drop_it() {
        use redis::{ErrorKind, ServerErrorKind};
        let server = |kind| RedisError::from((ErrorKind::Server(kind), "test"));
        for kind in [
            ServerErrorKind::Moved,
            ServerErrorKind::Ask,
            ServerErrorKind::TryAgain,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::BusyLoading,
            ServerErrorKind::MasterDown,
            ServerErrorKind::ReadOnly,
        ] {
            assert_eq!(misroute(&server(kind)), Some(Misroute::Slot), "{kind:?}");
        }
        for kind in [ServerErrorKind::ResponseError, ServerErrorKind::NoScript] {
            assert_eq!(misroute(&server(kind)), None, "{kind:?}");
        }
        let io = |kind| RedisError::from(std::io::Error::new(kind, "test"));
        for kind in [
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::TimedOut,
        ] {
            assert_eq!(misroute(&io(kind)), Some(Misroute::Node), "{kind:?}");
        }
    }

    #[test]
    fn every_slot_of_a_range_belongs_to_its_master() {
        let ranges = [
            range(0, 99, 7001),
            range(100, 16383, 7000),
            range(50, 60, 7002),
        ];
        let masters = vec![
            (("127.0.0.1".into(), 7000), None),
            (("127.0.0.1".into(), 7001), None),
        ];
        let table = Table::new(0, &ranges, masters);
        assert_eq!(table.owner[0], 1);
        assert_eq!(table.owner[99], 1);
        assert_eq!(table.owner[100], 0);
        assert_eq!(table.owner[16383], 0);
        // a range whose master is not in the list is left as it was
        assert_eq!(table.owner[55], 1);
        // no connection: no route
        assert!(table.master_of(0).is_none());
        let empty = Table::new(1, &[], Vec::new());
        assert!(empty.owner.iter().all(|o| *o == UNROUTED));
        assert!(empty.master_of(0).is_none());
    }

    #[test]
    fn a_refresh_is_claimed_once_per_gap() {
        let router = Router::default();
        assert!(router.route(b"k").is_none(), "no table yet: no route");
        assert!(router.claim_refresh());
        assert!(!router.claim_refresh(), "one under way");
        router.abandon();
        assert!(!router.claim_refresh(), "too soon after the last");
        *router.last_refresh.lock().unwrap() = Some(Instant::now() - REFRESH_GAP);
        assert!(router.claim_refresh());
    }
}
