use cachet::cacheable;

#[cacheable("users", skip(bd, self))]
fn find(db: &str, id: u64) -> u64 {
    let _ = db;
    id
}

fn main() {}
