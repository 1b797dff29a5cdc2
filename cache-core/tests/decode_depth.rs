//! Crafted payloads nested far deeper than any value cachet writes decode as an error (a
//! miss), never a stack overflow, whatever the shape (issue 16, fault 1). These run on the
//! test harness's threads (2 MiB stacks) in debug builds, where frames are largest.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use cache_core::codec::{decode, encode, fingerprint, CodecError, EnvelopeMeta, MAX_NESTING};
use serde::{Deserialize, Serialize};

/// The recursive enum.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Filter {
    Eq(String),
    Not(Box<Filter>),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Tree(BTreeMap<String, Tree>);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct List(Vec<List>);

/// Recurses through an option and a newtype: neither consumes a byte of input.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Chain(Option<Box<Chain>>);

/// Recurses through newtypes alone.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Newtype(Box<Newtype>);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Leaf,
    Pair(Box<Shape>, u8),
    Node { child: Box<Shape> },
}

const DEEP: usize = 100_000;

/// An envelope for `V` around `payload`.
fn envelope<V: 'static>(payload: &[u8]) -> Vec<u8> {
    let mut bytes = encode(&(), &EnvelopeMeta::new(fingerprint::<V>(), None, None)).unwrap();
    bytes.pop(); // the payload of `()`
    bytes.extend_from_slice(payload);
    bytes
}

/// `opener` repeated `DEEP` times, then `leaf`.
fn nested(opener: &[u8], leaf: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(opener.len() * DEEP + leaf.len());
    for _ in 0..DEEP {
        p.extend_from_slice(opener);
    }
    p.extend_from_slice(leaf);
    p
}

fn assert_miss<V: serde::de::DeserializeOwned + std::fmt::Debug + 'static>(payload: &[u8]) {
    let bytes = envelope::<V>(payload);
    let result = decode::<V>(&bytes, fingerprint::<V>(), 64 << 20);
    match result {
        Err(CodecError::Payload(why)) => {
            assert!(why.contains("nest") || why.contains("depth"), "{why}")
        }
        other => panic!("expected a payload error, got {other:?}"),
    }
}

#[test]
fn enums_nested_100_000_deep_are_a_miss() {
    // {"Not": {"Not": ... {"Eq": ""}}}, ~500 KB as in the issue
    let payload = nested(
        &[0x81, 0xa3, b'N', b'o', b't'],
        &[0x81, 0xa2, b'E', b'q', 0xa0],
    );
    assert!(payload.len() > 500_000);
    assert_miss::<Filter>(&payload);
}

#[test]
fn tuple_and_struct_variants_nested_deep_are_a_miss() {
    // {"Pair": [{"Pair": [ ... ]}, 1]} and {"Node": {"child": ...}}
    let pair = nested(
        &[0x81, 0xa4, b'P', b'a', b'i', b'r', 0x92],
        &[0xa4, b'L', b'e', b'a', b'f'],
    );
    assert_miss::<Shape>(&pair);
    let node = nested(
        &[
            0x81, 0xa4, b'N', b'o', b'd', b'e', 0x81, 0xa5, b'c', b'h', b'i', b'l', b'd',
        ],
        &[0xa4, b'L', b'e', b'a', b'f'],
    );
    assert_miss::<Shape>(&node);
}

#[test]
fn maps_nested_100_000_deep_are_a_miss() {
    assert_miss::<Tree>(&nested(&[0x81, 0xa1, b'k'], &[0x80]));
    assert_miss::<BTreeMap<String, Tree>>(&nested(&[0x81, 0xa1, b'k'], &[0x80]));
}

#[test]
fn arrays_nested_100_000_deep_are_a_miss() {
    assert_miss::<List>(&nested(&[0x91], &[0x90]));
}

#[test]
fn options_and_newtypes_that_consume_no_input_are_a_miss() {
    // One byte: `Chain` reads it as Some(Chain(Some(...))) without ever consuming it.
    assert_miss::<Chain>(&[0x01]);
    assert_miss::<Newtype>(&[0x01]);
    assert_miss::<Option<Chain>>(&[0x01]);
}

#[test]
fn values_within_the_bound_still_decode() {
    // A chain of 100 enum levels, and a map/array mix: as deep as real values get and more.
    let mut filter = Filter::Eq("x".into());
    for _ in 0..100 {
        filter = Filter::Not(Box::new(filter));
    }
    let bytes = encode(
        &filter,
        &EnvelopeMeta::new(fingerprint::<Filter>(), None, None),
    )
    .unwrap();
    assert_eq!(
        decode::<Filter>(&bytes, fingerprint::<Filter>(), 1 << 20)
            .unwrap()
            .0,
        filter
    );
    let mut list = List(vec![]);
    for _ in 0..100 {
        list = List(vec![list]);
    }
    let bytes = encode(&list, &EnvelopeMeta::new(fingerprint::<List>(), None, None)).unwrap();
    assert_eq!(
        decode::<List>(&bytes, fingerprint::<List>(), 1 << 20)
            .unwrap()
            .0,
        list
    );
    // Past the bound, the same shape is refused.
    let mut filter = Filter::Eq("x".into());
    for _ in 0..MAX_NESTING {
        filter = Filter::Not(Box::new(filter));
    }
    let bytes = encode(
        &filter,
        &EnvelopeMeta::new(fingerprint::<Filter>(), None, None),
    )
    .unwrap();
    assert!(decode::<Filter>(&bytes, fingerprint::<Filter>(), 1 << 20).is_err());
}
