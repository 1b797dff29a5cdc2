//! Tag sets on Redis: a tagged write and a delete by tag, on one server and on a cluster.
//!
//! A tag of a cache is a set `{base}:=tag:{tag}` listing the stored keys written with it
//! (`cache_core::tags` decides the layout and what a delete by tag does). Two promises
//! make `delete_by_tag` right:
//!
//! 1. **A value never exists without its memberships**: once a tagged write has stored
//!    its value, the key is listed in each of its tag sets, and stays listed until a
//!    delete by tag removes the value too. (A listed key without a value is harmless:
//!    deleting it deletes nothing, or an entry written later without the tag — evicting
//!    more than asked, which is always safe for a cache.)
//! 2. **No set expires before what it lists**: each write raises the set's TTL to the
//!    entry's full lifetime when shorter (`PEXPIRE .. NX` then `PEXPIRE .. GT`), never
//!    lowers it. The full lifetime, not the TTL the value is written with: with a time to
//!    idle the value is written for the `tti` and renewed by reads (`PEXPIRE`) up to that
//!    lifetime, and its memberships must last as long as it may.
//!
//! # One server
//!
//! The write is one `MULTI` transaction: `SET key value PX ttl`, and per tag `SADD` plus
//! the two `PEXPIRE`s. No other command runs between them, so (1) holds at every instant.
//! A delete by tag reads the sets' union (`SUNION`), then removes those members from the
//! sets (`SREM`) *before* it deletes the keys (`UNLINK`): a tagged write landing between
//! the two re-adds its key after the `SREM` and loses its value to the `UNLINK`, leaving
//! a harmless stray member; were the order the other way round, a write landing between
//! them would keep its value and lose its membership.
//!
//! # Cluster
//!
//! A key and its tag sets hash to different slots, so no transaction can hold them (a
//! cluster refuses it with `CROSSSLOT`), and pinning them to one slot with a hash tag
//! would put a whole cache on one node. Every command here touches one key, so one slot:
//!
//! - write: **A1** each set gets the key and its TTL (one `MULTI` per set: same key, same
//!   slot; all sets at once), then **S** `SET key value PX ttl`, then **A2** the same as A1
//!   again. Each step starts after the previous one answered.
//! - delete by tag: **R** read each set (`SMEMBERS`, all at once), then **Ds** `SREM` those
//!   members from each set, then **Du** `UNLINK` the keys (split per slot by the client).
//!
//! Why (1) holds: suppose a write's value survives a delete by tag that listed its key and
//! its membership was removed. The value survived, so S ran after Du. The membership was
//! removed by Ds, so the last `SADD` ran before Ds. But A2 runs after S, which is after
//! Du, which is after Ds: A2 re-added the key after Ds. So the key is listed. Without A2,
//! a write whose A1 ran before R and whose S ran after Du — a write overlapping the whole
//! delete — would keep a value no later delete by tag could find. Without A1, a value
//! would exist, unlisted, between S and A2, and forever if A2 failed. If S fails, A1 left
//! stray members only. If A2 fails, the key is unlinked again (best effort) and the write
//! reports the error.
//!
//! The cost on a cluster: a tagged write takes three round trips instead of one (writes
//! follow a miss that ran the function, so this is rarely what a caller waits on), and a
//! delete by tag three instead of two. Reads never look at tags, on a cluster or not.

use std::sync::Arc;

use futures_util::future::try_join_all;
use redis::{Pipeline, RedisResult};

use super::topology::Conn;

/// How many keys one `UNLINK` or `SREM` command carries.
pub(crate) const BATCH: usize = 1000;

/// Adds `key` to the set `tag_key` and raises the set's TTL to `tags_px` when shorter
/// (`NX`: when it has none, `GT`: when shorter; both need Redis 7).
fn membership(pipe: &mut Pipeline, tag_key: &str, key: &str, tags_px: u64) {
    pipe.cmd("SADD").arg(tag_key).arg(key).ignore();
    for flag in ["NX", "GT"] {
        pipe.cmd("PEXPIRE")
            .arg(tag_key)
            .arg(tags_px)
            .arg(flag)
            .ignore();
    }
}

