//! Which configuration file the tool reads, and loading it.
//!
//! The application's own lookup (`CACHET_CONFIG`, else `./cachet.toml`, else an embedded
//! in-memory default) minus the default: an in-memory store of this process would tell
//! nothing about the application's stores, so no file is an error here.

use std::path::{Path, PathBuf};

use cachet::config::{parse_toml, ManagerConfig};
use cachet::{CacheManager, ConfigOrigin};

use super::Failure;

/// The variable naming the configuration file, as for the application.
const CONFIG_VAR: &str = "CACHET_CONFIG";
/// The file read from the working directory when nothing else names one.
const LOCAL_FILE: &str = "cachet.toml";

/// A configuration, as parsed and as built into a manager (building never connects).
pub(crate) struct Loaded {
    pub(crate) path: PathBuf,
    pub(crate) config: ManagerConfig,
    pub(crate) manager: CacheManager,
}

/// `--config PATH` > `CACHET_CONFIG` > `./cachet.toml`.
pub(crate) fn locate(flag: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(path) = flag {
        return Ok(path);
    }
    if let Some(path) = std::env::var_os(CONFIG_VAR).filter(|v| !v.is_empty()) {
        return Ok(path.into());
    }
    let local = Path::new(LOCAL_FILE);
    if local.is_file() {
        return Ok(local.to_owned());
    }
    Err(Failure::usage(
        "no configuration: pass --config, set CACHET_CONFIG or add cachet.toml",
    ))
}

/// Reads, parses and builds the configuration; errors name the file and the field.
pub(crate) fn load(path: PathBuf) -> Result<Loaded, Failure> {
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::usage(format!(
            "cannot read configuration file {}: {e}",
            path.display()
        ))
    })?;
    let config = parse_toml(&text, ConfigOrigin::File(path.clone()))?;
    let manager = CacheManager::from_config(config.clone())?;
    Ok(Loaded {
        path,
        config,
        manager,
    })
}
