//! The key of an L1 entry: its key space (the base of its cache or namespace) and its
//! encoded key, kept apart.
//!
//! Remote tiers and the bus see one string per entry, `{base}:{key}` (see
//! [`crate::layout`]). A local tier is asked far more often (every hit), so it gets the two
//! parts separately: the hit path encodes the key into a buffer of its own and hands the
//! cache's [`KeySpace`] beside it, without building the joined string. A key space carries
//! its hashing seed, so a key is hashed over its own bytes only, and two keys of one space
//! compare their bases by pointer (a store shares one key space per base among its
//! handles: `KeySpaces`) before, for a key read back from a string, by text.
//!
//! [`L1KeyRef`] is what lookups pass (borrowed; it implements [`Equivalent`] for the
//! owned [`L1Key`] that tiers store), and both carry their hash: a tier hashes them by that
//! number alone ([`L1Hasher`]). A joined string read back ([`L1KeyRef::parse`]: a bus
//! message, a tag index, a test) gives the same parts and the same hash as the engine's
//! own, which `layout.rs` proves once.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use super::allocation::allocated;

pub use equivalent::Equivalent;

/// The random state every key space's seed is drawn from: one per process, so that the
/// keys an outsider picks cannot be made to collide on purpose.
fn process_state() -> &'static foldhash::fast::RandomState {
    static STATE: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    STATE.get_or_init(Default::default)
}

/// The hashing seed of the key space `base`.
fn seed_of(base: &str) -> u64 {
    process_state().hash_one(base)
}

/// The hash of `key` in the key space seeded with `seed`.
#[inline]
fn hash_in(seed: u64, key: &[u8]) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(seed).build_hasher();
    hasher.write(key);
    hasher.finish()
}

/// Whether two bases are one: the same allocation (the usual case, a cache's own
/// handle), else the same text.
#[inline]
fn same_base(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || same_text(a, b)
}

/// [`same_base`] of two allocations: kept out of the hit path.
#[cold]
#[inline(never)]
fn same_text(a: &str, b: &str) -> bool {
    a == b
}

/// Whether two keys hold the same bytes: a key of up to 16 bytes (most) is compared in two
/// overlapping words, with no call to `memcmp`.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match same_short(a, b) {
        Some(same) => same,
        None => a == b,
    }
}

/// Whether `key` (of up to 16 bytes) is the first `key.len()` bytes of `held` (at least
/// that long): the first, middle and last byte of a key of up to three, else two
/// overlapping words, 4 or 8 bytes each. `None` for a longer key. Inlined, the indexes of
/// each arm are in bounds for the lengths it takes, so no bounds check is left: none at
/// all when `held` is an array (a stored key's inline bytes, [`KeyBytes::is_short`]).
#[inline(always)]
fn same_short(key: &[u8], held: &[u8]) -> Option<bool> {
    /// The `N` bytes of `s` from `at`.
    #[inline(always)]
    fn word<const N: usize>(s: &[u8], at: usize) -> [u8; N] {
        let mut w = [0; N];
        w.copy_from_slice(&s[at..at + N]);
        w
    }
    let n = key.len();
    Some(match n {
        0 => true,
        // Three bytes at most: the first, middle and last cover them.
        1..=3 => key[0] == held[0] && key[n / 2] == held[n / 2] && key[n - 1] == held[n - 1],
        4..=8 => {
            word::<4>(key, 0) == word::<4>(held, 0)
                && word::<4>(key, n - 4) == word::<4>(held, n - 4)
        }
        9..=16 => {
            word::<8>(key, 0) == word::<8>(held, 0)
                && word::<8>(key, n - 8) == word::<8>(held, n - 8)
        }
        _ => return None,
    })
}

/// The key space of a cache or namespace: its base (`{prefix}:{cache}` or
/// `{prefix}:{cache}#{ns}…`) and the seed its keys are hashed with. Cheap to clone (an
/// `Arc` inside).
///
/// ```
/// use cache_core::store::{KeySpace, L1KeyRef};
/// let users = KeySpace::new("app:users");
/// let key = users.key_ref(b"42");
/// assert_eq!(key, L1KeyRef::parse("app:users:42"));
/// assert_eq!(key.to_string(), "app:users:42");
/// ```
#[derive(Clone)]
pub struct KeySpace(Arc<Space>);

