//! The reader against rmp-serde behind the nesting guard (how the codec read before, kept
//! here as the reference): values of every serde shape written by rmp-serde read back
//! equal by both; arbitrary, mutated and truncated payloads read as the same value or
//! fail in both; the nesting bounds at the same depth.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use proptest::prelude::*;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use super::super::{CodecError, MAX_DEPTH, MAX_NESTING};

mod names;
mod planned;

/// The reference: rmp-serde over the slice behind the guard, then one more marker read to
/// find the end, and the copying reader for the exact count of what is left (the codec's
/// reading before it had its own reader).
fn reference<V: DeserializeOwned>(payload: &[u8]) -> Result<V, CodecError> {
    let payload_err = |e: rmp_serde::decode::Error| CodecError::Payload(e.to_string());
    let mut de = rmp_serde::Deserializer::from_read_ref(payload);
    de.set_max_depth(MAX_DEPTH);
    let value = crate::depth::deserialize::<V, _>(&mut de, MAX_NESTING).map_err(payload_err)?;
    match serde::Deserializer::deserialize_option(&mut de, MarkerLeft) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            return Ok(value);
        }
        _ => {}
    }
    let mut rest = payload;
    let value = {
        let mut de = rmp_serde::Deserializer::new(&mut rest);
        de.set_max_depth(MAX_DEPTH);
        crate::depth::deserialize::<V, _>(&mut de, MAX_NESTING).map_err(payload_err)?
    };
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

struct MarkerLeft;

impl<'de> serde::de::Visitor<'de> for MarkerLeft {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the end of the payload")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, _left: D) -> Result<(), D::Error> {
        Ok(())
    }
}

fn ours<V: DeserializeOwned>(payload: &[u8]) -> Result<V, CodecError> {
    super::decode(payload, MAX_DEPTH, MAX_NESTING)
}

/// Both readers on `payload` as a `V`: the same value, or both an error (the same count
/// of bytes left over when either says so).
fn agree<V: DeserializeOwned + PartialEq + Debug>(payload: &[u8]) -> Result<(), String> {
    let (mine, theirs) = (ours::<V>(payload), reference::<V>(payload));
    let same = match (&mine, &theirs) {
        // NaN is not equal to itself: then the values must print the same.
        (Ok(a), Ok(b)) => a == b || format!("{a:?}") == format!("{b:?}"),
        (Err(CodecError::TrailingBytes(a)), Err(CodecError::TrailingBytes(b))) => a == b,
        (Err(CodecError::TrailingBytes(_)), Err(_))
        | (Err(_), Err(CodecError::TrailingBytes(_))) => false,
        (Err(_), Err(_)) => true,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "{}: ours {mine:?}, rmp-serde {theirs:?}, payload {payload:02x?}",
            std::any::type_name::<V>()
        ))
    }
}

fn encode<V: Serialize + ?Sized>(value: &V) -> Vec<u8> {
    let mut out = Vec::new();
    value
        .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
        .unwrap();
    out
}

/// Written by rmp-serde, read back equal by both, and its truncations (each, or ~300 spread
/// over a long payload, and the last 20) an error in both.
fn round_trip<V: Serialize + DeserializeOwned + PartialEq + Debug>(value: &V) {
    let bytes = encode(value);
    assert_eq!(&ours::<V>(&bytes).unwrap(), value, "{bytes:02x?}");
    agree::<V>(&bytes).unwrap();
    let step = (bytes.len() / 300).max(1);
    for len in (0..bytes.len())
        .step_by(step)
        .chain(bytes.len().saturating_sub(20)..bytes.len())
    {
        agree::<V>(&bytes[..len]).unwrap();
    }
}

