// A body `syn` cannot parse: the function is kept as written (tracing-attributes' fallback),
// so the one error is rustc's own, at the body's tokens, and no error of the annotation's.
use cachet::cacheable;

#[cacheable("users")]
fn find(id: u64) -> u64 {
    let doubled = id * ;
    doubled
}

fn main() {
    let _ = find(1);
}
