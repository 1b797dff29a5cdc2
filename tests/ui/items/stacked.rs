// Errors in stacked attributes are reported once each, at the attribute they are in.
use cachet::{cache_evict, cache_put};

#[cache_evict("a", bogus)]
#[cache_put(key = id)]
#[cache_evict = "b"]
fn save(id: u64) -> u64 {
    id
}

fn main() {}
