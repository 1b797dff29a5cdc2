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
//!
//! The map is asked of a known master (or the seed), so that a master it names by an empty
//! or NULL address is read as the node that answered, as the cluster specification says;
//! `?` (an unknown endpoint) leaves its slots unrouted. A reading that leaves slots
//! unrouted (that, or a master it cannot connect to) is logged without credentials, and
//! the next waits longer ([`REFRESH_GAP`], doubled per such reading up to 2 s).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, RedisError, RetryMethod};

use super::cluster::{self, Node, SlotRange, SLOTS};

/// The least time between two readings of the slot map: a failover, while it settles,
/// fails many commands, and each asks for a new map.
pub(crate) const REFRESH_GAP: Duration = Duration::from_millis(250);

/// How far the gap doubles while readings keep leaving slots without a route (a master
/// that cannot be reached, a node the cluster names by no address): at most
/// `REFRESH_GAP` times `2^MAX_BACKOFF`, 2 s. Those slots go through the cluster connection
/// meanwhile, which is correct, only slower.
const MAX_BACKOFF: u32 = 3;

/// No master known for a slot.
const UNROUTED: u16 = u16::MAX;

/// A master's connection, shared by every table that keeps it, with the flag that says
/// it failed. The flag is on the connection, not on a table: a failure reported while a
/// reading of the map is building the next table (which may keep this connection) is
/// seen by that table too.
pub(crate) struct Link<C = MultiplexedConnection> {
    conn: C,
    failed: AtomicBool,
}

impl<C> Link<C> {
    fn new(conn: C) -> Arc<Self> {
        Arc::new(Self {
            conn,
            failed: AtomicBool::new(false),
        })
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// The slot map and the masters' connections, as last read.
struct Table<C> {
    /// For each slot, the index of its master in `masters`, or [`UNROUTED`].
    owner: Box<[u16]>,
    /// Each master once, with its connection; `None` if it could not be made.
    masters: Vec<(Node, Option<Arc<Link<C>>>)>,
}

impl<C> Table<C> {
    /// The table for `ranges`, with the connections made for their masters.
    fn new(ranges: &[SlotRange], masters: Vec<(Node, Option<Arc<Link<C>>>)>) -> Self {
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
        Self { owner, masters }
    }

    /// The live connection of `slot`'s master, if any.
    fn master_of(&self, slot: u16) -> Option<&Arc<Link<C>>> {
        let index = usize::from(*self.owner.get(usize::from(slot))?);
        let (_, link) = self.masters.get(index)?;
        link.as_ref().filter(|link| !link.is_failed())
    }
}

/// A command's way to its key's master: the node's connection, and the link it came
/// from (to mark it failed if the command fails).
pub(crate) struct Route<C = MultiplexedConnection> {
    pub(crate) conn: C,
    pub(crate) at: Arc<Link<C>>,
}

/// The claim on the one reading of the map under way ([`Router::claim_refresh`]):
/// dropping it ends the reading, however it ends (installed, abandoned, or a panic), so
/// a reading that never finishes cannot stop every later one.
pub(crate) struct RefreshClaim {
    refreshing: Arc<AtomicBool>,
}

impl Drop for RefreshClaim {
    fn drop(&mut self) {
        self.refreshing.store(false, Ordering::Release);
    }
}

/// What a reading of the map left without a route, for the caller to log: masters it
/// could not connect to (with why, not yet redacted) and ranges whose master the
/// cluster named by no usable address.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    pub(crate) unreachable: Vec<(Node, String)>,
    pub(crate) unaddressed: usize,
}

impl Reading {
    /// Whether every slot the map named got a route.
    pub(crate) fn is_complete(&self) -> bool {
        self.unreachable.is_empty() && self.unaddressed == 0
    }
}

/// The routes of one cluster connection (see the module docs).
pub(crate) struct Router<C = MultiplexedConnection> {
    table: RwLock<Option<Table<C>>>,
    /// Set while a reading of the map is under way, so the callers that want one start
    /// one; cleared when its [`RefreshClaim`] is dropped.
    refreshing: Arc<AtomicBool>,
    /// When the last reading started.
    last_refresh: Mutex<Option<Instant>>,
    /// Readings in a row that left slots without a route: each doubles the gap before
    /// the next one (up to [`MAX_BACKOFF`] doublings).
    incomplete: AtomicU32,
}

impl<C> Default for Router<C> {
    fn default() -> Self {
        Self {
            table: RwLock::new(None),
            refreshing: Arc::new(AtomicBool::new(false)),
            last_refresh: Mutex::new(None),
            incomplete: AtomicU32::new(0),
        }
    }
}

impl<C: Clone> Router<C> {
    /// The route to `key`'s master, if it is known and its connection has not failed.
    pub(crate) fn route(&self, key: &[u8]) -> Option<Route<C>> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let link = table.as_ref()?.master_of(cluster::slot_of(key))?;
        Some(Route {
            conn: link.conn.clone(),
            at: Arc::clone(link),
        })
    }

