//! Where a stored key lives in the table: its partition key (`pk`) and sort key (`sk`),
//! and how a scope finds its keys.
//!
//! # The layout
//!
//! A stored key is `{prefix}:{cache}{#ns}*:{key}`. Its item is
//!
//! | item | `pk` | `sk` |
//! | --- | --- | --- |
//! | an entry `shop:users#eu:42` | `shop:users#eu` | `:42` |
//! | a tag row (tag `sale` lists `shop:products:7`) | `shop:products` | `:=tag:sale=shop:products:7` |
//! | a lock `shop:~lock:users:42` | `shop:~lock:users` | `:42` |
//! | a key with no `:` past its cache path (`shop:users#eu`) | `shop:users#eu` | `~` |
//! | the registration of partition `shop:users` | `shop` | `:users` |
//! | the registration of partition `shop:users#eu` | `shop:users` | `#eu` |
//!
//! So one partition holds one cache (or one namespace of it), and `clear()` is a `Query`
//! of that partition and batched deletes, never a table `Scan`. Clearing a cache also
//! clears its namespaces, and purging a store clears every cache: those partitions are
//! found through *registration* items in the parent partition, which the tier writes
//! before the first item of a partition (see [`super::registry`]).
//!
//! # Text, not names
//!
//! Partitions are cut from the stored key's text at `:` and `#`, never by unescaping
//! names: a scope is defined by text too ([`Scope::contains`]: the base followed by `:`
//! or `#`), so the layout finds exactly a scope's keys whatever the names hold. The
//! *partition* of a key is its text up to the second `:` (the first ends the prefix;
//! for a lock key, `{prefix}:~lock:`, up to the third); a key without one is a partition
//! of its own, held by the *sentinel* item `sk = "~"`. The *parent* of a partition is
//! its text up to its last `#` past the prefix, or else the prefix (the store's root);
//! lock partitions hang from the root directly. Then for a scope with base `B`:
//!
//! * if `B` has a second `:` (e.g. `shop:users#a:b`), every key `B:…` or `B#…` has the
//!   partition `B` has up to that `:`, with a sort key starting with the rest of `B` and
//!   `:` or `#`: two prefix `Query`s of one partition find them;
//! * otherwise every key `B:…` is in partition `B`, and every key `B#…` in a partition
//!   `B#…`, registered in `B` or (nested) in a partition registered there: a walk down
//!   the registrations from `B` finds them. `B`'s own sentinel (the key `B`) is not in
//!   the scope, the sentinels below it are.
//!
//! # Why keys never collide
//!
//! For entries, locks and tag rows `pk + sk` is the stored key (an entry, a lock, a
//! tag's key followed by `=` and the member), and a sentinel's `pk` is the key itself.
//! Sort keys of entries and tag rows start with `:`, registrations of namespaces with
//! `#`, sentinels are `~`; registrations of caches (`:users`) live in a store's root
//! partition, which holds no entry (an entry's partition holds a `:`). A tag row's `sk`
//! holds its member, and is read back only when it is exactly the tag's prefix plus the
//! member it records, so no row is taken for another tag's.
//!
//! A prefix holds no `:` (configuration and builders refuse one).

use cache_core::store::{Scope, LOCK_MARK, TAG_MARK};
use cache_core::{TierError, TierErrorKind};

/// The sort key of a key with no `:` past its partition.
pub(crate) const SENTINEL: &str = "~";

/// DynamoDB's limits on key attributes, in bytes.
const MAX_PK: usize = 2048;
const MAX_SK: usize = 1024;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ItemKey {
    pub(crate) pk: String,
    pub(crate) sk: String,
}

/// Where the partition of `text` ends: at its second `:` (its third for a lock key), or
/// `None` when it has none.
fn partition_end(text: &str) -> Option<usize> {
    let first = text.find(':')?;
    // `{prefix}:~lock:` ([`LOCK_MARK`] from the prefix's `:`) belongs to the partition.
    let from = if text[first..].starts_with(LOCK_MARK) {
        first + LOCK_MARK.len()
    } else {
        first + 1
    };
    text[from..].find(':').map(|at| from + at)
}

