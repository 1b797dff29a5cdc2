//! Drivers: how a `driver = "..."` name in configuration becomes a tier.
//!
//! Core knows no backend. Each backend registers its drivers with
//! [`inventory::submit!`] and a [`DriverRegistration`]; the manager looks them up by name
//! when it builds stores from configuration.
//!
//! ```
//! use cache_core::driver::{find_driver, DriverRegistration};
//! // with no backend linked in, no driver named "nope" exists
//! assert!(find_driver("nope").is_none());
//! ```

use std::sync::Arc;

use crate::config::TierConfig;
use crate::error::CacheError;
use crate::store::{Bus, LocalTier, RemoteTier};

pub use crate::layout::check_channel;
pub use crate::spare::SparePool;

/// Builds an in-process tier from its configuration.
pub type BuildLocal = fn(&TierConfig) -> Result<Arc<dyn LocalTier>, CacheError>;
/// Builds a shared tier from its configuration. Must not connect: connections are lazy.
pub type BuildRemote = fn(&TierConfig) -> Result<Arc<dyn RemoteTier>, CacheError>;
/// Builds a bus from its configuration. Must not connect: connections are lazy.
pub type BuildBus = fn(&TierConfig, &BusSettings) -> Result<Arc<dyn Bus>, CacheError>;

/// What core tells a bus driver beyond the bus's own options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusSettings {
    /// The channel to publish and subscribe on, scoped by the store's prefix
    /// (`{prefix}:__bus`), so ACLs limited to `{prefix}:*` channels allow it.
    pub channel: String,
}

impl BusSettings {
    /// Settings for a store whose keys start with `prefix`.
    ///
    /// ```
    /// use cache_core::driver::BusSettings;
    /// assert_eq!(BusSettings::for_prefix("shop").channel, "shop:__bus");
    /// ```
    pub fn for_prefix(prefix: &str) -> Self {
        Self {
            channel: crate::layout::bus_channel(prefix),
        }
    }
}

/// A driver, registered by a backend crate with `inventory::submit!`.
#[derive(Debug)]
pub struct DriverRegistration {
    /// The name used in configuration (`driver = "memory"`).
    pub name: &'static str,
    /// Builds the driver as an L1, if it can be one.
    pub local: Option<BuildLocal>,
    /// Builds the driver as an L2, if it can be one.
    pub remote: Option<BuildRemote>,
    /// Builds the driver as a bus, if it can be one.
    pub bus: Option<BuildBus>,
}

inventory::collect!(DriverRegistration);

/// The registered driver of that name.
pub fn find_driver(name: &str) -> Option<&'static DriverRegistration> {
    inventory::iter::<DriverRegistration>
        .into_iter()
        .find(|d| d.name == name)
}

/// The names of every registered driver, for error messages.
pub fn driver_names() -> Vec<&'static str> {
    let mut names: Vec<_> = inventory::iter::<DriverRegistration>
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
