//! The `dynamodb` driver: an L2 tier ([`DynamoTier`]) on an Amazon DynamoDB table,
//! through the official SDK (`aws-config`, `aws-sdk-dynamodb`).
//!
//! ```toml
//! [stores.dynamo]
//! l1 = { driver = "memory", max_entries = 10000 }
//! l2 = { driver = "dynamodb", table = "cachet", region = "eu-west-1" }
//! # for a local emulator: endpoint = "http://127.0.0.1:8000"
//! ```
//!
//! Options: `table` (required), `region` (default: the standard AWS chain's),
//! `endpoint` (default: the region's), `auto_create` (default `false`: when `true`, the
//! first operation creates the table with cachet's key schema, on-demand billing, and
//! turns on DynamoDB's TTL for `expires_at`), `operation_timeout` (default `1s`: bounds
//! every operation, the SDK's one retry included), `connect_timeout` (default `1s`) and
//! `max_value_size` (default 396 KiB, at most 400 KB, DynamoDB's item limit: a bigger
//! value is not stored, and the write counts as an error — never a failed call).
//! Unknown options are errors. Credentials come from the standard AWS chain
//! (environment, shared profile files, web identity, container and instance metadata);
//! SSO profiles and `credential_process` are not built in (they would add crates to
//! every build of the feature).
//!
//! # Table layout
//!
//! Partition key `pk` and sort key `sk`, both strings. One partition per cache, or per
//! namespace of a cache (`{prefix}:{cache}[#namespace]`), one item per entry (sort key:
//! the encoded key). So clearing a cache is a `Query` of its partition and `BatchWriteItem`
//! deletes, 25 at a time — never a table `Scan` — plus the same for each of its
//! namespaces, found through small *registration* items in the parent partition.
//!
//! The trade-off: one cache (or namespace) is one partition key, and DynamoDB serves one
//! partition key from one partition at first (about 3,000 reads and 1,000 writes a
//! second, split further by adaptive capacity when hot). A very hot cache is best split
//! into namespaces (e.g. per tenant), each its own partition key.
//!
//! # Semantics
//!
//! - Expiry is checked on every read (`expires_ms`): DynamoDB's TTL deletes expired
//!   items lazily, up to days later, so an expired item is a miss meanwhile.
//! - Reads are strongly consistent: a cache reads its own writes and deletes.
//! - Tags: one row per (tag, entry), written with the entry in one transaction.
//! - The distributed lock (a store's `lock`): a conditional `PutItem` (absent or
//!   expired) takes it, a conditional `DeleteItem` on the holder's token releases it.
//! - Time to idle (`tti`): reading renews an entry's expiry with a conditional
//!   `UpdateItem` of its two expiry attributes, on a live entry only (an expired item
//!   waiting for DynamoDB's TTL is never brought back).
//! - Errors are [`cache_core::TierError`]s: `Unavailable` for unreachable endpoints,
//!   timeouts, throttling and server errors (the circuit breaker counts those), `Other`
//!   for refused requests (validation, permissions, a missing table). Descriptions,
//!   errors, `Debug` output and logs never hold a credential.
//!
//! # IAM permissions
//!
//! On the table: `dynamodb:GetItem`, `PutItem`, `UpdateItem` (registrations, `tti`),
//! `DeleteItem` (unlock), `Query` (clear, tags, `cachet stats`), `BatchGetItem` (batch
//! reads) and `BatchWriteItem` (deletes, batch writes). Tagged writes are `TransactWriteItems`, which IAM authorizes through the
//! `PutItem` permission of each write in it. With `auto_create`, also `DescribeTable`,
//! `CreateTable` and `UpdateTimeToLive`.

mod batch;
mod client;
mod error;
mod item;
mod layout;
mod lock;
mod options;
mod registry;
mod tags;
mod tier;
mod touch;
mod walk;

use std::sync::Arc;

use cache_core::config::TierConfig;
use cache_core::driver::DriverRegistration;
use cache_core::store::RemoteTier;
use cache_core::CacheError;

pub use options::{DynamoOptions, DEFAULT_MAX_VALUE_SIZE, DYNAMODB_ITEM_LIMIT};
pub use tier::DynamoTier;

/// Where a stored key's item is in the table: its partition key (`pk`) and sort key
/// (`sk`), for tools and tests that read the table directly. `None` for a key no item
/// can have (empty, or longer than DynamoDB's key limits).
///
/// ```
/// use cache_backends::dynamodb::item_key_of;
/// assert_eq!(
///     item_key_of("shop:users#eu:42"),
///     Some(("shop:users#eu".to_owned(), ":42".to_owned()))
/// );
/// ```
pub fn item_key_of(stored_key: &str) -> Option<(String, String)> {
    layout::item_key(stored_key).ok().map(|k| (k.pk, k.sk))
}

fn build_remote(cfg: &TierConfig) -> Result<Arc<dyn RemoteTier>, CacheError> {
    let opts = DynamoOptions::from_tier_config(cfg)?;
    Ok(Arc::new(DynamoTier::new(opts)?))
}

inventory::submit! {
    DriverRegistration {
        name: "dynamodb",
        local: None,
        remote: Some(build_remote),
        bus: None,
    }
}
