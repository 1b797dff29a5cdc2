use cachet::cacheable;

#[cacheable("users", grace = "a while")]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
