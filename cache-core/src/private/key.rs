//! The key of one annotated call: encoded once, while the arguments are still borrowed.

use serde::Serialize;

use super::operation::Operation;
use crate::key::{encode_key, KeyError};

/// The key of one call: encoded, bypassed (condition false), or failed to encode.
#[derive(Debug)]
pub struct OpKey(pub(crate) KeyState);

#[derive(Debug)]
pub(crate) enum KeyState {
    Key(String),
    Bypass,
    Failed(KeyError),
}

/// Encodes a call's key.
pub fn key<K: Serialize + ?Sized>(value: &K) -> OpKey {
    OpKey(match encode_key(value) {
        Ok(k) => KeyState::Key(k),
        Err(e) => KeyState::Failed(e),
    })
}

/// The key of a call whose `condition` is false: the cache is bypassed.
pub fn no_key() -> OpKey {
    OpKey(KeyState::Bypass)
}

/// What generated code does with a key value while it still borrows the arguments: a key
/// is passed by reference to [`KeyUse::with_key`] once, so the key expression runs once.
pub trait KeyUse {
    /// What using the key gives.
    type Output;
    /// Uses `key`.
    fn with_key<K: Serialize + ?Sized>(self, key: &K) -> Self::Output;
}

/// Encodes the key into an [`OpKey`] (as [`key`]).
pub struct Encode;

impl KeyUse for Encode {
    type Output = OpKey;
    fn with_key<K: Serialize + ?Sized>(self, value: &K) -> OpKey {
        key(value)
    }
}

/// The encoded key, or `None` (bypass) with a warning when it could not be encoded.
pub(super) fn encoded(op: &'static Operation, key: OpKey) -> Option<String> {
    match key.0 {
        KeyState::Key(key) => Some(key),
        KeyState::Bypass => None,
        KeyState::Failed(err) => {
            tracing::warn!(function = op.function, error = %err, "cachet: cannot encode the key; calling the function uncached");
            None
        }
    }
}
