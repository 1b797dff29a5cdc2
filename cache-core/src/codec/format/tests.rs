//! Every codec: round trips, golden payloads, and hostile bytes (a miss each, never a
//! panic, a stack overflow or an allocation the input does not pay for).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::codec::{fingerprint, EnvelopeMeta};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    roles: Vec<u32>,
    manager: Option<u64>,
}

/// A value that nests through options and newtypes only: no array or map to count.
#[derive(Debug, Serialize, Deserialize)]
struct Node(Option<Box<Node>>);

fn user() -> User {
    User {
        id: 42,
        name: "Alice".into(),
        email: "alice@example.com".into(),
        roles: (1..=10).collect(),
        manager: Some(7),
    }
}

/// What an application's codec does with the bytes.
#[derive(Debug, Clone, Copy)]
enum Wire {
    /// JSON again, as an application would write a codec of its own.
    Json,
    /// MessagePack with no depth limit of its own: cachet's guard alone has to bound it.
    UnboundedMsgPack,
    /// Writes nothing and never reads.
    Nothing,
}

/// An application's codec: its name, its id and what it does (one type for every codec the
/// tests write, so each is a row, not an impl).
struct AppCodec(&'static str, u8, Wire);

/// The codecs an application registers in [`codecs`].
const APP_JSON: AppCodec = AppCodec("app-json", 200, Wire::Json);
const APP_MSGPACK: AppCodec = AppCodec("app-msgpack", 201, Wire::UnboundedMsgPack);

impl Codec for AppCodec {
    fn name(&self) -> &str {
        self.0
    }
    fn id(&self) -> u8 {
        self.1
    }
    fn encode(
        &self,
        value: &dyn erased_serde::Serialize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let failed = |e: &dyn std::fmt::Display| CodecError::Encode(e.to_string());
        match self.2 {
            Wire::Json => erased_serde::serialize(value, &mut serde_json::Serializer::new(out))
                .map_err(|e| failed(&e)),
            Wire::UnboundedMsgPack => {
                erased_serde::serialize(value, &mut rmp_serde::Serializer::new(out))
                    .map_err(|e| failed(&e))
            }
            Wire::Nothing => Ok(()),
        }
    }
    fn decode<'de>(
        &self,
        payload: &'de [u8],
        read: &mut dyn FnMut(
            &mut dyn erased_serde::Deserializer<'de>,
        ) -> Result<(), erased_serde::Error>,
    ) -> Result<(), CodecError> {
        match self.2 {
            Wire::Json => {
                let mut de = serde_json::Deserializer::from_slice(payload);
                read(&mut <dyn erased_serde::Deserializer<'_>>::erase(&mut de))
                    .map_err(payload_err)?;
                de.end().map_err(payload_err)
            }
            Wire::UnboundedMsgPack => {
                let mut rest = payload;
                let mut de = rmp_serde::Deserializer::new(&mut rest);
                de.set_max_depth(usize::MAX);
                read(&mut <dyn erased_serde::Deserializer<'_>>::erase(&mut de))
                    .map_err(payload_err)?;
                match rest.len() {
                    0 => Ok(()),
                    n => Err(CodecError::TrailingBytes(n)),
                }
            }
            Wire::Nothing => Ok(()),
        }
    }
}

/// Every codec this build has.
fn codecs() -> Vec<ValueCodec> {
    vec![
        ValueCodec::msgpack(),
        #[cfg(feature = "bincode")]
        ValueCodec::bincode(),
        #[cfg(feature = "json")]
        ValueCodec::json(),
        ValueCodec::custom(APP_JSON).unwrap(),
        ValueCodec::custom(APP_MSGPACK).unwrap(),
    ]
}

fn meta_of<V: 'static>() -> EnvelopeMeta {
    EnvelopeMeta::new(fingerprint::<V>(), Some(1_700_000_000_000), None)
}

/// An envelope of `codec` around a hand-made payload.
fn with_payload<V: 'static>(codec: &ValueCodec, payload: &[u8]) -> Vec<u8> {
    let mut bytes = codec.encode(&(), &meta_of::<V>()).unwrap();
    bytes.truncate(HEADER_LEN);
    bytes.extend_from_slice(payload);
    bytes
}

