//! A small product catalogue over SQLite, served by axum, whose repository is cached with
//! cachet's annotations: `#[cacheable]` reads, `#[cache_put]` updates, `#[cache_evict]`
//! deletes, `#[cache_config]` on the repository's `impl`.
//!
//! The cache configuration is a `cachet.toml`: `examples/service/cachet.toml` keeps the
//! caches in memory, `examples/service/cachet.tiered.toml` puts Redis behind them with a
//! bus, so several instances of the service stay coherent. `src/main.rs` picks one through
//! `CACHET_CONFIG`; the end-to-end tests (`tests/e2e.rs`) run both.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cachet_service_example::{app, db, serve, ProductRepo};
//! let repo = ProductRepo::new(db::open(std::path::Path::new("shop.db")).await?);
//! let cache = cachet::CacheManager::from_toml_file("examples/service/cachet.toml")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! serve(listener, app(repo, cache)).await?;
//! # Ok(()) }
//! ```

mod admin;
pub mod db;
mod error;
mod http;
mod repo;

pub use admin::{with_admin, AdminToken};
pub use error::AppError;
pub use http::app;
pub use repo::{Product, ProductChange, ProductRepo};

/// Serves `app` on `listener` until the process ends (or the future is dropped).
///
/// ```no_run
/// # async fn demo(router: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// cachet_service_example::serve(listener, router).await
/// # }
/// ```
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}
