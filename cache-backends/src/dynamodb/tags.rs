//! Tags on DynamoDB: one *tag row* per (tag, entry), in the entry's partition, written
//! in the same transaction as the entry and expiring with the entry's full lifetime (the
//! most a time to idle's `touch` may renew the entry for).
//!
//! Redis keeps a set per tag and raises the set's TTL to its longest member's; DynamoDB
//! has no "raise only" for a TTL without reading first, so each membership is its own
//! item instead (see [`super::layout`] for its key). A tagged write is one
//! `TransactWriteItems` (the entry and its rows: the entry never exists without them);
//! reading a tag is a `Query` of its rows' `sk` prefix; deleting by tag deletes the
//! entries and exactly the rows read, so a row written meanwhile stays.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use cache_core::{TierError, TierErrorKind};

use super::client::Client;
use super::item::{self, Attributes, EXPIRES_MS, MEMBER, PK, SK};
use super::layout::{self, ItemKey};

/// DynamoDB's limit on the actions of one transaction.
const MAX_ACTIONS: usize = 100;

/// The tag rows of `key` for each tag key (deduplicated), checked to fit in one
/// transaction with the entry.
pub(crate) fn rows_of(key: &str, tag_keys: &[String]) -> Result<Vec<ItemKey>, TierError> {
    let tags: BTreeSet<&String> = tag_keys.iter().collect();
    if tags.len() + 1 > MAX_ACTIONS {
        return Err(TierError::with_kind(
            format!(
                "dynamodb: an entry can carry at most {} tags (one transaction of {MAX_ACTIONS} writes)",
                MAX_ACTIONS - 1
            ),
            TierErrorKind::Other,
        ));
    }
    tags.into_iter().map(|t| layout::tag_row(t, key)).collect()
}

/// The partitions a tagged write puts items in, each once, with the expiry of the longest
/// item it gets (the entry expiring at `entry_ms`, its tag `rows` at `rows_ms`): what must
/// be registered before the write. The entry's own partition usually holds its tag rows
/// too, and is registered once for the longer of the two.
pub(crate) fn partitions<'a>(
    entry: &'a ItemKey,
    entry_ms: u64,
    rows: &'a [ItemKey],
    rows_ms: u64,
) -> Vec<(&'a str, u64)> {
    let mut partitions: Vec<(&str, u64)> = vec![(&entry.pk, entry_ms)];
    for row in rows {
        match partitions.iter_mut().find(|(pk, _)| *pk == row.pk) {
            Some((_, until)) => *until = (*until).max(rows_ms),
            None => partitions.push((&row.pk, rows_ms)),
        }
    }
    partitions
}

fn put(attrs: Attributes, table: &str) -> Result<TransactWriteItem, TierError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(attrs))
        .build()
        .map_err(|e| TierError::with_kind(e.to_string(), TierErrorKind::Other))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Writes the entry and its tag rows (expiring at `rows_expire_ms`) in one transaction.
pub(crate) async fn write(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    entry: Attributes,
    key: &str,
    rows: &[ItemKey],
    rows_expire_ms: u64,
) -> Result<(), TierError> {
    let mut actions = vec![put(entry, client.table())?];
    for row in rows {
        let mut attrs = item::expiring(row, rows_expire_ms);
        attrs.insert(MEMBER.to_owned(), AttributeValue::S(key.to_owned()));
        actions.push(put(attrs, client.table())?);
    }
    sdk.transact_write_items()
        .set_transact_items(Some(actions))
        .send()
        .await
        .map_err(|e| client.fault("TransactWriteItems", &e))?;
    Ok(())
}

/// Every live member of the tags of `tag_keys`.
pub(crate) async fn members(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    tag_keys: &[String],
) -> Result<Vec<String>, TierError> {
    let mut found = BTreeSet::new();
    for tag_key in tag_keys {
        let rows = layout::tag_rows(tag_key)?;
        let mut start = None;
        loop {
            let out = sdk
                .query()
                .table_name(client.table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :rows)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#member", MEMBER)
                .expression_attribute_names("#ms", EXPIRES_MS)
                .expression_attribute_values(":pk", AttributeValue::S(rows.pk.clone()))
                .expression_attribute_values(":rows", AttributeValue::S(rows.sk.clone()))
                .projection_expression("#sk, #member, #ms")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| client.fault("Query (tag)", &e))?;
            let now = item::now_ms();
            for attrs in out.items() {
                let (Some(member), Some(sk)) =
                    (item::string(attrs, MEMBER), item::string(attrs, SK))
                else {
                    continue;
                };
                // Only this tag's own rows: its prefix, then exactly the member.
                let own = sk.strip_prefix(rows.sk.as_str()) == Some(member);
                if own && item::is_alive(attrs, now) {
                    found.insert(member.to_owned());
                }
            }
            match out.last_evaluated_key() {
                Some(next) => start = Some(next.clone()),
                None => break,
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// The items `delete_tagged` removes: the entries, and their rows of these tags.
pub(crate) fn items_to_delete(
    keys: &[String],
    tag_keys: &[String],
) -> Result<Vec<ItemKey>, TierError> {
    let mut items = Vec::with_capacity(keys.len() * (1 + tag_keys.len()));
    for key in keys {
        items.push(layout::item_key(key)?);
        for tag_key in tag_keys {
            items.push(layout::tag_row(tag_key, key)?);
        }
    }
    Ok(items)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_is_registered_once_for_its_longest_item() {
        let entry = layout::item_key("shop:products:42").unwrap();
        let tags = [
            "shop:products:=tag:sale".to_owned(),
            "shop:products:=tag:new".to_owned(),
        ];
        let rows = rows_of("shop:products:42", &tags).unwrap();
        // Tag rows live in their cache's partition, the entry's own.
        assert!(rows.iter().all(|row| row.pk == entry.pk));
        // Registered once, for the longer of the entry and its rows, whichever it is.
        for (entry_ms, rows_ms) in [(1_000, 5_000), (5_000, 1_000)] {
            assert_eq!(
                partitions(&entry, entry_ms, &rows, rows_ms),
                [(entry.pk.as_str(), 5_000)]
            );
        }
        // A row elsewhere gets its own registration, for the rows' expiry.
        let other = layout::tag_row("shop:orders:=tag:sale", "shop:products:42").unwrap();
        let mixed = [rows[0].clone(), other.clone()];
        assert_eq!(
            partitions(&entry, 1_000, &mixed, 5_000),
            [(entry.pk.as_str(), 5_000), (other.pk.as_str(), 5_000)]
        );
    }
}
