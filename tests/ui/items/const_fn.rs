use cachet::cacheable;

#[cacheable("users")]
const fn find(id: u64) -> u64 {
    id
}

fn main() {}
