//! Value encoding for remote tiers: an envelope with a format version, a type fingerprint
//! and the entry's timing, around a serde payload.
//!
//! # Envelope
//!
//! ```text
//! offset  size  field
//!      0     2  magic  0xCA 0xC7
//!      2     1  codec of the payload (1 = MessagePack, struct fields by name; 2 = bincode;
//!               3 = JSON; 128..=255 = an application's own; see `format.rs`)
//!      3     8  type fingerprint, u64 little endian (see `fingerprint`)
//!     11     8  fresh_until, unix milliseconds, u64 LE (0 = never stale)
//!     19     8  keep_until,  unix milliseconds, u64 LE (0 = kept until the physical TTL)
//!     27     …  payload
//! ```
//!
//! Any of these not matching on read — other magic or codec (an older format, or a store
//! whose `codec` changed), another fingerprint (a value written by a function returning another type), a truncated
//! header, a payload that does not decode or leaves bytes over, or more bytes than the
//! caller's `max_value_size` — is a [`CodecError`], which core treats as a miss and
//! overwrites. Decoding never panics and never allocates much more than the input:
//! the input length is checked against `max_value_size` *before* anything is decoded, the
//! payload is read from that slice only (a length prefix claiming 2^40 elements fails
//! at the end of the input instead of allocating; serde's own pre-allocation is capped
//! at 1 MiB whatever the prefix says), and nesting is limited ([`MAX_DEPTH`] arrays and
//! maps, [`MAX_NESTING`] values of any shape: enums, options and newtypes included) so a
//! crafted payload cannot overflow the stack.
//!
//! # Payload codecs
//!
//! Each store picks one ([`ValueCodec`], `codec = "msgpack" | "bincode" | "json"` in its
//! `[stores.NAME]`, or an application's own [`Codec`]); sizes and times of the three on
//! the struct below are in BENCHMARKS.md. The byte after the magic records it, so entries
//! written under another codec are misses. [`encode`] and [`decode`] use the default.
//!
//! # The default payload format: measured, then chosen
//!
//! Measured with a throwaway release-mode program (rustc 1.95, x86-64, 2 M iterations
//! after warm-up) on a typical value, `struct User { id: u64, name: String, email:
//! String, roles: Vec<u32> /* 10 items */, manager: Option<u64> }`, encode + decode:
//!
//! | format                                   | size  | encode+decode |
//! |------------------------------------------|-------|---------------|
//! | bincode 2.0.1 (serde, standard, limit)   | 70 B  | ~305 ns       |
//! | postcard 1.1.3                           | 60 B  | ~300 ns       |
//! | rmp-serde 1.3.1, structs as arrays       | 70 B  | ~375–410 ns   |
//! | rmp-serde 1.3.1, structs as maps (named) | 98 B  | ~560 ns       |
//!
//! A length prefix of 2^40 (Vec, String, map) fails in microseconds in all of them.
//!
//! **Decision: MessagePack (rmp-serde) with named struct fields.** The ~260 ns and ~40
//! bytes it costs over postcard are noise beside a Redis round trip (~50–500 µs), and it
//! buys what the positional formats (bincode, postcard) cannot do, all checked in the
//! same program:
//!
//! - serde's self-describing features that users' types commonly carry:
//!   `#[serde(tag = "type")]` enums (bincode: `AnyNotSupported`, postcard:
//!   `WontImplement`), `#[serde(skip_serializing_if = ..)]` (both: unexpected end, so
//!   the entry could never be read back), `flatten`, untagged enums;
//! - safety across deployments sharing one Redis: the fingerprint is the type's *name*,
//!   so a struct whose fields were reordered keeps it. With positional formats `{a: 1,
//!   b: 2}` written by the old build reads back as `{b: 1, a: 2}` — silently wrong —
//!   while named fields decode correctly (or fail, i.e. miss, when a field is missing).
//!
//! bincode 2 was also out because its `with_limit` is not applied on the serde path (only
//! to its own `Decode` trait), and because bincode 3.0.0 on crates.io is a deliberate
//! compile error: the project stopped. The opt-in `codec = "bincode"` is bincode 1.3,
//! whose limit does apply on the serde path (set to the payload's length, so a length
//! prefix cannot allocate more than the input holds); it is unmaintained too
//! (RUSTSEC-2025-0141), see [`ValueCodec`].
//!
//! ```
//! use cache_core::codec::{decode, encode, fingerprint, EnvelopeMeta, DEFAULT_MAX_VALUE_SIZE};
//!
//! let meta = EnvelopeMeta::new(fingerprint::<String>(), Some(1_700_000_000_000), None);
//! let bytes = encode(&"alice".to_string(), &meta)?;
//! let (value, read_meta): (String, _) =
//!     decode(&bytes, fingerprint::<String>(), DEFAULT_MAX_VALUE_SIZE)?;
//! assert_eq!((value.as_str(), read_meta), ("alice", meta));
//!
//! // read as another type: a miss
//! assert!(decode::<u64>(&bytes, fingerprint::<u64>(), DEFAULT_MAX_VALUE_SIZE).is_err());
//! # Ok::<(), cache_core::codec::CodecError>(())
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

