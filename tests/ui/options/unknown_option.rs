use cachet::{cache_config, cache_evict, cacheable};

#[cacheable("users", keys = id, sync)]
fn find(id: u64) -> u64 {
    id
}

#[cache_evict("users", allEntries = true)]
fn delete(id: u64) {
    let _ = id;
}

pub struct Repo;

#[cache_config(cache = "users", ttl = "5m")]
impl Repo {}

fn main() {}
