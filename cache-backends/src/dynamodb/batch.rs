//! Batched requests: `BatchGetItem` of at most 100 keys and `BatchWriteItem` of at most 25
//! puts or deletes per request; whatever DynamoDB leaves unprocessed (throttling, a
//! response over its size limit) is sent again with a back-off, a bounded number of
//! times.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest,
};
use cache_core::{TierError, TierErrorKind};

use super::client::Client;
use super::item::{self, Attributes, EXPIRES_MS, PK, SK, VALUE};
use super::layout::ItemKey;

/// DynamoDB's limit on one `BatchWriteItem`.
pub(crate) const BATCH: usize = 25;
/// DynamoDB's limit on one `BatchGetItem`.
pub(crate) const GET_BATCH: usize = 100;
/// How many times unprocessed items are sent again before the batch fails.
const RESENDS: u32 = 8;
const FIRST_PAUSE: Duration = Duration::from_millis(10);

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> TierError {
    TierError::with_kind(e.to_string(), TierErrorKind::Other)
}

/// The items' keys once each, in their first order (one request may not name an item
/// twice).
fn unique(items: impl IntoIterator<Item = ItemKey>) -> Vec<ItemKey> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

/// Deletes these items (duplicates allowed).
pub(crate) async fn delete_items(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    items: impl IntoIterator<Item = ItemKey>,
) -> Result<(), TierError> {
    let requests = unique(items)
        .iter()
        .map(|k| {
            DeleteRequest::builder()
                .set_key(Some(item::key(k)))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(build_error)
        })
        .collect::<Result<Vec<_>, _>>()?;
    write(client, sdk, requests, "deletes").await
}

/// Writes these items, each whole (`PutItem`'s semantics); an item listed twice is
/// written with its last attributes.
pub(crate) async fn put_items(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    items: Vec<(ItemKey, Attributes)>,
) -> Result<(), TierError> {
    let mut last = HashMap::with_capacity(items.len());
    for (i, (key, _)) in items.iter().enumerate() {
        last.insert(key.clone(), i);
    }
    let requests = items
        .into_iter()
        .enumerate()
        .filter(|(i, (key, _))| last.get(key) == Some(i))
        .map(|(_, (_, attrs))| {
            PutRequest::builder()
                .set_item(Some(attrs))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
                .map_err(build_error)
        })
        .collect::<Result<Vec<_>, _>>()?;
    write(client, sdk, requests, "puts").await
}