/// Bytes written as a MessagePack binary (what `serde_bytes` does).
#[derive(Debug, Clone, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Bytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Numbers {
    a: u8,
    b: u16,
    c: u32,
    d: u64,
    e: u128,
    f: i8,
    g: i16,
    h: i32,
    i: i64,
    j: i128,
    k: f32,
    l: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Texts {
    ch: char,
    s: String,
    cow: Cow<'static, str>,
    boxed: Box<str>,
    bytes: Bytes,
    flag: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pair(u32, String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wrapper(Vec<u16>);

/// Externally tagged, every kind of variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum External {
    Unit,
    Newtype(i64),
    Tuple(u8, String),
    Struct { x: i32, y: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Internal {
    Circle {
        r: u32,
    },
    Named {
        name: String,
        tags: BTreeMap<String, i64>,
    },
    Wrapped(Pair2),
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pair2 {
    left: u8,
    right: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Unit,
    Newtype(String),
    Tuple(u8, u8),
    Struct { z: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Number(u64),
    Text(String),
    Record { id: u32, label: String },
    List(Vec<Untagged>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flattened {
    id: u32,
    #[serde(flatten)]
    inner: Pair2,
    #[serde(flatten)]
    rest: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    #[serde(rename = "ID", alias = "id")]
    identifier: u64,
    user_name: String,
    #[serde(default)]
    missing: Vec<u8>,
    #[serde(skip)]
    skipped: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sparse: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    only: u8,
}

/// Fewer fields than [`Everything`]: its other fields are ignored (`IgnoredAny`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Subset {
    unit: Unit,
    external: Vec<External>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    numbers: Numbers,
    texts: Texts,
    unit: Unit,
    empty: (),
    pair: Pair,
    wrapper: Wrapper,
    tuple: (u8, String, Option<bool>),
    external: Vec<External>,
    internal: Vec<Internal>,
    adjacent: Vec<Adjacent>,
    untagged: Vec<Untagged>,
    flattened: Flattened,
    attributes: Attributes,
    options: Vec<Option<Option<u8>>>,
    nested: Vec<Vec<BTreeMap<String, Vec<i32>>>>,
    by_number: BTreeMap<i64, String>,
    by_pair: BTreeMap<(u8, u8), bool>,
    hashed: HashMap<String, u8>,
}

/// A value that nests through options and newtypes only.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Node(Option<Box<Node>>);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Tree {
    Leaf,
    Branch(Box<Tree>),
}

/// Nests through enums and ends in a scalar, each the deepest read at its level: a string,
/// a number, a 128-bit integer (inside an option, one level deeper than the variant's
/// name), a unit variant's name (an identifier).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Deep {
    Text(Option<String>),
    Number(Option<u64>),
    Wide(Option<i128>),
    Record { a: Option<u8> },
    Stop,
    Next(Box<Deep>),
}

fn everything() -> Everything {
    Everything {
        numbers: Numbers {
            a: 200,
            b: 60_000,
            c: 4_000_000_000,
            d: u64::MAX,
            e: u128::MAX - 5,
            f: -100,
            g: -30_000,
            h: i32::MIN,
            i: i64::MIN + 1,
            j: i128::MIN + 7,
            k: 1.5,
            l: -2.25e300,
        },
        texts: Texts {
            ch: 'ß',
            s: "héllo wörld, a little longer than thirty-one bytes".into(),
            cow: Cow::Borrowed("cow"),
            boxed: "boxed".into(),
            bytes: Bytes(vec![0, 1, 2, 255]),
            flag: true,
        },
        unit: Unit,
        empty: (),
        pair: Pair(7, "seven".into()),
        wrapper: Wrapper(vec![1, 300, 65_535]),
        tuple: (1, "one".into(), Some(false)),
        external: vec![
            External::Unit,
            External::Newtype(-5),
            External::Tuple(3, "three".into()),
            External::Struct {
                x: -1,
                y: Some("why".into()),
            },
        ],
        internal: vec![
            Internal::Circle { r: 3 },
            Internal::Named {
                name: "n".into(),
                tags: [("a".to_string(), -1), ("b".to_string(), 2)].into(),
            },
            Internal::Wrapped(Pair2 {
                left: 1,
                right: vec![2, 3],
            }),
            Internal::Empty,
        ],
        adjacent: vec![
            Adjacent::Unit,
            Adjacent::Newtype("nt".into()),
            Adjacent::Tuple(1, 2),
            Adjacent::Struct { z: true },
        ],
        untagged: vec![
            Untagged::Number(9),
            Untagged::Text("t".into()),
            Untagged::Record {
                id: 4,
                label: "four".into(),
            },
            Untagged::List(vec![Untagged::Number(1), Untagged::Text("x".into())]),
        ],
        flattened: Flattened {
            id: 1,
            inner: Pair2 {
                left: 5,
                right: vec![],
            },
            rest: [("extra".to_string(), 8), ("more".to_string(), 9)].into(),
        },
        attributes: Attributes {
            identifier: 77,
            user_name: "ann".into(),
            missing: vec![],
            skipped: 0,
            sparse: None,
        },
        options: vec![None, Some(Some(3))],
        nested: vec![vec![[("k".to_string(), vec![-1, 0, 1])].into()], vec![]],
        by_number: [
            (-3, "minus three".to_string()),
            (1 << 40, "big".to_string()),
        ]
        .into(),
        by_pair: [((1, 2), true), ((3, 4), false)].into(),
        hashed: [("pi".to_string(), 3)].into(),
    }
}

#[test]
fn every_shape_reads_back_as_rmp_serde_reads_it() {
    round_trip(&everything());
    // `Some(Node(None))` is written as nil, as `None` is: not a round trip, read alike.
    agree::<Node>(&encode(&Node(Some(Box::new(Node(Some(Box::new(Node(
        None,
    )))))))))
    .unwrap();
    round_trip(&Tree::Branch(Box::new(Tree::Branch(Box::new(Tree::Leaf)))));
    round_trip(&Strict { only: 1 });
    round_trip(&(1u8, "a".to_string()));
    round_trip(&"just a string".to_string());
    round_trip(&Some(0u64));
    round_trip(&None::<u64>);
    round_trip(&vec![Bytes(vec![7; 300]), Bytes(vec![])]);
    round_trip(&"x".repeat(70_000));
    round_trip(&vec![0u32; 70_000]);
    round_trip(&(0..20).map(|i| (i, i)).collect::<BTreeMap<u32, u32>>());
    round_trip(
        &(0..70_000u32)
            .map(|i| (i, ()))
            .collect::<BTreeMap<u32, ()>>(),
    );
    // an L2 entry of the Redis bench's shape
    round_trip(&Pair2 {
        left: 42,
        right: vec![1, 2],
    });
}

/// Golden vectors: bytes as rmp-serde writes them (and as stores hold them from earlier
/// versions) read back as their values: a struct as a map of named fields, each kind of
/// enum variant, an option, a binary, a 128-bit integer as a `bin 8` of 16 bytes.
#[test]
fn stored_bytes_read_back() {
    type Stored = (Pair2, Vec<External>, Option<u16>, Bytes, i128);
    let stored: &[u8] = &[
        0x95, // the tuple; {left: 42, right: [1, 2]}
        0x82, 0xa4, b'l', b'e', b'f', b't', 0x2a, 0xa5, b'r', b'i', b'g', b'h', b't', 0x92, 1, 2,
        0x94, // the variants
        0xa4, b'U', b'n', b'i', b't', // a unit variant by name
        0x81, 0xa7, b'N', b'e', b'w', b't', b'y', b'p', b'e', 0xfb, // {Newtype: -5}
        0x81, 0xa5, b'T', b'u', b'p', b'l', b'e', 0x92, 0x03, 0xa1, b'3', // {Tuple: [3, "3"]}
        0x81, 0xa6, b'S', b't', b'r', b'u', b'c', b't', // {Struct: {x: -1, y: nil}}
        0x82, 0xa1, b'x', 0xff, 0xa1, b'y', 0xc0, //
        0xcd, 0x01, 0x00, // Some(256)
        0xc4, 0x02, 0xfe, 0xff, // bytes
        0xc4, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // -2
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    ];
    let value: Stored = (
        Pair2 {
            left: 42,
            right: vec![1, 2],
        },
        vec![
            External::Unit,
            External::Newtype(-5),
            External::Tuple(3, "3".into()),
            External::Struct { x: -1, y: None },
        ],
        Some(256),
        Bytes(vec![0xfe, 0xff]),
        -2,
    );
    assert_eq!(ours::<Stored>(stored).unwrap(), value);
    assert_eq!(encode(&value), stored, "rmp-serde writes these bytes");
    agree::<Stored>(stored).unwrap();
}

/// The same bytes read as other types: ignored fields, denied fields, a subset, type
/// confusion, `serde_json::Value` (`deserialize_any` all the way down).
#[test]
fn other_types_over_the_same_bytes_agree() {
    let bytes = encode(&everything());
    agree::<Subset>(&bytes).unwrap();
    agree::<Strict>(&bytes).unwrap();
    agree::<serde_json::Value>(&bytes).unwrap();
    agree::<BTreeMap<String, serde_json::Value>>(&bytes).unwrap();
    agree::<Vec<u8>>(&bytes).unwrap();
    agree::<Untagged>(&bytes).unwrap();
    assert!(ours::<Subset>(&bytes).is_ok());
    assert!(ours::<Strict>(&bytes).is_err());
    // aliases: `id` for `ID`
    let aliased = encode(&BTreeMap::from([("id", 5u64)]));
    agree::<Attributes>(&aliased).unwrap();
    // enum variants by index, unit variants as a map of nil, a binary as a sequence
    for payload in [
        &[0x00][..],
        &[0x01],
        &[0x81, 0xa4, b'U', b'n', b'i', b't', 0xc0],
        &[0x81, 0x01, 0x05],
        &[0x81, 0x02, 0x92, 0x01, 0xa1, b'a'],
        &[0xc4, 0x01, 0x00],
        &[0xa1, 0xff],
    ] {
        agree::<External>(payload).unwrap();
        agree::<Vec<u8>>(payload).unwrap();
        agree::<Pair2>(payload).unwrap();
        agree::<Bytes>(payload).unwrap();
    }
}

/// A string that is not UTF-8 reads as bytes where the value takes bytes, and fails where
/// it does not, in both.
#[test]
fn invalid_utf8_goes_to_bytes_where_taken() {
    let payload = [0xa2, 0xff, 0xfe];
    agree::<Bytes>(&payload).unwrap();
    agree::<String>(&payload).unwrap();
    assert_eq!(ours::<Bytes>(&payload).unwrap(), Bytes(vec![0xff, 0xfe]));
    assert!(ours::<String>(&payload).is_err());
}

/// Extensions (rmp-serde reads them as a newtype of (type, data)): ignored as unknown
/// fields, buffered by untagged enums, refused by plain values.
#[test]
fn extensions_read_as_rmp_serde_reads_them() {
    let exts: [&[u8]; 4] = [
        &[0xd4, 0x01, 0xaa],
        &[0xd5, 0xff, 0x01, 0x02],
        &[0xc7, 0x03, 0x05, 1, 2, 3],
        &[0xc8, 0x00, 0x01, 0x05, 9],
    ];
    for ext in exts {
        let field = |entries: u8| {
            let head = [
                0x80 | entries,
                0xa4,
                b'l',
                b'e',
                b'f',
                b't',
                0x01,
                0xa1,
                b'x',
            ];
            [&head[..], ext].concat()
        };
        let in_field = field(2);
        let with_right = [&field(3)[..], &[0xa5, b'r', b'i', b'g', b'h', b't', 0x90]].concat();
        assert!(ours::<Pair2>(&with_right).is_ok());
        agree::<Pair2>(&in_field).unwrap();
        agree::<Pair2>(&with_right).unwrap();
        agree::<Untagged>(ext).unwrap();
        agree::<serde_json::Value>(ext).unwrap();
        agree::<(i8, Bytes)>(ext).unwrap();
        agree::<u64>(ext).unwrap();
        agree::<Bytes>(ext).unwrap();
        for len in 0..ext.len() {
            agree::<Untagged>(&ext[..len]).unwrap();
        }
    }
}

/// Standard types whose form depends on `is_human_readable` (false: addresses as bytes in
/// enums, times as pairs), and the others read through serde's own impls: written by
/// rmp-serde, read back alike; each read as the others, alike.
#[test]
fn std_types_read_back_as_rmp_serde_reads_them() {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};
    use std::time::{Duration, SystemTime};
    type Std = (
        (IpAddr, IpAddr, SocketAddr, Duration, SystemTime),
        (
            char,
            Box<[u8]>,
            [u8; 4],
            std::marker::PhantomData<u8>,
            Option<()>,
        ),
        (f32, f64, u128, i128, std::num::NonZeroU16),
    );
    let value: Std = (
        (
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from(Ipv6Addr::LOCALHOST),
            "[::1]:8080".parse().unwrap(),
            Duration::new(5, 7),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_234_567),
        ),
        (
            '\u{1F600}',
            Box::new([1, 2]),
            [9, 8, 7, 6],
            std::marker::PhantomData,
            None,
        ),
        (
            f32::MIN_POSITIVE,
            f64::from(f32::MAX),
            u128::MAX,
            i128::MIN,
            7.try_into().unwrap(),
        ),
    );
    round_trip(&value);
    let bytes = encode(&value);
    agree::<((SocketAddr, IpAddr), (String, Vec<u8>))>(&bytes).unwrap();
    // f32 read as f64 and back, a one-char string as a char and not two
    agree::<f64>(&encode(&1.5f32)).unwrap();
    agree::<f32>(&encode(&1.5f64)).unwrap();
    agree::<f32>(&encode(&f64::MAX)).unwrap();
    agree::<char>(&encode("é")).unwrap();
    agree::<char>(&encode("ab")).unwrap();
    agree::<char>(&encode("")).unwrap();
}

/// An extension's parts read as 128-bit integers: rmp-serde's extension reader leaves
/// `deserialize_i128` and `deserialize_u128` to serde's default, an error; so does ours.
#[test]
fn an_extension_refuses_128_bit_integers() {
    /// rmp-serde's name for an extension read as (type, data).
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename = "_ExtStruct")]
    struct Ext<T>((T, Bytes));
    let ext = [0xd4, 0x01, 0xaa];
    assert_eq!(ours::<Ext<i8>>(&ext).unwrap(), Ext((1, Bytes(vec![0xaa]))));
    agree::<Ext<i8>>(&ext).unwrap();
    assert!(ours::<Ext<i128>>(&ext).is_err());
    agree::<Ext<i128>>(&ext).unwrap();
    agree::<Ext<u128>>(&ext).unwrap();
}

