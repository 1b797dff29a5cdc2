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
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, RedisError, RedisResult, Value};

/// A node's address as the cluster announces it.
pub(crate) type Node = (String, u16);

/// Bits of a multi-master scan cursor that carry the node's own cursor; the bits above
/// say which master (in address order) the scan is on.
const NODE_CURSOR_BITS: u32 = 48;
const NODE_CURSOR_MASK: u64 = (1 << NODE_CURSOR_BITS) - 1;

/// How many hash slots a cluster has.
pub(crate) const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), a byte at a time: the hash
/// the cluster specification assigns keys to slots with.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

/// The hash slot of `key`, as the cluster computes it: the CRC16 of the key's hash tag
/// (the bytes between its first `{` and the first `}` after it, when not empty), else of
/// the whole key, modulo 16384.
pub(crate) fn slot_of(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|b| *b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let crc = hashed.iter().fold(0u16, |crc, b| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)]
    });
    crc % SLOTS as u16
}

/// The masters and replicas of the cluster, from `CLUSTER SLOTS` (which every server that
/// speaks the cluster protocol answers: Redis, Valkey, KeyDB, Dragonfly), asked of any
/// node. A node named by an empty or NULL address is left out (which node answered is
/// not known); [`slots_from`] knows it.
pub(crate) async fn slots(conn: &mut ClusterConnection) -> RedisResult<Vec<SlotRange>> {
    let reply: Value = slots_cmd().query_async(conn).await?;
    Ok(parse_slots(&reply, None).ranges)
}

fn slots_cmd() -> redis::Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    cmd
}

/// `CLUSTER SLOTS` asked of the first of `candidates` that answers (each given `per_try`),
/// so a node the answer names by an empty or NULL address is read as that node, as the
/// specification says; when none answers, asked of any node (and such nodes are left out
/// and counted in [`Slots::unaddressed`]).
pub(crate) async fn slots_from(
    conn: &mut ClusterConnection,
    candidates: &[Node],
    per_try: Duration,
) -> RedisResult<Slots> {
    for node in candidates {
        let asked = tokio::time::timeout(per_try, on_node::<Value>(conn, node, slots_cmd())).await;
        if let Ok(Ok(reply)) = asked {
            return Ok(parse_slots(&reply, Some(&node.0)));
        }
    }
    let reply: Value = slots_cmd().query_async(conn).await?;
    Ok(parse_slots(&reply, None))
}

/// The address of a seed (`None` for a Unix socket, which no cluster announces).
pub(crate) fn address_of(info: &ConnectionInfo) -> Option<Node> {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            Some((host.clone(), *port))
        }
        _ => None,
    }
}

/// Why a node of `CLUSTER SLOTS` was not read.
#[derive(Debug, PartialEq, Eq)]
enum Unread {
    /// Named by no usable address: `?` (an unknown endpoint), or empty/NULL when which
    /// node answered is not known.
    Unaddressed,
    /// Not a node entry.
    Malformed,
}

/// One node entry `[host, port, id, ..]`. An empty or NULL host (and a wildcard one,
/// `0.0.0.0`/`::`) means the node that answered, `answering`; `?` an unknown endpoint.
fn parse_node(value: &Value, answering: Option<&str>) -> Result<Node, Unread> {
    let Value::Array(parts) = value else {
        return Err(Unread::Malformed);
    };
    let host = match parts.first() {
        Some(Value::BulkString(b)) => {
            String::from_utf8(b.clone()).map_err(|_| Unread::Malformed)?
        }
        Some(Value::SimpleString(s)) => s.clone(),
        Some(Value::Nil) => String::new(),
        _ => return Err(Unread::Malformed),
    };
    let port = match parts.get(1) {
        Some(Value::Int(p)) => u16::try_from(*p).map_err(|_| Unread::Malformed)?,
        _ => return Err(Unread::Malformed),
    };
    let host = match host.as_str() {
        "?" => return Err(Unread::Unaddressed),
        "" | "0.0.0.0" | "::" => answering
            .filter(|h| !h.is_empty())
            .ok_or(Unread::Unaddressed)?
            .to_owned(),
        _ => host,
    };
    Ok((host, port))
}

/// One slot range of `CLUSTER SLOTS`: its first and last slot, its master and replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotRange {
    pub(crate) first: u16,
    pub(crate) last: u16,
    pub(crate) master: Node,
    pub(crate) replicas: Vec<Node>,
}

/// A reading of `CLUSTER SLOTS`: its ranges, and how many ranges were left out because
/// their master was named by no usable address.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    pub(crate) ranges: Vec<SlotRange>,
    pub(crate) unaddressed: usize,
}

