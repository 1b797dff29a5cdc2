//! The default codec's reader ([`super::MSGPACK`]): a serde `Deserializer` over the payload
//! slice that reads MessagePack exactly as `rmp_serde::Deserializer` reads it, with the
//! codec's two nesting bounds built in.
//!
//! "Exactly" is the contract, held by the differential tests (`msgpack/tests.rs`, against
//! rmp-serde behind [`crate::depth`]'s guard, which is how this codec read before): each
//! marker is handed to the same `visit_*` method, `deserialize_option` and
//! `deserialize_enum` keep the marker they looked at for the value inside, arrays, maps and
//! extensions count against [`super::MAX_DEPTH`] as rmp-serde counts them, and every
//! `deserialize_*` call (and every tuple or struct variant) counts one level against
//! [`super::MAX_NESTING`] as the guard counts it — nesting through options and newtypes
//! reads no byte, so only this count bounds it.
//!
//! What it does without: the guard's forwarding wrapper around every call (visitor, seed,
//! access: ~280 instructions a read of the Redis bench's four-field record, and the reason
//! the derive's visitors stopped being inlined), rmp-serde's generic reader and error type,
//! and the UTF-8 check of a struct's field names: a field name is compared with the names
//! the struct asked for (`deserialize_struct`'s `fields`), and when it is one of them that
//! `&'static str` is what the visitor gets. A name it does not know (an alias, an unknown
//! field, a map read through `flatten`) is checked and handed on as rmp-serde does.
//! BENCHMARKS.md, "64 tasks, phase L".
//!
//! Lengths are checked against what is left before anything is read for them, and size
//! hints never claim more elements than bytes are left, so a length prefix of 2^32 costs
//! nothing. No input panics: every read is bounds-checked and every count is checked.

use std::fmt;

use serde::de::{self, DeserializeSeed, Unexpected, Visitor};

use super::CodecError;

/// The newtype name rmp-serde reads a MessagePack extension through.
const EXT_STRUCT_NAME: &str = "_ExtStruct";

/// Decodes `payload` as a `V`: at most `max_depth - 1` arrays, maps and extensions inside
/// each other (rmp-serde's `set_max_depth` semantics), at most `max_nesting` levels of any
/// shape, and nothing left over.
#[inline]
pub(super) fn decode<'de, V: de::Deserialize<'de>>(
    payload: &'de [u8],
    max_depth: usize,
    max_nesting: usize,
) -> Result<V, CodecError> {
    let mut reader = Reader {
        rest: payload,
        marker: None,
        depth: max_depth.min(usize::from(u16::MAX)),
        levels: max_nesting,
        max_levels: max_nesting,
        fields: &[],
    };
    let value = V::deserialize(&mut reader).map_err(|e| CodecError::Payload(e.to_string()))?;
    // A marker the value looked at and left (`marker`) was read: rmp-serde counts it read.
    match reader.rest.len() {
        0 => Ok(value),
        left => Err(CodecError::TrailingBytes(left)),
    }
}

/// Why a payload does not decode.
#[derive(Debug)]
pub(crate) enum Error {
    /// The payload ended inside a value.
    End,
    /// A marker the value cannot be read from.
    Marker(u8),
    /// An array or map that the value read fewer elements of than it has (the count it
    /// read), a 128-bit integer whose bytes are not 16 (16), or an enum written as a map
    /// of other than one entry (its entries): rmp-serde's `LengthMismatch`.
    Length(u32),
    /// Arrays, maps and extensions nested deeper than `MAX_DEPTH`.
    Depth,
    /// Values nested deeper than `MAX_NESTING` (the bound).
    Nesting(usize),
    /// A string that is not UTF-8, read by a value that takes no bytes either.
    Utf8(std::str::Utf8Error),
    /// What the value's own `Deserialize` said.
    Custom(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::End => f.write_str("the payload ends inside a value"),
            Error::Marker(m) => write!(f, "wrong msgpack marker {m:#04x}"),
            Error::Length(n) => write!(f, "array had incorrect length, expected {n}"),
            Error::Depth => f.write_str("depth limit exceeded"),
            Error::Nesting(max) => write!(f, "the value nests more than {max} levels"),
            Error::Utf8(e) => write!(f, "string found to be invalid utf8: {e}"),
            Error::Custom(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}

/// The payload being read, and what bounds it.
struct Reader<'de> {
    /// What is not read yet.
    rest: &'de [u8],
    /// A marker read and kept for the value inside (an option's, an enum's).
    marker: Option<u8>,
    /// rmp-serde's depth counter: arrays, maps and extensions may nest while it stays above 0.
    depth: usize,
    /// Levels of any shape still allowed.
    levels: usize,
    /// The bound `levels` started at (for the error).
    max_levels: usize,
    /// The field names of the struct being read: a name read as an identifier that is one
    /// of these is handed on as it (no UTF-8 check). Only a shortcut: any list is correct.
    fields: &'static [&'static str],
}

