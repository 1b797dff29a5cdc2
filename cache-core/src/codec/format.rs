//! Payload codecs: how a value becomes the bytes after the envelope header, per store
//! (`codec = "msgpack" | "bincode" | "json"`, or one of the application's own).
//!
//! The envelope's third byte names the codec that wrote the payload, so a store whose
//! codec changed reads the old entries as misses (and overwrites them), never as errors
//! or as wrong values. Every codec decodes under the same bounds: the size limit is
//! checked before anything is decoded, and nesting is bounded to [`super::MAX_NESTING`]
//! levels of any shape, by a guard around the codec's deserializer ([`crate::depth`]), so
//! a codec written by an application gets the bound too, or, for MessagePack, by its own
//! reader ([`super::msgpack`]), which counts the levels as the guard does.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{header, CodecError, EnvelopeMeta, HEADER_LEN, MAX_DEPTH, MAX_NESTING};

/// The codec id of MessagePack with named struct fields (the default, and the only
/// format before codecs could be chosen: its entries keep reading back).
pub const MSGPACK: u8 = 1;
/// The codec id of bincode (1.x, variable-length integers).
pub const BINCODE: u8 = 2;
/// The codec id of JSON.
pub const JSON: u8 = 3;
/// The smallest id an application's own [`Codec`] may have: `128..=255` are the
/// applications', `1..=127` cachet's.
pub const FIRST_CUSTOM_ID: u8 = 128;

/// A payload codec an application writes itself, for a format cachet does not ship
/// (CBOR, postcard, a company format...). Give it to a store with [`ValueCodec::custom`]
/// and [`crate::StoreBuilder::codec`], or register it by name with
/// [`crate::CacheManagerBuilder::register_codec`] for configuration's `codec = "NAME"`.
///
/// The value is handed over type-erased ([`erased_serde`]): serialize it into your
/// format's `serde::Serializer`, and hand `read` your format's `serde::Deserializer`
/// over the payload (erased with `<dyn erased_serde::Deserializer>::erase`). cachet
/// wraps that deserializer in its nesting bound, and checks the size limit before
/// calling you; you check that the payload has no bytes left over.
///
/// ```
/// use cache_core::codec::{Codec, CodecError, ValueCodec, erased_serde};
///
/// /// JSON again, as an application would add a format of its own.
/// struct MyJson;
///
/// impl Codec for MyJson {
///     fn name(&self) -> &str { "my-json" }
///     fn id(&self) -> u8 { 200 }
///     fn encode(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<(), CodecError> {
///         let mut ser = serde_json::Serializer::new(out);
///         erased_serde::serialize(value, &mut ser).map_err(|e| CodecError::Encode(e.to_string()))
///     }
///     fn decode<'de>(
///         &self,
///         payload: &'de [u8],
///         read: &mut dyn FnMut(&mut dyn erased_serde::Deserializer<'de>) -> Result<(), erased_serde::Error>,
///     ) -> Result<(), CodecError> {
///         let mut de = serde_json::Deserializer::from_slice(payload);
///         read(&mut <dyn erased_serde::Deserializer>::erase(&mut de))
///             .map_err(|e| CodecError::Payload(e.to_string()))?;
///         de.end().map_err(|e| CodecError::Payload(e.to_string()))
///     }
/// }
///
/// let codec = ValueCodec::custom(MyJson)?;
/// let meta = cache_core::codec::EnvelopeMeta::new(7, None, None);
/// let bytes = codec.encode(&vec![1u8, 2], &meta)?;
/// assert_eq!(codec.decode::<Vec<u8>>(&bytes, 7, 1024)?.0, [1, 2]);
/// # Ok::<(), CodecError>(())
/// ```
pub trait Codec: Send + Sync + 'static {
    /// The name configuration uses (`codec = "NAME"`) and tools show.
    fn name(&self) -> &str;

    /// The id written into each envelope: `128..=255` ([`FIRST_CUSTOM_ID`]), distinct
    /// from every other codec that may write to the same store. Changing it turns the
    /// store's entries into misses.
    fn id(&self) -> u8;

    /// Appends the value's encoding to `out`.
    fn encode(
        &self,
        value: &dyn erased_serde::Serialize,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError>;

    /// Calls `read` once with a deserializer over `payload`, then checks that nothing
    /// is left over. Errors (a miss to the caller) are [`CodecError::Payload`].
    fn decode<'de>(
        &self,
        payload: &'de [u8],
        read: &mut dyn FnMut(
            &mut dyn erased_serde::Deserializer<'de>,
        ) -> Result<(), erased_serde::Error>,
    ) -> Result<(), CodecError>;
}

