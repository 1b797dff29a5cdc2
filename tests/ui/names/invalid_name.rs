use cachet::cacheable;

#[cacheable("", "users:v2", "my users", "users", "users")]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
