//! A struct's field names, matched by bytes against the names it asks for: handed on
//! exactly as the key read (the same text, by the same `visit_*` as rmp-serde), whatever
//! the length, the characters, or how near a key comes to a name.
#![allow(clippy::unwrap_used)]

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::super::same_bytes;
use super::{agree, ours};

/// The field-name compare is `==` for every pair of lengths 0..=40 (one a prefix of the
/// other, or the same bytes but one changed at any place, or alike).
#[test]
fn same_bytes_is_equality() {
    let base: Vec<u8> = (0..41u8).map(|i| i.wrapping_mul(37)).collect();
    for len in 0..=40usize {
        let a = &base[..len];
        for other in 0..=40usize {
            assert_eq!(
                same_bytes(a, &base[..other]),
                len == other,
                "{len} and {other} bytes"
            );
        }
        for at in 0..len {
            let mut b = a.to_vec();
            b[at] ^= 0x20;
            assert!(!same_bytes(a, &b), "{len} bytes, byte {at} changed");
        }
    }
}

/// Field names of every length 0..=40 (ASCII, and two-byte characters), asked for by
/// `deserialize_struct`: each key read as an identifier is handed on as the key itself,
/// by the same `visit_*`, as rmp-serde hands it: the name, its prefix (bytes, when that
/// cuts a character), the name and a byte more, the name with any one byte changed.
#[test]
fn field_names_are_handed_on_as_the_key_read() {
    for key in FIELD_NAMES.iter() {
        let key = key.as_bytes();
        let mut keys = vec![
            key.to_vec(),
            key[..key.len().saturating_sub(1)].to_vec(),
            [key, b"z"].concat(),
        ];
        for at in 0..key.len() {
            let mut changed = key.to_vec();
            changed[at] ^= 1;
            keys.push(changed);
        }
        let mut payload = [&[0xde][..], &(keys.len() as u16).to_be_bytes()].concat();
        for k in &keys {
            payload.extend([0xd9, k.len() as u8]);
            payload.extend(k);
            payload.push(0xc0);
        }
        let read = ours::<Keys>(&payload).unwrap();
        for (read, k) in read.0.iter().zip(&keys) {
            if let Ok(k) = std::str::from_utf8(k) {
                assert_eq!(read.split('\0').next(), Some(k), "{key:?}");
            }
        }
        agree::<Keys>(&payload).unwrap();
    }
}

/// Names of every length 0..=40, each once in ASCII and, from 2 bytes on, once in a
/// two-byte character (and one ASCII byte for odd lengths).
static FIELD_NAMES: std::sync::LazyLock<&'static [&'static str]> = std::sync::LazyLock::new(|| {
    let mut names = Vec::new();
    for len in 0..=40usize {
        names.push(("abcdefghijklmnopqrstuvwxyz".repeat(2)[..len]).to_string());
        if len >= 2 {
            names.push("ü".repeat(len / 2) + &"x".repeat(len % 2));
        }
    }
    let names: Vec<&'static str> = names.into_iter().map(|n| &*n.leak()).collect();
    names.leak()
});

/// A struct's keys as read through `deserialize_identifier`, each with the `visit_*` that
/// handed it on.
#[derive(Debug, PartialEq)]
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Map;
        impl<'de> serde::de::Visitor<'de> for Map {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(Key(key)) = m.next_key()? {
                    keys.push(key);
                    m.next_value::<IgnoredAny>()?;
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_struct("Keys", &FIELD_NAMES, Map)
    }
}

/// A key read as an identifier: its text, then how it was handed on.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> serde::de::Visitor<'de> for Name {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key, E> {
                Ok(Key(format!("{v}\0borrowed")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(format!("{v}\0copied")))
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<Key, E> {
                Ok(Key(format!("{v:?}\0borrowed bytes")))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Key, E> {
                Ok(Key(format!("{v:?}\0copied bytes")))
            }
        }
        d.deserialize_identifier(Name)
    }
}
