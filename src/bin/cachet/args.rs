//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Configuration: --config PATH, else the file named by CACHET_CONFIG, else ./cachet.toml
(the same file the application reads). With none of them, `check` checks the embedded default
the application then runs on (one in-memory store); the other commands need a file.

Keys are given as cachet encodes them: `42` for the number 42, `alice` for a string,
`42:alice` for the tuple (42, \"alice\"); the stored key is {prefix}:{cache}:{key}.

Exit codes:
  0  done
  1  no entry under the key (get, delete), or a store failed (check, or the command's own call)
  2  usage or configuration error, or a store held in process memory, which no other process can reach";

/// Inspect and clear the shared (Redis, database) stores of a cachet configuration.
#[derive(Debug, Parser)]
#[command(name = "cachet", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// The configuration file [default: $CACHET_CONFIG, else ./cachet.toml]
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Delete every entry of a store, or of one cache or namespace (SCAN + UNLINK on its
    /// own prefix; never FLUSHDB), and tell the running instances to drop their copies
    Clear {
        /// The store [default: the configuration's default store; with --cache, the
        /// store that cache is configured in]
        store: Option<String>,
        /// Only this cache
        #[arg(long, value_name = "CACHE")]
        cache: Option<String>,
        /// Only this namespace of the cache (repeat for nested namespaces)
        #[arg(long, value_name = "NS", requires = "cache")]
        namespace: Vec<String>,
    },
    /// Show the entry under a key: stored key, size, format version, time left, type
    Get(EntryArgs),
    /// Delete the entry under a key, and tell the running instances to drop their copy
    Delete(EntryArgs),
    /// Count the keys of each cache of a store (SCAN over its prefix)
    Stats {
        /// The store [default: the configuration's default store]
        store: Option<String>,
    },
    /// Delete the expired entries a store's server still holds (a database store's rows
    /// past their expiry), in bounded batches; Redis expires keys itself
    Prune {
        /// The store [default: the configuration's default store]
        store: Option<String>,
    },
    /// Load the configuration and check every store: PING its shared tier, subscribe to its
    /// bus and send a probe round trip (on `{prefix}:__bus:check`, so no instance sees it);
    /// one line per part with its latency, exit 1 when any fails. With --src, also check the
    /// program's annotated functions: exit 1 when two on one cache disagree on its key or
    /// value type
    Check {
        /// Rust sources of the program (directories or files, repeatable) whose annotations
        /// to check
        #[arg(long, value_name = "PATH")]
        src: Vec<PathBuf>,
    },
    /// List the program's cached operations, read from its sources: function, file:line,
    /// kind, cache, key and value types, ttl/grace/tags, typed or string-named; and its
    /// typed caches (`caches!`). Needs no configuration
    Inventory {
        /// Rust sources of the program (directories or files, repeatable) [default: ./src]
        #[arg(long, value_name = "PATH")]
        src: Vec<PathBuf>,
    },
}

/// Where one entry is.
#[derive(Debug, Args)]
pub(crate) struct EntryArgs {
    /// The store
    pub(crate) store: String,
    /// The cache
    pub(crate) cache: String,
    /// The key, as cachet encodes it (`42`, `alice`, `42:alice`)
    #[arg(allow_hyphen_values = true)]
    pub(crate) key: String,
    /// In this namespace of the cache (repeat for nested namespaces)
    #[arg(long, value_name = "NS")]
    pub(crate) namespace: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
