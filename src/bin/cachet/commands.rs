//! The commands: each reads the loaded configuration, acts on one store (or all, for
//! `check`), writes its report to `out` and returns the exit code.
//!
//! Stores are described by their shared tier's `describe()`, which never holds a password.

use std::io::Write;
use std::time::Instant;

use cache_backends::database::PostgresBus;
use cache_backends::redis::{RedisBus, RedisOptions};
use cachet::config::TierConfig;
use cachet::driver::BusSettings;
use cachet::store::Bus;
use cachet::{Cache, CacheError, Store};

use super::args::{Cli, Command, EntryArgs};
use super::config::{self, Loaded, Source};
use super::output::{describe_entry, latency, table, unix_ms_now};
use super::{one_line, Code, Failure};

/// Runs the command line's command.
pub(crate) async fn run(cli: Cli, out: &mut dyn Write) -> Result<Code, Failure> {
    if let Command::Inventory { src } = &cli.command {
        return inventory(src, out);
    }
    let loaded = config::load(config::locate(cli.config))?;
    if !matches!(cli.command, Command::Check { .. }) {
        loaded.require_file()?;
    }
    match cli.command {
        Command::Clear {
            store,
            cache,
            namespace,
        } => clear(&loaded, store, cache, &namespace, out).await,
        Command::Get(entry) => get(&loaded, &entry, out).await,
        Command::Delete(entry) => delete(&loaded, &entry, out).await,
        Command::Stats { store } => stats(&loaded, store, out).await,
        Command::Prune { store } => prune(&loaded, store, out).await,
        Command::Check { src } => {
            let stores = check(&loaded, out).await;
            if src.is_empty() {
                return Ok(stores);
            }
            let sources = check_sources(&src, out)?;
            Ok(if stores == Code::Ok { sources } else { stores })
        }
        Command::Inventory { .. } => unreachable!("answered above"),
    }
}

/// Writes a line; a closed stdout (`cachet stats | head`) is not an error worth a panic.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

fn store_named(loaded: &Loaded, name: Option<&str>) -> Result<Store, Failure> {
    let manager = &loaded.manager;
    Ok(manager.store(name.unwrap_or_else(|| manager.default_store_name()))?)
}

/// `store `main` (redis redis://host:6379/0, prefix `app`)`.
fn label(store: &Store) -> String {
    match store.describe_shared() {
        Some(tier) => format!(
            "store `{}` ({tier}, prefix `{}`)",
            store.name(),
            store.prefix()
        ),
        None => format!("store `{}` (in-process)", store.name()),
    }
}

/// Stores held in each application's memory cannot be reached from this process.
fn require_shared(store: &Store) -> Result<(), Failure> {
    if store.is_shared() {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "store `{}` is in-process (no shared tier): its entries live inside each application process and cannot be inspected from another one; this tool works on shared (Redis) stores",
        store.name()
    )))
}

/// The cache (or nested namespace) an entry is in.
fn cache_of(store: &Store, cache: &str, namespaces: &[String]) -> Cache {
    namespaces
        .iter()
        .fold(store.cache(cache), |c, ns| c.namespace(ns))
}

fn what(cache: &str, namespaces: &[String]) -> String {
    match namespaces {
        [] => format!("cache `{cache}`"),
        _ => format!("namespace `{}` of cache `{cache}`", namespaces.join("#")),
    }
}

async fn clear(
    loaded: &Loaded,
    store: Option<String>,
    cache: Option<String>,
    namespaces: &[String],
    out: &mut dyn Write,
) -> Result<Code, Failure> {
    let store = match (&store, &cache) {
        // A cache named alone is cleared where the application would look for it.
        (None, Some(cache)) => {
            let in_store = loaded.manager.cache(cache)?.store_name().to_owned();
            store_named(loaded, Some(&in_store))?
        }
        _ => store_named(loaded, store.as_deref())?,
    };
    if !store.is_shared() {
        say!(
            out,
            "store `{}` is in-process (no shared tier): nothing shared to clear; each application holds its own entries",
            store.name()
        );
        return Ok(Code::Ok);
    }
    match cache {
        None => {
            store.purge().await?;
            say!(out, "cleared {}", label(&store));
        }
        Some(cache) => {
            cache_of(&store, &cache, namespaces).purge().await?;
            say!(
                out,
                "cleared {} in {}",
                what(&cache, namespaces),
                label(&store)
            );
        }
    }
    Ok(Code::Ok)
}

