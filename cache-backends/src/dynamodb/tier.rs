//! [`DynamoTier`]: the L2 tier on DynamoDB.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::store::{memberships_ttl, BoxFuture, RemoteEntry, RemoteTier, Scope};
use cache_core::{CacheError, TierError, TierErrorKind};

use super::batch::{delete_items, get_values, put_items};
use super::client::Client;
use super::item::{self, EXPIRES_MS, VALUE};
use super::layout::{self, ItemKey};
use super::options::DynamoOptions;
use super::registry::Registry;
use super::walk::{Cursors, Walk};
use super::{lock, tags, touch};

/// An L2 tier on a DynamoDB table: one item per entry, one partition per cache or
/// namespace (see the [module docs](super) for the layout and its costs).
///
/// Cheap to clone. Building never connects nor resolves credentials; the SDK client is
/// made on first use, on the backend's own runtime. Every operation is bounded by
/// `operation_timeout` (the SDK's one retry included).
///
/// ```no_run
/// use cache_backends::dynamodb::{DynamoOptions, DynamoTier};
/// use cache_core::store::RemoteTier;
/// use std::time::Duration;
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let tier = DynamoTier::new(DynamoOptions::new("cachet").region("eu-west-1"))?;
/// tier.set("app:users:42", b"bytes".to_vec(), Duration::from_secs(60)).await?;
/// assert_eq!(tier.get("app:users:42").await?, Some(b"bytes".to_vec()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DynamoTier {
    client: Arc<Client>,
    registry: Arc<Registry>,
    cursors: Arc<Cursors>,
}

impl DynamoTier {
    /// A tier for these options. Does not connect.
    pub fn new(opts: DynamoOptions) -> Result<Self, CacheError> {
        opts.validate()
            .map_err(|(field, why)| crate::builder_error(field, &why))?;
        Ok(Self {
            client: Client::new(opts),
            registry: Arc::default(),
            cursors: Arc::default(),
        })
    }

    /// Refuses a value over `max_value_size` before any request: not stored, and the
    /// caller (a cache) counts the error and carries on.
    fn check_size(&self, len: usize) -> Result<(), TierError> {
        let max = self.client.opts.max_value_size;
        if len > max {
            return Err(TierError::with_kind(
                format!(
                    "dynamodb: a value of {len} bytes is over max_value_size ({max} bytes; \
                     DynamoDB items hold at most 400 KB): not stored"
                ),
                TierErrorKind::Other,
            ));
        }
        Ok(())
    }

    /// Runs `op` on `key`'s item, with the expiry an item written now for `ttl` has, once
    /// the item's partition is registered to outlive it (so a clear finds the item).
    fn registered<T, F, Fut>(
        &self,
        key: ItemKey,
        ttl: Duration,
        op: F,
    ) -> BoxFuture<'static, Result<T, TierError>>
    where
        F: FnOnce(Arc<Client>, aws_sdk_dynamodb::Client, ItemKey, u64) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, TierError>> + Send + 'static,
        T: Send + 'static,
    {
        let registry = Arc::clone(&self.registry);
        Box::pin(self.client.run(move |client, sdk| async move {
            let expires_ms = item::expiry_ms(ttl);
            registry.ensure(&client, &sdk, &key.pk, expires_ms).await?;
            op(client, sdk, key, expires_ms).await
        }))
    }

    /// Deletes `items` in batches; an empty list costs no request.
    fn delete(
        &self,
        items: Result<Vec<ItemKey>, TierError>,
    ) -> BoxFuture<'static, Result<(), TierError>> {
        match items {
            Err(err) => failed(err),
            Ok(items) if items.is_empty() => Box::pin(async { Ok(()) }),
            Ok(items) => {
                Box::pin(self.client.run(move |client, sdk| async move {
                    delete_items(&client, &sdk, items).await
                }))
            }
        }
    }

    /// The attributes of an entry.
    fn entry(key: &ItemKey, value: Vec<u8>, expires_ms: u64) -> item::Attributes {
        let mut attrs = item::expiring(key, expires_ms);
        attrs.insert(VALUE.to_owned(), AttributeValue::B(value.into()));
        attrs
    }
}

