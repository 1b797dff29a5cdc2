//! The types each cached operation reads and writes, compared across the operations sharing
//! a cache. Building a manager and `cachet check --src` both fail when two operations on one
//! string-named cache disagree on its value type (a read of one's entries by the other would
//! be a miss, or decode another type) or on its key type (an entry one stores, the other
//! cannot address, so a `cache_evict` misses what a `cacheable` stored; and keys of
//! different types may encode alike, `42` for both `42u64` and `"42"`, and collide).
//!
//! Types are compared as written, made comparable: whitespace, lifetimes and references are
//! dropped, paths are reduced to their last segment (`models::User` is `User`), a key type
//! that encodes as another is that one ([`comparable_key`]: `&str`, `Box<str>` and
//! `Cow<str>` are `String`, `&T` and `Box<T>` are `T`, `[T]` is `Vec<T>`), and a value
//! `Option<T>` is `T`. A key written as an expression other than arguments is unknown and
//! not compared. Two types of one name in different modules compare equal: a typed cache
//! (`cachet::caches!`) is checked exactly, by the compiler.

use std::fmt;

/// One operation's types on one cache, as the check compares them.
///
/// ```
/// use cache_core::inventory::{find_conflict, OperationTypes};
/// let find = OperationTypes { cache: "users", function: "app::find", file: "src/a.rs", line: 3, key_type: "u64", value_type: "Result<User, E>" };
/// let by_name = OperationTypes { function: "app::by_name", line: 9, key_type: "&str", ..find };
/// let conflict = find_conflict(&[find, by_name]).unwrap();
/// assert!(conflict.to_string().contains("app::by_name (src/a.rs:9)"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationTypes<'a> {
    /// The cache name.
    pub cache: &'a str,
    /// The function (`module::function`).
    pub function: &'a str,
    /// Its source file.
    pub file: &'a str,
    /// Its line.
    pub line: u32,
    /// The key type as written; empty when unknown (not compared).
    pub key_type: &'a str,
    /// The cached value type as written; empty when the operation stores nothing (an
    /// eviction: not compared).
    pub value_type: &'a str,
}

/// Two operations on one cache that disagree on its key or value type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeConflict {
    /// The cache.
    pub cache: String,
    /// `"key"` or `"value"`.
    pub what: &'static str,
    /// The first operation: `module::function (file:line)`.
    pub first: String,
    /// Its type, as written.
    pub first_type: String,
    /// The second operation.
    pub second: String,
    /// Its type, as written.
    pub second_type: String,
}

impl fmt::Display for TypeConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = if self.what == "key" {
            "an entry one stores, the other cannot address (and keys of different types may \
             encode alike and collide)"
        } else {
            "a read of one's entries by the other misses (or would decode another type)"
        };
        write!(
            f,
            "cache `{}`: {} has {} type `{}` but {} has `{}`; {why}: use one type, or two caches \
             (a typed cache declared with `cachet::caches!` checks this at compile time)",
            self.cache, self.first, self.what, self.first_type, self.second, self.second_type
        )
    }
}

