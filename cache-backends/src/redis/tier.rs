//! [`RedisTier`]: the L2 tier on Redis.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::store::{BoxFuture, RemoteTier, Scope};
use cache_core::{CacheError, TierError};

use super::connection::Connection;
use super::options::RedisOptions;

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

/// Deletes the lock `KEYS[1]` only if it still holds the token `ARGV[1]`: checked and
/// deleted in one atomic step, so an expired lock taken by another holder is left alone.
const UNLOCK_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                             return redis.call('DEL', KEYS[1]) else return 0 end";

/// How many keys one `UNLINK` command carries in `delete_many`.
const UNLINK_BATCH: usize = 1000;

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
}

impl fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTier")
            .field("target", &self.conn.target())
            .finish_non_exhaustive()
    }
}

/// Milliseconds for `PX`: at least 1 (Redis refuses 0), saturating.
fn px_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The transaction of a tagged write: the value with its TTL, and its key added to each
/// tag set, whose TTL is set when it has none (`NX`) and raised when shorter (`GT`), so a
/// set outlives every entry it lists and still expires (both flags need Redis 7).
fn tagged_set_pipe(key: &str, value: Vec<u8>, px: u64, tag_keys: &[String]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(px)
        .ignore();
    for tag_key in tag_keys {
        pipe.cmd("SADD").arg(tag_key).arg(key).ignore();
        for flag in ["NX", "GT"] {
            pipe.cmd("PEXPIRE").arg(tag_key).arg(px).arg(flag).ignore();
        }
    }
    pipe
}

impl RemoteTier for RedisTier {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, TierError>> {
        let key = key.to_owned();
        // GETRANGE 0 max: at most max + 1 bytes ever travel or get allocated, however big
        // the stored value; a result longer than max is refused by the codec as
        // oversized. GETRANGE answers "" for a missing key; stored envelopes are never
        // empty, so "" is a miss.
        let last = self.conn.max_value_size;
        Box::pin(self.conn.run_one("GET", move |mut c| async move {
            let bytes: Vec<u8> = redis::cmd("GETRANGE")
                .arg(&key)
                .arg(0)
                .arg(last)
                .query_async(&mut c)
                .await?;
            Ok((!bytes.is_empty()).then_some(bytes))
        }))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let key = key.to_owned();
        // Shared, not copied, by the clone kept for a retry on a dead connection.
        let value = Arc::new(value);
        Box::pin(self.conn.run_one("SET", move |mut c| async move {
            // One command: the value never exists without its TTL.
            redis::cmd("SET")
                .arg(&key)
                .arg(value.as_slice())
                .arg("PX")
                .arg(px_millis(ttl))
                .query_async::<()>(&mut c)
                .await
        }))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), TierError>> {
        if keys.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let mut pipe = redis::pipe();
        for batch in keys.chunks(UNLINK_BATCH) {
            pipe.cmd("UNLINK").arg(batch).ignore();
        }
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("UNLINK", timeout, move |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        }))
    }

    fn clear_scope<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), TierError>> {
        let pattern = scope.redis_pattern();
        // A scope may hold many keys: no bound on the whole, but each SCAN / UNLINK round
        // trip is bounded by the connection's response timeout (= operation_timeout).
        Box::pin(self.conn.run("SCAN+UNLINK", None, move |mut c| async move {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) =
                    scan_step(cursor, &pattern).query_async(&mut c).await?;
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
        }))
    }

    fn set_tagged<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let pipe = tagged_set_pipe(key, value, px_millis(ttl), tag_keys);
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SET+SADD", timeout, move |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        }))
    }

    fn tagged_keys<'a>(
        &'a self,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TierError>> {
        if tag_keys.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let mut cmd = redis::cmd("SUNION");
        cmd.arg(tag_keys);
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(self.conn.run("SUNION", timeout, move |mut c| async move {
            let members: Vec<Vec<u8>> = cmd.query_async(&mut c).await?;
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
        let mut pipe = redis::pipe();
        for batch in keys.chunks(UNLINK_BATCH) {
            pipe.cmd("UNLINK").arg(batch).ignore();
            // SREM of exactly these members: a key added to a set meanwhile stays listed.
            for tag_key in tag_keys {
                pipe.cmd("SREM").arg(tag_key).arg(batch).ignore();
            }
        }
        let timeout = Some(self.conn.operation_timeout);
        Box::pin(
            self.conn
                .run("UNLINK+SREM", timeout, move |mut c| async move {
                    pipe.query_async::<()>(&mut c).await
                }),
        )
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
        Box::pin(self.conn.run("SCAN", timeout, move |mut c| async move {
            let (next, keys): (u64, Vec<Vec<u8>>) =
                scan_step(cursor, &pattern).query_async(&mut c).await?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_write_is_one_transaction_that_never_shortens_a_set() {
        let pipe = tagged_set_pipe("p:c:1", b"v".to_vec(), 5000, &["p:c:=tag:t".to_string()]);
        let wire = String::from_utf8_lossy(&pipe.get_packed_pipeline()).replace("\r\n", " ");
        let expected = [
            "MULTI",
            "SET $5 p:c:1 $1 v $2 PX $4 5000",
            "SADD $10 p:c:=tag:t $5 p:c:1",
            "PEXPIRE $10 p:c:=tag:t $4 5000 $2 NX",
            "PEXPIRE $10 p:c:=tag:t $4 5000 $2 GT",
            "EXEC",
        ];
        let mut at = 0;
        for part in expected {
            let found = wire[at..]
                .find(part)
                .unwrap_or_else(|| panic!("{part} in {wire}"));
            at += found + part.len();
        }
    }

    #[test]
    fn px_is_never_zero() {
        assert_eq!(px_millis(Duration::ZERO), 1);
        assert_eq!(px_millis(Duration::from_micros(10)), 1);
        assert_eq!(px_millis(Duration::from_secs(2)), 2000);
        assert_eq!(px_millis(Duration::MAX), u64::MAX);
    }
}
