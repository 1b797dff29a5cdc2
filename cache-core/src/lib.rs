//! Core of cachet: keys, provider traits, `Cache`, `CacheManager`, config, single flight.
//!
//! Users depend on the `cachet` facade, which re-exports what is public here.

pub mod config;
pub mod driver;
mod error;
pub mod key;
pub mod store;

pub use error::{CacheError, ConfigOrigin, TierError, TierErrorKind};
