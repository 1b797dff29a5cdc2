//! Core of cachet: keys, provider traits, `Cache`, `CacheManager`, config, single flight.
//!
//! Users depend on the `cachet` facade, which re-exports what is public here and documents
//! it as a guide. Backends (memory, Redis) live in `cache-backends` and register drivers
//! through [`driver::DriverRegistration`].

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod adaptive;
mod background;
mod batch;
mod blocking;
mod cache;
mod clock;
pub mod codec;
pub mod config;
mod declaration;
mod depth;
mod direct_key;
pub mod driver;
mod engine;
mod error;
mod events;
mod expire;
mod fault;
mod flight;
mod global;
mod hit;
#[cfg(feature = "axum")]
pub mod http;
mod idle;
mod infallible;
pub mod inventory;
mod invoke;
mod jitter;
pub mod key;
mod layout;
mod manager;
mod operation;
mod options;
pub mod redact;
mod scalar_key;
mod scopes;
mod stats;
pub mod store;
mod tags;
pub mod testing;
mod timer;
mod transaction;
mod typed;
mod value;

#[doc(hidden)]
pub mod __private {
    //! Support for generated code; see `private/mod.rs`.
    pub use crate::private::*;
}
mod private;
mod shape;
mod slot;
mod spare;

pub use adaptive::Adaptive;
pub use cache::Cache;
pub use declaration::typed_caches;
pub use declaration::CacheDeclaration;
pub use error::{CacheError, ConfigOrigin, TierError, TierErrorKind};
pub use events::{CacheEvent, EventKind, Subscription};
pub use fault::{CacheErrorHandler, CacheFault, FaultAction, FaultOperation};
pub use global::{cache, init, init_from_env, manager};
pub use manager::{
    declared_caches, CacheManager, CacheManagerBuilder, DeclaredCache, Store, StoreBuilder,
};
pub use options::CacheOptions;
pub use stats::CacheStats;
pub use transaction::transaction;
pub use typed::TypedCache;
pub use value::CacheValue;
