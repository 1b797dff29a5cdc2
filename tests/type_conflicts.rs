//! Two functions sharing a string-named cache with different value types: building a
//! manager fails, naming both functions and where they are. (A test binary of its own: every
//! manager built here sees these annotations.)

use cachet::{cacheable, CacheError, CacheManager};

#[cacheable("prices")]
fn price(id: u64) -> u64 {
    id
}

#[cacheable("prices")]
fn price_label(id: u64) -> Option<String> {
    Some(format!("{id}"))
}

#[test]
fn a_manager_refuses_two_value_types_on_one_cache() {
    let err = CacheManager::builder().build().unwrap_err();
    let CacheError::TypeConflict(conflict) = &err else {
        panic!("unexpected error: {err:?}")
    };
    assert_eq!(conflict.cache, "prices");
    assert_eq!(conflict.what, "value");
    let text = err.to_string();
    assert!(
        text.contains("type_conflicts::price (tests/type_conflicts.rs:8)")
            && text.contains("type_conflicts::price_label (tests/type_conflicts.rs:13)")
            && text.contains("`u64`")
            && text.contains("`String`"), // `Option<String>` is stored unwrapped
        "{text}"
    );
    // The functions still run (uncached) under a manager that was not checked.
    let unchecked = CacheManager::builder()
        .validate_declarations(false)
        .build()
        .unwrap();
    cachet::testing::with_manager_sync(unchecked, || {
        assert_eq!(price(7), 7);
        assert_eq!(price_label(7).as_deref(), Some("7"));
    });
}
