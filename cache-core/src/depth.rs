//! A nesting bound for any serde `Deserializer`: every `deserialize_*` call a value makes
//! inside another counts one level, and past the bound decoding fails instead of
//! recursing further.
//!
//! rmp-serde counts only MessagePack arrays and maps. Enums (`{"Not": {"Not": ...}}`),
//! options and newtypes nest without being counted, and options and newtypes consume no
//! byte at all: `struct Node(Option<Box<Node>>)` read from the one byte `0x01` recursed
//! until the stack overflowed, aborting the process. A crafted stored value must be a
//! miss, so the codecs decode through [`deserialize`], which counts every shape: bincode,
//! JSON and applications' codecs. MessagePack, the default, has a reader of its own
//! (`codec/msgpack.rs`) that counts the levels the same way as it reads, without this
//! wrapper's forwarding (its tests hold the two to the same bound).
//!
//! The wrapper forwards every call to the inner deserializer and wraps whatever it hands
//! back that can recurse (visitors, seeds, sequence, map and enum accesses), so no path
//! down the value escapes the count.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// Deserializes a `T` from `de`, failing when the value nests more than `max_depth`
/// levels (each struct, enum, sequence, map, option, newtype or scalar inside another is
/// one level).
pub(crate) fn deserialize<'de, T, D>(de: D, max_depth: usize) -> Result<T, D::Error>
where
    T: de::Deserialize<'de>,
    D: Deserializer<'de>,
{
    let budget = Budget {
        left: Cell::new(max_depth),
        max: max_depth,
    };
    T::deserialize(Guard {
        inner: de,
        budget: &budget,
    })
}

/// Levels still allowed.
struct Budget {
    left: Cell<usize>,
    max: usize,
}

impl Budget {
    /// Enters one level, or fails when none is left; the level is left when the returned
    /// guard drops (on success and on error alike).
    fn enter<E: de::Error>(&self) -> Result<Level<'_>, E> {
        match self.left.get() {
            0 => Err(E::custom(format_args!(
                "the value nests more than {} levels",
                self.max
            ))),
            n => {
                self.left.set(n - 1);
                Ok(Level(&self.left))
            }
        }
    }
}

struct Level<'a>(&'a Cell<usize>);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

struct Guard<'b, D> {
    inner: D,
    budget: &'b Budget,
}

struct GuardVisitor<'b, V> {
    inner: V,
    budget: &'b Budget,
}

struct GuardSeed<'b, S> {
    inner: S,
    budget: &'b Budget,
}

struct GuardAccess<'b, A> {
    inner: A,
    budget: &'b Budget,
}

impl<'b, V> GuardVisitor<'b, V> {
    fn new(inner: V, budget: &'b Budget) -> Self {
        Self { inner, budget }
    }
}

/// `deserialize_x(self, visitor)` and `deserialize_x(self, args.., visitor)`: enter a
/// level, then forward with the visitor wrapped.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let _level = self.budget.enter()?;
            self.inner.$method($($arg,)* GuardVisitor::new(visitor, self.budget))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// `visit_x(self, v)`: forwarded as is (scalars hand nothing back that could recurse).
macro_rules! visit_scalar {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for GuardVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit_scalar! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Guard {
            inner,
            budget: self.budget,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Guard {
            inner,
            budget: self.budget,
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(GuardAccess {
            inner: seq,
            budget: self.budget,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(GuardAccess {
            inner: map,
            budget: self.budget,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(GuardAccess {
            inner: data,
            budget: self.budget,
        })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for GuardSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Guard {
            inner,
            budget: self.budget,
        })
    }
}

impl<'b, A> GuardAccess<'b, A> {
    fn seed<S>(&self, inner: S) -> GuardSeed<'b, S> {
        GuardSeed {
            inner,
            budget: self.budget,
        }
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for GuardAccess<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for GuardAccess<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'b, 'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for GuardAccess<'b, A> {
    type Error = A::Error;
    type Variant = GuardAccess<'b, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let budget = self.budget;
        let seed = self.seed(seed);
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            GuardAccess {
                inner: variant,
                budget,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for GuardAccess<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let _level = self.budget.enter()?;
        self.inner
            .tuple_variant(len, GuardVisitor::new(visitor, self.budget))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let _level = self.budget.enter()?;
        self.inner
            .struct_variant(fields, GuardVisitor::new(visitor, self.budget))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    fn json_like(
        text: &'static str,
    ) -> serde::de::value::StrDeserializer<'static, serde::de::value::Error> {
        serde::de::IntoDeserializer::into_deserializer(text)
    }

    #[test]
    fn a_scalar_counts_one_level() {
        let ok: Result<String, _> = super::deserialize(json_like("x"), 1);
        assert_eq!(ok.as_deref(), Ok("x"));
        let refused: Result<String, _> = super::deserialize(json_like("x"), 0);
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("nests more than 0 levels"), "{err}");
    }

    /// A value that nests through options and newtypes only, which MessagePack reads
    /// without a byte: from the one byte `0x01` it would recurse until the stack overflowed.
    #[derive(Deserialize, Debug)]
    struct Node(#[allow(dead_code)] Option<Box<Node>>);

    /// Why the bound cannot be checked once per payload: nesting through options and
    /// newtypes reads no byte, so no look at the bytes sees it; only the type's own reading,
    /// wrapped here, does. Deep arrays, a byte each, are bounded the same way.
    #[test]
    fn nesting_that_reads_no_byte_fails_at_the_bound() {
        for max in [1, 64, 512] {
            let mut de = rmp_serde::Deserializer::from_read_ref(&[0x01u8][..]);
            let err = super::deserialize::<Node, _>(&mut de, max).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("nests more than {max} levels")),
                "{err}"
            );
        }
        let mut deep = vec![0x91u8; 600];
        deep.push(0xc0);
        let mut de = rmp_serde::Deserializer::from_read_ref(&deep[..]);
        de.set_max_depth(1024);
        let err = super::deserialize::<serde::de::IgnoredAny, _>(&mut de, 512).unwrap_err();
        assert!(err.to_string().contains("nests more than 512"), "{err}");
    }

    #[test]
    fn levels_are_given_back_when_a_value_ends() {
        // Five strings side by side nest two levels each (the sequence, the string), never
        // ten: siblings reuse the levels their predecessors gave back.
        #[derive(Deserialize, Debug, PartialEq)]
        struct Five(String, String, String, String, String);
        let de = serde::de::value::SeqDeserializer::<_, serde::de::value::Error>::new(
            ["a", "b", "c", "d", "e"].into_iter(),
        );
        let five: Five = super::deserialize(de, 2).unwrap();
        assert_eq!(five.4, "e");
    }
}
