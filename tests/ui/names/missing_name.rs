use cachet::{cache_evict, cacheable};

#[cacheable]
fn find(id: u64) -> u64 {
    id
}

#[cache_evict(key = id)]
fn delete(id: u64) {
    let _ = id;
}

fn main() {}
