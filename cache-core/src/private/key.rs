//! The key of one annotated call: encoded once, while the arguments are still borrowed.

use serde::Serialize;

use crate::engine::FirstL1;
use crate::key::{encode_key, KeyError};
use crate::operation::Operation;

/// The key of one call: encoded, bypassed (condition false), or failed to encode; and what
/// the hit path's probe already learnt of the first cache's L1 under it, so the miss path
/// does not read it again.
#[derive(Debug)]
pub struct OpKey(pub(crate) KeyState, pub(crate) FirstL1);

impl OpKey {
    /// A key the probe encoded, with what it found in the first cache's L1.
    pub(crate) fn probed(encoded: String, first_l1: FirstL1) -> Self {
        OpKey(KeyState::Key(encoded), first_l1)
    }
}

#[derive(Debug)]
pub(crate) enum KeyState {
    Key(String),
    Bypass,
    Failed(KeyError),
}

/// Encodes a call's key.
pub fn key<K: Serialize + ?Sized>(value: &K) -> OpKey {
    let state = match encode_key(value) {
        Ok(k) => KeyState::Key(k),
        Err(e) => KeyState::Failed(e),
    };
    OpKey(state, FirstL1::Unread)
}

/// The key of a call whose `condition` is false: the cache is bypassed.
pub fn no_key() -> OpKey {
    OpKey(KeyState::Bypass, FirstL1::Unread)
}

/// The "key" of an eviction of every entry (`all_entries`): any key but [`no_key`], which
/// bypasses it (a condition that is false).
pub fn every_key() -> OpKey {
    OpKey(KeyState::Key(String::new()), FirstL1::Unread)
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
    encoded_probed(op, key).map(|(key, _)| key)
}

/// [`encoded`], with what the probe found in the first cache's L1.
pub(super) fn encoded_probed(op: &'static Operation, key: OpKey) -> Option<(String, FirstL1)> {
    let first_l1 = key.1;
    match key.0 {
        KeyState::Key(key) => Some((key, first_l1)),
        KeyState::Bypass => None,
        KeyState::Failed(err) => {
            tracing::warn!(function = op.function, error = %err, "cachet: cannot encode the key; calling the function uncached");
            None
        }
    }
}
