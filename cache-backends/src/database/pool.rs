//! The connection pool of one database (lazily connected, on the backend runtime), the
//! schema check made once at first use, and the mapping of database errors to
//! [`TierError`]s that never show the password.

use std::future::Future;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{TierError, TierErrorKind};
use tokio::runtime::Handle;
use tokio::sync::OnceCell;

use super::dialect::{Dialect, Statements, Table};
use super::options::DatabaseOptions;
use crate::background;

/// A pool of one of the compiled-in databases.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

/// Runs `$body` with `$p` bound to the concrete pool, whichever database it is: the
/// statements differ by dialect, the Rust around them does not.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            #[cfg(feature = "postgres")]
            $crate::database::pool::Pool::Postgres($p) => $body,
            #[cfg(feature = "mysql")]
            $crate::database::pool::Pool::MySql($p) => $body,
            #[cfg(feature = "sqlite")]
            $crate::database::pool::Pool::Sqlite($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Everything a tier shares: the pool, its statements, and whether the schema is known
/// to be there.
pub(crate) struct Database {
    pub(crate) pool: Pool,
    pub(crate) sql: Statements,
    /// `postgres://app:***@host:5432/app table cachet_entries`: never the password.
    pub(crate) target: String,
    password: Option<String>,
    pub(crate) operation_timeout: Duration,
    auto_create: bool,
    schema: OnceCell<()>,
    /// `sqlite::memory:`: its one connection is the whole cache, so it goes back to the
    /// pool on the backend runtime, never on a caller's (see [`Lease`]).
    memory: bool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The password in a URL's user-info, for scrubbing messages that might repeat it.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_owned())
}

impl Database {
    /// A pool for these options; connects on first use only.
    pub(crate) fn new(opts: &DatabaseOptions) -> Result<Arc<Self>, (&'static str, String)> {
        let dialect = Dialect::of_url(&opts.url).map_err(|why| ("url", why))?;
        let table = Table::new(&opts.table).map_err(|why| ("table", why))?;
        if dialect == Dialect::Sqlite && table.full.contains('.') {
            return Err(("table", "a table name without a schema on SQLite".into()));
        }
        let handle = background::handle().map_err(|e| ("url", e.to_string()))?;
        // Pools made here belong to the backend runtime (their maintenance tasks too), so
        // they outlive the caller's runtime.
        let _context = handle.enter();
        let password = password_of(&opts.url);
        let scrub = |e: sqlx::Error| {
            let text = scrub(&e.to_string(), password.as_deref());
            format!("a valid {} URL ({text})", dialect.name())
        };
        let mut memory = false;
        let pool = match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => {
                let connect = sqlx::postgres::PgConnectOptions::from_str(&opts.url)
                    .map_err(scrub)
                    .map_err(|why| ("url", why))?
                    // A row locked by another transaction fails the statement instead of
                    // holding it past the operation's bound.
                    .options([(
                        "lock_timeout",
                        format!("{}ms", opts.operation_timeout.as_millis().max(1)),
                    )]);
                Pool::Postgres(pool_options(opts).connect_lazy_with(connect))
            }
            #[cfg(feature = "mysql")]
            Dialect::MySql => {
                let url = opts.url.replacen("mariadb://", "mysql://", 1);
                let connect = sqlx::mysql::MySqlConnectOptions::from_str(&url)
                    .map_err(scrub)
                    .map_err(|why| ("url", why))?;
                Pool::MySql(pool_options(opts).connect_lazy_with(connect))
            }
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => {
                memory = opts.url.contains(":memory:") || opts.url.contains("mode=memory");
                let connect = sqlx::sqlite::SqliteConnectOptions::from_str(&opts.url)
                    .map_err(scrub)
                    .map_err(|why| ("url", why))?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(opts.operation_timeout);
                let mut options = pool_options(opts);
                if memory {
                    // Every connection to `:memory:` is a database of its own: one
                    // connection, kept forever, is the whole cache.
                    options = options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                Pool::Sqlite(options.connect_lazy_with(connect))
            }
            #[allow(unreachable_patterns)]
            _ => return Err(("url", format!("cachet's `{}` feature", dialect.feature()))),
        };
        let target = format!(
            "{} table {}",
            super::options::redacted_target(&opts.url),
            table.full
        );
        Ok(Arc::new(Self {
            pool,
            sql: Statements::new(dialect, &table, opts.max_value_size),
            target,
            password,
            operation_timeout: opts.operation_timeout,
            auto_create: opts.auto_create,
            schema: OnceCell::new(),
            memory,
        }))
    }

    /// The runtime the caller of an operation runs on, captured when the operation is
    /// made (in the caller's context), where its [`Lease`] returns its connection; `None`
    /// (the backend runtime) outside any runtime and for `sqlite::memory:`.
    pub(crate) fn home(&self) -> Option<Handle> {
        if self.memory {
            return None;
        }
        Handle::try_current().ok()
    }

    /// Runs `op` on the backend runtime's context, after the schema check, bounded by
    /// `operation_timeout`.
    pub(crate) fn run<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        op: F,
    ) -> background::Remote<T>
    where
        F: FnOnce(Arc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, sqlx::Error>> + Send,
        T: Send + 'static,
    {
        self.run_bounded(what, Some(self.operation_timeout), op)
    }

    /// [`run`](Self::run) with another bound (`None`: none but each statement's own).
    pub(crate) fn run_bounded<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        limit: Option<Duration>,
        op: F,
    ) -> background::Remote<T>
    where
        F: FnOnce(Arc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, sqlx::Error>> + Send,
        T: Send + 'static,
    {
        let this = Arc::clone(self);
        background::run(async move {
            let work = async {
                this.ensure_schema().await?;
                op(Arc::clone(&this)).await.map_err(|e| {
                    if is_connection_fault(&e) {
                        this.evict_idle();
                    }
                    this.fault(what, &e)
                })
            };
            match limit {
                None => work.await,
                Some(limit) => match tokio::time::timeout(limit, work).await {
                    Ok(out) => out,
                    Err(_) => Err(TierError::with_kind(
                        format!("{}: {what} timed out after {limit:?}", this.target),
                        TierErrorKind::Unavailable,
                    )),
                },
            }
        })
    }

    /// Creates the tables and indexes (`auto_create`), or checks that they exist, once;
    /// tried again on the next operation when it failed.
    async fn ensure_schema(&self) -> Result<(), TierError> {
        self.schema
            .get_or_try_init(|| async {
                if self.auto_create {
                    for ddl in &self.sql.ddl {
                        let created = on_pool!(&self.pool, p => sqlx::query(ddl).execute(p).await.map(|_| ()));
                        if let Err(e) = created {
                            // Two instances creating the table at once: the loser's
                            // `IF NOT EXISTS` may still fail; what counts is that the
                            // tables are there now.
                            if !is_connection_fault(&e) && self.probe().await.is_ok() {
                                continue;
                            }
                            return Err(self.fault("CREATE TABLE", &e));
                        }
                    }
                    Ok(())
                } else {
                    self.probe().await.map_err(|e| {
                        if is_missing_table(&e) {
                            TierError::with_kind(
                                format!(
                                    "{}: the table is missing and auto_create = false; create it with:\n{}",
                                    self.target,
                                    self.sql.ddl_script()
                                ),
                                TierErrorKind::Other,
                            )
                        } else {
                            self.fault("checking the table", &e)
                        }
                    })
                }
            })
            .await
            .map(|_| ())
    }

    /// Closes every idle pooled connection: after a connection fault (a restarted or
    /// failed-over server) they are likely dead too, and each would fail one operation
    /// (and trip the circuit breaker again) before being replaced. New ones are made on
    /// demand.
    fn evict_idle(&self) {
        on_pool!(&self.pool, p => {
            while let Some(conn) = p.try_acquire() {
                drop(conn.detach());
            }
        })
    }

    async fn probe(&self) -> Result<(), sqlx::Error> {
        for probe in &self.sql.probe {
            on_pool!(&self.pool, p => sqlx::query(probe).execute(p).await.map(|_| ()))?;
        }
        Ok(())
    }

    /// Maps a database error, naming the operation and the target, never the password.
    pub(crate) fn fault(&self, what: &str, e: &sqlx::Error) -> TierError {
        TierError::with_kind(
            format!(
                "{}: {what} failed: {}",
                self.target,
                scrub(&e.to_string(), self.password.as_deref())
            ),
            if is_connection_fault(e) {
                TierErrorKind::Unavailable
            } else {
                TierErrorKind::Other
            },
        )
    }
}

/// A pooled connection that goes back to the pool on its caller's runtime.
///
/// sqlx returns a connection to its pool by spawning a task on the current runtime, which
/// pings the connection (a round trip to the server, or to SQLite's worker thread) before
/// releasing it. Operations run in the backend runtime's context (so new connections are
/// the backend's), so every release was a task on the backend's one thread: with 64
/// concurrent callers that thread ran every release and ping, and each hand-over of a
/// connection to a waiting caller crossed threads (`perf`: 17 % of the samples on
/// `cachet-io`; BENCHMARKS.md, "Database L2"). A lease drops its connection in the
/// caller's runtime context instead, so the release runs where raw sqlx's would. A lease
/// whose `home` is `None` releases on the backend runtime, as before.
pub(crate) struct Lease<C> {
    conn: Option<C>,
    home: Option<Handle>,
}

impl<DB: sqlx::Database> Lease<sqlx::pool::PoolConnection<DB>> {
    /// A connection of `pool` (made on the backend runtime if one must be made), to be
    /// released on `home`.
    pub(crate) async fn acquire(
        pool: &sqlx::Pool<DB>,
        home: Option<Handle>,
    ) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: Some(pool.acquire().await?),
            home,
        })
    }
}

