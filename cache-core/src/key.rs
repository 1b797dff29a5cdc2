//! Key encoding: a `serde::Serialize` value to a deterministic, injective, readable string.
//!
//! Every annotated call encodes its arguments, so the encoder writes straight into the
//! caller's buffer: no intermediate string per scalar, no allocation for numbers. Only maps
//! allocate (a scratch buffer to sort their entries).
//!
//! ```
//! use std::collections::HashMap;
//! use cache_core::key::encode_key;
//!
//! #[derive(serde::Serialize)]
//! struct UserId(u64);
//!
//! assert_eq!(encode_key(&(UserId(42), "alice"))?, "42:alice");
//! assert_eq!(encode_key(&("a:b", Some(7u8), None::<u8>))?, "a\\:b:7:~");
//! assert_eq!(encode_key(&((1u8, 2u8), vec!["x", ""]))?, "(1:2):[x,#]");
//! let filters = HashMap::from([("role", "admin"), ("org", "acme")]);
//! assert_eq!(encode_key(&filters)?, "{org=acme,role=admin}");
//! # Ok::<(), cache_core::key::KeyError>(())
//! ```
//!
//! # Grammar
//!
//! `enc(v)` depends on the value and on one bit of context: whether `v` is an *element* of a
//! `:`-joined list (a tuple, tuple struct or tuple variant).
//!
//! | value | encoding | example |
//! | --- | --- | --- |
//! | integer | decimal | `42`, `-7` |
//! | float | Rust's shortest round-trip `Display` | `1.5`, `-0`, `NaN`, `inf`, `-inf` |
//! | bool | `true` / `false` | `true` |
//! | string, char | the text, a `\` before each reserved character | `a:b` → `a\:b` |
//! | bytes (`serialize_bytes`) | `0x` + lowercase hex | `0x00ff` |
//! | `()`, unit struct | `()` | `()` |
//! | unit variant | its name | `Red` |
//! | `None` | `~` | `~` |
//! | `Some(v)` | `enc(v)`, or `~` + `enc(v)` when `enc(v)` starts with `~` | `Some(None)` → `~~` |
//! | newtype struct | `enc(inner)` (transparent) | `UserId(42)` → `42` |
//! | tuple, tuple struct, array | elements joined by `:`; wrapped in `(` `)` when itself an element | `1:2:x`, `(1:2):x` |
//! | sequence | `[a,b,c]`; an element that encodes to nothing is written `#` | `[]`, `[#]` (one empty string) |
//! | map | `{k=v,k2=v2}`, entries sorted by encoded key, then encoded value | `{a=1,b=2}` |
//! | struct | `{field=value,...}` in declaration order | `{id=42,name=alice}` |
//! | newtype / tuple / struct variant | `Name(v)` / `Name(a:b)` / `Name{f=v}` | `Circle(1.5)` |
//!
//! The reserved characters are `\ : , [ ] { } ( ) = ~ #`. Field and variant names are escaped
//! like strings (they can be anything with `#[serde(rename)]`). The empty string is the
//! empty text. Sequence elements, map keys and values, struct fields and variant payloads are
//! not elements of a `:`-list, so a tuple there is written bare (`[1:2,3:4]`).
//!
//! Plain values stay readable: `42u64` → `42`, `"alice"` → `alice`, `(42u64, "alice")` →
//! `42:alice`. A value gives the same key whichever way it is written: `42u64`, `42u32`,
//! `&42u64`, `"42"` and `String::from("42")` are all `42`.
//!
//! # Why it is injective
//!
//! Two distinct values *of the same type* never get the same key (values of different types
//! may, on purpose: `42u64` and `"42"`).
//!
//! 1. Strings, chars and names put a `\` before every reserved character and before nothing
//!    else; numbers, bools and bytes contain no reserved character. So reading left to right,
//!    a `\` always escapes the next character, and every unescaped reserved character was
//!    written by the grammar. Call those *structural*. Structural brackets `()[]{}` always
//!    come in nested pairs, so "at depth 0" (outside every structural bracket) is well defined.
//! 2. By induction on the type: no encoding has a depth-0 `,` or `=`, and an element's
//!    encoding has no depth-0 `:` (a tuple that is an element is wrapped in parentheses, and
//!    `Some`/newtypes pass the element context on to what they wrap).
//! 3. Each form can therefore be read back, knowing the type, by induction:
//!    * a tuple splits at its depth-0 `:` into exactly its elements;
//!    * a sequence's inside splits at depth-0 `,`; `[]` has no element, and `#` (structural,
//!      since a string `#` is `\#`) is the one element whose encoding is empty;
//!    * a map's or struct's inside splits at depth-0 `,` into entries and each entry at its
//!      depth-0 `=`; field and variant names end at the first structural character; map
//!      entries are in one canonical order, so the text fixes the set of entries;
//!    * an `Option<T>` is `None` when it is exactly `~`; otherwise it is `Some`, and its
//!      value is the rest after one leading `~` when it starts with `~`, else the whole: a
//!      `Some` whose value's encoding starts with `~` always gets an extra `~`, and one whose
//!      value's encoding does not start with `~` does not start with `~` either.
//!
//! This holds for types whose `Serialize` gives distinct values distinct serde data (as
//! derived impls and the standard library's do). `#[serde(untagged)]` enums whose variants
//! look alike, or hand-written impls that lose information, can still collide; so do the
//! different NaN payloads (all `NaN`).
//!
//! # Determinism
//!
//! The encoding depends only on the value: never on a hash seed, an address or the machine.
//! Maps are sorted by encoded key, so a `HashMap` and a `BTreeMap` with the same entries give
//! the same key. Sequences are *not* sorted (a `Vec`'s order is meaningful), and serde cannot
//! tell a `HashSet` from a `Vec`: a `HashSet` key is encoded in its iteration order, which
//! changes between processes. Use a `BTreeSet` (or sort first) for set-valued keys.