/// How long a tagged write is kept: the value `px` ms, its memberships `tags_px` ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    pub(crate) px: u64,
    pub(crate) tags_px: u64,
}

/// The one-server tagged write: the value with its TTL and every membership, in one
/// transaction.
pub(crate) fn tagged_set_pipe(
    key: &str,
    value: &[u8],
    Lifetimes { px, tags_px }: Lifetimes,
    tag_keys: &[String],
) -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(px)
        .ignore();
    for tag_key in tag_keys {
        membership(&mut pipe, tag_key, key, tags_px);
    }
    pipe
}

/// The memberships of a cluster write, one transaction per set (each on its own slot).
fn membership_pipes(key: &str, tags_px: u64, tag_keys: &[String]) -> Vec<Pipeline> {
    tag_keys
        .iter()
        .map(|tag_key| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            membership(&mut pipe, tag_key, key, tags_px);
            pipe
        })
        .collect()
}

async fn run_all(conn: &Conn, pipes: &[Pipeline]) -> RedisResult<()> {
    try_join_all(pipes.iter().map(|pipe| {
        let mut c = conn.clone();
        async move { pipe.query_async::<()>(&mut c).await }
    }))
    .await
    .map(drop)
}

/// Stores `value` under `key` for `lifetimes.px` ms, listed in each of `tag_keys` for
/// `lifetimes.tags_px` ms.
pub(crate) async fn set_tagged(
    mut conn: Conn,
    key: String,
    value: Arc<Vec<u8>>,
    lifetimes: Lifetimes,
    tag_keys: Vec<String>,
) -> RedisResult<()> {
    if matches!(conn, Conn::Node(_)) {
        return tagged_set_pipe(&key, &value, lifetimes, &tag_keys)
            .query_async::<()>(&mut conn)
            .await;
    }
    let px = lifetimes.px;
    let memberships = membership_pipes(&key, lifetimes.tags_px, &tag_keys);
    run_all(&conn, &memberships).await?; // A1
    redis::cmd("SET")
        .arg(&key)
        .arg(value.as_slice())
        .arg("PX")
        .arg(px)
        .query_async::<()>(&mut conn)
        .await?; // S
    if let Err(e) = run_all(&conn, &memberships).await {
        // A2 failed: the value may be unlisted; take it back rather than leave it.
        let _ = redis::cmd("UNLINK")
            .arg(&key)
            .query_async::<()>(&mut conn)
            .await;
        return Err(e);
    }
    Ok(())
}

