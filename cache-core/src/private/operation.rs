//! The static description of one annotated function, built by generated code.

use std::time::Duration;

/// What an annotation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// `#[cacheable]`: look up, run on a miss, store.
    Cacheable,
    /// `#[cache_put]`: always run, store.
    Put,
    /// `#[cache_evict]`: run, then (or before) evict.
    Evict {
        /// Evict every entry of the caches, not one key.
        all_entries: bool,
        /// Evict before running the function (even if it then fails).
        before_invocation: bool,
    },
}

/// One annotated function: its caches, options and where it is. A `static` in generated code.
#[derive(Debug)]
pub struct Operation {
    /// What it does.
    pub kind: OperationKind,
    /// The cache names, in order.
    pub caches: &'static [&'static str],
    /// The function's name.
    pub function: &'static str,
    /// `module_path!()` of the function.
    pub module: &'static str,
    /// `file!()` of the function.
    pub file: &'static str,
    /// `line!()` of the function.
    pub line: u32,
    /// The cached value's type as written (for the mixed-types warning).
    pub value_type: &'static str,
    /// TTL override for entries this function writes.
    pub ttl: Option<Duration>,
}

impl Operation {
    /// An operation with no options set.
    pub const fn new(
        kind: OperationKind,
        caches: &'static [&'static str],
        function: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
        value_type: &'static str,
    ) -> Self {
        Self {
            kind,
            caches,
            function,
            module,
            file,
            line,
            value_type,
            ttl: None,
        }
    }

    /// Sets the TTL override, in milliseconds (parsed from `ttl = "..."` at compile time).
    pub const fn with_ttl_millis(mut self, millis: u64) -> Self {
        self.ttl = Some(Duration::from_millis(millis));
        self
    }
}

/// An annotation's registration, collected with `inventory` so a manager can check that
/// every annotated cache resolves, and `declared_caches()` can list them.
#[derive(Debug)]
pub struct Declaration(pub &'static Operation);

inventory::collect!(Declaration);
