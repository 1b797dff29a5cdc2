//! Key encoding: a `serde::Serialize` value to a deterministic, injective, readable string.
//! (Being written: see the key-encoding branch.)

use serde::Serialize;

/// A value that cannot be turned into a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub(crate) String);

/// Appends the encoding of `value` to `out`.
pub fn encode_key_into<K: Serialize + ?Sized>(value: &K, out: &mut String) -> Result<(), KeyError> {
    let _ = (value, out);
    Err(KeyError("key encoding is not written yet".into()))
}

/// The encoding of `value`.
pub fn encode_key<K: Serialize + ?Sized>(value: &K) -> Result<String, KeyError> {
    let mut out = String::new();
    encode_key_into(value, &mut out)?;
    Ok(out)
}
