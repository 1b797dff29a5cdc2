//! Where a stored key lives in the table: its partition key (`pk`) and sort key (`sk`).
//!
//! # The layout
//!
//! A stored key is `{prefix}:{cache}{#ns}*:{key}` (names escaped as keys are, see
//! [`cache_core::key`]). Its item is
//!
//! | item | `pk` | `sk` |
//! | --- | --- | --- |
//! | an entry `shop:users#eu:42` | `shop:users#eu` | `:42` |
//! | a tag index row (tag `sale` lists `shop:products:7`) | `shop:products` | `:=tag:sale=shop:products:7` |
//! | a lock `shop:~lock:users:42` | `shop:~lock:users` | `:42` |
//! | the registration of a cache partition | `shop` | `:users` |
//! | the registration of a namespace partition | `shop:users` | `#eu` |
//!
//! So one partition holds one cache (or one namespace of it), and `clear()` is a `Query`
//! of that partition and batched deletes, never a table `Scan`. Clearing a cache also
//! clears its namespaces, and purging a store clears every cache: those partitions are
//! found through *registration* items in the parent partition (the store's `{prefix}`,
//! or the cache's), which the tier writes before the first entry of a partition (see
//! [`super::registry`]).
//!
//! # Why keys never collide
//!
//! * For entries, locks and tag rows `pk + sk` is the stored key itself (an entry, a
//!   lock) or the tag key followed by `=` and the member (a tag row), so distinct keys
//!   are distinct items.
//! * An entry's `sk` starts with `:`, a namespace registration's with `#`: they never
//!   meet in one partition. Registrations of caches live in the `{prefix}` partition,
//!   where no entry is (an entry's partition always holds a cache name).
//! * A tag row's `sk` is `:=tag:{escaped tag}=`…: no encoded key starts with an
//!   unescaped `=`, so no entry's `sk` is a tag row's, and the escaped tag has no
//!   unescaped `=`, so the rows of one tag never start with another tag's row prefix.
//! * Lock partitions are `{prefix}:~lock:`…: a cache name is escaped, so no cache
//!   partition starts with an unescaped `~`.
//!
//! The prefix must hold no `:` (configuration refuses one): it is read up to the first
//! `:`. A stored key of another shape is refused with an error, never guessed at.

use cache_core::key::read_escaped;
use cache_core::store::Scope;
use cache_core::{TierError, TierErrorKind};

/// The part after a prefix that marks a lock key (see `cache_core`'s lock module).
const LOCK_MARK: &str = "~lock:";
/// The start of a tag key's part past its cache path.
const TAG_MARK: &str = ":=tag:";

/// DynamoDB's limits on key attributes, in bytes.
const MAX_PK: usize = 2048;
const MAX_SK: usize = 1024;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ItemKey {
    pub(crate) pk: String,
    pub(crate) sk: String,
}

/// Where a stored key's partition ends: `(pk, sk)` with `pk + sk == key`.
fn split(key: &str) -> Option<(&str, &str)> {
    let prefix_end = key.find(':')?;
    let mut rest = &key[prefix_end + 1..];
    if let Some(after) = rest.strip_prefix(LOCK_MARK) {
        rest = after;
    }
    let (_cache, mut rest) = read_escaped(rest);
    while let Some(ns) = rest.strip_prefix('#') {
        rest = read_escaped(ns).1;
    }
    // `rest` may be `:` alone: the empty string is a key too.
    if !rest.starts_with(':') {
        return None;
    }
    let at = key.len() - rest.len();
    Some((&key[..at], &key[at..]))
}

fn malformed(key: &str) -> TierError {
    TierError::with_kind(
        format!(
            "dynamodb: `{key}` is not a stored key of cachet's layout \
             ({{prefix}}:{{cache}}[#namespace]:{{key}}, the prefix without `:`)"
        ),
        TierErrorKind::Other,
    )
}

fn checked(pk: &str, sk: &str, key: &str) -> Result<ItemKey, TierError> {
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
    let (pk, sk) = split(key).ok_or_else(|| malformed(key))?;
    checked(pk, sk, key)
}

/// The stored key of an item: its `pk` and `sk` joined.
pub(crate) fn stored_key(pk: &str, sk: &str) -> String {
    let mut key = String::with_capacity(pk.len() + sk.len());
    key.push_str(pk);
    key.push_str(sk);
    key
}

/// The tag row recording that `member` was written with the tag of `tag_key`.
pub(crate) fn tag_row(tag_key: &str, member: &str) -> Result<ItemKey, TierError> {
    let tag = tag_rows(tag_key)?;
    let mut sk = tag.sk;
    sk.push_str(member);
    checked(&tag.pk, &sk, tag_key)
}

/// The partition and `sk` prefix of every row of the tag of `tag_key`
/// (`{base}:=tag:{tag}`): `{sk of the tag key}=`.
pub(crate) fn tag_rows(tag_key: &str) -> Result<ItemKey, TierError> {
    let (pk, sk) = split(tag_key).ok_or_else(|| malformed(tag_key))?;
    if !sk.starts_with(TAG_MARK) {
        return Err(malformed(tag_key));
    }
    let mut rows = sk.to_owned();
    rows.push('=');
    checked(pk, &rows, tag_key)
}