/// Borrowed strings: `&str` fields point into the payload, as rmp-serde's do.
#[test]
fn strings_are_borrowed_when_the_value_can() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Borrowed<'a> {
        name: &'a str,
        #[serde(borrow)]
        cow: Cow<'a, str>,
    }
    let bytes = encode(&BTreeMap::from([("name", "ann"), ("cow", "moo")]));
    let read: Borrowed<'_> = super::decode(&bytes, MAX_DEPTH, MAX_NESTING).unwrap();
    assert_eq!(read, rmp_serde::from_slice::<Borrowed<'_>>(&bytes).unwrap());
    assert!(bytes.as_ptr_range().contains(&read.name.as_ptr()));
    assert!(matches!(read.cow, Cow::Borrowed(_)));
}

/// The bound on levels of any shape: from the one byte `0x01`, options and newtypes recurse
/// without reading, and fail at the bound; deep arrays fail at it too when the array bound
/// is higher (the guard's own test, `depth::nesting_that_reads_no_byte_fails_at_the_bound`).
#[test]
fn nesting_that_reads_no_byte_fails_at_the_bound() {
    for max in [1, 64, 512] {
        let err = super::decode::<Node>(&[0x01], MAX_DEPTH, max).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("nests more than {max} levels")),
            "{err}"
        );
    }
    let mut deep = vec![0x91u8; 600];
    deep.push(0xc0);
    let err = super::decode::<IgnoredAny>(&deep, 1024, 512).unwrap_err();
    assert!(err.to_string().contains("nests more than 512"), "{err}");
}