async fn get(loaded: &Loaded, entry: &EntryArgs, out: &mut dyn Write) -> Result<Code, Failure> {
    let store = store_named(loaded, Some(&entry.store))?;
    require_shared(&store)?;
    let cache = cache_of(&store, &entry.cache, &entry.namespace);
    let stored = cache.stored_key_for(&entry.key);
    match cache.read_raw(&entry.key).await? {
        Some(bytes) => {
            let _ = write!(
                out,
                "{}",
                table(&describe_entry(
                    &stored,
                    &bytes,
                    store.max_value_size().unwrap_or(usize::MAX),
                    unix_ms_now()
                ))
            );
            Ok(Code::Ok)
        }
        None => {
            say!(out, "no entry at {stored}");
            Ok(Code::Failed)
        }
    }
}

async fn delete(loaded: &Loaded, entry: &EntryArgs, out: &mut dyn Write) -> Result<Code, Failure> {
    let store = store_named(loaded, Some(&entry.store))?;
    require_shared(&store)?;
    let cache = cache_of(&store, &entry.cache, &entry.namespace);
    let stored = cache.stored_key_for(&entry.key);
    let existed = cache.read_raw(&entry.key).await?.is_some();
    // Deleted and announced even when Redis has nothing: an instance may still hold a
    // copy in its L1.
    cache.delete_raw(&entry.key).await?;
    if existed {
        say!(out, "deleted {stored}");
        Ok(Code::Ok)
    } else {
        say!(out, "no entry at {stored}");
        Ok(Code::Failed)
    }
}

async fn stats(
    loaded: &Loaded,
    store: Option<String>,
    out: &mut dyn Write,
) -> Result<Code, Failure> {
    let store = store_named(loaded, store.as_deref())?;
    require_shared(&store)?;
    let counts = store.key_counts().await?;
    let total: u64 = counts.values().sum();
    let width = counts.keys().map(String::len).max().unwrap_or(0).max(5);
    say!(out, "{}", label(&store));
    if counts.is_empty() {
        say!(out, "  (no keys)");
    }
    for (cache, keys) in &counts {
        say!(out, "  {cache:<width$}  {keys:>8}");
    }
    say!(out, "  {:<width$}  {total:>8}", "total");
    Ok(Code::Ok)
}

async fn prune(
    loaded: &Loaded,
    store: Option<String>,
    out: &mut dyn Write,
) -> Result<Code, Failure> {
    let store = store_named(loaded, store.as_deref())?;
    require_shared(&store)?;
    let pruned = store.prune().await?;
    say!(
        out,
        "pruned {pruned} expired entries from {}",
        label(&store)
    );
    Ok(Code::Ok)
}

/// Checks every store's shared tier (a PING) and bus (subscribe, then a probe's round
/// trip): one line per part, `FAILED` and exit 1 when any fails.
async fn check(loaded: &Loaded, out: &mut dyn Write) -> Code {
    match &loaded.source {
        Source::File(path) => {
            say!(out, "config: {}: ok", path.display());
        }
        Source::Embedded => {
            say!(
                out,
                "config: no file (no --config, CACHET_CONFIG or ./cachet.toml): checking the embedded default, what the application runs on without one: one in-memory store"
            );
        }
    }
    let (mut ok, mut failed) = (0, 0);
    for name in loaded.manager.store_names() {
        for part in check_store(loaded, &name).await {
            let line = match part.outcome {
                Outcome::Ok(what) => {
                    ok += 1;
                    format!("ok{what}")
                }
                Outcome::Skipped(why) => why,
                Outcome::Failed(why) => {
                    failed += 1;
                    format!("FAILED: {}", one_line(&why))
                }
            };
            say!(out, "store `{name}`: {}{line}", part.what);
        }
    }
    if failed > 0 {
        say!(out, "checks: {ok} ok, {failed} FAILED");
        Code::Failed
    } else {
        say!(out, "checks: {ok} ok");
        Code::Ok
    }
}

/// One checked part of a store, as `check` reports it.
struct Checked {
    /// `l2 `, `bus `, or nothing for a store with nothing to reach.
    what: &'static str,
    outcome: Outcome,
}

enum Outcome {
    /// Reached: the rest of the line, after `ok`.
    Ok(String),
    /// Not checked, and why (not a failure).
    Skipped(String),
    /// Not reached, and why.
    Failed(String),
}