impl fmt::Debug for DynamoTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoTier")
            .field("target", &self.client.target())
            .finish_non_exhaustive()
    }
}

/// An error before any request, as a ready future.
fn failed<'a, T: Send + 'a>(err: TierError) -> BoxFuture<'a, Result<T, TierError>> {
    Box::pin(async move { Err(err) })
}

impl RemoteTier for DynamoTier {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, TierError>> {
        let key = match layout::item_key(key) {
            Ok(key) => key,
            Err(err) => return failed(err),
        };
        Box::pin(self.client.run(move |client, sdk| async move {
            let out = sdk
                .get_item()
                .table_name(client.table())
                .set_key(Some(item::key(&key)))
                .consistent_read(true)
                .projection_expression("#v, #ms")
                .expression_attribute_names("#v", VALUE)
                .expression_attribute_names("#ms", EXPIRES_MS)
                .send()
                .await
                .map_err(|e| client.fault("GetItem", &e))?;
            let Some(attrs) = out.item().filter(|a| item::is_alive(a, item::now_ms())) else {
                // Absent, or expired and not yet deleted by DynamoDB's TTL.
                return Ok(None);
            };
            match attrs.get(VALUE) {
                Some(AttributeValue::B(bytes)) => Ok(Some(bytes.clone().into_inner())),
                // Not an entry of ours (a lock or a tag row under this key): a miss.
                _ => Ok(None),
            }
        }))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let key = match self
            .check_size(value.len())
            .and_then(|()| layout::item_key(key))
        {
            Ok(key) => key,
            Err(err) => return failed(err),
        };
        self.registered(key, ttl, |client, sdk, key, expires_ms| async move {
            sdk.put_item()
                .table_name(client.table())
                .set_item(Some(Self::entry(&key, value, expires_ms)))
                .send()
                .await
                .map_err(|e| client.fault("PutItem", &e))?;
            Ok(())
        })
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, TierError>> {
        let key = match layout::item_key(key) {
            Ok(key) => key,
            Err(err) => return failed(err),
        };
        // The partition's registration must outlive the renewed entry, as a write's.
        self.registered(key, ttl, |client, sdk, key, expires_ms| async move {
            touch::renew(&client, &sdk, &key, expires_ms).await
        })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, TierError>> {
        let items = match layout::item_keys(keys) {
            Ok(items) => items,
            Err(err) => return failed(err),
        };
        if items.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        Box::pin(self.client.run(move |client, sdk| async move {
            let found = get_values(&client, &sdk, items.iter().cloned()).await?;
            // A key asked twice reads the same item twice.
            Ok(items.iter().map(|k| found.get(k).cloned()).collect())
        }))
    }

    fn set_many<'a>(&'a self, entries: Vec<RemoteEntry>) -> BoxFuture<'a, Result<(), TierError>> {
        // Every value is checked before any request: an oversized one fails the batch
        // with nothing written.
        let items = match entries
            .iter()
            .map(|e| {
                self.check_size(e.value.len())
                    .and_then(|()| layout::item_key(&e.key))
            })
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(items) => items,
            Err(err) => return failed(err),
        };
        if items.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let registry = Arc::clone(&self.registry);
        Box::pin(self.client.run(move |client, sdk| async move {
            let items: Vec<(ItemKey, item::Attributes, u64)> = items
                .into_iter()
                .zip(entries)
                .map(|(key, e)| {
                    let expires_ms = item::expiry_ms(e.ttl);
                    let attrs = Self::entry(&key, e.value, expires_ms);
                    (key, attrs, expires_ms)
                })
                .collect();
            // Each partition registered once, for the longest-lived of its entries.
            let mut partitions: Vec<(&str, u64)> = Vec::new();
            for (key, _, expires_ms) in &items {
                match partitions.iter_mut().find(|(pk, _)| *pk == key.pk) {
                    Some((_, at)) => *at = (*at).max(*expires_ms),
                    None => partitions.push((&key.pk, *expires_ms)),
                }
            }
            for (pk, expires_ms) in partitions {
                registry.ensure(&client, &sdk, pk, expires_ms).await?;
            }
            let puts = items
                .into_iter()
                .map(|(key, attrs, _)| (key, attrs))
                .collect();
            put_items(&client, &sdk, puts).await
        }))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), TierError>> {
        self.delete(layout::item_keys(keys))
    }

    fn clear_scope<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), TierError>> {
        let items = match layout::scope_items(scope) {
            Ok(items) => items,
            Err(err) => return failed(err),
        };
        // Each Query and BatchWriteItem is bounded by operation_timeout; the whole is not
        // (a scope may hold many items).
        Box::pin(self.client.run(move |client, sdk| async move {
            let mut walk = Walk::new(items);
            while !walk.is_done() {
                let page = walk.step(&client, &sdk).await?;
                delete_items(&client, &sdk, page.items).await?;
            }
            Ok(())
        }))
    }

    fn describe(&self) -> String {
        format!("dynamodb {}", self.client.target())
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), TierError>> {
        // A strongly consistent read of a key no cachet item has: proves the endpoint,
        // the credentials, the table and the `GetItem` permission, and costs one read.
        let probe = ItemKey {
            pk: "~cachet".into(),
            sk: "~ping".into(),
        };
        Box::pin(self.client.run(move |client, sdk| async move {
            sdk.get_item()
                .table_name(client.table())
                .set_key(Some(item::key(&probe)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| client.fault("GetItem (ping)", &e))?;
            Ok(())
        }))
    }

    fn scan_scope<'a>(
        &'a self,
        scope: &'a Scope,
        cursor: u64,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>), TierError>> {
        let walk = if cursor == 0 {
            layout::scope_items(scope).map(Walk::new)
        } else {
            self.cursors.take(cursor)
        };
        let mut walk = match walk {
            Ok(walk) => walk,
            Err(err) => return failed(err),
        };
        let cursors = Arc::clone(&self.cursors);
        Box::pin(self.client.run(move |client, sdk| async move {
            let page = walk.step(&client, &sdk).await?;
            let next = if walk.is_done() {
                0
            } else {
                cursors.park(walk)
            };
            Ok((next, page.keys))
        }))
    }

    fn set_tagged<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tag_keys: &'a [String],
        tags_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let prepared = self
            .check_size(value.len())
            .and_then(|()| Ok((layout::item_key(key)?, tags::rows_of(key, tag_keys)?)));
        let (item_key, rows) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => return failed(err),
        };
        let key = key.to_owned();
        let registry = Arc::clone(&self.registry);
        Box::pin(self.client.run(move |client, sdk| async move {
            let expires_ms = item::expiry_ms(ttl);
            // The rows last the entry's full lifetime, which `touch` may renew it up to.
            let rows_expire_ms = item::expiry_ms(memberships_ttl(ttl, tags_ttl));
            for (pk, until) in tags::partitions(&item_key, expires_ms, &rows, rows_expire_ms) {
                registry.ensure(&client, &sdk, pk, until).await?;
            }
            let entry = Self::entry(&item_key, value, expires_ms);
            tags::write(&client, &sdk, entry, &key, &rows, rows_expire_ms).await
        }))
    }

    fn tagged_keys<'a>(
        &'a self,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TierError>> {
        if tag_keys.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let tag_keys = tag_keys.to_vec();
        Box::pin(
            self.client.run(move |client, sdk| async move {
                tags::members(&client, &sdk, &tag_keys).await
            }),
        )
    }

    fn delete_tagged<'a>(
        &'a self,
        keys: &'a [String],
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), TierError>> {
        self.delete(tags::items_to_delete(keys, tag_keys))
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let key = match layout::item_key(key) {
            Ok(key) => key,
            Err(err) => return failed(err),
        };
        let token = token.to_owned();
        // Registered so that purging the store finds it, as Redis' does.
        self.registered(key, ttl, |client, sdk, key, expires_ms| async move {
            lock::take(&client, &sdk, &key, &token, expires_ms).await
        })
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let key = match layout::item_key(key) {
            Ok(key) => key,
            Err(err) => return failed(err),
        };
        let token = token.to_owned();
        Box::pin(self.client.run(move |client, sdk| async move {
            lock::release(&client, &sdk, &key, &token).await
        }))
    }
}
