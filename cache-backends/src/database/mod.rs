//! The `database` driver: an L2 tier ([`DatabaseTier`]) on PostgreSQL, MySQL/MariaDB or
//! SQLite through sqlx, and (with the `postgres` feature) the `postgres` bus
//! ([`PostgresBus`], LISTEN/NOTIFY), for services that run a database and no Redis.
//!
//! ```toml
//! [stores.db]
//! l1  = { driver = "memory", max_entries = 10000 }
//! l2  = { driver = "database", url = "postgres://app:secret@127.0.0.1:5432/app", table = "cachet_entries" }
//! bus = { driver = "postgres", url = "postgres://app:secret@127.0.0.1:5432/app" }
//! lock = "database"
//!
//! [stores.local]
//! l2 = { driver = "database", url = "sqlite://var/cache.db" }      # or mysql://...
//! ```
//!
//! Options of the tier: `url` (required: `postgres://`, `mysql://`, `sqlite://PATH`,
//! `sqlite::memory:`), `table` (default `cachet_entries`; tags in `{table}_tags`),
//! `auto_create` (default true: create the tables and indexes at first use; false: a
//! missing table is an error naming it and showing the DDL), `max_connections` (default
//! 10), `operation_timeout` (default 1 s, bounds every operation, waiting for a connection
//! included), `connect_timeout` (default 1 s), `max_value_size` (default 16 MiB: a read
//! fetches at most this plus one byte) and `prune_interval` (off by default: delete
//! expired rows every so often, in batches). The bus takes `url` and `connect_timeout`.
//!
//! # How it runs
//!
//! - One row per key: `cache_key` (compared byte by byte), `cache_value`, `expires_at`
//!   (unix milliseconds of the database's clock, so instances agree). Writes are
//!   upserts (`ON CONFLICT` / `ON DUPLICATE KEY UPDATE`), safe under concurrent writers of
//!   one key; the row never exists without its expiry. Reads select only live rows, so
//!   an expired row is a miss before it is pruned, and fetch at most `max_value_size + 1`
//!   bytes.
//! - Clears match a scope as two key ranges, not `LIKE`, so no character of a cache or
//!   namespace name can widen them (see `dialect.rs`), and delete in batches of 1,000.
//! - Locks (`lock = "database"`) are rows of the same table under `{prefix}:~lock:`,
//!   taken by an upsert that succeeds only on a free or expired row, released by a
//!   compare-and-delete of the holder's token.
//! - Building never connects; the pool connects on first use, on the backend runtime,
//!   and reconnects after faults. Connection faults, timeouts and refused credentials are
//!   `Unavailable` (the circuit breaker counts them); refused statements are `Other`.
//!   Descriptions, errors, `Debug` output and logs never hold the password.

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!(
    "cachet's `database` feature needs a database: enable `postgres`, `mysql` and/or `sqlite`"
);

mod dialect;
mod options;
pub(crate) mod pool;
mod prune;
mod tier;

#[cfg(feature = "postgres")]
mod bus;

use std::sync::Arc;

use cache_core::config::TierConfig;
use cache_core::driver::DriverRegistration;
use cache_core::store::RemoteTier;
use cache_core::CacheError;

#[cfg(feature = "postgres")]
pub use crate::bus_check::BusCheck;
#[cfg(feature = "postgres")]
pub use bus::PostgresBus;
pub use options::DatabaseOptions;
pub use tier::DatabaseTier;

fn build_remote(cfg: &TierConfig) -> Result<Arc<dyn RemoteTier>, CacheError> {
    let opts = DatabaseOptions::from_tier_config(cfg)?;
    let db = pool::Database::new(&opts).map_err(|(field, why)| cfg.error(field, why))?;
    if let Some(interval) = opts.prune_interval {
        prune::start(&db, interval);
    }
    Ok(Arc::new(DatabaseTier { db }))
}

inventory::submit! {
    DriverRegistration {
        name: "database",
        local: None,
        remote: Some(build_remote),
        bus: None,
    }
}

#[cfg(feature = "postgres")]
inventory::submit! {
    DriverRegistration {
        name: "postgres",
        local: None,
        remote: None,
        bus: Some(bus::build_bus),
    }
}
