//! [`DatabaseTier`]: the L2 tier on a SQL database.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::store::{memberships_ttl, BoxFuture, RemoteEntry, RemoteTier, Scope};
use cache_core::{CacheError, TierError};
use sqlx::{Connection as _, Row as _};

use super::dialect::{scope_ranges, Dialect, BATCH, IN_BATCH, SCAN_PAGE, SET_BATCH};
use super::options::DatabaseOptions;
use super::pool::{bounded, is_retryable, on_conn, Database};

/// How often a write that lost a race with another writer (a deadlock, a busy database) is
/// tried again before it fails.
const RETRIES: usize = 3;

/// An L2 tier on PostgreSQL, MySQL/MariaDB or SQLite: one row per stored key
/// (`cache_key`, `cache_value`, `expires_at` in unix milliseconds of the database's
/// clock), tag memberships in `{table}_tags`.
///
/// Cheap to clone. Building never connects: the pool connects on first use, on a
/// background runtime of its own, and creates the tables then (`auto_create`). Every
/// operation is bounded by `operation_timeout`; a read never fetches more than
/// `max_value_size + 1` bytes; an expired row is a miss before it is pruned.
///
/// ```no_run
/// use cache_backends::database::{DatabaseOptions, DatabaseTier};
/// use cache_core::store::RemoteTier;
/// use std::time::Duration;
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let tier = DatabaseTier::new(&DatabaseOptions::new("sqlite://var/cache.db"))?;
/// tier.set("app:users:42", b"bytes".to_vec(), Duration::from_secs(60)).await?;
/// assert_eq!(tier.get("app:users:42").await?, Some(b"bytes".to_vec()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DatabaseTier {
    pub(crate) db: Arc<Database>,
}

impl DatabaseTier {
    /// A tier for these options. Does not connect.
    pub fn new(opts: &DatabaseOptions) -> Result<Self, CacheError> {
        let db = Database::new(opts).map_err(|(field, why)| crate::builder_error(field, &why))?;
        Ok(Self { db })
    }

    /// Deletes every row past its expiry (entries, locks and tag memberships), in
    /// batches of at most 1,000 rows so a large table is never locked for long, and
    /// returns how many went. `cachet prune` and `prune_interval` call it.
    ///
    /// ```no_run
    /// # async fn demo(tier: cache_backends::database::DatabaseTier) -> Result<(), cache_core::TierError> {
    /// let pruned = tier.prune_expired().await?;
    /// println!("{pruned} expired rows deleted");
    /// # Ok(()) }
    /// ```
    pub async fn prune_expired(&self) -> Result<u64, TierError> {
        super::prune::prune(&self.db).await
    }
}

impl fmt::Debug for DatabaseTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseTier")
            .field("target", &self.db.target)
            .finish_non_exhaustive()
    }
}

/// Milliseconds for an expiry: at least 1, and far from overflowing the database's
/// `BIGINT` when added to the clock.
pub(crate) fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis())
        .unwrap_or(i64::MAX)
        .clamp(1, i64::MAX / 4)
}

/// Binds a list of keys the way the dialect's `IN` statement takes them: PostgreSQL one
/// array parameter (`= ANY($1)`), MySQL and SQLite one parameter per key.
trait BindKeys<'q>: Sized {
    fn bind_keys(self, keys: &'q [String]) -> Self;
}

#[cfg(feature = "postgres")]
impl<'q> BindKeys<'q> for sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn bind_keys(self, keys: &'q [String]) -> Self {
        self.bind(keys)
    }
}

#[cfg(feature = "mysql")]
impl<'q> BindKeys<'q> for sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
    fn bind_keys(self, keys: &'q [String]) -> Self {
        keys.iter().fold(self, |q, k| q.bind(k))
    }
}

#[cfg(feature = "sqlite")]
impl<'q> BindKeys<'q> for sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    fn bind_keys(self, keys: &'q [String]) -> Self {
        keys.iter().fold(self, |q, k| q.bind(k))
    }
}

/// Deletes entries by key, one batch.
async fn delete_batch(db: &Database, keys: &[String]) -> Result<(), sqlx::Error> {
    let sql = db.sql.delete_keys(keys.len());
    on_conn!(db, None, c => sqlx::query(&sql).bind_keys(keys).execute(c).await.map(|_| ()))
}

/// The live entries among `keys` (one batch), each with its key.
async fn get_batch(db: &Database, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    let sql = db.sql.get_keys(keys.len());
    on_conn!(db, None, c => match sqlx::query(&sql).bind_keys(keys).fetch_all(c).await {
        Ok(rows) => rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>(),
        Err(e) => Err(e),
    })
}

/// The keys a statement selected: each row's first column, as text.
fn keys_of<R: sqlx::Row>(rows: Result<Vec<R>, sqlx::Error>) -> Result<Vec<String>, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows?.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// Upserts one batch of entries (distinct keys) in one statement.
async fn set_batch(db: &Database, entries: &[&RemoteEntry]) -> Result<(), sqlx::Error> {
    let sql = db.sql.set_rows(entries.len());
    on_conn!(db, None, c => {
        let mut q = sqlx::query(&sql);
        for entry in entries {
            q = q.bind(&entry.key).bind(&entry.value).bind(ttl_millis(entry.ttl));
        }
        q.execute(c).await.map(|_| ())
    })
}

