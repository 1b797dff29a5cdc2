// Several arguments are not `Serialize`: each is reported, at the argument.
use cachet::{cache_evict, cache_put};

pub struct Db;
pub struct Span;
pub struct Handle;

#[cache_put("users")]
fn save(db: &Db, id: u64, trace: Span) -> u64 {
    let _ = (db, trace);
    id
}

#[cache_evict("users", before_invocation)]
fn drop_one(handle: Handle) {
    let _ = handle;
}

// An `impl Trait` argument is in the default key unless skipped.
#[cachet::cacheable("users")]
fn apply(id: u64, f: impl Fn(u64) -> u64) -> u64 {
    f(id)
}

fn main() {}
