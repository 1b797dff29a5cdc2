//! What generated code checks a typed cache's annotations with: a key ([`KeyOf`]) and a
//! cached value ([`DeclaredValue`]) against the declaration. The macros wrap each in a local
//! trait whose diagnostic names the function and the declaration, so a disagreement is a
//! compile error at the key or the return type.

use std::marker::PhantomData;

use crate::shape::{FallibleShape, OptionShape, ResultShape, ValueShape};

/// `Self` can stand for a key declared as `K`: it encodes exactly as a `K` does. Implemented
/// for `K` itself, for `&K`, and for the borrowed forms of owned keys that serde encodes
/// alike (`str` and `&str` for `String`, `[T]` and `&[T]` for `Vec<T>`).
///
/// ```
/// use cache_core::__private::KeyOf;
/// fn accepts<A: KeyOf<K> + ?Sized, K: ?Sized>() {}
/// accepts::<u64, u64>();
/// accepts::<&u64, u64>();
/// accepts::<str, String>();
/// accepts::<&str, String>();
/// accepts::<[u8], Vec<u8>>();
/// ```
pub trait KeyOf<K: ?Sized> {}

impl<T: ?Sized> KeyOf<T> for T {}
impl<T: ?Sized> KeyOf<Unmatched<T>> for T {}
impl<T: ?Sized> KeyOf<T> for &T {}
impl KeyOf<String> for str {}
impl KeyOf<String> for &str {}
impl<T> KeyOf<Vec<T>> for [T] {}
impl<T> KeyOf<Vec<T>> for &[T] {}

/// Compiles only for a key type (`Serialize`): `caches!` checks its declarations' key
/// types with it, at the type.
///
/// ```
/// cache_core::__private::assert_typed_key::<(u64, String)>();
/// ```
pub fn assert_typed_key<K: serde::Serialize + ?Sized>() {}

/// Compiles only for a cacheable value type: `caches!` checks its declarations' value
/// types with it, at the type.
///
/// ```
/// cache_core::__private::assert_typed_value::<Vec<String>>();
/// ```
pub fn assert_typed_value<V: crate::value::CacheValue>() {}

/// A type no declaration has: its impls (`T: KeyOf<Unmatched<T>>`, and the generated value
/// checks' alike) give every key and value a second candidate, so the compiler never infers
/// the declaration's types from the function's (which would turn a disagreement into a bare
/// "mismatched types" at the declaration) and reports it in the check's words instead.
pub struct Unmatched<T: ?Sized>(PhantomData<T>);

/// The value a return shape stores as a typed cache sees it: `T` for a function returning
/// `T`, `Result<T, E>` or `Option<T>`.
///
/// ```
/// use cache_core::__private::{DeclaredValue, Returns, ReturnsResult as _, ReturnsValue as _};
/// fn value_of<S: DeclaredValue>(_: S) -> std::marker::PhantomData<S::Value> { std::marker::PhantomData }
/// let _: std::marker::PhantomData<u8> = value_of((&Returns::<Result<u8, ()>>::new()).shape());
/// ```
pub trait DeclaredValue {
    /// The declared value type this shape matches.
    type Value;
}

impl<T> DeclaredValue for ValueShape<T> {
    type Value = T;
}
impl<T, E> DeclaredValue for ResultShape<T, E> {
    type Value = T;
}
impl<T, E> DeclaredValue for FallibleShape<T, E> {
    type Value = T;
}
impl<T> DeclaredValue for OptionShape<T> {
    type Value = T;
}
