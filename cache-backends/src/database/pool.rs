//! The connection pool of one database (lazily connected, on the backend runtime), the
//! schema check made once at first use, and the mapping of database errors to
//! [`TierError`]s that never show the password.

use std::future::Future;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cache_core::{TierError, TierErrorKind};
use tokio::runtime::Handle;
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

use super::dialect::{Dialect, Statements, Table};
use super::options::DatabaseOptions;
use crate::background;

/// The connections of one of the compiled-in databases.
#[derive(Debug)]
pub(crate) enum Pool {
    #[cfg(feature = "postgres")]
    Postgres(Conns<sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(Conns<sqlx::MySql>),
    #[cfg(feature = "sqlite")]
    Sqlite(Conns<sqlx::Sqlite>),
}

/// Runs `$body` with `$c` bound to a leased connection (`&mut` the concrete connection) of
/// `$db`'s pool, whichever database it is: the statements differ by dialect, the Rust
/// around them does not. `$body` is a `Result<_, sqlx::Error>`; the connection is kept for
/// the next operation when it is `Ok`, and handed back to sqlx (which tests it) otherwise,
/// or when the body returned early or was cancelled. `$home` is where that hand-back
/// runs (see [`Lease`]). Used inside a function returning `Result<_, sqlx::Error>`.
macro_rules! on_conn {
    ($db:expr, $home:expr, $c:ident => $body:expr) => {
        match &$db.pool {
            #[cfg(feature = "postgres")]
            $crate::database::pool::Pool::Postgres(conns) => {
                $crate::database::pool::leased!(conns, $home, $c => $body)
            }
            #[cfg(feature = "mysql")]
            $crate::database::pool::Pool::MySql(conns) => {
                $crate::database::pool::leased!(conns, $home, $c => $body)
            }
            #[cfg(feature = "sqlite")]
            $crate::database::pool::Pool::Sqlite(conns) => {
                $crate::database::pool::leased!(conns, $home, $c => $body)
            }
        }
    };
}
pub(crate) use on_conn;

/// [`on_conn!`]'s work on one database's connections `$conns`: the lease, `$body` with `$c`
/// bound to its connection, and the connection kept when `$body` is `Ok`.
macro_rules! leased {
    ($conns:expr, $home:expr, $c:ident => $body:expr) => {{
        let mut lease = $conns.lease($home).await?;
        let $c = &mut *lease;
        let out = $body;
        lease.keep_if(out.is_ok());
        out
    }};
}
pub(crate) use leased;

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
        // Every connection to a SQLite `:memory:` database is a database of its own.
        let memory = dialect == Dialect::Sqlite
            && (opts.url.contains(":memory:") || opts.url.contains("mode=memory"));
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
                Pool::Postgres(Conns::new(pool_options(opts).connect_lazy_with(connect)))
            }
            #[cfg(feature = "mysql")]
            Dialect::MySql => {
                let url = opts.url.replacen("mariadb://", "mysql://", 1);
                let connect = sqlx::mysql::MySqlConnectOptions::from_str(&url)
                    .map_err(scrub)
                    .map_err(|why| ("url", why))?;
                Pool::MySql(Conns::new(pool_options(opts).connect_lazy_with(connect)))
            }
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => {
                let connect = sqlx::sqlite::SqliteConnectOptions::from_str(&opts.url)
                    .map_err(scrub)
                    .map_err(|why| ("url", why))?
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(opts.operation_timeout);
                let mut options = pool_options(opts);
                if memory {
                    // One connection, kept forever, is the whole cache.
                    options = options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                Pool::Sqlite(Conns::new(options.connect_lazy_with(connect)))
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
    ) -> background::Remote<'static, T>
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
    ) -> background::Remote<'static, T>
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
                        let created = async {
                            on_conn!(self, None, c => sqlx::query(ddl).execute(c).await.map(|_| ()))
                        }
                        .await;
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
        match &self.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(conns) => conns.evict_idle(),
            #[cfg(feature = "mysql")]
            Pool::MySql(conns) => conns.evict_idle(),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(conns) => conns.evict_idle(),
        }
    }

    async fn probe(&self) -> Result<(), sqlx::Error> {
        for probe in &self.sql.probe {
            on_conn!(self, None, c => sqlx::query(probe).execute(c).await.map(|_| ()))?;
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

/// How long a kept connection may sit unused before it goes back to sqlx (which closes
/// it after its own idle timeout) instead of serving the next operation.
const IDLE_LIMIT: Duration = Duration::from_secs(300);
/// How long cachet keeps reusing one connection before it goes back to sqlx (which ends
/// connections past their lifetime): long-lived sessions pick up server-side changes.
const LIFETIME_LIMIT: Duration = Duration::from_secs(30 * 60);

/// A connection kept between operations.
#[derive(Debug)]
struct Kept<DB: sqlx::Database> {
    conn: sqlx::pool::PoolConnection<DB>,
    /// When cachet took it from sqlx.
    taken: Instant,
    /// When its last operation ended.
    since: Instant,
}

impl<DB: sqlx::Database> Kept<DB> {
    fn stale(&self, now: Instant) -> bool {
        now.duration_since(self.since) > IDLE_LIMIT
            || now.duration_since(self.taken) > LIFETIME_LIMIT
    }
}

/// The connections of one database: sqlx's pool makes, tests and closes them; cachet
/// keeps the ones whose operation ended cleanly in a list of its own, so the next
/// operation takes one with no round trip.
///
/// sqlx hands a connection back to its pool by testing it first (`ping`: a round trip to
/// the server, or to SQLite's worker thread) in a spawned task, so through `&PgPool` every
/// statement costs two round trips and a task (perf and the 64-task bench: BENCHMARKS.md,
/// "Database L2"). A connection whose statement completed is in a known state and needs no
/// test; one whose operation failed, returned early or was cancelled (a timeout) may hold
/// a half-read answer or an open transaction, so it goes back through sqlx's tested path.
///
/// Every connection is taken through [`lease`](Self::lease), which first takes one of
/// `max_connections` permits (a fair queue): a permit holder always finds a kept
/// connection or room in sqlx's pool, so kept connections can never starve a waiter.
#[derive(Debug)]
pub(crate) struct Conns<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    kept: Mutex<Vec<Kept<DB>>>,
    permits: Semaphore,
}

impl<DB: sqlx::Database> Conns<DB> {
    fn new(pool: sqlx::Pool<DB>) -> Self {
        let permits = Semaphore::new(pool.options().get_max_connections().max(1) as usize);
        Self {
            pool,
            kept: Mutex::new(Vec::new()),
            permits,
        }
    }

    /// A connection for one operation: a kept one (the most recently used), or one of
    /// sqlx's pool (made on the current runtime, the backend's, if one must be made). A
    /// connection that is not kept goes back to sqlx on `home` (see [`Lease`]).
    pub(crate) async fn lease(&self, home: Option<Handle>) -> Result<Lease<'_, DB>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let now = Instant::now();
        let mut stale = Vec::new();
        let reused = {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                match kept.pop() {
                    Some(k) if k.stale(now) => stale.push(k),
                    other => break other,
                }
            }
        };
        // Outside the lock: sqlx tests (or closes) them in tasks of its own.
        drop(stale);
        let (conn, taken) = match reused {
            Some(k) => (k.conn, k.taken),
            None => (self.pool.acquire().await?, now),
        };
        Ok(Lease {
            conns: self,
            conn: Some(conn),
            taken,
            keep: false,
            home,
            _permit: permit,
        })
    }

    /// Closes every kept connection (and sqlx's idle ones): after a connection fault (a
    /// restarted or failed-over server) they are likely dead too, and each would fail one
    /// operation (and trip the circuit breaker again) before being replaced. New ones are
    /// made on demand.
    fn evict_idle(&self) {
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(PoisonError::into_inner));
        for k in kept {
            drop(k.conn.detach());
        }
        while let Some(conn) = self.pool.try_acquire() {
            drop(conn.detach());
        }
    }
}

