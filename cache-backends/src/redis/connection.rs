//! One lazily made, automatically re-made connection to a Redis server, and the mapping
//! of its errors to [`TierError`]s that never show the password.

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use cache_core::{TierError, TierErrorKind};
use redis::aio::{MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, RedisError};

use super::options::RedisOptions;
use crate::background;

/// Opens (without connecting) a client for `url`; the error says what was expected and
/// never repeats the URL, which may hold a password.
pub(crate) fn parse_client(url: &str) -> Result<Client, String> {
    let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
    if !scheme_ok {
        return Err(
            "a URL starting with redis:// or rediss:// (redis://[user][:password@]host[:port][/db])"
                .into(),
        );
    }
    if url.starts_with("rediss://") && !cfg!(feature = "redis-tls") {
        return Err("a redis:// URL: rediss:// (TLS) needs cachet's `redis-tls` feature".into());
    }
    Client::open(url).map_err(|e| {
        // redis's parse errors describe the problem without echoing the URL, but scrub
        // anyway in case a future version does.
        let why = redact_text(&e.to_string(), password_of(url).as_deref());
        format!("a valid Redis URL, redis://[user][:password@]host[:port][/db] ({why})")
    })
}

/// The password part of a URL, if any, for scrubbing messages.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_owned())
}

/// A URL with its password replaced by `***`, for `Debug` output.
#[cfg(test)]
fn redact_url(url: &str) -> String {
    cache_core::redact::redact_url(url)
}

fn redact_text(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_owned(),
    }
}

/// A connection shared by every operation of one tier or bus.
pub(crate) struct Connection {
    client: Client,
    /// `redis://[user@]host:port/db`, never with the password.
    target: String,
    password: Option<String>,
    pub(crate) operation_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_value_size: usize,
    /// The live connection, `None` until first use and after a fault. Read by every
    /// operation, from the callers' threads: a read lock held for a clone, never across
    /// an `.await`.
    live: RwLock<Option<MultiplexedConnection>>,
    /// Held while connecting, so concurrent first uses make one connection, not several.
    connecting: tokio::sync::Mutex<()>,
}

impl Connection {
    /// A connection to be made on first use.
    pub(crate) fn new(opts: &RedisOptions) -> Result<Arc<Self>, String> {
        let client = parse_client(&opts.url)?;
        let info = client.get_connection_info();
        let redis = info.redis_settings();
        let (scheme, addr) = match info.addr() {
            ConnectionAddr::TcpTls { host, port, .. } => ("rediss", format!("{host}:{port}")),
            ConnectionAddr::Tcp(host, port) => ("redis", format!("{host}:{port}")),
            other => ("redis", other.to_string()),
        };
        let user = redis
            .username()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let target = format!("{scheme}://{user}{addr}/{}", redis.db());
        let password = redis.password().map(str::to_owned);
        Ok(Arc::new(Self {
            client,
            target: redact_text(&target, password.as_deref()),
            password,
            operation_timeout: opts.operation_timeout,
            connect_timeout: opts.connect_timeout,
            max_value_size: opts.max_value_size,
            live: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }))
    }

