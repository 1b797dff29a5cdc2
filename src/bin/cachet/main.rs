//! `cachet`: inspect and clear the shared (Redis) stores of a cachet configuration.
//!
//! ```text
//! cachet clear [STORE] [--cache CACHE [--namespace NS]...]
//! cachet get STORE CACHE KEY [--namespace NS]...
//! cachet delete STORE CACHE KEY [--namespace NS]...
//! cachet stats [STORE]
//! cachet prune [STORE]
//! cachet check [--src PATH]...
//! cachet inventory [--src PATH]...
//! ```
//!
//! Installed with `cargo install --path . --features cli`; `cachet --help` lists the
//! options and exit codes.
//!
//! Modules: argument parsing (`args`), finding and loading the configuration (`config`),
//! the commands (`commands`) and how they print (`output`). Every failure is one line on
//! stderr, `error: ...`, and an exit code: see [`Code`].

mod args;
mod commands;
mod config;
mod inventory;
mod output;

use std::io::Write;
use std::process::ExitCode;

use cachet::CacheError;
use clap::error::ErrorKind;
use clap::Parser;

/// The exit codes, as `--help` documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// Done.
    Ok = 0,
    /// No entry under the key, or a store failed (`check`, or the command's own call).
    Failed = 1,
    /// Bad usage or configuration, or a store this tool cannot reach into.
    Usage = 2,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(code as u8)
    }
}

/// Why a command stopped: one line for stderr, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Failure {
    /// A usage or configuration error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: Code::Usage,
            message: message.into(),
        }
    }

    /// A store that failed (exit 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            code: Code::Failed,
            message: message.into(),
        }
    }
}

impl From<CacheError> for Failure {
    /// Configuration and naming errors are usage errors; a failing store is a failure.
    fn from(err: CacheError) -> Self {
        let message = one_line(&err.to_string());
        match err {
            CacheError::Tier { .. } => Failure::failed(message),
            _ => Failure::usage(message),
        }
    }
}

/// Messages from below (a Redis error, a TOML parse error) may span lines; the tool's
/// errors never do.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses the command line, runs the command, and turns its outcome into an exit code.
fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Failure::failed(format!("cannot start a runtime: {e}"))),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let outcome = runtime.block_on(commands::run(cli, &mut out));
    let _ = out.flush();
    match outcome {
        Ok(code) => code.into(),
        Err(failure) => fail(&failure),
    }
}

/// `--help` and `--version` as clap prints them; a usage error as one line with the
/// usage of the command, exit 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let text = err.render().to_string();
    // clap's first paragraph says what is wrong; a `Usage:` line says how to do it.
    let what = text.split("\n\n").next().unwrap_or_default();
    let what = what.strip_prefix("error: ").unwrap_or(what);
    let usage = text
        .lines()
        .find_map(|l| l.strip_prefix("Usage: "))
        .map(|u| format!(" (usage: {u})"))
        .unwrap_or_default();
    fail(&Failure::usage(format!("{}{usage}", one_line(what))))
}

fn fail(failure: &Failure) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {}", one_line(&failure.message));
    failure.code.into()
}
