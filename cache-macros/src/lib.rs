//! Attribute macros of [cachet](https://docs.rs/cachet): `#[cacheable]`, `#[cache_put]`,
//! `#[cache_evict]` and `#[cache_config]`.
//!
//! Use them through the `cachet` crate, which re-exports and documents them; the examples
//! here are not run because a proc-macro crate cannot depend on `cachet`.
//!
//! Phases, modelled on serde_derive: `internals` reads and checks (`attr`: one table of
//! every option, parsed by kind; `check`: the options against each other and the function;
//! `ast`: the typed plan of each annotation; `ctxt`: every error collected), `expand`
//! generates the code, `function` ties them together for one function (stacked
//! attributes included, and a body that does not parse kept as written), `config`
//! handles `#[cache_config]`.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

use proc_macro::TokenStream;

mod caches;
mod config;
mod expand;
mod function;
mod impl_block;
mod internals;
mod key_type;
mod many;
mod type_text;
mod typed;

use internals::attr::Macro;

/// Caches the function's result: on a hit the cached value is returned and the body does
/// not run; on a miss the body runs and its value is stored.
///
/// ```ignore
/// use cachet::cacheable;
///
/// #[cacheable("users")]                       // key: the argument, `id`
/// async fn find_user(id: u64) -> Result<User, DbError> { db::load(id).await }
///
/// #[cacheable("users", skip(db), ttl = "30s", condition = id > 0, unless = result.admin)]
/// fn lookup(db: &Db, id: u64) -> User { db.user(id) }
/// ```
///
/// Cache names come first (several: looked up in order, stored into all), or paths to typed
/// caches declared with [`caches!`] (`#[cacheable(USERS)]`), whose key and value types are
/// then checked by the compiler. Options:
///
/// - `key = EXPR`: the key, any expression over the arguments. Default: no argument → the
///   unit key, one → that argument, several → the tuple of them in order; `self` is never
///   part of it. Key values must implement `serde::Serialize`.
/// - `skip(a, b)`: leaves arguments out of the default key (they need not be `Serialize`).
/// - `condition = EXPR` (over the arguments): when false, the cache is bypassed.
/// - `unless = EXPR` (over `result: &T`): when true, the value is returned but not stored.
/// - `ttl = "5m"`: the TTL of the entries this function writes.
/// - `tags = ["catalog", "sale"]`: tags carried by the entries this function writes, so
///   `cache.delete_by_tag("catalog")` deletes them (in every tier and instance).
/// - `crate = "path"`: where cachet is, when not at `::cachet`.
/// - `timeout = "200ms"`: soft timeout (overrides the cache's `timeout`). With a stale value
///   within grace, a call slower than this is answered with the stale value, and the
///   function finishes in the background, storing its value. Only *detachable* functions
///   (below) finish in the background; others are waited for.
/// - `hard_timeout = "2s"` (overrides the cache's `hard_timeout`): an `async fn` returning
///   `Result<T, E>` with `E: From<cachet::CacheError>` returns
///   `Err(E::from(CacheError::Timeout { .. }))` after this long (or the stale value within
///   grace); other return types, and plain fns, wait for the function.
/// - `eager_refresh = 0.8` (overrides the cache's): a hit past 80% of the entry's TTL
///   returns the cached value and refreshes it once in the background (detachable
///   functions only).
/// - `detach = false`: keeps a detachable-looking function in its caller, e.g. when its
///   future is not `Send`. (`detach = true` is an error on a function that is not
///   detachable, naming why.)
///
/// A function is *detachable* when it has no receiver, no generic parameters, no argument
/// whose type is a reference, has a lifetime or is `impl Trait`, and no `unless` that uses
/// an argument: its body owns everything it uses, so it can outlive the call. An `async
/// fn`'s future must then be `Send` (a plain fn's arguments and return value); if not, the
/// build fails with "cannot be sent between threads safely": add `detach = false`. A plain
/// fn finishing in the background runs on a blocking thread of cachet's own runtime.
///
/// ```ignore
/// #[cacheable("quotes", timeout = "200ms", hard_timeout = "2s", eager_refresh = 0.8)]
/// async fn quote(symbol: String) -> Result<Quote, ApiError> { api::quote(&symbol).await }
/// ```
///
/// For `Result<T, E>` only `Ok(T)` is cached (as `T`). `Option<T>` is unwrapped as Spring
/// unwraps `Optional`: `Some(v)` is stored as `v` (the entry a `cache.get::<T>` or a
/// `#[cache_put]` of a `T` reads), `None` as the null marker (unless `allow_null_values =
/// false`). The shape is chosen by the resolved type, so aliases such as `anyhow::Result<T>`
/// work.
///
/// Works on `async fn` and `fn`, free functions and methods (`&self`, `&mut self`, `self`),
/// generic functions, and functions with `impl Trait` arguments (which must then be
/// skipped or left out of `key`). The function keeps its attributes, docs, visibility and
/// signature; `return` and `?` in the body behave as before.
///
/// The key and `condition` are evaluated before the body runs, so the body may consume the
/// arguments. `unless` (and, in `cache_put`/`cache_evict`, a key over `result`) runs after
/// it, so it may use `result` and `Copy` arguments, but not arguments the body consumed.
///
/// Stacking (`#[cache_evict("a")] #[cache_put("b")] fn ..`): the annotations act as one group,
/// as Spring's `@Caching` does, whatever their written order. Evictions run on every call, hit
/// or not; a `#[cache_put]` in the group makes the function run on every call, so its
/// `#[cacheable]`s never answer from the cache (they store the function's value). The first
/// attribute expands the ones under it itself.
///
/// - `key_generator = path::to::fn` (Spring's `KeyGenerator`): the key is what the function
///   returns (any `Serialize` value) when called with a reference to each argument of the
///   default key (all but `self`, after `skip`), in order:
///   `fn by_tenant(tenant: &str, id: &u64) -> String`. Not with `key`.
/// - `manager = path::TO_STATIC` (Spring's `cacheManager`): the caches are resolved in this
///   manager, a `static` that dereferences to a `CacheManager` (a `LazyLock<CacheManager>`),
///   in place of the global one (and of a `testing` scope's). Building another manager does
///   not check these caches; one that cannot be resolved is warned about at the call, which
///   runs uncached.
/// - `cache_name = EXPR` (in place of the names; Spring's `CacheResolver`): the one cache's
///   name, computed from the arguments before the call (any `AsRef<str>`), as in
///   `#[cacheable(cache_name = format!("tenant-{tenant}"), skip(tenant))]`. Each distinct
///   name is resolved once and kept for the life of the process, so the set of names should be
///   bounded; these caches are not checked when a manager is built.
///
/// On an `impl` block, `#[cacheable("users", ..)]` caches every method that can be (Spring's
/// `@Cacheable` on a class), each as if annotated on its own. Left as written, by design:
/// methods without a `self` receiver (constructors), `&mut self` and `mut self` methods (they
/// change what they would be cached for), methods returning nothing, `()`, a reference or
/// `impl Trait`, `const fn`s, and methods with a cachet attribute of their own (it wins).
/// `key`, `key_generator`, `skip`, `condition`, `unless` and `ttl_from` are a compile error on
/// the block: they belong on a method. Under `#[cache_config(cache = "users")]` the block's
/// `#[cacheable]` may omit the names.
///
/// ```ignore
/// #[cacheable("repo", ttl = "5m")]
/// impl Repo {
///     async fn find(&self, id: u64) -> Option<User> { .. }     // cached, key `id`
///     async fn save(&mut self, user: User) { .. }             // left as written
/// }
/// ```
///
/// Misuse is a compile error at the offending token, e.g. an argument in the default key
/// that is not `Serialize`:
///
/// ```text
/// error[E0277]: argument `db` cannot be part of the cache key of `find_user`: `&Db` does not implement `serde::Serialize`
///   |
/// 6 | async fn find_user(db: &Db, id: u64) -> Option<String> {
///   |                    ^^ `db` is in the default key of `find_user`, so it must be `Serialize`
///   = note: leave it out of the key with `skip(db)`, or name the key with `key = ..`
/// ```
#[proc_macro_attribute]
pub fn cacheable(args: TokenStream, item: TokenStream) -> TokenStream {
    let item: proc_macro2::TokenStream = item.into();
    // On an `impl` block: every method that can be cached is (`impl_block.rs`).
    if let Ok(imp) = syn::parse2::<syn::ItemImpl>(item.clone()) {
        return impl_block::expand_impl(args.into(), imp).into();
    }
    function::expand_attr(Macro::Cacheable, args.into(), item).into()
}