mod format;
mod msgpack;

pub use erased_serde;
pub use format::{Codec, ValueCodec, BINCODE, FIRST_CUSTOM_ID, JSON, MSGPACK};

/// The largest stored value (envelope included) a remote tier will decode by default:
/// 16 MiB. Anything bigger is rejected before decoding.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 16 * 1024 * 1024;

/// The envelope format of the default codec ([`MSGPACK`]): the byte after the magic, which
/// names the payload's codec. Entries of any codec but the store's are a miss (and get
/// overwritten).
pub const FORMAT_VERSION: u8 = MSGPACK;

/// How deeply MessagePack arrays and maps may nest in a payload; deeper is an error (a
/// miss), not a stack overflow.
pub const MAX_DEPTH: usize = 128;

/// How deeply serde values of any shape may nest in a payload: structs, enums, sequences,
/// maps, options, newtypes and the scalars inside them each count one level. Deeper is an
/// error (a miss), not a stack overflow, whatever the shape: enums, options and newtypes
/// nest without a MessagePack array or map, so [`MAX_DEPTH`] alone does not bound them.
pub const MAX_NESTING: usize = 512;

/// Length of the envelope header before the payload.
pub const HEADER_LEN: usize = 27;

const MAGIC: [u8; 2] = [0xCA, 0xC7];

/// Why bytes could not be encoded or decoded. Every decoding error means "treat as a miss".
///
/// ```
/// use cache_core::codec::{decode, CodecError};
/// let err = decode::<u64>(b"garbage", 0, 1024).unwrap_err();
/// assert!(matches!(err, CodecError::Truncated { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// More bytes than the size limit; nothing was decoded.
    #[error("stored value of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Bytes found.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Fewer bytes than an envelope header.
    #[error(
        "stored value of {size} bytes is too short for an envelope header ({HEADER_LEN} bytes)"
    )]
    Truncated {
        /// Bytes found.
        size: usize,
    },
    /// Not a cachet envelope.
    #[error("stored value is not a cachet envelope (bad magic bytes)")]
    BadMagic,
    /// A cachet envelope of a format (codec id) this build does not know: an older or newer
    /// cachet's.
    #[error("stored value has envelope format {found}, which this build does not know (it reads {MSGPACK}, {BINCODE}, {JSON} and applications' codecs {FIRST_CUSTOM_ID}..=255)")]
    UnsupportedVersion {
        /// The format byte found.
        found: u8,
    },
    /// Written by another codec than the store's (its `codec` changed, or another
    /// application shares the store).
    #[error("stored value was written by codec {found}, the store reads codec {expected}")]
    OtherCodec {
        /// The store's codec id.
        expected: u8,
        /// The codec id found.
        found: u8,
    },
    /// Written as another type.
    #[error("stored value was written as another type (fingerprint {found:#018x}, expected {expected:#018x})")]
    OtherType {
        /// The fingerprint asked for.
        expected: u64,
        /// The fingerprint found.
        found: u64,
    },
    /// The payload does not decode as the type asked for.
    #[error("stored value does not decode: {0}")]
    Payload(String),
    /// The payload decoded but bytes were left over.
    #[error("stored value has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// The value could not be serialized.
    #[error("value cannot be serialized: {0}")]
    Encode(String),
}

