//! The quick_cache engine's clock: `Instant::now()`. In this crate's tests a thread can move
//! its own clock forward ([`advance`]), so that expiry is tested without sleeping.

use std::time::Instant;

/// Now, as the engine judges `keep_until` and times its sweeps.
#[cfg(not(test))]
#[inline(always)]
pub(super) fn now() -> Instant {
    Instant::now()
}

#[cfg(test)]
thread_local! {
    /// How far this thread's clock runs ahead of the real one.
    static AHEAD: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// Now, as the engine judges `keep_until` and times its sweeps: in tests, ahead of the real
/// clock by what this thread [`advance`]d it.
#[cfg(test)]
pub(super) fn now() -> Instant {
    Instant::now() + AHEAD.with(std::cell::Cell::get)
}

/// Moves this thread's clock forward by `by` (tests only).
#[cfg(test)]
pub(super) fn advance(by: std::time::Duration) {
    AHEAD.with(|ahead| ahead.set(ahead.get() + by));
}
