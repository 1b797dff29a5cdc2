use cachet::cacheable;

#[cacheable("users", key = result.id)]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
