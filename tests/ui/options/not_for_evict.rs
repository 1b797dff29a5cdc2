use cachet::{cache_evict, cache_put};

#[cache_evict("users", key = id, unless = id > 3, ttl = "1s")]
fn delete(id: u64) {
    let _ = id;
}

#[cache_put("users", all_entries, before_invocation)]
fn save(id: u64) -> u64 {
    id
}

fn main() {}