/// A store's payload codec: MessagePack (the default), bincode (feature `bincode`), JSON
/// (feature `json`), or an application's own [`Codec`]. Cheap to clone.
///
/// - **msgpack**: MessagePack with struct fields by name. Self-describing, so tagged and
///   untagged enums, `skip_serializing_if` and `flatten` work, and reordering a struct's
///   fields keeps old entries readable. The default.
/// - **bincode** (bincode 1.3, variable-length integers): smaller and faster for values
///   whose shape never changes between deployments. Positional: a struct whose fields were
///   reordered between two builds sharing a store may read back *wrong*, so change the
///   type's name (its fingerprint) when you change its fields. Not self-describing:
///   `#[serde(tag = ..)]`, untagged enums, `flatten` and `skip_serializing_if` fail to read
///   back (a miss each time). **bincode is unmaintained (RUSTSEC-2025-0141)**: no fixes
///   are coming; it reads only from the store's own bytes, under cachet's size and
///   nesting bounds.
/// - **json**: readable with `redis-cli` after the 27-byte envelope header, and by
///   services in other languages. The largest and slowest; `f64` NaN and infinities do not
///   survive (a miss).
///
/// ```
/// use cache_core::codec::{ValueCodec, EnvelopeMeta};
/// let codec = ValueCodec::default();
/// assert_eq!(codec.name(), "msgpack");
/// let bytes = codec.encode(&42u64, &EnvelopeMeta::new(1, None, None))?;
/// // Read with another codec: a miss, never a wrong value.
/// # #[cfg(feature = "json")] {
/// assert!(ValueCodec::json().decode::<u64>(&bytes, 1, 1024).is_err());
/// # }
/// # Ok::<(), cache_core::codec::CodecError>(())
/// ```
#[derive(Clone, Default)]
pub struct ValueCodec(Kind);

#[derive(Clone, Default)]
enum Kind {
    #[default]
    MsgPack,
    #[cfg(feature = "bincode")]
    Bincode,
    #[cfg(feature = "json")]
    Json,
    Custom(Arc<dyn Codec>),
}

impl std::fmt::Debug for ValueCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValueCodec({}, id {})", self.name(), self.id())
    }
}

impl ValueCodec {
    /// MessagePack with named struct fields, the default.
    ///
    /// ```
    /// assert_eq!(cache_core::codec::ValueCodec::msgpack().id(), cache_core::codec::MSGPACK);
    /// ```
    pub fn msgpack() -> Self {
        ValueCodec(Kind::MsgPack)
    }

    /// bincode 1.3 (unmaintained: RUSTSEC-2025-0141; see the type's docs).
    ///
    /// ```
    /// assert_eq!(cache_core::codec::ValueCodec::bincode().name(), "bincode");
    /// ```
    #[cfg(feature = "bincode")]
    #[cfg_attr(docsrs, doc(cfg(feature = "bincode")))]
    pub fn bincode() -> Self {
        ValueCodec(Kind::Bincode)
    }

    /// JSON.
    ///
    /// ```
    /// assert_eq!(cache_core::codec::ValueCodec::json().name(), "json");
    /// ```
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub fn json() -> Self {
        ValueCodec(Kind::Json)
    }

    /// An application's own codec; an error when its id is below [`FIRST_CUSTOM_ID`]
    /// (those are cachet's).
    ///
    /// See [`Codec`] for an example.
    pub fn custom(codec: impl Codec) -> Result<Self, CodecError> {
        if codec.id() < FIRST_CUSTOM_ID {
            return Err(CodecError::Encode(format!(
                "codec `{}` has id {}: an application's codec needs an id of {FIRST_CUSTOM_ID} to 255",
                codec.name(),
                codec.id()
            )));
        }
        Ok(ValueCodec(Kind::Custom(Arc::new(codec))))
    }

