//! A typed cache's declaration (`cachet::caches!`), type-erased: its name, where it is
//! declared, its key and value types as written, and its own options and tags. Collected with
//! `inventory`, so a manager checks that every declared cache resolves and the inventory
//! lists them.

use crate::options::CacheOptions;

/// One cache declared with `cachet::caches!`, without its types: what the manager's check,
/// the inventory and annotated functions read. [`crate::TypedCache::declaration`] returns
/// it.
///
/// ```
/// use cache_core::{CacheDeclaration, CacheOptions, TypedCache};
/// use std::time::Duration;
///
/// static USERS: TypedCache<u64, String> = TypedCache::new(
///     CacheDeclaration::new("users", "USERS", module_path!(), file!(), line!(), "u64", "String")
///         .with_options(CacheOptions::new().ttl(Duration::from_secs(300))),
/// );
/// let declared = USERS.declaration();
/// assert_eq!((declared.name, declared.key_type, declared.value_type), ("users", "u64", "String"));
/// assert_eq!(declared.options.ttl, Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CacheDeclaration {
    /// The cache's name: the one configuration maps to a store (`[caches.users]`).
    pub name: &'static str,
    /// The declaration's own name, as written (`USERS`).
    pub ident: &'static str,
    /// `module_path!()` where it is declared.
    pub module: &'static str,
    /// `file!()` where it is declared.
    pub file: &'static str,
    /// `line!()` of the declaration.
    pub line: u32,
    /// The key type, as written.
    pub key_type: &'static str,
    /// The value type, as written.
    pub value_type: &'static str,
    /// The declaration's doc comment (empty when it has none).
    pub doc: &'static str,
    /// Its layer of the option set: over the configuration's options for the cache, under
    /// an annotation's and a call's.
    pub options: CacheOptions,
    /// Tags every entry written through it carries.
    pub tags: &'static [&'static str],
}

impl CacheDeclaration {
    /// A declaration with no doc, options or tags (`cachet::caches!` builds them).
    ///
    /// ```
    /// let d = cache_core::CacheDeclaration::new("users", "USERS", "app", "src/caches.rs", 3, "u64", "User");
    /// assert!(d.options == cache_core::CacheOptions::new() && d.tags.is_empty());
    /// ```
    pub const fn new(
        name: &'static str,
        ident: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
        key_type: &'static str,
        value_type: &'static str,
    ) -> Self {
        Self {
            name,
            ident,
            module,
            file,
            line,
            key_type,
            value_type,
            doc: "",
            options: CacheOptions::new(),
            tags: &[],
        }
    }

    /// Sets the doc comment.
    ///
    /// ```
    /// let d = cache_core::CacheDeclaration::new("users", "USERS", "app", "f.rs", 1, "u64", "User").with_doc("Users by id.");
    /// assert_eq!(d.doc, "Users by id.");
    /// ```
    #[must_use]
    pub const fn with_doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    /// Sets the declaration's options.
    ///
    /// ```
    /// use std::time::Duration;
    /// let d = cache_core::CacheDeclaration::new("users", "USERS", "app", "f.rs", 1, "u64", "User")
    ///     .with_options(cache_core::CacheOptions::new().grace(Duration::from_secs(60)));
    /// assert_eq!(d.options.grace, Some(Duration::from_secs(60)));
    /// ```
    #[must_use]
    pub const fn with_options(mut self, options: CacheOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the tags every entry written through the declaration carries.
    ///
    /// ```
    /// let d = cache_core::CacheDeclaration::new("users", "USERS", "app", "f.rs", 1, "u64", "User").with_tags(&["people"]);
    /// assert_eq!(d.tags, ["people"]);
    /// ```
    #[must_use]
    pub const fn with_tags(mut self, tags: &'static [&'static str]) -> Self {
        self.tags = tags;
        self
    }

    /// The declaration's path, as a user finds it: `module::IDENT`.
    pub(crate) fn path(&self) -> String {
        format!("{}::{}", self.module, self.ident)
    }
}

/// A declaration's registration, collected with `inventory` (`cachet::caches!` submits one
/// per declared cache).
#[derive(Debug)]
pub struct TypedDeclaration(pub &'static CacheDeclaration);

inventory::collect!(TypedDeclaration);

/// Every cache declared with `cachet::caches!` linked into this program, sorted by file and
/// line: what `cachet inventory` lists as declarations.
///
/// ```
/// for declared in cache_core::typed_caches() {
///     println!("{} = {:?}: {} => {}", declared.ident, declared.name, declared.key_type, declared.value_type);
/// }
/// ```
pub fn typed_caches() -> Vec<CacheDeclaration> {
    typed_declarations().into_iter().copied().collect()
}

/// [`typed_caches`], borrowed.
pub(crate) fn typed_declarations() -> Vec<&'static CacheDeclaration> {
    let mut all: Vec<&'static CacheDeclaration> = inventory::iter::<TypedDeclaration>
        .into_iter()
        .map(|TypedDeclaration(d)| *d)
        .collect();
    all.sort_by(|a, b| (a.file, a.line, a.ident).cmp(&(b.file, b.line, b.ident)));
    all.dedup_by(|a, b| std::ptr::eq(*a, *b));
    all
}
