//! TTL jitter (`jitter`): each write's TTL gets a random extra in `[0, jitter]`, so entries
//! written together (a warm-up, a batch) do not all expire, and miss, at once.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

thread_local! {
    /// A per-thread xorshift state, seeded from the standard library's random hasher keys:
    /// spreading expiries needs no cryptographic randomness, only a different draw per
    /// write.
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    hasher.finish() | 1
}

/// A random `u64` (xorshift64*).
fn next() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// `ttl` plus a random extra in `[0, jitter]` (whole milliseconds); `ttl` unchanged without
/// a jitter or a TTL.
pub(crate) fn jittered(ttl: Option<Duration>, jitter: Option<Duration>) -> Option<Duration> {
    let (Some(ttl), Some(jitter)) = (ttl, jitter) else {
        return ttl;
    };
    let span = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if span == 0 {
        return Some(ttl);
    }
    let extra = next() % span.saturating_add(1);
    Some(ttl.saturating_add(Duration::from_millis(extra)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_stays_within_the_jitter_and_varies() {
        let ttl = Duration::from_secs(60);
        let jitter = Duration::from_secs(30);
        let drawn: Vec<Duration> = (0..200)
            .map(|_| jittered(Some(ttl), Some(jitter)).unwrap())
            .collect();
        assert!(drawn.iter().all(|d| *d >= ttl && *d <= ttl + jitter));
        let distinct: std::collections::BTreeSet<_> = drawn.iter().collect();
        assert!(distinct.len() > 100, "draws spread: {}", distinct.len());
        assert_eq!(jittered(Some(ttl), None), Some(ttl));
        assert_eq!(jittered(None, Some(jitter)), None);
    }
}
