//! The static description of one annotated function, built by generated code.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cache::Cache;

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
    /// Grace override for entries this function writes (and so for serving them stale).
    pub grace: Option<Duration>,
    /// Tags carried by every entry this function writes (`tags = [..]`).
    pub tags: &'static [&'static str],
    /// Soft timeout override (`timeout = ".."`).
    pub timeout: Option<Duration>,
    /// Hard timeout override (`hard_timeout = ".."`).
    pub hard_timeout: Option<Duration>,
    /// Eager refresh override (`eager_refresh = 0.8`).
    pub eager_refresh: Option<f64>,
    /// The caches as the last scoped manager that ran this operation resolved them.
    pub(crate) resolved: ResolvedCaches,
    /// The caches in the global manager (`None` inside: they could not be resolved).
    pub(crate) global_caches: std::sync::OnceLock<Option<Box<[Cache]>>>,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("kind", &self.kind)
            .field("caches", &self.caches)
            .field("function", &self.function)
            .field("module", &self.module)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("value_type", &self.value_type)
            .field("ttl", &self.ttl)
            .field("grace", &self.grace)
            .field("tags", &self.tags)
            .field("timeout", &self.timeout)
            .field("hard_timeout", &self.hard_timeout)
            .field("eager_refresh", &self.eager_refresh)
            .finish_non_exhaustive()
    }
}

/// An operation's caches in one manager, remembered so a call does not look its cache names
/// up again: the hot path is one read lock and one `Arc` clone.
pub(crate) struct ResolvedCaches(RwLock<Option<(u64, Arc<[Cache]>)>>);

impl ResolvedCaches {
    const fn new() -> Self {
        Self(RwLock::new(None))
    }

    /// The caches resolved by the manager with this id, if it was the last to resolve them.
    pub(crate) fn get(&self, manager: u64) -> Option<Arc<[Cache]>> {
        // Only ever holds a complete value: a poisoned lock still guards a consistent one.
        let slot = self.0.read().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|(id, _)| *id == manager)
            .map(|(_, caches)| caches.clone())
    }

    pub(crate) fn set(&self, manager: u64, caches: Arc<[Cache]>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some((manager, caches));
    }
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
            grace: None,
            tags: &[],
            timeout: None,
            hard_timeout: None,
            eager_refresh: None,
            resolved: ResolvedCaches::new(),
            global_caches: std::sync::OnceLock::new(),
        }
    }

    /// Sets the TTL override, in milliseconds (parsed from `ttl = "..."` at compile time).
    pub const fn with_ttl_millis(mut self, millis: u64) -> Self {
        self.ttl = Some(Duration::from_millis(millis));
        self
    }

    /// Sets the tags every entry this function writes carries (`tags = ["a", "b"]`).
    pub const fn with_tags(mut self, tags: &'static [&'static str]) -> Self {
        self.tags = tags;
        self
    }
}

impl Operation {
    /// Sets the grace override, in milliseconds (parsed from `grace = "..."` at compile time).
    pub const fn with_grace_millis(mut self, millis: u64) -> Self {
        self.grace = Some(Duration::from_millis(millis));
        self
    }

    /// `cache` as this operation uses it: with its `grace` in place of the cache's.
    pub(crate) fn view_of(&self, cache: Cache) -> Cache {
        match self.grace {
            Some(grace) => cache.with_options(crate::CacheOptions::new().grace(grace)),
            None => cache,
        }
    }

    /// Sets the soft timeout, in milliseconds (from `timeout = "..."`).
    pub const fn with_timeout_millis(mut self, millis: u64) -> Self {
        self.timeout = Some(Duration::from_millis(millis));
        self
    }

    /// Sets the hard timeout, in milliseconds (from `hard_timeout = "..."`).
    pub const fn with_hard_timeout_millis(mut self, millis: u64) -> Self {
        self.hard_timeout = Some(Duration::from_millis(millis));
        self
    }

    /// Sets the eager refresh point, a fraction of the TTL checked at compile time.
    pub const fn with_eager_refresh(mut self, ratio: f64) -> Self {
        self.eager_refresh = Some(ratio);
        self
    }
}

/// An annotation's registration, collected with `inventory` so a manager can check that
/// every annotated cache resolves, and `declared_caches()` can list them.
#[derive(Debug)]
pub struct Declaration(pub &'static Operation);

inventory::collect!(Declaration);