/// Where a partition is registered: its parent partition and its `sk` there, so that
/// `parent + sk == partition`. `None` for a store's root (`{prefix}`), for lock
/// partitions (locks expire by themselves and are never cleared by scope), and for
/// anything that is no partition of cachet's.
pub(crate) fn registration(partition: &str) -> Option<ItemKey> {
    let prefix_end = partition.find(':')?;
    let rest = &partition[prefix_end + 1..];
    if rest.starts_with(LOCK_MARK) {
        return None;
    }
    let (_cache, after_cache) = read_escaped(rest);
    if after_cache.is_empty() {
        // `{prefix}:{cache}` is registered in `{prefix}` as `:{cache}`.
        return Some(ItemKey {
            pk: partition[..prefix_end].to_owned(),
            sk: partition[prefix_end..].to_owned(),
        });
    }
    // `...#ns` is registered in `...` as `#ns`: find the last namespace segment.
    let mut at = partition.len() - after_cache.len();
    let mut rest = after_cache;
    let mut last = None;
    while let Some(ns) = rest.strip_prefix('#') {
        last = Some(at);
        rest = read_escaped(ns).1;
        at = partition.len() - rest.len();
    }
    let last = last.filter(|_| rest.is_empty())?;
    Some(ItemKey {
        pk: partition[..last].to_owned(),
        sk: partition[last..].to_owned(),
    })
}

/// The partition a scope's keys start from: its base, which is a store's root
/// (`{prefix}`), a cache or a namespace. Errors for a base of another shape.
pub(crate) fn scope_partition(scope: &Scope) -> Result<String, TierError> {
    let base = scope.base();
    let fits = !base.is_empty()
        && match base.find(':') {
            None => true,
            Some(_) => registration(base).is_some(),
        };
    if fits {
        Ok(base.to_owned())
    } else {
        Err(TierError::with_kind(
            format!(
                "dynamodb: `{base}` is not a scope of cachet's layout \
                 ({{prefix}}, {{prefix}}:{{cache}} or {{prefix}}:{{cache}}#namespace, \
                 the prefix without `:`)"
            ),
            TierErrorKind::Other,
        ))
    }
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
    fn entries_locks_and_tags_split_at_their_cache_path() {
        assert_eq!(parts("shop:users:42"), p("shop:users", ":42"));
        assert_eq!(parts("shop:users:42:alice"), p("shop:users", ":42:alice"));
        assert_eq!(parts("shop:users#eu:42"), p("shop:users#eu", ":42"));
        assert_eq!(parts("shop:users#eu#b2b:42"), p("shop:users#eu#b2b", ":42"));
        // escaped names keep their `:` and `#`
        assert_eq!(
            parts(r"shop:orders\:eu#org\#1:a\:b"),
            p(r"shop:orders\:eu#org\#1", r":a\:b")
        );
        assert_eq!(parts("shop:~lock:users:42"), p("shop:~lock:users", ":42"));
        assert_eq!(
            parts("shop:~lock:users#eu:42"),
            p("shop:~lock:users#eu", ":42")
        );
        assert_eq!(
            parts("shop:products:=tag:sale"),
            p("shop:products", ":=tag:sale")
        );
        assert_eq!(parts("shop:users:"), p("shop:users", ":"));
        for bad in [
            "shop",
            "shop:users",
            "shop:users#eu",
            "shop:users=x",
            "",
            "shop:~lock:",
        ] {
            assert!(item_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tag_rows_never_reach_another_tag() {
        let row = tag_row("shop:products:=tag:sale", "shop:products:7").unwrap();
        assert_eq!(row.pk, "shop:products");
        assert_eq!(row.sk, ":=tag:sale=shop:products:7");
        let rows = tag_rows("shop:products:=tag:sale").unwrap();
        assert_eq!(rows.sk, ":=tag:sale=");
        assert!(row.sk.starts_with(&rows.sk));
        // tag `sale=x` is escaped, so its rows do not start with `sale`'s prefix
        let other = tag_row(r"shop:products:=tag:sale\=x", "shop:products:7").unwrap();
        assert!(!other.sk.starts_with(&rows.sk));
        assert!(tag_rows("shop:products:7").is_err());
    }

    #[test]
    fn partitions_register_in_their_parent() {
        let reg = |p: &str| registration(p).map(|k| (k.pk, k.sk));
        assert_eq!(reg("shop:users"), Some(p("shop", ":users")));
        assert_eq!(reg("shop:users#eu"), Some(p("shop:users", "#eu")));
        assert_eq!(reg("shop:users#eu#b2b"), Some(p("shop:users#eu", "#b2b")));
        assert_eq!(reg(r"shop:users#a\#b"), Some(p("shop:users", r"#a\#b")));
        assert_eq!(reg("shop"), None);
        assert_eq!(reg("shop:~lock:users"), None);
        for key in ["shop:users:1", "shop:users#eu:1", "shop:users#a#b:1"] {
            let pk = item_key(key).unwrap().pk;
            let r = registration(&pk).unwrap();
            assert_eq!(stored_key(&r.pk, &r.sk), pk);
        }
    }

    #[test]
    fn scopes_are_roots_caches_or_namespaces() {
        for ok in ["shop", "shop:users", "shop:users#eu", r"shop:a\:b#c"] {
            assert_eq!(scope_partition(&Scope::new(ok)).unwrap(), ok);
        }
        for bad in ["", "shop:users:42", "a:b:users"] {
            assert!(scope_partition(&Scope::new(bad)).is_err(), "{bad}");
        }
    }
}
