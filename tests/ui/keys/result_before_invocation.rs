use cachet::cache_evict;

#[cache_evict("users", key = result, before_invocation)]
fn delete(id: u64) -> u64 {
    id
}

fn main() {}