/// One level of nesting around `$body`, given back when it returns (on error too).
macro_rules! level {
    ($reader:expr, $body:expr) => {{
        $reader.enter()?;
        let result = $body;
        $reader.levels += 1;
        result
    }};
}

impl<'de> Reader<'de> {
    #[inline]
    fn enter(&mut self) -> Result<(), Error> {
        match self.levels {
            0 => Err(Error::Nesting(self.max_levels)),
            n => {
                self.levels = n - 1;
                Ok(())
            }
        }
    }

    /// The level of a read that cannot nest (a scalar): only whether one is left, as
    /// nothing inside it could enter another.
    #[inline]
    fn check(&self) -> Result<(), Error> {
        match self.levels {
            0 => Err(Error::Nesting(self.max_levels)),
            _ => Ok(()),
        }
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Error> {
        let (&b, rest) = self.rest.split_first().ok_or(Error::End)?;
        self.rest = rest;
        Ok(b)
    }

    /// The next `len` bytes, borrowed; an error, reading nothing, if fewer are left.
    #[inline]
    fn take(&mut self, len: usize) -> Result<&'de [u8], Error> {
        if len > self.rest.len() {
            return Err(Error::End);
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    /// The next `N` bytes (a number's); an error, reading nothing, if fewer are left.
    #[inline]
    fn chunk<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let (taken, rest) = self.rest.split_first_chunk::<N>().ok_or(Error::End)?;
        self.rest = rest;
        Ok(*taken)
    }

    fn u16(&mut self) -> Result<u16, Error> {
        self.chunk().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        self.chunk().map(u32::from_be_bytes)
    }

    /// The kept marker, or the next byte.
    #[inline]
    fn marker(&mut self) -> Result<u8, Error> {
        match self.marker.take() {
            Some(m) => Ok(m),
            None => self.byte(),
        }
    }

    /// One array, map or extension more inside the others (rmp-serde's `depth_count!`).
    /// Given back on an error too, where rmp-serde keeps it taken when the visitor of an
    /// array or map fails: only a value that swallows such an error and reads on could
    /// tell, and here it may then nest as deep as before.
    #[inline]
    fn deeper<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 {
            return Err(Error::Depth);
        }
        let result = read(self);
        self.depth += 1;
        result
    }

