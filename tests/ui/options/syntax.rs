use cachet::{cache_put, cacheable};

#[cacheable(key = id, "users")]
fn find(id: u64) -> u64 {
    id
}

#[cache_put("users", key)]
fn save(id: u64) -> u64 {
    id
}

fn main() {}
