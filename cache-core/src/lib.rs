//! Core of cachet: keys, provider traits, `Cache`, `CacheManager`, config, single flight.
//!
//! Users depend on the `cachet` facade, which re-exports what is public here.

pub mod codec;
pub mod config;
pub mod driver;
mod error;
pub mod key;
pub mod store;
mod value;

#[doc(hidden)]
pub mod __private {
    //! Support for generated code; see `private/mod.rs`.
    pub use crate::private::*;
}
mod private;

pub use error::{CacheError, ConfigOrigin, TierError, TierErrorKind};
pub use value::CacheValue;
