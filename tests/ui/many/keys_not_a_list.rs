use std::collections::{HashMap, HashSet};

#[cachet::cacheable_many("users")]
async fn load(ids: HashSet<u64>) -> HashMap<u64, String> {
    ids.into_iter().map(|id| (id, id.to_string())).collect()
}

fn main() {}
