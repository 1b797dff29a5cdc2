//! `Cache::expire`: an entry marked stale now but kept for its grace period, in every tier
//! (the bus message that tells every instance is the cache's), so the next read refreshes
//! it while a failing backend is still covered by the stale value (Bentocache's and
//! FusionCache's `expire`).

use std::time::{Duration, Instant};

use crate::codec;
use crate::store::remote::Remote;
use crate::store::versions::Versions;
use crate::store::{L1Key, LocalTier};

/// How long an expired entry stays, as of `now`: its own grace period (what it was kept
/// past its TTL), or `grace` when it had no TTL, never past when it was to be dropped
/// anyway. `None`: nothing to keep (no grace).
fn kept_until<T>(fresh: Option<T>, keep: Option<T>, grace: Duration, now: T) -> Option<T>
where
    T: Copy + Ord + Graced,
{
    let own = match (fresh, keep) {
        (Some(fresh), Some(keep)) => keep.since(fresh),
        _ => grace,
    };
    let until = now.plus(own)?;
    let until = keep.map_or(until, |keep| keep.min(until));
    (until > now).then_some(until)
}

/// The two clocks an entry's times are on: instants in L1, unix milliseconds in L2.
trait Graced: Sized {
    fn since(self, earlier: Self) -> Duration;
    fn plus(self, by: Duration) -> Option<Self>;
}

impl Graced for Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
    fn plus(self, by: Duration) -> Option<Self> {
        self.checked_add(by)
    }
}

impl Graced for u64 {
    fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.saturating_sub(earlier))
    }
    fn plus(self, by: Duration) -> Option<Self> {
        self.checked_add(u64::try_from(by.as_millis()).ok()?)
    }
}

/// Expires the L1 entry under `stored` (filed under `key`) as of `now` (`now_ticks` on the
/// store clock's ticks): stale from now, kept for its grace. With a `tti`, the L1 copy's
/// renewals of the L2 copy stop there too, as the L2 copy is rewritten for that long
/// ([`expire_remote`]).
pub(crate) fn expire_local(
    l1: &dyn LocalTier,
    versions: &Versions,
    (stored, key): (&str, L1Key),
    grace: Duration,
    (now, now_ticks): (Instant, u64),
) {
    let Some(mut entry) = l1.get(&key.borrowed()) else {
        return;
    };
    match kept_until(entry.fresh_until, entry.keep_until, grace, now) {
        Some(keep_until) => {
            if let Some(idle) = &entry.idle {
                let left = keep_until.saturating_duration_since(now);
                let left = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                idle.end_l2_by(now_ticks.saturating_add(left));
            }
            entry.fresh_until = Some(now);
            entry.keep_until = Some(keep_until);
            entry.refresh_at = None;
            versions.change(stored, || l1.insert(key, entry));
        }
        None => {
            versions.change(stored, || l1.remove(&key.borrowed()));
        }
    }
}

/// Expires the L2 entry under `stored` as of `now_ms` (unix milliseconds): its envelope's
/// times are rewritten in place, the payload left as it is, so no type is needed. `false`
/// when the L2 could not be read or written.
pub(crate) async fn expire_remote(
    remote: &Remote,
    store: &str,
    stored: &str,
    grace: Duration,
    now_ms: u64,
) -> bool {
    let mut bytes = match remote.get(store, stored).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return true,
        Err(_) => return false,
    };
    let keep = codec::read_meta(&bytes, remote.max_value_size)
        .ok()
        .and_then(|meta| kept_until(meta.fresh_until_ms, meta.keep_until_ms, grace, now_ms));
    let done = match keep {
        Some(keep_ms) if codec::retime(&mut bytes, Some(now_ms), Some(keep_ms)) => {
            let ttl = Duration::from_millis(keep_ms - now_ms);
            remote.set(store, stored, bytes, ttl).await
        }
        // No grace, or bytes no read can use: the entry goes.
        _ => remote.delete(store, &[stored.to_owned()]).await,
    };
    done.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_entry_keeps_its_own_grace_but_no_more() {
        let grace = Duration::from_secs(3600);
        // Fresh until 100, kept until 160 (a grace of 60): expired at 50, kept until 110.
        assert_eq!(kept_until(Some(100u64), Some(160), grace, 50), Some(110));
        // Expired at 150: its grace would end at 210, but it was to be dropped at 160.
        assert_eq!(kept_until(Some(100u64), Some(160), grace, 150), Some(160));
        // No grace: nothing to keep.
        assert_eq!(kept_until(Some(100u64), Some(100), grace, 50), None);
        // No TTL: the cache's grace.
        assert_eq!(kept_until(None, None, grace, 50u64), Some(3_600_050));
        assert_eq!(kept_until(None, None, Duration::ZERO, 50u64), None);
    }
}
