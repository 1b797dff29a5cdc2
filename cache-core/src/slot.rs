//! How the value a call works with is kept in the tiers ([`Slot`]): as itself, or, for an
//! `Option<T>`-returning cached function, unwrapped as Spring unwraps `Optional` — `Some(v)`
//! is stored as `v` (so `cache.get::<T>` and a `#[cache_put]` of a plain `T` share the
//! entry) and `None` as the null marker, which every value type reads as "no value".
//!
//! The null marker is [`NullMarker`] in L1 and an envelope whose fingerprint is
//! [`null_fingerprint`] (with an empty payload) in L2: one marker for every type, as
//! Spring's `NullValue`.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::codec::{self, CodecError, EnvelopeMeta, ValueCodec};
use crate::CacheValue;

/// How a value of type [`Slot::Value`] is kept: as a [`Slot::Stored`], or as the null
/// marker. Every [`CacheValue`] is its own slot; [`Unwrapped<T>`] keeps an `Option<T>`.
pub trait Slot: 'static {
    /// What calls work with (what a lookup returns, what a write takes).
    type Value: Clone + Send + Sync + 'static;
    /// What the tiers hold when the value is not null.
    type Stored: CacheValue;
    /// The stored form, or `None` for the null marker.
    fn into_stored(value: Self::Value) -> Option<Self::Stored>;
    /// [`Slot::into_stored`], borrowed.
    fn stored(value: &Self::Value) -> Option<&Self::Stored>;
    /// The value of a stored one.
    fn from_stored(stored: Self::Stored) -> Self::Value;
    /// What the null marker reads as: `None` is a miss.
    fn null() -> Option<Self::Value>;
    /// A value found under another type: `Option<T>` entries written before unwrapping
    /// (cachet 0.x stored `Option<T>` as is) read as the `T` they hold. `None`: a miss.
    fn legacy(found: &dyn Any) -> Option<Self::Value> {
        let _ = found;
        None
    }
    /// Decodes L2 bytes written under another fingerprint than [`Slot::Stored`]'s, when this
    /// slot knows that fingerprint (the legacy `Option<T>`). `None`: a miss.
    fn decode_legacy(
        codec: &ValueCodec,
        bytes: &[u8],
        found: u64,
        max_value_size: usize,
    ) -> Option<(Self::Value, EnvelopeMeta)> {
        let _ = (codec, bytes, found, max_value_size);
        None
    }
}

impl<V: CacheValue> Slot for V {
    type Value = V;
    type Stored = V;
    fn into_stored(value: V) -> Option<V> {
        Some(value)
    }
    fn stored(value: &V) -> Option<&V> {
        Some(value)
    }
    fn from_stored(stored: V) -> V {
        stored
    }
    fn null() -> Option<V> {
        None
    }
}

/// The slot of an `Option<T>` cached function's value: `Some(v)` kept as `v`, `None` as the
/// null marker.
pub struct Unwrapped<T>(PhantomData<fn() -> T>);

impl<T: CacheValue> Slot for Unwrapped<T> {
    type Value = Option<T>;
    type Stored = T;
    fn into_stored(value: Option<T>) -> Option<T> {
        value
    }
    fn stored(value: &Option<T>) -> Option<&T> {
        value.as_ref()
    }
    fn from_stored(stored: T) -> Option<T> {
        Some(stored)
    }
    fn null() -> Option<Option<T>> {
        Some(None)
    }
    fn legacy(found: &dyn Any) -> Option<Option<T>> {
        found.downcast_ref::<Option<T>>().cloned()
    }
    fn decode_legacy(
        codec: &ValueCodec,
        bytes: &[u8],
        found: u64,
        max_value_size: usize,
    ) -> Option<(Option<T>, EnvelopeMeta)> {
        if found != codec::fingerprint::<Option<T>>() {
            return None;
        }
        codec.decode::<Option<T>>(bytes, found, max_value_size).ok()
    }
}

/// The null marker in L1: a `None` of an `Option<T>` cached function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NullMarker;

/// The fingerprint of the null marker in L2 envelopes (its payload is `()`).
pub(crate) fn null_fingerprint() -> u64 {
    codec::null_fingerprint()
}

/// What an L1 entry's value reads as for slot `K`: the value, the null marker's reading,
/// or a legacy `Option<T>`; `None` for another type (a miss).
pub(crate) fn from_l1<K: Slot>(value: &Arc<dyn Any + Send + Sync>) -> Option<K::Value> {
    if let Some(stored) = value.downcast_ref::<K::Stored>() {
        return Some(K::from_stored(stored.clone()));
    }
    if value.is::<NullMarker>() {
        return K::null();
    }
    K::legacy(value.as_ref())
}