/// What the envelope says about a value besides the value itself.
///
/// Times are unix milliseconds, so every instance reads them the same way.
///
/// ```
/// use cache_core::codec::{fingerprint, EnvelopeMeta};
/// let meta = EnvelopeMeta::new(fingerprint::<u64>(), Some(1_000), None);
/// assert_eq!(meta.fresh_until_ms, Some(1_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnvelopeMeta {
    /// The stored type's [`fingerprint`].
    pub fingerprint: u64,
    /// When the value stops being fresh (`None`: never). `Some(0)` is stored as `None`.
    pub fresh_until_ms: Option<u64>,
    /// When the value must be dropped, grace included (`None`: when Redis expires it).
    pub keep_until_ms: Option<u64>,
}

impl EnvelopeMeta {
    /// Builds the metadata of a value.
    pub fn new(fingerprint: u64, fresh_until_ms: Option<u64>, keep_until_ms: Option<u64>) -> Self {
        Self {
            fingerprint,
            fresh_until_ms,
            keep_until_ms,
        }
    }
}

/// A fingerprint of type `V`, the same in every process built from the same code:
/// FNV-1a (64-bit) of [`std::any::type_name`]. Never seeded at random, so instances
/// agree; distinct types get distinct names, so a read as another type is a miss.
///
/// ```
/// use cache_core::codec::fingerprint;
/// assert_eq!(fingerprint::<u64>(), fingerprint::<u64>());
/// assert_ne!(fingerprint::<u64>(), fingerprint::<u32>());
/// assert_ne!(fingerprint::<Option<String>>(), fingerprint::<String>());
/// ```
pub fn fingerprint<V: ?Sized + 'static>() -> u64 {
    fnv1a(std::any::type_name::<V>().as_bytes())
}

/// [`fingerprint`], remembered per thread for the type asked last: what every read and
/// write of a cached value asks for. Hashing the type's name byte by byte cost ~115
/// instructions a Redis read of the bench's record (BENCHMARKS.md, "64 tasks, phase J");
/// a thread reading one type in a row now compares its `TypeId` instead.
pub(crate) fn fingerprint_cached<V: ?Sized + 'static>() -> u64 {
    use std::any::TypeId;
    use std::cell::Cell;
    std::thread_local! {
        static LAST: Cell<Option<(TypeId, u64)>> = const { Cell::new(None) };
    }
    let id = TypeId::of::<V>();
    LAST.with(|last| match last.get() {
        Some((seen, print)) if seen == id => print,
        _ => {
            let print = fingerprint::<V>();
            last.set(Some((id, print)));
            print
        }
    })
}

