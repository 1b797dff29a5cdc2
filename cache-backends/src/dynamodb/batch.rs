//! Batched deletes: `BatchWriteItem` of at most 25 deletes per request, the items
//! DynamoDB left unprocessed (throttling) sent again with a back-off.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use cache_core::{TierError, TierErrorKind};

use super::client::Client;
use super::item;
use super::layout::ItemKey;

/// DynamoDB's limit on one `BatchWriteItem`.
pub(crate) const BATCH: usize = 25;
/// How many times unprocessed items are sent again before the delete fails.
const RESENDS: u32 = 8;
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// Deletes these items (duplicates allowed: one request may not name an item twice).
pub(crate) async fn delete_items(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    items: impl IntoIterator<Item = ItemKey>,
) -> Result<(), TierError> {
    let mut seen = HashSet::new();
    let unique: Vec<ItemKey> = items
        .into_iter()
        .filter(|k| seen.insert(k.clone()))
        .collect();
    for chunk in unique.chunks(BATCH) {
        let mut requests = chunk
            .iter()
            .map(|k| {
                DeleteRequest::builder()
                    .set_key(Some(item::key(k)))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| TierError::with_kind(e.to_string(), TierErrorKind::Other))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut pause = FIRST_PAUSE;
        for attempt in 0..=RESENDS {
            let out = sdk
                .batch_write_item()
                .request_items(client.table(), requests)
                .send()
                .await
                .map_err(|e| client.fault("BatchWriteItem", &e))?;
            requests = out
                .unprocessed_items()
                .and_then(|m| m.get(client.table()))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                break;
            }
            if attempt == RESENDS {
                return Err(TierError::new(format!(
                    "dynamodb BatchWriteItem: {} deletes still unprocessed after {RESENDS} resends (throttled)",
                    requests.len()
                )));
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    Ok(())
}
