use cachet::{cache_put, cacheable};
use std::time::Duration;

#[cacheable("tokens", ttl = "1m", ttl_from = result.1)]
fn token(id: u64) -> (u64, Duration) {
    (id, Duration::from_secs(60))
}

#[cache_put("tokens", ttl_from = result.1, key = id, ttl = "1m")]
fn save(id: u64) -> (u64, Duration) {
    (id, Duration::from_secs(60))
}

fn main() {}