use std::fmt::{self, Write as _};

use serde::ser::{self, Serialize};

/// A value that cannot be turned into a key.
///
/// The encoder itself never fails on serde's data model; this only carries the errors that a
/// value's own `Serialize` impl reports.
///
/// ```
/// use cache_core::key::{encode_key, KeyError};
/// struct Broken;
/// impl serde::Serialize for Broken {
///     fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(serde::ser::Error::custom("the handle is closed"))
///     }
/// }
/// let err: KeyError = encode_key(&Broken).unwrap_err();
/// assert_eq!(err.to_string(), "cannot turn the value into a cache key: the handle is closed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub(crate) String);

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        KeyError(format!("cannot turn the value into a cache key: {msg}"))
    }
}

/// Appends the encoding of `value` to `out` (see the [module docs](self) for the grammar).
///
/// On error `out` is left as it was.
///
/// ```
/// use cache_core::key::encode_key_into;
/// let mut key = String::from("users:");
/// encode_key_into(&(42u64, "alice"), &mut key)?;
/// assert_eq!(key, "users:42:alice");
/// # Ok::<(), cache_core::key::KeyError>(())
/// ```
pub fn encode_key_into<K: Serialize + ?Sized>(value: &K, out: &mut String) -> Result<(), KeyError> {
    let start = out.len();
    let result = value.serialize(Encoder {
        out: &mut *out,
        elem: false,
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The encoding of `value` (see the [module docs](self) for the grammar).
///
/// ```
/// use cache_core::key::encode_key;
/// assert_eq!(encode_key(&42u64)?, "42");
/// assert_eq!(encode_key(&(42u64, "alice"))?, "42:alice");
/// assert_eq!(encode_key("a:b")?, "a\\:b");
/// assert_eq!(encode_key(&Some(vec!["x", "y"]))?, "[x,y]");
/// # Ok::<(), cache_core::key::KeyError>(())
/// ```
pub fn encode_key<K: Serialize + ?Sized>(value: &K) -> Result<String, KeyError> {
    // Most keys are short: one allocation up front instead of a few growths.
    let mut out = String::with_capacity(32);
    encode_key_into(value, &mut out)?;
    Ok(out)
}

/// The characters that strings escape. All are ASCII, so a byte test never splits a UTF-8
/// sequence.
const RESERVED_CHARS: &[u8; 12] = b"\\:,[]{}()=~#";

/// `RESERVED[b]` says whether byte `b` must be escaped: one load per byte, which measured
/// faster than a `matches!` or a bit set.
static RESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < RESERVED_CHARS.len() {
        table[RESERVED_CHARS[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether `b` must be escaped in a string.
#[inline]
pub(crate) fn is_reserved(b: u8) -> bool {
    RESERVED[usize::from(b)]
}

/// Appends `s` with a backslash before each reserved character.
#[inline]
fn push_escaped(out: &mut String, s: &str) {
    // Most keys have nothing to escape: one scan, one copy.
    let Some(first) = s.bytes().position(is_reserved) else {
        out.push_str(s);
        return;
    };
    push_escaped_from(out, s, first);
}

/// [`push_escaped`] of a string whose first reserved character is at `first`: the runs
/// between reserved characters are copied whole (a scan and one copy per run), not pushed
/// byte by byte.
#[inline(never)]
fn push_escaped_from(out: &mut String, s: &str, first: usize) {
    out.reserve(s.len() + 4);
    let mut rest = s;
    let mut at = first;
    loop {
        // `at` indexes an ASCII byte of `rest`, so `at` and `at + 1` are char boundaries.
        let (run, tail) = rest.split_at(at);
        out.push_str(run);
        out.push('\\');
        out.push(char::from(tail.as_bytes()[0]));
        rest = &tail[1..];
        match rest.bytes().position(is_reserved) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.push_str(rest);
}

/// Reads back a string as the encoder writes it (a string key, a cache or namespace name)
/// from the start of `text`: returns it unescaped, and the rest of `text` from the first
/// reserved character that no `\` escapes (empty if there is none).
///
/// Stored keys are `{prefix}:{cache}:{key}` with the cache name escaped, so this is how a
/// stored key splits back into its parts even when a name holds a `:` or a `#`.
///
/// ```
/// use cache_core::key::{encode_key, read_escaped};
/// let stored = format!("{}:42", encode_key("orders:eu")?);
/// assert_eq!(stored, "orders\\:eu:42");
/// assert_eq!(read_escaped(&stored), ("orders:eu".to_owned(), ":42"));
/// assert_eq!(read_escaped("users#admins:7"), ("users".to_owned(), "#admins:7"));
/// assert_eq!(read_escaped("plain"), ("plain".to_owned(), ""));
/// # Ok::<(), cache_core::key::KeyError>(())
/// ```
pub fn read_escaped(text: &str) -> (String, &str) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // An escape: the next character stands for itself. Only ASCII bytes are ever
            // sliced at, so `i` and `i + 1` are char boundaries. A `\` before anything but
            // a reserved character is never written; like any other unescaped reserved
            // character, it ends the string.
            b'\\' if bytes.get(i + 1).is_some_and(|&b| is_reserved(b)) => {
                out.push_str(&text[last..i]);
                last = i + 1;
                i += 2;
            }
            b if is_reserved(b) => break,
            _ => i += 1,
        }
    }
    out.push_str(&text[last..i]);
    (out, &text[i..])
}

/// A `fmt::Write` that escapes, so `collect_str` needs no intermediate `String`.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

fn fmt_error(_: fmt::Error) -> KeyError {
    KeyError("cannot turn the value into a cache key: its `Display` impl failed".into())
}

/// The methods of a key serializer for every integer width (`serialize_i8` to
/// `serialize_u128`), each under the attribute given if any (`#[inline]`,
/// `#[inline(always)]`) and each handing its value to the serializer's own `self.int(v)`
/// (its decimal digits). Shared by this encoder, the stack encoder ([`crate::scalar_key`])
/// and the direct path ([`crate::direct_key`]).
macro_rules! integers_by_int {
    ($(#[$attr:meta])?) => {
        integers_by_int!(@each [$(#[$attr])?]
            serialize_i8 i8, serialize_i16 i16, serialize_i32 i32, serialize_i64 i64,
            serialize_i128 i128, serialize_u8 u8, serialize_u16 u16, serialize_u32 u32,
            serialize_u64 u64, serialize_u128 u128);
    };
    (@each $attrs:tt $($method:ident $int:ty),*) => {
        $( integers_by_int!(@one $attrs $method $int); )*
    };
    (@one [$($attr:tt)*] $method:ident $int:ty) => {
        $($attr)*
        fn $method(self, v: $int) -> Result<Self::Ok, Self::Error> {
            self.int(v)
        }
    };
}
pub(crate) use integers_by_int;

/// The serializer: writes one value into `out`.
struct Encoder<'a> {
    out: &'a mut String,
    /// This value is an element of a `:`-joined list, so a tuple must be parenthesized.
    elem: bool,
}

impl<'a> Encoder<'a> {
    #[inline]
    fn int(self, v: impl itoa::Integer) -> Result<(), KeyError> {
        self.out.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn tuple(self, open: bool) -> Tuple<'a> {
        if open {
            self.out.push('(');
        }
        Tuple {
            out: self.out,
            first: true,
            close: open,
        }
    }
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = KeyError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Tuple<'a>;
    type SerializeTupleStruct = Tuple<'a>;
    type SerializeTupleVariant = Tuple<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Struct<'a>;
    type SerializeStructVariant = Struct<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), KeyError> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    // No inline hint, as before the macro served here: with `#[inline]` a front-table hit
    // measured one or two instructions more (callgrind, `cachet_sync_front` 389 -> 391),
    // this encoder being the probe's fallback (`with_encoded_slow`).
    integers_by_int!();

    fn serialize_f32(self, v: f32) -> Result<(), KeyError> {
        // `Display` of a float is the shortest text that reads back to the same float, never
        // in exponent form, and has no reserved character.
        write!(self.out, "{v}").map_err(fmt_error)
    }
    fn serialize_f64(self, v: f64) -> Result<(), KeyError> {
        write!(self.out, "{v}").map_err(fmt_error)
    }

    fn serialize_char(self, v: char) -> Result<(), KeyError> {
        push_escaped(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), KeyError> {
        push_escaped(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), KeyError> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.out.reserve(2 + 2 * v.len());
        self.out.push_str("0x");
        for &b in v {
            self.out.push(char::from(HEX[usize::from(b >> 4)]));
            self.out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Ok(())
    }

    fn serialize_none(self) -> Result<(), KeyError> {
        self.out.push('~');
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), KeyError> {
        let start = self.out.len();
        value.serialize(Encoder {
            out: &mut *self.out,
            elem: self.elem,
        })?;
        if self.out.as_bytes().get(start) == Some(&b'~') {
            // Keeps `Some(None)` (`~~`) apart from `None` (`~`), at any depth.
            self.out.insert(start, '~');
        }
        Ok(())
    }

    fn serialize_unit(self) -> Result<(), KeyError> {
        self.out.push_str("()");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), KeyError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), KeyError> {
        push_escaped(self.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        push_escaped(self.out, variant);
        self.out.push('(');
        value.serialize(Encoder {
            out: &mut *self.out,
            elem: false,
        })?;
        self.out.push(')');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, KeyError> {
        self.out.push('[');
        Ok(Seq {
            out: self.out,
            first: true,
        })
    }

    fn serialize_tuple(self, _len: usize) -> Result<Tuple<'a>, KeyError> {
        let open = self.elem;
        Ok(self.tuple(open))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Tuple<'a>, KeyError> {
        let open = self.elem;
        Ok(self.tuple(open))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Tuple<'a>, KeyError> {
        push_escaped(self.out, variant);
        Ok(self.tuple(true))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, KeyError> {
        Ok(Map {
            out: self.out,
            scratch: String::new(),
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Struct<'a>, KeyError> {
        self.out.push('{');
        Ok(Struct {
            out: self.out,
            first: true,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Struct<'a>, KeyError> {
        push_escaped(self.out, variant);
        self.out.push('{');
        Ok(Struct {
            out: self.out,
            first: true,
        })
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), KeyError> {
        write!(Escaping(self.out), "{value}").map_err(fmt_error)
    }
}

/// A sequence in progress: `[a,b,c]`.
struct Seq<'a> {
    out: &'a mut String,
    first: bool,
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        let start = self.out.len();
        value.serialize(Encoder {
            out: &mut *self.out,
            elem: false,
        })?;
        if self.out.len() == start {
            // Keeps `[""]` apart from `[]`.
            self.out.push('#');
        }
        Ok(())
    }

    fn end(self) -> Result<(), KeyError> {
        self.out.push(']');
        Ok(())
    }
}

/// A tuple, tuple struct or tuple variant in progress: `a:b`, `(a:b)` or `Name(a:b)`.
struct Tuple<'a> {
    out: &'a mut String,
    first: bool,
    /// Whether a `(` was written that `end` must close.
    close: bool,
}

impl Tuple<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        if !self.first {
            self.out.push(':');
        }
        self.first = false;
        value.serialize(Encoder {
            out: &mut *self.out,
            elem: true,
        })
    }

    fn finish(self) -> Result<(), KeyError> {
        if self.close {
            self.out.push(')');
        }
        Ok(())
    }
}

/// The tuple forms on [`Tuple`], each `ser` trait `$form` with its element method
/// `$element`: an element through [`Tuple::element`], the end through [`Tuple::finish`].
macro_rules! tuple_forms {
    ($($form:ident $element:ident),*) => {
        $(
            impl ser::$form for Tuple<'_> {
                type Ok = ();
                type Error = KeyError;
                fn $element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
                    self.element(value)
                }
                fn end(self) -> Result<(), KeyError> {
                    self.finish()
                }
            }
        )*
    };
}
tuple_forms!(
    SerializeTuple serialize_element,
    SerializeTupleStruct serialize_field,
    SerializeTupleVariant serialize_field
);

/// A map in progress. Entries are encoded into `scratch` and written to `out`, sorted, at the
/// end, so the key never depends on iteration order.
struct Map<'a> {
    out: &'a mut String,
    scratch: String,
    /// Per entry: where its key starts, where its key ends (and its value starts), where its
    /// value ends, in `scratch`.
    entries: Vec<(usize, usize, usize)>,
    /// The key written by `serialize_key` whose value has not come yet.
    key: Option<(usize, usize)>,
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), KeyError> {
        if self.key.is_some() {
            return Err(KeyError(
                "cannot turn the value into a cache key: a map key came without its value".into(),
            ));
        }
        let start = self.scratch.len();
        key.serialize(Encoder {
            out: &mut self.scratch,
            elem: false,
        })?;
        self.key = Some((start, self.scratch.len()));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), KeyError> {
        let (start, mid) = self.key.take().ok_or_else(|| {
            KeyError(
                "cannot turn the value into a cache key: a map value came without its key".into(),
            )
        })?;
        value.serialize(Encoder {
            out: &mut self.scratch,
            elem: false,
        })?;
        self.entries.push((start, mid, self.scratch.len()));
        Ok(())
    }

    fn end(mut self) -> Result<(), KeyError> {
        if self.key.is_some() {
            return Err(KeyError(
                "cannot turn the value into a cache key: a map key came without its value".into(),
            ));
        }
        let scratch = &self.scratch;
        let entry =
            |&(start, mid, end): &(usize, usize, usize)| (&scratch[start..mid], &scratch[mid..end]);
        self.entries
            .sort_unstable_by(|a, b| entry(a).cmp(&entry(b)));
        self.out.reserve(scratch.len() + 2 * self.entries.len() + 1);
        self.out.push('{');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let (key, value) = entry(e);
            self.out.push_str(key);
            self.out.push('=');
            self.out.push_str(value);
        }
        self.out.push('}');
        Ok(())
    }
}

/// A struct or struct variant in progress: `{f=v,g=w}` or `Name{f=v}`.
struct Struct<'a> {
    out: &'a mut String,
    first: bool,
}

impl Struct<'_> {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_escaped(self.out, key);
        self.out.push('=');
        value.serialize(Encoder {
            out: &mut *self.out,
            elem: false,
        })
    }

    fn finish(self) -> Result<(), KeyError> {
        self.out.push('}');
        Ok(())
    }
}

