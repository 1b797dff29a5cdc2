//! Renewing an entry's expiry (`touch`, for time to idle): one conditional `UpdateItem`
//! of both expiry attributes, on a live entry whose expiry is sooner only (raise-only: a
//! touch computed from an older copy never cuts short a newer entry written meanwhile).

use cache_core::TierError;

use super::client::Client;
use super::item::{self, EXPIRES_AT, EXPIRES_MS, VALUE};
use super::layout::ItemKey;

/// Raises the entry `key`'s expiry to `expires_ms` (DynamoDB's TTL attribute with it), its
/// value untouched; `false` when nothing was raised: an absent item, an expired one that
/// DynamoDB's TTL has not deleted yet (a touch must not bring it back), an item that is
/// not an entry (a lock, a tag row, a registration), or an entry that already expires at
/// `expires_ms` or later (the failed condition is that answer, not an error).
pub(crate) async fn renew(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    key: &ItemKey,
    expires_ms: u64,
) -> Result<bool, TierError> {
    let updated = sdk
        .update_item()
        .table_name(client.table())
        .set_key(Some(item::key(key)))
        .update_expression("SET #at = :at, #ms = :ms")
        .condition_expression("attribute_exists(#v) AND #ms > :now AND #ms < :ms")
        .expression_attribute_names("#v", VALUE)
        .expression_attribute_names("#at", EXPIRES_AT)
        .expression_attribute_names("#ms", EXPIRES_MS)
        .expression_attribute_values(":at", item::number(expires_ms.div_ceil(1000)))
        .expression_attribute_values(":ms", item::number(expires_ms))
        .expression_attribute_values(":now", item::number(item::now_ms()))
        .send()
        .await;
    client.conditional("UpdateItem (touch)", updated)
}