fn decode_as<V: DeserializeOwned + 'static>(
    codec: &ValueCodec,
    bytes: &[u8],
) -> Result<V, CodecError> {
    codec
        .decode::<V>(bytes, fingerprint::<V>(), 1 << 20)
        .map(|(v, _)| v)
}

#[test]
fn each_codec_round_trips_and_records_itself() {
    for codec in codecs() {
        let bytes = codec.encode(&user(), &meta_of::<User>()).unwrap();
        assert_eq!(bytes[2], codec.id(), "{codec:?}");
        let (value, meta) = codec
            .decode::<User>(&bytes, fingerprint::<User>(), 1024)
            .unwrap();
        assert_eq!((value, meta), (user(), meta_of::<User>()), "{codec:?}");
        assert_eq!(codec.read_meta(&bytes, 1024).unwrap(), meta_of::<User>());
    }
}

#[test]
fn another_codecs_entry_is_an_error_never_a_value() {
    for writer in codecs() {
        let bytes = writer.encode(&user(), &meta_of::<User>()).unwrap();
        for reader in codecs().into_iter().filter(|r| r.id() != writer.id()) {
            let err = decode_as::<User>(&reader, &bytes).unwrap_err();
            assert!(
                matches!(err, CodecError::OtherCodec { expected, found } if expected == reader.id() && found == writer.id()),
                "{writer:?} read by {reader:?}: {err}"
            );
            assert!(reader.read_meta(&bytes, 1024).is_err());
        }
    }
}

#[test]
fn application_codecs_take_ids_from_128() {
    let err = ValueCodec::custom(AppCodec("low", 3, Wire::Nothing)).unwrap_err();
    assert!(err.to_string().contains("128"), "{err}");
}

#[test]
fn a_custom_codec_that_never_reads_is_an_error() {
    let codec = ValueCodec::custom(AppCodec("lazy", 130, Wire::Nothing)).unwrap();
    let bytes = codec.encode(&1u8, &meta_of::<u8>()).unwrap();
    assert!(decode_as::<u8>(&codec, &bytes).is_err());
}

#[test]
fn builtin_names() {
    assert_eq!(
        ValueCodec::builtin("msgpack").unwrap().unwrap().id(),
        MSGPACK
    );
    assert!(ValueCodec::builtin("cbor").unwrap().is_none());
    #[cfg(feature = "bincode")]
    assert_eq!(
        ValueCodec::builtin("bincode").unwrap().unwrap().id(),
        BINCODE
    );
    #[cfg(feature = "json")]
    assert_eq!(ValueCodec::builtin("json").unwrap().unwrap().id(), JSON);
    #[cfg(not(feature = "json"))]
    assert!(ValueCodec::builtin("json")
        .unwrap_err()
        .contains("`json` feature"));
}

/// Golden payloads: pin each built-in codec's wire format.
#[test]
fn golden_payloads() {
    let payload = |codec: &ValueCodec| {
        codec
            .encode(&(1u8, "a"), &EnvelopeMeta::new(0, None, None))
            .unwrap()[HEADER_LEN..]
            .to_vec()
    };
    assert_eq!(payload(&ValueCodec::msgpack()), [0x92, 0x01, 0xa1, b'a']);
    #[cfg(feature = "bincode")]
    assert_eq!(payload(&ValueCodec::bincode()), [0x01, 0x01, b'a']);
    #[cfg(feature = "json")]
    assert_eq!(payload(&ValueCodec::json()), *b"[1,\"a\"]");
}

#[test]
fn trailing_bytes_are_an_error_in_every_codec() {
    for codec in codecs() {
        let mut bytes = codec.encode(&user(), &meta_of::<User>()).unwrap();
        bytes.push(b'1');
        assert!(decode_as::<User>(&codec, &bytes).is_err(), "{codec:?}");
    }
}

