//! The hit path of `#[cacheable]`: the first cache's L1, probed before the body is built;
//! a miss hands the encoded key and what L1 held on to the entry point.

use serde::Serialize;

use super::key::{key, no_key, KeyUse, OpKey};
use super::resolve::resolve;
use crate::engine::{Engine, FirstL1};
use crate::operation::Operation;
use crate::shape::Shape;
use crate::slot::Slot;

/// The hit path of `#[cacheable]`: the first cache's L1, probed with the key encoded into
/// a reused buffer, before the arguments move into the body (which is then not built). Only
/// a miss allocates the key's `String`.
///
/// Generated code builds it as `(&ProbeOf::new(..)).probe()`: a value that is not a
/// [`crate::CacheValue`] gets a probe that always misses ([`ProbesNothing`]), so the only errors
/// about it are the entry point's, at the return type.
pub struct Probe<S: Shape> {
    shape: S,
    op: &'static Operation,
    eager: bool,
    /// The L1 lookup of the value's type, by stored key.
    look: Option<Look<S::Value>>,
}

/// A fresh L1 value of type `V` under a stored key (`eager`: not one past its refresh point),
/// or what the miss path may skip.
type Look<V> = fn(&Engine, &str, bool) -> Result<V, FirstL1>;

/// What a [`Probe`] is made from: the call's shape, its operation, and whether its entry
/// point starts eager refreshes (the detachable ones): a hit past its refresh point is
/// then left to the entry point.
pub struct ProbeOf<S>(S, &'static Operation, bool);

impl<S> ProbeOf<S> {
    /// The parts of a probe.
    pub fn new(shape: S, op: &'static Operation, eager: bool) -> Self {
        ProbeOf(shape, op, eager)
    }
}

/// A probe of L1, for a value that is a [`crate::CacheValue`].
pub trait ProbesL1 {
    /// The call's shape.
    type Shape: Shape;
    /// The probe.
    fn probe(&self) -> Probe<Self::Shape>;
}

impl<S: Shape> ProbesL1 for ProbeOf<S>
where
    S::Slot: Slot<Value = S::Value>,
{
    type Shape = S;
    fn probe(&self) -> Probe<S> {
        Probe {
            shape: self.0,
            op: self.1,
            eager: self.2,
            look: Some(Engine::hit_in_l1::<S::Slot>),
        }
    }
}

/// The fallback probe (not a [`crate::CacheValue`]): always a miss.
pub trait ProbesNothing {
    /// The call's shape.
    type Shape: Shape;
    /// The probe.
    fn probe(&self) -> Probe<Self::Shape>;
}

impl<S: Shape> ProbesNothing for &ProbeOf<S> {
    type Shape = S;
    fn probe(&self) -> Probe<S> {
        Probe {
            shape: self.0,
            op: self.1,
            eager: self.2,
            look: None,
        }
    }
}

/// A probe's answer: the function's output from a fresh L1 value, or the key to call with.
pub enum Probed<O> {
    /// A fresh L1 value, rebuilt into the function's output.
    Hit(O),
    /// Anything else: the call goes on with this key.
    Miss(OpKey),
}

impl<S: Shape> KeyUse for Probe<S> {
    type Output = Probed<S::Output>;
    fn with_key<K: Serialize + ?Sized>(self, value: &K) -> Probed<S::Output> {
        let Some(look) = self.look else {
            return Probed::Miss(key(value));
        };
        // Unresolved caches were warned about: the call runs uncached, as it would anyway.
        let Some(caches) = resolve(self.op) else {
            return Probed::Miss(no_key());
        };
        // A miss hands on the key encoded for L1 and what L1 held: the key is encoded
        // once, and a cold miss reads L1 once before L2. The miss's key is written aside
        // so that the hit returns only its value.
        let mut missed = None;
        let hit = caches.first().and_then(|c| {
            // `force_fresh` (a `#[cache_put]` stacked over it, say): no hit; the function runs.
            let force = c.skips(|o| o.force_fresh);
            c.with_stored_key(value, |stored, at| {
                let looked = if force {
                    Err(FirstL1::Unread)
                } else {
                    look(c, stored, self.eager)
                };
                match looked {
                    Ok(value) => Some(value),
                    Err(first_l1) => {
                        missed = Some(OpKey::probed(stored[at..].to_owned(), first_l1));
                        None
                    }
                }
            })
        });
        match (hit.flatten(), missed) {
            (Some(value), _) => Probed::Hit(self.shape.rebuild(value)),
            (None, Some(key)) => Probed::Miss(key),
            (None, None) => Probed::Miss(key(value)),
        }
    }
}
