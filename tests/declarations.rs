//! Every annotation registers its caches; a manager that cannot resolve one fails to build,
//! naming the cache, the function and where it is. (A test binary of its own, so the
//! declarations it sees are these.)

use cachet::{cache_evict, cacheable, CacheError, CacheManager};

#[cacheable("catalog")]
fn product(id: u64) -> String {
    format!("product {id}")
}

#[cache_evict("catalog", "prices", key = id)]
fn forget(id: u64) {}

#[test]
fn declared_caches_lists_every_annotation() {
    let declared = cachet::declared_caches();
    let product = declared
        .iter()
        .find(|d| d.function.ends_with("::product"))
        .expect("product is declared");
    assert_eq!(product.cache, "catalog");
    assert_eq!(product.annotation, "cacheable");
    assert!(product.file.ends_with("declarations.rs"));
    assert_eq!(product.line, 8);
    let forget: Vec<_> = declared
        .iter()
        .filter(|d| d.function.ends_with("::forget"))
        .map(|d| d.cache)
        .collect();
    assert_eq!(forget, vec!["catalog", "prices"]);
}

#[test]
fn a_manager_that_cannot_resolve_an_annotated_cache_fails_to_build() {
    let err = CacheManager::builder()
        .memory_store("memory")
        .cache_names(["catalog"])
        .build()
        .unwrap_err();
    let CacheError::UndeclaredCache {
        cache,
        function,
        file,
        line,
        ..
    } = &err
    else {
        panic!("unexpected error: {err:?}")
    };
    assert_eq!(cache, "prices");
    assert!(function.ends_with("::forget"), "{function}");
    assert!(file.ends_with("declarations.rs"));
    assert_eq!(*line, 13);
    let text = err.to_string();
    assert!(
        text.contains("prices") && text.contains("forget") && text.contains("declarations.rs:13"),
        "{text}"
    );
}

#[test]
fn a_manager_resolving_every_annotated_cache_builds() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .cache_names(["catalog", "prices"])
        .build();
    assert!(manager.is_ok(), "{manager:?}");
    assert_eq!(product(1), "product 1");
    forget(1);
}
