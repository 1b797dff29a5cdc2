//! A tiered store shared by several processes: run two copies to see the bus work.
//!
//! ```sh
//! redis-server --port 6379 &                                      # a local Redis
//! cargo run --example tiered --features redis                     # terminal 1: watches price(1)
//! cargo run --example tiered --features redis -- set 1 990        # terminal 2: updates it
//! cargo run --example tiered --features redis -- evict 1          # terminal 2: evicts it
//! ```
//!
//! The watcher reads `price(1)` every second from its L1; when the other process changes
//! the entry, the bus drops the watcher's L1 copy and its next read sees the new value.
//! Stop Redis while it runs: the watcher keeps answering (from L1, or by running the
//! function), counting the faults. `CACHET_CONFIG=path` picks another configuration.

use std::time::Duration;

use cachet::{cache_evict, cache_put, cacheable, CacheManager};

#[cacheable("prices")]
async fn price(id: u64) -> u64 {
    println!("  (price({id}) computed by this process)");
    id * 100
}

#[cache_put("prices", key = id)]
async fn set_price(id: u64, price: u64) -> u64 {
    price
}

#[cache_evict("prices", key = id)]
async fn evict_price(id: u64) {}

#[tokio::main]
async fn main() {
    let path = std::env::var("CACHET_CONFIG").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tiered/cachet.toml").to_owned()
    });
    let manager = CacheManager::from_toml_file(&path).unwrap_or_else(|err| {
        eprintln!("error: {err}");
        std::process::exit(1)
    });
    cachet::init(manager).expect("set once, at start-up");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    match (args.first().map(String::as_str), number(1), number(2)) {
        (Some("set"), Some(id), Some(value)) => {
            set_price(id, value).await;
            println!("price({id}) set to {value} in every instance");
        }
        (Some("evict"), Some(id), _) => {
            evict_price(id).await;
            println!("price({id}) evicted from every instance");
        }
        (None, ..) => loop {
            let value = price(1).await;
            let stats = cachet::cache("prices").expect("cache").stats();
            println!(
                "price(1) = {value}   [hits l1 {} l2 {}, misses {}, faults {}]",
                stats.l1_hits, stats.l2_hits, stats.misses, stats.errors
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        },
        _ => {
            eprintln!("usage: tiered [set ID VALUE | evict ID]");
            std::process::exit(2);
        }
    }
    // Let the bus deliver before the process exits.
    tokio::time::sleep(Duration::from_millis(100)).await;
}
