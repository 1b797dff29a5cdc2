//! Walking a scope: the `Query` pages of its partition and of every partition registered
//! under it (namespaces, or a store's caches), or of its sort-key prefixes in one
//! partition (see [`layout::scope_items`]), one bounded page per step. Clearing
//! deletes each page; `scan_scope` hands pages out behind a cursor.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::{TierError, TierErrorKind};

use super::client::Client;
use super::item::{self, Attributes, CHILD, EXPIRES_MS, MEMBER, PK, SK};
use super::layout::{self, ItemKey, ScopeItems, SENTINEL};

/// How many items one `Query` page asks for.
const PAGE: i32 = 500;
/// How many unfinished scans the tier keeps; past it the oldest is forgotten (its next
/// step errors, asking to start again).
const OPEN_SCANS: usize = 64;

/// What one step found.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// Every item of the scope that is not a registration: what clearing deletes.
    pub(crate) items: Vec<ItemKey>,
    /// The stored keys of the scope's live entries (not tag rows, not expired): what a
    /// scan lists.
    pub(crate) keys: Vec<String>,
}

/// One partition to read, or the part of it under a sort-key prefix.
#[derive(Debug)]
struct Target {
    partition: String,
    sk_prefix: Option<String>,
    /// The partition the walk started from: its sentinel (the key equal to the scope's
    /// base) is outside the scope.
    top: bool,
}

/// Where a walk stands: the target being read and where its next page starts, and the
/// targets still to read.
#[derive(Debug)]
pub(crate) struct Walk {
    pending: Vec<Target>,
    current: Option<(Target, Option<Attributes>)>,
}

impl Walk {
    /// A walk of the items of a scope.
    pub(crate) fn new(items: ScopeItems) -> Self {
        let pending = match items {
            ScopeItems::Tree { partition } => vec![Target {
                partition,
                sk_prefix: None,
                top: true,
            }],
            ScopeItems::Prefixed {
                partition,
                prefixes,
            } => prefixes
                .into_iter()
                .map(|prefix| Target {
                    partition: partition.clone(),
                    sk_prefix: Some(prefix),
                    top: false,
                })
                .collect(),
        };
        Self {
            pending,
            current: None,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.pending.is_empty() && self.current.is_none()
    }

    /// Reads one page.
    pub(crate) async fn step(
        &mut self,
        client: &Client,
        sdk: &aws_sdk_dynamodb::Client,
    ) -> Result<Page, TierError> {
        let (target, start) = match self.current.take() {
            Some(current) => current,
            None => match self.pending.pop() {
                Some(target) => (target, None),
                None => return Ok(Page::default()),
            },
        };
        let mut query = sdk
            .query()
            .table_name(client.table())
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#child", CHILD)
            .expression_attribute_names("#member", MEMBER)
            .expression_attribute_names("#ms", EXPIRES_MS)
            .expression_attribute_values(":pk", AttributeValue::S(target.partition.clone()))
            .projection_expression("#sk, #child, #member, #ms")
            .consistent_read(true)
            .limit(PAGE)
            .set_exclusive_start_key(start);
        query = match &target.sk_prefix {
            Some(prefix) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone())),
            None => query.key_condition_expression("#pk = :pk"),
        };
        let out = query.send().await.map_err(|e| client.fault("Query", &e))?;
        let now = item::now_ms();
        let mut page = Page::default();
        for attrs in out.items() {
            let Some(sk) = item::string(attrs, SK) else {
                continue;
            };
            if attrs.contains_key(CHILD) {
                if target.sk_prefix.is_none() {
                    self.pending.push(Target {
                        partition: layout::stored_key(&target.partition, sk),
                        sk_prefix: None,
                        top: false,
                    });
                }
                continue;
            }
            if target.top && sk == SENTINEL {
                continue;
            }
            if !attrs.contains_key(MEMBER) && item::is_alive(attrs, now) {
                page.keys.push(layout::stored_key(&target.partition, sk));
            }
            page.items.push(ItemKey {
                pk: target.partition.clone(),
                sk: sk.to_owned(),
            });
        }
        if let Some(next) = out.last_evaluated_key() {
            self.current = Some((target, Some(next.clone())));
        }
        Ok(page)
    }
}

/// The unfinished scans of a tier, by cursor.
#[derive(Default)]
pub(crate) struct Cursors {
    open: Mutex<(u64, BTreeMap<u64, Walk>)>,
}

impl Cursors {
    /// Keeps a walk for later; its cursor (never 0).
    pub(crate) fn park(&self, walk: Walk) -> u64 {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.0 = open.0.wrapping_add(1).max(1);
        let id = open.0;
        if open.1.len() >= OPEN_SCANS {
            open.1.pop_first();
        }
        open.1.insert(id, walk);
        id
    }

    /// Takes back the walk of a cursor.
    pub(crate) fn take(&self, cursor: u64) -> Result<Walk, TierError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.1.remove(&cursor).ok_or_else(|| {
            TierError::with_kind(
                format!(
                    "dynamodb: no scan has cursor {cursor} (more than {OPEN_SCANS} scans were \
                     started since, or it finished): start again from 0"
                ),
                TierErrorKind::Other,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_never_zero_and_forget_the_oldest() {
        let c = Cursors::default();
        let walk = |p: &str| {
            Walk::new(ScopeItems::Tree {
                partition: p.into(),
            })
        };
        let first = c.park(walk("a"));
        assert_ne!(first, 0);
        for _ in 0..OPEN_SCANS {
            c.park(walk("b"));
        }
        assert!(c.take(first).is_err());
        let last = c.park(walk("c"));
        assert!(!c.take(last).unwrap().is_done());
        assert!(c.take(last).is_err());
    }
}