struct Space {
    base: Box<str>,
    seed: u64,
}

/// The key spaces of one store, one per base while any handle or entry holds it: every
/// handle on a cache (each resolution by name, each `with_options` view, each namespace
/// handle made again) shares its entries' key space, so an entry holds no space of its
/// own and a lookup compares bases by pointer.
#[derive(Default)]
pub(crate) struct KeySpaces {
    spaces: Mutex<Interned>,
}

#[derive(Default)]
struct Interned {
    by_base: HashMap<Box<str>, Weak<Space>>,
    /// How many were live when the dead were last dropped: the map is swept again once it
    /// holds twice as many, so its size stays within twice the live spaces.
    live_at_sweep: usize,
}

impl KeySpaces {
    /// The key space of `base`: the one in use, or a new one.
    pub(crate) fn of(&self, base: &str) -> KeySpace {
        let mut interned = self.spaces.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(space) = interned.by_base.get(base).and_then(Weak::upgrade) {
            return KeySpace(space);
        }
        if interned.by_base.len() >= 2 * interned.live_at_sweep.max(16) {
            interned.by_base.retain(|_, space| space.strong_count() > 0);
            interned.live_at_sweep = interned.by_base.len();
        }
        let space = KeySpace::new(base);
        interned
            .by_base
            .insert(base.into(), Arc::downgrade(&space.0));
        space
    }
}

impl KeySpace {
    /// The key space of `base`.
    ///
    /// A cache's or namespace's base (`{prefix}:{cache}` or `{prefix}:{cache}#{ns}`, with
    /// `:`, `#` and `\` escaped in the names, as the engine builds it) is the one form whose
    /// keys read back from their text: [`L1KeyRef::parse`] of a key's `Display` gives the
    /// same base and key for every key in it. A hand-made base that is no cache's (no `:`
    /// after its prefix, or another unescaped one), or key bytes that are not UTF-8, make
    /// keys that are still one entry per (base, key) on every tier in this crate and the
    /// memory driver, but that no removal by text reaches.
    ///
    /// ```
    /// use cache_core::store::{KeySpace, L1KeyRef};
    /// let users = KeySpace::new(r"app:us\:ers");
    /// let key = users.key_ref(b"42");
    /// assert_eq!(L1KeyRef::parse(&key.to_string()), key);
    /// // A base with no separator after its prefix is no cache's: its text reads back apart.
    /// let odd = KeySpace::new("app");
    /// assert_ne!(L1KeyRef::parse(&odd.key_ref(b"users:1").to_string()), odd.key_ref(b"users:1"));
    /// ```
    pub fn new(base: &str) -> Self {
        KeySpace(Arc::new(Space {
            base: base.into(),
            seed: seed_of(base),
        }))
    }

    /// Its base.
    pub fn base(&self) -> &str {
        &self.0.base
    }

    /// The lookup key of the encoded key `key` in this space.
    #[inline]
    pub fn key_ref<'a>(&'a self, key: &'a [u8]) -> L1KeyRef<'a> {
        L1KeyRef {
            hash: hash_in(self.0.seed, key),
            base: &self.0.base,
            key,
        }
    }

    /// The stored key of the encoded key `key` in this space.
    ///
    /// ```
    /// use cache_core::store::KeySpace;
    /// let users = KeySpace::new("app:users");
    /// assert_eq!(users.key(b"42").borrowed(), users.key_ref(b"42"));
    /// ```
    pub fn key(&self, key: &[u8]) -> L1Key {
        L1Key {
            hash: hash_in(self.0.seed, key),
            space: self.clone(),
            key: KeyBytes::new(key),
        }
    }
}

impl std::fmt::Debug for KeySpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeySpace").field(&self.base()).finish()
    }
}

/// An encoded key's bytes: held inline up to [`INLINE`] bytes (most keys: no allocation
/// of their own), on the heap beyond. Canonical, so equal bytes always take the same form.
#[derive(Clone)]
enum KeyBytes {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

/// The longest key held inline.
const INLINE: usize = 22;

impl KeyBytes {
    fn new(key: &[u8]) -> Self {
        if key.len() > INLINE {
            return KeyBytes::Heap(key.into());
        }
        let mut bytes = [0; INLINE];
        bytes[..key.len()].copy_from_slice(key);
        // At most `INLINE` here, which fits a byte.
        KeyBytes::Inline(key.len() as u8, bytes)
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            KeyBytes::Inline(len, bytes) => &bytes[..usize::from(*len)],
            KeyBytes::Heap(bytes) => bytes,
        }
    }

