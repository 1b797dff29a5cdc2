//! Which configuration the tool reads, and loading it.
//!
//! The application's own lookup: `CACHET_CONFIG`, else `./cachet.toml`, else the embedded
//! default (one bounded in-memory store). `--config PATH` comes first. With no file, `check`
//! checks the embedded default, since that is what the application runs on; the other
//! commands refuse it: its store lives inside each application process, out of reach.

use std::path::{Path, PathBuf};

use cachet::config::{embedded_default, parse_toml, ManagerConfig};
use cachet::{CacheManager, ConfigOrigin};

use super::Failure;

/// The variable naming the configuration file, as for the application.
const CONFIG_VAR: &str = "CACHET_CONFIG";
/// The file read from the working directory when nothing else names one.
const LOCAL_FILE: &str = "cachet.toml";

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A file: `--config`, `CACHET_CONFIG` or `./cachet.toml`.
    File(PathBuf),
    /// No file: the embedded default the application falls back to.
    Embedded,
}

/// A configuration, as parsed and as built into a manager (building never connects).
pub(crate) struct Loaded {
    pub(crate) source: Source,
    pub(crate) config: ManagerConfig,
    pub(crate) manager: CacheManager,
}

impl Loaded {
    /// Refuses the embedded default: for commands that act on shared stores, which it has
    /// none of.
    pub(crate) fn require_file(&self) -> Result<(), Failure> {
        match self.source {
            Source::File(_) => Ok(()),
            Source::Embedded => Err(Failure::usage(
                "no configuration: pass --config, set CACHET_CONFIG or add cachet.toml (without one the application runs on the embedded default, one in-memory store inside each process, which no other process can reach)",
            )),
        }
    }
}

/// `--config PATH` > `CACHET_CONFIG` > `./cachet.toml` > the embedded default.
pub(crate) fn locate(flag: Option<PathBuf>) -> Source {
    if let Some(path) = flag {
        return Source::File(path);
    }
    if let Some(path) = std::env::var_os(CONFIG_VAR).filter(|v| !v.is_empty()) {
        return Source::File(path.into());
    }
    let local = Path::new(LOCAL_FILE);
    if local.is_file() {
        return Source::File(local.to_owned());
    }
    Source::Embedded
}

/// Reads, parses and builds the configuration; errors name the file and the field.
pub(crate) fn load(source: Source) -> Result<Loaded, Failure> {
    let path = match source {
        Source::File(path) => path,
        Source::Embedded => {
            let config = embedded_default();
            let manager = CacheManager::from_config(config.clone())?;
            return Ok(Loaded {
                source,
                config,
                manager,
            });
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::usage(format!(
            "cannot read configuration file {}: {e}",
            path.display()
        ))
    })?;
    let config = parse_toml(&text, ConfigOrigin::File(path.clone()))?;
    let manager = CacheManager::from_config(config.clone())?;
    Ok(Loaded {
        source: Source::File(path),
        config,
        manager,
    })
}
