use cachet::cacheable;

#[cacheable("users", crate = "not a path")]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