/// The store's shared tier and bus, each checked on its own, so a dead bus shows even
/// when the tier is fine, and the other way round.
async fn check_store(loaded: &Loaded, name: &str) -> Vec<Checked> {
    let store = match loaded.manager.store(name) {
        Ok(store) => store,
        Err(e) => {
            return vec![Checked {
                what: "",
                outcome: Outcome::Failed(e.to_string()),
            }]
        }
    };
    let mut parts = Vec::new();
    if let Some(tier) = store.describe_shared() {
        let started = Instant::now();
        let outcome = match store.ping().await {
            Ok(()) => Outcome::Ok(format!(
                ": connected and answered PING in {} ({tier})",
                latency(started.elapsed())
            )),
            Err(e) => Outcome::Failed(tier_reason(&e)),
        };
        parts.push(Checked {
            what: "l2 ",
            outcome,
        });
    }
    // The manager keeps its bus to itself: the tool makes one of its own from the same
    // configuration, on the channel the application's bus uses.
    if let Some(bus) = loaded.config.stores.get(name).and_then(|s| s.bus.as_ref()) {
        parts.push(Checked {
            what: "bus ",
            outcome: check_bus(bus, store.prefix()).await,
        });
    }
    if parts.is_empty() {
        parts.push(Checked {
            what: "",
            outcome: Outcome::Ok(" (in-process: nothing to connect to)".to_owned()),
        });
    }
    parts
}

/// Subscribes to the store's bus channel and sends a probe round (see
/// [`RedisBus::check`] and [`PostgresBus::check`]); buses of other drivers are named, not
/// checked.
async fn check_bus(bus: &TierConfig, prefix: &str) -> Outcome {
    let channel = BusSettings::for_prefix(prefix).channel;
    let checked = match bus.driver.as_str() {
        "redis" => match RedisOptions::from_bus_config(bus)
            .and_then(|opts| RedisBus::new(&opts, channel))
        {
            Ok(bus) => bus.check().await.map(|c| (c, bus.describe())),
            Err(e) => return Outcome::Failed(e.to_string()),
        },
        "postgres" => match PostgresBus::from_tier_config(bus, channel) {
            Ok(bus) => bus.check().await.map(|c| (c, bus.describe())),
            Err(e) => return Outcome::Failed(e.to_string()),
        },
        other => {
            return Outcome::Skipped(format!(
                "not checked (driver `{other}`: this tool checks redis and postgres buses)"
            ))
        }
    };
    match checked {
        Ok((checked, described)) => Outcome::Ok(format!(
            ": connected and subscribed in {}, probe round trip {} ({described})",
            latency(checked.subscribe),
            latency(checked.round_trip),
        )),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// The tier's own words, without the `store `x` failed:` the line already says.
fn tier_reason(err: &CacheError) -> String {
    match err {
        CacheError::Tier { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// `cachet inventory`: one line per cached operation and typed cache found in `src`
/// (default `./src`).
fn inventory(src: &[std::path::PathBuf], out: &mut dyn Write) -> Result<Code, Failure> {
    let roots = if src.is_empty() {
        vec![std::path::PathBuf::from("src")]
    } else {
        src.to_vec()
    };
    let (found, skipped) = super::inventory::scan(&roots).map_err(Failure::usage)?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|f| {
            let mut options = Vec::new();
            if let Some(ttl) = &f.ttl {
                options.push(format!("ttl={ttl}"));
            }
            if let Some(grace) = &f.grace {
                options.push(format!("grace={grace}"));
            }
            if !f.tags.is_empty() {
                options.push(format!("tags={}", f.tags.join("+")));
            }
            vec![
                f.function.clone(),
                format!("{}:{}", f.file, f.line),
                f.kind.to_owned(),
                f.cache.clone(),
                f.key_type.clone(),
                if f.kind == "cache_evict" {
                    "-".into()
                } else {
                    f.value_type.clone()
                },
                if options.is_empty() {
                    "-".into()
                } else {
                    options.join(" ")
                },
                match &f.typed {
                    Some(decl) => format!("typed {decl}"),
                    None => "string".into(),
                },
            ]
        })
        .collect();
    let header = [
        "FUNCTION", "AT", "KIND", "CACHE", "KEY", "VALUE", "OPTIONS", "CACHE BY",
    ];
    let _ = write!(out, "{}", super::inventory::columns(&header, &rows));
    for note in skipped {
        say!(out, "note: {note}");
    }
    say!(out, "{} operations and declarations", found.len());
    Ok(Code::Ok)
}

/// The source half of `check`: the annotated functions found in `src`, their types
/// compared per cache as a manager compares them at startup.
fn check_sources(src: &[std::path::PathBuf], out: &mut dyn Write) -> Result<Code, Failure> {
    let (found, _) = super::inventory::scan(src).map_err(Failure::usage)?;
    let conflicts = super::inventory::conflicts(&found);
    if conflicts.is_empty() {
        say!(
            out,
            "sources: {} cached operations: types agree: ok",
            found.len()
        );
        return Ok(Code::Ok);
    }
    // Every disagreement, so that one run shows all there is to fix.
    for conflict in &conflicts {
        say!(out, "sources: FAILED: {conflict}");
    }
    Ok(Code::Failed)
}
