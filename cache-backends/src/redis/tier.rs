//! [`RedisTier`]: the L2 tier on Redis.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::store::{memberships_ttl, BoxFuture, RemoteEntry, RemoteTier, Scope};
use cache_core::{CacheError, TierError};

use super::batch::{px_millis, read};
use super::cluster;
use super::connection::Connection;
use super::options::RedisOptions;
use super::tags;
use super::topology::Conn;

/// How many keys one `SCAN` step asks for while clearing or scanning a scope.
const SCAN_COUNT: usize = 500;

/// One `SCAN cursor MATCH pattern COUNT n` step, shared by clearing and listing a scope.
fn scan_step(cursor: u64, pattern: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT);
    cmd
}

/// Clears a scope on one server: `SCAN` steps, each followed by an `UNLINK` of what it
/// found. Each round trip is bounded by the connection's response timeout.
async fn clear_node(mut c: Conn, pattern: &str) -> redis::RedisResult<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) =
            scan_step(cursor, pattern).query_async(&mut c).await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut c)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Deletes the lock `KEYS[1]` only if it still holds the token `ARGV[1]`: checked and
/// deleted in one atomic step, so an expired lock taken by another holder is left alone.
const UNLOCK_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                             return redis.call('DEL', KEYS[1]) else return 0 end";

/// Renews the TTL of `KEYS[1]` to `ARGV[1]` ms only if that raises it (`PEXPIRE .. GT`, which
/// needs Redis 7, in one atomic step any server with `EVAL` runs): 1 if renewed; 0 for a key
/// that is missing (`PTTL` -2), has no TTL (-1, as `GT` counts it: never expiring) or
/// would keep a longer one.
const TOUCH_SCRIPT: &str = "local left = redis.call('PTTL', KEYS[1]) \
                            if left >= 0 and left < tonumber(ARGV[1]) then \
                            return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return 0";

/// An L2 tier on Redis: bytes under `{prefix}:{cache}:{key}` keys, each with a TTL.
///
/// Cheap to clone. Building never connects; the connection is made on first use, on a
/// background runtime of its own, and re-made after faults. Every operation is bounded
/// by `operation_timeout`, and a read never fetches more than `max_value_size + 1`
/// bytes.
///
/// ```no_run
/// use cache_backends::redis::{RedisOptions, RedisTier};
/// use cache_core::store::RemoteTier;
/// use std::time::Duration;
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let tier = RedisTier::new(&RedisOptions::new("redis://127.0.0.1:6379/0"))?;
/// tier.set("app:users:42", b"bytes".to_vec(), Duration::from_secs(60)).await?;
/// assert_eq!(tier.get("app:users:42").await?, Some(b"bytes".to_vec()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTier {
    conn: Arc<Connection>,
}

impl RedisTier {
    /// A tier for these options. Does not connect.
    pub fn new(opts: &RedisOptions) -> Result<Self, CacheError> {
        let conn = Connection::new(opts).map_err(RedisOptions::builder_error)?;
        Ok(Self { conn })
    }

    pub(crate) fn from_connection(conn: Arc<Connection>) -> Self {
        Self { conn }
    }

    /// On a Redis Cluster, the master (host, port) a command on the stored key `key` is
    /// sent to directly now, when its route is known and its connection sound; `None`
    /// otherwise, and on one server or through Sentinel. For tests that check the routes
    /// follow the cluster (not part of the API).
    #[doc(hidden)]
    pub fn routed_master(&self, key: &str) -> Option<(String, u16)> {
        self.conn.routed_master(key)
    }
}

impl fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTier")
            .field("target", &self.conn.target())
            .finish_non_exhaustive()
    }
}

impl RemoteTier for RedisTier {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, TierError>> {
        // `GETRANGE key 0 max_value_size`: at most `max_value_size + 1` bytes ever travel or
        // get allocated, however big the stored value (a result longer than the
        // `max_value_size` it is given is refused by the codec as oversized). GETRANGE
        // answers "" for a missing key; stored envelopes are never empty, so "" is a miss.
        if self.conn.is_cluster() {
            let last = self.conn.read_end.as_str();
            return Box::pin(self.conn.run_one("GET", key, move |c| read(c, key, last)));
        }
        Box::pin(self.conn.read(key))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        // Shared, not copied, by the clone kept for a retry on a dead connection.
        let value = Arc::new(value);
        Box::pin(self.conn.run_one("SET", key, move |mut c| async move {
            // One command: the value never exists without its TTL.
            redis::cmd("SET")
                .arg(key)
                .arg(value.as_slice())
                .arg("PX")
                .arg(px_millis(ttl))
                .query_async::<()>(&mut c)
                .await
        }))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, TierError>> {
        // The TTL only is renewed: the value, and the freshness it records, stay. Raised,
        // never lowered (`PEXPIRE .. GT`'s rule, in a script any server with `EVAL` runs,
        // Redis 6 and KeyDB too), so a touch computed from an older copy never cuts short
        // a newer entry another instance wrote under the key meanwhile.
        Box::pin(
            self.conn
                .run_one("EVAL touch", key, move |mut c| async move {
                    redis::cmd("EVAL")
                        .arg(TOUCH_SCRIPT)
                        .arg(1)
                        .arg(key)
                        .arg(px_millis(ttl))
                        .query_async::<i64>(&mut c)
                        .await
                        .map(|renewed| renewed == 1)
                }),
        )
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, TierError>> {
        if keys.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        // Shared, not copied, by the clone kept for a retry on a dead connection.
        let keys = Arc::new(keys.to_vec());
        let last: Arc<str> = self.conn.read_end.as_str().into();
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("GETRANGE*", timeout, move |c| async move {
            super::batch::get_many(c, keys, last).await
        }))
    }