/// Every member of the sets `tag_keys`.
pub(crate) async fn members(mut conn: Conn, tag_keys: Vec<String>) -> RedisResult<Vec<Vec<u8>>> {
    if matches!(conn, Conn::Node(_)) {
        return redis::cmd("SUNION")
            .arg(&tag_keys)
            .query_async(&mut conn)
            .await;
    }
    let sets: Vec<Vec<Vec<u8>>> = try_join_all(tag_keys.iter().map(|tag_key| {
        let mut c = conn.clone();
        async move {
            redis::cmd("SMEMBERS")
                .arg(tag_key)
                .query_async(&mut c)
                .await
        }
    }))
    .await?;
    let mut all: Vec<Vec<u8>> = sets.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

/// Unlinks `keys`: pipelined on one server; on a cluster one multi-key command per
/// batch, which the cluster client splits per slot and sends to each slot's master.
pub(crate) async fn unlink(mut conn: Conn, keys: &[String]) -> RedisResult<()> {
    if matches!(conn, Conn::Node(_)) {
        let mut pipe = redis::pipe();
        for batch in keys.chunks(BATCH) {
            pipe.cmd("UNLINK").arg(batch).ignore();
        }
        return pipe.query_async::<()>(&mut conn).await;
    }
    for batch in keys.chunks(BATCH) {
        redis::cmd("UNLINK")
            .arg(batch)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

/// The `SREM`s of a delete by tag on a cluster, one pipeline per set: exactly these
/// members (members added meanwhile stay listed).
fn srem_pipes(keys: &[String], tag_keys: &[String]) -> Vec<Pipeline> {
    tag_keys
        .iter()
        .map(|tag_key| {
            let mut pipe = redis::pipe();
            for batch in keys.chunks(BATCH) {
                pipe.cmd("SREM").arg(tag_key).arg(batch).ignore();
            }
            pipe
        })
        .collect()
}

/// A delete by tag on one server, in one round trip: the `SREM`s, then the `UNLINK`s.
fn node_delete_pipe(keys: &[String], tag_keys: &[String]) -> Pipeline {
    let mut pipe = redis::pipe();
    for tag_key in tag_keys {
        for batch in keys.chunks(BATCH) {
            pipe.cmd("SREM").arg(tag_key).arg(batch).ignore();
        }
    }
    for batch in keys.chunks(BATCH) {
        pipe.cmd("UNLINK").arg(batch).ignore();
    }
    pipe
}

/// Removes `keys` from the sets `tag_keys`, then deletes them (in that order: see the
/// module documentation).
pub(crate) async fn delete_tagged(
    mut conn: Conn,
    keys: Vec<String>,
    tag_keys: Vec<String>,
) -> RedisResult<()> {
    if matches!(conn, Conn::Node(_)) {
        return node_delete_pipe(&keys, &tag_keys)
            .query_async::<()>(&mut conn)
            .await;
    }
    run_all(&conn, &srem_pipes(&keys, &tag_keys)).await?;
    unlink(conn, &keys).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wire(pipe: &Pipeline) -> String {
        String::from_utf8_lossy(&pipe.get_packed_pipeline()).replace("\r\n", " ")
    }

    fn in_order(wire: &str, parts: &[&str]) {
        let mut at = 0;
        for part in parts {
            let found = wire[at..]
                .find(part)
                .unwrap_or_else(|| panic!("{part} after byte {at} in {wire}"));
            at += found + part.len();
        }
    }

    #[test]
    fn a_one_server_tagged_write_is_one_transaction_that_never_shortens_a_set() {
        // Written for 5 s (a `tti`), listed for the entry's full 60 s.
        let lifetimes = Lifetimes {
            px: 5000,
            tags_px: 60000,
        };
        let pipe = tagged_set_pipe("p:c:1", b"v", lifetimes, &["p:c:=tag:t".to_string()]);
        in_order(
            &wire(&pipe),
            &[
                "MULTI",
                "SET $5 p:c:1 $1 v $2 PX $4 5000",
                "SADD $10 p:c:=tag:t $5 p:c:1",
                "PEXPIRE $10 p:c:=tag:t $5 60000 $2 NX",
                "PEXPIRE $10 p:c:=tag:t $5 60000 $2 GT",
                "EXEC",
            ],
        );
    }

    #[test]
    fn cluster_memberships_touch_one_set_each() {
        let tags = ["p:c:=tag:a".to_string(), "p:c:=tag:b".to_string()];
        let pipes = membership_pipes("p:c:1", 5000, &tags);
        assert_eq!(pipes.len(), 2);
        for (pipe, tag) in pipes.iter().zip(&tags) {
            let w = wire(pipe);
            assert!(!w.contains("SET $5"), "{w}");
            for other in tags.iter().filter(|t| *t != tag) {
                assert!(!w.contains(other.as_str()), "{w}");
            }
            in_order(
                &w,
                &["MULTI", "SADD", "PEXPIRE", "NX", "PEXPIRE", "GT", "EXEC"],
            );
        }
    }

    #[test]
    fn a_delete_by_tag_removes_memberships_before_values() {
        let keys = ["p:c:1".to_string()];
        let tags = ["p:c:=tag:a".to_string()];
        let w = wire(&node_delete_pipe(&keys, &tags));
        in_order(&w, &["SREM $10 p:c:=tag:a $5 p:c:1", "UNLINK $5 p:c:1"]);
        let pipes = srem_pipes(&keys, &tags);
        assert_eq!(pipes.len(), 1);
        let w = wire(&pipes[0]);
        assert!(
            w.contains("SREM $10 p:c:=tag:a $5 p:c:1") && !w.contains("UNLINK"),
            "{w}"
        );
    }
}
