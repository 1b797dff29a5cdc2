//! The HTTP API: routes, handlers, and the layer that runs each request against the
//! service's cache manager.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cachet::CacheManager;

use crate::error::AppError;
use crate::repo::{Product, ProductChange, ProductRepo};

/// The service's routes over `repo`, with every request's cached calls going to `cache`.
///
/// | method and path | answer |
/// |---|---|
/// | `GET /products/{id}` | 200 and the product, or 404 |
/// | `PUT /products/{id}` (JSON `{name, category, price_cents}`) | 200 and the updated product, or 404 |
/// | `DELETE /products/{id}` | 204, or 404 |
/// | `POST /products` (same JSON) | 201 and the new product |
/// | `GET /categories/{category}/products` | 200 and the category's products, by id |
///
/// Each request runs inside [`cachet::CacheManager::scope`]: the annotated
/// repository methods use this app's manager, not the process-wide one, so two apps in one
/// process (the end-to-end tests run two against one Redis) keep separate caches. A
/// process with one app could as well [`cachet::init`] the manager; scoping it per app
/// costs a task-local lookup per cached call.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use cachet_service_example::{app, db, ProductRepo};
/// let repo = ProductRepo::new(db::open(std::path::Path::new("shop.db")).await?);
/// let cache = cachet::CacheManager::from_toml_file("examples/service/cachet.toml")?;
/// let router = app(repo, cache);
/// # let _ = router; Ok(()) }
/// ```
pub fn app(repo: ProductRepo, cache: CacheManager) -> Router {
    Router::new()
        .route("/products", axum::routing::post(create_product))
        .route(
            "/products/{id}",
            get(get_product).put(put_product).delete(delete_product),
        )
        .route("/categories/{category}/products", get(list_category))
        .with_state(repo)
        .layer(middleware::from_fn_with_state(cache, with_cache))
}

/// Runs the rest of the request with `cache` as the manager of its cached calls.
async fn with_cache(State(cache): State<CacheManager>, request: Request, next: Next) -> Response {
    cache.scope(next.run(request)).await
}

async fn get_product(
    State(repo): State<ProductRepo>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    Ok(found(repo.find(id).await?))
}

async fn put_product(
    State(repo): State<ProductRepo>,
    Path(id): Path<i64>,
    Json(change): Json<ProductChange>,
) -> Result<Response, AppError> {
    Ok(found(repo.update(id, &change).await?))
}

async fn delete_product(
    State(repo): State<ProductRepo>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    Ok(if repo.delete(id).await? {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    })
}

async fn create_product(
    State(repo): State<ProductRepo>,
    Json(change): Json<ProductChange>,
) -> Result<(StatusCode, Json<Product>), AppError> {
    Ok((StatusCode::CREATED, Json(repo.create(&change).await?)))
}

async fn list_category(
    State(repo): State<ProductRepo>,
    Path(category): Path<String>,
) -> Result<Json<Vec<Product>>, AppError> {
    Ok(Json(repo.list_by_category(&category).await?))
}

fn found(product: Option<Product>) -> Response {
    match product {
        Some(product) => Json(product).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