/// Sends `first`, then — after a back-off — whatever each answer leaves unprocessed, at
/// most [`RESENDS`] times. `send` sends one request's worth and answers what it got and
/// what is left; `request` and `what` name them in the error of a batch still unprocessed
/// after the last resend (throttled).
async fn resending<P, T, F, Fut>(
    request: &str,
    what: &str,
    first: Vec<P>,
    mut send: F,
) -> Result<Vec<T>, TierError>
where
    F: FnMut(Vec<P>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Vec<P>), TierError>>,
{
    let mut got = Vec::new();
    let mut pending = first;
    let mut pause = FIRST_PAUSE;
    for attempt in 0..=RESENDS {
        let (answered, left) = send(pending).await?;
        got.extend(answered);
        if left.is_empty() {
            break;
        }
        if attempt == RESENDS {
            return Err(TierError::new(format!(
                "dynamodb {request}: {} {what} still unprocessed after {RESENDS} resends (throttled)",
                left.len()
            )));
        }
        pending = left;
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    Ok(got)
}

/// Sends `requests` (each naming a distinct item) in `BatchWriteItem`s of [`BATCH`],
/// sending again what DynamoDB left unprocessed.
async fn write(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    requests: Vec<WriteRequest>,
    what: &str,
) -> Result<(), TierError> {
    for chunk in requests.chunks(BATCH) {
        resending(
            "BatchWriteItem",
            what,
            chunk.to_vec(),
            |pending| async move {
                let out = sdk
                    .batch_write_item()
                    .request_items(client.table(), pending)
                    .send()
                    .await
                    .map_err(|e| client.fault("BatchWriteItem", &e))?;
                let left = out
                    .unprocessed_items()
                    .and_then(|m| m.get(client.table()))
                    .cloned()
                    .unwrap_or_default();
                Ok((Vec::<()>::new(), left))
            },
        )
        .await?;
    }
    Ok(())
}

/// The live entries' values among `keys` (duplicates allowed), read strongly consistent in
/// `BatchGetItem`s of [`GET_BATCH`]; keys absent, expired or not an entry are missing
/// from the map.
pub(crate) async fn get_values(
    client: &Client,
    sdk: &aws_sdk_dynamodb::Client,
    keys: impl IntoIterator<Item = ItemKey>,
) -> Result<HashMap<ItemKey, Vec<u8>>, TierError> {
    let mut found = HashMap::new();
    for chunk in unique(keys).chunks(GET_BATCH) {
        let first: Vec<Attributes> = chunk.iter().map(item::key).collect();
        let values = resending("BatchGetItem", "keys", first, |pending| async move {
            let wanted = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .projection_expression("#pk, #sk, #v, #ms")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#v", VALUE)
                .expression_attribute_names("#ms", EXPIRES_MS)
                .build()
                .map_err(build_error)?;
            let out = sdk
                .batch_get_item()
                .request_items(client.table(), wanted)
                .send()
                .await
                .map_err(|e| client.fault("BatchGetItem", &e))?;
            let now = item::now_ms();
            let items = out.responses().and_then(|r| r.get(client.table()));
            let values = items
                .into_iter()
                .flatten()
                .filter_map(|attrs| entry_value(attrs, now))
                .collect();
            let left = out
                .unprocessed_keys()
                .and_then(|m| m.get(client.table()))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            Ok((values, left))
        })
        .await?;
        found.extend(values);
    }
    Ok(found)
}

/// The key and value of a live entry read at `now`; `None` for an expired item (not yet
/// deleted by DynamoDB's TTL) or an item that is not an entry (a lock or a tag row).
fn entry_value(attrs: &Attributes, now: u64) -> Option<(ItemKey, Vec<u8>)> {
    if !item::is_alive(attrs, now) {
        return None;
    }
    let key = ItemKey {
        pk: item::string(attrs, PK)?.to_owned(),
        sk: item::string(attrs, SK)?.to_owned(),
    };
    match attrs.get(VALUE) {
        Some(AttributeValue::B(bytes)) => Some((key, bytes.clone().into_inner())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pk: &str, sk: &str) -> ItemKey {
        ItemKey {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    #[test]
    fn only_live_entries_are_values() {
        let k = key("app:users", ":1");
        let mut attrs = item::expiring(&k, 2_000);
        assert_eq!(
            entry_value(&attrs, 1_000),
            None,
            "a lock or tag row: no value"
        );
        attrs.insert(VALUE.into(), AttributeValue::B(b"v".to_vec().into()));
        assert_eq!(entry_value(&attrs, 1_000), Some((k, b"v".to_vec())));
        assert_eq!(
            entry_value(&attrs, 2_000),
            None,
            "expired at its millisecond"
        );
        attrs.remove(PK);
        assert_eq!(entry_value(&attrs, 1_000), None, "no key: not ours");
    }

    #[tokio::test]
    async fn what_is_left_unprocessed_is_sent_again_until_none_is() {
        let mut sent: Vec<Vec<u32>> = Vec::new();
        let got = resending(
            "BatchGetItem",
            "keys",
            vec![1, 2, 3],
            |pending: Vec<u32>| {
                sent.push(pending.clone());
                // each answer serves the first item it was sent and leaves the rest
                let (first, rest) = pending.split_at(1);
                let first = first.to_vec();
                let rest = rest.to_vec();
                async move { Ok((first, rest)) }
            },
        )
        .await
        .unwrap();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(sent, [vec![1, 2, 3], vec![2, 3], vec![3]]);
    }

    #[tokio::test]
    async fn a_batch_still_unprocessed_after_the_last_resend_fails() {
        let mut sends = 0;
        let err = resending("BatchWriteItem", "puts", vec![7u32, 8], |pending| {
            sends += 1;
            async move { Ok((Vec::<()>::new(), pending)) }
        })
        .await
        .unwrap_err();
        assert_eq!(sends, RESENDS + 1, "the first send and every resend");
        let why = err.to_string();
        assert!(
            why.contains("BatchWriteItem: 2 puts still unprocessed after 8 resends"),
            "{why}"
        );
    }

    #[test]
    fn duplicates_are_named_once_in_their_first_order() {
        let keys = unique([key("a", ":1"), key("b", ":2"), key("a", ":1")]);
        assert_eq!(keys, [key("a", ":1"), key("b", ":2")]);
    }
}