/// An L1 entry's value for `value`: the stored form, or the null marker.
pub(crate) fn to_l1<K: Slot>(value: K::Value) -> Arc<dyn Any + Send + Sync> {
    match K::into_stored(value) {
        Some(stored) => Arc::new(stored),
        None => Arc::new(NullMarker),
    }
}

/// The envelope of `value` for L2, with `fresh_until_ms`/`keep_until_ms` from `meta` (its
/// fingerprint is set here: the stored type's, or the null marker's).
pub(crate) fn encode<K: Slot>(
    codec: &ValueCodec,
    value: &K::Value,
    mut meta: EnvelopeMeta,
) -> Result<Vec<u8>, CodecError> {
    match K::stored(value) {
        Some(stored) => {
            meta.fingerprint = codec::fingerprint_cached::<K::Stored>();
            codec.encode(stored, &meta)
        }
        None => {
            meta.fingerprint = null_fingerprint();
            codec.encode(&(), &meta)
        }
    }
}

/// What L2 bytes read as for slot `K`: the value and its envelope, the null marker's
/// reading, or a legacy `Option<T>`. `Ok(None)`: the null marker for a slot that reads it
/// as a miss (not a fault). `Err`: bytes of another type, format or garbage.
pub(crate) fn decode<K: Slot>(
    codec: &ValueCodec,
    bytes: &[u8],
    max_value_size: usize,
) -> Result<Option<(K::Value, EnvelopeMeta)>, CodecError> {
    let expected = codec::fingerprint_cached::<K::Stored>();
    match codec.decode::<K::Stored>(bytes, expected, max_value_size) {
        Ok((stored, meta)) => Ok(Some((K::from_stored(stored), meta))),
        Err(CodecError::OtherType { found, .. }) if found == null_fingerprint() => {
            let (_, meta) = codec.decode::<()>(bytes, found, max_value_size)?;
            Ok(K::null().map(|value| (value, meta)))
        }
        Err(err @ CodecError::OtherType { found, .. }) => {
            K::decode_legacy(codec, bytes, found, max_value_size)
                .map(Some)
                .ok_or(err)
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_markers_fingerprint_is_the_one_it_was_first_stored_with() {
        // The name of the marker's type when it was introduced: entries stored since hold it.
        assert_eq!(null_fingerprint(), codec::fingerprint::<NullMarker>());
    }

    #[test]
    fn option_values_are_kept_unwrapped_and_none_as_the_null_marker() {
        let codec = ValueCodec::msgpack();
        let meta = EnvelopeMeta::new(0, Some(1), None);
        let some = encode::<Unwrapped<String>>(&codec, &Some("a".into()), meta).unwrap();
        // `Some(v)` is `v`: a plain `String` reads it.
        let (plain, _) = decode::<String>(&codec, &some, 1024).unwrap().unwrap();
        assert_eq!(plain, "a");
        let none = encode::<Unwrapped<String>>(&codec, &None, meta).unwrap();
        // The null marker: `None` for the option, no value (not a fault) for a plain type.
        let (read, m) = decode::<Unwrapped<u64>>(&codec, &none, 1024)
            .unwrap()
            .unwrap();
        assert_eq!((read, m.fresh_until_ms), (None, Some(1)));
        assert!(decode::<String>(&codec, &none, 1024).unwrap().is_none());
        // Another type is still a fault.
        assert!(decode::<u64>(&codec, &some, 1024).is_err());
    }

    #[test]
    fn legacy_option_entries_read_as_what_they_hold() {
        let codec = ValueCodec::msgpack();
        let legacy = |v: Option<String>| {
            let meta = EnvelopeMeta::new(codec::fingerprint::<Option<String>>(), None, None);
            codec.encode(&v, &meta).unwrap()
        };
        let read = |bytes: &[u8]| decode::<Unwrapped<String>>(&codec, bytes, 1024);
        assert_eq!(
            read(&legacy(Some("a".into()))).unwrap().unwrap().0,
            Some("a".into())
        );
        assert_eq!(read(&legacy(None)).unwrap().unwrap().0, None);
        // A plain reader of the inner type misses them (another fingerprint), never panics.
        assert!(decode::<String>(&codec, &legacy(Some("a".into())), 1024).is_err());
        let l1: Arc<dyn Any + Send + Sync> = Arc::new(Some(3u8));
        assert_eq!(from_l1::<Unwrapped<u8>>(&l1), Some(Some(3)));
        assert_eq!(from_l1::<u8>(&l1), None);
        let null = to_l1::<Unwrapped<u8>>(None);
        assert_eq!(from_l1::<Unwrapped<u8>>(&null), Some(None));
        assert_eq!(from_l1::<u8>(&null), None);
    }
}