    /// Whether these are `key`'s bytes, for a key of up to 16 bytes held inline (most keys):
    /// [`same_short`] against the whole inline array, not a slice of it, so every index is
    /// within the array for the length its arm takes and the comparison has no bounds
    /// check and no call. `None` for a longer key, or one on the heap:
    /// [`KeyBytes::is_long`]. (The form is canonical: a key of either form is only ever its
    /// own form.)
    #[inline(always)]
    fn is_short(&self, key: &[u8]) -> Option<bool> {
        let KeyBytes::Inline(len, bytes) = self else {
            return None;
        };
        if usize::from(*len) != key.len() {
            return Some(false);
        }
        same_short(key, bytes)
    }

    /// Whether these are `key`'s bytes, whatever their length (see [`KeyBytes::is_short`]).
    #[inline]
    fn is(&self, key: &[u8]) -> bool {
        match self.is_short(key) {
            Some(same) => same,
            None => self.is_long(key),
        }
    }

    /// [`KeyBytes::is`] of a key longer than 16 bytes, or held on the heap: kept out of a
    /// probe's comparison, whose call of it is its last step (a jump, no frame).
    #[inline(never)]
    fn is_long(&self, key: &[u8]) -> bool {
        self.as_bytes() == key
    }
}

/// The key of an L1 entry looked up: a key space's base and an encoded key, borrowed,
/// with their hash. What [`crate::store::LocalTier`]'s lookups take.
///
/// ```
/// use cache_core::store::{L1KeyRef, KeySpace};
/// let key = L1KeyRef::parse(r"app:orders\:eu#2024:7");
/// assert_eq!((key.base(), key.key()), (r"app:orders\:eu#2024", &b"7"[..]));
/// assert_eq!(key, KeySpace::new(r"app:orders\:eu#2024").key_ref(b"7"));
/// ```
#[derive(Clone, Copy)]
pub struct L1KeyRef<'a> {
    hash: u64,
    base: &'a str,
    key: &'a [u8],
}

impl<'a> L1KeyRef<'a> {
    /// The parts of a stored key `{base}:{key}` (see the stored-key layout, `layout.rs`):
    /// a bus message's key, a tag index's member, a key written by hand in a test.
    /// Allocates nothing.
    ///
    /// A string that is no entry's key (it has no separator after its prefix) is a key of
    /// its own, in the empty space no cache has.
    pub fn parse(stored: &'a str) -> Self {
        let (base, key) = crate::layout::split_entry(stored);
        L1KeyRef {
            hash: hash_in(seed_of(base), key.as_bytes()),
            base,
            key: key.as_bytes(),
        }
    }

    /// The hash a tier files the key under (see [`L1Hasher`]).
    #[inline]
    pub fn hash_value(&self) -> u64 {
        self.hash
    }

    /// The base of its key space.
    pub fn base(&self) -> &'a str {
        self.base
    }

    /// The encoded key.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// An owned copy, in a key space of its own (for a tier that stores what it is given
    /// by reference, as a test's might).
    pub fn to_key(&self) -> L1Key {
        L1Key {
            hash: self.hash,
            space: KeySpace::new(self.base),
            key: KeyBytes::new(self.key),
        }
    }
}

impl Hash for L1KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Equivalent<L1Key> for L1KeyRef<'_> {
    /// Inlined into a tier's table probe (quick_cache calls it on every hit and every probe
    /// collision): the hash, the base by pointer and a short inline key's bytes compared in
    /// place; anything else (a base of another allocation, a long key) is the last step's
    /// jump to an out-of-line comparison, so the inlined part needs no frame of its own.
    #[inline]
    fn equivalent(&self, stored: &L1Key) -> bool {
        self.is_key_of(stored)
    }
}

