use cachet::{cache_evict, cacheable};

#[cacheable("users")]
pub struct User {
    pub id: u64,
}

#[cache_evict("users")]
const LIMIT: u32 = 3;

pub trait Finder {
    #[cacheable("users")]
    fn find(&self, id: u64) -> u64;
}

fn main() {}