/// 100,000 levels through each shape that nests, as an unknown field's value (skipped as
/// `IgnoredAny`) and as values that follow them: refused at a bound, in both, the stack
/// intact (a bound counted after the recursion would overflow it here).
#[test]
fn nesting_100k_deep_is_refused_at_a_bound() {
    const DEEP: usize = 100_000;
    let key_a = [0xa1, b'a'];
    let shapes: [(&str, Vec<u8>); 5] = [
        ("arrays", [0x91].repeat(DEEP)),
        ("maps as keys", [0x81].repeat(DEEP)),
        (
            "maps as values",
            [&[0x81][..], &key_a].concat().repeat(DEEP),
        ),
        (
            "newtype variants",
            [&[0x81, 0xa6][..], b"Branch"].concat().repeat(DEEP),
        ),
        ("arrays as map keys", [0x81, 0x91].repeat(DEEP)),
    ];
    for (shape, nested) in shapes {
        // {"left": 1, "x": <nested>, "right": []}
        let unknown = [
            &[0x83, 0xa4, b'l', b'e', b'f', b't', 0x01, 0xa1, b'x'][..],
            &nested,
            &[0xa5, b'r', b'i', b'g', b'h', b't', 0x90],
        ]
        .concat();
        assert!(ours::<Pair2>(&unknown).is_err(), "{shape}");
        agree::<Pair2>(&unknown).unwrap();
        agree::<IgnoredAny>(&nested).unwrap();
        agree::<serde_json::Value>(&nested).unwrap();
        agree::<Tree>(&nested).unwrap();
        agree::<Untagged>(&nested).unwrap();
    }
}

