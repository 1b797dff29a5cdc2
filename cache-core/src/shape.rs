//! Return shapes: how an annotated function's return type maps to the cached value.
//!
//! Chosen at compile time by autoref specialisation on the *resolved* return type, so type
//! aliases (`anyhow::Result<T>`, `type R<T> = Result<T, E>`) are recognised, and a generic
//! `T` that is not known to be a `Result` is cached as a plain value.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

/// Declares the rungs of an autoref probe ladder: traits alike but for their names, each
/// with one method that picks an associated type (a shape, a timeout behaviour). Generated
/// code calls the method on a reference to the probe; method resolution takes the first
/// rung whose impl matches, and the impls order the rungs (by value first, then through
/// one more `&` each).
macro_rules! rungs {
    ($assoc:ident: $bound:path, $method:ident; $($(#[$doc:meta])* $name:ident;)+) => {$(
        $(#[$doc])*
        pub trait $name {
            /// What this rung picks.
            type $assoc: $bound;
            /// What this rung picks.
            fn $method(&self) -> Self::$assoc;
        }
    )+};
}
pub(crate) use rungs;

/// A failure a single-flight leader hands to the callers that waited for it.
pub type SharedFailure = Arc<dyn Any + Send + Sync>;

/// How a function's return value relates to what the cache holds.
pub trait Shape: Copy {
    /// What the function returns.
    type Output;
    /// What the cache stores.
    type Value;
    /// How the value is kept in the tiers (`slot.rs`): the value itself, or, for
    /// `Option<T>`, [`crate::slot::Unwrapped<T>`] (`Some(v)` as `v`, `None` as the null marker).
    type Slot;
    /// The value to cache, if this outcome is cacheable (`Ok`, or any plain value).
    fn cached<'a>(&self, output: &'a Self::Output) -> Option<&'a Self::Value>;
    /// The function's return value rebuilt from a cached value.
    fn rebuild(&self, value: Self::Value) -> Self::Output;
    /// Whether the value is a "null" (`None`), stored only when `allow_null_values` is on.
    fn is_null(&self, value: &Self::Value) -> bool;
    /// The leader's failed `output` as the callers that waited for it may take it (a clone
    /// of its error), if this shape can share it: `None` (the default) otherwise.
    fn share_failure(&self, output: &Self::Output) -> Option<SharedFailure> {
        let _ = output;
        None
    }
    /// What a caller of `cache` returns when the call it waited for (single flight) failed,
    /// given what the leader shared of its failure, if this shape can say so without
    /// running the function: `None` (the default) and the caller runs the function itself.
    fn failed(&self, cache: &str, shared: Option<&SharedFailure>) -> Option<Self::Output> {
        let _ = (cache, shared);
        None
    }
    /// What the call returns when the manager's error handler failed a fault of its
    /// lookup (`fault.rs`), before its function runs, if its return type can carry
    /// `error`: `None` (the default) and the function runs (the fault was logged).
    fn fail_early(&self, error: crate::CacheError) -> Option<Self::Output> {
        let _ = error;
        None
    }
}

/// Shape of `Result<T, E>`: only `Ok(T)` is cached, as `T`. What the callers that waited
/// for a failing leader return is chosen by [`FailureOf`]: a clone of its error, or `E`
/// made from [`crate::CacheError::LeaderFailed`], or (by default) their own run.
pub struct ResultShape<T, E> {
    failure: Option<Failure<E>>,
    value: PhantomData<fn() -> T>,
}

/// How a leader's error reaches the callers that waited for it.
struct Failure<E> {
    share: fn(&E) -> Option<SharedFailure>,
    take: fn(&str, Option<&SharedFailure>) -> Option<E>,
}

impl<E> Clone for Failure<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Failure<E> {}
/// Shape of `Result<T, E>` where `E` can hold a [`crate::CacheError`] (the programmatic
/// `try_get_or_set`): as [`ResultShape`], and a caller whose single-flight leader failed
/// returns [`crate::CacheError::LeaderFailed`] instead of running the function again.
pub struct FallibleShape<T, E>(PhantomData<fn() -> (T, E)>);
/// Shape of `Option<T>`: unwrapped as Spring unwraps `Optional`: `Some(v)` is stored as `v`,
/// `None` as the null marker (a null value, stored only with `allow_null_values`).
pub struct OptionShape<T>(PhantomData<fn() -> T>);
/// Shape of any other type: cached as is.
pub struct ValueShape<T>(PhantomData<fn() -> T>);

macro_rules! copy_marker {
    ($($name:ident<$($p:ident),*>),*) => {$(
        impl<$($p),*> Clone for $name<$($p),*> { fn clone(&self) -> Self { *self } }
        impl<$($p),*> Copy for $name<$($p),*> {}
    )*};
}
copy_marker!(ResultShape<T, E>, FallibleShape<T, E>, OptionShape<T>, ValueShape<T>);

impl<T, E> Default for FallibleShape<T, E> {
    fn default() -> Self {
        FallibleShape(PhantomData)
    }
}

impl<T, E: From<crate::CacheError>> Shape for FallibleShape<T, E> {
    type Slot = T;
    type Output = Result<T, E>;
    type Value = T;
    fn cached<'a>(&self, output: &'a Result<T, E>) -> Option<&'a T> {
        output.as_ref().ok()
    }
    fn rebuild(&self, value: T) -> Result<T, E> {
        Ok(value)
    }
    fn is_null(&self, _: &T) -> bool {
        false
    }
    fn failed(&self, cache: &str, _: Option<&SharedFailure>) -> Option<Result<T, E>> {
        Some(Err(leader_failed(cache)))
    }
    fn fail_early(&self, error: crate::CacheError) -> Option<Result<T, E>> {
        Some(Err(E::from(error)))
    }
}

