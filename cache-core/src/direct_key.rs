//! The key encoding's shortest path: a key that is one integer, one string with no reserved
//! character, or a bool (or a newtype of one of these) is handed to its user straight from
//! the value, with no buffer of its own: an integer's digits from `itoa`'s buffer (what
//! both other encoders write for it), a string's own bytes (which both write unchanged
//! when it holds no reserved character). Any other key declines at its first step, before
//! its user is called, and goes to the stack encoder ([`crate::scalar_key`]) or the full one.
//!
//! The choice costs nothing at run time: `u64::serialize(s)` *is* `s.serialize_u64(..)`, so
//! the monomorphised encoding of a `u64` key is `itoa` and the user's call, nothing else; a
//! `&str` key is one scan for reserved characters.

use serde::ser::{self, Impossible, Serialize};

use crate::key::{integers_by_int, is_reserved};
use crate::scalar_key::{decline_compound_forms, NotScalar};

/// What [`with_direct`] did with a key.
pub(crate) enum Direct<R, F> {
    /// The key was of the direct forms: its user ran on its bytes and gave this.
    Done(R),
    /// The key is of another form: its user, not called.
    Declined(F),
    /// The user ran, and then the key's `Serialize` reported an error anyway (a hand-written
    /// `Serialize` can): the key cannot be encoded, as the full encoder would find too.
    Failed,
}

/// What is done with a key's encoded bytes: a closure (any `FnOnce(&[u8]) -> R`, through
/// [`Closure`]), or a type of its own whose call is inlined whatever its size (the hit
/// path's probe: a closure's call is inlined only when the optimizer finds it small).
pub(crate) trait UseKey {
    /// What using the key gives.
    type Out;
    /// Uses the key's encoded bytes.
    fn use_key(self, encoded: &[u8]) -> Self::Out;
}

/// A closure as a [`UseKey`].
pub(crate) struct Closure<F>(pub(crate) F);

impl<R, F: FnOnce(&[u8]) -> R> UseKey for Closure<F> {
    type Out = R;
    #[inline(always)]
    fn use_key(self, encoded: &[u8]) -> R {
        (self.0)(encoded)
    }
}

/// Runs `user` on `key`'s encoded bytes when `key` is of the direct forms (see the
/// [module docs](self)); hands `user` back uncalled otherwise.
#[inline(always)]
pub(crate) fn with_direct<K, U>(key: &K, user: U) -> Direct<U::Out, U>
where
    K: Serialize + ?Sized,
    U: UseKey,
{
    let mut user = Some(user);
    match key.serialize(Bytes { user: &mut user }) {
        Ok(done) => Direct::Done(done),
        Err(NotScalar) => match user {
            Some(user) => Direct::Declined(user),
            None => Direct::Failed,
        },
    }
}

/// The direct path's serializer: the key's bytes handed to `user`, which it takes.
struct Bytes<'u, U> {
    user: &'u mut Option<U>,
}

impl<U: UseKey> Bytes<'_, U> {
    #[inline(always)]
    fn hand(self, bytes: &[u8]) -> Result<U::Out, NotScalar> {
        match self.user.take() {
            Some(user) => Ok(user.use_key(bytes)),
            None => Err(NotScalar),
        }
    }

    #[inline(always)]
    fn int(self, v: impl itoa::Integer) -> Result<U::Out, NotScalar> {
        self.hand(itoa::Buffer::new().format(v).as_bytes())
    }
}

impl<'u, U: UseKey> ser::Serializer for Bytes<'u, U> {
    type Ok = U::Out;
    type Error = NotScalar;
    type SerializeSeq = Impossible<U::Out, NotScalar>;
    type SerializeTuple = Impossible<U::Out, NotScalar>;
    type SerializeTupleStruct = Impossible<U::Out, NotScalar>;
    type SerializeTupleVariant = Impossible<U::Out, NotScalar>;
    type SerializeMap = Impossible<U::Out, NotScalar>;
    type SerializeStruct = Impossible<U::Out, NotScalar>;
    type SerializeStructVariant = Impossible<U::Out, NotScalar>;

