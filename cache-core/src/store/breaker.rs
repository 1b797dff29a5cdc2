//! A circuit breaker for a remote tier: after a fault that says the server is unreachable,
//! stop calling it for a while so callers don't each wait for a timeout.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::clock::Clock;

/// Open (refusing calls) for `open_for` after each recorded failure, by the store's clock.
#[derive(Debug)]
pub(crate) struct Breaker {
    open_for: Duration,
    clock: Clock,
    /// The clock's `ticks_ms()` until which calls are refused; 0 when closed.
    open_until: AtomicU64,
    trips: AtomicU64,
}

impl Breaker {
    /// A breaker that opens for `open_for` (zero: never opens).
    pub(crate) fn new(open_for: Duration, clock: Clock) -> Self {
        Self {
            open_for,
            clock,
            open_until: AtomicU64::new(0),
            trips: AtomicU64::new(0),
        }
    }

    /// Whether the tier may be called now.
    pub(crate) fn allows(&self) -> bool {
        let until = self.open_until.load(Relaxed);
        until == 0 || self.clock.ticks_ms() >= until
    }

    /// How long the breaker stays open from now (zero when closed).
    pub(crate) fn reopens_in(&self) -> Duration {
        match self.open_until.load(Relaxed) {
            0 => Duration::ZERO,
            until => Duration::from_millis(until.saturating_sub(self.clock.ticks_ms())),
        }
    }

    /// Records a failure that says the tier is unavailable: opens the breaker. Whether it
    /// was closed before.
    pub(crate) fn trip(&self) -> bool {
        if self.open_for.is_zero() {
            return false;
        }
        let until = self
            .clock
            .ticks_ms()
            .saturating_add(u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX))
            .max(1);
        let opened = self.open_until.swap(until, Relaxed) == 0;
        if opened {
            self.trips.fetch_add(1, Relaxed);
        }
        opened
    }

    /// Records a success: closes the breaker. Whether it was open (or half-open) before.
    pub(crate) fn reset(&self) -> bool {
        // Read first: a closed breaker's line is not written on every success.
        self.open_until.load(Relaxed) != 0 && self.open_until.swap(0, Relaxed) != 0
    }

    /// How many times it opened.
    #[cfg(test)]
    pub(crate) fn trips(&self) -> u64 {
        self.trips.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_for_its_duration_then_lets_calls_through() {
        let clock = crate::clock::ManualClock::new();
        let b = Breaker::new(Duration::from_millis(40), clock.clone().into());
        assert!(b.allows());
        b.trip();
        assert!(!b.allows());
        assert_eq!(b.reopens_in(), Duration::from_millis(40));
        clock.advance(Duration::from_millis(39));
        assert!(!b.allows());
        clock.advance(Duration::from_millis(1));
        assert!(
            b.allows(),
            "half-open after the pause: the next call tries the tier"
        );
        b.reset();
        assert!(b.allows());
        assert_eq!(b.trips(), 1);
    }

    #[test]
    fn a_success_closes_an_open_breaker_and_says_whether_it_was_open() {
        let b = Breaker::new(Duration::from_secs(5), Clock::default());
        assert!(!b.reset(), "closed already");
        assert!(b.trip(), "opened");
        assert!(!b.trip(), "open already");
        assert!(!b.allows());
        assert!(b.reset(), "was open");
        assert!(b.allows());
        assert_eq!(b.reopens_in(), Duration::ZERO);
        assert!(!b.reset());
    }

    #[test]
    fn a_zero_duration_never_opens() {
        let b = Breaker::new(Duration::ZERO, Clock::default());
        b.trip();
        assert!(b.allows());
    }
}
