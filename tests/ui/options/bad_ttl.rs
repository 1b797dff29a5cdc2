use cachet::{cache_put, cacheable};

#[cacheable("users", ttl = "5 minutes please")]
fn find(id: u64) -> u64 {
    id
}

#[cache_put("users", ttl = "0s")]
fn save(id: u64) -> u64 {
    id
}

fn main() {}