/// MessagePack is read in place, where what is left over is found by reading one more
/// value: whatever follows the value (a whole value, a fragment, a length prefix claiming
/// more than is there, deep nesting) is an error that counts every byte left, never a value.
#[test]
fn msgpack_counts_whatever_follows_the_value() {
    let codec = ValueCodec::msgpack();
    let value = codec.encode(&user(), &meta_of::<User>()).unwrap();
    let tails: [&[u8]; 6] = [
        &[0x01],
        &[0x92],
        &[0xdd, 0xff, 0xff, 0xff, 0xff, 1],
        &[0xd9, 200, b'a'],
        &[0xc1],
        &[0x91; 10_000],
    ];
    for tail in tails {
        let bytes = [&value[..], tail].concat();
        let err = decode_as::<User>(&codec, &bytes).unwrap_err();
        assert!(
            matches!(err, CodecError::TrailingBytes(n) if n == tail.len()),
            "{} bytes left over: {err}",
            tail.len()
        );
    }
    assert_eq!(decode_as::<User>(&codec, &value).unwrap(), user());
}

#[test]
fn truncated_payloads_are_errors_in_every_codec() {
    for codec in codecs() {
        let bytes = codec.encode(&user(), &meta_of::<User>()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode_as::<User>(&codec, &bytes[..len]).is_err(),
                "{codec:?}: a prefix of {len} bytes decoded"
            );
        }
    }
}

/// Nesting through options and newtypes (no bytes of structure in bincode: one byte per
/// level) and through arrays: an error at the bound, not a stack overflow.
#[test]
fn deep_nesting_is_an_error_in_every_codec() {
    let deep_json_array = {
        let mut p = vec![b'['; 100_000];
        p.extend(vec![b']'; 100_000]);
        p
    };
    for codec in codecs() {
        let payload: Vec<u8> = match codec.id() {
            // Some(Some(...)) from one byte: options and newtypes read no marker.
            201 => vec![0x01],
            MSGPACK => {
                let mut p = vec![0x91; 100_000];
                p.push(0xc0);
                p
            }
            BINCODE => {
                // Some(Some(Some(...))): one 0x01 per level.
                let mut p = vec![0x01; 100_000];
                p.push(0x00);
                p
            }
            _ => deep_json_array.clone(),
        };
        let bytes = with_payload::<Node>(&codec, &payload);
        let err = decode_as::<Node>(&codec, &bytes).unwrap_err();
        assert!(matches!(err, CodecError::Payload(_)), "{codec:?}: {err}");
        let bytes = with_payload::<serde_json::Value>(&codec, &payload);
        assert!(
            decode_as::<Vec<serde_json::Value>>(&codec, &bytes).is_err(),
            "{codec:?}"
        );
    }
}

/// A length prefix claiming 2^32 or 2^64 elements or bytes fails at the end of the input,
/// quickly, without allocating for the claim.
#[test]
fn huge_length_prefixes_fail_without_allocating() {
    let (u32_be, u32_le, u64_le) = (
        &u32::MAX.to_be_bytes()[..],
        &u32::MAX.to_le_bytes()[..],
        &u64::MAX.to_le_bytes()[..],
    );
    // MessagePack: array 32, str 32, bin 32, map 32; bincode varints: 0xfc + u32, 0xfd + u64.
    let claims = [
        (MSGPACK, 0xdd, u32_be),
        (MSGPACK, 0xdb, u32_be),
        (MSGPACK, 0xc6, u32_be),
        (MSGPACK, 0xdf, u32_be),
        (BINCODE, 0xfc, u32_le),
        (BINCODE, 0xfd, u64_le),
    ];
    let prefixes: Vec<(u8, Vec<u8>)> = claims
        .iter()
        .map(|&(codec, marker, length)| (codec, [&[marker][..], length, &[1, 2, 3]].concat()))
        .collect();
    for codec in codecs() {
        for (_, payload) in prefixes.iter().filter(|(id, _)| *id == codec.id()) {
            let vec_u64 = with_payload::<Vec<u64>>(&codec, payload);
            assert!(decode_as::<Vec<u64>>(&codec, &vec_u64).is_err());
            let string = with_payload::<String>(&codec, payload);
            assert!(decode_as::<String>(&codec, &string).is_err());
            let bytes = with_payload::<Vec<u8>>(&codec, payload);
            assert!(decode_as::<Vec<u8>>(&codec, &bytes).is_err());
            let map = with_payload::<BTreeMap<u32, u32>>(&codec, payload);
            assert!(decode_as::<BTreeMap<u32, u32>>(&codec, &map).is_err());
        }
    }
}