/// The first pair of operations on one cache whose key types (or value types) differ.
///
/// ```
/// use cache_core::inventory::{find_conflict, OperationTypes};
/// let a = OperationTypes { cache: "users", function: "a", file: "f.rs", line: 1, key_type: "u64", value_type: "Option<crate::User>" };
/// let b = OperationTypes { function: "b", line: 2, value_type: "models::User", ..a };
/// assert_eq!(find_conflict(&[a, b]), None);
/// ```
pub fn find_conflict(ops: &[OperationTypes<'_>]) -> Option<TypeConflict> {
    find_conflicts(ops).into_iter().next()
}

/// Every disagreement: for each cache and each of key and value, the first operation
/// against each one that disagrees with it.
///
/// ```
/// use cache_core::inventory::{find_conflicts, OperationTypes};
/// let a = OperationTypes { cache: "users", function: "a", file: "f.rs", line: 1, key_type: "u64", value_type: "User" };
/// let b = OperationTypes { function: "b", line: 2, key_type: "String", value_type: "Admin", ..a };
/// let found = find_conflicts(&[a, b]);
/// assert_eq!(found.iter().map(|c| c.what).collect::<Vec<_>>(), ["key", "value"]);
/// ```
pub fn find_conflicts(ops: &[OperationTypes<'_>]) -> Vec<TypeConflict> {
    let mut found: Vec<TypeConflict> = Vec::new();
    let at = |op: &OperationTypes<'_>| format!("{} ({}:{})", op.function, op.file, op.line);
    for (i, a) in ops.iter().enumerate() {
        for b in &ops[i + 1..] {
            if a.cache != b.cache {
                continue;
            }
            let pairs = [
                (
                    "key",
                    a.key_type,
                    b.key_type,
                    comparable_key(a.key_type),
                    comparable_key(b.key_type),
                ),
                (
                    "value",
                    a.value_type,
                    b.value_type,
                    comparable_value(a.value_type),
                    comparable_value(b.value_type),
                ),
            ];
            for (what, ta, tb, ca, cb) in pairs {
                let seen = found
                    .iter()
                    .any(|c| c.cache == a.cache && c.what == what && c.second == at(b));
                if !ta.is_empty() && !tb.is_empty() && ca != cb && !seen {
                    found.push(TypeConflict {
                        cache: a.cache.to_owned(),
                        what,
                        first: at(a),
                        first_type: ta.to_owned(),
                        second: at(b),
                        second_type: tb.to_owned(),
                    });
                }
            }
        }
    }
    found
}

/// A key type made comparable, so that key types which encode alike compare equal:
/// references dropped (`&T` is `T`), a borrowed form is its owned one (`str` is `String`,
/// `[T]` is `Vec<T>`), the pointers serde serializes as their content are it (`Box<T>`,
/// `Arc<T>`, `Rc<T>`, `Cow<T>`: `Box<str>` and `Cow<'_, str>` are `String`), tuples and
/// type arguments part by part (`Option<&str>` is `Option<String>`). Arrays are left alone:
/// they encode as tuples, not as sequences.
///
/// The one normalisation of key types: the startup check and `cachet check --src` both
/// compare through it ([`find_conflicts`]).
///
/// ```
/// use cache_core::inventory::comparable_key;
/// assert_eq!(comparable_key("&'a str"), comparable_key("String"));
/// assert_eq!(comparable_key("Box<str>"), "String");
/// assert_eq!(comparable_key("(&u64, std::borrow::Cow<'_, str>)"), "(u64,String)");
/// assert_ne!(comparable_key("u64"), comparable_key("String"));
/// ```
pub fn comparable_key(ty: &str) -> String {
    key_form(&plain(ty))
}

/// [`comparable_key`] of a type already [`plain`].
fn key_form(ty: &str) -> String {
    let ty = ty.trim_start_matches('&');
    if let Some(inner) = ty.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        let parts: Vec<String> = split_top(inner).iter().map(|p| key_form(p)).collect();
        return if parts.len() == 1 && !inner.ends_with(',') {
            parts[0].clone()
        } else {
            format!("({})", parts.join(","))
        };
    }
    if ty == "str" {
        return "String".into();
    }
    if let Some(elem) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        // `[T; N]` encodes as a tuple: only a slice is a sequence.
        if split_top_at(elem, ';').len() == 1 {
            return format!("Vec<{}>", key_form(elem));
        }
        return ty.to_owned();
    }
    if let Some((name, args)) = ty
        .strip_suffix('>')
        .and_then(|t| t.split_once('<'))
        .filter(|(name, _)| !name.is_empty())
    {
        // A lifetime argument was dropped by `plain`, leaving an empty part.
        let args: Vec<String> = split_top(args)
            .iter()
            .filter(|a| !a.is_empty())
            .map(|a| key_form(a))
            .collect();
        return match (name, args.as_slice()) {
            ("Box" | "Arc" | "Rc" | "Cow", [content]) => content.clone(),
            _ => format!("{name}<{}>", args.join(",")),
        };
    }
    ty.to_owned()
}

