use cachet::{cache_evict, cache_put};

cachet::caches! {
    pub USERS: u64 => String = "users";
}

#[cache_evict(USERS, key = name)]
fn forget(name: String) {}

#[cache_put(USERS, key = result.len())]
fn rename(name: String) -> String {
    name
}

fn main() {}
