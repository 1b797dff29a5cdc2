// `manager` names a static holding a `CacheManager`: anything else is reported at its path.
use cachet::cacheable;

static LIMIT: u32 = 3;

#[cacheable("users", manager = LIMIT)]
fn find(id: u64) -> u64 {
    id
}

fn main() {}