    /// Where this connects to, without credentials.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Runs `op` in the backend runtime's context with a connection, bounded by `timeout`
    /// (`None`: only each command's own response timeout bounds it). Connecting is
    /// bounded by `connect_timeout`. Faults drop the connection so the next call
    /// reconnects; a kept connection found dead (a restarted server) is replaced and `op`
    /// retried once on the new one, so a restart costs no failure the breaker would count.
    pub(crate) fn run<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        timeout: Option<Duration>,
        op: F,
    ) -> background::Remote<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send,
        T: Send + 'static,
    {
        let this = Arc::clone(self);
        background::run(async move { this.bounded(what, timeout, op).await })
    }

    /// [`run`](Self::run)'s work, on the caller's task.
    async fn bounded<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        timeout: Option<Duration>,
        op: F,
    ) -> Result<T, TierError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send,
    {
        let work = async {
            let (conn, kept) = self.connection().await?;
            if kept {
                self.retrying_once(what, conn, op).await
            } else {
                op(conn).await.map_err(|e| self.fault(what, &e))
            }
        };
        match timeout {
            None => work.await,
            Some(limit) => match tokio::time::timeout(limit, work).await {
                Ok(out) => out,
                Err(_) => {
                    self.reset();
                    Err(TierError::with_kind(
                        format!("redis {}: {what} timed out after {limit:?}", self.target),
                        TierErrorKind::Unavailable,
                    ))
                }
            },
        }
    }

    /// Runs `op` on `conn`, a connection kept from earlier operations; if `conn` turns out
    /// dead (the server restarted or dropped it since), runs `op` once more on a new one.
    /// A dead connection is no sign of an unhealthy server: only the retry's failure is
    /// reported (and counted by the breaker).
    async fn retrying_once<T, F, Fut>(
        &self,
        what: &'static str,
        conn: MultiplexedConnection,
        op: F,
    ) -> Result<T, TierError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut + Clone,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let again = op.clone();
        match op(conn).await {
            Ok(value) => Ok(value),
            Err(e) if is_dead_connection(&e) => {
                tracing::debug!(target = %self.target, what, "cachet: redis connection found dead; reconnecting once");
                self.forget_dead().await;
                let (conn, _) = self.connection().await?;
                again(conn).await.map_err(|e| self.fault(what, &e))
            }
            Err(e) => Err(self.fault(what, &e)),
        }
    }

    /// [`run`](Self::run) for an operation that sends one request (a command or a
    /// pipeline), bounded by `operation_timeout` like every operation. On a live
    /// connection the connection's response timeout (= `operation_timeout`) bounds that
    /// request already, so no timer of its own is armed: two timers per read cost ~10 % of
    /// the client's CPU with 64 concurrent readers (BENCHMARKS.md, "Redis L2"). Only an
    /// operation that must connect first (or reconnect, its connection found dead) is
    /// bounded as a whole, as `run` does.
    pub(crate) fn run_one<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        op: F,
    ) -> background::Remote<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send,
        T: Send + 'static,
    {
        match self.current() {
            Some(conn) => {
                let this = Arc::clone(self);
                background::run(async move {
                    let again = op.clone();
                    match op(conn).await {
                        Ok(value) => Ok(value),
                        Err(e) if is_dead_connection(&e) => {
                            tracing::debug!(target = %this.target, what, "cachet: redis connection found dead; reconnecting once");
                            this.forget_dead().await;
                            let limit = Some(this.operation_timeout);
                            // A new connection: `bounded` does not retry again.
                            this.bounded(what, limit, again).await
                        }
                        Err(e) => Err(this.fault(what, &e)),
                    }
                })
            }
            None => self.run(what, Some(self.operation_timeout), op),
        }
    }

    /// The live connection, made now if there is none; `true` with a connection kept
    /// from earlier (which may have died since), `false` with one made for this call.
    async fn connection(&self) -> Result<(MultiplexedConnection, bool), TierError> {
        if let Some(conn) = self.current() {
            return Ok((conn, true));
        }
        let _connecting = self.connecting.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(conn) = self.current() {
            return Ok((conn, true));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.operation_timeout));
        let attempt = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let conn = match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(self.connect_error(&e.to_string())),
            Err(_) => {
                return Err(self.connect_error(&format!(
                    "no connection within connect_timeout ({:?})",
                    self.connect_timeout
                )))
            }
        };
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok((conn, false))
    }

    /// A clone of the live connection, if there is one. (No code panics while holding
    /// the lock, so a poisoned lock still holds a consistent value.)
    fn current(&self) -> Option<MultiplexedConnection> {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A fresh pub/sub connection, bounded by `connect_timeout`.
    pub(crate) async fn pubsub(&self) -> Result<PubSub, TierError> {
        match tokio::time::timeout(self.connect_timeout, self.client.get_async_pubsub()).await {
            Ok(Ok(ps)) => Ok(ps),
            Ok(Err(e)) => Err(self.connect_error(&e.to_string())),
            Err(_) => Err(self.connect_error(&format!(
                "no connection within connect_timeout ({:?})",
                self.connect_timeout
            ))),
        }
    }

    /// Forgets the live connection, so the next operation reconnects. Never waits: if
    /// another task is connecting, it is connecting afresh already.
    fn reset(&self) {
        if let Ok(_connecting) = self.connecting.try_lock() {
            *self.live.write().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Forgets a connection found dead, waiting for a connect in progress rather than
    /// skipping (as [`reset`](Self::reset) does), so the retry that follows connects anew.
    /// At worst it forgets a connection another task has just made: one extra connect.
    async fn forget_dead(&self) {
        let _connecting = self.connecting.lock().await;
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A failure to connect (refused, timed out, or refused credentials): the server
    /// cannot be used, so the circuit breaker should count it.
    pub(crate) fn connect_error(&self, why: &str) -> TierError {
        TierError::with_kind(
            format!(
                "redis {}: cannot connect: {}",
                self.target,
                redact_text(why, self.password.as_deref())
            ),
            TierErrorKind::Unavailable,
        )
    }

    /// Maps a command's error; connection-level faults also drop the connection.
    fn fault(&self, what: &str, e: &RedisError) -> TierError {
        let unavailable = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error();
        if unavailable {
            self.reset();
        }
        TierError::with_kind(
            format!(
                "redis {}: {what} failed: {}",
                self.target,
                redact_text(&e.to_string(), self.password.as_deref())
            ),
            if unavailable {
                TierErrorKind::Unavailable
            } else {
                TierErrorKind::Other
            },
        )
    }
}

/// Whether `e` says the connection itself is gone (closed, reset, refused), as after a
/// server restart: worth one retry on a new connection. Not a timeout (the server may be
/// frozen; waiting again would double the wait) and not the server's own answer.
fn is_dead_connection(e: &RedisError) -> bool {
    !e.is_timeout()
        && (e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_is_found_and_redacted() {
        assert_eq!(password_of("redis://:pw@h:1/0").as_deref(), Some("pw"));
        assert_eq!(password_of("redis://u:p%40w@h/0").as_deref(), Some("p%40w"));
        assert_eq!(password_of("redis://u@h/0"), None);
        assert_eq!(password_of("redis://h:6379/0"), None);
        assert_eq!(redact_url("redis://u:sec@h/0"), "redis://u:***@h/0");
    }

    #[test]
    fn target_never_holds_the_password() {
        let c = Connection::new(&RedisOptions::new("redis://bob:hunter2@127.0.0.1:7/3")).unwrap();
        assert_eq!(c.target(), "redis://bob@127.0.0.1:7/3");
        let e = c.connect_error("auth failed for hunter2");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for url in ["http://x:pw@h", "redis://:pw@h:notaport/0", "pw"] {
            let why = parse_client(url).unwrap_err();
            assert!(!why.contains("pw"), "{why}");
        }
    }
}
