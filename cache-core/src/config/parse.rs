//! TOML text to [`ManagerConfig`]. (Being written: see the config branch.)

use super::ManagerConfig;
use crate::error::{CacheError, ConfigOrigin};

/// Parses a TOML configuration.
pub fn parse_toml(text: &str, origin: ConfigOrigin) -> Result<ManagerConfig, CacheError> {
    let _ = text;
    Err(CacheError::Config {
        origin,
        field: String::new(),
        expected: "config parsing is not written yet".into(),
    })
}
