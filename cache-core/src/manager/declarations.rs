//! The caches annotated functions declare, and the check that a manager resolves them and
//! that the functions sharing a cache agree on its key and value types.

use std::time::Duration;

use super::CacheManager;
use crate::error::CacheError;
use crate::inventory::{find_conflict, OperationTypes};
use crate::operation::{Declaration, OperationKind};

/// One cache name used by one annotated function.
///
/// ```
/// for declared in cache_core::declared_caches() {
///     println!("{} uses cache {} ({}:{})", declared.function, declared.cache, declared.file, declared.line);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeclaredCache {
    /// The cache name.
    pub cache: &'static str,
    /// The function's path (`module::function`).
    pub function: String,
    /// The source file.
    pub file: &'static str,
    /// The line of the function.
    pub line: u32,
    /// `cacheable`, `cacheable_many`, `cache_put` or `cache_evict`.
    pub annotation: &'static str,
    /// The cached value's type as written in the function's signature (a typed cache's:
    /// its declaration's).
    pub value_type: &'static str,
    /// Whether the annotation names its own manager (`manager = path`): its caches are
    /// resolved there, so building another manager does not check them.
    pub own_manager: bool,
    /// The key's type as written (the default key's, or `key = ..` over arguments; a typed
    /// cache's: its declaration's); empty when the key is another expression.
    pub key_type: &'static str,
    /// The typed cache's declaration (`USERS`, declared with `cachet::caches!`), or `None`
    /// for a string-named cache.
    pub typed: Option<&'static str>,
    /// The TTL the function's writes get from code (its annotation, else its typed cache's
    /// declaration); configuration may set one for the cache too.
    pub ttl: Option<Duration>,
    /// The grace period from code, as `ttl`.
    pub grace: Option<Duration>,
    /// The tags the function's writes carry (its annotation's and its declaration's).
    pub tags: Vec<&'static str>,
    /// Whether the write or eviction waits for a `cachet::transaction` to commit.
    pub after_commit: bool,
}

/// Every cache name used by an annotated function linked into this program, sorted by
/// file and line: what `cachet inventory` prints (it reads them from the sources).
///
/// ```
/// let all = cache_core::declared_caches();
/// # let _ = all;
/// ```
pub fn declared_caches() -> Vec<DeclaredCache> {
    let mut all: Vec<DeclaredCache> = inventory::iter::<Declaration>
        .into_iter()
        .flat_map(|Declaration(op)| {
            op.caches.iter().enumerate().map(move |(i, cache)| {
                let declaration = op.typed.get(i).copied();
                let options = declaration
                    .map_or(crate::options::CacheOptions::new(), |d| d.options)
                    .overlay(&op.options);
                let mut tags: Vec<&'static str> = op.tags.to_vec();
                tags.extend(declaration.map_or(&[][..], |d| d.tags));
                DeclaredCache {
                    cache,
                    function: format!("{}::{}", op.module, op.function),
                    file: op.file,
                    line: op.line,
                    annotation: match op.kind {
                        OperationKind::Cacheable => "cacheable",
                        OperationKind::Put => "cache_put",
                        OperationKind::CacheableMany => "cacheable_many",
                        OperationKind::Evict { .. } => "cache_evict",
                    },
                    value_type: declaration.map_or(op.value_type, |d| d.value_type),
                    key_type: declaration.map_or(op.key_type, |d| d.key_type),
                    typed: declaration.map(|d| d.ident),
                    ttl: options.ttl,
                    grace: options.grace,
                    tags,
                    after_commit: op.after_commit,
                    own_manager: op.manager.is_some(),
                }
            })
        })
        .collect();
    all.sort_by(|a, b| (a.file, a.line, a.cache).cmp(&(b.file, b.line, b.cache)));
    all.dedup();
    all
}

/// Fails when an annotated or declared cache cannot be resolved, or when two operations on
/// one cache disagree on its key type or its value type ([`crate::inventory::find_conflict`],
/// which `cachet check --src` runs too).
pub(super) fn check(manager: &CacheManager) -> Result<(), CacheError> {
    for typed in crate::declaration::typed_declarations() {
        if let Err(err) = manager.store_of(typed.name) {
            return Err(CacheError::UndeclaredCache {
                cache: typed.name.to_owned(),
                function: format!("{} (declared with `caches!`)", typed.path()),
                file: typed.file.to_owned(),
                line: typed.line,
                reason: err.to_string(),
            });
        }
    }
    let declared = declared_caches();
    for d in declared.iter().filter(|d| !d.own_manager) {
        if let Err(err) = manager.store_of(d.cache) {
            return Err(CacheError::UndeclaredCache {
                cache: d.cache.to_owned(),
                function: d.function.clone(),
                file: d.file.to_owned(),
                line: d.line,
                reason: err.to_string(),
            });
        }
    }
    // The declarations too: two declaring one cache with other types disagree.
    let typed: Vec<_> = crate::declaration::typed_declarations()
        .into_iter()
        .map(|d| (d, format!("caches! {}", d.path())))
        .collect();
    let ops: Vec<OperationTypes<'_>> = declared
        .iter()
        .map(|d| OperationTypes {
            cache: d.cache,
            function: &d.function,
            file: d.file,
            line: d.line,
            key_type: d.key_type,
            // An eviction stores nothing: its value type is not the cache's.
            value_type: if d.annotation == "cache_evict" {
                ""
            } else {
                d.value_type
            },
        })
        .chain(typed.iter().map(|(d, path)| OperationTypes {
            cache: d.name,
            function: path,
            file: d.file,
            line: d.line,
            key_type: d.key_type,
            value_type: d.value_type,
        }))
        .collect();
    match find_conflict(&ops) {
        Some(conflict) => Err(CacheError::TypeConflict(Box::new(conflict))),
        None => Ok(()),
    }
}
