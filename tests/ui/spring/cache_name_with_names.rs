// `cache_name` computes the one cache's name: literal names too are reported at the option,
// and so is a `result` in it (the cache is chosen before the call).
use cachet::{cache_put, cacheable};

#[cacheable("users", cache_name = format!("t-{id}"))]
fn find(id: u64) -> u64 {
    id
}

#[cache_put(cache_name = result.to_string())]
fn save(id: u64) -> u64 {
    id
}

fn main() {}