/// Values nested 1..=600 deep through each shape: both read the same depths and refuse the
/// same (options and newtypes: the 512-level bound; arrays: the 128 bound; enums as maps
/// of one entry: no array bound, two levels each, down to a scalar read at the bound).
#[test]
fn both_bounds_stop_at_the_same_depth() {
    for depth in 1..=600usize {
        let mut node = Node(None);
        let mut tree = Tree::Leaf;
        for _ in 0..depth {
            node = Node(Some(Box::new(node)));
            tree = Tree::Branch(Box::new(tree));
        }
        agree::<Node>(&encode(&node)).unwrap();
        agree::<Tree>(&encode(&tree)).unwrap();
        let mut arrays = vec![0x91u8; depth];
        arrays.push(0xc0);
        agree::<serde_json::Value>(&arrays).unwrap();
        agree::<IgnoredAny>(&arrays).unwrap();
        agree::<Untagged>(&arrays).unwrap();
        // maps of maps, as keys and as values
        let mut maps = vec![0x81u8; depth];
        maps.push(0xc0);
        agree::<IgnoredAny>(&maps).unwrap();
        agree::<Tree>(&maps).unwrap();
        for leaf in [
            Deep::Text(Some("x".into())),
            Deep::Number(Some(5)),
            Deep::Wide(Some(-1)),
            Deep::Record { a: Some(1) },
            Deep::Stop,
        ] {
            let mut deep = leaf;
            for _ in 0..depth {
                deep = Deep::Next(Box::new(deep));
            }
            agree::<Deep>(&encode(&deep)).unwrap();
        }
        // Drop deep values iteratively: a deep `Box` chain would overflow on drop.
        while let Node(Some(next)) = node {
            node = *next;
        }
        while let Tree::Branch(next) = tree {
            tree = *next;
        }
    }
}

