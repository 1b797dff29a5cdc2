//! Providers of cachet, each behind a cargo feature: `memory` (quick_cache or moka), `redis` (L2 tier and bus),
//! `dynamodb` (L2 tier on Amazon DynamoDB), `database` with `postgres`, `mysql` and/or `sqlite` (L2 tier; PostgreSQL bus).
//! The `none` store needs no provider: core makes it.
//!
//! Each provider registers a driver with `inventory`, so `driver = "memory"` in
//! configuration finds it once this crate is linked (the `cachet` facade links it).

#![cfg_attr(not(test), warn(clippy::unwrap_used))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "redis", feature = "database", feature = "dynamodb"))]
mod background;

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub mod dynamodb;

#[cfg(feature = "database")]
#[cfg_attr(docsrs, doc(cfg(feature = "database")))]
pub mod database;

#[cfg(any(feature = "redis", feature = "postgres"))]
mod message;

/// The configuration error for an option given in code (an options builder's, not a
/// file's): `field` named, `why` redacted as every configuration error's text is.
#[cfg(any(feature = "redis", feature = "database", feature = "dynamodb"))]
pub(crate) fn builder_error(field: &str, why: &str) -> cache_core::CacheError {
    cache_core::CacheError::Config {
        origin: cache_core::ConfigOrigin::Builder,
        field: field.into(),
        expected: cache_core::redact::redact_text(why),
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
mod bus_check;
#[cfg(any(feature = "redis", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub use bus_check::BusCheck;

/// Links this crate's driver registrations into the program; the facade calls it so that
/// `inventory` sees them even when nothing else of this crate is used.
///
/// ```
/// cache_backends::link();
/// ```
#[inline(never)]
pub fn link() {}
