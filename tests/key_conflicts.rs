//! Two functions sharing a string-named cache with different key types: building a manager
//! fails, naming both functions and where they are, as `cachet check --src` does. (A test
//! binary of its own: every manager built here sees these annotations; keys that encode
//! alike, which pass, are in `tests/declarations.rs`.)

use cachet::{cache_evict, cacheable, CacheError, CacheManager};

#[cacheable("accounts")]
fn account(id: u64) -> String {
    format!("account {id}")
}

#[cache_evict("accounts")]
fn forget_account(login: String) {
    let _ = login;
}

#[test]
fn a_manager_refuses_two_key_types_on_one_cache() {
    let err = CacheManager::builder().build().unwrap_err();
    let CacheError::TypeConflict(conflict) = &err else {
        panic!("unexpected error: {err:?}")
    };
    assert_eq!(conflict.cache, "accounts");
    assert_eq!(conflict.what, "key");
    assert_eq!(
        (conflict.first_type.as_str(), conflict.second_type.as_str()),
        ("u64", "String")
    );
    let text = err.to_string();
    assert!(
        text.contains("key_conflicts::account (tests/key_conflicts.rs:9)")
            && text.contains("key_conflicts::forget_account (tests/key_conflicts.rs:14)"),
        "{text}"
    );
    // Not checked, the functions run.
    let unchecked = CacheManager::builder()
        .validate_declarations(false)
        .build()
        .unwrap();
    cachet::testing::with_manager_sync(unchecked, || {
        assert_eq!(account(7), "account 7");
        forget_account("ann".into());
    });
}
