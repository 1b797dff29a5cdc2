use cachet::cacheable;

pub struct Db;

#[cacheable("users")]
async fn find_user(db: &Db, id: u64) -> Option<String> {
    let _ = (db, id);
    None
}

fn main() {}
