//! Stores: named combinations of tiers, and the traits providers implement.

mod tier;

pub use tier::{
    BoxFuture, Bus, BusEvent, BusHandler, Invalidation, LocalEntry, LocalTier, RemoteTier, Scope,
};