    /// `deserialize_any`: whatever the marker says (`bytes`: a binary as bytes, not as a
    /// sequence of `u8`).
    fn any<V: Visitor<'de>>(&mut self, visitor: V, bytes: bool) -> Result<V::Value, Error> {
        let m = self.marker()?;
        match m {
            0x80..=0x8f => self.map(u32::from(m & 0x0f), visitor),
            0x90..=0x9f => self.seq(u32::from(m & 0x0f), visitor),
            0xa0..=0xbf => self.str(usize::from(m & 0x1f), visitor),
            0xd9 => {
                let len = self.byte()?;
                self.str(usize::from(len), visitor)
            }
            0xda => {
                let len = self.u16()?;
                self.str(usize::from(len), visitor)
            }
            0xdb => {
                let len = self.u32()?;
                self.str(len as usize, visitor)
            }
            0xdc => {
                let len = self.u16()?;
                self.seq(u32::from(len), visitor)
            }
            0xdd => {
                let len = self.u32()?;
                self.seq(len, visitor)
            }
            0xde => {
                let len = self.u16()?;
                self.map(u32::from(len), visitor)
            }
            0xdf => {
                let len = self.u32()?;
                self.map(len, visitor)
            }
            0xc4..=0xc6 => {
                let len = match m {
                    0xc4 => u32::from(self.byte()?),
                    0xc5 => u32::from(self.u16()?),
                    _ => self.u32()?,
                };
                let data = self.take(len as usize)?;
                if bytes {
                    visitor.visit_borrowed_bytes(data)
                } else {
                    let levels = (&mut self.levels, self.max_levels);
                    visitor.visit_seq(BinSeq {
                        bytes: data.iter(),
                        levels,
                    })
                }
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                let len = self.ext_len(m)?;
                self.deeper(|de| visitor.visit_newtype_struct(Ext { de, len }))
            }
            0xc1 => Err(Error::Marker(m)),
            _ => self.number(m, visitor),
        }
    }

    /// rmp-serde's `any_num`: nil, booleans, integers and floats; any other marker is an
    /// error.
    fn number<V: Visitor<'de>>(&mut self, m: u8, visitor: V) -> Result<V::Value, Error> {
        match m {
            0x00..=0x7f => visitor.visit_u8(m),
            0xe0..=0xff => visitor.visit_i8(m as i8),
            0xc0 => visitor.visit_unit(),
            0xc2 => visitor.visit_bool(false),
            0xc3 => visitor.visit_bool(true),
            0xcc => visitor.visit_u8(self.byte()?),
            0xcd => visitor.visit_u16(self.u16()?),
            0xce => visitor.visit_u32(self.u32()?),
            0xcf => visitor.visit_u64(u64::from_be_bytes(self.chunk()?)),
            0xd0 => visitor.visit_i8(i8::from_be_bytes(self.chunk()?)),
            0xd1 => visitor.visit_i16(i16::from_be_bytes(self.chunk()?)),
            0xd2 => visitor.visit_i32(i32::from_be_bytes(self.chunk()?)),
            0xd3 => visitor.visit_i64(i64::from_be_bytes(self.chunk()?)),
            0xca => visitor.visit_f32(f32::from_be_bytes(self.chunk()?)),
            0xcb => visitor.visit_f64(f64::from_be_bytes(self.chunk()?)),
            _ => Err(Error::Marker(m)),
        }
    }

    /// A 128-bit integer: any integer marker, or 16 bytes big endian in a `bin 8` (what
    /// rmp-serde writes).
    fn i128(&mut self, m: u8) -> Result<i128, Error> {
        let sixteen = |de: &mut Self, len: u8| {
            if len != 16 {
                return Err(Error::Length(16));
            }
            de.chunk().map(i128::from_be_bytes)
        };
        Ok(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => i128::from(self.byte()?),
            0xcd => i128::from(self.u16()?),
            0xce => i128::from(self.u32()?),
            0xcf => i128::from(u64::from_be_bytes(self.chunk()?)),
            0xd0 => i128::from(i8::from_be_bytes(self.chunk()?)),
            0xd1 => i128::from(i16::from_be_bytes(self.chunk()?)),
            0xd2 => i128::from(i32::from_be_bytes(self.chunk()?)),
            0xd3 => i128::from(i64::from_be_bytes(self.chunk()?)),
            0xc4 => {
                let len = self.byte()?;
                sixteen(self, len)?
            }
            0x90..=0x9f => sixteen(self, m & 0x0f)?,
            _ => return Err(Error::Marker(m)),
        })
    }

    /// A string of `len` bytes: borrowed as `&str`, or, not being UTF-8, as bytes if the
    /// visitor takes them.
    fn str<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let data = self.take(len)?;
        text(data, visitor)
    }

    /// An array of `len` elements, one deeper; all of them must be read.
    fn seq<V: Visitor<'de>>(&mut self, len: u32, visitor: V) -> Result<V::Value, Error> {
        self.deeper(|de| {
            let mut seq = Seq { de, left: len };
            let value = visitor.visit_seq(&mut seq)?;
            match seq.left {
                0 => Ok(value),
                left => Err(Error::Length(len - left)),
            }
        })
    }

    /// A map of `len` entries, one deeper; all of them must be read.
    fn map<V: Visitor<'de>>(&mut self, len: u32, visitor: V) -> Result<V::Value, Error> {
        self.deeper(|de| {
            let mut map = Map { de, left: len };
            let value = visitor.visit_map(&mut map)?;
            match map.left {
                0 => Ok(value),
                left => Err(Error::Length(len - left)),
            }
        })
    }

    /// The length of an extension's data, read after its marker `m` (any other marker is
    /// an error).
    fn ext_len(&mut self, m: u8) -> Result<u32, Error> {
        Ok(match m {
            0xd4 => 1,
            0xd5 => 2,
            0xd6 => 4,
            0xd7 => 8,
            0xd8 => 16,
            0xc7 => u32::from(self.byte()?),
            0xc8 => u32::from(self.u16()?),
            0xc9 => self.u32()?,
            _ => return Err(Error::Marker(m)),
        })
    }

    /// `None` for nil, anything else the value inside.
    fn option<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        match self.marker()? {
            0xc0 => visitor.visit_none(),
            m => {
                // Kept for the value inside, as rmp-serde keeps it.
                self.marker = Some(m);
                visitor.visit_some(self)
            }
        }
    }

    /// A unit struct: `[]` or nil, anything else as `deserialize_any` reads it.
    fn unit_struct<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        // A unit struct is written as `[]`; nil reads as one too.
        match self.marker()? {
            0xc0 | 0x90 => visitor.visit_unit(),
            m => {
                self.marker = Some(m);
                self.any(visitor, true)
            }
        }
    }

    /// A newtype struct, read as the value inside (rmp-serde writes none around it); the
    /// one named `_ExtStruct` as an extension, which rmp-serde does not count against the
    /// depth on this path.
    fn newtype_struct<V: Visitor<'de>>(
        &mut self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == EXT_STRUCT_NAME {
            let m = self.marker()?;
            let len = self.ext_len(m)?;
            return visitor.visit_newtype_struct(Ext { de: self, len });
        }
        visitor.visit_newtype_struct(self)
    }

    /// A struct or struct variant, read as `deserialize_any` reads it (rmp-serde's
    /// `deserialize_struct`), with `fields` as the names its keys are compared with.
    fn struct_fields<V: Visitor<'de>>(
        &mut self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let outer = std::mem::replace(&mut self.fields, fields);
        let value = self.any(visitor, false);
        self.fields = outer;
        value
    }

    /// An identifier (a field or variant name, or index): a name the struct being read
    /// asked for is handed on as that name, anything else as `deserialize_any` would. The
    /// caller has checked that a level is left.
    fn identifier<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let m = self.marker()?;
        let len = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => usize::from(self.byte()?),
            0xda => usize::from(self.u16()?),
            0xdb => self.u32()? as usize,
            _ => {
                // Not a string: read as `deserialize_any` would, holding the level checked
                // by the caller.
                self.marker = Some(m);
                self.levels -= 1;
                let value = self.any(visitor, true);
                self.levels += 1;
                return value;
            }
        };
        let data = self.take(len)?;
        match self
            .fields
            .iter()
            .find(|name| same_bytes(name.as_bytes(), data))
        {
            Some(&name) => visitor.visit_borrowed_str(name),
            None => text(data, visitor),
        }
    }

    /// `deserialize_str` and `deserialize_string`: a short string (the usual case) read at
    /// once, anything else as `deserialize_any` reads it.
    #[inline]
    fn string<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        self.check()?;
        if self.marker.is_none() {
            if let Some((&m @ 0xa0..=0xbf, rest)) = self.rest.split_first() {
                self.rest = rest;
                return self.str(usize::from(m & 0x1f), visitor);
            }
        }
        self.levels -= 1;
        let value = self.any(visitor, true);
        self.levels += 1;
        value
    }

    /// An enum: a map of one entry (variant, content), or the variant alone (a unit
    /// variant). The marker is kept when it is not a map, for the variant to be read from.
    fn enumeration<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let m = match self.marker {
            Some(m) => m,
            None => {
                let m = self.byte()?;
                self.marker = Some(m);
                m
            }
        };
        let len = match m {
            0x80..=0x8f => Some(u32::from(m & 0x0f)),
            0xde => self.u16().ok().map(u32::from),
            0xdf => self.u32().ok(),
            _ => None,
        };
        match len {
            Some(1) => {
                self.marker = None;
                visitor.visit_enum(Variant { de: self })
            }
            Some(n) => Err(Error::Length(n)),
            None => visitor.visit_enum(UnitVariant { de: self }),
        }
    }
}

