//! Every annotation registers its caches; a manager that cannot resolve one fails to build,
//! naming the cache, the function and where it is. (A test binary of its own, so the
//! declarations it sees are these.)

use cachet::{cache_evict, cacheable, CacheManager};

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
    let unresolved::Unresolved {
        cache,
        function,
        file,
        line,
        text,
    } = unresolved::unresolved(&["catalog"]);
    assert_eq!(cache, "prices");
    assert!(function.ends_with("::forget"), "{function}");
    assert!(file.ends_with("declarations.rs"));
    assert_eq!(line, 13);
    assert!(
        text.contains("prices") && text.contains("forget") && text.contains("declarations.rs:13"),
        "{text}"
    );
}

#[test]
fn a_manager_resolving_every_annotated_cache_builds() {
    let manager = CacheManager::builder()
        .memory_store("memory")
        .cache_names(["catalog", "prices", "labels"])
        .build();
    assert!(manager.is_ok(), "{manager:?}");
    assert_eq!(product(1), "product 1");
    forget(1);
}

// Keys that encode alike are one key type: these share their caches with `product` and
// `forget` (`u64` keys) and with each other, and every manager above builds.

#[cache_evict("catalog")]
fn forget_product(id: &u64) {
    let _ = id;
}

#[cacheable("labels")]
fn label(name: String) -> String {
    name
}

#[cache_evict("labels")]
fn forget_label(name: &str) {
    let _ = name;
}

#[cache_evict("labels", key = name)]
fn forget_boxed_label(name: Box<str>, reason: u8) {
    let _ = (name, reason);
}

#[test]
fn keys_that_encode_alike_share_a_cache() {
    let types = |function: &str| {
        let declared = cachet::declared_caches();
        let d = declared
            .iter()
            .find(|d| d.function.ends_with(function))
            .unwrap_or_else(|| panic!("{function} is declared"));
        (d.cache, d.key_type)
    };
    assert_eq!(types("::forget_product"), ("catalog", "u64"));
    assert_eq!(types("::label"), ("labels", "String"));
    assert_eq!(types("::forget_label"), ("labels", "str"));
    assert_eq!(types("::forget_boxed_label"), ("labels", "Box<str>"));
    let manager = CacheManager::builder()
        .memory_store("memory")
        .cache_names(["catalog", "prices", "labels"])
        .build();
    assert!(manager.is_ok(), "{manager:?}");
    cachet::testing::with_manager_sync(manager.unwrap(), || {
        assert_eq!(label("a".into()), "a");
        forget_label("a");
        forget_boxed_label("a".into(), 0);
        forget_product(&1);
    });
}

// Last, so the annotations' lines above stay those the tests name.
#[path = "support/unresolved.rs"]
mod unresolved;