impl<C> std::ops::Deref for Lease<C> {
    type Target = C;

    fn deref(&self) -> &C {
        // `conn` is `Some` from construction until `drop`.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<C> std::ops::DerefMut for Lease<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<C> Drop for Lease<C> {
    fn drop(&mut self) {
        let conn = self.conn.take();
        match &self.home {
            Some(home) => {
                let _caller = home.enter();
                drop(conn);
            }
            None => drop(conn),
        }
    }
}

fn pool_options<DB: sqlx::Database>(opts: &DatabaseOptions) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(opts.max_connections)
        .min_connections(0)
        // Waiting for a connection (connecting included) is bounded like the operation.
        .acquire_timeout(opts.connect_timeout.min(opts.operation_timeout))
        // A pooled connection is checked only after it sat idle, so a restarted server
        // costs the first operation after it an error, not every operation a ping.
        .test_before_acquire(false)
        .idle_timeout(Some(Duration::from_secs(600)))
}

/// `text` with the password and any URL credentials masked.
fn scrub(text: &str, password: Option<&str>) -> String {
    let text = match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_owned(),
    };
    cache_core::redact::redact_text(&text)
}

/// Whether the error says the database cannot be used now (unreachable, gone, refusing
/// our credentials, out of connections): what the circuit breaker counts.
pub(crate) fn is_connection_fault(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // PostgreSQL SQLSTATE classes 08 (connection), 28 (authorization), 53
            // (resources), 57P (shutting down); MySQL 1040 (too many connections), 1045
            // (access denied), 1053 (shutdown).
            code.starts_with("08")
                || code.starts_with("28")
                || code.starts_with("53")
                || code.starts_with("57P")
                || matches!(code.as_str(), "1040" | "1045" | "1053" | "1927")
        }
        _ => false,
    }
}

/// Whether the error says a table does not exist.
fn is_missing_table(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            code == "42P01"
                || code == "1146"
                || code == "42S02"
                || db.message().contains("no such table")
        }
        _ => false,
    }
}

/// Whether the statement lost a race with another writer (deadlock, serialization, busy)
/// and may simply be run again.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            matches!(
                code.as_str(),
                "40001" | "40P01" | "1213" | "5" | "517" | "6"
            ) || db.message().contains("database is locked")
                || db.message().contains("Deadlock")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_and_scrubbed() {
        assert_eq!(password_of("postgres://u:pw@h/db").as_deref(), Some("pw"));
        assert_eq!(password_of("mysql://u@h/db"), None);
        assert_eq!(password_of("sqlite://var/x.db"), None);
        let text = scrub(
            "auth failed for hunter2 at postgres://u:hunter2@h/db",
            Some("hunter2"),
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