/// `CLUSTER SLOTS`, as answered by the node at host `answering` (when known) → its slot
/// ranges; unparsable parts (and slots out of range) are left out, and ranges whose
/// master has no usable address are counted.
pub(crate) fn parse_slots(reply: &Value, answering: Option<&str>) -> Slots {
    let mut slots = Slots::default();
    let Value::Array(ranges) = reply else {
        return slots;
    };
    let slot = |v: Option<&Value>| match v {
        Some(Value::Int(n)) => u16::try_from(*n).ok().filter(|s| usize::from(*s) < SLOTS),
        _ => None,
    };
    for range in ranges {
        let Value::Array(parts) = range else {
            continue;
        };
        let (Some(first), Some(last)) = (slot(parts.first()), slot(parts.get(1))) else {
            continue;
        };
        let master = match parts.get(2).map(|m| parse_node(m, answering)) {
            Some(Ok(master)) => master,
            Some(Err(Unread::Unaddressed)) => {
                slots.unaddressed += 1;
                continue;
            }
            Some(Err(Unread::Malformed)) | None => continue,
        };
        let replicas = parts
            .iter()
            .skip(3)
            .filter_map(|r| parse_node(r, answering).ok())
            .collect();
        slots.ranges.push(SlotRange {
            first,
            last,
            master,
            replicas,
        });
    }
    slots
}

/// The cluster's masters, each once, in address order.
pub(crate) async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<Node>> {
    let mut masters: Vec<Node> = slots(conn).await?.into_iter().map(|r| r.master).collect();
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
        .flat_map(|r| std::iter::once(r.master).chain(r.replicas))
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
        let parsed = parse_slots(&reply, None).ranges;
        assert_eq!(
            parsed,
            [
                SlotRange {
                    first: 0,
                    last: 5460,
                    master: ("127.0.0.1".to_string(), 7001),
                    replicas: vec![("127.0.0.1".to_string(), 7004)]
                },
                SlotRange {
                    first: 5461,
                    last: 16383,
                    master: ("127.0.0.1".to_string(), 7000),
                    replicas: vec![]
                },
            ]
        );
        assert_eq!(parse_slots(&Value::Nil, None), Slots::default());
        // a slot past the last one is no range of a cluster
        let beyond = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(16384),
            node("127.0.0.1", 7001),
        ])]);
        assert_eq!(parse_slots(&beyond, None), Slots::default());
    }

    #[test]
    fn a_node_named_by_no_address_is_the_node_that_answered() {
        let nil_host = Value::Array(vec![Value::Nil, Value::Int(7002), Value::Nil]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(99),
                node("", 7000),
                node("", 7003),
            ]),
            Value::Array(vec![Value::Int(100), Value::Int(199), nil_host]),
            Value::Array(vec![
                Value::Int(200),
                Value::Int(299),
                node("0.0.0.0", 7001),
            ]),
            Value::Array(vec![Value::Int(300), Value::Int(399), node("?", 7004)]),
            Value::Array(vec![
                Value::Int(400),
                Value::Int(16383),
                node("10.0.0.9", 7005),
            ]),
        ]);
        let at = |first: u16, last: u16, host: &str, port: u16| SlotRange {
            first,
            last,
            master: (host.to_string(), port),
            replicas: Vec::new(),
        };
        // Asked of a known node: empty, NULL and wildcard hosts are that node's; `?` is
        // an unknown endpoint, left out and counted.
        let read = parse_slots(&reply, Some("127.0.0.1"));
        let mut first = at(0, 99, "127.0.0.1", 7000);
        first.replicas = vec![("127.0.0.1".to_string(), 7003)];
        assert_eq!(
            read,
            Slots {
                ranges: vec![
                    first,
                    at(100, 199, "127.0.0.1", 7002),
                    at(200, 299, "127.0.0.1", 7001),
                    at(400, 16383, "10.0.0.9", 7005),
                ],
                unaddressed: 1,
            }
        );
        // Asked of any node: which one answered is not known, so those are counted too.
        let read = parse_slots(&reply, None);
        assert_eq!(
            read,
            Slots {
                ranges: vec![at(400, 16383, "10.0.0.9", 7005)],
                unaddressed: 4,
            }
        );
        // A malformed entry is no address problem.
        let odd = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(1),
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
        ])]);
        assert_eq!(parse_slots(&odd, Some("127.0.0.1")), Slots::default());
    }

    #[test]
    fn a_seed_address_is_its_host_and_port() {
        let info: ConnectionInfo = "redis://:pw@10.1.2.3:7001".parse().unwrap();
        assert_eq!(address_of(&info), Some(("10.1.2.3".to_string(), 7001)));
    }

    #[test]
    fn slots_are_the_clusters_own() {
        use redis::cluster_routing::Slot;
        // The specification's example, and keys as the tier writes them.
        assert_eq!(slot_of(b"123456789"), 0x31C3);
        let mut keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"app:users:42".to_vec(),
            b"{user1000}.following".to_vec(),
            b"foo{}{bar}".to_vec(),
            b"foo{{bar}}zap".to_vec(),
            b"foo{bar}{zap}".to_vec(),
            b"{".to_vec(),
            b"}{".to_vec(),
            "ünïcödé:✓".as_bytes().to_vec(),
        ];
        keys.extend((0..2000).map(|i| format!("bench:profiles:{i}").into_bytes()));
        for key in keys {
            assert_eq!(
                Slot::new(slot_of(&key)),
                Some(Slot::for_key(&key)),
                "{}",
                String::from_utf8_lossy(&key)
            );
        }
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
