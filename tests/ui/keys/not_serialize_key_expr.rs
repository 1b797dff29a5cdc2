use cachet::cacheable;

pub struct Db;

#[cacheable("users", key = (db, id))]
fn find(db: &Db, id: u64) -> u64 {
    let _ = db;
    id
}

fn main() {}