impl RemoteTier for DatabaseTier {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, TierError>> {
        let key = key.to_owned();
        let home = self.db.home();
        Box::pin(self.db.run("SELECT", move |db| async move {
            on_conn!(db, home, c => match sqlx::query(&db.sql.get).bind(&key).fetch_optional(c).await {
                Ok(row) => row.map(|r| r.try_get::<Vec<u8>, _>(0)).transpose(),
                Err(e) => Err(e),
            })
        }))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let key = key.to_owned();
        let ttl = ttl_millis(ttl);
        let home = self.db.home();
        Box::pin(self.db.run("INSERT", move |db| async move {
            let mut attempt = 0;
            loop {
                // One statement: the row never exists without its expiry.
                let done = async {
                    on_conn!(db, home.clone(), c => sqlx::query(&db.sql.set)
                        .bind(&key)
                        .bind(&value)
                        .bind(ttl)
                        .execute(c)
                        .await
                        .map(|_| ()))
                }
                .await;
                match done {
                    Err(e) if is_retryable(&e) && attempt < RETRIES => attempt += 1,
                    other => return other,
                }
            }
        }))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool, TierError>> {
        let key = key.to_owned();
        let ttl = ttl_millis(ttl);
        let home = self.db.home();
        Box::pin(self.db.run("UPDATE expiry", move |db| async move {
            on_conn!(db, home, c => sqlx::query(&db.sql.touch)
                .bind(ttl)
                .bind(&key)
                .bind(ttl)
                .execute(c)
                .await
                .map(|done| done.rows_affected() == 1))
        }))
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, TierError>> {
        if keys.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let keys = keys.to_vec();
        Box::pin(self.db.run("SELECT IN", move |db| async move {
            let mut live = std::collections::HashMap::with_capacity(keys.len());
            for batch in keys.chunks(IN_BATCH) {
                live.extend(get_batch(&db, batch).await?);
            }
            // A key asked twice reads the same row twice.
            Ok(keys.iter().map(|k| live.get(k).cloned()).collect())
        }))
    }

    fn set_many<'a>(&'a self, entries: Vec<RemoteEntry>) -> BoxFuture<'a, Result<(), TierError>> {
        if entries.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        Box::pin(self.db.run("INSERT rows", move |db| async move {
            // One statement may not touch a row twice: a key listed twice keeps its last value.
            let mut last = std::collections::HashMap::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                last.insert(entry.key.as_str(), i);
            }
            let distinct: Vec<&RemoteEntry> = entries
                .iter()
                .enumerate()
                .filter(|(i, e)| last.get(e.key.as_str()) == Some(i))
                .map(|(_, e)| e)
                .collect();
            for batch in distinct.chunks(SET_BATCH) {
                let mut attempt = 0;
                loop {
                    match set_batch(&db, batch).await {
                        Err(e) if is_retryable(&e) && attempt < RETRIES => attempt += 1,
                        other => break other?,
                    }
                }
            }
            Ok(())
        }))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), TierError>> {
        if keys.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let keys = keys.to_vec();
        Box::pin(self.db.run("DELETE", move |db| async move {
            for batch in keys.chunks(IN_BATCH) {
                delete_batch(&db, batch).await?;
            }
            Ok(())
        }))
    }

    fn clear_scope<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<(), TierError>> {
        let ranges = scope_ranges(scope);
        // A scope may hold many rows: no bound on the whole, each batch bounded by
        // operation_timeout.
        Box::pin(
            self.db
                .run_bounded("DELETE scope", None, move |db| async move {
                    let limit = db.operation_timeout;
                    for sql in [&db.sql.clear_entries, &db.sql.clear_tags] {
                        loop {
                            let deleted = bounded(limit, async {
                                on_conn!(db, None, c => sqlx::query(sql)
                                    .bind(&ranges[0])
                                    .bind(&ranges[1])
                                    .bind(&ranges[2])
                                    .bind(&ranges[3])
                                    .execute(c)
                                    .await
                                    .map(|r| r.rows_affected()))
                            })
                            .await?;
                            if deleted < BATCH as u64 {
                                break;
                            }
                        }
                    }
                    Ok(())
                }),
        )
    }

    fn describe(&self) -> String {
        format!("database {}", self.db.target)
    }

    fn prune(&self) -> BoxFuture<'_, Result<u64, TierError>> {
        Box::pin(super::prune::prune(&self.db))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), TierError>> {
        Box::pin(self.db.run("SELECT 1", move |db| async move {
            on_conn!(db, None, c => sqlx::query("SELECT 1").execute(c).await.map(|_| ()))
        }))
    }

    fn scan_scope<'a>(
        &'a self,
        scope: &'a Scope,
        cursor: u64,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>), TierError>> {
        let ranges = scope_ranges(scope);
        let offset = i64::try_from(cursor).unwrap_or(i64::MAX);
        Box::pin(self.db.run("SELECT scope", move |db| async move {
            let keys = on_conn!(db, None, c => keys_of(sqlx::query(&db.sql.scan)
                .bind(&ranges[0])
                .bind(&ranges[1])
                .bind(&ranges[2])
                .bind(&ranges[3])
                .bind(offset)
                .fetch_all(c)
                .await))?;
            let next = if keys.len() < SCAN_PAGE {
                0
            } else {
                cursor + keys.len() as u64
            };
            Ok((next, keys))
        }))
    }

    fn set_tagged<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tag_keys: &'a [String],
        tags_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), TierError>> {
        let key = key.to_owned();
        let tags = tag_keys.to_vec();
        // Memberships last the entry's full lifetime, which `touch` may renew it up to.
        let tags_ttl = ttl_millis(memberships_ttl(ttl, tags_ttl));
        let ttl = ttl_millis(ttl);
        Box::pin(self.db.run("INSERT tagged", move |db| async move {
            let mut attempt = 0;
            loop {
                // One transaction: the value never exists without its memberships.
                let done = async {
                    on_conn!(db, None, c => async {
                        let mut tx = c.begin().await?;
                        sqlx::query(&db.sql.set)
                            .bind(&key)
                            .bind(&value)
                            .bind(ttl)
                            .execute(&mut *tx)
                            .await?;
                        for tag in &tags {
                            sqlx::query(&db.sql.tag)
                                .bind(tag)
                                .bind(&key)
                                .bind(tags_ttl)
                                .execute(&mut *tx)
                                .await?;
                        }
                        tx.commit().await
                    }
                    .await)
                }
                .await;
                match done {
                    Err(e) if is_retryable(&e) && attempt < RETRIES => attempt += 1,
                    other => return other,
                }
            }
        }))
    }

    fn tagged_keys<'a>(
        &'a self,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, TierError>> {
        if tag_keys.is_empty() {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let tags = tag_keys.to_vec();
        Box::pin(self.db.run("SELECT tagged", move |db| async move {
            let mut keys = std::collections::BTreeSet::new();
            for batch in tags.chunks(IN_BATCH) {
                let sql = db.sql.tagged(batch.len());
                let rows = on_conn!(db, None, c => keys_of(sqlx::query(&sql).bind_keys(batch).fetch_all(c).await))?;
                keys.extend(rows);
            }
            Ok(keys.into_iter().collect())
        }))
    }

    fn delete_tagged<'a>(
        &'a self,
        keys: &'a [String],
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), TierError>> {
        if keys.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let keys = keys.to_vec();
        let tags = tag_keys.to_vec();
        Box::pin(self.db.run("DELETE tagged", move |db| async move {
            for batch in keys.chunks(IN_BATCH / 2) {
                delete_batch(&db, batch).await?;
                if tags.is_empty() {
                    continue;
                }
                // Only these members leave the sets: a key tagged meanwhile stays listed.
                for tag_batch in tags.chunks(IN_BATCH / 2) {
                    let sql = db.sql.untag(tag_batch.len(), batch.len());
                    on_conn!(db, None, c => sqlx::query(&sql)
                        .bind_keys(tag_batch)
                        .bind_keys(batch)
                        .execute(c)
                        .await
                        .map(|_| ()))?;
                }
            }
            Ok(())
        }))
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let key = key.to_owned();
        let token = token.as_bytes().to_vec();
        let ttl = ttl_millis(ttl);
        Box::pin(self.db.run("INSERT lock", move |db| async move {
            let mut attempt = 0;
            loop {
                let done = async {
                    if db.sql.dialect == Dialect::MySql {
                        on_conn!(db, None, c => sqlx::query(&db.sql.lock_expired)
                            .bind(&key)
                            .execute(c)
                            .await
                            .map(|_| ()))?;
                    }
                    // Inserted, or (PostgreSQL, SQLite) taken over from an expired holder;
                    // a live holder's row is left as it is.
                    on_conn!(db, None, c => sqlx::query(&db.sql.lock)
                        .bind(&key)
                        .bind(&token)
                        .bind(ttl)
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected() == 1))
                }
                .await;
                match done {
                    Err(e) if is_retryable(&e) && attempt < RETRIES => attempt += 1,
                    other => return other,
                }
            }
        }))
    }

    fn unlock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool, TierError>> {
        let key = key.to_owned();
        let token = token.as_bytes().to_vec();
        Box::pin(self.db.run("DELETE lock", move |db| async move {
            // Compare-and-delete in one statement: another holder's lock is never deleted.
            let deleted = on_conn!(db, None, c => sqlx::query(&db.sql.unlock)
                .bind(&key)
                .bind(&token)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            Ok(deleted == 1)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_never_zero_nor_overflowing() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_micros(10)), 1);
        assert_eq!(ttl_millis(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_millis(Duration::MAX), i64::MAX / 4);
    }
}
