use cachet::cacheable;

#[cacheable("users")]
fn find(id: u64) -> impl Clone {
    id
}

#[cacheable("users")]
fn find_all(id: u64) -> Vec<impl Clone> {
    vec![id]
}

fn main() {}
