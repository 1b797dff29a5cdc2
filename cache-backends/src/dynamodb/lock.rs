//! The distributed lock on DynamoDB: a conditional `PutItem` takes it (when absent or
//! expired), a conditional `DeleteItem` releases it (only with the holder's token).
//!
//! Expiry is checked by the condition, against the writer's clock (`expires_ms`), so a
//! crashed holder's lock is free once its time is up, whether or not DynamoDB's TTL has
//! deleted it yet. Instances' clocks should agree to well within `lock_timeout`.

use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::TierError;

use super::client::Client;
use super::item::{self, EXPIRES_MS, PK, TOKEN};
use super::layout::ItemKey;

/// Takes the lock for `token` until `expires_ms` unless a live lock is there.
pub(crate) async fn take(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    key: &ItemKey,
    token: &str,
    expires_ms: u64,
) -> Result<bool, TierError> {
    let mut attrs = item::expiring(key, expires_ms);
    attrs.insert(TOKEN.to_owned(), AttributeValue::S(token.to_owned()));
    let put = sdk
        .put_item()
        .table_name(client.table())
        .set_item(Some(attrs))
        .condition_expression("attribute_not_exists(#pk) OR #ms <= :now")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#ms", EXPIRES_MS)
        .expression_attribute_values(":now", item::number(item::now_ms()))
        .send()
        .await;
    client.conditional("PutItem (lock)", put)
}

/// Releases the lock if `token` holds it and it has not expired (compare and delete in
/// one conditional request).
pub(crate) async fn release(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    key: &ItemKey,
    token: &str,
) -> Result<bool, TierError> {
    let deleted = sdk
        .delete_item()
        .table_name(client.table())
        .set_key(Some(item::key(key)))
        .condition_expression("#token = :token AND #ms > :now")
        .expression_attribute_names("#token", TOKEN)
        .expression_attribute_names("#ms", EXPIRES_MS)
        .expression_attribute_values(":token", AttributeValue::S(token.to_owned()))
        .expression_attribute_values(":now", item::number(item::now_ms()))
        .send()
        .await;
    client.conditional("DeleteItem (unlock)", deleted)
}
