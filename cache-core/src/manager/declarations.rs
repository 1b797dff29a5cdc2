//! The caches annotated functions declare, and the check that a manager resolves them.

use std::collections::BTreeMap;

use super::CacheManager;
use crate::error::CacheError;
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
    /// The cached value's type as written in the function's signature.
    pub value_type: &'static str,
    /// Whether the annotation names its own manager (`manager = path`): its caches are
    /// resolved there, so building another manager does not check them.
    pub own_manager: bool,
}

/// Every cache name used by an annotated function linked into this program, sorted by
/// file and line.
///
/// ```
/// let all = cache_core::declared_caches();
/// # let _ = all;
/// ```
pub fn declared_caches() -> Vec<DeclaredCache> {
    let mut all: Vec<DeclaredCache> = inventory::iter::<Declaration>
        .into_iter()
        .flat_map(|Declaration(op)| {
            op.caches.iter().map(move |cache| DeclaredCache {
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
                value_type: op.value_type,
                own_manager: op.manager.is_some(),
            })
        })
        .collect();
    all.sort_by(|a, b| (a.file, a.line, a.cache).cmp(&(b.file, b.line, b.cache)));
    all.dedup();
    all
}

/// Fails when an annotated cache cannot be resolved; warns when functions declaring one
/// cache store different types.
pub(super) fn check(manager: &CacheManager) -> Result<(), CacheError> {
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
    let mut types: BTreeMap<&str, Vec<&DeclaredCache>> = BTreeMap::new();
    for d in declared.iter().filter(|d| d.annotation != "cache_evict") {
        types.entry(d.cache).or_default().push(d);
    }
    for (cache, users) in types {
        let normalized = |t: &str| t.split_whitespace().collect::<String>();
        if users
            .iter()
            .any(|u| normalized(u.value_type) != normalized(users[0].value_type))
        {
            let list: Vec<String> = users
                .iter()
                .map(|u| format!("{} -> {}", u.function, u.value_type))
                .collect();
            tracing::warn!(
                cache,
                functions = %list.join("; "),
                "functions sharing a cache store different types; a read as another type is a miss"
            );
        }
    }
    Ok(())
}
