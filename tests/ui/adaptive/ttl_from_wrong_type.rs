use cachet::cacheable;

/// Seconds, not a `Duration`.
#[cacheable("tokens", ttl_from = result.1)]
fn token(id: u64) -> (u64, u64) {
    (id, 60)
}

fn main() {}
