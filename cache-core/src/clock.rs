//! Entry timing in both clocks: `Instant`s for the in-process tier, unix milliseconds for
//! the envelope of remote values (shared by machines whose monotonic clocks differ).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a remote tier keeps an entry that never expires logically: every Redis key
/// carries a TTL.
pub(crate) const FOREVER_REMOTE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Milliseconds since the unix epoch, now.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// When an entry stops being fresh, and when it must be dropped (grace included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) fresh_until: Option<Instant>,
    pub(crate) keep_until: Option<Instant>,
    pub(crate) fresh_until_ms: Option<u64>,
    pub(crate) keep_until_ms: Option<u64>,
    now: Instant,
    now_ms: u64,
}

impl Timing {
    /// An entry written now, fresh for `ttl` (`None`: forever) and kept `grace` longer.
    pub(crate) fn starting_now(ttl: Option<Duration>, grace: Option<Duration>) -> Self {
        let (now, now_ms) = (Instant::now(), unix_ms());
        let keep = ttl.map(|ttl| ttl.saturating_add(grace.unwrap_or_default()));
        Self {
            fresh_until: ttl.and_then(|ttl| now.checked_add(ttl)),
            keep_until: keep.and_then(|keep| now.checked_add(keep)),
            fresh_until_ms: ttl.map(|ttl| now_ms.saturating_add(ms(ttl))),
            keep_until_ms: keep.map(|keep| now_ms.saturating_add(ms(keep))),
            now,
            now_ms,
        }
    }

    /// Fresh for `fresh_for` (but not past `keep_until`), dropped at `keep_until`.
    pub(crate) fn until(fresh_for: Duration, keep_until: Option<Instant>) -> Self {
        let (now, now_ms) = (Instant::now(), unix_ms());
        let fresh_until = now
            .checked_add(fresh_for)
            .map(|fresh| keep_until.map_or(fresh, |keep| fresh.min(keep)));
        let as_ms = |at: Instant| now_ms.saturating_add(ms(at.saturating_duration_since(now)));
        Self {
            fresh_until,
            keep_until,
            fresh_until_ms: fresh_until.map(as_ms),
            keep_until_ms: keep_until.map(as_ms),
            now,
            now_ms,
        }
    }

    /// The timing an envelope carries, in this process's clocks.
    pub(crate) fn from_unix_ms(fresh_until_ms: Option<u64>, keep_until_ms: Option<u64>) -> Self {
        let (now, now_ms) = (Instant::now(), unix_ms());
        let at =
            |until_ms: u64| now.checked_add(Duration::from_millis(until_ms.saturating_sub(now_ms)));
        Self {
            fresh_until: fresh_until_ms.and_then(at),
            keep_until: keep_until_ms.and_then(at),
            fresh_until_ms,
            keep_until_ms,
            now,
            now_ms,
        }
    }

    /// The instant `ratio` (0..1) of the way from now to `fresh_until`, if it expires.
    pub(crate) fn refresh_point(&self, ratio: f64) -> Option<Instant> {
        let ttl = self.fresh_until?.saturating_duration_since(self.now);
        self.now.checked_add(ttl.mul_f64(ratio))
    }

    /// Past `keep_until`: must not be served at all.
    pub(crate) fn is_gone(&self) -> bool {
        self.keep_until_ms.is_some_and(|keep| keep <= self.now_ms)
    }

    /// Before `fresh_until`.
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh_until_ms.is_none_or(|fresh| fresh > self.now_ms)
    }

    /// The TTL a remote tier should set: until `keep_until`, at least a millisecond.
    pub(crate) fn physical_ttl(&self) -> Duration {
        match self.keep_until {
            Some(keep) => keep
                .saturating_duration_since(self.now)
                .max(Duration::from_millis(1)),
            None => FOREVER_REMOTE_TTL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_now_and_read_back_agree() {
        let t = Timing::starting_now(Some(Duration::from_secs(10)), Some(Duration::from_secs(50)));
        assert!(t.is_fresh() && !t.is_gone());
        assert!(
            t.physical_ttl() > Duration::from_secs(59)
                && t.physical_ttl() <= Duration::from_secs(60)
        );
        let back = Timing::from_unix_ms(t.fresh_until_ms, t.keep_until_ms);
        assert!(back.is_fresh());
        let left = back
            .fresh_until
            .unwrap()
            .saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(9), "{left:?}");
    }

    #[test]
    fn stale_and_gone() {
        let now = unix_ms();
        let stale = Timing::from_unix_ms(Some(now - 10), Some(now + 10_000));
        assert!(!stale.is_fresh() && !stale.is_gone());
        let gone = Timing::from_unix_ms(Some(now - 10), Some(now - 5));
        assert!(gone.is_gone());
        assert_eq!(
            Timing::starting_now(None, None).physical_ttl(),
            FOREVER_REMOTE_TTL
        );
    }
}