/// [`crate::CacheError::LeaderFailed`], as `E`.
fn leader_failed<E: From<crate::CacheError>>(cache: &str) -> E {
    E::from(crate::CacheError::LeaderFailed {
        cache: cache.to_owned(),
    })
}

impl<T, E> Default for ResultShape<T, E> {
    fn default() -> Self {
        ResultShape {
            failure: None,
            value: PhantomData,
        }
    }
}
impl<T> Default for OptionShape<T> {
    fn default() -> Self {
        OptionShape(PhantomData)
    }
}
impl<T> Default for ValueShape<T> {
    fn default() -> Self {
        ValueShape(PhantomData)
    }
}

impl<T, E> Shape for ResultShape<T, E> {
    type Slot = T;
    type Output = Result<T, E>;
    type Value = T;
    fn cached<'a>(&self, output: &'a Result<T, E>) -> Option<&'a T> {
        output.as_ref().ok()
    }
    fn rebuild(&self, value: T) -> Result<T, E> {
        Ok(value)
    }
    fn is_null(&self, _: &T) -> bool {
        false
    }
    fn share_failure(&self, output: &Result<T, E>) -> Option<SharedFailure> {
        let failure = self.failure?;
        output.as_ref().err().and_then(failure.share)
    }
    fn failed(&self, cache: &str, shared: Option<&SharedFailure>) -> Option<Result<T, E>> {
        let failure = self.failure?;
        (failure.take)(cache, shared).map(Err)
    }
}

/// Probe for what the callers that waited for a failing leader return (single flight):
/// generated code writes `(&&&FailureOf::new(shape)).failure()` after picking the shape.
/// Method resolution tries [`SharesError`] first (a `Result` whose error is `Clone`: each
/// caller gets a clone of the leader's error), then [`ConvertsError`] (an error made from
/// [`crate::CacheError`]: `LeaderFailed`), then [`KeepsShape`] (any other shape: each
/// caller runs the function again, as before).
pub struct FailureOf<S>(S);

impl<S> FailureOf<S> {
    /// The probe of `shape`.
    pub const fn new(shape: S) -> Self {
        FailureOf(shape)
    }
}

