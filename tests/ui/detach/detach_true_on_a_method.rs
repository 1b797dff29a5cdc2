use cachet::cacheable;

struct Catalog;

impl Catalog {
    #[cacheable("a", detach = true)]
    async fn price(&self, id: u64) -> u64 {
        id
    }
}

#[cacheable("a", unless = *result == id, detach = true)]
async fn unless_uses_an_argument(id: u64) -> u64 {
    id
}

// A plain fn that owns its arguments can be detached: no error.
#[cacheable("a", detach = true)]
fn plain(id: u64) -> u64 {
    id
}

fn main() {}