/// What each sequence and map says it will hold is never more than the bytes left, so a
/// length prefix of 2^32 allocates nothing for its claim.
#[test]
fn size_hints_never_claim_more_than_is_left() {
    for marker in [0xdd_u8, 0xdf] {
        let payload = [&[marker][..], &u32::MAX.to_be_bytes(), &[1, 2, 3]].concat();
        PROBE.with(|p| p.set(None));
        // The probe reads no element: an error (elements left), after it saw the hint.
        assert!(super::decode::<HintProbe>(&payload, MAX_DEPTH, MAX_NESTING).is_err());
        let hint = PROBE.with(|p| p.get());
        assert!(hint.is_some_and(|h| h <= 3), "{marker:#x}: {hint:?}");
    }
}

std::thread_local! {
    static PROBE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Records the size hint it is given (in [`PROBE`]), reading nothing.
struct HintProbe;

impl<'de> Deserialize<'de> for HintProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = HintProbe;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence or map")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, s: A) -> Result<HintProbe, A::Error> {
                PROBE.with(|p| p.set(s.size_hint()));
                Ok(HintProbe)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<HintProbe, A::Error> {
                PROBE.with(|p| p.set(m.size_hint()));
                Ok(HintProbe)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Every byte of a rich payload replaced by every other value: both agree each time.
#[test]
fn every_single_byte_substitution_agrees() {
    let bytes = encode(&(
        Pair2 {
            left: 1,
            right: vec![2, 3],
        },
        External::Struct {
            x: 5,
            y: Some("y".into()),
        },
        vec![Untagged::Number(1), Untagged::Text("t".into())],
        Internal::Circle { r: 9 },
        Adjacent::Newtype("n".into()),
    ));
    type Shape = (Pair2, External, Vec<Untagged>, Internal, Adjacent);
    let mut mutated = bytes.clone();
    for at in 0..bytes.len() {
        for b in 0..=255u8 {
            mutated[at] = b;
            agree::<Shape>(&mutated).unwrap();
            agree::<serde_json::Value>(&mutated).unwrap();
        }
        mutated[at] = bytes[at];
    }
}

fn arb_external() -> impl Strategy<Value = External> {
    prop_oneof![
        Just(External::Unit),
        any::<i64>().prop_map(External::Newtype),
        (any::<u8>(), ".{0,40}").prop_map(|(a, b)| External::Tuple(a, b)),
        (any::<i32>(), proptest::option::of(".{0,8}")).prop_map(|(x, y)| External::Struct { x, y }),
    ]
}

fn arb_untagged() -> impl Strategy<Value = Untagged> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Untagged::Number),
        ".{0,10}".prop_map(Untagged::Text),
        (any::<u32>(), ".{0,5}").prop_map(|(id, label)| Untagged::Record { id, label }),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(Untagged::List)
    })
}