/// `a == b`, without a call to `memcmp` for up to 16 bytes (field names, mostly): two
/// overlapping word compares. `memcmp` calls were ~115 instructions a read of the bench's
/// four-field record.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    /// The first and the last `N` bytes of each (overlapping when shorter than `2 * N`).
    fn ends<const N: usize>(a: &[u8], b: &[u8]) -> bool {
        a.first_chunk::<N>() == b.first_chunk::<N>() && a.last_chunk::<N>() == b.last_chunk::<N>()
    }
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0 => true,
        1 => a.first() == b.first(),
        2..=3 => ends::<2>(a, b),
        4..=7 => ends::<4>(a, b),
        8..=16 => ends::<8>(a, b),
        _ => a == b,
    }
}

/// A string's bytes to `visitor`: as `&str`, or, not being UTF-8, as bytes if it takes them.
fn text<'de, V: Visitor<'de>>(data: &'de [u8], visitor: V) -> Result<V::Value, Error> {
    match std::str::from_utf8(data) {
        Ok(s) => visitor.visit_borrowed_str(s),
        Err(e) => visitor
            .visit_borrowed_bytes::<Error>(data)
            .map_err(|_| Error::Utf8(e)),
    }
}

/// `deserialize_x(self, visitor)`: one level around `Reader::$read(visitor, $args)`.
macro_rules! read {
    ($($method:ident($($arg:ident: $ty:ty),*) => $read:ident($($pass:expr),*);)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Error> {
            $(let _ = $arg;)*
            level!(self, self.$read(visitor $(, $pass)*))
        }
    )*};
}

