use std::collections::HashMap;

use cachet::cacheable_many;

cachet::caches! {
    pub USERS: u64 => String = "users";
}

#[cacheable_many(USERS)]
async fn load(ids: Vec<u32>) -> HashMap<u32, u8> {
    ids.into_iter().map(|id| (id, 1)).collect()
}

fn main() {}
