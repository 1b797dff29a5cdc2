// `key` and `key_generator` both say what the key is: one of them, at `key_generator`.
use cachet::cacheable;

fn by_id(id: &u64) -> u64 {
    *id
}

#[cacheable("users", key = id, key_generator = by_id)]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