impl L1KeyRef<'_> {
    /// [`Equivalent::equivalent`], always inlined: for a caller that compares one stored key
    /// on its hot path (a front table's slot), where the inlining heuristics left the
    /// trait's call out of line (33 instructions a front hit). Tier probes call the trait's
    /// method, which stays a plain `#[inline]` (forced there, hashbrown's probe closure went
    /// out of line instead: BENCHMARKS.md, "Issue 14, phase J (locked read)").
    ///
    /// ```
    /// use cache_core::store::{L1Key, L1KeyRef};
    /// let stored = L1Key::parse("app:users:42");
    /// assert!(L1KeyRef::parse("app:users:42").is_key_of(&stored));
    /// assert!(!L1KeyRef::parse("app:users:43").is_key_of(&stored));
    /// ```
    #[inline(always)]
    pub fn is_key_of(&self, stored: &L1Key) -> bool {
        if self.hash != stored.hash {
            return false;
        }
        if !std::ptr::eq(self.base, stored.space.base()) {
            return self.equivalent_apart(stored);
        }
        match stored.key.is_short(self.key) {
            Some(same) => same,
            None => stored.key.is_long(self.key),
        }
    }
}

impl L1KeyRef<'_> {
    /// [`Equivalent::equivalent`] of a stored key whose base is not this key's allocation
    /// (a key read back from text): the bases by text, then the keys.
    #[cold]
    #[inline(never)]
    fn equivalent_apart(&self, stored: &L1Key) -> bool {
        same_text(self.base, stored.space.base()) && stored.key.is(self.key)
    }
}

impl PartialEq for L1KeyRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && same_key(self.key, other.key) && same_base(self.base, other.base)
    }
}

impl Eq for L1KeyRef<'_> {}

impl std::fmt::Display for L1KeyRef<'_> {
    /// The joined string, `{base}:{key}`, as remote tiers and the bus see it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::layout::write_entry(f, self.base, self.key)
    }
}

impl std::fmt::Debug for L1KeyRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L1KeyRef({self})")
    }
}

/// The key of an L1 entry as a tier stores it: its key space (shared by the entries of a
/// cache), its encoded key (inline when short), and their hash.
///
/// ```
/// use cache_core::store::{L1Key, L1KeyRef, Equivalent};
/// let stored = L1Key::parse("app:users:42");
/// assert!(L1KeyRef::parse("app:users:42").equivalent(&stored));
/// assert!(!L1KeyRef::parse("app:users:43").equivalent(&stored));
/// assert_eq!(stored.to_string(), "app:users:42");
/// ```
#[derive(Clone)]
pub struct L1Key {
    hash: u64,
    space: KeySpace,
    key: KeyBytes,
}

impl L1Key {
    /// [`L1KeyRef::parse`], owned.
    pub fn parse(stored: &str) -> Self {
        L1KeyRef::parse(stored).to_key()
    }

    /// The bytes this key holds on the heap of its own: the allocation of its encoded key
    /// when that is longer than the inline bytes, else none (its key space is shared by
    /// the entries of its base, and counted with none of them), as malloc serves it
    /// ([`allocated`]).
    pub(crate) fn heap_len(&self) -> usize {
        match &self.key {
            KeyBytes::Inline(..) => 0,
            KeyBytes::Heap(bytes) => allocated(bytes.len()),
        }
    }

    /// The borrowed form, for lookups.
    #[inline]
    pub fn borrowed(&self) -> L1KeyRef<'_> {
        L1KeyRef {
            hash: self.hash,
            base: self.space.base(),
            key: self.key.as_bytes(),
        }
    }

    /// Its key space.
    pub fn space(&self) -> &KeySpace {
        &self.space
    }

    /// The base of its key space.
    pub fn base(&self) -> &str {
        self.space.base()
    }

    /// The encoded key.
    pub fn key(&self) -> &[u8] {
        self.key.as_bytes()
    }
}

impl Hash for L1Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for L1Key {
    fn eq(&self, other: &Self) -> bool {
        self.borrowed().equivalent(other)
    }
}

impl Eq for L1Key {}

impl std::fmt::Display for L1Key {
    /// The joined string, `{base}:{key}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.borrowed().fmt(f)
    }
}

impl std::fmt::Debug for L1Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L1Key({self})")
    }
}

/// Hashes an [`L1Key`] or [`L1KeyRef`] to the hash it carries (a good one already: the
/// key space's seeded foldhash of the key), for a tier's tables.
///
/// ```
/// use cache_core::store::{L1Hasher, L1Key};
/// use std::hash::BuildHasher;
/// let key = L1Key::parse("app:users:42");
/// assert_eq!(L1Hasher.hash_one(&key), key.borrowed().hash_value());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct L1Hasher;

