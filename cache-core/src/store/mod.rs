//! Stores: named combinations of tiers, and the traits providers implement.

mod map;
pub(crate) mod named;
mod tier;

pub use map::MapTier;
pub use tier::{
    BoxFuture, Bus, BusEvent, BusHandler, Invalidation, LocalEntry, LocalTier, RemoteTier, Scope,
};
