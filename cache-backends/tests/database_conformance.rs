//! The L2 driver conformance suite (`cachet::testing::conformance`) on the database tier:
//! PostgreSQL and MariaDB started by the harness, SQLite on a temporary file.
#![cfg(feature = "database")]
#![allow(clippy::unwrap_used)]

mod database_support;

use cache_core::testing::conformance;
use database_support::DbFixture;

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite() {
    let server = database_support::postgres_server::PostgresServer::start();
    conformance::run_all(&DbFixture::new(&server.url(), "cachet_entries").await).await;
    // And with a table in a schema of its own.
    server.psql("CREATE SCHEMA app");
    conformance::run_all(&DbFixture::new(&server.url(), "app.cache").await).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_passes_the_conformance_suite() {
    let server = database_support::mariadb_server::MariadbServer::start();
    conformance::run_all(&DbFixture::new(&server.url(), "cachet_entries").await).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite() {
    let file = database_support::TempSqlite::new();
    conformance::run_all(&DbFixture::new(&file.url(), "cachet_entries").await).await;
}
