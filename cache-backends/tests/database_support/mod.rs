//! What the database tests share: the servers, a conformance fixture per database, and a
//! raw connection to look at what the tier stored.
#![allow(dead_code, clippy::unwrap_used)]

#[cfg(feature = "mysql")]
#[path = "../../../tests/support/mariadb_server.rs"]
pub mod mariadb_server;
#[cfg(feature = "postgres")]
#[path = "../../../tests/support/postgres_server.rs"]
pub mod postgres_server;

use std::sync::Arc;
use std::time::Duration;

use cache_backends::database::{DatabaseOptions, DatabaseTier};
use cache_core::store::{BoxFuture, RemoteTier};
use cache_core::testing::conformance::{Capabilities, Expiry, Fixture};
use sqlx::Row as _;

/// The max_value_size of the tiers under test: small, so the size checks stay quick.
pub const MAX_VALUE_SIZE: usize = 64 * 1024;

/// A raw pool on the same database as a tier, to read what it stored.
#[derive(Clone)]
pub enum Raw {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

macro_rules! on_raw {
    ($raw:expr, $p:ident => $body:expr) => {
        match $raw {
            #[cfg(feature = "postgres")]
            Raw::Postgres($p) => $body,
            #[cfg(feature = "mysql")]
            Raw::MySql($p) => $body,
            #[cfg(feature = "sqlite")]
            Raw::Sqlite($p) => $body,
        }
    };
}

impl Raw {
    pub async fn connect(url: &str) -> Self {
        if url.starts_with("postgres") {
            #[cfg(feature = "postgres")]
            return Raw::Postgres(sqlx::PgPool::connect(url).await.unwrap());
        }
        if url.starts_with("mysql") {
            #[cfg(feature = "mysql")]
            return Raw::MySql(sqlx::MySqlPool::connect(url).await.unwrap());
        }
        #[cfg(feature = "sqlite")]
        return Raw::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap());
        #[allow(unreachable_code)]
        {
            panic!("no database feature for {url}")
        }
    }

    fn now(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Raw::Postgres(_) => "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT",
            #[cfg(feature = "mysql")]
            Raw::MySql(_) => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
            #[cfg(feature = "sqlite")]
            Raw::Sqlite(_) => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        }
    }

    fn param(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Raw::Postgres(_) => "$1",
            #[allow(unreachable_patterns)]
            _ => "?",
        }
    }

    /// Milliseconds left of `key`: an entry or lock row (`None` if absent or expired), else
    /// the latest membership of a tag set.
    pub async fn millis_left(&self, table: &str, key: &str) -> Option<i64> {
        let now = self.now();
        let p = self.param();
        let entry = format!("SELECT expires_at - {now} FROM {table} WHERE cache_key = {p}");
        let row: Option<i64> = on_raw!(self, pool => sqlx::query(&entry)
            .bind(key)
            .fetch_optional(pool)
            .await
            .unwrap()
            .map(|r| r.try_get(0).unwrap()));
        if let Some(left) = row {
            return (left > 0).then_some(left);
        }
        let tag = format!("SELECT MAX(expires_at) - {now} FROM {table}_tags WHERE tag_key = {p}");
        let left: Option<i64> = on_raw!(self, pool => sqlx::query(&tag)
            .bind(key)
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap());
        left.filter(|l| *l > 0)
    }

    /// Runs one statement.
    pub async fn execute(&self, sql: &str) -> u64 {
        on_raw!(self, pool => sqlx::query(sql).execute(pool).await.unwrap().rows_affected())
    }

    /// The number the statement selects.
    pub async fn count(&self, sql: &str) -> i64 {
        on_raw!(self, pool => sqlx::query(sql).fetch_one(pool).await.unwrap().try_get::<i64, _>(0).unwrap())
    }
}

/// The conformance fixture of a database tier.
pub struct DbFixture {
    pub tier: Arc<DatabaseTier>,
    pub raw: Raw,
    pub table: String,
}

impl DbFixture {
    pub async fn new(url: &str, table: &str) -> Self {
        let opts = DatabaseOptions::new(url)
            .table(table)
            .operation_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .max_value_size(MAX_VALUE_SIZE);
        let tier = Arc::new(DatabaseTier::new(&opts).unwrap());
        // Make the tables before the raw pool looks at them.
        tier.ping().await.unwrap();
        Self {
            tier,
            raw: Raw::connect(url).await,
            table: table.to_owned(),
        }
    }
}

impl Fixture for DbFixture {
    fn tier(&self) -> Arc<dyn RemoteTier> {
        self.tier.clone()
    }

    fn expiry_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Expiry> {
        Box::pin(async move {
            match self.raw.millis_left(&self.table, key).await {
                Some(ms) => Expiry::In(Duration::from_millis(ms as u64)),
                None => Expiry::Absent,
            }
        })
    }

    fn max_value_size(&self) -> usize {
        MAX_VALUE_SIZE
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }
}

/// A SQLite database file in a fresh temporary directory, removed when dropped.
pub struct TempSqlite {
    pub dir: std::path::PathBuf,
}

impl TempSqlite {
    pub fn new() -> Self {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cachet-sqlite-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// `sqlite://DIR/cache.db`.
    pub fn url(&self) -> String {
        format!("sqlite://{}/cache.db", self.dir.display())
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
