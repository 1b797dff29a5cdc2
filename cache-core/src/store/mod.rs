//! Stores: named combinations of tiers, and the traits providers implement.

pub(crate) mod allocation;
mod breaker;
mod l1_key;
pub(crate) mod lock;
mod map;
pub(crate) mod named;
pub(crate) mod remote;
pub(crate) mod replay;
pub(crate) mod tag_index;
mod tier;
pub(crate) mod versions;
mod warn;

pub use crate::layout::{LOCK_MARK, TAG_MARK};
pub(crate) use l1_key::KeySpaces;
pub use l1_key::{Carried, Equivalent, KeySpace, L1Hasher, L1Key, L1KeyRef};
pub use map::MapTier;
pub use tier::{
    memberships_ttl, BoxFuture, Bus, BusEvent, BusHandler, Invalidation, LocalEntry, LocalTier,
    RemoteEntry, RemoteTier, Scope,
};
