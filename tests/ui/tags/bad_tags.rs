use cachet::{cache_evict, cache_put, cacheable};

#[cacheable("products", tags = ["catalog", "", "catalog"])]
fn find(id: u64) -> u64 {
    id
}

#[cache_put("products", tags = [])]
fn save(id: u64) -> u64 {
    id
}

#[cache_put("products", tags = "catalog")]
fn save_one(id: u64) -> u64 {
    id
}

#[cache_evict("products", tags = ["catalog"])]
fn remove(id: u64) {
    let _ = id;
}

fn main() {}