/// The fingerprint of the null marker: the envelope (with an empty payload) an
/// `Option<T>`-returning cached function stores for `None` with `allow_null_values`, a
/// cached absence that answers that function without running it and that every read of a
/// value type reads as no value. Fixed by the marker's name as it was first stored, so such
/// entries stay readable whatever becomes of the code's modules.
///
/// ```
/// use cache_core::codec::{fingerprint, null_fingerprint};
/// assert_ne!(null_fingerprint(), fingerprint::<Option<String>>());
/// ```
pub fn null_fingerprint() -> u64 {
    fnv1a(b"cache_core::slot::NullMarker")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// Encodes a value and its metadata into an envelope, with the default codec
/// ([`ValueCodec::msgpack`]).
///
/// ```
/// use cache_core::codec::{encode, fingerprint, EnvelopeMeta, HEADER_LEN};
/// let bytes = encode(&42u64, &EnvelopeMeta::new(fingerprint::<u64>(), None, None))?;
/// assert!(bytes.len() > HEADER_LEN);
/// # Ok::<(), cache_core::codec::CodecError>(())
/// ```
pub fn encode<V: Serialize + ?Sized>(
    value: &V,
    meta: &EnvelopeMeta,
) -> Result<Vec<u8>, CodecError> {
    ValueCodec::msgpack().encode(value, meta)
}

/// Writes the envelope header: magic, codec id, fingerprint, times.
fn header(out: &mut Vec<u8>, codec: u8, meta: &EnvelopeMeta) {
    out.extend_from_slice(&MAGIC);
    out.push(codec);
    out.extend_from_slice(&meta.fingerprint.to_le_bytes());
    out.extend_from_slice(&meta.fresh_until_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.keep_until_ms.unwrap_or(0).to_le_bytes());
}

/// Rewrites the times in an envelope's header, whichever codec wrote it, leaving the
/// payload untouched (`expire` marks a stored value stale without decoding it). `false`
/// when `bytes` is too short to hold a header.
pub(crate) fn retime(
    bytes: &mut [u8],
    fresh_until_ms: Option<u64>,
    keep_until_ms: Option<u64>,
) -> bool {
    let Some(times) = bytes.get_mut(HEADER_LEN - 16..HEADER_LEN) else {
        return false;
    };
    times[..8].copy_from_slice(&fresh_until_ms.unwrap_or(0).to_le_bytes());
    times[8..].copy_from_slice(&keep_until_ms.unwrap_or(0).to_le_bytes());
    true
}

/// Reads only the envelope header, whichever codec wrote it: checks size and magic, and
/// returns the metadata without decoding the payload. [`ValueCodec::read_meta`] also
/// checks the codec.
///
/// ```
/// use cache_core::codec::{encode, read_meta, EnvelopeMeta};
/// let meta = EnvelopeMeta::new(7, Some(5), Some(9));
/// assert_eq!(read_meta(&encode(&(), &meta)?, 1024)?, meta);
/// # Ok::<(), cache_core::codec::CodecError>(())
/// ```
pub fn read_meta(bytes: &[u8], max_value_size: usize) -> Result<EnvelopeMeta, CodecError> {
    read_header(bytes, max_value_size).map(|(_, meta)| meta)
}

/// Reads the envelope header: the id of the codec that wrote the payload ([`MSGPACK`],
/// [`BINCODE`], [`JSON`] or an application's) and the metadata. Checks size and magic,
/// and that the codec id is one a cachet build may write.
///
/// ```
/// use cache_core::codec::{encode, read_header, EnvelopeMeta, MSGPACK};
/// let meta = EnvelopeMeta::new(7, None, None);
/// assert_eq!(read_header(&encode(&(), &meta)?, 1024)?, (MSGPACK, meta));
/// # Ok::<(), cache_core::codec::CodecError>(())
/// ```
#[inline]
pub fn read_header(bytes: &[u8], max_value_size: usize) -> Result<(u8, EnvelopeMeta), CodecError> {
    if bytes.len() > max_value_size {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            max: max_value_size,
        });
    }
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(CodecError::Truncated { size: bytes.len() })?;
    if header[..2] != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let codec = header[2];
    if !matches!(codec, MSGPACK | BINCODE | JSON) && codec < FIRST_CUSTOM_ID {
        return Err(CodecError::UnsupportedVersion { found: codec });
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let nonzero = |v: u64| (v != 0).then_some(v);
    Ok((
        codec,
        EnvelopeMeta {
            fingerprint: word(3),
            fresh_until_ms: nonzero(word(11)),
            keep_until_ms: nonzero(word(19)),
        },
    ))
}

