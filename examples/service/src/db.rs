//! The SQLite database: connecting, migrating (`migrations/`, embedded at compile time)
//! and seeding the demo catalogue.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::AppError;

/// Opens (creating it if needed) the SQLite database at `path`, applies the migrations and
/// inserts the seed products when the table is empty.
///
/// Several instances of the service may open one file: WAL lets readers run beside a
/// writer, and the busy timeout makes a writer wait for another instance's write instead
/// of failing.
///
/// ```no_run
/// # async fn demo() -> Result<(), cachet_service_example::AppError> {
/// let pool = cachet_service_example::db::open(std::path::Path::new("shop.db")).await?;
/// # let _ = pool; Ok(()) }
/// ```
pub async fn open(path: &Path) -> Result<SqlitePool, AppError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    seed(&pool).await?;
    Ok(pool)
}

/// Inserts the demo catalogue into an empty table, in one statement so that two
/// instances starting together cannot both insert it.
async fn seed(pool: &SqlitePool) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO products (name, category, price_cents)
         SELECT column1, column2, column3 FROM (VALUES
             ('Espresso beans', 'coffee', 1450),
             ('Filter papers', 'coffee', 399),
             ('Moka pot', 'coffee', 3500),
             ('Sencha', 'tea', 899),
             ('Teapot', 'tea', 2900))
         WHERE NOT EXISTS (SELECT 1 FROM products)",
    )
    .execute(pool)
    .await?;
    Ok(())
}