/// A connection leased for one operation, with its permit. Dropped after
/// [`keep_if(true)`](Self::keep_if), it is kept for the next operation; otherwise it goes
/// back to sqlx's pool, which tests it (or closes it) in a task spawned on `home`, the
/// runtime of the operation's caller, so that work runs where raw sqlx's would, not on the
/// backend's one thread; `None` (outside any runtime, `sqlite::memory:`): on the backend
/// runtime.
pub(crate) struct Lease<'a, DB: sqlx::Database> {
    conns: &'a Conns<DB>,
    conn: Option<sqlx::pool::PoolConnection<DB>>,
    taken: Instant,
    keep: bool,
    home: Option<Handle>,
    /// Released after the connection is kept or handed back (fields drop after `drop`).
    _permit: SemaphorePermit<'a>,
}

impl<DB: sqlx::Database> Lease<'_, DB> {
    /// Whether the operation ended cleanly, so the connection may serve the next one.
    pub(crate) fn keep_if(&mut self, clean: bool) {
        self.keep = clean;
    }
}

impl<DB: sqlx::Database> std::ops::Deref for Lease<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        // `conn` is `Some` from construction until `drop`.
        self.conn.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for Lease<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.conn.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<DB: sqlx::Database> Drop for Lease<'_, DB> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.keep {
            let kept = Kept {
                conn,
                taken: self.taken,
                since: Instant::now(),
            };
            self.conns
                .kept
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(kept);
            return;
        }
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

/// A statement bounded by `limit`, its timeout reported as an I/O timeout (unavailable).
pub(crate) async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("statement timed out after {limit:?}"),
        ))),
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