fn checked(pk: &str, sk: &str, key: &str) -> Result<ItemKey, TierError> {
    if pk.is_empty() {
        return Err(TierError::with_kind(
            "dynamodb: an empty stored key has no item",
            TierErrorKind::Other,
        ));
    }
    if pk.len() > MAX_PK || sk.len() > MAX_SK {
        return Err(TierError::with_kind(
            format!(
                "dynamodb: the key `{key}` is too long for DynamoDB (partition key at most \
                 {MAX_PK} bytes, sort key at most {MAX_SK})"
            ),
            TierErrorKind::Other,
        ));
    }
    Ok(ItemKey {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
    })
}

/// The item of a stored key (an entry, a lock or a tag key).
pub(crate) fn item_key(key: &str) -> Result<ItemKey, TierError> {
    match partition_end(key) {
        Some(at) => checked(&key[..at], &key[at..], key),
        None => checked(key, SENTINEL, key),
    }
}

/// The items of stored keys, in their order; the first key that has none fails them all.
pub(crate) fn item_keys(keys: &[String]) -> Result<Vec<ItemKey>, TierError> {
    keys.iter().map(|k| item_key(k)).collect()
}

/// The stored key of an item of partition `pk`.
pub(crate) fn stored_key(pk: &str, sk: &str) -> String {
    if sk == SENTINEL {
        return pk.to_owned();
    }
    let mut key = String::with_capacity(pk.len() + sk.len());
    key.push_str(pk);
    key.push_str(sk);
    key
}

/// The partition and `sk` prefix of every row of the tag of `tag_key`
/// (`{base}:=tag:{tag}`): `{sk of the tag key}=`.
pub(crate) fn tag_rows(tag_key: &str) -> Result<ItemKey, TierError> {
    let at = partition_end(tag_key)
        .filter(|&at| tag_key[at..].starts_with(TAG_MARK))
        .ok_or_else(|| {
            TierError::with_kind(
                format!("dynamodb: `{tag_key}` is not a tag key ({{base}}:=tag:{{tag}})"),
                TierErrorKind::Other,
            )
        })?;
    let mut rows = tag_key[at..].to_owned();
    rows.push('=');
    checked(&tag_key[..at], &rows, tag_key)
}

/// The tag row recording that `member` was written with the tag of `tag_key`.
pub(crate) fn tag_row(tag_key: &str, member: &str) -> Result<ItemKey, TierError> {
    let mut row = tag_rows(tag_key)?;
    row.sk.push_str(member);
    checked(&row.pk, &row.sk, tag_key)
}

/// Where a partition is registered: its parent partition and its `sk` there, so that
/// `parent + sk == partition`. `None` for a store's root (`{prefix}`).
pub(crate) fn registration(partition: &str) -> Option<ItemKey> {
    let first = partition.find(':')?;
    let past_prefix = &partition[first + 1..];
    let cut = if partition[first..].starts_with(LOCK_MARK) {
        // Locks are reached from the root only (purging a store).
        first
    } else {
        past_prefix.rfind('#').map_or(first, |at| first + 1 + at)
    };
    Some(ItemKey {
        pk: partition[..cut].to_owned(),
        sk: partition[cut..].to_owned(),
    })
}

/// Where a scope's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScopeItems {
    /// In partition `partition` and every partition registered below it.
    Tree { partition: String },
    /// In `partition`, with a sort key starting with one of `prefixes`.
    Prefixed {
        partition: String,
        prefixes: [String; 2],
    },
}