    /// The master `key`'s route leads to now, if it has one (for tests: which node a
    /// command on `key` goes to).
    pub(crate) fn routed_master(&self, key: &[u8]) -> Option<Node> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let table = table.as_ref()?;
        let link = table.master_of(cluster::slot_of(key))?;
        table
            .masters
            .iter()
            .find(|(_, l)| l.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)))
            .map(|(node, _)| node.clone())
    }

    /// Marks the connection of a route whose command failed: its slots go through the
    /// cluster connection until a reading of the map connects to the master again. The
    /// mark is on the connection, so a table being built meanwhile does not keep it.
    pub(crate) fn failed(&self, at: &Link<C>) {
        at.failed.store(true, Ordering::Release);
    }

    /// The gap a reading must leave after the last one: [`REFRESH_GAP`], doubled for each
    /// incomplete reading in a row.
    fn gap(&self) -> Duration {
        let doublings = self.incomplete.load(Ordering::Relaxed).min(MAX_BACKOFF);
        REFRESH_GAP * (1 << doublings)
    }

    /// A claim on a reading of the map, if one should start now: none is under way and
    /// the last started long enough ago ([`REFRESH_GAP`], more after incomplete
    /// readings). The reading ends when the claim is dropped.
    pub(crate) fn claim_refresh(&self) -> Option<RefreshClaim> {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return None;
        }
        let claim = RefreshClaim {
            refreshing: Arc::clone(&self.refreshing),
        };
        let mut last = self
            .last_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < self.gap()) {
            return None;
        }
        *last = Some(Instant::now());
        Some(claim)
    }

    /// A connection of the current table that may serve `master` again: a master still
    /// at the same address whose connection has not failed keeps it.
    fn reusable(&self, master: &Node) -> Option<Arc<Link<C>>> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table
            .as_ref()?
            .masters
            .iter()
            .find(|(node, _)| node == master)
            .and_then(|(_, link)| link.clone())
            .filter(|link| !link.is_failed())
    }

    /// Installs the table read from `ranges` with `masters`' connections, and ends the
    /// reading `claim` stands for. `reading` says what was left without a route: an
    /// incomplete reading lengthens the gap before the next one, a complete one resets it.
    fn put(
        &self,
        ranges: &[SlotRange],
        masters: Vec<(Node, Option<Arc<Link<C>>>)>,
        reading: &Reading,
        claim: RefreshClaim,
    ) {
        let table = Table::new(ranges, masters);
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Some(table);
        self.read_was(reading.is_complete());
        drop(claim);
    }

    /// How many readings in a row left slots without a route.
    pub(crate) fn incomplete_readings(&self) -> u32 {
        self.incomplete.load(Ordering::Relaxed)
    }

    /// The nodes to ask for the map, so that its answer can be read against the node
    /// that gave it (a master named with an empty or NULL address is that node): the
    /// masters of the current table whose connection has not failed, then the seed.
    pub(crate) fn answering_candidates(&self, seed: &ConnectionInfo) -> Vec<Node> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let mut nodes: Vec<Node> = table
            .iter()
            .flat_map(|t| &t.masters)
            .filter(|(_, link)| link.as_ref().is_some_and(|l| !l.is_failed()))
            .map(|(node, _)| node.clone())
            .collect();
        drop(table);
        if let Some(seed) = cluster::address_of(seed) {
            if !nodes.contains(&seed) {
                nodes.push(seed);
            }
        }
        nodes
    }

    /// Counts a reading that could not read the map, or read it: complete or not.
    pub(crate) fn read_was(&self, complete: bool) {
        if complete {
            self.incomplete.store(0, Ordering::Relaxed);
        } else {
            let _ = self
                .incomplete
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_add(1))
                });
        }
    }
}

