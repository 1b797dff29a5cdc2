//! A named store: the tiers configured under `[stores.NAME]`, and their single-flight gates.

use std::sync::Arc;

use super::LocalTier;
use crate::flight::Flights;

/// The parts of one store, shared by every cache in it.
pub(crate) struct StoreInner {
    pub(crate) name: String,
    /// Key prefix of this store (`{prefix}:{cache}:{key}`).
    pub(crate) prefix: String,
    pub(crate) l1: Option<Arc<dyn LocalTier>>,
    pub(crate) flights: Flights,
}

impl StoreInner {
    pub(crate) fn new(name: String, prefix: String, l1: Option<Arc<dyn LocalTier>>) -> Self {
        Self {
            name,
            prefix,
            l1,
            flights: Flights::default(),
        }
    }

    /// A store with no tier: every lookup misses and writes are dropped (`none`).
    pub(crate) fn is_noop(&self) -> bool {
        self.l1.is_none()
    }
}

impl std::fmt::Debug for StoreInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("l1", &self.l1.as_ref().map(|t| t.driver()))
            .finish()
    }
}
