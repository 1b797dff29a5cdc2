//! Two functions sharing a string-named cache with different key types: building a manager
//! fails, naming both functions and where they are, as `cachet check --src` does. (A test
//! binary of its own: every manager built here sees these annotations; keys that encode
//! alike, which pass, are in `tests/declarations.rs`.)

#[path = "support/conflict.rs"]
mod conflict;

use cachet::{cache_evict, cacheable};

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
    let (conflict, text) = conflict::startup_conflict();
    assert_eq!(
        (conflict.cache.as_str(), conflict.what),
        ("accounts", "key")
    );
    assert_eq!(
        (conflict.first_type.as_str(), conflict.second_type.as_str()),
        ("u64", "String")
    );
    assert!(
        text.contains("key_conflicts::account (tests/key_conflicts.rs:12)")
            && text.contains("key_conflicts::forget_account (tests/key_conflicts.rs:17)"),
        "{text}"
    );
    conflict::unchecked(|| {
        assert_eq!(account(7), "account 7");
        forget_account("ann".into());
    });
}
