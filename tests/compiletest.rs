//! Misuse of the macros is a compile error at the offending token: each case under
//! `tests/ui/<category>/` pins the message and span in its `.stderr`.
//!
//! Regenerate after a deliberate change with `TRYBUILD=overwrite cargo test --test
//! compiletest`, then read every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