/// Always runs the function, then stores its result (Spring's `@CachePut`).
///
/// ```ignore
/// use cachet::cache_put;
///
/// #[cache_put("users", key = result.id)]      // the key may use `result`, the new value
/// async fn save_user(user: NewUser) -> Result<User, DbError> { db::insert(user).await }
/// ```
///
/// Options as [`macro@cacheable`]: `key` (which may also use `result`), `skip`,
/// `key_generator`, `manager`, `condition`, `unless`, `ttl`, `tags`, `crate`. A key that does not use `result` is computed from the
/// arguments before the function runs.
///
/// `after_commit`: inside `cachet::transaction(async { .. })`, the value is stored only once
/// the transaction's future returns `Ok` (and never if it returns `Err` or panics); outside
/// one, it is stored at once.
///
/// The cache may be a typed cache declared with [`caches!`] (`#[cache_put(USERS, key =
/// user.id)]`): the key and the stored value are then checked against its declaration.
#[proc_macro_attribute]
pub fn cache_put(args: TokenStream, item: TokenStream) -> TokenStream {
    function::expand_attr(Macro::Put, args.into(), item.into()).into()
}

/// Evicts an entry (or all entries) of the caches when the function succeeds, or before it
/// runs (Spring's `@CacheEvict`).
///
/// ```ignore
/// use cachet::cache_evict;
///
/// #[cache_evict("users", key = id)]           // after success (`Ok` or a plain value)
/// async fn delete_user(id: u64) -> Result<(), DbError> { db::delete(id).await }
///
/// #[cache_evict("users", all_entries, before_invocation)]
/// async fn reload_all() { db::reload().await }
/// ```
///
/// Options: `key`, `skip`, `key_generator`, `manager`, `cache_name`, `condition`, `crate` as
/// for [`macro@cacheable`] (after the call, the key may use `result`); `all_entries` evicts
/// every entry instead of one key; `before_invocation` evicts before the function runs, even
/// if it then fails. Without `before_invocation`, `condition` may use `result` (Spring's
/// `#result`): it is then evaluated after the call, and nothing is evicted when it is false,
/// e.g. `#[cache_evict("users", key = id, condition = *result)]` on a `fn delete(id: u64) ->
/// bool`; it may use `Copy` arguments, not ones the body consumed.
///
/// `after_commit` evicts, inside `cachet::transaction(async { .. })`, only once the
/// transaction's future returns `Ok` (never if it returns `Err` or panics), so a read made
/// before the commit cannot put the old value back after it; outside a transaction it evicts
/// at once.
///
/// ```ignore
/// #[cache_evict(USERS, after_commit)]          // a typed cache: the key is checked too
/// async fn rename(tx: &mut Tx, id: u64, name: &str) -> Result<(), DbError> { .. }
///
/// cachet::transaction(async {
///     let mut tx = db.begin().await?;
///     rename(&mut tx, 42, "Ada").await?;
///     tx.commit().await?;                      // then the eviction applies
///     Ok::<_, DbError>(())
/// }).await?;
/// ```
#[proc_macro_attribute]
pub fn cache_evict(args: TokenStream, item: TokenStream) -> TokenStream {
    function::expand_attr(Macro::Evict, args.into(), item.into()).into()
}

