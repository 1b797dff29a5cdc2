//! Any `deserialize_*` call a hand-written `Deserialize` could make, not only the ones the
//! derive makes: a plan (bytes from proptest) picks each call, every `visit_*` the reader
//! makes (and `is_human_readable` of every deserializer handed on) is logged with its
//! value, and both readers must log the same and agree on success and on what is left.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::fmt::Write;

use proptest::prelude::*;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, VariantAccess, Visitor};
use serde::Deserialize;

use super::super::super::{CodecError, MAX_DEPTH, MAX_NESTING};

std::thread_local! {
    /// The plan (cycled through) and where it is.
    static PLAN: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    /// What the reader did, one line a call.
    static LOG: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The next choice of the plan (0 once it is empty).
fn next() -> u8 {
    PLAN.with(|p| {
        let (plan, at) = &mut *p.borrow_mut();
        let choice = plan.get(*at % plan.len().max(1)).copied().unwrap_or(0);
        *at += 1;
        choice
    })
}

/// Whether to read one element more: mostly, but the plan stops early now and then (what
/// is left is then the reader's to refuse).
fn read_on() -> bool {
    !next().is_multiple_of(8)
}

fn log(line: std::fmt::Arguments<'_>) {
    LOG.with(|l| writeln!(l.borrow_mut(), "{line}").unwrap());
}

/// Field lists a struct asks for: none, short, each length of a word compare, longer.
const FIELDS: [&[&str]; 4] = [
    &[],
    &["a", "bb", "ccc", "left", "right", "x"],
    &[
        "12345678",
        "123456789",
        "1234567890123456",
        "12345678901234567",
    ],
    &[
        "é", "straße", "", "a\u{0}b", "Unit", "Newtype", "Tuple", "Struct",
    ],
];

const VARIANTS: &[&str] = &["Unit", "Newtype", "Tuple", "Struct"];

/// A value whose every read is picked by the plan.
struct Planned;

impl<'de> Deserialize<'de> for Planned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Planned, D::Error> {
        log(format_args!("human {}", d.is_human_readable()));
        let v = Logger;
        let choice = next();
        let fields = FIELDS[usize::from(choice / 32) % FIELDS.len()];
        let len = usize::from(choice / 32);
        match choice % 32 {
            0 => d.deserialize_any(v),
            1 => d.deserialize_bool(v),
            2 => d.deserialize_i8(v),
            3 => d.deserialize_i16(v),
            4 => d.deserialize_i32(v),
            5 => d.deserialize_i64(v),
            6 => d.deserialize_i128(v),
            7 => d.deserialize_u8(v),
            8 => d.deserialize_u16(v),
            9 => d.deserialize_u32(v),
            10 => d.deserialize_u64(v),
            11 => d.deserialize_u128(v),
            12 => d.deserialize_f32(v),
            13 => d.deserialize_f64(v),
            14 => d.deserialize_char(v),
            15 => d.deserialize_str(v),
            16 => d.deserialize_string(v),
            17 => d.deserialize_bytes(v),
            18 => d.deserialize_byte_buf(v),
            19 => d.deserialize_option(v),
            20 => d.deserialize_unit(v),
            21 => d.deserialize_unit_struct("U", v),
            22 => d.deserialize_newtype_struct("N", v),
            23 => d.deserialize_newtype_struct("_ExtStruct", v),
            24 => d.deserialize_seq(v),
            25 => d.deserialize_tuple(len, v),
            26 => d.deserialize_tuple_struct("T", len, v),
            27 => d.deserialize_map(v),
            28 => d.deserialize_struct("S", fields, v),
            29 => d.deserialize_enum("E", VARIANTS, v),
            30 => d.deserialize_identifier(v),
            _ => d.deserialize_ignored_any(v),
        }
    }
}

/// Logs what it is handed; reads on through [`Planned`].
struct Logger;

macro_rules! logged {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Planned, E> {
            log(format_args!("{} {:?}", stringify!($method), v));
            Ok(Planned)
        }
    )*};
}

