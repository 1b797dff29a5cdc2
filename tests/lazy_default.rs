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

static SCOPED_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cacheable("lazy-then-scoped")]
fn runs(id: u64) -> u64 {
    SCOPED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + id
}

#[test]
fn a_scope_entered_after_the_first_global_call_is_served_by_its_own_manager() {
    // Resolved in the global manager (and recorded), then a hit there.
    let global = runs(7);
    assert_eq!(runs(7), global);
    let scoped = cachet::CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap();
    cachet::testing::with_manager_sync(scoped.clone(), || {
        // The scope's manager holds nothing: the function runs, and the scope keeps it.
        let fresh = runs(7);
        assert_ne!(
            fresh, global,
            "served from the global manager inside a scope"
        );
        assert_eq!(runs(7), fresh);
    });
    let stats = scoped.cache("lazy-then-scoped").unwrap().stats();
    assert_eq!((stats.misses, stats.hits), (1, 1));
    // Outside the scope again, the global manager's value.
    assert_eq!(runs(7), global);
    assert_eq!(cachet::cache("lazy-then-scoped").unwrap().stats().hits, 2);
}
