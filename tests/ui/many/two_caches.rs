use std::collections::HashMap;

#[cachet::cacheable_many("users", "people", ttl = "5m")]
async fn load(ids: Vec<u64>) -> HashMap<u64, String> {
    ids.into_iter().map(|id| (id, id.to_string())).collect()
}

fn main() {}
