//! Subscriptions of the bus: classic pub/sub (`SUBSCRIBE`/`PUBLISH`) on one server, the
//! Sentinels' master, or a cluster without sharded pub/sub; sharded pub/sub
//! (`SSUBSCRIBE`/`SPUBLISH`, Redis 7 and later) on a cluster that has it.
//!
//! On a cluster, a classic `PUBLISH` is forwarded to every node of the cluster; a sharded
//! `SPUBLISH` only to the nodes of the shard that owns the channel's slot, so an
//! invalidation costs the other shards nothing. The sharded subscriber is a RESP3 cluster
//! connection of its own that subscribes to the channel on its slot's shard.
//!
//! A subscription is lost (and made again, from a fresh view of the cluster, by the
//! bus's subscriber loop, which then tells the handler it may have missed messages) when
//! its connection drops, or on a cluster when any node's connection drops or the server
//! moves the channel's slot (`SUNSUBSCRIBE` pushed by the server): the cluster connection
//! does not say which node dropped, and a dropped node may be the channel's. Resubscribing
//! from scratch after an unrelated node's loss costs one resubscription (and the L1 of
//! the instance, as after any lost subscription), never a missed invalidation.
//!
//! A subscription is lost too when its node stops answering without closing the
//! connection (frozen by SIGSTOP, or cut off by a partition): nothing arrives then, not
//! even a disconnection. [`Messages::ping`] asks the subscribed node itself (a `PING` on
//! the subscriber connection, which RESP2 subscribers may send; on a cluster, by address
//! to the node whose connection took the `SSUBSCRIBE`, not to whichever master the
//! connection's slot map names now), and the bus's subscriber loop counts one left
//! unanswered past its deadline as a lost subscription.

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{PushInfo, PushKind, RedisResult, Value};

use super::cluster::Node;

/// The pub/sub flavour a cluster is used with (decided by whether it knows `SPUBLISH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Classic,
    Sharded,
}

/// Messages of one subscription, until it is lost.
pub(crate) enum Messages {
    /// Classic pub/sub on a dedicated connection: `sink` sends its commands (`PING`),
    /// `stream` yields its messages.
    Classic {
        sink: PubSubSink,
        stream: PubSubStream,
    },
    /// Sharded pub/sub through a RESP3 cluster connection; its pushes arrive on `pushes`.
    Sharded {
        /// Kept alive for as long as the subscription is wanted; pings the channel's node.
        conn: ClusterConnection,
        pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
        channels: Vec<Vec<u8>>,
        /// The node whose connection took the `SSUBSCRIBE`, when it could be told
        /// ([`subscribed_node`]): the heartbeat pings it by address, wherever the
        /// connection's slot map moves meanwhile.
        node: Option<Node>,
    },
}

/// One message: the channel it came on and its payload.
pub(crate) struct Message {
    pub(crate) channel: Vec<u8>,
    pub(crate) payload: Vec<u8>,
}

impl Messages {
    /// The next message on a subscribed channel; `None` once the subscription is lost.
    pub(crate) async fn next(&mut self) -> Option<Message> {
        match self {
            Messages::Classic { stream, .. } => stream.next().await.map(|msg| Message {
                channel: msg.get_channel_name().as_bytes().to_vec(),
                payload: msg.get_payload_bytes().to_vec(),
            }),
            Messages::Sharded {
                pushes, channels, ..
            } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::SMessage => {
                        if let Some(message) = sharded_message(push.data, channels) {
                            return Some(message);
                        }
                    }
                    // A node's connection dropped (perhaps the channel's), or the server
                    // took the channel away (its slot moved): start again.
                    PushKind::Disconnection => return None,
                    PushKind::SUnsubscribe if mentions(&push.data, channels) => return None,
                    _ => {}
                }
            },
        }
    }
}

