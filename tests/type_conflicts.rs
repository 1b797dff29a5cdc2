//! Two functions sharing a string-named cache with different value types: building a
//! manager fails, naming both functions and where they are. (A test binary of its own: every
//! manager built here sees these annotations.)

#[path = "support/conflict.rs"]
mod conflict;

use cachet::cacheable;

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
    let (conflict, text) = conflict::startup_conflict();
    assert_eq!(conflict.cache, "prices");
    assert_eq!(conflict.what, "value");
    assert!(
        text.contains("type_conflicts::price (tests/type_conflicts.rs:11)")
            && text.contains("type_conflicts::price_label (tests/type_conflicts.rs:16)")
            && text.contains("`u64`")
            && text.contains("`String`"), // `Option<String>` is stored unwrapped
        "{text}"
    );
    // The functions still run (uncached) under a manager that was not checked.
    conflict::unchecked(|| {
        assert_eq!(price(7), 7);
        assert_eq!(price_label(7).as_deref(), Some("7"));
    });
}
