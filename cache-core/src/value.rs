//! What can be cached.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value cachet can store: cloned out of the in-memory tier on a hit, serialized for
/// remote tiers. Implemented for every type with these properties.
///
/// ```
/// fn storable<T: cache_core::CacheValue>() {}
/// storable::<(u64, String)>();
/// storable::<Option<Vec<u8>>>();
/// ```
pub trait CacheValue: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}

impl<T> CacheValue for T where T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}