impl Messages {
    /// A `PING` to the node the subscription listens on, answered or failed; the caller
    /// bounds how long it may take. An error reply (`NOPERM`, `LOADING`, ...) is an `Err`
    /// whose [`code`](redis::RedisError::code) is the server's. (Cancel-safe for
    /// [`Messages::next`]: its messages wait in a queue meanwhile.)
    pub(crate) async fn ping(&mut self) -> RedisResult<()> {
        match self {
            // redis hands a RESP2 error reply back as a value, not as an error.
            Messages::Classic { sink, .. } => match sink.ping::<Value>().await? {
                Value::ServerError(refused) => Err(refused.into()),
                _ => Ok(()),
            },
            Messages::Sharded {
                conn,
                channels,
                node,
                ..
            } => {
                let Some(channel) = channels.first() else {
                    return Ok(());
                };
                conn.route_command(redis::cmd("PING"), ping_route(channel, node.as_ref()))
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// Where the heartbeat's `PING` goes: to `node`, the node holding the subscription, by
/// address (a node the connection no longer knows fails the `PING`: a lost subscription);
/// without one, to the master of `channel`'s slot, where `SSUBSCRIBE` went (the slot map
/// may have moved since without the subscription).
pub(crate) fn ping_route(channel: &[u8], node: Option<&Node>) -> RoutingInfo {
    RoutingInfo::SingleNode(match node {
        Some((host, port)) => SingleNodeRoutingInfo::ByAddress {
            host: host.clone(),
            port: *port,
        },
        None => SingleNodeRoutingInfo::SpecificNode(Route::new(
            super::cluster::slot_of(channel),
            SlotAddr::Master,
        )),
    })
}

/// The node whose connection (of `conn`) holds the subscription just made to `channel`:
/// `CLIENT INFO` on the slot's master, through the connection that took the `SSUBSCRIBE`,
/// says which connection that is (`id`), that it holds a shard subscription (`ssub`) and
/// where it goes (`laddr`); the same `CLIENT INFO` sent by that address must name the same
/// connection, or the address is not how `conn` knows the node (a name, a NAT) and `None`
/// is answered (the heartbeat then goes by slot, as before). Each step bounded by `limit`.
pub(crate) async fn subscribed_node(
    conn: &mut ClusterConnection,
    channel: &[u8],
    limit: std::time::Duration,
) -> Option<Node> {
    let by_slot = ping_route(channel, None);
    let first = client_info(conn, by_slot, limit).await?;
    let id = info_field(&first, "id")?;
    if info_field(&first, "ssub")?.parse::<u64>().ok()? == 0 {
        return None;
    }
    let (host, port) = info_field(&first, "laddr")?.rsplit_once(':')?;
    let node = (
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port.parse().ok()?,
    );
    let again = client_info(conn, ping_route(channel, Some(&node)), limit).await?;
    (info_field(&again, "id")? == id).then_some(node)
}

async fn client_info(
    conn: &mut ClusterConnection,
    routing: RoutingInfo,
    limit: std::time::Duration,
) -> Option<String> {
    let cmd = redis::cmd("CLIENT").arg("INFO").to_owned();
    let value = tokio::time::timeout(limit, conn.route_command(cmd, routing))
        .await
        .ok()?
        .ok()?;
    redis::from_redis_value::<String>(value).ok()
}

/// `name=value` of a `CLIENT INFO` line.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.split_ascii_whitespace()
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// `smessage <channel> <payload>` → the message, if on one of `channels`.
fn sharded_message(data: Vec<Value>, channels: &[Vec<u8>]) -> Option<Message> {
    let mut data = data.into_iter();
    let channel = bytes(data.next()?)?;
    let payload = bytes(data.next()?)?;
    channels
        .contains(&channel)
        .then_some(Message { channel, payload })
}

fn mentions(data: &[Value], channels: &[Vec<u8>]) -> bool {
    data.iter().any(|v| match v {
        Value::BulkString(b) => channels.contains(b),
        _ => false,
    })
}

/// Whether a server error says the command is unknown (a server without sharded
/// pub/sub answers `SPUBLISH`/`SSUBSCRIBE` so).
pub(crate) fn is_unknown_command(e: &redis::RedisError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("unknown command")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_pings_the_subscribed_node_by_address() {
        let node: Node = ("10.0.0.7".into(), 7001);
        match ping_route(b"app:__bus", Some(&node)) {
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }) => {
                assert_eq!((host.as_str(), port), ("10.0.0.7", 7001));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ping_route(b"app:__bus", None),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(_))
        ));
        let info = "id=42 addr=127.0.0.1:5 laddr=127.0.0.1:7001 fd=8 ssub=1 name=";
        assert_eq!(info_field(info, "id"), Some("42"));
        assert_eq!(info_field(info, "laddr"), Some("127.0.0.1:7001"));
        assert_eq!(info_field(info, "ssub"), Some("1"));
        assert_eq!(info_field(info, "name"), Some(""));
        assert_eq!(info_field(info, "sub"), None);
    }

    #[test]
    fn sharded_messages_are_read_from_pushes() {
        let channels = vec![b"app:__bus".to_vec()];
        let data = vec![
            Value::BulkString(b"app:__bus".to_vec()),
            Value::BulkString(b"payload".to_vec()),
        ];
        let m = sharded_message(data, &channels).unwrap();
        assert_eq!(
            (m.channel.as_slice(), m.payload.as_slice()),
            (&b"app:__bus"[..], &b"payload"[..])
        );
        let other = vec![
            Value::BulkString(b"other".to_vec()),
            Value::BulkString(b"payload".to_vec()),
        ];
        assert!(sharded_message(other, &channels).is_none());
        assert!(sharded_message(vec![Value::Nil], &channels).is_none());
        assert!(mentions(
            &[Value::BulkString(b"app:__bus".to_vec()), Value::Int(0)],
            &channels
        ));
    }
}
