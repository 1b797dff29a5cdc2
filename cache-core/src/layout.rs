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
//! | a bus check's channel | `{channel}:check` (the bus channel's, for its probe) | `shop:__bus:check` |
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
//! 6. The bus channel lives in Redis's channel namespace, which keys never share; a bus
//!    check's channel is the bus channel and `:check`, so it is no store's bus channel (those
//!    end in `:__bus`) and a probe on it evicts nothing.
//!
//! Drivers that map stored keys onto storage of their own (DynamoDB's partition and sort
//! keys, a database's key ranges) read the layout through [`LOCK_MARK`], [`TAG_MARK`] and
//! [`crate::store::Scope::starts`], never by spelling its characters again.
//!
//! # Why an L1 key is the stored key, split
//!
//! Local tiers file an entry under its base and its encoded key apart
//! ([`crate::store::L1Key`]), not under the joined `{base}:{key}`; the bus and the tag
//! indexes carry joined strings, which [`split_entry`] cuts back. The two forms are in
//! bijection:
//!
//! 7. A base holds exactly one unescaped `:`, the one right after the prefix (which holds
//!    none: configuration refuses it), since every `:` of a cache or namespace name is
//!    escaped (points 1-2). So in `{base}:{key}` the first unescaped `:` after the
//!    prefix's is the separator, and [`split_entry`] gives back `(base, key)` exactly,
//!    whatever the key holds. Two L1 keys are equal when their bases and key bytes are
//!    (the hash, a seeded hash of the key within its base, only spares most comparisons;
//!    a base read back from a string hashes as its space's own), so distinct stored keys
//!    are distinct L1 keys and a joined string finds the entry the engine filed.
//!    [`in_scope_split`] decides scope membership on the parts as [`in_scope`] does on the
//!    joined string. A string that is no entry's key (no separator after the prefix) is
//!    read as a key of the empty base, which no cache has.

use serde::Serialize;

use crate::key::{encode_key_into, KeyError};
use crate::spare::SparePool;

/// Separates a base from an entry's encoded key.
const ENTRY: char = ':';
/// Separates a base from a namespace's encoded name.
const NAMESPACE: char = '#';
/// What follows a base in the key of a tag index: `{base}:=tag:{enc(tag)}`.
///
/// ```
/// assert_eq!(cache_core::store::TAG_MARK, ":=tag:");
/// ```
pub const TAG_MARK: &str = ":=tag:";
/// What follows a store's prefix in a lock key: `{prefix}:~lock:` and the entry's key past
/// `{prefix}:`.
///
/// ```
/// assert_eq!(cache_core::store::LOCK_MARK, ":~lock:");
/// ```
pub const LOCK_MARK: &str = ":~lock:";
/// The bus channel's suffix after the prefix.
const BUS_SUFFIX: &str = ":__bus";
/// A bus check's channel's suffix after the bus channel.
const CHECK_SUFFIX: &str = ":check";

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

/// How many spare key buffers a thread keeps ([`StoredKey`]): about as many reads as one
/// worker of a busy service has in flight at once.
const SPARE_KEYS: usize = 64;

/// The largest capacity of a buffer kept as a spare ([`StoredKey`]).
const SPARE_KEY_CAPACITY: usize = 256;

/// The buffers of the stored keys of reads that ended on this thread, for the next ones
/// ([`StoredKey`]): a thread keeps at most [`SparePool::MOST_KEPT`] bytes of them (64
/// buffers of up to 256 bytes with their `String`s: under 18 KiB).
type SpareKeys = SparePool<String, SPARE_KEYS, SPARE_KEY_CAPACITY>;

std::thread_local! {
    static SPARE: SpareKeys = const { SparePool::new() };
}

/// An entry's key (`{base}:{enc(key)}`) for one read, built in a spare buffer of its thread
/// and given back to the spares of the thread it is dropped on: a read made an allocation and
/// its free for its key, which with 64 reads in flight on two threads overflow glibc's
/// per-thread cache (BENCHMARKS.md, "64 tasks, phase L").
pub(crate) struct StoredKey(String);