    fn set_many<'a>(&'a self, entries: Vec<RemoteEntry>) -> BoxFuture<'a, Result<(), TierError>> {
        if entries.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let entries = Arc::new(entries);
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SET*", timeout, move |c| async move {
            super::batch::set_many(c, entries).await
        }))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), TierError>> {
        if keys.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let keys = keys.to_vec();
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("UNLINK", timeout, move |c| async move {
            tags::unlink(c, &keys).await
        }))
    }

    fn clear_scope<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), TierError>> {
        let pattern = scope.redis_pattern();
        // A scope may hold many keys: no bound on the whole, but each SCAN / UNLINK round
        // trip is bounded by the connection's response timeout (= operation_timeout).
        Box::pin(self.conn.run("SCAN+UNLINK", None, move |c| async move {
            match c {
                Conn::Node(node) => clear_node(Conn::Node(node), &pattern).await,
                Conn::Cluster(mut cluster) => {
                    // Every master holds a share of the slots: scan each to its end.
                    for master in cluster::masters(&mut cluster).await? {
                        let mut cursor = 0;
                        loop {
                            let (next, keys): (u64, Vec<Vec<u8>>) = cluster::on_node(
                                &mut cluster,
                                &master,
                                scan_step(cursor, &pattern),
                            )
                            .await?;
                            if !keys.is_empty() {
                                redis::cmd("UNLINK")
                                    .arg(&keys)
                                    .query_async::<()>(&mut cluster)
                                    .await?;
                            }
                            if next == 0 {
                                break;
                            }
                            cursor = next;
                        }
                    }
                    Ok(())
                }
            }
        }))
    }

    fn set_tagged<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tag_keys: &'a [String],
        tags_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let (key, tag_keys) = (key.to_owned(), tag_keys.to_vec());
        let lifetimes = tags::Lifetimes {
            px: px_millis(ttl),
            tags_px: px_millis(memberships_ttl(ttl, tags_ttl)),
        };
        // Shared, not copied, by the clone kept for a retry on a dead connection.
        let value = Arc::new(value);
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SET+SADD", timeout, move |c| {
            tags::set_tagged(c, key, value, lifetimes, tag_keys)
        }))
    }

    fn tagged_keys<'a>(
        &'a self,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TierError>> {
        if tag_keys.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let tag_keys = tag_keys.to_vec();
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SUNION", timeout, move |c| async move {
            let members = tags::members(c, tag_keys).await?;
            // Members are keys cachet wrote, so UTF-8; anything else is no key of ours.
            Ok(members
                .into_iter()
                .filter_map(|m| String::from_utf8(m).ok())
                .collect())
        }))
    }

    fn delete_tagged<'a>(
        &'a self,
        keys: &'a [String],
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), TierError>> {
        if keys.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let (keys, tag_keys) = (keys.to_vec(), tag_keys.to_vec());
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SREM+UNLINK", timeout, move |c| {
            tags::delete_tagged(c, keys, tag_keys)
        }))
    }

    fn describe(&self) -> String {
        format!("redis {}", self.conn.target())
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), TierError>> {
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("PING", timeout, |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await?;
            Ok(())
        }))
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let (key, token) = (key.to_owned(), token.to_owned());
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SET NX", timeout, move |mut c| async move {
            // `OK` when taken, nil when another holder has it; expiring by itself either way.
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(px_millis(ttl))
                .query_async(&mut c)
                .await?;
            Ok(taken.is_some())
        }))
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let (key, token) = (key.to_owned(), token.to_owned());
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(
            self.conn
                .run("EVAL unlock", timeout, move |mut c| async move {
                    let deleted: i64 = redis::cmd("EVAL")
                        .arg(UNLOCK_SCRIPT)
                        .arg(1)
                        .arg(&key)
                        .arg(&token)
                        .query_async(&mut c)
                        .await?;
                    Ok(deleted == 1)
                }),
        )
    }

    fn scan_scope<'a>(
        &'a self,
        scope: &'a Scope,
        cursor: u64,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>), TierError>> {
        let pattern = scope.redis_pattern();
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SCAN", timeout, move |c| async move {
            let (next, keys) = match c {
                Conn::Node(mut node) => {
                    scan_step(cursor, &pattern)
                        .query_async::<(u64, Vec<Vec<u8>>)>(&mut node)
                        .await?
                }
                Conn::Cluster(mut cluster) => {
                    // The cursor says which master (in address order) and where on it.
                    let at = cluster::ScanPosition::decode(cursor);
                    let masters = cluster::masters(&mut cluster).await?;
                    let Some(master) = masters.get(at.master) else {
                        return Ok((0, Vec::new()));
                    };
                    let (next, keys): (u64, Vec<Vec<u8>>) =
                        cluster::on_node(&mut cluster, master, scan_step(at.cursor, &pattern))
                            .await?;
                    let next = cluster::ScanPosition::after(at.master, next, masters.len())
                        .ok_or_else(|| {
                            redis::RedisError::from((
                                redis::ErrorKind::Client,
                                "a node's SCAN cursor is too large to carry",
                            ))
                        })?;
                    (next, keys)
                }
            };
            // Keys written by cachet are UTF-8; anything else under the prefix is shown
            // as best it can be rather than failing the scan.
            let keys = keys
                .into_iter()
                .map(|k| {
                    String::from_utf8(k)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
                })
                .collect();
            Ok((next, keys))
        }))
    }
}
