//! The static description of one annotated function, built by generated code.

use std::sync::{Arc, RwLock};

use crate::cache::Cache;
use crate::declaration::CacheDeclaration;
use crate::engine::Engine;
use crate::hit::HitPath;
use crate::options::CacheOptions;

/// What an annotation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// `#[cacheable]`: look up, run on a miss, store.
    Cacheable,
    /// `#[cache_put]`: always run, store.
    Put,
    /// `#[cacheable_many]`: look many keys up, run once for the missing ones, store each.
    CacheableMany,
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
    /// The cached value's type as written (for the inventory and the type check).
    pub value_type: &'static str,
    /// The key's type as written, when the signature shows it (empty otherwise; a typed
    /// cache's comes from its declaration).
    pub key_type: &'static str,
    /// The annotation's layer of the option set (`ttl`, `grace`, `timeout`, ...): its
    /// caches are resolved as views with these options over their own.
    pub options: CacheOptions,
    /// Tags carried by every entry this function writes (`tags = [..]`).
    pub tags: &'static [&'static str],
    /// `manager = path`: the manager this annotation's caches are resolved in, in place of
    /// the global (or a `testing` scope's) one. Type-erased (a `CacheManager` inside), so this
    /// module needs no import of the manager's.
    pub manager: Option<fn() -> &'static (dyn std::any::Any + Send + Sync)>,
    /// The typed caches' declarations, one per cache in `caches` when the annotation names
    /// typed caches (`#[cacheable(USERS)]`); empty for string names.
    pub typed: &'static [&'static CacheDeclaration],
    /// `after_commit` (`cache_put`, `cache_evict`): inside [`crate::transaction`], the write
    /// or eviction waits for the transaction to commit.
    pub after_commit: bool,
    /// The caches as the last scoped manager that ran this operation resolved them.
    pub(crate) resolved: ResolvedCaches,
    /// The caches in the global manager (`None` inside: they could not be resolved).
    pub(crate) global_caches: std::sync::OnceLock<Option<Resolution>>,
    /// `manager = path`: the caches in that manager, resolved once, with the manager's
    /// address and id (that manager is a `static`, so a hit borrows them as it does the
    /// global manager's, after comparing the address the path hands over).
    pub(crate) own_caches: std::sync::OnceLock<(usize, u64, Resolution)>,
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
            .field("key_type", &self.key_type)
            .field("options", &self.options)
            .field("tags", &self.tags)
            .field("own_manager", &self.manager.is_some())
            .field("typed", &self.typed)
            .field("after_commit", &self.after_commit)
            .finish_non_exhaustive()
    }
}

/// An operation's caches in a manager that never changes (the global one, or that of
/// `manager = path`), resolved once: the caches, and the first one's hit path, which a hit
/// reads through one pointer.
pub(crate) struct Resolution {
    pub(crate) caches: Box<[Engine]>,
    /// The first cache's hit path; `None` without caches or without L1.
    pub(crate) hit: Option<HitPath>,
}

impl Resolution {
    pub(crate) fn new(caches: &[Engine]) -> Self {
        Resolution {
            hit: caches.first().and_then(HitPath::of),
            caches: caches.into(),
        }
    }
}

/// An operation's caches in one manager, remembered so a call does not look its cache names
/// up again: the hot path is one read lock and one `Arc` clone. On cache lines of its own:
/// scoped calls write its lock, which must not share a line with the record the global
/// manager's hits read next to it.
#[repr(align(128))]
pub(crate) struct ResolvedCaches(RwLock<Option<(u64, Arc<[Engine]>)>>);

impl ResolvedCaches {
    const fn new() -> Self {
        Self(RwLock::new(None))
    }

    /// The caches resolved by the manager with this id, if it was the last to resolve them.
    pub(crate) fn get(&self, manager: u64) -> Option<Arc<[Engine]>> {
        // Only ever holds a complete value: a poisoned lock still guards a consistent one.
        let slot = self.0.read().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|(id, _)| *id == manager)
            .map(|(_, caches)| caches.clone())
    }

    pub(crate) fn set(&self, manager: u64, caches: Arc<[Engine]>) {
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
            key_type: "",
            options: CacheOptions::new(),
            tags: &[],
            manager: None,
            typed: &[],
            after_commit: false,
            resolved: ResolvedCaches::new(),
            global_caches: std::sync::OnceLock::new(),
            own_caches: std::sync::OnceLock::new(),
        }
    }

    /// Sets the annotation's options (generated code builds them with the option set's
    /// `const` setters, one per option written).
    pub const fn with_options(mut self, options: CacheOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the manager the caches are resolved in (`manager = path`): `manager` returns a
    /// `&'static CacheManager`.
    pub const fn with_manager(
        mut self,
        manager: fn() -> &'static (dyn std::any::Any + Send + Sync),
    ) -> Self {
        self.manager = Some(manager);
        self
    }

    /// Names the typed caches' declarations (`#[cacheable(USERS)]`): one per cache name, in
    /// order. Their options and tags apply under the annotation's.
    pub const fn with_typed(mut self, typed: &'static [&'static CacheDeclaration]) -> Self {
        self.typed = typed;
        self
    }

    /// Sets the key's type as written (the inventory and the type check read it).
    pub const fn with_key_type(mut self, key_type: &'static str) -> Self {
        self.key_type = key_type;
        self
    }

    /// Defers the operation's write or eviction to the commit of the [`crate::transaction`]
    /// in effect (`after_commit`).
    pub const fn after_commit(mut self) -> Self {
        self.after_commit = true;
        self
    }

    /// Sets the tags every entry this function writes carries (`tags = ["a", "b"]`).
    pub const fn with_tags(mut self, tags: &'static [&'static str]) -> Self {
        self.tags = tags;
        self
    }
}

impl Operation {
    /// `cache` as this operation uses it: a view with the annotation's options over the
    /// cache's own, so every setting reaches the call by one route.
    pub(crate) fn view_of(&self, cache: Cache) -> Cache {
        if self.options.is_empty() {
            cache
        } else {
            cache.with_options(self.options)
        }
    }
}

/// An annotation's registration, collected with `inventory` so a manager can check that
/// every annotated cache resolves, and `declared_caches()` can list them.
#[derive(Debug)]
pub struct Declaration(pub &'static Operation);

inventory::collect!(Declaration);
