// `key_generator` names a function: a closure is reported at its first token.
use cachet::cacheable;

#[cacheable("users", key_generator = |id| id)]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