/// A value type made comparable: `Option<T>` is `T` (the entry a `T` reads).
fn comparable_value(ty: &str) -> String {
    let ty = plain(ty);
    let ty = ty.trim_start_matches('&');
    match ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        Some(inner) => inner.to_owned(),
        None => ty.to_owned(),
    }
}

/// Whitespace, lifetimes and `mut` dropped; every path reduced to its last segment.
fn plain(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len());
    let mut chars = ty.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word != "mut" && word != "dyn" {
            out.push_str(word);
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // A lifetime: skipped with its name.
                while chars
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    chars.next();
                }
            }
            c if c.is_alphanumeric() || c == '_' => word.push(c),
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                // `a::b`: keep only what follows.
                word.clear();
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `a, (b, c), D<e, f>` split at its top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    split_top_at(s, ',')
}

/// `s` split at each `sep` outside brackets.
fn split_top_at(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if start < s.len() {
        parts.push(&s[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_encode_alike_compare_equal() {
        assert_eq!(comparable_key("&str"), "String");
        assert_eq!(comparable_key("std::string::String"), "String");
        assert_eq!(comparable_key("&'static str"), "String");
        assert_eq!(comparable_key("(u64, &str)"), "(u64,String)");
        assert_eq!(comparable_key("&[u8]"), "Vec<u8>");
        assert_eq!(comparable_key("&mut u64"), "u64");
        assert_eq!(comparable_key("&u64"), comparable_key("u64"));
        assert_eq!(comparable_key("Box<str>"), "String");
        assert_eq!(comparable_key("std::sync::Arc<str>"), "String");
        assert_eq!(comparable_key("Cow<'a, str>"), "String");
        assert_eq!(comparable_key("Box<[u8]>"), "Vec<u8>");
        assert_eq!(comparable_key("Rc<(u64, &str)>"), "(u64,String)");
        assert_eq!(comparable_key("Option<&'a str>"), "Option<String>");
        assert_eq!(
            comparable_key("HashMap<&str, Box<u64>>"),
            "HashMap<String,u64>"
        );
        assert_eq!(comparable_key("&String"), "String");
        // An array encodes as a tuple, not as a sequence.
        assert_eq!(comparable_key("[u8; 4]"), "[u8;4]");
        assert_ne!(comparable_key("[u8; 4]"), comparable_key("Vec<u8>"));
        assert_ne!(comparable_key("u32"), comparable_key("u64"));
        assert_ne!(comparable_key("u64"), comparable_key("String"));
        assert_ne!(comparable_key("Option<u64>"), comparable_key("u64"));
    }

    #[test]
    fn values_compare_past_option_and_paths() {
        assert_eq!(comparable_value("Option<crate::models::User>"), "User");
        assert_eq!(comparable_value("Vec < Option < u8 > >"), "Vec<Option<u8>>");
        assert_ne!(comparable_value("User"), comparable_value("Admin"));
    }

    #[test]
    fn the_first_disagreement_is_named_with_both_operations() {
        let a = OperationTypes {
            cache: "users",
            function: "app::find",
            file: "src/a.rs",
            line: 3,
            key_type: "u64",
            value_type: "User",
        };
        let evict = OperationTypes {
            function: "app::forget",
            line: 5,
            value_type: "",
            ..a
        };
        let other_cache = OperationTypes {
            cache: "names",
            value_type: "String",
            ..a
        };
        let unknown_key = OperationTypes {
            key_type: "",
            line: 8,
            ..a
        };
        assert_eq!(find_conflict(&[a, evict, other_cache, unknown_key]), None);
        let bad = OperationTypes {
            function: "app::find_name",
            line: 9,
            value_type: "String",
            ..a
        };
        let c = find_conflict(&[a, evict, bad]).expect("conflict");
        assert_eq!(c.what, "value");
        assert_eq!(c.first, "app::find (src/a.rs:3)");
        assert_eq!(c.second, "app::find_name (src/a.rs:9)");
    }
}
