use cachet::cacheable;

#[cacheable("users", key = id, skip(db))]
fn find(db: &str, id: u64) -> u64 {
    let _ = db;
    id
}

fn main() {}