    #[inline(always)]
    fn serialize_bool(self, v: bool) -> Result<U::Out, NotScalar> {
        self.hand(if v { b"true" } else { b"false" })
    }
    integers_by_int!(#[inline(always)]);
    fn serialize_f32(self, _: f32) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_f64(self, _: f64) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_char(self, _: char) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    #[inline(always)]
    fn serialize_str(self, v: &str) -> Result<U::Out, NotScalar> {
        // A reserved character is written escaped: the stack encoder's job.
        if v.bytes().any(is_reserved) {
            return Err(NotScalar);
        }
        self.hand(v.as_bytes())
    }
    fn serialize_none(self) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit(self) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<U::Out, NotScalar> {
        Err(NotScalar)
    }
    #[inline(always)]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<U::Out, NotScalar> {
        value.serialize(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotScalar> {
        Err(NotScalar)
    }
    decline_compound_forms!(NotScalar);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::Cell;

    use proptest::prelude::*;

    use super::*;
    use crate::key::encode_key;
    use crate::scalar_key::tests::integers_of_every_length;

    /// The direct path's bytes, or `None` when it declines the key (its user not called).
    fn direct<K: Serialize + ?Sized>(key: &K) -> Option<String> {
        let called = Cell::new(false);
        let out = with_direct(
            key,
            Closure(|bytes: &[u8]| {
                called.set(true);
                String::from_utf8(bytes.to_vec()).unwrap()
            }),
        );
        match out {
            Direct::Done(text) => Some(text),
            Direct::Declined(_) => {
                assert!(!called.get(), "a declined key's user was called");
                None
            }
            Direct::Failed => panic!("a key of this crate's tests failed"),
        }
    }

    /// Whatever the direct path hands on is the full encoder's text.
    fn agrees<K: Serialize + ?Sized>(key: &K) -> Result<(), TestCaseError> {
        if let Some(direct) = direct(key) {
            prop_assert_eq!(direct, encode_key(key).unwrap());
        }
        Ok(())
    }

    #[derive(serde::Serialize)]
    struct UserId(u64);
    #[derive(serde::Serialize)]
    struct Name(String);

    /// Integers of every width and length: both sides of each power of ten, the bounds of
    /// each type, negatives; every one is taken, with the full encoder's text.
    #[test]
    fn integers_of_every_width_and_length_are_direct_with_the_full_encoders_text() {
        fn same<K: Serialize>(key: K) {
            let full = encode_key(&key).unwrap();
            assert_eq!(direct(&key).as_ref(), Some(&full), "{full}");
        }
        for v in integers_of_every_length() {
            same(v);
            same(v as i64);
            same((v as i64).wrapping_neg());
            same(v as u32);
            same(v as i32);
            same((v as i32).wrapping_neg());
            same(v as u16);
            same(v as i16);
            same(v as u8);
            same(v as i8);
            same(u128::from(v) * u128::from(v));
            same(i128::from(v).wrapping_mul(i128::from(v)).wrapping_neg());
            same(UserId(v));
        }
        same(i8::MIN);
        same(i8::MAX);
        same(i16::MIN);
        same(i16::MAX);
        same(i32::MIN);
        same(i32::MAX);
        same(i64::MIN);
        same(i64::MAX);
        same(i128::MIN);
        same(i128::MAX);
        same(u8::MAX);
        same(u16::MAX);
        same(u32::MAX);
        same(u128::MAX);
        same(usize::MAX);
        same(isize::MIN);
    }

    /// A key `"42"` and a key `42u64` are one key (the encoders' key equivalence): the
    /// direct path keeps it.
    #[test]
    fn a_string_of_digits_and_the_integer_are_one_key() {
        assert_eq!(direct("42"), direct(&42u64));
        assert_eq!(direct(&String::from("-7")), direct(&-7i8));
        assert_eq!(direct("42").as_deref(), Some("42"));
    }

    #[test]
    fn strings_without_reserved_characters_are_direct_others_declined() {
        for s in [
            "",
            "alice",
            "é",
            "key-000000000042",
            "a b",
            &"x".repeat(1000),
        ] {
            assert_eq!(direct(s), Some(encode_key(s).unwrap()), "{s}");
            assert_eq!(direct(&String::from(s)), Some(encode_key(s).unwrap()));
            assert_eq!(direct(&Name(s.into())), Some(encode_key(s).unwrap()));
        }
        for s in [
            "key:000000000042",
            "a\\b",
            "~",
            "(x)",
            "a#b",
            "[",
            "]",
            "{",
            "}",
            "=",
            ",",
        ] {
            assert_eq!(direct(s), None, "{s}");
        }
        assert_eq!(direct(&true).as_deref(), Some("true"));
        assert_eq!(direct(&false), Some(encode_key(&false).unwrap()));
    }

    #[test]
    fn other_forms_are_declined_before_their_user_runs() {
        assert_eq!(direct(&(1u8, 2u8)), None);
        assert_eq!(direct(&Some(1u8)), None);
        assert_eq!(direct(&None::<u8>), None);
        assert_eq!(direct(&()), None);
        assert_eq!(direct(&'a'), None);
        assert_eq!(direct(&1.5f64), None);
        assert_eq!(direct(&vec![1u8]), None);
    }

    /// A hand-written `Serialize` that reports an error after a successful write: the user
    /// ran, and the key is reported as failed (never handed back to run again).
    #[test]
    fn an_error_after_the_user_ran_is_a_failure() {
        struct Liar;
        impl Serialize for Liar {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u8(1)
                    .and_then(|_| Err(ser::Error::custom("after all, no")))
            }
        }
        let runs = Cell::new(0);
        let out = with_direct(&Liar, Closure(|_: &[u8]| runs.set(runs.get() + 1)));
        assert!(matches!(out, Direct::Failed));
        assert_eq!(runs.get(), 1);
        assert!(encode_key(&Liar).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_integer_or_string(
            a: u64,
            b: i64,
            c: u8,
            d: i128,
            e: u128,
            f: i16,
            g: u32,
            h: i32,
            s in "[\\\\:,\\[\\]{}()=~#a-zé0-9 ]{0,40}",
        ) {
            agrees(&a)?;
            agrees(&b)?;
            agrees(&c)?;
            agrees(&d)?;
            agrees(&e)?;
            agrees(&f)?;
            agrees(&g)?;
            agrees(&h)?;
            prop_assert!(direct(&a).is_some() && direct(&d).is_some() && direct(&h).is_some());
            agrees(s.as_str())?;
            agrees(&Name(s.clone()))?;
            prop_assert_eq!(direct(s.as_str()).is_some(), !s.bytes().any(is_reserved));
        }
    }
}