impl<'de> Visitor<'de> for Logger {
    type Value = Planned;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("anything")
    }

    logged! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Planned, E> {
        log(format_args!("visit_none"));
        Ok(Planned)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Planned, E> {
        log(format_args!("visit_unit"));
        Ok(Planned)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Planned, D::Error> {
        log(format_args!("visit_some"));
        Planned::deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Planned, D::Error> {
        log(format_args!("visit_newtype_struct"));
        Planned::deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Planned, A::Error> {
        log(format_args!("visit_seq"));
        while read_on() {
            if seq.next_element::<Planned>()?.is_none() {
                break;
            }
        }
        log(format_args!("end_seq"));
        Ok(Planned)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Planned, A::Error> {
        log(format_args!("visit_map"));
        while read_on() {
            if map.next_key::<Planned>()?.is_none() {
                break;
            }
            map.next_value::<Planned>()?;
        }
        log(format_args!("end_map"));
        Ok(Planned)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Planned, A::Error> {
        log(format_args!("visit_enum"));
        let (Planned, variant) = data.variant_seed(PlannedSeed)?;
        let choice = next();
        match choice % 4 {
            0 => variant.unit_variant().map(|()| Planned),
            1 => variant.newtype_variant::<Planned>(),
            2 => variant.tuple_variant(usize::from(choice / 4), Logger),
            _ => variant.struct_variant(FIELDS[usize::from(choice / 4) % FIELDS.len()], Logger),
        }
    }
}

struct PlannedSeed;

impl<'de> DeserializeSeed<'de> for PlannedSeed {
    type Value = Planned;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Planned, D::Error> {
        Planned::deserialize(d)
    }
}

/// What one reader did with `payload` under `plan`: its log, and whether it read a value
/// (and how many bytes were left when it says so).
fn run(plan: &[u8], read: impl FnOnce() -> Result<Planned, CodecError>) -> (String, String) {
    PLAN.with(|p| *p.borrow_mut() = (plan.to_vec(), 0));
    LOG.with(|l| l.borrow_mut().clear());
    let outcome = match read() {
        Ok(Planned) => "ok".to_string(),
        Err(CodecError::TrailingBytes(n)) => format!("{n} bytes left"),
        Err(_) => "error".to_string(),
    };
    (LOG.with(|l| std::mem::take(&mut *l.borrow_mut())), outcome)
}

/// Both readers on `payload` under `plan`, with the codec's bounds.
fn agree_planned(payload: &[u8], plan: &[u8]) -> Result<(), String> {
    agree_bounded(payload, plan, (MAX_DEPTH, MAX_NESTING))
}

/// Both readers on `payload` under `plan` and `(max_depth, max_nesting)`: the same calls,
/// the same outcome. The reference's log is its in-place reader's (the copying one hands
/// copies, not borrows).
fn agree_bounded(
    payload: &[u8],
    plan: &[u8],
    (max_depth, max_nesting): (usize, usize),
) -> Result<(), String> {
    let ours = run(plan, || {
        super::super::decode::<Planned>(payload, max_depth, max_nesting)
    });
    let (theirs_log, _) = run(plan, || {
        let mut de = rmp_serde::Deserializer::from_read_ref(payload);
        de.set_max_depth(max_depth);
        crate::depth::deserialize::<Planned, _>(&mut de, max_nesting)
            .map_err(|e| CodecError::Payload(e.to_string()))
    });
    // The outcome as `super::reference` finds it, in one pass (its two would use up the
    // plan twice): the copying reader, which tells what is left.
    let (_, theirs_outcome) = run(plan, || {
        let mut rest = payload;
        let mut de = rmp_serde::Deserializer::new(&mut rest);
        de.set_max_depth(max_depth);
        crate::depth::deserialize::<Planned, _>(&mut de, max_nesting)
            .map_err(|e| CodecError::Payload(e.to_string()))?;
        match rest.len() {
            0 => Ok(Planned),
            left => Err(CodecError::TrailingBytes(left)),
        }
    });
    if ours == (theirs_log.clone(), theirs_outcome.clone()) {
        return Ok(());
    }
    Err(format!(
        "payload {payload:02x?}, plan {plan:?}, bounds {max_depth}, {max_nesting}\nours ({}):\n{}\nrmp-serde ({theirs_outcome}):\n{theirs_log}",
        ours.1, ours.0
    ))
}

/// One MessagePack value of any marker (extensions and binaries included), nested.
fn arb_value() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        (
            prop::sample::select(
                &[0xcc_u8, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb][..]
            ),
            any::<[u8; 8]>()
        )
            .prop_map(|(m, bytes)| {
                let width = match m {
                    0xcc | 0xd0 => 1,
                    0xcd | 0xd1 => 2,
                    0xce | 0xd2 | 0xca => 4,
                    _ => 8,
                };
                [&[m][..], &bytes[..width]].concat()
            }),
        (".{0,20}", 0..3u8).prop_map(|(s, form)| {
            let len = s.len();
            let head = match form {
                0 if len < 32 => vec![0xa0 | len as u8],
                0 | 1 => vec![0xd9, len as u8],
                _ => [&[0xda][..], &(len as u16).to_be_bytes()].concat(),
            };
            [head, s.into_bytes()].concat()
        }),
        (proptest::collection::vec(any::<u8>(), 0..20), 0..3u8).prop_map(|(b, form)| {
            let head = match form {
                0 => vec![0xc4, b.len() as u8],
                1 => [&[0xc5][..], &(b.len() as u16).to_be_bytes()].concat(),
                _ => [&[0xc6][..], &(b.len() as u32).to_be_bytes()].concat(),
            };
            [head, b].concat()
        }),
        (
            any::<i8>(),
            prop::sample::select(&[1usize, 2, 4, 8, 16, 0, 3][..]),
            any::<[u8; 16]>()
        )
            .prop_map(|(tag, len, data)| {
                let head = match len {
                    1 => vec![0xd4],
                    2 => vec![0xd5],
                    4 => vec![0xd6],
                    8 => vec![0xd7],
                    16 => vec![0xd8],
                    _ => vec![0xc7, len as u8],
                };
                [head, vec![tag as u8], data[..len].to_vec()].concat()
            }),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5)
                .prop_map(|items| { [vec![0x90 | items.len() as u8], items.concat()].concat() }),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(|entries| {
                let mut out = vec![0x80 | entries.len() as u8];
                for (k, v) in entries {
                    out.extend(k);
                    out.extend(v);
                }
                out
            }),
        ]
    })
}

