//! The hit path of `#[cacheable]`: the first cache's L1, probed before the body is built;
//! a miss hands the encoded key and what L1 held on to the entry point.

use std::marker::PhantomData;

use serde::Serialize;

use super::key::{key, no_key, KeyUse, OpKey};
use super::resolve::{recorded, resolve};
use crate::direct_key::UseKey;
use crate::engine::{with_encoded_by, FirstL1};
use crate::hit::HitRef;
use crate::operation::{Operation, Resolution};
use crate::shape::Shape;
use crate::slot::Slot;
use crate::store::L1KeyRef;

/// The hit path of `#[cacheable]`: the first cache's L1, probed with the key encoded into
/// a reused buffer, before the arguments move into the body (which is then not built). Only
/// a miss allocates the key's `String`.
///
/// Generated code builds it as `(&ProbeOf::<_, EAGER>::new(..)).probe()`: a value that is not
/// a [`crate::CacheValue`] gets a probe that always misses ([`ProbesNothing`]), so the only
/// errors about it are the entry point's, at the return type.
///
/// `EAGER`: the entry point starts eager refreshes (the detachable ones), so a hit past its
/// refresh point is left to it. A constant, not a field: the hit path's callback then
/// captures nothing for it (a field cost a hit ~6 instructions: spilled, stored again for
/// the callback, passed by reference).
pub struct Probe<S: Shape, L, const EAGER: bool> {
    shape: S,
    op: &'static Operation,
    /// How the value's type is looked up in L1 (or not at all).
    look: PhantomData<L>,
}

/// The first cache of a call, as a probe's [`LookL1`] sees it: its hit path.
pub struct FirstCache<'a>(HitRef<'a>);

/// What a probe's look found short of a fresh value: what the miss path may skip.
pub struct L1Miss(FirstL1);

/// How a probe reads the first cache's L1 for a value of type `V`: a direct call (no
/// function pointer between the probe and the engine's read, so the read inlines into it).
pub trait LookL1<V> {
    /// Whether this look reads L1 at all (the fallback probe does not).
    const READS: bool;
    /// The fresh value under `key`, or what the miss path may skip; with `EAGER`, a value
    /// past its eager refresh point is not taken.
    fn look<const EAGER: bool>(cache: FirstCache<'_>, key: &L1KeyRef<'_>) -> Result<V, L1Miss>;
}

/// The look of a value kept in slot `T` (a [`crate::CacheValue`], or an unwrapped `Option`).
pub struct SlotL1<T>(PhantomData<fn() -> T>);

impl<T: Slot> LookL1<T::Value> for SlotL1<T> {
    const READS: bool = true;
    // Inlined into the probe: a frame of its own cost a hit ~20 instructions.
    #[inline(always)]
    fn look<const EAGER: bool>(
        cache: FirstCache<'_>,
        key: &L1KeyRef<'_>,
    ) -> Result<T::Value, L1Miss> {
        cache.0.hit_in_l1::<T, EAGER>(key).map_err(L1Miss)
    }
}

/// The look of a value that is not a [`crate::CacheValue`]: it reads nothing.
pub struct NoL1;

impl<V> LookL1<V> for NoL1 {
    const READS: bool = false;
    #[inline]
    fn look<const EAGER: bool>(_: FirstCache<'_>, _: &L1KeyRef<'_>) -> Result<V, L1Miss> {
        Err(L1Miss(FirstL1::Unread))
    }
}