impl StoredKey {
    /// A spare buffer of this thread, emptied, or a new one.
    #[inline]
    fn buffer() -> String {
        let mut buf = SparePool::take(&SPARE).unwrap_or_default();
        buf.clear();
        buf
    }

    /// [`entry_key`] of `encoded` under `base`.
    #[inline]
    pub(crate) fn of_encoded(base: &str, encoded: &str) -> Self {
        let mut buf = Self::buffer();
        push_entry_start(&mut buf, base);
        buf.push_str(encoded);
        Self(buf)
    }

    /// [`entry_key_of`] `key` under `base`.
    #[inline]
    pub(crate) fn of<K: Serialize + ?Sized>(base: &str, key: &K) -> Result<Self, KeyError> {
        let mut buf = Self::buffer();
        push_entry_start(&mut buf, base);
        encode_key_into(key, &mut buf)?;
        Ok(Self(buf))
    }

    /// The key.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        let capacity = buf.capacity();
        SparePool::keep(&SPARE, buf, capacity);
    }
}

/// The encoded key of `stored` when it is an entry's key under `base` (`{base}:{key}`).
#[inline]
pub(crate) fn entry_of<'a>(base: &str, stored: &'a str) -> Option<&'a str> {
    stored.strip_prefix(base)?.strip_prefix(ENTRY)
}

/// An entry's key: `{base}:{enc(key)}`.
pub(crate) fn entry_key_of<K: Serialize + ?Sized>(base: &str, key: &K) -> Result<String, KeyError> {
    let mut out = String::with_capacity(base.len() + 24);
    push_entry_start(&mut out, base);
    encode_key_into(key, &mut out)?;
    Ok(out)
}

/// The base and the encoded key of a stored key `{base}:{key}` (point 7 above): the first
/// `:` ends the prefix, and the next `:` that no `\` escapes ends the base. A string with
/// no such separator is `("", stored)`.
pub(crate) fn split_entry(stored: &str) -> (&str, &str) {
    let bytes = stored.as_bytes();
    let Some(prefix_end) = bytes.iter().position(|&b| b == b':') else {
        return ("", stored);
    };
    let mut i = prefix_end + 1;
    while i < bytes.len() {
        match bytes[i] {
            // An escape: the next byte stands for itself.
            b'\\' => i += 2,
            // An ASCII byte, so a char boundary on both sides.
            b':' => return (&stored[..i], &stored[i + 1..]),
            _ => i += 1,
        }
    }
    ("", stored)
}

/// Writes the stored key of `base` and the encoded `key`: `{base}:{key}`, or the key alone
/// in the empty base ([`split_entry`]'s reading of a string that is no entry's key).
pub(crate) fn write_entry(
    out: &mut impl std::fmt::Write,
    base: &str,
    key: &[u8],
) -> std::fmt::Result {
    if !base.is_empty() {
        out.write_str(base)?;
        out.write_char(ENTRY)?;
    }
    // Keys are built from strings; a byte that is not UTF-8 could only come from a
    // hand-made key, and is shown replaced.
    out.write_str(&String::from_utf8_lossy(key))
}

/// [`in_scope`] of the stored key `{base}:{key}`, decided on its parts.
pub(crate) fn in_scope_split(scope: &str, base: &str, key: &[u8]) -> bool {
    let (scope, base) = (scope.as_bytes(), base.as_bytes());
    if base.is_empty() {
        // The key alone is the whole string.
        return in_scope_bytes(scope, key);
    }
    if let Some(after) = base.strip_prefix(scope) {
        // The scope's base, or a namespace under it (or, on a hand-made string, any
        // structural character after it).
        return match after.first() {
            None => true,
            Some(&b) => matches!(b, b':' | b'#'),
        };
    }
    // A scope longer than the base: it must be `{base}:` and a start of the key.
    scope.len() > base.len()
        && scope.starts_with(base)
        && scope[base.len()] == b':'
        && in_scope_bytes(&scope[base.len() + 1..], key)
}

