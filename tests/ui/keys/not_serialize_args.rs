// Several arguments are not `Serialize`: each is reported, at the argument.
use cachet::{cache_evict, cache_put};

pub struct Db;
pub struct Span;

#[cache_put("users")]
fn save(db: &Db, id: u64, trace: Span) -> u64 {
    let _ = (db, trace);
    id
}

#[cache_evict("users", before_invocation)]
fn drop_one(handle: std::fs::File) {
    let _ = handle;
}

fn main() {}
