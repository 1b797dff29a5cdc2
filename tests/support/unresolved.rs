//! What the tests of an unresolvable cache share (`tests/declarations.rs`, `tests/typed.rs`):
//! building a manager whose one memory store serves only some cache names fails on the first
//! annotated function or `caches!` declaration whose cache it cannot resolve. Included with
//! `#[path = "support/unresolved.rs"] mod unresolved;`.

#![allow(dead_code)] // each test reads different fields

use cachet::{CacheError, CacheManager};

/// Where building the manager stopped, as `CacheError::UndeclaredCache` says it.
#[derive(Debug)]
pub struct Unresolved {
    /// The cache it could not resolve.
    pub cache: String,
    /// Who uses it: an annotated function, or a `caches!` declaration.
    pub function: String,
    pub file: String,
    pub line: u32,
    /// The error's message.
    pub text: String,
}

/// The failure of building a manager whose memory store serves only `names`.
pub fn unresolved(names: &[&str]) -> Unresolved {
    let err = CacheManager::builder()
        .memory_store("memory")
        .cache_names(names.iter().copied())
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
    Unresolved {
        cache: cache.clone(),
        function: function.clone(),
        file: file.clone(),
        line: *line,
        text: err.to_string(),
    }
}
