//! An administration endpoint over HTTP, like Spring Boot's `/actuator/caches`: list the
//! caches with their store and counters, clear a cache, delete one entry. An
//! [`axum::Router`] the application mounts wherever it likes, behind its own
//! authentication: these routes check nothing themselves.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /caches` | 200, `{"caches": [CACHE, ...]}`: every cache the manager knows ([`CacheManager::caches`]) |
//! | `GET /caches/{name}` | 200, `CACHE` as the manager resolves the name |
//! | `DELETE /caches/{name}` | 200, `{"cache", "store", "cleared": true}`: every entry of the cache, in every tier and on every instance |
//! | `DELETE /caches/{name}/{key}` | 200, `{"cache", "store", "key", "deleted": true}`: the entry under that key text, in every tier and on every instance |
//!
//! A `CACHE` is `{"name", "store": {"name", "prefix", "shared"}, "stats": {"hits", "misses",
//! "l1_hits", "l2_hits", "puts", "evictions", "stale", "errors", "hit_ratio"}}`, `shared`
//! being the shared tier's description (e.g. `redis redis://127.0.0.1:6379/0`, never with a
//! password) or `null` for an in-process store.
//!
//! A cache the manager does not know ([`CacheManager::knows_cache`]) is a 404; a shared
//! tier that fails while clearing or deleting is a 502; both with a JSON body
//! `{"error": "..."}` in plain words.
//!
//! # Keys in paths
//!
//! `{key}` is the key's *text*: what cachet's key encoding makes of the value (see
//! [`crate::key`]), the part of a stored key after `{prefix}:{cache}:`. It is what a user
//! would type: `42` for `42u64`, `alice` for `"alice"`, `42:alice` for the tuple
//! `(42, "alice")`. The path segment is percent-decoded first, so a key text holding a
//! `/`, `%`, `?`, `#` or space is sent percent-encoded (`a/b` → `a%2Fb`); a string holding
//! one of the key encoding's reserved characters has it escaped with `\` in its text
//! (`"a:b"` → `a\:b`, sent as `a%5C:b`). `cachet get` and `cachet delete` take the same
//! text.
//!
//! ```
//! use cache_core::{http, CacheManager};
//!
//! let manager = CacheManager::none();
//! // Mounted under /admin, behind the application's own auth layer:
//! let app: axum::Router = axum::Router::new().nest("/admin", http::router_for(manager));
//! # let _ = app;
//! ```

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::cache::Cache;
use crate::error::CacheError;
use crate::manager::CacheManager;
use crate::stats::CacheStats;

/// The routes, acting on the manager in effect for each request ([`crate::manager()`]:
/// the one of an enclosing [`CacheManager::scope`], else the global one). Use
/// [`router_for`] to name the manager instead.
///
/// ```
/// let app: axum::Router = axum::Router::new().nest("/actuator", cache_core::http::router());
/// # let _ = app;
/// ```
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    routes(Admin(None))
}

/// The routes, acting on `manager`.
///
/// ```
/// let manager = cache_core::CacheManager::none();
/// let app: axum::Router = cache_core::http::router_for(manager);
/// # let _ = app;
/// ```
pub fn router_for<S: Clone + Send + Sync + 'static>(manager: CacheManager) -> Router<S> {
    routes(Admin(Some(manager)))
}

fn routes<S: Clone + Send + Sync + 'static>(admin: Admin) -> Router<S> {
    Router::new()
        .route("/caches", get(list))
        .route("/caches/{name}", get(show).delete(clear))
        .route("/caches/{name}/{key}", axum::routing::delete(delete_key))
        .with_state(admin)
}

/// Which manager the routes act on: a fixed one, or the one in effect per request.
#[derive(Clone)]
struct Admin(Option<CacheManager>);

impl Admin {
    fn manager(&self) -> CacheManager {
        self.0.clone().unwrap_or_else(crate::manager)
    }

    /// The cache of that name, if the manager knows it; never makes one.
    fn cache(&self, name: &str) -> Result<Cache, ApiError> {
        let manager = self.manager();
        if !manager.knows_cache(name) {
            return Err(ApiError::unknown(name));
        }
        manager.cache(name).map_err(|_| ApiError::unknown(name))
    }
}

async fn list(State(admin): State<Admin>) -> Json<CacheList> {
    let manager = admin.manager();
    Json(CacheList {
        caches: manager
            .caches()
            .iter()
            .map(|c| CacheReport::of(&manager, c))
            .collect(),
    })
}

async fn show(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<CacheReport>, ApiError> {
    let cache = admin.cache(&name)?;
    Ok(Json(CacheReport::of(&admin.manager(), &cache)))
}

async fn clear(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<Cleared>, ApiError> {
    let cache = admin.cache(&name)?;
    cache.purge().await.map_err(ApiError::store)?;
    Ok(Json(Cleared {
        cache: cache.name().to_owned(),
        store: cache.store_name().to_owned(),
        cleared: true,
    }))
}

async fn delete_key(
    State(admin): State<Admin>,
    Path((name, key)): Path<(String, String)>,
) -> Result<Json<Deleted>, ApiError> {
    let cache = admin.cache(&name)?;
    cache.delete_raw(&key).await.map_err(ApiError::store)?;
    Ok(Json(Deleted {
        cache: cache.name().to_owned(),
        store: cache.store_name().to_owned(),
        key,
        deleted: true,
    }))
}

/// `GET /caches`.
#[derive(Serialize)]
struct CacheList {
    caches: Vec<CacheReport>,
}

/// One cache: its name, its store, its counters.
#[derive(Serialize)]
struct CacheReport {
    name: String,
    store: StoreReport,
    stats: StatsReport,
}

impl CacheReport {
    fn of(manager: &CacheManager, cache: &Cache) -> Self {
        let store = manager.store(cache.store_name()).ok();
        CacheReport {
            name: cache.name().to_owned(),
            store: StoreReport {
                name: cache.store_name().to_owned(),
                prefix: store.as_ref().map(|s| s.prefix().to_owned()),
                // `describe` never holds credentials (a driver's contract).
                shared: store.as_ref().and_then(|s| s.describe_shared()),
            },
            stats: StatsReport::from(cache.stats()),
        }
    }
}

#[derive(Serialize)]
struct StoreReport {
    name: String,
    prefix: Option<String>,
    shared: Option<String>,
}

#[derive(Serialize)]
struct StatsReport {
    hits: u64,
    misses: u64,
    l1_hits: u64,
    l2_hits: u64,
    puts: u64,
    evictions: u64,
    stale: u64,
    errors: u64,
    hit_ratio: f64,
}

impl From<CacheStats> for StatsReport {
    fn from(s: CacheStats) -> Self {
        StatsReport {
            hits: s.hits,
            misses: s.misses,
            l1_hits: s.l1_hits,
            l2_hits: s.l2_hits,
            puts: s.puts,
            evictions: s.evictions,
            stale: s.stale,
            errors: s.errors,
            hit_ratio: s.hit_ratio(),
        }
    }
}

/// `DELETE /caches/{name}`.
#[derive(Serialize)]
struct Cleared {
    cache: String,
    store: String,
    cleared: bool,
}

/// `DELETE /caches/{name}/{key}`.
#[derive(Serialize)]
struct Deleted {
    cache: String,
    store: String,
    key: String,
    deleted: bool,
}

/// A failed request: its status and a JSON `{"error": "..."}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn unknown(name: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no cache named `{name}`"),
        }
    }

    /// A store that failed: the tier's error, which never holds credentials.
    fn store(err: CacheError) -> Self {
        ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: err.to_string(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}