impl BuildHasher for L1Hasher {
    type Hasher = Carried;
    #[inline]
    fn build_hasher(&self) -> Carried {
        Carried(0)
    }
}

/// The hasher of [`L1Hasher`].
#[derive(Debug)]
pub struct Carried(u64);

impl Hasher for Carried {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is called by the key types; anything else is still hashed.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_store_keeps_one_key_space_per_base_while_it_is_held() {
        let spaces = KeySpaces::default();
        let users = spaces.of("app:users");
        assert!(Arc::ptr_eq(&users.0, &spaces.of("app:users").0));
        assert!(!Arc::ptr_eq(&users.0, &spaces.of("app:orders").0));
        // Spaces no one holds are dropped from the map as it grows.
        for i in 0..1_000 {
            let _ = spaces.of(&format!("app:users#n{i}"));
        }
        let kept = spaces.spaces.lock().unwrap().by_base.len();
        assert!(kept <= 32, "{kept} spaces kept for 1 held");
        assert!(Arc::ptr_eq(&users.0, &spaces.of("app:users").0));
    }

    /// The map of spaces is swept exactly when it holds twice as many as were live at the
    /// last sweep (at least 32): not before (a sweep on every new base would cost a walk of
    /// the map each), and then down to the spaces still held.
    #[test]
    fn the_key_spaces_are_swept_once_they_doubled() {
        let spaces = KeySpaces::default();
        let len = || spaces.spaces.lock().unwrap().by_base.len();
        let held: Vec<KeySpace> = (0..20)
            .map(|i| spaces.of(&format!("app:held{i}")))
            .collect();
        for i in 0..12 {
            let _ = spaces.of(&format!("app:gone{i}"));
        }
        assert_eq!(len(), 32, "no sweep below 32");
        let _ = spaces.of("app:gone12");
        assert_eq!(len(), 21, "swept at 32: the 20 held, and the new one");
        // The next sweep waits for twice the 20 found live.
        for i in 13..32 {
            let _ = spaces.of(&format!("app:gone{i}"));
        }
        assert_eq!(len(), 40, "no sweep below twice the live");
        let _ = spaces.of("app:gone32");
        assert_eq!(len(), 21, "swept at twice the live");
        for (i, space) in held.iter().enumerate() {
            assert!(Arc::ptr_eq(&space.0, &spaces.of(&format!("app:held{i}")).0));
        }
    }

