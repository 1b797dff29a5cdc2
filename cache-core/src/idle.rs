//! Time to idle (`tti`): an L1 entry not read for a while expires, even within its TTL.
//!
//! The entry carries when it was last read, in the store clock's ticks, in an atomic: a
//! hit refreshes it with one relaxed store, and only entries written with a `tti` pay it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// When an entry was last read, and how long it may go unread.
#[derive(Debug)]
pub(crate) struct Idle {
    tti_ms: u64,
    last_read: AtomicU64,
}

impl Idle {
    /// An entry written at `now_ticks` (the store clock's [`ticks`](crate::clock)) that
    /// expires once unread for `tti`.
    pub(crate) fn new(tti: Duration, now_ticks: u64) -> Self {
        Self {
            tti_ms: u64::try_from(tti.as_millis()).unwrap_or(u64::MAX),
            last_read: AtomicU64::new(now_ticks),
        }
    }

    /// A read at `now_ticks`: `false` when the entry has been idle too long (it is then a
    /// miss), else `true`, and the read is recorded.
    pub(crate) fn read(&self, now_ticks: u64) -> bool {
        let last = self.last_read.load(Ordering::Relaxed);
        if now_ticks.saturating_sub(last) >= self.tti_ms {
            return false;
        }
        // Racing readers may store slightly older ticks: the idle time only ever grows
        // from a later read, so the entry can only live a few milliseconds longer.
        self.last_read.store(now_ticks.max(last), Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keep_an_entry_alive_and_idleness_expires_it() {
        let idle = Idle::new(Duration::from_millis(100), 1);
        assert!(idle.read(50));
        assert!(idle.read(140), "read 90ms after the last read");
        assert!(!idle.read(240), "100ms without a read");
    }
}
