//! The global manager and the environment: `CACHET_TYPE`, `CACHET_CONFIG`, `cachet::init`.
//! One test, in a binary of its own, because it changes process-wide state in sequence.

#[path = "support/temp_dir.rs"]
mod temp_dir;

use cachet::{cacheable, CacheError, CacheManager};

#[cacheable("env")]
fn counted(id: u64) -> u64 {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let _ = id;
    RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn environment_then_global_manager() {
    // Changing the environment is sound here: this binary runs this one test, on one thread.
    let dir = temp_dir::TempDir::new("env-test");

    std::env::set_var("CACHET_TYPE", "none");
    let none = CacheManager::from_env().unwrap();
    assert_eq!(none.default_store_name(), "none");

    std::env::set_var("CACHET_TYPE", "bogus");
    let err = CacheManager::from_env().unwrap_err().to_string();
    assert!(
        err.contains("CACHET_TYPE") && err.contains("bogus"),
        "{err}"
    );

    let file = dir.join("cachet.toml");
    std::fs::write(
        &file,
        "[stores.local]\nl1 = { driver = \"memory\", max_entries = 10 }\n",
    )
    .unwrap();
    std::env::remove_var("CACHET_TYPE");
    std::env::set_var("CACHET_CONFIG", &file);
    assert_eq!(
        CacheManager::from_env().unwrap().store_names(),
        vec!["local".to_string()]
    );

    std::env::set_var("CACHET_TYPE", "memory");
    assert_eq!(
        CacheManager::from_env().unwrap().store_names(),
        vec!["memory".to_string()],
        "memory forced"
    );

    std::fs::write(&file, "ttl = 3").unwrap();
    std::env::remove_var("CACHET_TYPE");
    let err = CacheManager::from_env().unwrap_err().to_string();
    assert!(err.contains("cachet.toml") && err.contains("ttl"), "{err}");

    // The global manager: set once; a second init is refused; annotated calls use it.
    std::env::set_var("CACHET_TYPE", "none");
    cachet::init(
        CacheManager::builder()
            .memory_store("global")
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(matches!(
        cachet::init(CacheManager::none()),
        Err(CacheError::AlreadyInitialized)
    ));
    assert_eq!(
        cachet::manager().default_store_name(),
        "global",
        "init wins over the environment"
    );
    assert_eq!(counted(1), counted(1), "cached in the global manager");
}
