use std::collections::HashMap;

struct Db;

#[cachet::cacheable_many("users")]
async fn load(db: &Db, ids: Vec<u64>) -> HashMap<u64, String> {
    let _ = db;
    ids.into_iter().map(|id| (id, id.to_string())).collect()
}

fn main() {}
