//! `cache_name = EXPR`: a cache name computed from the arguments. Each distinct name gets
//! its own operation (the annotation's, for that one cache), made once and kept for the
//! life of the process, as Spring's cache managers keep a cache per name they were asked
//! for: the set of names should be bounded.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::operation::Operation;

/// The operations of one annotation with a computed cache name, by name. A `static` in
/// generated code.
pub struct NamedOps(Mutex<Option<HashMap<String, &'static Operation>>>);

impl NamedOps {
    /// No name yet.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        NamedOps(Mutex::new(None))
    }

    /// The operation of `base` (an annotation without cache names) for the cache `name`.
    pub fn get(&self, base: &'static Operation, name: &str) -> &'static Operation {
        // Only ever holds complete entries: a poisoned lock still guards a consistent map.
        let mut ops = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let ops = ops.get_or_insert_with(HashMap::new);
        if let Some(op) = ops.get(name) {
            return op;
        }
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let caches: &'static [&'static str] = Box::leak(Box::new([name]));
        let mut op = Operation::new(
            base.kind,
            caches,
            base.function,
            base.module,
            base.file,
            base.line,
            base.value_type,
        )
        .with_options(base.options)
        .with_tags(base.tags);
        op.manager = base.manager;
        let op: &'static Operation = Box::leak(Box::new(op));
        ops.insert(name.to_owned(), op);
        op
    }
}

/// The name a `cache_name = EXPR` gives: any `AsRef<str>` (`String`, `&str`, `Cow<str>`).
pub fn cache_name<N: AsRef<str> + ?Sized>(name: &N) -> &str {
    name.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::OperationKind;

    static BASE: Operation =
        Operation::new(OperationKind::Cacheable, &[], "f", "m", "f.rs", 1, "u8");

    #[test]
    fn one_operation_per_name_made_once() {
        let named = NamedOps::new();
        let a = named.get(&BASE, "tenant-a");
        let b = named.get(&BASE, "tenant-b");
        assert_eq!(a.caches, ["tenant-a"]);
        assert_eq!(b.caches, ["tenant-b"]);
        assert!(std::ptr::eq(a, named.get(&BASE, "tenant-a")));
        assert_eq!(a.function, "f");
    }
}