/// What a [`Probe`] is made from: the call's shape and its operation; `EAGER`, whether its
/// entry point starts eager refreshes (the detachable ones): a hit past its refresh point
/// is then left to the entry point.
pub struct ProbeOf<S, const EAGER: bool>(S, &'static Operation);

impl<S, const EAGER: bool> ProbeOf<S, EAGER> {
    /// The parts of a probe.
    pub fn new(shape: S, op: &'static Operation) -> Self {
        ProbeOf(shape, op)
    }
}

/// A probe of L1, for a value that is a [`crate::CacheValue`].
pub trait ProbesL1<const EAGER: bool> {
    /// The call's shape.
    type Shape: Shape;
    /// How it looks L1 up.
    type Look: LookL1<<Self::Shape as Shape>::Value>;
    /// The probe.
    fn probe(&self) -> Probe<Self::Shape, Self::Look, EAGER>;
}

impl<S: Shape, const EAGER: bool> ProbesL1<EAGER> for ProbeOf<S, EAGER>
where
    S::Slot: Slot<Value = S::Value>,
{
    type Shape = S;
    type Look = SlotL1<S::Slot>;
    fn probe(&self) -> Probe<S, SlotL1<S::Slot>, EAGER> {
        Probe {
            shape: self.0,
            op: self.1,
            look: PhantomData,
        }
    }
}

/// The fallback probe (not a [`crate::CacheValue`]): always a miss.
pub trait ProbesNothing<const EAGER: bool> {
    /// The call's shape.
    type Shape: Shape;
    /// The probe.
    fn probe(&self) -> Probe<Self::Shape, NoL1, EAGER>;
}

impl<S: Shape, const EAGER: bool> ProbesNothing<EAGER> for &ProbeOf<S, EAGER> {
    type Shape = S;
    fn probe(&self) -> Probe<S, NoL1, EAGER> {
        Probe {
            shape: self.0,
            op: self.1,
            look: PhantomData,
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

impl<S: Shape, L: LookL1<S::Value>, const EAGER: bool> KeyUse for Probe<S, L, EAGER> {
    type Output = Probed<S::Output>;
    #[inline]
    fn with_key<K: Serialize + ?Sized>(self, value: &K) -> Probed<S::Output> {
        if !L::READS {
            return Probed::Miss(key(value));
        }
        // The usual case: the operation's record of its first cache's hit path (one
        // pointer, no lock, no reference count).
        match recorded(self.op) {
            Some(Resolution { hit: Some(hit), .. }) => self.look(hit.get(), value),
            // No caches, or no L1: nothing to look at without I/O.
            Some(Resolution { hit: None, .. }) => Probed::Miss(key(value)),
            None => self.with_key_resolved(value),
        }
    }
}

impl<S: Shape, L: LookL1<S::Value>, const EAGER: bool> Probe<S, L, EAGER> {
    /// [`KeyUse::with_key`] without a record: the first call, or a scope.
    #[inline(never)]
    fn with_key_resolved<K: Serialize + ?Sized>(self, value: &K) -> Probed<S::Output> {
        // Unresolved caches were warned about: the call runs uncached, as it would anyway.
        let Some(caches) = resolve(self.op) else {
            return Probed::Miss(no_key());
        };
        match caches.first().and_then(HitRef::of) {
            Some(hit) => self.look(hit, value),
            None => Probed::Miss(key(value)),
        }
    }

    /// The look at the first cache's L1 under `value`'s key.
    #[inline(always)]
    fn look<K: Serialize + ?Sized>(self, hit: HitRef<'_>, value: &K) -> Probed<S::Output> {
        // A miss hands on the key encoded for L1 and what L1 held: the key is encoded
        // once, and a cold miss reads L1 once before L2.
        let looked = with_encoded_by(
            value,
            Looking::<S, L, EAGER> {
                hit,
                look: PhantomData,
            },
        );
        match looked {
            Some(Ok(value)) => Probed::Hit(self.shape.rebuild(value)),
            Some(Err(Some(key))) => Probed::Miss(key),
            Some(Err(None)) | None => Probed::Miss(key(value)),
        }
    }
}

/// A probe's look at L1 under an encoded key: a type of its own rather than a closure, so
/// that it is inlined into the key's encoding (`direct_key::UseKey`).
struct Looking<'h, S, L, const EAGER: bool> {
    hit: HitRef<'h>,
    look: PhantomData<(S, L)>,
}

impl<S: Shape, L: LookL1<S::Value>, const EAGER: bool> UseKey for Looking<'_, S, L, EAGER> {
    /// The fresh value, or the key to call with (`None`: encode it again).
    type Out = Result<S::Value, Option<OpKey>>;
    #[inline(always)]
    fn use_key(self, encoded: &[u8]) -> Self::Out {
        // No `force_fresh` here: a view with it has no hit path (`hit.rs`).
        let hit = self.hit;
        L::look::<EAGER>(FirstCache(hit), &hit.key_of(encoded))
            .map_err(|L1Miss(first_l1)| missed(encoded, first_l1))
    }
}

/// The key of a probe that missed, with what it found in L1 (out of the hit path).
#[inline(never)]
fn missed(encoded: &[u8], first_l1: FirstL1) -> Option<OpKey> {
    // The encoder writes whole `str`s and ASCII only: always UTF-8.
    std::str::from_utf8(encoded)
        .ok()
        .map(|text| OpKey::probed(text.to_owned(), first_l1))
}
