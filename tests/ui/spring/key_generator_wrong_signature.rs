// The generator is called with a reference to each key argument: a mismatch is reported
// at its path.
use cachet::cacheable;

fn by_name(name: &str) -> String {
    name.to_owned()
}

#[cacheable("users", key_generator = by_name)]
fn find(id: u64, limit: u32) -> u64 {
    id + u64::from(limit)
}

fn main() {}