    /// A built-in codec by its configuration name: `Ok(None)` for a name that is not
    /// one, an error naming the feature for one this build lacks.
    ///
    /// ```
    /// use cache_core::codec::ValueCodec;
    /// assert_eq!(ValueCodec::builtin("msgpack").unwrap().unwrap().name(), "msgpack");
    /// assert!(ValueCodec::builtin("cbor").unwrap().is_none());
    /// ```
    pub fn builtin(name: &str) -> Result<Option<Self>, String> {
        let missing = |feature: &str| -> Result<Option<Self>, String> {
            Err(format!(
                "codec `{name}` needs cachet's `{feature}` feature, which this build lacks"
            ))
        };
        match name {
            "msgpack" => Ok(Some(Self::msgpack())),
            #[cfg(feature = "bincode")]
            "bincode" => Ok(Some(Self::bincode())),
            #[cfg(not(feature = "bincode"))]
            "bincode" => missing("bincode"),
            #[cfg(feature = "json")]
            "json" => Ok(Some(Self::json())),
            #[cfg(not(feature = "json"))]
            "json" => missing("json"),
            _ => {
                let _ = missing;
                Ok(None)
            }
        }
    }

    /// The name: `msgpack`, `bincode`, `json`, or the custom codec's.
    pub fn name(&self) -> &str {
        match &self.0 {
            Kind::MsgPack => "msgpack",
            #[cfg(feature = "bincode")]
            Kind::Bincode => "bincode",
            #[cfg(feature = "json")]
            Kind::Json => "json",
            Kind::Custom(c) => c.name(),
        }
    }

    /// The id written into the envelope.
    pub fn id(&self) -> u8 {
        match &self.0 {
            Kind::MsgPack => MSGPACK,
            #[cfg(feature = "bincode")]
            Kind::Bincode => BINCODE,
            #[cfg(feature = "json")]
            Kind::Json => JSON,
            Kind::Custom(c) => c.id(),
        }
    }