/// Decodes an envelope written by [`encode`] (the default codec) as a `V` whose
/// [`fingerprint`] is `fingerprint`. Every failure is an error meaning "miss"; see the
/// module docs.
///
/// ```
/// use cache_core::codec::{decode, encode, fingerprint, EnvelopeMeta, CodecError};
/// let bytes = encode(&vec![1u32, 2], &EnvelopeMeta::new(fingerprint::<Vec<u32>>(), None, None))?;
/// let (v, _) = decode::<Vec<u32>>(&bytes, fingerprint::<Vec<u32>>(), 1024)?;
/// assert_eq!(v, [1, 2]);
/// // too big for the limit: rejected before decoding
/// assert!(matches!(decode::<Vec<u32>>(&bytes, fingerprint::<Vec<u32>>(), 8), Err(CodecError::TooLarge { .. })));
/// # Ok::<(), CodecError>(())
/// ```
pub fn decode<V: DeserializeOwned>(
    bytes: &[u8],
    fingerprint: u64,
    max_value_size: usize,
) -> Result<(V, EnvelopeMeta), CodecError> {
    ValueCodec::msgpack().decode(bytes, fingerprint, max_value_size)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct User {
        id: u64,
        name: String,
        email: String,
        roles: Vec<u32>,
        manager: Option<u64>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Shape {
        Circle {
            r: u32,
        },
        Named {
            name: String,
            tags: BTreeMap<String, i64>,
        },
        Empty,
    }

    fn user() -> User {
        User {
            id: 42,
            name: "Alice".into(),
            email: "alice@example.com".into(),
            roles: (1..=10).collect(),
            manager: Some(7),
        }
    }

    fn meta_of<V: 'static>() -> EnvelopeMeta {
        EnvelopeMeta::new(
            fingerprint::<V>(),
            Some(1_700_000_000_000),
            Some(1_700_000_360_000),
        )
    }

    #[test]
    fn round_trip_keeps_value_and_meta() {
        let bytes = encode(&user(), &meta_of::<User>()).unwrap();
        assert_eq!(&bytes[..3], &[0xCA, 0xC7, FORMAT_VERSION]);
        let (v, m) = decode::<User>(&bytes, fingerprint::<User>(), DEFAULT_MAX_VALUE_SIZE).unwrap();
        assert_eq!(v, user());
        assert_eq!(m, meta_of::<User>());
    }

    #[test]
    fn none_times_round_trip_as_none() {
        let meta = EnvelopeMeta::new(fingerprint::<u8>(), None, None);
        let (_, m) = decode::<u8>(&encode(&1u8, &meta).unwrap(), meta.fingerprint, 100).unwrap();
        assert_eq!(m, meta);
    }

    #[test]
    fn tagged_enums_and_skipped_fields_round_trip() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Sparse {
            a: u32,
            #[serde(skip_serializing_if = "Option::is_none", default)]
            b: Option<u32>,
        }
        for s in [Shape::Circle { r: 3 }, Shape::Empty] {
            let bytes = encode(&s, &meta_of::<Shape>()).unwrap();
            assert_eq!(
                decode::<Shape>(&bytes, fingerprint::<Shape>(), 1024)
                    .unwrap()
                    .0,
                s
            );
        }
        let s = Sparse { a: 1, b: None };
        let bytes = encode(&s, &meta_of::<Sparse>()).unwrap();
        assert_eq!(
            decode::<Sparse>(&bytes, fingerprint::<Sparse>(), 1024)
                .unwrap()
                .0,
            s
        );
    }

    /// Golden vector: pins the envelope layout and the payload format.
    #[test]
    fn golden_vector() {
        let bytes = encode(
            &(1u8, "a"),
            &EnvelopeMeta::new(0x0102_0304_0506_0708, Some(1), None),
        )
        .unwrap();
        let expected: &[u8] = &[
            0xCA, 0xC7, 1, // magic, version
            8, 7, 6, 5, 4, 3, 2, 1, // fingerprint LE
            1, 0, 0, 0, 0, 0, 0, 0, // fresh_until
            0, 0, 0, 0, 0, 0, 0, 0, // keep_until
            0x92, 0x01, 0xa1, b'a', // msgpack [1, "a"]
        ];
        assert_eq!(bytes, expected);
        assert_eq!(fingerprint::<u64>(), fnv1a(b"u64"));
        for _ in 0..2 {
            assert_eq!(fingerprint_cached::<u64>(), fingerprint::<u64>());
            assert_eq!(fingerprint_cached::<String>(), fingerprint::<String>());
            assert_eq!(fingerprint_cached::<str>(), fingerprint::<str>());
        }
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn other_type_is_an_error() {
        let bytes = encode(&user(), &meta_of::<User>()).unwrap();
        let err = decode::<String>(&bytes, fingerprint::<String>(), 1024).unwrap_err();
        assert!(matches!(err, CodecError::OtherType { .. }), "{err}");
    }

    #[test]
    fn bad_magic_and_version_are_errors() {
        let mut bytes = encode(&1u32, &meta_of::<u32>()).unwrap();
        bytes[0] = b'{';
        assert!(matches!(
            decode::<u32>(&bytes, fingerprint::<u32>(), 1024),
            Err(CodecError::BadMagic)
        ));
        let mut bytes = encode(&1u32, &meta_of::<u32>()).unwrap();
        bytes[2] = 0;
        assert!(matches!(
            decode::<u32>(&bytes, fingerprint::<u32>(), 1024),
            Err(CodecError::UnsupportedVersion { found: 0 })
        ));
    }

    #[test]
    fn truncated_is_an_error_at_every_length() {
        let bytes = encode(&user(), &meta_of::<User>()).unwrap();
        for len in 0..bytes.len() {
            let r = decode::<User>(&bytes[..len], fingerprint::<User>(), 1024);
            assert!(r.is_err(), "prefix of {len} bytes decoded");
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = encode(&user(), &meta_of::<User>()).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<User>(&bytes, fingerprint::<User>(), 1024),
            Err(CodecError::TrailingBytes(1))
        ));
    }

    #[test]
    fn oversized_is_rejected_before_decoding() {
        let bytes = encode(&vec![7u8; 2000], &meta_of::<Vec<u8>>()).unwrap();
        let err = decode::<Vec<u8>>(&bytes, fingerprint::<Vec<u8>>(), 1000).unwrap_err();
        assert!(
            matches!(err, CodecError::TooLarge { max: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn the_default_limit_takes_values_up_to_16_mib() {
        let decode_text = |len: usize| {
            let bytes = encode(&"x".repeat(len), &meta_of::<String>()).unwrap();
            decode::<String>(&bytes, fingerprint::<String>(), DEFAULT_MAX_VALUE_SIZE)
        };
        assert!(decode_text(15 << 20).is_ok(), "15 MiB is under the limit");
        assert!(
            matches!(decode_text(16 << 20), Err(CodecError::TooLarge { .. })),
            "16 MiB of payload plus the envelope is over it"
        );
    }

    #[test]
    fn a_value_of_exactly_the_limit_is_read() {
        let bytes = encode(&vec![7u8; 100], &meta_of::<Vec<u8>>()).unwrap();
        assert!(read_header(&bytes, bytes.len()).is_ok());
        assert!(decode::<Vec<u8>>(&bytes, fingerprint::<Vec<u8>>(), bytes.len()).is_ok());
        assert!(read_header(&bytes, bytes.len() - 1).is_err());
    }

    #[test]
    fn the_first_custom_codec_id_is_a_codec_the_header_reader_accepts() {
        let mut bytes = encode(&(), &meta_of::<()>()).unwrap();
        bytes[2] = FIRST_CUSTOM_ID;
        assert_eq!(read_header(&bytes, 1024).unwrap().0, FIRST_CUSTOM_ID);
        bytes[2] = FIRST_CUSTOM_ID - 1;
        assert!(
            read_header(&bytes, 1024).is_err(),
            "reserved ids are refused"
        );
    }

    fn with_payload<V: 'static>(payload: &[u8]) -> Vec<u8> {
        let mut bytes = encode(&(), &meta_of::<V>()).unwrap();
        bytes.truncate(HEADER_LEN);
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn huge_length_prefixes_fail_without_allocating() {
        // array32 / str32 / bin32 / map32 claiming u32::MAX entries, followed by 3 bytes
        for marker in [0xdd_u8, 0xdb, 0xc6, 0xdf] {
            let mut p = vec![marker];
            p.extend_from_slice(&u32::MAX.to_be_bytes());
            p.extend_from_slice(&[1, 2, 3]);
            let start = std::time::Instant::now();
            assert!(decode::<Vec<u64>>(
                &with_payload::<Vec<u64>>(&p),
                fingerprint::<Vec<u64>>(),
                1024
            )
            .is_err());
            assert!(
                decode::<String>(&with_payload::<String>(&p), fingerprint::<String>(), 1024)
                    .is_err()
            );
            assert!(decode::<Vec<u8>>(
                &with_payload::<Vec<u8>>(&p),
                fingerprint::<Vec<u8>>(),
                1024
            )
            .is_err());
            assert!(decode::<BTreeMap<u32, u32>>(
                &with_payload::<BTreeMap<u32, u32>>(&p),
                fingerprint::<BTreeMap<u32, u32>>(),
                1024
            )
            .is_err());
            assert!(start.elapsed() < std::time::Duration::from_secs(1));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // {"x": [[[[...]]]]} read as a struct that ignores unknown field "x"
        #[derive(Debug, Deserialize)]
        struct Small {
            #[serde(default)]
            _a: u8,
        }
        let mut p = vec![0x81, 0xa1, b'x'];
        p.extend(std::iter::repeat_n(0x91, 100_000));
        p.push(0xc0);
        let r = decode::<Small>(&with_payload::<Small>(&p), fingerprint::<Small>(), 1 << 20);
        assert!(r.is_err());
    }

    fn arb_user() -> impl Strategy<Value = User> {
        (
            any::<u64>(),
            ".*",
            ".*",
            proptest::collection::vec(any::<u32>(), 0..20),
            any::<Option<u64>>(),
        )
            .prop_map(|(id, name, email, roles, manager)| User {
                id,
                name,
                email,
                roles,
                manager,
            })
    }

    fn arb_shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            any::<u32>().prop_map(|r| Shape::Circle { r }),
            (
                ".*",
                proptest::collection::btree_map(".*", any::<i64>(), 0..5)
            )
                .prop_map(|(name, tags)| Shape::Named { name, tags }),
            Just(Shape::Empty),
        ]
    }

    proptest! {
        #[test]
        fn prop_round_trip_user(u in arb_user(), fresh in any::<Option<u64>>()) {
            let meta = EnvelopeMeta::new(fingerprint::<User>(), fresh.filter(|v| *v != 0), None);
            let bytes = encode(&u, &meta).unwrap();
            let (v, m) = decode::<User>(&bytes, fingerprint::<User>(), DEFAULT_MAX_VALUE_SIZE).unwrap();
            prop_assert_eq!(v, u);
            prop_assert_eq!(m, meta);
        }

        #[test]
        fn prop_round_trip_shapes(s in proptest::collection::vec(arb_shape(), 0..8)) {
            let bytes = encode(&s, &meta_of::<Vec<Shape>>()).unwrap();
            let (v, _) = decode::<Vec<Shape>>(&bytes, fingerprint::<Vec<Shape>>(), DEFAULT_MAX_VALUE_SIZE).unwrap();
            prop_assert_eq!(v, s);
        }

        #[test]
        fn prop_garbage_never_panics(junk in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<User>(&junk, fingerprint::<User>(), 1 << 20);
            let _ = decode::<User>(&with_payload::<User>(&junk), fingerprint::<User>(), 1 << 20);
            let _ = decode::<Vec<Shape>>(&with_payload::<Vec<Shape>>(&junk), fingerprint::<Vec<Shape>>(), 1 << 20);
        }
    }
}
