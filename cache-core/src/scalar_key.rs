//! The key encoding's fast path: a key made of integers, strings, chars, bools, floats,
//! units, newtypes and tuples of these (almost every `#[cacheable]` key) is encoded into a
//! buffer on the stack ([`KeyBuf`]), by a serializer that knows only those forms and
//! writes exactly what [`crate::key`]'s encoder writes for them. Anything else (a sequence,
//! a map, a struct, an `Option` holding a `~`, a key longer than the buffer) stops it at its
//! first step, and the caller encodes the key with the full encoder instead.
//!
//! The choice costs nothing at run time: `u64::serialize(s)` *is* `s.serialize_u64(..)`, so
//! the monomorphised encoding of a `u64` key holds that arm alone.

use std::fmt::{self, Write as _};

use serde::ser::{self, Impossible, Serialize};

use crate::key::{integers_by_int, is_reserved};

/// How many bytes of key the stack buffer holds.
const CAPACITY: usize = 64;

/// A key encoded on the stack (see the [module docs](self)).
pub(crate) struct KeyBuf {
    len: usize,
    bytes: [u8; CAPACITY],
}

/// Why the fast path stopped: the key is not of its forms, or longer than its buffer.
#[derive(Debug)]
pub(crate) struct NotScalar;

impl fmt::Display for NotScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a scalar key")
    }
}

impl std::error::Error for NotScalar {}

impl ser::Error for NotScalar {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotScalar
    }
}

