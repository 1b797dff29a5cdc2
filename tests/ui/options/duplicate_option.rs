use cachet::cacheable;

#[cacheable("users", ttl = "1s", key = id, ttl = "2s")]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
