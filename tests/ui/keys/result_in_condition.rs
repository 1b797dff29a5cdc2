use cachet::{cache_evict, cache_put};

#[cache_put("users", key = result, condition = result > 0)]
fn save(id: u64) -> u64 {
    id
}

#[cache_evict("users", key = id, before_invocation, condition = format!("{}", result).is_empty())]
fn delete(id: u64) -> u64 {
    id
}

fn main() {}
