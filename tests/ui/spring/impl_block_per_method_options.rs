// On an impl block, options that depend on a method's arguments are refused, each at its
// name; the block is kept as written.
use cachet::cacheable;

struct Repo;

#[cacheable("repo", key = id, condition = id > 0, ttl = "1m")]
impl Repo {
    fn find(&self, id: u64) -> u64 {
        id
    }
}

fn main() {
    let _ = Repo.find(1);
}
