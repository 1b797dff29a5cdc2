//! The stored-key layout: how a store's prefix, a cache, its namespaces and an entry's key
//! (and the keys beside entries: tag indexes, locks, the bus channel) become the strings
//! tiers see. Every such string is built here, and nowhere else.
//!
//! | what | layout | example |
//! | --- | --- | --- |
//! | a cache's base | `{prefix}:{enc(cache)}` | `shop:users` |
//! | a namespace's base | `{base}#{enc(namespace)}` | `shop:users#admins` |
//! | an entry | `{base}:{enc(key)}` | `shop:users#admins:42` |
//! | a tag index | `{base}:={enc(tag)}` after `tag` (see [`tag_key`]) | `shop:users:=tag:sale` |
//! | a distributed lock | `{prefix}:~lock:` + the entry's key past `{prefix}:` | `shop:~lock:users:42` |
//! | the bus channel | `{prefix}:__bus` (a pub/sub channel, not a key) | `shop:__bus` |
//!
//! `enc` is the key encoding of [`crate::key`]: a cache, namespace or tag name is encoded as
//! a string key is, with a `\` before each reserved character (`\ : , [ ] { } ( ) = ~ #`).
//!
//! # Why stored keys never collide
//!
//! Within one prefix (stores with different prefixes never share a key: every string below
//! starts with `{prefix}:`, and configuration refuses a prefix holding a `:`):
//!
//! 1. After `{prefix}:`, a cache name is `enc(cache)`: every `:`, `#`, `~` and `=` of the
//!    name is escaped, so the first unescaped `:` or `#` after the prefix ends the cache
//!    name ([`crate::key::read_escaped`] reads it back). Two caches therefore have distinct
//!    bases, and neither base is a prefix of the other followed by `:` or `#`.
//! 2. Likewise each `#{enc(namespace)}` ends at the next unescaped `:` or `#`, so a base
//!    (cache plus namespace path) is read back whole, and an entry of one namespace is never
//!    an entry of its parent or of another namespace: after the base, an entry has `:`, a
//!    namespace `#`.
//! 3. After `{base}:`, the rest is `enc(key)`, injective per key type (see [`crate::key`]).
//!    So within one cache and namespace, distinct keys of one type are distinct entries.
//! 4. A tag index is `{base}:=tag:{enc(tag)}`. No encoded key starts with an unescaped `=`
//!    (`=` is reserved, and the grammar writes it only inside `{..}`), so no entry is a tag
//!    index; distinct tags give distinct indexes since `enc` is injective.
//! 5. A lock is `{prefix}:~lock:{rest}`. No cache base starts with an unescaped `~` (the
//!    name's `~` is escaped), so no entry or tag index is a lock; `rest` is the entry's own
//!    key past the prefix, so distinct entries have distinct locks.
//! 6. The bus channel lives in Redis's channel namespace, which keys never share.

use serde::Serialize;

use crate::key::{encode_key_into, KeyError};

/// Separates a base from an entry's encoded key.
const ENTRY: char = ':';
/// Separates a base from a namespace's encoded name.
const NAMESPACE: char = '#';
/// Marks a tag index inside a base's key space.
const TAG_MARK: &str = ":=tag:";
/// Marks the lock space right after the prefix.
const LOCK_MARK: &str = ":~lock:";
/// The bus channel's suffix after the prefix.
const BUS_SUFFIX: &str = ":__bus";

/// `name` escaped as a string key is, appended to `out`.
fn push_name(out: &mut String, name: &str) {
    // A `&str` always encodes; the fallback keeps the name rather than panicking.
    if encode_key_into(name, out).is_err() {
        out.push_str(name);
    }
}

/// The base of a cache: `{prefix}:{enc(cache)}`.
pub(crate) fn cache_base(prefix: &str, cache: &str) -> String {
    let mut base = String::with_capacity(prefix.len() + 1 + cache.len());
    base.push_str(prefix);
    base.push(ENTRY);
    push_name(&mut base, cache);
    base
}

/// The base of a namespace under `base`: `{base}#{enc(namespace)}`.
pub(crate) fn namespace_base(base: &str, namespace: &str) -> String {
    let mut out = String::with_capacity(base.len() + 1 + namespace.len());
    out.push_str(base);
    out.push(NAMESPACE);
    push_name(&mut out, namespace);
    out
}

/// Starts an entry's key in `buf`: `{base}:`, to which the encoded key is appended.
pub(crate) fn push_entry_start(buf: &mut String, base: &str) {
    buf.push_str(base);
    buf.push(ENTRY);
}

/// An entry's key from its already encoded key: `{base}:{encoded}`.
pub(crate) fn entry_key(base: &str, encoded: &str) -> String {
    let mut out = String::with_capacity(base.len() + 1 + encoded.len());
    push_entry_start(&mut out, base);
    out.push_str(encoded);
    out
}