/// The methods of a key serializer for the forms it declines at their first step (bytes,
/// sequences, maps, structs, variants with data, `collect_str`): each returns `Err($err)`.
/// Shared by the stack encoder and the direct path ([`crate::direct_key`]).
macro_rules! decline_compound_forms {
    ($err:expr) => {
        fn serialize_bytes(self, _: &[u8]) -> Result<Self::Ok, Self::Error> {
            Err($err)
        }
        fn serialize_newtype_variant<T: ::serde::Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, Self::Error> {
            Err($err)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
            Err($err)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Self::Error> {
            Err($err)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
            Err($err)
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, Self::Error> {
            Err($err)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Self::Error> {
            Err($err)
        }
        fn collect_str<T: ::core::fmt::Display + ?Sized>(
            self,
            _: &T,
        ) -> Result<Self::Ok, Self::Error> {
            Err($err)
        }
    };
}
pub(crate) use decline_compound_forms;

impl KeyBuf {
    /// `key` encoded, when it is of the fast path's forms and fits.
    #[inline]
    pub(crate) fn encode<K: Serialize + ?Sized>(key: &K) -> Option<KeyBuf> {
        let mut buf = KeyBuf {
            len: 0,
            bytes: [0; CAPACITY],
        };
        key.serialize(Scalar {
            out: &mut buf,
            elem: false,
        })
        .ok()?;
        Some(buf)
    }

    /// The encoded key.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[inline]
    fn push(&mut self, s: &[u8]) -> Result<(), NotScalar> {
        let end = self.len + s.len();
        let to = self.bytes.get_mut(self.len..end).ok_or(NotScalar)?;
        to.copy_from_slice(s);
        self.len = end;
        Ok(())
    }

    #[inline]
    fn push_byte(&mut self, b: u8) -> Result<(), NotScalar> {
        *self.bytes.get_mut(self.len).ok_or(NotScalar)? = b;
        self.len += 1;
        Ok(())
    }

    /// `s` with a `\` before each reserved character, as [`crate::key`] writes a string.
    #[inline]
    fn push_escaped(&mut self, s: &str) -> Result<(), NotScalar> {
        let bytes = s.as_bytes();
        if !bytes.iter().any(|&b| is_reserved(b)) {
            return self.push(bytes);
        }
        for &b in bytes {
            if is_reserved(b) {
                self.push_byte(b'\\')?;
            }
            self.push_byte(b)?;
        }
        Ok(())
    }
}

impl fmt::Write for KeyBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// The fast path's serializer: one value into `out`.
struct Scalar<'a> {
    out: &'a mut KeyBuf,
    /// This value is an element of a `:`-joined list, so a tuple must be parenthesized.
    elem: bool,
}

impl Scalar<'_> {
    #[inline]
    fn int(self, v: impl itoa::Integer) -> Result<(), NotScalar> {
        self.out.push(itoa::Buffer::new().format(v).as_bytes())
    }

    fn float(self, v: impl fmt::Display) -> Result<(), NotScalar> {
        write!(self.out, "{v}").map_err(|_| NotScalar)
    }
}

impl<'a> ser::Serializer for Scalar<'a> {
    type Ok = ();
    type Error = NotScalar;
    type SerializeSeq = Impossible<(), NotScalar>;
    type SerializeTuple = ScalarTuple<'a>;
    type SerializeTupleStruct = ScalarTuple<'a>;
    type SerializeTupleVariant = Impossible<(), NotScalar>;
    type SerializeMap = Impossible<(), NotScalar>;
    type SerializeStruct = Impossible<(), NotScalar>;
    type SerializeStructVariant = Impossible<(), NotScalar>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), NotScalar> {
        self.out.push(if v { b"true" } else { b"false" })
    }
    integers_by_int!(#[inline]);
    fn serialize_f32(self, v: f32) -> Result<(), NotScalar> {
        self.float(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), NotScalar> {
        self.float(v)
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<(), NotScalar> {
        self.out.push_escaped(v.encode_utf8(&mut [0; 4]))
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), NotScalar> {
        self.out.push_escaped(v)
    }
    fn serialize_none(self) -> Result<(), NotScalar> {
        self.out.push_byte(b'~')
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), NotScalar> {
        let start = self.out.len;
        value.serialize(Scalar {
            out: &mut *self.out,
            elem: self.elem,
        })?;
        // The full encoder writes one more `~` before a value starting with one.
        match self.out.bytes.get(start) {
            Some(b'~') if start < self.out.len => Err(NotScalar),
            _ => Ok(()),
        }
    }
    fn serialize_unit(self) -> Result<(), NotScalar> {
        self.out.push(b"()")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotScalar> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), NotScalar> {
        self.out.push_escaped(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotScalar> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_tuple(self, _: usize) -> Result<ScalarTuple<'a>, NotScalar> {
        ScalarTuple::open(self)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<ScalarTuple<'a>, NotScalar> {
        ScalarTuple::open(self)
    }
    decline_compound_forms!(NotScalar);
}

/// A tuple in progress: `a:b`, or `(a:b)` when it is itself an element.
struct ScalarTuple<'a> {
    out: &'a mut KeyBuf,
    first: bool,
    close: bool,
}

impl<'a> ScalarTuple<'a> {
    #[inline]
    fn open(s: Scalar<'a>) -> Result<Self, NotScalar> {
        if s.elem {
            s.out.push_byte(b'(')?;
        }
        Ok(ScalarTuple {
            out: s.out,
            first: true,
            close: s.elem,
        })
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotScalar> {
        if !self.first {
            self.out.push_byte(b':')?;
        }
        self.first = false;
        value.serialize(Scalar {
            out: &mut *self.out,
            elem: true,
        })
    }

    #[inline]
    fn finish(self) -> Result<(), NotScalar> {
        if self.close {
            self.out.push_byte(b')')?;
        }
        Ok(())
    }
}

impl ser::SerializeTuple for ScalarTuple<'_> {
    type Ok = ();
    type Error = NotScalar;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotScalar> {
        self.element(value)
    }
    #[inline]
    fn end(self) -> Result<(), NotScalar> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for ScalarTuple<'_> {
    type Ok = ();
    type Error = NotScalar;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), NotScalar> {
        self.element(value)
    }
    fn end(self) -> Result<(), NotScalar> {
        self.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::key::encode_key;

    /// The fast path's bytes, or `None` when it leaves the key to the full encoder.
    fn fast<K: Serialize + ?Sized>(key: &K) -> Option<String> {
        KeyBuf::encode(key).map(|buf| String::from_utf8(buf.as_bytes().to_vec()).unwrap())
    }

    /// Whatever the fast path writes is the full encoder's text.
    fn agrees<K: Serialize + ?Sized>(key: &K) -> Result<(), TestCaseError> {
        if let Some(fast) = fast(key) {
            prop_assert_eq!(fast, encode_key(key).unwrap());
        }
        Ok(())
    }

    #[derive(serde::Serialize)]
    struct UserId(u64);
    #[derive(serde::Serialize)]
    struct Pair(u8, String);
    #[derive(serde::Serialize)]
    enum Color {
        Red,
        #[serde(rename = "a:b")]
        Odd,
    }
    #[derive(serde::Serialize)]
    struct Named {
        id: u64,
    }

    /// `0`, `u64::MAX` and both sides of each power of ten: every length of text, each
    /// carry (the direct path's tests use them too).
    pub(crate) fn integers_of_every_length() -> Vec<u64> {
        let mut values = vec![0, u64::MAX];
        for power in 0..20 {
            let p = 10u64.pow(power);
            values.extend([p - 1, p, p + 1]);
        }
        values
    }

    /// Integers of every length: both sides of each power of ten, the bounds of each type,
    /// negatives.
    #[test]
    fn integers_of_every_length_take_the_fast_path_with_the_full_encoders_text() {
        fn same<K: Serialize>(key: K) {
            assert_eq!(fast(&key), Some(encode_key(&key).unwrap()));
        }
        for v in integers_of_every_length() {
            same(v);
            same(v as i64);
            same((v as i64).wrapping_neg());
            same(v as u32);
            same(v as i32);
            same(v as u16);
            same(v as i16);
            same(v as u8);
            same(v as i8);
            same((v, v as i64));
        }
        same(i64::MIN);
        same(i32::MIN);
        same(i16::MIN);
        same(i8::MIN);
        same(i128::MIN);
    }

    #[test]
    fn the_usual_keys_take_the_fast_path_with_the_full_encoders_text() {
        let cases: Vec<(Option<String>, String)> = vec![
            (fast(&42u64), encode_key(&42u64).unwrap()),
            (fast(&-7i32), encode_key(&-7i32).unwrap()),
            (fast(&u128::MAX), encode_key(&u128::MAX).unwrap()),
            (
                fast("key:000000000042"),
                encode_key("key:000000000042").unwrap(),
            ),
            (fast(&'#'), encode_key(&'#').unwrap()),
            (
                fast(&(42u64, "alice")),
                encode_key(&(42u64, "alice")).unwrap(),
            ),
            (
                fast(&((1u8, 2u8), "x")),
                encode_key(&((1u8, 2u8), "x")).unwrap(),
            ),
            (fast(&UserId(9)), encode_key(&UserId(9)).unwrap()),
            (
                fast(&Pair(1, "a:b".into())),
                encode_key(&Pair(1, "a:b".into())).unwrap(),
            ),
            (fast(&Color::Red), encode_key(&Color::Red).unwrap()),
            (fast(&Color::Odd), encode_key(&Color::Odd).unwrap()),
            (fast(&()), encode_key(&()).unwrap()),
            (fast(&true), encode_key(&true).unwrap()),
            (fast(&1.5f64), encode_key(&1.5f64).unwrap()),
            (fast(&Some(3u8)), encode_key(&Some(3u8)).unwrap()),
            (fast(&None::<u8>), encode_key(&None::<u8>).unwrap()),
        ];
        for (fast, full) in cases {
            assert_eq!(fast.as_ref(), Some(&full));
        }
    }

    /// A unit struct is written as `()`, and a tuple struct inside a tuple is closed, as
    /// the full encoder writes them (a key the stack wrote otherwise would be an L1 entry
    /// that no removal by its stored key reaches).
    #[test]
    fn unit_structs_and_nested_tuple_structs_take_the_fast_path_with_the_full_encoders_text() {
        #[derive(serde::Serialize)]
        struct Unit;
        let nested = (Pair(1, "a".into()), 2u8);
        for (fast, full) in [
            (fast(&Unit), encode_key(&Unit).unwrap()),
            (fast(&(Unit, 1u8)), encode_key(&(Unit, 1u8)).unwrap()),
            (fast(&nested), encode_key(&nested).unwrap()),
        ] {
            assert_eq!(fast.as_ref(), Some(&full));
        }
    }

    /// Floats at their edges: both encoders write `Display`'s text (`-0`, `NaN`, `inf`,
    /// `f32`'s own shortest digits), and the stack takes each one whose text fits.
    #[test]
    fn floats_at_their_edges_take_the_fast_path_with_the_full_encoders_text() {
        fn same<K: Serialize + ?Sized>(key: &K) {
            let full = encode_key(key).unwrap();
            assert_eq!(fast(key).as_ref(), Some(&full), "{full}");
        }
        for x in [
            -0.0,
            0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e15,
            1e-7,
            -1.5,
        ] {
            same(&x);
            same(&(x, 1u8));
        }
        for x in [
            0.1f32,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
        ] {
            same(&x);
        }
        assert_eq!(fast(&-0.0f64).as_deref(), Some("-0"));
        assert_eq!(fast(&0.1f32).as_deref(), Some("0.1"));
        same(&(i128::MIN, 1u8));
        same(&(1u8, u128::MAX));
        // Both at once are 80 bytes: past the stack buffer.
        assert_eq!(fast(&(i128::MIN, u128::MAX)), None);
        // Subnormals and other values whose text is longer than the buffer (`Display` writes
        // no exponent): left to the full encoder, which writes them whole.
        for x in [f64::MIN_POSITIVE, 5e-324, f64::MAX, 1e-70] {
            assert_eq!(fast(&x), None, "{x}");
            assert_eq!(encode_key(&x).unwrap(), x.to_string());
        }
    }

    #[test]
    fn other_forms_and_long_keys_are_left_to_the_full_encoder() {
        assert_eq!(fast(&vec![1u8]), None);
        assert_eq!(fast(&BTreeMap::from([(1u8, 2u8)])), None);
        assert_eq!(fast(&Named { id: 1 }), None);
        assert_eq!(fast(&Some(None::<u8>)), None, "`~~` is the full encoder's");
        assert_eq!(fast(&"x".repeat(CAPACITY + 1)), None);
        assert_eq!(fast(&"x".repeat(CAPACITY)).map(|s| s.len()), Some(CAPACITY));
        // An escaped string one byte past the buffer.
        assert_eq!(fast(&":".repeat(CAPACITY / 2 + 1)), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn integers_at_any_value(a: u64, b: i64, c: u8, d: i128, e: u128, f: i16) {
            agrees(&a)?;
            agrees(&b)?;
            agrees(&c)?;
            agrees(&d)?;
            agrees(&e)?;
            agrees(&(f, a))?;
            prop_assert!(fast(&a).is_some() && fast(&d).is_some());
        }

        #[test]
        fn strings_and_tuples_of_them(
            s in "[\\\\:,\\[\\]{}()=~#a-zé0-9]{0,40}",
            t in "[\\\\:,\\[\\]{}()=~#a-z0-9]{0,8}",
            n: i32,
            flag: bool,
            c: char,
            x in prop_oneof![
                -1e12..1e12f64,
                Just(-0.0),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
            ],
            y in -1e6..1e6f32,
        ) {
            agrees(s.as_str())?;
            agrees(&(s.as_str(), n, flag))?;
            agrees(&(n, s.as_str()))?;
            agrees(&((n, t.as_str()), s.as_str()))?;
            agrees(&(c, Some(t.as_str()), None::<u8>))?;
            agrees(&Some(s.as_str()))?;
            agrees(&(x, UserId(n.unsigned_abs().into())))?;
            agrees(&(y, x))?;
            // Floats in this range always fit the stack: the check above compared something.
            prop_assert!(fast(&(x, UserId(n.unsigned_abs().into()))).is_some());
            prop_assert!(fast(&(y, x)).is_some());
            agrees(&Pair(1, s.clone()))?;
            // Fallbacks: nothing written is ever the fast path's.
            agrees(&vec![s.as_str()])?;
            agrees(&Some(Some(s.as_str())))?;
            if s.len() <= CAPACITY && !s.bytes().any(is_reserved) {
                prop_assert!(fast(s.as_str()).is_some());
            }
        }
    }
}
