//! The service as a program: `cargo run -p cachet-service-example`.
//!
//! Environment:
//! - `CACHET_CONFIG`: the cache configuration (default: the `cachet.toml` beside this
//!   crate, memory only; `examples/service/cachet.tiered.toml` adds Redis and the bus).
//!   `CACHET_TYPE=none` turns caching off, as for any cachet program.
//! - `SERVICE_DATABASE`: the SQLite file (default: a fresh one in a temporary directory,
//!   removed on exit).
//! - `SERVICE_ADDR`: where to listen (default `127.0.0.1:3000`).
//! - `SERVICE_ADMIN_TOKEN`: when set, cachet's administration endpoint is served under
//!   `/admin/caches` to requests carrying `Authorization: Bearer <token>`.

use std::path::PathBuf;

use cachet::CacheManager;
use cachet_service_example::{app, db, serve, with_admin, AdminToken, ProductRepo};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = match std::env::var_os("CACHET_CONFIG") {
        Some(_) => CacheManager::from_env()?,
        None => CacheManager::from_toml_file(concat!(env!("CARGO_MANIFEST_DIR"), "/cachet.toml"))?,
    };
    // Kept until the end of `main`: dropping it deletes the temporary database.
    let mut temp_dir = None;
    let database = match std::env::var_os("SERVICE_DATABASE") {
        Some(path) => PathBuf::from(path),
        None => temp_dir.insert(tempfile::tempdir()?).path().join("shop.db"),
    };
    let repo = ProductRepo::new(db::open(&database).await?);
    let addr = std::env::var("SERVICE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "serving http://{} (database {}, cache stores: {:?})",
        listener.local_addr()?,
        database.display(),
        cache.store_names(),
    );
    println!("try: curl http://{}/products/1", listener.local_addr()?);
    let mut router = app(repo, cache.clone());
    if let Some(token) = AdminToken::from_env() {
        router = with_admin(router, cache, token);
        println!(
            "cache admin: curl -H \"Authorization: Bearer $SERVICE_ADMIN_TOKEN\" http://{}/admin/caches",
            listener.local_addr()?
        );
    }
    // Ctrl-C ends `main` normally, so the temporary database is removed.
    tokio::select! {
        served = serve(listener, router) => served?,
        signal = tokio::signal::ctrl_c() => signal?,
    }
    Ok(())
}
