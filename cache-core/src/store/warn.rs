//! Rate-limited warnings, so a dead server does not flood the logs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Lets one event through per `every_ms`, counting the ones held back.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// `Some(n)` if this event may be logged, `n` being how many were held back before it.
    /// `now` is the store clock's `ticks_ms()` (never 0, so the first event is never
    /// mistaken for "just sent").
    pub(crate) fn check(&self, every_ms: u64, now: u64) -> Option<u64> {
        let last = self.last_ms.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < every_ms {
            self.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        if self
            .last_ms
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_period() {
        let r = RateLimit::default();
        assert_eq!(r.check(10_000, 1), Some(0));
        assert_eq!(r.check(10_000, 5_000), None);
        assert_eq!(r.check(10_000, 9_000), None);
        assert_eq!(r.check(10_000, 10_001), Some(2));
    }
}