impl Router {
    /// Reads the map (`ranges`, from `CLUSTER SLOTS`, of which `unaddressed` ranges named
    /// a master by no usable address), connects to the masters it has no live connection
    /// to (each bounded by the config's connection timeout; one that cannot be reached
    /// is left unrouted), installs the new table and ends the reading. Returns what was
    /// left without a route.
    pub(crate) async fn install(
        &self,
        ranges: Vec<SlotRange>,
        unaddressed: usize,
        seed: &ConnectionInfo,
        config: &AsyncConnectionConfig,
        claim: RefreshClaim,
    ) -> Reading {
        let mut masters: Vec<Node> = ranges.iter().map(|r| r.master.clone()).collect();
        masters.sort();
        masters.dedup();
        let connected = join_all(masters.into_iter().map(|master| async move {
            if let Some(link) = self.reusable(&master) {
                return (master, Ok(link));
            }
            let info = cluster::node_info(seed, master.0.clone(), master.1);
            let conn = connect(info, config).await.map(Link::new);
            (master, conn)
        }))
        .await;
        let mut reading = Reading {
            unreachable: Vec::new(),
            unaddressed,
        };
        let masters = connected
            .into_iter()
            .map(|(master, conn)| match conn {
                Ok(link) => (master, Some(link)),
                Err(e) => {
                    reading.unreachable.push((master.clone(), e.to_string()));
                    (master, None)
                }
            })
            .collect();
        self.put(&ranges, masters, &reading, claim);
        reading
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

    fn node(port: u16) -> Node {
        ("127.0.0.1".into(), port)
    }

    /// A router of stand-in connections (numbers), with `masters` installed for `ranges`.
    fn installed(ranges: &[SlotRange], masters: &[(u16, u32)]) -> Router<u32> {
        let router = Router::default();
        let masters = masters
            .iter()
            .map(|(port, conn)| (node(*port), Some(Link::new(*conn))))
            .collect();
        let claim = router.claim_refresh().unwrap();
        router.put(ranges, masters, &Reading::default(), claim);
        router
    }

    #[test]
    fn every_slot_of_a_range_belongs_to_its_master() {
        let ranges = [
            range(0, 99, 7001),
            range(100, 16383, 7000),
            range(50, 60, 7002),
        ];
        let masters = vec![(node(7000), None), (node(7001), Some(Link::new(1u32)))];
        let table = Table::new(&ranges, masters);
        assert_eq!(table.owner[0], 1);
        assert_eq!(table.owner[99], 1);
        assert_eq!(table.owner[100], 0);
        assert_eq!(table.owner[16383], 0);
        // a range whose master is not in the list is left as it was
        assert_eq!(table.owner[55], 1);
        assert_eq!(table.master_of(0).map(|l| l.conn), Some(1));
        // no connection: no route
        assert!(table.master_of(100).is_none());
        let empty = Table::<u32>::new(&[], Vec::new());
        assert!(empty.owner.iter().all(|o| *o == UNROUTED));
        assert!(empty.master_of(0).is_none());
    }

    #[test]
    fn a_refresh_is_claimed_once_per_gap() {
        let router = Router::<u32>::default();
        assert!(router.route(b"k").is_none(), "no table yet: no route");
        let claim = router.claim_refresh().unwrap();
        assert!(router.claim_refresh().is_none(), "one under way");
        drop(claim);
        assert!(router.claim_refresh().is_none(), "too soon after the last");
        *router.last_refresh.lock().unwrap() = Some(Instant::now() - REFRESH_GAP);
        assert!(router.claim_refresh().is_some());
    }

    #[test]
    fn a_connection_that_fails_while_the_next_table_is_built_is_not_routed_by_it() {
        let ranges = [range(0, 16383, 7000)];
        let router = installed(&ranges, &[(7000, 1)]);
        let route = router.route(b"k").unwrap();
        assert_eq!(route.conn, 1);
        assert_eq!(router.routed_master(b"k"), Some(node(7000)));
        // A reading starts and keeps the master's connection for the next table...
        *router.last_refresh.lock().unwrap() = Some(Instant::now() - REFRESH_GAP);
        let claim = router.claim_refresh().unwrap();
        let kept = router.reusable(&node(7000));
        assert!(kept.is_some(), "a sound connection is kept");
        // ...then a command on that connection fails, before the new table is in.
        router.failed(&route.at);
        router.put(
            &ranges,
            vec![(node(7000), kept)],
            &Reading::default(),
            claim,
        );
        assert!(
            router.route(b"k").is_none(),
            "the new table routes to a connection that failed"
        );
        assert_eq!(router.routed_master(b"k"), None);
        assert!(
            router.reusable(&node(7000)).is_none(),
            "a failed connection is kept for the next table"
        );
    }

    #[test]
    fn a_reading_that_panics_does_not_stop_the_next() {
        let router = Router::<u32>::default();
        let claim = router.claim_refresh().unwrap();
        let reading = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _claim = claim;
            panic!("a reading of the slot map panicked");
        }));
        assert!(reading.is_err());
        *router.last_refresh.lock().unwrap() = Some(Instant::now() - REFRESH_GAP);
        assert!(
            router.claim_refresh().is_some(),
            "no reading can start after one panicked"
        );
    }

    #[test]
    fn incomplete_readings_back_off_and_a_complete_one_resets() {
        let router = Router::<u32>::default();
        let ago = |gap: Duration| *router.last_refresh.lock().unwrap() = Some(Instant::now() - gap);
        assert_eq!(router.gap(), REFRESH_GAP);
        router.read_was(false);
        router.read_was(false);
        assert_eq!(router.gap(), REFRESH_GAP * 4);
        ago(REFRESH_GAP * 2);
        assert!(router.claim_refresh().is_none(), "within the longer gap");
        ago(REFRESH_GAP * 4);
        assert!(router.claim_refresh().is_some());
        for _ in 0..10 {
            router.read_was(false);
        }
        assert_eq!(router.gap(), REFRESH_GAP * (1 << MAX_BACKOFF), "bounded");
        let unreachable = Reading {
            unreachable: vec![(node(7000), "refused".into())],
            unaddressed: 0,
        };
        assert!(!unreachable.is_complete());
        assert!(!Reading {
            unreachable: Vec::new(),
            unaddressed: 1
        }
        .is_complete());
        router.read_was(Reading::default().is_complete());
        assert_eq!(router.gap(), REFRESH_GAP);
    }
}