/// Gives the cachet attributes of an `impl` block's methods a default cache name (Spring's
/// `@CacheConfig`); a method's own names win.
///
/// ```ignore
/// use cachet::{cache_config, cacheable, cache_evict};
///
/// #[cache_config(cache = "users")]            // or cache = ["a", "b"]; crate = "path"
/// impl UserRepo {
///     #[cacheable]
///     async fn find(&self, id: u64) -> Option<User> { self.db.find(id).await }
///
///     #[cache_evict(key = id)]
///     async fn delete(&self, id: u64) { self.db.delete(id).await }
/// }
/// ```
#[proc_macro_attribute]
pub fn cache_config(args: TokenStream, item: TokenStream) -> TokenStream {
    config::expand_config(args.into(), item.into()).into()
}

/// Caches a function loading many keys at once, one entry per key: on a call, the keys
/// already cached are answered from the cache, and the body runs once with only the missing
/// ones; what it returns is stored, one entry per key, and merged with the hits.
///
/// ```ignore
/// use std::collections::HashMap;
/// use cachet::cacheable_many;
///
/// #[cacheable_many("users")]                     // the entries `find_user(42)` reads
/// async fn load_users(ids: Vec<u64>) -> Result<HashMap<u64, User>, DbError> {
///     db::users_by_ids(&ids).await               // `ids`: only the missing keys
/// }
///
/// #[cacheable_many("users", skip(db), ttl = "5m")]
/// async fn users_in(db: &Db, ids: &[u64]) -> Vec<(u64, User)> { db.users(ids).await }
/// ```
///
/// - The keys argument is the one argument not left out with `skip(..)`: a `Vec<K>` or a
///   `&[K]`. Each key is encoded as `#[cacheable]` encodes a one-argument key, so the
///   entries are those of `#[cacheable("users")] async fn find_user(id: u64)`.
/// - The result is a `HashMap<K, V>` or a `Vec<(K, V)>` (in the order of the keys asked
///   for), or a `Result` of either: only `Ok` is cached. Keys the body does not return are
///   not stored and are missing from the answer.
/// - Options: `skip(..)`, `ttl`, `grace`, `crate`. One cache name.
/// - Concurrent callers share the loads key by key: a `#[cacheable]` call on a key being
///   loaded waits for the batch and takes its value.
/// - The cache's options apply as to `Cache::get_or_set_many`: every entry is written as a
///   single call writes it, but the distributed lock is not taken and the soft `timeout` and
///   `eager_refresh` do not apply (the README's batch section says why).
///
/// Misuse (no cache name, a plain `fn`, no or several keys arguments, a keys argument that
/// is neither `Vec<K>` nor `&[K]`) is a compile error at the offending token.
#[proc_macro_attribute]
pub fn cacheable_many(args: TokenStream, item: TokenStream) -> TokenStream {
    many::expand_attr(args.into(), item.into()).into()
}