/// `deserialize_x(self, visitor)` for numbers: rmp-serde's `any_num`, which cannot nest, so
/// its level is only checked.
macro_rules! read_number {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.check()?;
            let m = self.marker()?;
            self.number(m, visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    read! {
        deserialize_any() => any(true);
        deserialize_char() => any(true);
        deserialize_bytes() => any(true);
        deserialize_byte_buf() => any(true);
        deserialize_unit() => any(true);
        deserialize_map() => any(true);
        deserialize_ignored_any() => any(true);
        deserialize_seq() => any(false);
        deserialize_tuple(_len: usize) => any(false);
        deserialize_tuple_struct(_name: &'static str, _len: usize) => any(false);
        deserialize_option() => option();
        deserialize_unit_struct(_name: &'static str) => unit_struct();
        deserialize_enum(_name: &'static str, _variants: &'static [&'static str]) => enumeration();
    }

    read_number! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.check()?;
        self.identifier(visitor)
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        level!(self, self.struct_fields(fields, visitor))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        level!(self, self.newtype_struct(name, visitor))
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.check()?;
        let m = self.marker()?;
        visitor.visit_i128(self.i128(m)?)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // rmp-serde reads a u128 as an i128 and casts: -1 reads as u128::MAX.
        self.check()?;
        let m = self.marker()?;
        visitor.visit_u128(self.i128(m)? as u128)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of an array.
struct Seq<'a, 'de> {
    de: &'a mut Reader<'de>,
    left: u32,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        // Each element takes a byte at least: never more than are left.
        Some((self.left as usize).min(self.de.rest.len()))
    }
}

/// The entries of a map.
struct Map<'a, 'de> {
    de: &'a mut Reader<'de>,
    left: u32,
}

impl<'de> de::MapAccess<'de> for Map<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        // Each entry takes two bytes at least.
        Some((self.left as usize).min(self.de.rest.len() / 2))
    }
}

/// `EnumAccess` for both forms an enum is read in ([`Variant`], [`UnitVariant`]): the
/// variant read at the reader, the form kept to read what follows it. (One generic impl
/// over both is refused: `EnumAccess` is serde's and the forms would be a type parameter.)
macro_rules! enum_access {
    ($($form:ident)*) => {$(
        impl<'de> de::EnumAccess<'de> for $form<'_, 'de> {
            type Error = Error;
            type Variant = Self;

            fn variant_seed<T: DeserializeSeed<'de>>(
                self,
                seed: T,
            ) -> Result<(T::Value, Self), Error> {
                let variant = seed.deserialize(&mut *self.de)?;
                Ok((variant, self))
            }
        }
    )*};
}

enum_access!(Variant UnitVariant);

/// An enum written as a map of one entry: the variant, then its content.
struct Variant<'a, 'de> {
    de: &'a mut Reader<'de>,
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        // rmp-serde reads a fresh marker here, whatever was kept.
        match self.de.byte()? {
            0xc0 => Ok(()),
            m => Err(Error::Marker(m)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        level!(self.de, self.de.any(visitor, false))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        level!(self.de, self.de.struct_fields(fields, visitor))
    }
}

/// An enum written as its variant alone (the kept marker is the variant's): a unit variant.
struct UnitVariant<'a, 'de> {
    de: &'a mut Reader<'de>,
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"struct variant",
        ))
    }
}

