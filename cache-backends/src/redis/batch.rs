//! Batch reads and writes on Redis: one pipeline on one server; on a cluster, whose keys
//! lie on many slots (a pipeline or `MGET` across slots is refused with `CROSSSLOT`), one
//! command per key, all sent at once over the multiplexed connection.
//!
//! Reads are `GETRANGE key 0 max` rather than `MGET`, as single reads are: at most
//! `max_value_size + 1` bytes of each value ever travel or get allocated.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::ConnectionLike;
use redis::RedisResult;

use super::topology::Conn;
use cache_core::driver::SparePool;
use cache_core::store::RemoteEntry;

/// How many commands one pipeline carries at most, so one batch never builds an
/// unbounded request or reply.
const PIPELINE: usize = 500;

/// `GETRANGE stored 0 last` (`last` in decimal, as `Connection::read_end` holds it): the
/// first `last + 1` bytes; `""` (never a stored envelope) for a missing key. Built in
/// buffers sized for it up front (`redis::cmd` grew them four times, and formatted both
/// numbers, on every read). The tier's single reads and [`get_many`] both send it.
#[inline]
pub(crate) fn getrange(stored: &str, last: &str) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(4, GETRANGE.len() + stored.len() + 1 + last.len());
    cmd.arg(GETRANGE).arg(stored).arg("0").arg(last);
    cmd
}

/// The command a read sends.
const GETRANGE: &str = "GETRANGE";

/// How many spare commands a thread keeps ([`spare`]): about as many reads as one worker of a
/// busy service has in flight at once.
const SPARES: usize = 64;

/// The longest stored key whose command is kept as a spare: a spare's buffers grow (at most
/// doubling) to hold the longest command built in them, and none is kept once built for a
/// longer key, so a spare holds under 700 bytes (its buffer of arguments, at most twice
/// `GETRANGE`, the key and two numbers; four arguments' ends; the `Cmd`).
const SPARE_KEY_LEN: usize = 256;

/// The commands of single reads that ended on this thread ([`spare`]), their buffers kept
/// for the next ones ([`getrange_reusing`]), sized by their key's length: at most
/// [`SPARES`] of under 700 bytes each (under 48 KiB a thread; ~11 KiB with keys of a few
/// dozen bytes).
type SpareCommands = SparePool<redis::Cmd, SPARES, SPARE_KEY_LEN>;

std::thread_local! {
    static SPARE: SpareCommands = const { SparePool::new() };
}

/// [`getrange`], built in the buffers of a spare command of this thread when it has one: a
/// command costs two allocations and their frees, which with 64 reads in flight on two
/// threads overflow glibc's per-thread cache and cost ~190 instructions each (BENCHMARKS.md,
/// "64 tasks, phase L"). Give it back with [`spare`] once the request is answered.
#[inline]
pub(crate) fn getrange_reusing(stored: &str, last: &str) -> redis::Cmd {
    let Some(mut cmd) = SparePool::take(&SPARE) else {
        return getrange(stored, last);
    };
    cmd.clear();
    cmd.arg(GETRANGE).arg(stored).arg("0").arg(last);
    cmd
}

/// Keeps `cmd`, [`getrange_reusing`]'s for `stored`, as a spare of this thread (unless the
/// thread keeps [`SPARES`] already or `stored` is longer than [`SPARE_KEY_LEN`]: dropped).
#[inline]
pub(crate) fn spare(cmd: redis::Cmd, stored: &str) {
    SparePool::keep(&SPARE, cmd, stored.len());
}

/// A read of `stored` on `c`: [`getrange`]'s command, so at most `last + 1` bytes ever
/// travel or get allocated, however big the stored value (a result longer than the
/// `max_value_size` it is given is refused by the codec as oversized).
pub(crate) async fn read(mut c: Conn, stored: &str, last: &str) -> RedisResult<Option<Vec<u8>>> {
    range_reply(c.req_packed_command(&getrange(stored, last)).await?)
}

/// What [`getrange`]'s reply holds: the bytes, `None` for `""` (a missing key: stored
/// envelopes are never empty); a server's error as an error, as `query_async` reads it.
#[inline]
pub(crate) fn range_reply(reply: redis::Value) -> RedisResult<Option<Vec<u8>>> {
    let bytes: Vec<u8> = redis::from_redis_value(reply.extract_error()?)?;
    Ok((!bytes.is_empty()).then_some(bytes))
}

