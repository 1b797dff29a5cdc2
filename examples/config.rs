//! Loading a manager from a TOML file and setting it as the global manager.
//!
//! Run: `cargo run --example config` (reads `examples/config/cachet.toml`, or the file
//! given as the first argument).

use cachet::{cacheable, CacheManager};

#[cacheable("products")]
fn price(product: &str) -> u64 {
    println!("  (computing the price of {product})");
    product.len() as u64 * 100
}

#[cacheable("audit")]
fn audit_entry(n: u64) -> String {
    println!("  (audit {n}: the `off` store caches nothing, so this always runs)");
    format!("entry {n}")
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config/cachet.toml").to_owned()
    });
    let manager = match CacheManager::from_toml_file(&path) {
        Ok(manager) => manager,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    };
    println!(
        "stores: {:?}, default: {}",
        manager.store_names(),
        manager.default_store_name()
    );
    cachet::init(manager).expect("set once, at start-up");

    println!("price(apple) = {}", price("apple"));
    println!("price(apple) = {}", price("apple"));
    println!("{}", audit_entry(1));
    println!("{}", audit_entry(1));
    for declared in cachet::declared_caches() {
        println!(
            "declared: cache {:<8} by {} ({}:{})",
            declared.cache, declared.function, declared.file, declared.line
        );
    }
}