/// A binary read as a sequence of `u8` (by `deserialize_seq` and the like), each element
/// one level, as the guard counted them.
struct BinSeq<'a, 'de> {
    bytes: std::slice::Iter<'de, u8>,
    /// The reader's levels left, and its bound.
    levels: (&'a mut usize, usize),
}

impl<'de> de::SeqAccess<'de> for BinSeq<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.bytes.next() {
            Some(&byte) => {
                let (left, max) = (&mut *self.levels.0, self.levels.1);
                seed.deserialize(Byte { byte, left, max }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

/// One byte of a binary read as a sequence: `visit_u8` whatever is asked.
struct Byte<'a> {
    byte: u8,
    left: &'a mut usize,
    max: usize,
}

impl<'de> de::Deserializer<'de> for Byte<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match *self.left {
            0 => Err(Error::Nesting(self.max)),
            n => {
                *self.left = n - 1;
                let value = visitor.visit_u8(self.byte);
                *self.left = n;
                value
            }
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// A MessagePack extension, read as rmp-serde reads it: a sequence of its type (`i8`) and
/// its data (bytes), each read only when asked for.
struct Ext<'a, 'de> {
    de: &'a mut Reader<'de>,
    len: u32,
}

impl<'de> de::Deserializer<'de> for Ext<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let Ext { de, len } = self;
        level!(
            de,
            visitor.visit_seq(ExtParts {
                de: &mut *de,
                len,
                read: 0
            })
        )
    }

    // No i128 and u128: rmp-serde's extension reader leaves them to serde's default, an
    // error.
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// The two parts of an extension: `read` of them are read.
struct ExtParts<'a, 'de> {
    de: &'a mut Reader<'de>,
    len: u32,
    read: u8,
}

impl<'de> de::SeqAccess<'de> for ExtParts<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.read {
            0 | 1 => seed.deserialize(&mut *self).map(Some),
            _ => Ok(None),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut ExtParts<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        level!(self.de, {
            match self.read {
                0 => self.de.byte().and_then(|tag| {
                    self.read = 1;
                    visitor.visit_i8(tag as i8)
                }),
                1 => self.de.take(self.len as usize).and_then(|data| {
                    self.read = 2;
                    visitor.visit_borrowed_bytes(data)
                }),
                _ => Err(Error::Marker(0xc1)),
            }
        })
    }

    // No i128 and u128: rmp-serde's extension reader leaves them to serde's default, an
    // error.
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests;