/// The struct forms on [`Struct`] (`ser::SerializeStruct`, `ser::SerializeStructVariant`):
/// a field through [`Struct::field`], the end through [`Struct::finish`].
macro_rules! struct_forms {
    ($($form:ident),*) => {
        $(
            impl ser::$form for Struct<'_> {
                type Ok = ();
                type Error = KeyError;
                fn serialize_field<T: Serialize + ?Sized>(
                    &mut self,
                    key: &'static str,
                    value: &T,
                ) -> Result<(), KeyError> {
                    self.field(key, value)
                }
                fn end(self) -> Result<(), KeyError> {
                    self.finish()
                }
            }
        )*
    };
}
struct_forms!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::fmt::Debug;

    fn enc<K: Serialize + ?Sized>(value: &K) -> String {
        encode_key(value).unwrap()
    }

    /// Calls `serialize_bytes`, as `serde_bytes` does.
    struct Bytes<'a>(&'a [u8]);
    impl Serialize for Bytes<'_> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[derive(Serialize)]
    struct UserId(u64);

    #[derive(Serialize)]
    struct Marker;

    #[derive(Serialize)]
    struct Pair(u32, String);

    #[derive(Serialize)]
    struct User {
        id: u64,
        name: String,
        tags: Vec<String>,
    }

    #[derive(Serialize)]
    enum Shape {
        Red,
        Circle(f64),
        Rect(u32, u32),
        Named {
            name: String,
            sides: u8,
        },
        #[serde(rename = "Odd(name")]
        Odd,
    }

    #[derive(Serialize, Debug, Clone, PartialEq)]
    enum Mixed {
        Unit,
        New(String),
        Tuple(String, Option<String>),
        Struct { a: String, b: Vec<String> },
    }

    #[test]
    fn golden_integers() {
        assert_eq!(enc(&0u8), "0");
        assert_eq!(enc(&255u8), "255");
        assert_eq!(enc(&42u64), "42");
        assert_eq!(enc(&u64::MAX), "18446744073709551615");
        assert_eq!(enc(&-7i64), "-7");
        assert_eq!(enc(&i64::MIN), "-9223372036854775808");
        assert_eq!(enc(&i128::MIN), "-170141183460469231731687303715884105728");
        assert_eq!(enc(&u128::MAX), "340282366920938463463374607431768211455");
        assert_eq!(enc(&-1i8), "-1");
        assert_eq!(enc(&65535u16), "65535");
    }

    #[test]
    fn golden_bool_and_floats() {
        assert_eq!(enc(&true), "true");
        assert_eq!(enc(&false), "false");
        assert_eq!(enc(&1.5f64), "1.5");
        assert_eq!(enc(&1.0f64), "1");
        assert_eq!(enc(&-0.0f64), "-0");
        assert_eq!(enc(&0.0f64), "0");
        assert_eq!(enc(&f64::NAN), "NaN");
        assert_eq!(enc(&f64::INFINITY), "inf");
        assert_eq!(enc(&f64::NEG_INFINITY), "-inf");
        assert_eq!(enc(&0.1f64), "0.1");
        assert_eq!(enc(&1e-7f64), "0.0000001");
        assert_eq!(enc(&1e21f64), "1000000000000000000000");
        assert_eq!(enc(&0.1f32), "0.1");
        assert_eq!(enc(&f32::MAX), "340282350000000000000000000000000000000");
    }

    #[test]
    fn golden_strings_and_chars() {
        assert_eq!(enc("alice"), "alice");
        assert_eq!(enc(&"alice"), "alice");
        assert_eq!(enc(&String::from("alice")), "alice");
        assert_eq!(enc(""), "");
        assert_eq!(enc(&'c'), "c");
        assert_eq!(enc(&'é'), "é");
        assert_eq!(enc(&':'), "\\:");
        assert_eq!(enc("a:b"), "a\\:b");
        assert_eq!(enc("héllo wörld ✓"), "héllo wörld ✓");
        assert_eq!(enc("a b\"c'/.-_|"), "a b\"c'/.-_|");
        assert_eq!(
            enc("\\:,[]{}()=~#"),
            "\\\\\\:\\,\\[\\]\\{\\}\\(\\)\\=\\~\\#"
        );
        assert_eq!(enc("x~"), "x\\~");
        assert_eq!(enc("é:é"), "é\\:é");
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(enc(&Bytes(&[])), "0x");
        assert_eq!(enc(&Bytes(&[0x00, 0xff, 0x1a, 0xb2])), "0x00ff1ab2");
        // A Vec<u8> is a sequence, not bytes.
        assert_eq!(enc(&vec![1u8, 2]), "[1,2]");
    }

    #[test]
    fn golden_tuples() {
        assert_eq!(enc(&(42u64, "alice")), "42:alice");
        assert_eq!(enc(&(1u8, 2u8, "x")), "1:2:x");
        assert_eq!(enc(&(42u64,)), "42");
        assert_eq!(enc(&("a:b", "c")), "a\\:b:c");
        assert_eq!(enc(&("", "")), ":");
        assert_eq!(enc(&((1u8, 2u8), 3u8)), "(1:2):3");
        assert_eq!(enc(&(1u8, (2u8, (3u8, 4u8)))), "1:(2:(3:4))");
        assert_eq!(enc(&((1u8,), 2u8)), "(1):2");
        assert_eq!(enc(&[1u8, 2, 3]), "1:2:3");
        assert_eq!(enc(&Pair(7, "x".into())), "7:x");
        assert_eq!(enc(&(Pair(7, "x".into()), 8u8)), "(7:x):8");
        assert_eq!(enc(&vec![(1u8, 2u8), (3, 4)]), "[1:2,3:4]");
    }

    #[test]
    fn golden_options() {
        assert_eq!(enc(&None::<u64>), "~");
        assert_eq!(enc(&Some(42u64)), "42");
        assert_eq!(enc(&Some(None::<u64>)), "~~");
        assert_eq!(enc(&Some(Some(None::<u64>))), "~~~");
        assert_eq!(enc(&Some(Some("~x"))), "\\~x");
        assert_eq!(enc(&Some("")), "");
        assert_eq!(enc(&(None::<u8>, 1u8)), "~:1");
        assert_eq!(enc(&Some((None::<u8>, 1u8))), "~~:1");
        assert_eq!(enc(&(Some((1u8, 2u8)), 3u8)), "(1:2):3");
        assert_eq!(enc(&(None::<(u8, u8)>, 3u8)), "~:3");
        assert_eq!(enc(&vec![None, Some(1u8)]), "[~,1]");
    }

    #[test]
    fn golden_unit_newtype_struct() {
        assert_eq!(enc(&()), "()");
        assert_eq!(enc(&Marker), "()");
        assert_eq!(enc(&UserId(42)), "42");
        assert_eq!(enc(&(UserId(42), "alice")), "42:alice");
        let user = User {
            id: 42,
            name: "a,b".into(),
            tags: vec!["x".into(), "y".into()],
        };
        assert_eq!(enc(&user), "{id=42,name=a\\,b,tags=[x,y]}");
    }

    #[test]
    fn golden_enums() {
        assert_eq!(enc(&Shape::Red), "Red");
        assert_eq!(enc(&Shape::Circle(1.5)), "Circle(1.5)");
        assert_eq!(enc(&Shape::Rect(2, 3)), "Rect(2:3)");
        let named = Shape::Named {
            name: "tri".into(),
            sides: 3,
        };
        assert_eq!(enc(&named), "Named{name=tri,sides=3}");
        assert_eq!(enc(&Shape::Odd), "Odd\\(name");
        assert_eq!(enc(&(Shape::Red, Shape::Rect(1, 2))), "Red:Rect(1:2)");
    }

    #[test]
    fn golden_sequences() {
        assert_eq!(enc(&Vec::<u8>::new()), "[]");
        assert_eq!(enc(&vec![1u8, 2, 3]), "[1,2,3]");
        assert_eq!(enc(&vec![""]), "[#]");
        assert_eq!(enc(&vec!["", ""]), "[#,#]");
        assert_eq!(enc(&vec!["#"]), "[\\#]");
        assert_eq!(enc(&vec!["a,b", "c"]), "[a\\,b,c]");
        assert_eq!(enc(&vec![vec![1u8, 2], vec![], vec![3]]), "[[1,2],[],[3]]");
        assert_eq!(enc(&["a", "b"][..]), "[a,b]");
        assert_eq!(enc(&BTreeSet::from([3u8, 1, 2])), "[1,2,3]");
    }

    #[test]
    fn golden_maps() {
        let mut hash = HashMap::new();
        for (k, v) in [("b", 2u8), ("a", 1), ("c:d", 3), ("", 0), ("aa", 9)] {
            hash.insert(k, v);
        }
        let btree: BTreeMap<_, _> = hash.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(enc(&hash), "{=0,a=1,aa=9,b=2,c\\:d=3}");
        assert_eq!(enc(&hash), enc(&btree));
        // Sorted by encoded key, not by the key type's order.
        assert_eq!(enc(&BTreeMap::from([(2u8, "x"), (10, "y")])), "{10=y,2=x}");
        assert_eq!(enc(&BTreeMap::<u8, u8>::new()), "{}");
        assert_eq!(enc(&BTreeMap::from([((1u8, 2u8), vec![3u8])])), "{1:2=[3]}");
        let nested = HashMap::from([("o", HashMap::from([(2u8, 2u8), (1, 1)]))]);
        assert_eq!(enc(&nested), "{o={1=1,2=2}}");
    }

    #[test]
    fn same_key_whichever_way() {
        let k = enc(&42u64);
        assert_eq!(k, "42");
        assert_eq!(enc(&42u32), k);
        assert_eq!(enc(&42u8), k);
        assert_eq!(enc(&42i64), k);
        assert_eq!(enc(&&42u64), k);
        assert_eq!(enc("42"), k);
        assert_eq!(enc(&String::from("42")), k);
        assert_eq!(enc(&UserId(42)), k);
        assert_eq!(enc(&Some(42u64)), k);
        assert_eq!(enc(&Box::new("42")), k);
        assert_eq!(
            enc(&(42u64, "alice")),
            enc(&(UserId(42), String::from("alice")))
        );
        assert_eq!(enc(&std::borrow::Cow::Borrowed("alice")), "alice");
        assert_eq!(enc(&vec![1u8, 2]), enc(&[1u64, 2][..]));
    }

    #[test]
    fn the_holes_that_refined_the_grammar() {
        // Without parentheses around nested tuples, both were `~:q:~`.
        type T = (
            Option<(Option<String>, String)>,
            Option<(String, Option<String>)>,
        );
        let a: T = (None, Some(("q".into(), None)));
        let b: T = (Some((None, "q".into())), None);
        assert_eq!(enc(&a), "~:(q:~)");
        assert_eq!(enc(&b), "(~:q):~");
        // Without `#`, both were `[]`.
        assert_ne!(enc(&Vec::<String>::new()), enc(&vec![String::new()]));
        // Without escaping names, a renamed unit variant could look like a newtype variant.
        assert_ne!(enc(&Shape::Odd), "Odd(name");
    }

    #[test]
    fn encode_into_appends_and_leaves_out_alone_on_error() {
        let mut out = String::from("p:");
        encode_key_into(&(1u8, "x"), &mut out).unwrap();
        assert_eq!(out, "p:1:x");

        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("boom after 1"))
            }
        }
        let err = encode_key_into(&(1u8, "partial", Fails), &mut out).unwrap_err();
        assert_eq!(out, "p:1:x");
        assert_eq!(
            err.to_string(),
            "cannot turn the value into a cache key: boom after 1"
        );
    }

    #[test]
    fn collect_str_escapes_without_allocating() {
        struct Shown;
        impl Serialize for Shown {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&format_args!("{}:{}", "a", 1))
            }
        }
        assert_eq!(enc(&Shown), "a\\:1");
        assert_eq!(enc(&std::net::Ipv4Addr::new(127, 0, 0, 1)), "127.0.0.1");
    }

    /// Distinct values give distinct keys, over every pair in `values`.
    fn assert_injective<T: Serialize + PartialEq + Debug>(
        values: &[T],
    ) -> Result<(), TestCaseError> {
        let keys: Vec<String> = values.iter().map(enc).collect();
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                if keys[i] == keys[j] {
                    prop_assert_eq!(&values[i], &values[j], "both encode to {:?}", keys[i]);
                }
            }
        }
        Ok(())
    }

    /// Short strings over an alphabet of mostly reserved characters, so collisions are likely
    /// if the grammar has a hole.
    fn tricky() -> impl Strategy<Value = String> {
        prop::string::string_regex("[a:\\\\,~\\[\\]{}=()#]{0,6}").unwrap()
    }

    fn many<T: Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<T>> {
        prop::collection::vec(s, 0..24)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn escaping_matches_a_char_by_char_reference(s in "[a:\\\\,~\\[\\]{}=()#é0-9]{0,40}") {
            let mut reference = String::from("pre");
            for c in s.chars() {
                if c.is_ascii() && is_reserved(c as u8) {
                    reference.push('\\');
                }
                reference.push(c);
            }
            let mut out = String::from("pre");
            push_escaped(&mut out, &s);
            prop_assert_eq!(out, reference);
        }

        #[test]
        fn injective_string_pairs(v in many((tricky(), tricky()))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_string_vecs(v in many(prop::collection::vec(tricky(), 0..4))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_nested_options(v in many(prop::option::of(prop::option::of(tricky())))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_bytes_and_option(v in many((prop::collection::vec(any::<u8>(), 0..3), prop::option::of(tricky())))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_maps(v in many(prop::collection::btree_map(tricky(), prop::collection::vec(-3i64..3, 0..3), 0..3))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_string_and_number(v in many((tricky(), 0u64..20))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_optional_tuples_in_tuples(v in many((
            prop::option::of((prop::option::of(tricky()), tricky())),
            prop::option::of((tricky(), prop::option::of(tricky()))),
        ))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_vec_of_options(v in many(prop::collection::vec(prop::option::of(prop::option::of(tricky())), 0..3))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_mixed_shapes(v in many(prop::collection::vec((
            prop::option::of(tricky()),
            prop::collection::btree_map(tricky(), prop::option::of((tricky(), tricky())), 0..2),
            prop_oneof![
                Just(Mixed::Unit),
                tricky().prop_map(Mixed::New),
                (tricky(), prop::option::of(tricky())).prop_map(|(a, b)| Mixed::Tuple(a, b)),
                (tricky(), prop::collection::vec(tricky(), 0..2)).prop_map(|(a, b)| Mixed::Struct { a, b }),
            ],
        ), 0..3))) {
            assert_injective(&v)?;
        }

        #[test]
        fn injective_escaping_and_unescaping_roundtrip(s in ".{0,12}") {
            // The escaped text reads back to the original: drop each escaping backslash.
            let key = enc(&s);
            let mut back = String::new();
            let mut chars = key.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    let next = chars.next().unwrap();
                    prop_assert!(is_reserved(next as u8) && next.is_ascii());
                    back.push(next);
                } else {
                    prop_assert!(!(c.is_ascii() && is_reserved(c as u8)));
                    back.push(c);
                }
            }
            prop_assert_eq!(back, s);
        }

        #[test]
        fn read_escaped_reads_back_what_the_encoder_wrote(s in ".{0,12}", rest in "([:#,=~(\\[{]\\PC{0,6})?") {
            let text = format!("{}{rest}", enc(&s));
            prop_assert_eq!(read_escaped(&text), (s, rest.as_str()));
        }

        #[test]
        fn maps_ignore_insertion_order(entries in prop::collection::vec((tricky(), any::<i64>()), 0..12)) {
            let forward: HashMap<String, i64> = entries.iter().cloned().collect();
            let mut backward = HashMap::new();
            for (k, v) in entries.iter().rev() {
                backward.entry(k.clone()).or_insert(*v);
            }
            // `forward` keeps the last value per key, `backward` the first seen from the end:
            // the same map.
            let sorted: BTreeMap<String, i64> = entries.iter().cloned().collect();
            prop_assert_eq!(enc(&forward), enc(&backward));
            prop_assert_eq!(enc(&forward), enc(&sorted));
        }
    }
}
