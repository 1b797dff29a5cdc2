//! Time to idle (`tti`): an L1 entry not read for a while expires, even within its TTL.
//!
//! The entry carries when it was last read, in the store clock's ticks, in an atomic: a
//! hit refreshes it with one relaxed store, and only entries written with a `tti` pay it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// When an entry was last read, and how long it may go unread; and when its L2 copy's
/// TTL was last renewed (`touched`), which reads renew at most once per `tti / 10`, never
/// past the copy's full lifetime (`l2_until`).
#[derive(Debug)]
pub(crate) struct Idle {
    tti_ms: u64,
    last_read: AtomicU64,
    touched: AtomicU64,
    /// When the L2 copy's full lifetime ends (the expiry its envelope records, grace
    /// included), in ticks: a renewal never keeps it longer, so it never outlives its
    /// envelope nor the tag memberships written for that lifetime. Lowered when the entry
    /// is expired ([`Idle::end_l2_by`]).
    l2_until: AtomicU64,
}

/// What a read of an entry with a `tti` finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleRead {
    /// Idle too long: a miss.
    Expired,
    /// Read in time.
    Alive,
    /// Read in time, and its L2 copy was not renewed for a tenth of the `tti`: this
    /// reader renews it (one reader per tenth), for this long (the `tti`, or what is left
    /// of the copy's lifetime when that is less).
    Touch(Duration),
}

impl Idle {
    /// An entry written at `now_ticks` (the store clock's [`ticks`](crate::clock)) that
    /// expires once unread for `tti`, and whose L2 copy may live `l2_lifetime` from now at
    /// most.
    pub(crate) fn new(tti: Duration, now_ticks: u64, l2_lifetime: Duration) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            tti_ms: ms(tti),
            last_read: AtomicU64::new(now_ticks),
            touched: AtomicU64::new(now_ticks),
            l2_until: AtomicU64::new(now_ticks.saturating_add(ms(l2_lifetime))),
        }
    }

    /// The L2 copy's lifetime now ends by `until_ticks` at the latest (`Cache::expire`
    /// rewrote it for its grace period): later renewals stop there.
    pub(crate) fn end_l2_by(&self, until_ticks: u64) {
        self.l2_until.fetch_min(until_ticks, Ordering::Relaxed);
    }

    /// Whether the entry has gone unread for its `tti` at `now_ticks`, without reading it
    /// (`has` asks, as Caffeine's `containsKey`, and is no access).
    pub(crate) fn is_idle(&self, now_ticks: u64) -> bool {
        now_ticks.saturating_sub(self.last_read.load(Ordering::Relaxed)) >= self.tti_ms
    }

    /// A read at `now_ticks`: [`IdleRead::Expired`] when the entry has been idle too long
    /// (it is then a miss), else the read is recorded, and it is the one to renew the L2
    /// copy's TTL when that is due (and the copy's lifetime is not over).
    pub(crate) fn read(&self, now_ticks: u64) -> IdleRead {
        let last = self.last_read.load(Ordering::Relaxed);
        if now_ticks.saturating_sub(last) >= self.tti_ms {
            return IdleRead::Expired;
        }
        // Racing readers may store slightly older ticks: the idle time only ever grows
        // from a later read, so the entry can only live a few milliseconds longer. Stored
        // only when the tick moved: hits within one millisecond write no shared line.
        if now_ticks > last {
            self.last_read.store(now_ticks, Ordering::Relaxed);
        }
        let touched = self.touched.load(Ordering::Relaxed);
        let due = now_ticks.saturating_sub(touched) >= (self.tti_ms / 10).max(1);
        let left = self
            .l2_until
            .load(Ordering::Relaxed)
            .saturating_sub(now_ticks);
        // One reader wins the renewal of this tenth.
        if due
            && left > 0
            && self
                .touched
                .compare_exchange(touched, now_ticks, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return IdleRead::Touch(Duration::from_millis(self.tti_ms.min(left)));
        }
        IdleRead::Alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTI: Duration = Duration::from_millis(100);
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn reads_keep_an_entry_alive_and_idleness_expires_it() {
        let idle = Idle::new(Duration::from_millis(100), 1, HOUR);
        assert_ne!(idle.read(50), IdleRead::Expired);
        assert_ne!(
            idle.read(140),
            IdleRead::Expired,
            "read 90ms after the last read"
        );
        assert_eq!(idle.read(240), IdleRead::Expired, "100ms without a read");
    }

    #[test]
    fn asking_whether_an_entry_is_idle_is_no_read() {
        let idle = Idle::new(Duration::from_millis(100), 0, HOUR);
        assert!(!idle.is_idle(99));
        assert!(idle.is_idle(100));
        // Asking did not keep it alive: still idle, and a read finds it expired.
        assert!(idle.is_idle(150));
        assert_eq!(idle.read(150), IdleRead::Expired);
    }

    #[test]
    fn reads_renew_the_l2_copy_once_per_tenth_of_the_tti() {
        let idle = Idle::new(Duration::from_millis(100), 0, HOUR);
        assert_eq!(idle.read(5), IdleRead::Alive, "renewed when written");
        assert_eq!(idle.read(10), IdleRead::Touch(TTI), "a tenth later");
        assert_eq!(idle.read(10), IdleRead::Alive, "once per tenth");
        assert_eq!(idle.read(19), IdleRead::Alive);
        assert_eq!(idle.read(20), IdleRead::Touch(TTI));
    }

    #[test]
    fn a_renewal_never_outlives_the_l2_copys_lifetime() {
        // Kept 250 ms in all: renewals are capped at what is left, and stop once it is over.
        let idle = Idle::new(TTI, 0, Duration::from_millis(250));
        assert_eq!(
            idle.read(10),
            IdleRead::Touch(TTI),
            "the tti: 240 ms are left"
        );
        assert_eq!(
            idle.read(100),
            IdleRead::Touch(TTI),
            "the tti: 150 ms are left"
        );
        assert_eq!(
            idle.read(190),
            IdleRead::Touch(Duration::from_millis(60)),
            "capped at the 60 ms left"
        );
        assert_eq!(idle.read(250), IdleRead::Alive, "nothing left to renew");
    }

    #[test]
    fn an_expired_copys_renewals_stop_where_its_grace_ends() {
        let idle = Idle::new(TTI, 0, HOUR);
        // Expired at 5, kept for a grace of 30 ms: renewed for what is left of it.
        idle.end_l2_by(35);
        assert_eq!(idle.read(10), IdleRead::Touch(Duration::from_millis(25)));
        // Never raised again.
        idle.end_l2_by(1000);
        assert_eq!(idle.read(20), IdleRead::Touch(Duration::from_millis(15)));
        assert_eq!(idle.read(35), IdleRead::Alive, "nothing left to renew");
    }
}