/// Milliseconds for `PX`: at least 1 (Redis refuses 0), saturating. Every `SET .. PX` of
/// the driver (here and in the tier) takes its TTL from here.
pub(crate) fn px_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `SET key value PX ms`: the value never exists without its TTL.
fn set_px(entry: &RemoteEntry) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(&entry.key)
        .arg(entry.value.as_slice())
        .arg("PX")
        .arg(px_millis(entry.ttl));
    cmd
}

/// The bytes under each key, in order (`None`: missing).
pub(crate) async fn get_many(
    mut conn: Conn,
    keys: Arc<Vec<String>>,
    last: Arc<str>,
) -> RedisResult<Vec<Option<Vec<u8>>>> {
    let read: Vec<Vec<u8>> = if matches!(conn, Conn::Node(_)) {
        let mut read = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.add_command(getrange(key, &last));
            }
            let part: Vec<Vec<u8>> = pipe.query_async(&mut conn).await?;
            read.extend(part);
        }
        read
    } else {
        try_join_all(keys.iter().map(|key| {
            let (mut c, last) = (conn.clone(), &last);
            async move { getrange(key, last).query_async::<Vec<u8>>(&mut c).await }
        }))
        .await?
    };
    Ok(read
        .into_iter()
        .map(|bytes| (!bytes.is_empty()).then_some(bytes))
        .collect())
}

/// Stores every entry, each with its TTL; a key listed twice keeps its last value (the
/// commands of one server's pipeline run in order; on a cluster the earlier ones of a
/// key are dropped before sending).
pub(crate) async fn set_many(mut conn: Conn, entries: Arc<Vec<RemoteEntry>>) -> RedisResult<()> {
    if matches!(conn, Conn::Node(_)) {
        for chunk in entries.chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            for entry in chunk {
                pipe.add_command(set_px(entry)).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
        }
        return Ok(());
    }
    // Sent at once, concurrent writes of one key could land in any order: keep the last.
    let mut last = std::collections::HashMap::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        last.insert(entry.key.as_str(), i);
    }
    try_join_all(
        entries
            .iter()
            .enumerate()
            .filter(|(i, entry)| last.get(entry.key.as_str()) == Some(i))
            .map(|(_, entry)| {
                let mut c = conn.clone();
                async move { set_px(entry).query_async::<()>(&mut c).await }
            }),
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spare's buffers hold the last command built in them: a read built in them must send
    /// exactly what a new command would, whatever was there before; a thread keeps at most
    /// `SPARES`, and none built for a key longer than `SPARE_KEY_LEN`.
    #[test]
    fn a_spare_command_sends_what_a_new_one_would_and_spares_are_bounded() {
        let count = || SparePool::len(&SPARE);
        let longer = getrange_reusing("app:c:12345", "16777216");
        assert_eq!(count(), 0);
        spare(longer, "app:c:12345");
        assert_eq!(count(), 1);
        let reused = getrange_reusing("app:c:1", "99");
        assert_eq!(count(), 0);
        assert_eq!(
            reused.get_packed_command(),
            getrange("app:c:1", "99").get_packed_command()
        );
        assert_eq!(
            reused.get_packed_command(),
            b"*4\r\n$8\r\nGETRANGE\r\n$7\r\napp:c:1\r\n$1\r\n0\r\n$2\r\n99\r\n"
        );
        let long = "k".repeat(SPARE_KEY_LEN + 1);
        spare(getrange(&long, "1"), &long);
        assert_eq!(count(), 0, "a command of a long key is not kept");
        for _ in 0..SPARES + 3 {
            spare(getrange("k", "1"), "k");
        }
        assert_eq!(count(), SPARES);
    }

    #[test]
    fn px_is_never_zero() {
        assert_eq!(px_millis(Duration::ZERO), 1);
        assert_eq!(px_millis(Duration::from_micros(10)), 1);
        assert_eq!(px_millis(Duration::from_secs(2)), 2000);
        assert_eq!(px_millis(Duration::MAX), u64::MAX);
    }
}