/// [`in_scope`] on bytes.
fn in_scope_bytes(scope: &[u8], key: &[u8]) -> bool {
    key.len() > scope.len() && key.starts_with(scope) && matches!(key[scope.len()], b':' | b'#')
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

/// The channel a bus check probes on, beside the bus channel `channel`: `{channel}:check`,
/// so an ACL granting the store's `{prefix}:*` channels grants it too.
///
/// ```
/// use cache_core::driver::{check_channel, BusSettings};
/// assert_eq!(check_channel(&BusSettings::for_prefix("shop").channel), "shop:__bus:check");
/// ```
pub fn check_channel(channel: &str) -> String {
    let mut out = String::with_capacity(channel.len() + CHECK_SUFFIX.len());
    out.push_str(channel);
    out.push_str(CHECK_SUFFIX);
    out
}

/// The starts of the keys in the scope of `base`: `{base}:` (its entries and tag indexes)
/// and `{base}#` (its namespaces'). [`in_scope`] holds for exactly the keys that start
/// with one of them.
pub(crate) fn scope_starts(base: &str) -> [String; 2] {
    [ENTRY, NAMESPACE].map(|separator| {
        let mut start = String::with_capacity(base.len() + 1);
        start.push_str(base);
        start.push(separator);
        start
    })
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

    /// A read's key is the entry's key whatever its buffer held before; a thread keeps at most
    /// `SPARE_KEYS` buffers, none over `SPARE_KEY_CAPACITY`.
    #[test]
    fn a_reads_key_is_the_entry_key_in_a_reused_and_bounded_buffer() {
        let count = || SparePool::len(&SPARE);
        let first = StoredKey::of("shop:customers", &"someone long").unwrap();
        assert_eq!(
            first.as_str(),
            entry_key_of("shop:customers", &"someone long").unwrap()
        );
        let buffer = first.as_str().as_ptr();
        drop(first);
        assert_eq!(count(), 1);
        let again = StoredKey::of("shop:users", &42u64).unwrap();
        assert_eq!(again.as_str(), "shop:users:42");
        assert_eq!(
            again.as_str().as_ptr(),
            buffer,
            "the spare buffer is reused"
        );
        assert_eq!(
            StoredKey::of_encoded("shop:users", "7").as_str(),
            entry_key("shop:users", "7")
        );
        drop(again);
        let long = "k".repeat(SPARE_KEY_CAPACITY + 1);
        let spare = count();
        drop(StoredKey::of_encoded("b", &long));
        assert_eq!(count(), spare - 1, "a long key's buffer is not kept");
        let held: Vec<_> = (0..SPARE_KEYS + 3)
            .map(|i| StoredKey::of("b", &i).unwrap())
            .collect();
        drop(held);
        assert_eq!(count(), SPARE_KEYS);
    }

    /// A read's key is byte for byte the key writes use ([`entry_key_of`]) for every form a
    /// key takes (escaped strings, integers, tuples, structs, options, sequences, non-ASCII,
    /// one far over a spare's size), in a buffer whatever key it held before: each key is
    /// built right after a longer one and after a shorter one, both from its value and from
    /// its encoding.
    #[test]
    fn a_reads_key_is_the_written_key_for_every_key_form_in_any_spare() {
        #[derive(Serialize)]
        struct Order {
            id: u64,
            region: &'static str,
        }
        let base = cache_base("shop", "orders:eu");
        let long = "x".repeat(3000);
        let keys: Vec<Box<dyn erased_serde::Serialize>> = vec![
            Box::new("a:b\\c#d"),
            Box::new(u64::MAX),
            Box::new(-42i64),
            Box::new((7u64, "alice", true)),
            Box::new(Order {
                id: 9,
                region: "eu:west",
            }),
            Box::new(Some(vec!["x", "y"])),
            Box::new(None::<u8>),
            Box::new("ключ:ü"),
            Box::new("k".repeat(SPARE_KEY_CAPACITY)),
            Box::new(long.clone()),
            Box::new(""),
        ];
        for (i, key) in keys.iter().enumerate() {
            let written = entry_key_of(&base, key).unwrap();
            for before in [
                &long,
                "k".repeat(SPARE_KEY_CAPACITY - base.len() - 1).as_str(),
                "1",
            ] {
                drop(StoredKey::of(&base, before).unwrap());
                assert_eq!(
                    StoredKey::of(&base, key).unwrap().as_str(),
                    written,
                    "key {i}"
                );
                drop(StoredKey::of_encoded(&base, before));
                let encoded = crate::key::encode_key(key).unwrap();
                assert_eq!(
                    StoredKey::of_encoded(&base, &encoded).as_str(),
                    written,
                    "key {i}"
                );
            }
        }
    }

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
        assert_eq!(check_channel(&bus_channel("shop")), "shop:__bus:check");
        assert_eq!(
            scope_starts(&admins),
            ["shop:users#admins:", "shop:users#admins#"]
        );
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

    /// A stored key of the engine's making: a prefix (no `:`, maybe a `\`), a cache,
    /// namespaces and a key, each with reserved characters.
    fn engine_key() -> impl proptest::strategy::Strategy<Value = (String, String, Vec<String>)> {
        use proptest::prelude::*;
        let name = "[\\\\:,\\[\\]{}()=~#a-zé0-9]{0,8}";
        (
            "[a-z\\\\]{0,4}",
            name,
            proptest::collection::vec(name, 0..3),
            "[\\\\:,\\[\\]{}()=~#a-zé0-9]{0,30}",
        )
            .prop_map(|(prefix, cache, namespaces, key)| {
                let mut base = cache_base(&prefix, &cache);
                let mut bases = vec![prefix, base.clone()];
                for ns in &namespaces {
                    base = namespace_base(&base, ns);
                    bases.push(base.clone());
                }
                let encoded = crate::key::encode_key(&(key.as_str(), 7u8)).unwrap_or_default();
                (base, encoded, bases)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Point 7: every engine key splits back into its base and its encoded key, and
        /// scope membership on the parts is membership on the string.
        #[test]
        fn split_entry_reads_back_every_engine_key((base, encoded, bases) in engine_key()) {
            let stored = entry_key(&base, &encoded);
            proptest::prop_assert_eq!(split_entry(&stored), (base.as_str(), encoded.as_str()));
            let mut scopes = bases;
            scopes.push(stored.clone());
            scopes.push(format!("{base}:"));
            scopes.push(format!("{base}x"));
            for scope in &scopes {
                proptest::prop_assert_eq!(
                    in_scope_split(scope, &base, encoded.as_bytes()),
                    in_scope(scope, &stored),
                    "scope {}", scope
                );
                // The starts drivers find a scope's keys by are the scope.
                proptest::prop_assert_eq!(
                    scope_starts(scope).iter().any(|start| stored.starts_with(start.as_str())),
                    in_scope(scope, &stored),
                    "starts of scope {}", scope
                );
            }
        }

        /// Any string at all: split and joined back unchanged, and scoped alike.
        #[test]
        fn any_string_splits_and_joins_back(s in "[a:#\\\\é]{0,12}", scope in "[a:#\\\\]{0,6}") {
            let (base, key) = split_entry(&s);
            let mut joined = String::new();
            write_entry(&mut joined, base, key.as_bytes()).unwrap();
            proptest::prop_assert_eq!(&joined, &s);
            proptest::prop_assert_eq!(in_scope_split(&scope, base, key.as_bytes()), in_scope(&scope, &s));
        }
    }
}
