//! Registrations: how clearing a cache finds its namespaces, and purging a store its
//! caches, without a table `Scan`.
//!
//! Before the first item of a partition is written, the tier registers the partition in
//! its parent (`shop:users#eu` as `#eu` in `shop:users`, `shop:users` as `:users` in
//! `shop`, a lock partition `shop:~lock:users` as `:~lock:users` in `shop`; see
//! [`super::layout::registration`]), up to the store's root. A registration
//! expires no sooner than every entry written after it: it is written with an expiry at
//! least the entry's, and a conditional update only ever raises it (`SET expires_ms` if
//! absent or lower), so concurrent writers can never shorten it. Clearing never deletes
//! registrations, so a registration this process remembers is always still there; each
//! process remembers which partitions it registered until when, and writes again only
//! for an entry that outlives that (at most about once an hour per partition: a
//! registration is written to last [`MIN_LIFETIME`] past the entry it is written for).
//!
//! The cost: one conditional `UpdateItem` per level for the first write of a partition
//! (per process and hour), and one registration item per cache and namespace ever used,
//! expiring with the last entry written to it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::TierError;

use super::client::Client;
use super::error::is_condition_failed;
use super::item::{self, CHILD, EXPIRES_AT, EXPIRES_MS};
use super::layout::{self, ItemKey};

/// A registration lasts this long past the entry it is written for, so a partition written
/// often is registered about once per this period and process.
const MIN_LIFETIME: Duration = Duration::from_secs(3600);
/// How many partitions one process remembers; past it, it forgets them all (and
/// registers again as it writes: an extra write, never a missed partition).
const REMEMBERED: usize = 10_000;

/// The partitions this process registered, and until when (unix ms).
#[derive(Default)]
pub(crate) struct Registry {
    known: Mutex<HashMap<String, u64>>,
}

impl Registry {
    /// The registrations to write before an item of `partition` expiring at
    /// `expires_ms` (`partition`'s own and its ancestors', leaf first), with the expiry
    /// each is written with.
    fn needed(&self, partition: &str, expires_ms: u64) -> Vec<(String, ItemKey, u64)> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        // An hour past the entry's own expiry: later writes of the same ttl within the hour
        // expire before it. (Capping it at the entry's expiry or an hour from now, the
        // larger, made every write of a ttl of an hour or more register again, since each
        // expires a little after the last: three requests per `set` instead of one.)
        let lifetime = u64::try_from(MIN_LIFETIME.as_millis()).unwrap_or(u64::MAX);
        let until = expires_ms.saturating_add(lifetime);
        let mut needed = Vec::new();
        let mut current = partition.to_owned();
        while let Some(reg) = layout::registration(&current) {
            if known.get(&current).is_some_and(|&at| at >= expires_ms) {
                // Its ancestors were registered with it, at least as long.
                break;
            }
            let parent = reg.pk.clone();
            needed.push((current, reg, until));
            current = parent;
        }
        needed
    }

    fn remember(&self, partition: String, until: u64) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= REMEMBERED {
            known.clear();
        }
        let at = known.entry(partition).or_insert(0);
        *at = (*at).max(until);
    }

    /// Registers `partition` (and its ancestors) for an item expiring at `expires_ms`,
    /// unless this process already did.
    pub(crate) async fn ensure(
        &self,
        client: &Client,
        sdk: &aws_sdk_dynamodb::Client,
        partition: &str,
        expires_ms: u64,
    ) -> Result<(), TierError> {
        // Root first: a registration is never visible before its parent's.
        for (partition, reg, until) in self.needed(partition, expires_ms).into_iter().rev() {
            let written = sdk
                .update_item()
                .table_name(client.table())
                .set_key(Some(item::key(&reg)))
                .update_expression("SET #child = :yes, #at = :at, #ms = :ms")
                .condition_expression("attribute_not_exists(#ms) OR #ms < :ms")
                .expression_attribute_names("#child", CHILD)
                .expression_attribute_names("#at", EXPIRES_AT)
                .expression_attribute_names("#ms", EXPIRES_MS)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":at", item::number(until.div_ceil(1000)))
                .expression_attribute_values(":ms", item::number(until))
                .send()
                .await;
            match written {
                Ok(_) => {}
                // Registered already, for at least as long.
                Err(err) if is_condition_failed(&err) => {}
                Err(err) => return Err(client.fault("UpdateItem (registration)", &err)),
            }
            self.remember(partition, until);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_is_registered_once_per_lifetime() {
        let r = Registry::default();
        let soon = item::expiry_ms(Duration::from_secs(60));
        let needed = r.needed("shop:users#eu", soon);
        let levels: Vec<(&str, &str, &str)> = needed
            .iter()
            .map(|(p, k, _)| (p.as_str(), k.pk.as_str(), k.sk.as_str()))
            .collect();
        assert_eq!(
            levels,
            [
                ("shop:users#eu", "shop:users", "#eu"),
                ("shop:users", "shop", ":users")
            ]
        );
        let until = needed[0].2;
        assert!(until >= item::expiry_ms(MIN_LIFETIME) - 1000);
        for (p, _, u) in needed {
            r.remember(p, u);
        }
        assert!(r.needed("shop:users#eu", soon).is_empty());
        assert!(r.needed("shop:users", soon).is_empty());
        // an entry outliving the registration registers again
        let later = until + 1;
        assert_eq!(r.needed("shop:users#eu", later).len(), 2);
        // lock partitions hang from the root; roots are never registered
        let lock: Vec<(String, String)> = r
            .needed("shop:~lock:users", soon)
            .into_iter()
            .map(|(_, k, _)| (k.pk, k.sk))
            .collect();
        assert_eq!(lock, [("shop".to_owned(), ":~lock:users".to_owned())]);
        assert!(r.needed("shop", soon).is_empty());
    }

    #[test]
    fn long_lived_entries_do_not_register_their_partition_on_every_write() {
        // A store whose ttl is an hour or more: every write outlives the one before it by
        // the time between them, and must still not register again within the hour.
        let r = Registry::default();
        for ttl in [MIN_LIFETIME, MIN_LIFETIME * 24] {
            let first = item::expiry_ms(ttl);
            for (p, _, u) in r.needed("shop:profiles", first) {
                r.remember(p, u);
            }
            let a_minute_later = first + 60_000;
            assert!(
                r.needed("shop:profiles", a_minute_later).is_empty(),
                "ttl {ttl:?}: registered again a minute later"
            );
        }
    }
}
