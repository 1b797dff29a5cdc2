//! `cachet`: inspect and clear the shared (Redis) stores of a cachet configuration.
//!
//! ```text
//! cachet clear [STORE] [--cache CACHE [--namespace NS]...]
//! cachet get STORE CACHE KEY [--namespace NS]...
//! cachet delete STORE CACHE KEY [--namespace NS]...
//! cachet stats [STORE]
//! cachet prune [STORE]
//! cachet check
//! ```
//!
//! Installed with `cargo install --path . --features cli`; `cachet --help` lists the
//! options and exit codes. The logic lives in `src/cli/`.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
