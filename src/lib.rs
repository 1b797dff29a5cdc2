//! cachet: declarative method caching for Rust. (Being written.)