    /// Encodes a value and its metadata into an envelope recording this codec.
    ///
    /// ```
    /// use cache_core::codec::{EnvelopeMeta, ValueCodec, HEADER_LEN};
    /// let bytes = ValueCodec::msgpack().encode(&42u64, &EnvelopeMeta::new(1, None, None))?;
    /// assert!(bytes.len() > HEADER_LEN);
    /// # Ok::<(), cache_core::codec::CodecError>(())
    /// ```
    pub fn encode<V: Serialize + ?Sized>(
        &self,
        value: &V,
        meta: &EnvelopeMeta,
    ) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        header(&mut out, self.id(), meta);
        let encode_err = |e: &dyn std::fmt::Display| CodecError::Encode(e.to_string());
        match &self.0 {
            Kind::MsgPack => {
                let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
                value.serialize(&mut ser).map_err(|e| encode_err(&e))?;
            }
            #[cfg(feature = "bincode")]
            Kind::Bincode => {
                use bincode::Options;
                bincode::DefaultOptions::new()
                    .serialize_into(&mut out, value)
                    .map_err(|e| encode_err(&e))?;
            }
            #[cfg(feature = "json")]
            Kind::Json => {
                serde_json::to_writer(&mut out, value).map_err(|e| encode_err(&e))?;
            }
            Kind::Custom(codec) => {
                let value: &dyn erased_serde::Serialize = &Erased(value);
                codec.encode(value, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Reads the envelope header of an entry this codec wrote: size, magic and codec are
    /// checked (another codec's entry is [`CodecError::OtherCodec`]), the payload is not
    /// decoded.
    ///
    /// ```
    /// use cache_core::codec::{EnvelopeMeta, ValueCodec};
    /// let meta = EnvelopeMeta::new(7, Some(5), Some(9));
    /// let codec = ValueCodec::msgpack();
    /// assert_eq!(codec.read_meta(&codec.encode(&(), &meta)?, 1024)?, meta);
    /// # Ok::<(), cache_core::codec::CodecError>(())
    /// ```
    #[inline]
    pub fn read_meta(
        &self,
        bytes: &[u8],
        max_value_size: usize,
    ) -> Result<EnvelopeMeta, CodecError> {
        let (codec, meta) = super::read_header(bytes, max_value_size)?;
        if codec != self.id() {
            return Err(CodecError::OtherCodec {
                expected: self.id(),
                found: codec,
            });
        }
        Ok(meta)
    }

    /// Decodes an envelope this codec wrote as a `V` whose fingerprint is `fingerprint`.
    /// Every failure is an error meaning "miss": too large, not an envelope, another codec,
    /// another type, a payload that does not decode, nests too deeply or leaves bytes over.
    ///
    /// ```
    /// use cache_core::codec::{fingerprint, EnvelopeMeta, ValueCodec};
    /// let codec = ValueCodec::msgpack();
    /// let meta = EnvelopeMeta::new(fingerprint::<String>(), None, None);
    /// let bytes = codec.encode("alice", &meta)?;
    /// assert_eq!(codec.decode::<String>(&bytes, fingerprint::<String>(), 1024)?.0, "alice");
    /// # Ok::<(), cache_core::codec::CodecError>(())
    /// ```
    pub fn decode<V: DeserializeOwned>(
        &self,
        bytes: &[u8],
        fingerprint: u64,
        max_value_size: usize,
    ) -> Result<(V, EnvelopeMeta), CodecError> {
        let meta = self.read_meta(bytes, max_value_size)?;
        if meta.fingerprint != fingerprint {
            return Err(CodecError::OtherType {
                expected: fingerprint,
                found: meta.fingerprint,
            });
        }
        let payload = &bytes[HEADER_LEN..];
        let value = match &self.0 {
            Kind::MsgPack => decode_msgpack(payload)?,
            #[cfg(feature = "bincode")]
            Kind::Bincode => decode_bincode(payload)?,
            #[cfg(feature = "json")]
            Kind::Json => decode_json(payload)?,
            Kind::Custom(codec) => decode_custom(codec.as_ref(), payload)?,
        };
        Ok((value, meta))
    }
}

/// A decode error of the codecs read through the guard (bincode, JSON; MessagePack's reader
/// has its own).
#[cfg(any(test, feature = "bincode", feature = "json"))]
fn payload_err(e: impl std::fmt::Display) -> CodecError {
    CodecError::Payload(e.to_string())
}

/// MessagePack read in place from the payload by the codec's own reader
/// ([`super::msgpack`]): strings and field names are borrowed from it (copied once, into the
/// value's own `String`s), never pre-allocated from a length prefix (a prefix longer than
/// what is left fails at once), both nesting bounds are counted as it reads, and what
/// follows the value must be nothing.
///
/// It reads what rmp-serde's `Deserializer` reads, value for value (the differential tests
/// in `msgpack/tests.rs`), for ~700 instructions fewer a read of the Redis bench's
/// four-field record than rmp-serde behind [`crate::depth`]'s guard (BENCHMARKS.md, "64
/// tasks, phase L"). rmp-serde still writes the payloads.
#[inline]
fn decode_msgpack<V: DeserializeOwned>(payload: &[u8]) -> Result<V, CodecError> {
    super::msgpack::decode(payload, MAX_DEPTH, MAX_NESTING)
}

/// bincode from a `&[u8]` reader, limited to the payload's length: a length prefix
/// claiming more bytes than are left fails before anything is allocated for it.
#[cfg(feature = "bincode")]
fn decode_bincode<V: DeserializeOwned>(payload: &[u8]) -> Result<V, CodecError> {
    use bincode::Options;
    let mut rest = payload;
    let limit = u64::try_from(payload.len()).unwrap_or(u64::MAX);
    let value = {
        let options = bincode::DefaultOptions::new().with_limit(limit);
        let mut de = bincode::Deserializer::with_reader(&mut rest, options);
        crate::depth::deserialize::<V, _>(&mut de, MAX_NESTING).map_err(payload_err)?
    };
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// JSON from the payload slice (serde_json also stops at 128 levels of its own).
#[cfg(feature = "json")]
fn decode_json<V: DeserializeOwned>(payload: &[u8]) -> Result<V, CodecError> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let value = crate::depth::deserialize::<V, _>(&mut de, MAX_NESTING).map_err(payload_err)?;
    de.end().map_err(payload_err)?;
    Ok(value)
}

/// An application's codec, with cachet's nesting bound around its deserializer.
fn decode_custom<V: DeserializeOwned>(codec: &dyn Codec, payload: &[u8]) -> Result<V, CodecError> {
    let mut value = None;
    codec.decode(payload, &mut |de| {
        value = Some(crate::depth::deserialize::<V, _>(de, MAX_NESTING)?);
        Ok(())
    })?;
    value.ok_or_else(|| {
        CodecError::Payload(format!(
            "codec `{}` returned without reading the value",
            codec.name()
        ))
    })
}

/// A `?Sized` value as an `erased_serde::Serialize` trait object.
struct Erased<'a, V: ?Sized>(&'a V);

impl<V: Serialize + ?Sized> Serialize for Erased<'_, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests;
