//! A memory store on a manual clock, for the tests of TTLs and grace that move time instead
//! of sleeping. A test includes it through `mod support;` or
//! `#[path = "support/clocked.rs"] mod clocked;`.

#![allow(dead_code)] // not every test that includes `support` uses it

use std::time::Duration;

use cachet::testing::ManualClock;
use cachet::{CacheManager, CacheManagerBuilder};

/// A manager's builder with one memory store on `clock`, entries kept `ttl` and served stale
/// for `grace` after it; more options can be added before `build()`.
pub fn memory_on(clock: &ManualClock, ttl: Duration, grace: Duration) -> CacheManagerBuilder {
    CacheManager::builder()
        .memory_store("memory")
        .manual_clock(clock.clone())
        .ttl(ttl)
        .grace(grace)
}
