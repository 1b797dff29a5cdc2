//! The keys the tier tests' `clear_scope` cases start from (`redis_tier.rs`,
//! `dynamodb_tier.rs`): many entries of the cache `shop:users`, and one entry in each
//! neighbour a clear of it, or of one of its namespaces, must or must not reach.

use std::time::Duration;

use cache_core::store::RemoteTier;

/// The neighbours every tier test writes: a namespace, a nested namespace, and a cache
/// whose name starts with `users`.
pub const NEIGHBOURS: [&str; 3] = [
    "shop:users#admins:1",
    "shop:users#admins#root:2",
    "shop:users2:1",
];

/// Writes `entries` entries `shop:users:{i}` (value `u`), then [`NEIGHBOURS`] and `others`
/// (value `x`), each for `ttl`.
pub async fn seed(tier: &dyn RemoteTier, entries: usize, others: &[&str], ttl: Duration) {
    for i in 0..entries {
        tier.set(&format!("shop:users:{i}"), b"u".to_vec(), ttl)
            .await
            .unwrap();
    }
    for key in NEIGHBOURS.iter().chain(others) {
        tier.set(key, b"x".to_vec(), ttl).await.unwrap();
    }
}