fn arb_numbers() -> impl Strategy<Value = Numbers> {
    (
        (
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<u64>(),
            any::<u128>(),
        ),
        (
            any::<i8>(),
            any::<i16>(),
            any::<i32>(),
            any::<i64>(),
            any::<i128>(),
        ),
        (any::<f32>(), any::<f64>()),
    )
        .prop_map(|((a, b, c, d, e), (f, g, h, i, j), (k, l))| Numbers {
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            i,
            j,
            k,
            l,
        })
}

/// A payload of a mixed record, one of a few types to read it as.
type Mixed = (
    Vec<External>,
    Vec<Untagged>,
    BTreeMap<String, Vec<u8>>,
    Option<Pair2>,
);

fn arb_mixed() -> impl Strategy<Value = Mixed> {
    (
        proptest::collection::vec(arb_external(), 0..4),
        proptest::collection::vec(arb_untagged(), 0..3),
        proptest::collection::btree_map(
            ".{0,6}",
            proptest::collection::vec(any::<u8>(), 0..6),
            0..3,
        ),
        proptest::option::of(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..4))
                .prop_map(|(left, right)| Pair2 { left, right }),
        ),
    )
}

/// `payload` read as each of the test types by both readers.
fn agree_as_all(payload: &[u8]) -> Result<(), String> {
    agree::<Mixed>(payload)?;
    agree::<Numbers>(payload)?;
    agree::<Everything>(payload)?;
    agree::<serde_json::Value>(payload)?;
    agree::<Vec<Internal>>(payload)?;
    agree::<Vec<Adjacent>>(payload)?;
    agree::<Flattened>(payload)?;
    agree::<Attributes>(payload)?;
    agree::<Strict>(payload)?;
    agree::<Node>(payload)?;
    agree::<Tree>(payload)?;
    agree::<Texts>(payload)?;
    agree::<(u128, i128, Option<char>)>(payload)?;
    Ok(())
}

/// One edit of a payload.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        return;
    }
    match *edit {
        Edit::Set(at, b) => {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        Edit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
        Edit::Remove(at) => {
            bytes.remove(at % bytes.len());
        }
        Edit::Truncate(at) => bytes.truncate(at % bytes.len()),
    }
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Set(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Insert(a, b)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn prop_arbitrary_bytes_agree(junk in proptest::collection::vec(any::<u8>(), 0..300)) {
        agree_as_all(&junk).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn prop_written_values_read_back_in_both(mixed in arb_mixed(), numbers in arb_numbers()) {
        let bytes = encode(&mixed);
        prop_assert_eq!(ours::<Mixed>(&bytes).unwrap(), mixed);
        agree_as_all(&bytes).map_err(TestCaseError::fail)?;
        // NaN is not equal to itself: compare the bytes written back instead.
        let bytes = encode(&numbers);
        prop_assert_eq!(encode(&ours::<Numbers>(&bytes).unwrap()), bytes.clone());
        prop_assert_eq!(encode(&reference::<Numbers>(&bytes).unwrap()), bytes);
    }

    #[test]
    fn prop_mutated_payloads_agree(
        mixed in arb_mixed(),
        edits in proptest::collection::vec(arb_edit(), 1..4),
    ) {
        let mut bytes = encode(&mixed);
        for edit in &edits {
            apply(&mut bytes, edit);
        }
        agree_as_all(&bytes).map_err(TestCaseError::fail)?;
        let mut bytes = encode(&everything());
        for edit in &edits {
            apply(&mut bytes, edit);
        }
        agree_as_all(&bytes).map_err(TestCaseError::fail)?;
    }
}