/// An entry's key: `{base}:{enc(key)}`.
pub(crate) fn entry_key_of<K: Serialize + ?Sized>(base: &str, key: &K) -> Result<String, KeyError> {
    let mut out = String::with_capacity(base.len() + 24);
    push_entry_start(&mut out, base);
    encode_key_into(key, &mut out)?;
    Ok(out)
}

/// Whether `key` is in the scope of `base`: an entry, tag index or namespace under it.
pub(crate) fn in_scope(base: &str, key: &str) -> bool {
    key.len() > base.len()
        && key.starts_with(base)
        && matches!(key.as_bytes()[base.len()], b':' | b'#')
}

/// The Redis `SCAN MATCH` glob of everything in the scope of `base`: the base with every
/// glob character (`\ * ? [ ]`) escaped, then `[:#]*`.
pub(crate) fn scope_pattern(base: &str) -> String {
    let mut pattern = String::with_capacity(base.len() + 8);
    for c in base.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("[:#]*");
    pattern
}

/// The key of the index listing the entries written with `tag` under `base`:
/// `{base}:=tag:{enc(tag)}`.
pub(crate) fn tag_key(base: &str, tag: &str) -> String {
    let mut out = String::with_capacity(base.len() + TAG_MARK.len() + tag.len());
    out.push_str(base);
    out.push_str(TAG_MARK);
    push_name(&mut out, tag);
    out
}

/// Whether `key` is an entry directly under `base` (not a namespace's, not a tag index).
pub(crate) fn is_entry_of(base: &str, key: &str) -> bool {
    key.strip_prefix(base)
        .and_then(|rest| rest.strip_prefix(ENTRY))
        .is_some_and(|encoded| !encoded.starts_with('='))
}

/// The lock key of an entry: `{prefix}:~lock:` + the entry's key past `{prefix}:`.
pub(crate) fn lock_key(prefix: &str, stored: &str) -> String {
    let rest = stored
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(ENTRY))
        .unwrap_or(stored);
    let mut key = String::with_capacity(prefix.len() + LOCK_MARK.len() + rest.len());
    key.push_str(prefix);
    key.push_str(LOCK_MARK);
    key.push_str(rest);
    key
}

/// The bus channel of a store: `{prefix}:__bus`.
pub(crate) fn bus_channel(prefix: &str) -> String {
    let mut channel = String::with_capacity(prefix.len() + BUS_SUFFIX.len());
    channel.push_str(prefix);
    channel.push_str(BUS_SUFFIX);
    channel
}

/// The cache name in a stored key of the store with this prefix: after `{prefix}:`, up to
/// the first unescaped `:` (a key) or `#` (a namespace), unescaped.
pub(crate) fn cache_of(prefix: &str, key: &str) -> Option<String> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(ENTRY)?;
    let (name, after) = crate::key::read_escaped(rest);
    after.starts_with([ENTRY, NAMESPACE]).then_some(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_the_module_docs() {
        let base = cache_base("shop", "users");
        assert_eq!(base, "shop:users");
        let admins = namespace_base(&base, "admins");
        assert_eq!(admins, "shop:users#admins");
        assert_eq!(entry_key(&admins, "42"), "shop:users#admins:42");
        assert_eq!(entry_key_of(&base, &42u64).unwrap(), "shop:users:42");
        assert_eq!(tag_key(&base, "sale"), "shop:users:=tag:sale");
        assert_eq!(lock_key("shop", "shop:users:42"), "shop:~lock:users:42");
        assert_eq!(bus_channel("shop"), "shop:__bus");
    }

    #[test]
    fn names_with_reserved_characters_cannot_reach_other_spaces() {
        // A cache named like a namespace path, a lock space or a tag mark stays inside its
        // own base.
        assert_eq!(cache_base("p", "a#b"), r"p:a\#b");
        assert_eq!(cache_base("p", "~lock"), r"p:\~lock");
        assert_eq!(cache_base("p", "a:b"), r"p:a\:b");
        assert_eq!(namespace_base("p:c", "x:y"), r"p:c#x\:y");
        assert_eq!(tag_key("p:c", "a:b"), r"p:c:=tag:a\:b");
        assert_eq!(
            cache_of("p", &entry_key(&cache_base("p", "a:b"), "1")).as_deref(),
            Some("a:b")
        );
    }

    #[test]
    fn scopes_cover_entries_namespaces_and_tags_only_of_their_base() {
        let base = "p:users";
        assert!(in_scope(base, "p:users:1"));
        assert!(in_scope(base, "p:users#ns:1"));
        assert!(in_scope(base, "p:users:=tag:t"));
        assert!(!in_scope(base, "p:users2:1"));
        assert!(!in_scope(base, "p:users"));
        assert!(is_entry_of(base, "p:users:1"));
        assert!(!is_entry_of(base, "p:users:=tag:t"));
        assert!(!is_entry_of(base, "p:users#ns:1"));
        assert_eq!(scope_pattern(r"p:a*\#"), r"p:a\*\\#[:#]*");
    }
}
