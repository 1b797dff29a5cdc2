//! Providers of cachet: `none`, `memory` (moka) and `redis` (L2 tier and bus), each
//! behind a cargo feature and registered as a driver with `cache-core`.

// `memory` and `none` modules: added by the memory backend.

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
