//! With no `init`, no `CACHET_CONFIG` and no `cachet.toml`, the first use builds the embedded
//! default: one bounded in-memory store.

use cachet::cacheable;

#[cacheable("lazy")]
fn answer(id: u64) -> u64 {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + id
}

#[test]
fn the_embedded_default_is_one_memory_store() {
    assert!(
        std::env::var_os("CACHET_CONFIG").is_none() && std::env::var_os("CACHET_TYPE").is_none()
    );
    assert!(!std::path::Path::new("cachet.toml").exists());
    assert_eq!(cachet::manager().store_names(), vec!["memory".to_string()]);
    assert_eq!(answer(1), answer(1));
    assert_eq!(cachet::cache("lazy").unwrap().stats().hits, 1);
}
