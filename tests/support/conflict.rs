//! What the type-conflict tests share (`tests/type_conflicts.rs`, `tests/key_conflicts.rs`):
//! each is a test binary of its own, whose annotations make every manager's startup check
//! fail. Included with `#[path = "support/conflict.rs"] mod conflict;`.

use cachet::inventory::TypeConflict;
use cachet::{CacheError, CacheManager};

/// The conflict building a manager fails with, and the error's message.
pub fn startup_conflict() -> (TypeConflict, String) {
    let err = CacheManager::builder().build().unwrap_err();
    let CacheError::TypeConflict(conflict) = &err else {
        panic!("unexpected error: {err:?}")
    };
    ((**conflict).clone(), err.to_string())
}

/// Runs `f` under a manager that does not check the declarations: the functions run.
pub fn unchecked(f: impl FnOnce()) {
    let manager = CacheManager::builder()
        .validate_declarations(false)
        .build()
        .unwrap();
    cachet::testing::with_manager_sync(manager, f);
}