#[test]
fn oversized_entries_are_rejected_before_decoding_in_every_codec() {
    for codec in codecs() {
        let bytes = codec
            .encode(&vec![7u8; 2000], &meta_of::<Vec<u8>>())
            .unwrap();
        let err = codec
            .decode::<Vec<u8>>(&bytes, fingerprint::<Vec<u8>>(), 1000)
            .unwrap_err();
        assert!(
            matches!(err, CodecError::TooLarge { max: 1000, .. }),
            "{err}"
        );
    }
}

#[test]
fn an_application_codec_takes_ids_from_first_custom_id() {
    let with_id = |id| ValueCodec::custom(AppCodec("with-id", id, Wire::Json));
    assert_eq!(with_id(FIRST_CUSTOM_ID).unwrap().id(), FIRST_CUSTOM_ID);
    assert!(with_id(FIRST_CUSTOM_ID - 1).is_err());
}

#[test]
fn every_builtin_codec_is_found_by_its_name() {
    for codec in codecs().into_iter().filter(|c| c.id() < FIRST_CUSTOM_ID) {
        let found = ValueCodec::builtin(codec.name()).unwrap().unwrap();
        assert_eq!((found.name(), found.id()), (codec.name(), codec.id()));
    }
}

/// Only in a build without the feature (`cargo test -p cache-core`): the name is still
/// known, and the error says which feature to turn on.
#[cfg(not(feature = "bincode"))]
#[test]
fn bincode_without_its_feature_names_the_feature() {
    let err = ValueCodec::builtin("bincode").unwrap_err();
    assert!(err.contains("`bincode` feature"), "{err}");
}

/// As [`bincode_without_its_feature_names_the_feature`], for JSON.
#[cfg(not(feature = "json"))]
#[test]
fn json_without_its_feature_names_the_feature() {
    let err = ValueCodec::builtin("json").unwrap_err();
    assert!(err.contains("`json` feature"), "{err}");
}

#[test]
fn debug_names_the_codec_and_its_id() {
    assert_eq!(
        format!("{:?}", ValueCodec::msgpack()),
        format!("ValueCodec(msgpack, id {MSGPACK})")
    );
}

proptest! {
    #[test]
    fn prop_garbage_never_panics(junk in proptest::collection::vec(any::<u8>(), 0..200)) {
        for codec in codecs() {
            let _ = decode_as::<User>(&codec, &junk);
            let _ = decode_as::<User>(&codec, &with_payload::<User>(&codec, &junk));
            let _ = decode_as::<Node>(&codec, &with_payload::<Node>(&codec, &junk));
            let _ = decode_as::<BTreeMap<String, Vec<u64>>>(
                &codec,
                &with_payload::<BTreeMap<String, Vec<u64>>>(&codec, &junk),
            );
        }
    }

    #[test]
    fn prop_round_trip(id in any::<u64>(), name in ".*", roles in proptest::collection::vec(any::<u32>(), 0..20), manager in any::<Option<u64>>()) {
        let u = User { id, name: name.clone(), email: name, roles, manager };
        for codec in codecs() {
            let bytes = codec.encode(&u, &meta_of::<User>()).unwrap();
            prop_assert_eq!(decode_as::<User>(&codec, &bytes).unwrap(), u.clone());
        }
    }
}
