use std::rc::Rc;

use cachet::cacheable;

// Holds an `Rc` across an await: its future is not `Send`, so it cannot finish in the
// background; `detach = false` keeps it in its caller.
#[cacheable("a")]
async fn not_send(id: u64) -> u64 {
    let shared = Rc::new(id);
    tokio::task::yield_now().await;
    *shared
}

#[cacheable("a", detach = false)]
async fn kept_attached(id: u64) -> u64 {
    let shared = Rc::new(id);
    tokio::task::yield_now().await;
    *shared
}

fn main() {}