    #[test]
    fn keys_are_held_inline_up_to_their_limit_and_compare_by_bytes() {
        let space = KeySpace::new("p:c");
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 100] {
            let text = "k".repeat(len);
            let key = space.key(text.as_bytes());
            assert_eq!(key.key(), text.as_bytes());
            assert_eq!(matches!(key.key, KeyBytes::Inline(..)), len <= INLINE);
            assert_eq!(key.borrowed(), space.key_ref(text.as_bytes()));
            assert_eq!(key, L1Key::parse(&format!("p:c:{text}")));
            assert_eq!(key.to_string(), format!("p:c:{text}"));
        }
        assert_ne!(space.key(b"1"), space.key(b"2"));
        assert_ne!(space.key(b"1"), KeySpace::new("p:d").key(b"1"));
        assert_ne!(space.key(b"1"), KeySpace::new("p:c#n").key(b"1"));
    }

    #[test]
    fn a_string_without_an_entry_separator_is_its_own_key() {
        for s in ["", "plain", "p:", r"p:c\:d", "p:c#n"] {
            let key = L1KeyRef::parse(s);
            assert_eq!(key.to_string(), s);
            assert_eq!(key.base(), "", "{s}");
        }
    }

    #[test]
    fn keys_of_every_short_length_compare_by_every_byte() {
        for n in 0..=20 {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same_key(&a, &a.clone()), "{n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x40;
                assert!(!same_key(&a, &b), "length {n}, byte {i}");
            }
            assert!(!same_key(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    /// A stored key is its own bytes and no others, at every length either side of the
    /// inline limit: a byte changed anywhere, a prefix, or the key with a zero byte more
    /// (what the inline form's padding holds) is another key, compared alone and as a
    /// tier's probe compares it (the same hash and base: the bytes decide).
    #[test]
    fn a_stored_key_of_every_length_is_its_bytes_and_no_others() {
        let space = KeySpace::new("p:c");
        for n in 0..=INLINE + 8 {
            let a: Vec<u8> = (1..=n as u8).collect();
            let stored = space.key(&a);
            // A lookup of `key` under the stored key's hash, in its key space.
            let probe = |key: &[u8]| {
                L1KeyRef {
                    hash: stored.hash,
                    base: space.base(),
                    key,
                }
                .equivalent(&stored)
            };
            let mut others = vec![a[..n.saturating_sub(1)].to_vec(), [&a[..], &[0]].concat()];
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x40;
                others.push(b);
            }
            assert!(stored.key.is(&a) && probe(&a), "{n}");
            assert!(space.key_ref(&a).equivalent(&stored), "{n}");
            for b in others.iter().filter(|b| **b != a) {
                assert!(!stored.key.is(b), "length {n}: {b:?}");
                assert!(!probe(b), "length {n}: {b:?}");
                assert!(!KeyBytes::new(b).is(&a), "length {n}: {b:?}");
            }
        }
    }

    /// A key's parts, its hash as a tier's table takes it ([`L1Hasher`]), and its `Debug`
    /// (which logs show), owned and borrowed alike.
    #[test]
    fn a_key_shows_its_parts_and_is_hashed_by_the_hash_it_carries() {
        let long = "k".repeat(INLINE + 1);
        for (base, key) in [("app:users", "42"), ("app:users#n", long.as_str())] {
            let stored = format!("{base}:{key}");
            let parsed = L1KeyRef::parse(&stored);
            let owned = L1Key::parse(&stored);
            assert_eq!((parsed.base(), parsed.key()), (base, key.as_bytes()));
            assert_eq!((owned.base(), owned.key()), (base, key.as_bytes()));
            assert_eq!(owned.space().base(), base);
            assert_eq!(parsed.to_key().space().base(), base);
            let hash = parsed.hash_value();
            assert_eq!(owned.borrowed().hash_value(), hash);
            assert_eq!(L1Hasher.hash_one(parsed), hash);
            assert_eq!(L1Hasher.hash_one(&owned), hash);
            assert_eq!(format!("{parsed:?}"), format!("L1KeyRef({stored})"));
            assert_eq!(format!("{owned:?}"), format!("L1Key({stored})"));
            assert_eq!(
                format!("{:?}", owned.space()),
                format!("KeySpace({base:?})")
            );
        }
        assert_eq!(L1Key::parse("app:users:42").heap_len(), 0, "inline");
        let heap = L1Key::parse(&format!("app:users:{long}"));
        assert_eq!(
            heap.heap_len(),
            32,
            "23 bytes and malloc's 8-byte header, in its 32-byte chunk"
        );
        let heap = L1Key::parse(&format!("app:users:{}", "k".repeat(40)));
        assert_eq!(
            heap.heap_len(),
            48,
            "40 bytes and the header, in 16-byte steps"
        );
    }

    /// Keys are spread by their bytes and by their key space's seed, and a tier's table
    /// still hashes what is not a key (`Carried::write`) by every byte, in order.
    #[test]
    fn keys_hash_apart_by_their_bytes_and_their_space() {
        let users = KeySpace::new("app:users");
        let orders = KeySpace::new("app:orders");
        let hashes = [
            users.key_ref(b"1").hash_value(),
            users.key_ref(b"2").hash_value(),
            orders.key_ref(b"1").hash_value(),
        ];
        assert_ne!(hashes[0], hashes[1], "two keys of one space");
        assert_ne!(hashes[0], hashes[2], "one key in two spaces");
        let bytes = |b: &[u8]| L1Hasher.hash_one(b);
        assert_ne!(bytes(b"a"), bytes(b"b"));
        assert_ne!(bytes(&[1, 1]), bytes(&[1, 0]));
        assert_ne!(bytes(b"ab"), bytes(b"ba"));
    }

    /// Two keys whose hashes and bytes agree are still told apart by their bases (a hash
    /// collision across key spaces), and a key differing from another is not its
    /// equivalent.
    #[test]
    fn keys_of_one_hash_and_bytes_in_two_spaces_differ() {
        let a = L1KeyRef {
            hash: 7,
            base: "app:a",
            key: b"1",
        };
        let b = L1KeyRef { base: "app:b", ..a };
        assert_ne!(a, b);
        let stored_b = b.to_key();
        assert!(!a.equivalent(&stored_b));
        assert!(b.equivalent(&stored_b));
        assert_ne!(a.to_key(), stored_b);
        // A hash collision in one space: the bytes tell the keys apart.
        let c = L1KeyRef { key: b"2", ..a };
        assert_ne!(a, c);
        assert!(!c.equivalent(&a.to_key()));
        assert_ne!(a.to_key(), c.to_key());
        let stored = L1Key::parse("app:users:42");
        assert!(!L1KeyRef::parse("app:users:43").equivalent(&stored));
        assert!(!L1KeyRef::parse("app:other:42").equivalent(&stored));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// A joined string read back is the key the engine filed: the same parts, the same
        /// hash, equal both ways (see `layout.rs`, point 7).
        #[test]
        fn a_parsed_stored_key_is_the_engines_own(
            cache in "[\\\\:#=~a-z]{0,6}",
            namespace in proptest::option::of("[\\\\:#a-z]{0,6}"),
            key in "[\\\\:,\\[\\]{}()=~#a-zé0-9]{0,30}",
        ) {
            use crate::layout;
            let mut base = layout::cache_base("app", &cache);
            if let Some(ns) = &namespace {
                base = layout::namespace_base(&base, ns);
            }
            let encoded = crate::key::encode_key(&(key.as_str(), 1u8)).unwrap();
            let stored = layout::entry_key(&base, &encoded);
            let space = KeySpace::new(&base);
            let engine = space.key_ref(encoded.as_bytes());
            let parsed = L1KeyRef::parse(&stored);
            proptest::prop_assert_eq!(parsed.hash_value(), engine.hash_value());
            proptest::prop_assert_eq!(parsed, engine);
            proptest::prop_assert!(parsed.equivalent(&space.key(encoded.as_bytes())));
            proptest::prop_assert!(engine.equivalent(&L1Key::parse(&stored)));
            proptest::prop_assert_eq!(parsed.to_string(), stored);
        }

        /// The whole chain of a hit against a bus message's removal: the key encoded on the
        /// stack (`scalar_key.rs`, as the hit path does) in the engine's key space is the key
        /// read back from the stored key the full encoder joins (as the bus, tags and
        /// replays carry it), for each form the fast path takes.
        #[test]
        fn the_fast_paths_key_is_the_stored_keys_parts(
            cache in "[\\\\:#=~a-z]{0,6}",
            namespace in proptest::option::of("[\\\\:#a-z]{0,6}"),
            text in "[\\\\:,\\[\\]{}()=~#a-zé0-9]{0,30}",
            n: u64,
            i: i32,
            flag: bool,
            c: char,
            x in -1e12..1e12f64,
        ) {
            use crate::layout;
            let mut base = layout::cache_base("app", &cache);
            if let Some(ns) = &namespace {
                base = layout::namespace_base(&base, ns);
            }
            let space = KeySpace::new(&base);
            let mut taken = 0;
            let mut check = |key: &dyn chain_key::Key| -> Result<(), proptest::test_runner::TestCaseError> {
                let Some(buf) = key.fast() else { return Ok(()) };
                taken += 1;
                let stored = key.stored(&base);
                let parsed = L1KeyRef::parse(&stored);
                let engine = space.key_ref(buf.as_bytes());
                proptest::prop_assert_eq!(parsed.hash_value(), engine.hash_value());
                proptest::prop_assert_eq!(parsed, engine);
                Ok(())
            };
            check(&n)?;
            check(&text.as_str())?;
            check(&(text.as_str(), n))?;
            check(&(i, flag, c))?;
            check(&((n, i), text.as_str()))?;
            check(&x)?;
            check(&Some(i))?;
            // Integers, chars, bools and floats in this range always take the fast path.
            proptest::prop_assert!(taken >= 4, "{taken}");
        }
    }

    /// A key as the chain test above uses it: encoded on the stack, or joined in full.
    mod chain_key {
        use serde::Serialize;

        use crate::scalar_key::KeyBuf;

        pub(super) trait Key {
            fn fast(&self) -> Option<KeyBuf>;
            fn stored(&self, base: &str) -> String;
        }

        impl<K: Serialize + ?Sized> Key for K {
            fn fast(&self) -> Option<KeyBuf> {
                KeyBuf::encode(self)
            }
            fn stored(&self, base: &str) -> String {
                crate::layout::entry_key_of(base, self).unwrap()
            }
        }
    }
}
