use std::collections::HashMap;

#[cachet::cacheable_many("users")]
async fn load(ids: Vec<u64>) -> HashMap<String, String> {
    ids.into_iter().map(|id| (id.to_string(), id.to_string())).collect()
}

fn main() {}
