//! Typed caches: a cache declared once with its key and value types (`cachet::caches!`),
//! so annotations naming it are checked by the compiler and programmatic calls need no
//! turbofish.
//!
//! A [`TypedCache`] holds no state: each call resolves its cache through the manager in
//! effect (the global one, or the scoped one inside `CacheManager::scope` or
//! `testing::with_manager`), exactly as a string name does, then applies the declaration's
//! options and tags ([`CacheDeclaration`]). `check` holds the traits generated code checks
//! keys and values with.

pub(crate) mod check;
mod many;
mod single;

use std::marker::PhantomData;

use crate::cache::Cache;
use crate::declaration::CacheDeclaration;
use crate::error::CacheError;

/// A cache declared with its key type `K` and value type `V`: `cachet::caches!` makes one
/// `static` per declaration. Its methods are [`Cache`]'s, typed: a key is anything `K`
/// borrows as (`&str` for a `String` key, as `HashMap::get` takes), a value is a `V`.
///
/// ```
/// use cache_core::{CacheDeclaration, CacheManager, TypedCache};
///
/// static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new(
///     "users", "USERS", module_path!(), file!(), line!(), "u64", "String",
/// ));
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let memory = || CacheManager::builder().store("main", cache_core::StoreBuilder::new().l1(cache_core::store::MapTier::new())).build().unwrap();
/// cache_core::testing::with_manager(memory(), async {
///     USERS.set(&42, &"Ada".to_string()).await.unwrap();
///     let user = USERS.get(&42).await.unwrap();      // no turbofish: an `Option<String>`
///     assert_eq!(user.as_deref(), Some("Ada"));
/// })
/// .await;
/// # });
/// ```
pub struct TypedCache<K: ?Sized, V> {
    declaration: CacheDeclaration,
    types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V> std::fmt::Debug for TypedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypedCache")
            .field(&self.declaration)
            .finish()
    }
}

impl<K: ?Sized, V> TypedCache<K, V> {
    /// The typed cache of a declaration (`cachet::caches!` writes this).
    ///
    /// ```
    /// use cache_core::{CacheDeclaration, TypedCache};
    /// static ORDERS: TypedCache<(u64, String), u32> = TypedCache::new(CacheDeclaration::new(
    ///     "orders", "ORDERS", module_path!(), file!(), line!(), "(u64, String)", "u32",
    /// ));
    /// assert_eq!(ORDERS.name(), "orders");
    /// ```
    pub const fn new(declaration: CacheDeclaration) -> Self {
        Self {
            declaration,
            types: PhantomData,
        }
    }

    /// The cache's name (what configuration maps to a store).
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "String"));
    /// assert_eq!(USERS.name(), "users");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.declaration.name
    }

    /// The declaration: where it is, its types as written, its options and tags.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "String"));
    /// assert_eq!(USERS.declaration().ident, "USERS");
    /// ```
    pub const fn declaration(&self) -> &CacheDeclaration {
        &self.declaration
    }

    /// The cache in the manager in effect, as a view with the declaration's options and
    /// tags: a plain [`Cache`], for what the typed methods do not cover.
    ///
    /// ```
    /// # use cache_core::{CacheDeclaration, TypedCache};
    /// # static USERS: TypedCache<u64, String> = TypedCache::new(CacheDeclaration::new("users", "USERS", "m", "f.rs", 1, "u64", "String"));
    /// let users = cache_core::testing::with_manager_sync(cache_core::CacheManager::none(), || USERS.cache()).unwrap();
    /// assert_eq!(users.name(), "users");
    /// ```
    pub fn cache(&self) -> Result<Cache, CacheError> {
        crate::global::cache(self.declaration.name).map(|cache| view_of(&self.declaration, cache))
    }
}

/// `cache` with a declaration's options and tags.
pub(crate) fn view_of(declaration: &CacheDeclaration, cache: Cache) -> Cache {
    let cache = if declaration.options == crate::options::CacheOptions::new() {
        cache
    } else {
        cache.with_options(declaration.options)
    };
    cache.tagged(declaration.tags)
}