/// A payload that reads as anything for the names asked for (field names of each length,
/// variant names) as map keys and strings.
fn arb_named() -> impl Strategy<Value = Vec<u8>> {
    let names: Vec<&'static str> = FIELDS.iter().flat_map(|f| f.iter().copied()).collect();
    let name =
        prop::sample::select(names).prop_map(|n| [vec![0xa0 | n.len() as u8], n.into()].concat());
    let value = prop_oneof![name.clone(), arb_value()];
    prop_oneof![
        proptest::collection::vec((name.clone(), value.clone()), 0..5).prop_map(|entries| {
            let mut out = vec![0x80 | entries.len() as u8];
            for (k, v) in entries {
                out.extend(k);
                out.extend(v);
            }
            out
        }),
        (name, value).prop_map(|(k, v)| [vec![0x81], k, v].concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn prop_planned_reads_of_any_value_agree(
        value in arb_value(),
        plan in proptest::collection::vec(any::<u8>(), 1..24),
    ) {
        agree_planned(&value, &plan).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn prop_planned_reads_of_named_values_agree(
        value in arb_named(),
        plan in proptest::collection::vec(any::<u8>(), 1..24),
    ) {
        agree_planned(&value, &plan).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn prop_planned_reads_of_junk_agree(
        junk in proptest::collection::vec(any::<u8>(), 0..48),
        plan in proptest::collection::vec(any::<u8>(), 1..24),
    ) {
        agree_planned(&junk, &plan).map_err(TestCaseError::fail)?;
    }

    /// Bounds of a few levels, reached by the plans: every call counts its levels as the
    /// guard counts them, and every array, map and extension as rmp-serde counts them.
    #[test]
    fn prop_planned_reads_under_small_bounds_agree(
        value in prop_oneof![arb_value(), arb_named()],
        plan in proptest::collection::vec(any::<u8>(), 1..24),
        max_depth in 1..6usize,
        max_nesting in 0..8usize,
    ) {
        agree_bounded(&value, &plan, (max_depth, max_nesting)).map_err(TestCaseError::fail)?;
    }
}