/// Declares typed caches: each a `static` [`TypedCache<K, V>`] with its key type `K`, value
/// type `V` and name, so annotations naming it (`#[cacheable(USERS)]`) are checked by the
/// compiler, and programmatic calls need no turbofish (`USERS.get(&42).await?`).
///
/// ```ignore
/// cachet::caches! {
///     /// Users by id.
///     pub USERS: u64 => User = "users";
///     /// Orders by customer and reference, kept 5 minutes, served stale up to an hour.
///     pub ORDERS: (u64, String) => Order = "orders", ttl = "5m", grace = "1h", tags = ["orders"];
/// }
/// ```
///
/// - The name (`"users"`) is the cache's: configuration maps it to a store as any other
///   (`[caches.users]`), and string-named code (`cachet::cache("users")`) reaches the same
///   entries.
/// - Options after the name are the declaration's layer of the option set: over the
///   configuration's for that cache, under an annotation's and a call's. `ttl`, `grace`,
///   `tags`, `timeout`, `hard_timeout`, `eager_refresh`, `tti`, `jitter`, `l1_ttl`,
///   `wait_timeout`, `background_l2_writes`, `skip_l2_read`, `skip_l2_write`, `skip_bus`,
///   `crate`.
/// - Each declaration is registered: building a manager fails when one cannot be resolved,
///   and `cachet::declared_caches()` / `cachet inventory` list them.
///
/// [`TypedCache<K, V>`]: https://docs.rs/cachet/latest/cachet/struct.TypedCache.html
#[proc_macro]
pub fn caches(input: TokenStream) -> TokenStream {
    caches::expand_caches(input.into()).into()
}