rungs! { Shape: Shape, failure;
    /// Picks the leader's error, cloned (found first: two autorefs fewer).
    SharesError;
    /// Picks [`crate::CacheError::LeaderFailed`], converted.
    ConvertsError;
    /// Keeps the shape as it is (found last).
    KeepsShape;
}

impl<T, E: Clone + Send + Sync + 'static> SharesError for &&FailureOf<ResultShape<T, E>> {
    type Shape = ResultShape<T, E>;
    fn failure(&self) -> ResultShape<T, E> {
        ResultShape {
            failure: Some(Failure {
                share: |error| Some(Arc::new(error.clone()) as SharedFailure),
                take: |_, shared| shared?.downcast_ref::<E>().cloned(),
            }),
            value: PhantomData,
        }
    }
}

impl<T, E: From<crate::CacheError>> ConvertsError for &FailureOf<ResultShape<T, E>> {
    type Shape = ResultShape<T, E>;
    fn failure(&self) -> ResultShape<T, E> {
        ResultShape {
            failure: Some(Failure {
                share: |_| None,
                take: |cache, _| Some(leader_failed(cache)),
            }),
            value: PhantomData,
        }
    }
}

impl<S: Shape> KeepsShape for FailureOf<S> {
    type Shape = S;
    fn failure(&self) -> S {
        self.0
    }
}

impl<T> Shape for OptionShape<T> {
    type Slot = crate::slot::Unwrapped<T>;
    type Output = Option<T>;
    type Value = Option<T>;
    fn cached<'a>(&self, output: &'a Option<T>) -> Option<&'a Option<T>> {
        Some(output)
    }
    fn rebuild(&self, value: Option<T>) -> Option<T> {
        value
    }
    fn is_null(&self, value: &Option<T>) -> bool {
        value.is_none()
    }
}

impl<T> Shape for ValueShape<T> {
    type Slot = T;
    type Output = T;
    type Value = T;
    fn cached<'a>(&self, output: &'a T) -> Option<&'a T> {
        Some(output)
    }
    fn rebuild(&self, value: T) -> T {
        value
    }
    fn is_null(&self, _: &T) -> bool {
        false
    }
}

/// Probe for the return type `R`: `(&Returns::<R>::new()).shape()` picks the shape.
pub struct Returns<R>(PhantomData<fn() -> R>);

impl<R> Returns<R> {
    /// The probe.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Returns(PhantomData)
    }
}

rungs! { Shape: Shape, shape;
    /// Picks [`ResultShape`] (found first by method resolution: no autoref needed).
    ReturnsResult;
    /// Picks [`OptionShape`] (found first by method resolution: no autoref needed).
    ReturnsOption;
    /// Picks [`ValueShape`] (found only after autoref, so last).
    ReturnsValue;
}

impl<T, E> ReturnsResult for Returns<Result<T, E>> {
    type Shape = ResultShape<T, E>;
    fn shape(&self) -> Self::Shape {
        ResultShape::default()
    }
}
impl<T> ReturnsOption for Returns<Option<T>> {
    type Shape = OptionShape<T>;
    fn shape(&self) -> Self::Shape {
        OptionShape(PhantomData)
    }
}
impl<R> ReturnsValue for &Returns<R> {
    type Shape = ValueShape<R>;
    fn shape(&self) -> Self::Shape {
        ValueShape(PhantomData)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Aliased<T> = Result<T, String>;

    #[test]
    // The borrow is the mechanism: method resolution on `&Returns<R>` tries the by-value
    // impls (Result, Option) before the autoref one (any other type).
    #[allow(clippy::needless_borrow)]
    fn picks_shapes_by_resolved_type() {
        let s = (&Returns::<Aliased<u8>>::new()).shape();
        assert_eq!(s.cached(&Ok(3)), Some(&3));
        assert_eq!(s.cached(&Err("x".into())), None);
        let s = (&Returns::<Option<u8>>::new()).shape();
        assert!(s.is_null(&None));
        let s = (&Returns::<u8>::new()).shape();
        assert_eq!(s.rebuild(4), 4);
    }
}
