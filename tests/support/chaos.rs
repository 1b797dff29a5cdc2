//! A tiered store as the integration tests' service instances build it on a real
//! `redis-server`: L1 memory, L2 Redis behind the chaos kit's fault-injecting tier (kept to
//! steer it and to count its operations), and a Redis bus.

#![allow(dead_code)] // not every test that includes `support` uses it

use std::sync::Arc;

use cache_backends::redis::{RedisBus, RedisOptions, RedisTier};
use cachet::memory::{MemoryOptions, MemoryTier};
use cachet::testing::FaultyTier;
use cachet::StoreBuilder;

use super::redis_server::RedisServer;

/// A store for a manager's builder, with its L2 and its bus.
pub struct ChaosStore {
    /// The store: L1 memory (1,000 entries), the L2 below, the bus when there is one.
    pub store: StoreBuilder,
    /// Its L2: Redis through a [`FaultyTier`].
    pub l2: Arc<FaultyTier>,
    /// Its bus, on the channel `{prefix}:__bus`.
    pub bus: Option<Arc<RedisBus>>,
}

/// A [`ChaosStore`] on `server`, with a bus for the instances of service `prefix` when
/// `bus` (without one, nothing tells an instance that another wrote a key).
pub fn chaos_store(server: &RedisServer, prefix: &str, bus: bool) -> ChaosStore {
    let options = RedisOptions::new(server.url());
    let l2 = FaultyTier::new(Arc::new(RedisTier::new(&options).unwrap()));
    let bus = bus.then(|| Arc::new(RedisBus::new(&options, format!("{prefix}:__bus")).unwrap()));
    let mut store = StoreBuilder::new()
        .l1(MemoryTier::new(MemoryOptions::max_entries(1000)))
        .l2(l2.clone());
    if let Some(bus) = &bus {
        store = store.bus(bus.clone());
    }
    ChaosStore { store, l2, bus }
}