/// Where the keys of `scope` are (see the module docs).
pub(crate) fn scope_items(scope: &Scope) -> Result<ScopeItems, TierError> {
    let base = scope.base();
    if base.is_empty() {
        return Err(TierError::with_kind(
            "dynamodb: the empty scope (every key of every store) is not cleared here",
            TierErrorKind::Other,
        ));
    }
    Ok(match partition_end(base) {
        Some(at) => ScopeItems::Prefixed {
            partition: base[..at].to_owned(),
            // The scope's starts, past the partition: the sort keys of its items.
            prefixes: scope.starts().map(|start| start[at..].to_owned()),
        },
        None => ScopeItems::Tree {
            partition: base.to_owned(),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(key: &str) -> (String, String) {
        let k = item_key(key).unwrap();
        (k.pk, k.sk)
    }

    fn p(pk: &str, sk: &str) -> (String, String) {
        (pk.to_owned(), sk.to_owned())
    }

    #[test]
    fn keys_split_at_their_second_colon() {
        assert_eq!(parts("shop:users:42"), p("shop:users", ":42"));
        assert_eq!(parts("shop:users:42:alice"), p("shop:users", ":42:alice"));
        assert_eq!(parts("shop:users:"), p("shop:users", ":"));
        assert_eq!(parts("shop:users#eu:42"), p("shop:users#eu", ":42"));
        assert_eq!(parts("shop:users#eu#b2b:42"), p("shop:users#eu#b2b", ":42"));
        assert_eq!(parts(r"shop:orders\:eu:1"), p(r"shop:orders\", r":eu:1"));
        assert_eq!(parts("shop:~lock:users:42"), p("shop:~lock:users", ":42"));
        assert_eq!(
            parts("shop:~lock:users#eu:42"),
            p("shop:~lock:users#eu", ":42")
        );
        assert_eq!(
            parts("shop:products:=tag:sale"),
            p("shop:products", ":=tag:sale")
        );
        // keys with no entry part are sentinels of their own partition
        assert_eq!(parts("shop:users#eu"), p("shop:users#eu", SENTINEL));
        assert_eq!(parts("shop"), p("shop", SENTINEL));
        assert_eq!(parts("shop:~lock:x"), p("shop:~lock:x", SENTINEL));
        assert!(item_key("").is_err());
        assert!(item_key(&format!("s:c:{}", "k".repeat(1100))).is_err());
        for key in ["shop:users:42", "shop:users#eu", "shop", "shop:~lock:u:1"] {
            let k = item_key(key).unwrap();
            assert_eq!(stored_key(&k.pk, &k.sk), key);
        }
    }

    #[test]
    fn tag_rows_hold_their_member() {
        let row = tag_row("shop:products:=tag:sale", "shop:products:7").unwrap();
        assert_eq!(row.pk, "shop:products");
        assert_eq!(row.sk, ":=tag:sale=shop:products:7");
        let rows = tag_rows("shop:products:=tag:sale").unwrap();
        assert_eq!(rows.sk, ":=tag:sale=");
        assert!(row.sk.starts_with(&rows.sk));
        // an escaped `=` in a tag keeps its rows apart from a shorter tag's
        let other = tag_row(r"shop:products:=tag:sale\=x", "shop:products:7").unwrap();
        assert!(!other.sk.starts_with(&rows.sk));
        assert!(tag_rows("shop:products:7").is_err());
        assert!(tag_rows("shop:products").is_err());
    }

    #[test]
    fn partitions_register_in_their_parent() {
        let reg = |p: &str| registration(p).map(|k| (k.pk, k.sk));
        assert_eq!(reg("shop:users"), Some(p("shop", ":users")));
        assert_eq!(reg("shop:users#eu"), Some(p("shop:users", "#eu")));
        assert_eq!(reg("shop:users#eu#b2b"), Some(p("shop:users#eu", "#b2b")));
        assert_eq!(reg(r"shop:users#a\#b"), Some(p(r"shop:users#a\", "#b")));
        assert_eq!(
            reg("shop:~lock:users#eu"),
            Some(p("shop", ":~lock:users#eu"))
        );
        assert_eq!(reg("shop"), None);
        for key in [
            "shop:users:1",
            "shop:users#eu:1",
            "shop:users#a#b:1",
            "s:~lock:c:1",
        ] {
            let pk = item_key(key).unwrap().pk;
            let r = registration(&pk).unwrap();
            assert_eq!(stored_key(&r.pk, &r.sk), pk);
        }
    }

    #[test]
    fn scopes_are_trees_or_prefixes_of_one_partition() {
        for tree in ["shop", "shop:users", "shop:users#eu", r"shop:a\"] {
            assert_eq!(
                scope_items(&Scope::new(tree)).unwrap(),
                ScopeItems::Tree {
                    partition: tree.into()
                }
            );
        }
        assert_eq!(
            scope_items(&Scope::new("shop:users#a:b")).unwrap(),
            ScopeItems::Prefixed {
                partition: "shop:users#a".into(),
                prefixes: [":b:".into(), ":b#".into()],
            }
        );
        assert!(scope_items(&Scope::new("")).is_err());
    }
}
