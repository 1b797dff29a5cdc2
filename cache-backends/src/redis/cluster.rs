//! What the driver does differently on a Redis Cluster: finding the masters (to scan
//! every one), sending a command to one node, and carrying a scan over several masters
//! in one cursor.
//!
//! Keys are spread over the cluster's 16384 slots by their own hash: nothing here pins
//! a cache, a prefix or a tag to one slot. Commands on one key (`GETRANGE`, `SET`, the
//! lock's `SET NX` and its unlock script) go to that key's master; a multi-key `UNLINK`
//! is split by the cluster client into one command per slot. The tag design that keeps
//! every command on one slot is in [`super::tags`].

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ConnectionAddr, ConnectionInfo, RedisError, RedisResult, Value};

/// A node's address as the cluster announces it.
pub(crate) type Node = (String, u16);

/// Bits of a multi-master scan cursor that carry the node's own cursor; the bits above
/// say which master (in address order) the scan is on.
const NODE_CURSOR_BITS: u32 = 48;
const NODE_CURSOR_MASK: u64 = (1 << NODE_CURSOR_BITS) - 1;

/// The masters and replicas of the cluster, from `CLUSTER SLOTS` (which every server that
/// speaks the cluster protocol answers: Redis, Valkey, KeyDB, Dragonfly).
async fn slots(conn: &mut ClusterConnection) -> RedisResult<Vec<(Node, Vec<Node>)>> {
    let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    Ok(parse_slots(&reply))
}

fn parse_node(value: &Value) -> Option<Node> {
    let Value::Array(parts) = value else {
        return None;
    };
    let host = match parts.first()? {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
        Value::SimpleString(s) => s.clone(),
        _ => return None,
    };
    let port = match parts.get(1)? {
        Value::Int(p) => u16::try_from(*p).ok()?,
        _ => return None,
    };
    // An empty host means "the node you asked"; a cluster made on loopback addresses
    // never answers so, and a node that does cannot be addressed from here: skip it.
    (!host.is_empty()).then_some((host, port))
}

/// `CLUSTER SLOTS` → (master, replicas) per slot range; unparsable parts are left out.
fn parse_slots(reply: &Value) -> Vec<(Node, Vec<Node>)> {
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    ranges
        .iter()
        .filter_map(|range| {
            let Value::Array(parts) = range else {
                return None;
            };
            let master = parse_node(parts.get(2)?)?;
            let replicas = parts.iter().skip(3).filter_map(parse_node).collect();
            Some((master, replicas))
        })
        .collect()
}

/// The cluster's masters, each once, in address order.
pub(crate) async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<Node>> {
    let mut masters: Vec<Node> = slots(conn).await?.into_iter().map(|(m, _)| m).collect();
    masters.sort();
    masters.dedup();
    if masters.is_empty() {
        return Err(RedisError::from((
            redis::ErrorKind::ClusterConnectionNotFound,
            "CLUSTER SLOTS named no master",
        )));
    }
    Ok(masters)
}

/// Every node of the cluster (masters and replicas), each once, in address order.
pub(crate) async fn nodes(conn: &mut ClusterConnection) -> RedisResult<Vec<Node>> {
    let mut nodes: Vec<Node> = slots(conn)
        .await?
        .into_iter()
        .flat_map(|(m, r)| std::iter::once(m).chain(r))
        .collect();
    nodes.sort();
    nodes.dedup();
    Ok(nodes)
}

/// The connection info of a discovered node: the seed's credentials and TLS, the node's
/// address.
pub(crate) fn node_info(seed: &ConnectionInfo, host: String, port: u16) -> ConnectionInfo {
    let addr = match seed.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    };
    seed.clone().set_addr(addr)
}

/// Runs `cmd` on one node (a `SCAN` step, which belongs to no slot).
pub(crate) async fn on_node<T: redis::FromRedisValue>(
    conn: &mut ClusterConnection,
    node: &Node,
    cmd: redis::Cmd,
) -> RedisResult<T> {
    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: node.0.clone(),
        port: node.1,
    });
    let value = conn.route_command(cmd, routing).await?;
    Ok(redis::from_redis_value(value)?)
}

/// Where a multi-master scan is: the index of the master (in address order) and that
/// master's own `SCAN` cursor. Cursor `0` is the start of the first master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanPosition {
    pub(crate) master: usize,
    pub(crate) cursor: u64,
}

impl ScanPosition {
    pub(crate) fn decode(cursor: u64) -> Self {
        Self {
            master: usize::try_from(cursor >> NODE_CURSOR_BITS).unwrap_or(usize::MAX),
            cursor: cursor & NODE_CURSOR_MASK,
        }
    }

    /// The cursor to hand back after master `master` answered `next`: the same master
    /// again, the next master from its start, or `0` when every master was scanned.
    /// `None` when a node cursor does not fit (no Redis hands out one that large).
    pub(crate) fn after(master: usize, next: u64, masters: usize) -> Option<u64> {
        let (master, cursor) = if next == 0 {
            (master + 1, 0)
        } else {
            (master, next)
        };
        if master >= masters {
            return Some(0);
        }
        if cursor > NODE_CURSOR_MASK {
            return None;
        }
        let master = u64::try_from(master).ok()?;
        (master < (1 << (64 - NODE_CURSOR_BITS))).then_some((master << NODE_CURSOR_BITS) | cursor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn cluster_slots_are_read_into_masters_and_replicas() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7004),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("127.0.0.1", 7000),
                node("", 7005),
            ]),
            Value::Nil,
        ]);
        let parsed = parse_slots(&reply);
        assert_eq!(
            parsed,
            [
                (
                    ("127.0.0.1".to_string(), 7001),
                    vec![("127.0.0.1".to_string(), 7004)]
                ),
                (("127.0.0.1".to_string(), 7000), vec![]),
            ]
        );
        assert!(parse_slots(&Value::Nil).is_empty());
    }

    #[test]
    fn a_scan_cursor_walks_every_master_and_ends_at_zero() {
        // start: master 0, cursor 0
        assert_eq!(
            ScanPosition::decode(0),
            ScanPosition {
                master: 0,
                cursor: 0
            }
        );
        // master 0 answered 17: stay on it
        let c = ScanPosition::after(0, 17, 3).unwrap();
        assert_eq!(
            ScanPosition::decode(c),
            ScanPosition {
                master: 0,
                cursor: 17
            }
        );
        // master 0 is done: master 1 from its start, which is not the end cursor 0
        let c = ScanPosition::after(0, 0, 3).unwrap();
        assert_ne!(c, 0);
        assert_eq!(
            ScanPosition::decode(c),
            ScanPosition {
                master: 1,
                cursor: 0
            }
        );
        // the last master is done: 0
        assert_eq!(ScanPosition::after(2, 0, 3), Some(0));
        // a node cursor too large to carry is refused, not truncated
        assert_eq!(ScanPosition::after(0, 1 << 50, 3), None);
    }
}
