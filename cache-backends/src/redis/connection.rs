//! One lazily made, automatically re-made connection to a Redis server, and the mapping
//! of its errors to [`TierError`]s that never show the password.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::Either;
use futures_util::FutureExt;

use cache_core::{TierError, TierErrorKind};
use redis::aio::PubSub;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, RedisError};

use super::batch;
use super::cluster;
use super::local::{self, Found, Locals};
use super::options::RedisOptions;
use super::router;
use super::subscription::{self, Flavour, Messages};
use super::topology::{self, redact_text, Conn, Source};
use crate::background;

/// [`Connection::flavour`]'s states.
const FLAVOUR_UNKNOWN: u8 = 0;
const FLAVOUR_CLASSIC: u8 = 1;

/// A URL with its password replaced by `***`, for `Debug` output.
#[cfg(test)]
fn redact_url(url: &str) -> String {
    cache_core::redact::redact_url(url)
}

/// Why a sharded subscription was not made.
enum Refusal {
    /// The server has no sharded pub/sub: use classic.
    Unknown,
    Failed(TierError),
}

/// A connection shared by every operation of one tier or bus: to one server, to a
/// cluster, or to the master the Sentinels name (see [`super::topology`]).
pub(crate) struct Connection {
    source: Source,
    /// `redis://[user@]host:port/db` (or the cluster's seeds, or the Sentinels), never
    /// with the password.
    target: String,
    password: Option<String>,
    pub(crate) operation_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// `max_value_size` in decimal: the last byte a read asks for (`GETRANGE key 0 end`),
    /// formatted once rather than at every read (single reads and batches alike).
    pub(crate) read_end: String,
    /// How often a bus subscriber checks its subscribed node (`Duration::ZERO`: never).
    pub(crate) heartbeat: Duration,
    /// The live connection, `None` until first use and after a fault. Read by every
    /// operation, from the callers' threads: a read lock held for a clone, never across
    /// an `.await`.
    live: RwLock<Option<Conn>>,
    /// Bumped whenever `live` is dropped: a runtime's connection made at an older
    /// generation is retired ([`Locals::get`]).
    generation: AtomicU64,
    /// Held while connecting, so concurrent first uses make one connection, not several.
    connecting: tokio::sync::Mutex<()>,
    /// On a cluster, whether pub/sub is classic: set once a server refused a sharded
    /// command as unknown (before Redis 7). Until then, sharded.
    flavour: AtomicU8,
    /// Off a cluster, the connections made on callers' `current_thread` runtimes, which
    /// their one-request operations use when that runtime polls them ([`super::local`]).
    locals: Locals,
    /// Whether callers' `current_thread` runtimes get connections of their own.
    runtime_connections: bool,
}

impl Connection {
    /// A connection to be made on first use.
    pub(crate) fn new(opts: &RedisOptions) -> Result<Arc<Self>, String> {
        let opened = topology::open(&opts.topology, opts.connect_timeout, opts.operation_timeout)?;
        Ok(Arc::new(Self {
            source: opened.source,
            target: opened.target,
            password: opened.password,
            operation_timeout: opts.operation_timeout,
            connect_timeout: opts.connect_timeout,
            read_end: opts.max_value_size.to_string(),
            heartbeat: opts.heartbeat,
            live: RwLock::new(None),
            generation: AtomicU64::new(0),
            connecting: tokio::sync::Mutex::new(()),
            flavour: AtomicU8::new(FLAVOUR_UNKNOWN),
            locals: Locals::default(),
            // One server only: a runtime's own connection to a Sentinel master would look the
            // master up through the shared Sentinel client (its lock held by a task of a
            // runtime that may sit idle, stalling the shared reconnect after a failover), and
            // would not follow the shared connection to a promoted master.
            runtime_connections: opts.runtime_connections
                && matches!(opts.topology, topology::Topology::Node(_)),
        }))
    }

    /// The pub/sub flavour: sharded on a cluster that has it, classic everywhere else.
    pub(crate) fn flavour(&self) -> Flavour {
        if self.is_cluster() && self.flavour.load(Ordering::Relaxed) != FLAVOUR_CLASSIC {
            Flavour::Sharded
        } else {
            Flavour::Classic
        }
    }

    /// The server refused a sharded pub/sub command as unknown: classic from now on.
    pub(crate) fn use_classic_pubsub(&self) {
        self.flavour.store(FLAVOUR_CLASSIC, Ordering::Relaxed);
    }

    /// A subscription to `channels`, bounded by the timeouts: sharded on a cluster that
    /// has sharded pub/sub, classic otherwise. Errors say which step failed.
    pub(crate) async fn subscribe(&self, channels: &[&str]) -> Result<Messages, TierError> {
        if self.flavour() == Flavour::Sharded {
            if let Some(cluster) = self.source.cluster() {
                match self.subscribe_sharded(cluster, channels).await {
                    Ok(messages) => return Ok(messages),
                    Err(Refusal::Unknown) => self.use_classic_pubsub(),
                    Err(Refusal::Failed(e)) => return Err(e),
                }
            }
        }
        let mut ps = self.pubsub().await?;
        for channel in channels {
            match tokio::time::timeout(self.operation_timeout, ps.subscribe(*channel)).await {
                Ok(Ok(())) => {}
                // A refused SUBSCRIBE is a server's reply (NOPERM, ...): it holds no password.
                Ok(Err(e)) => {
                    return Err(TierError::with_kind(
                        format!("redis {}: SUBSCRIBE {channel} refused: {e}", self.target),
                        TierErrorKind::Other,
                    ))
                }
                Err(_) => {
                    return Err(TierError::with_kind(
                        format!(
                            "redis {}: SUBSCRIBE {channel} timed out after {:?}",
                            self.target, self.operation_timeout
                        ),
                        TierErrorKind::Unavailable,
                    ))
                }
            }
        }
        let (sink, stream) = ps.split();
        Ok(Messages::Classic { sink, stream })
    }

    async fn subscribe_sharded(
        &self,
        cluster: &topology::ClusterSource,
        channels: &[&str],
    ) -> Result<Messages, Refusal> {
        let (tx, pushes) = tokio::sync::mpsc::unbounded_channel();
        let client = cluster
            .push_client(tx)
            .map_err(|e| Refusal::Failed(self.connect_error(&e.to_string())))?;
        let mut conn =
            match tokio::time::timeout(self.connect_timeout * 4, client.get_async_connection())
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(Refusal::Failed(self.connect_error(&e.to_string()))),
                Err(_) => {
                    return Err(Refusal::Failed(self.connect_error(&format!(
                        "no cluster connection within {:?}",
                        self.connect_timeout * 4
                    ))))
                }
            };
        for channel in channels {
            match tokio::time::timeout(self.operation_timeout, conn.ssubscribe(*channel)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if subscription::is_unknown_command(&e) => return Err(Refusal::Unknown),
                Ok(Err(e)) => {
                    return Err(Refusal::Failed(TierError::with_kind(
                        format!(
                            "redis {}: SSUBSCRIBE {channel} refused: {}",
                            self.target,
                            redact_text(&e.to_string(), self.password.as_deref())
                        ),
                        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                            TierErrorKind::Unavailable
                        } else {
                            TierErrorKind::Other
                        },
                    )))
                }
                Err(_) => {
                    return Err(Refusal::Failed(TierError::with_kind(
                        format!(
                            "redis {}: SSUBSCRIBE {channel} timed out after {:?}",
                            self.target, self.operation_timeout
                        ),
                        TierErrorKind::Unavailable,
                    )))
                }
            }
        }
        let node = match channels.first() {
            Some(channel) => {
                subscription::subscribed_node(&mut conn, channel.as_bytes(), self.operation_timeout)
                    .await
            }
            None => None,
        };
        if node.is_none() {
            // Once per subscription made: its heartbeat may ping another node than the one
            // it is on (after a failover, the promoted master) and miss that one freezing.
            let channel = channels.first().copied().unwrap_or_default();
            tracing::warn!(target = %self.target, channel, "cachet: the node holding the bus subscription could not be told (`CLIENT INFO` refused or not understood: an ACL user needs `+client|info`, Redis 7.0.3 or later); its heartbeat goes to the slot's master, which after a failover may not be the node the subscription is on");
        }
        Ok(Messages::Sharded {
            conn,
            pushes,
            channels: channels.iter().map(|c| c.as_bytes().to_vec()).collect(),
            node,
        })
    }

    /// Whether this connects to a Redis Cluster (some operations differ there).
    pub(crate) fn is_cluster(&self) -> bool {
        self.source.is_cluster()
    }

    /// On a cluster, the master a command on `key` goes to directly now, if routed.
    pub(crate) fn routed_master(&self, key: &str) -> Option<cluster::Node> {
        self.source
            .cluster()?
            .router()
            .routed_master(key.as_bytes())
    }

    /// Where this connects to, without credentials.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// `text` (an error's, for a log) without this connection's password.
    pub(crate) fn redact(&self, text: &str) -> String {
        redact_text(text, self.password.as_deref())
    }

    /// Runs `op` in the backend runtime's context with a connection, bounded by `timeout`
    /// (`None`: only each command's own response timeout bounds it). Connecting is
    /// bounded by `connect_timeout`. Faults drop the connection so the next call
    /// reconnects; a kept connection found dead (a restarted server) is replaced and `op`
    /// retried once on the new one, so a restart costs no failure the breaker would count.
    pub(crate) fn run<'a, T, F, Fut>(
        self: &'a Arc<Self>,
        what: &'static str,
        timeout: Option<Duration>,
        op: F,
    ) -> background::Remote<'a, T>
    where
        F: FnOnce(Conn) -> Fut + Clone + Send + 'a,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'a,
        T: Send + 'a,
    {
        background::run(self.bounded(what, timeout, op))
    }

    /// [`run`](Self::run)'s work, on the caller's task.
    async fn bounded<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        timeout: Option<Duration>,
        op: F,
    ) -> Result<T, TierError>
    where
        F: FnOnce(Conn) -> Fut + Clone + Send,
        Fut: Future<Output = Result<T, RedisError>> + Send,
    {
        let work = async {
            let (conn, kept) = self.connection().await?;
            // A cluster connection re-makes its node connections and retries by itself
            // (within operation_timeout), so it is never found dead as a whole.
            if kept && !self.is_cluster() {
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
                    // A timeout says nothing of the server process: runtimes keep theirs.
                    self.reset(false);
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
        conn: Conn,
        op: F,
    ) -> Result<T, TierError>
    where
        F: FnOnce(Conn) -> Fut + Clone,
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
    /// pipeline) on `key`, bounded by `operation_timeout` like every operation. On a live
    /// connection the connection's response timeout (= `operation_timeout`) bounds that
    /// request already, so no timer of its own is armed: two timers per read cost ~10 % of
    /// the client's CPU with 64 concurrent readers (BENCHMARKS.md, "Redis L2"). Only an
    /// operation that must connect first (or reconnect, its connection found dead) is
    /// bounded as a whole, as `run` does. On a cluster, see [`routed`](Self::routed).
    ///
    /// `op` must be idempotent (a read, a `SET`, a `PEXPIRE`): it may be sent more than
    /// once. Off a cluster, once more on a new connection when its kept one turns out dead;
    /// from a `current_thread` runtime with a connection of its own, up to three times: on
    /// that connection, then, found dead, on the shared one, and once more on a new shared
    /// one when that is found dead too (a server restart kills both). On a cluster, once
    /// more through the cluster connection after a failed direct attempt (whose command the
    /// node may have carried out before the failure was seen). A command that must run at
    /// most once goes through [`run`](Self::run).
    ///
    /// `op`'s future must make every timer and socket it needs at its first poll, as one
    /// request does (redis arms the response timeout when it sends the request): off a
    /// cluster, on the shared connection, it is polled with the backend runtime's context
    /// entered at its first poll only ([`background::in_context`]), so a second request
    /// sent at a later poll would arm its timeout outside that context (on the caller's
    /// runtime, or with none at all: a panic). An operation of several requests one after
    /// another goes through [`run`](Self::run), which enters the context at every poll. The
    /// callers: the tier's `GET`, `SET` and `EVAL touch`, one request each; the bus's
    /// `PUBLISH` pipeline, one request, whose `SPUBLISH` refused as unknown sends a second
    /// one, but `SPUBLISH` is sent on a cluster only ([`flavour`](Self::flavour)), where
    /// this goes through [`routed`](Self::routed) or [`run`](Self::run), which enter the
    /// context at every poll.
    pub(crate) fn run_one<'a, T, F, Fut>(
        self: &'a Arc<Self>,
        what: &'static str,
        key: &str,
        op: F,
    ) -> impl Future<Output = Result<T, TierError>> + Send + 'a
    where
        F: FnOnce(Conn) -> Fut + Clone + Send + 'a,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'a,
        T: Send + 'a,
    {
        if self.is_cluster() {
            let started = match self.current() {
                Some(Conn::Cluster(cluster)) => self.routed(what, key, cluster, op),
                _ => self.run(what, Some(self.operation_timeout), op),
            };
            return Either::Left(started);
        }
        Either::Right(self.on_node(what, op))
    }

    /// [`run_one`](Self::run_one) off a cluster, its path chosen at its first poll (which
    /// says who polls it): on the connection of the caller's `current_thread` runtime when
    /// that runtime polls it ([`super::local`]), on the backend runtime's connection
    /// otherwise. On a live connection the operation is polled inline, no box of its own:
    /// the tier boxes this future once, and a second box per read cost an allocation and a
    /// copy of the future (BENCHMARKS.md, "64 tasks, phase J").
    async fn on_node<T, F, Fut>(self: &Arc<Self>, what: &'static str, op: F) -> Result<T, TierError>
    where
        F: FnOnce(Conn) -> Fut + Clone + Send,
        Fut: Future<Output = Result<T, RedisError>> + Send,
        T: Send,
    {
        match std::future::poll_fn(|cx| Poll::Ready(self.path(cx))).await {
            Path::Local(ticket, conn) => self.on_local(what, ticket, conn, op).await,
            Path::Shared(conn) => background::in_context(|| self.on_shared(what, conn, op)).await,
            Path::Connect => self.run(what, Some(self.operation_timeout), op).await,
        }
    }

    /// The tier's read of `stored` off a cluster, [`on_node`](Self::on_node)'s work for the
    /// one operation every cached read makes: `GETRANGE stored 0 max_value_size`
    /// ([`batch::getrange`]) on the path [`path`](Self::path) picks at the first poll, with
    /// the same failures, retries and timeouts, in one state machine: the command and
    /// redis's request itself held inline (not boxed again, as `ConnectionLike` boxes it:
    /// one allocation of ~1.1 KB a read less), no operation closure made and kept for a retry
    /// (the retry, when the connection is found dead, makes its own), no future of a
    /// generic operation built and moved in at each level. The tier boxes it once
    /// (BENCHMARKS.md, "64 tasks, phase L").
    ///
    /// On the shared connection the request's first poll, where redis arms its response
    /// timeout (`operation_timeout`), is made in the backend runtime's context, as
    /// [`background::in_context`] does; on the caller's runtime's own connection, in the
    /// caller's.
    pub(crate) async fn read(self: &Arc<Self>, stored: &str) -> Result<Option<Vec<u8>>, TierError> {
        const WHAT: &str = "GET";
        let last = self.read_end.as_str();
        let again = move |c| batch::read(c, stored, last);
        let (mut node, ticket) = match std::future::poll_fn(|cx| Poll::Ready(self.path(cx))).await {
            Path::Local(ticket, Conn::Node(node)) => (node, Some(ticket)),
            Path::Shared(Conn::Node(node)) => (node, None),
            // No live connection, or (never, off a cluster) a cluster's.
            _ => return self.run(WHAT, Some(self.operation_timeout), again).await,
        };
        let runtime = match ticket {
            Some(_) => None,
            None => Some(background::handle()?),
        };
        let cmd = batch::getrange_reusing(stored, last);
        // redis's request itself, held here: through `ConnectionLike` it is boxed again (a
        // second allocation, ~1.1 KB, past glibc's per-thread cache as this one is).
        let replied = {
            let request = std::pin::pin!(node.send_packed_command(&cmd));
            background::first_poll_in(runtime, request).await
        };
        batch::spare(cmd, stored);
        let e = match replied.and_then(batch::range_reply) {
            Ok(found) => return Ok(found),
            Err(e) => e,
        };
        match ticket {
            Some(ticket) => match self.local_failed(WHAT, ticket, &e) {
                None => self.run(WHAT, Some(self.operation_timeout), again).await,
                Some(failed) => Err(failed),
            },
            None => match self.shared_failed(WHAT, &e) {
                // Boxed apart, as `on_shared`'s: it connects, rarely.
                None => background::run(self.after_dead(WHAT, again)).await,
                Some(failed) => Err(failed),
            },
        }
    }

    /// Where [`on_node`](Self::on_node)'s operation, polled with `cx`, goes; starts making
    /// the connection of the caller's `current_thread` runtime when it has none yet.
    fn path(self: &Arc<Self>, cx: &Context<'_>) -> Path {
        let runtime = if self.runtime_connections {
            local::driving_runtime(cx)
        } else {
            None
        };
        if let Some(runtime) = runtime {
            let generation = self.generation.load(Ordering::Acquire);
            match self.locals.get(runtime.id(), generation) {
                Found::Ready(conn, ticket) => return Path::Local(ticket, conn),
                Found::Make(kept, ticket) => self.make_local(&runtime, ticket, kept),
                Found::Shared => {}
            }
        }
        match self.current() {
            Some(conn) => Path::Shared(conn),
            None => Path::Connect,
        }
    }

    /// `op` on `conn`, the shared connection, kept from earlier operations; found dead,
    /// once more on a new one (see [`run_one`](Self::run_one)).
    ///
    /// Every read off a `current_thread` runtime's own connection boxes this future (inside
    /// the tier's box of [`run_one`](Self::run_one)'s), so it is kept small: the retry, which connects (redis's
    /// connect future, the `connecting` lock, a timer), is boxed apart, only when a
    /// connection is found dead. Inline, it made the read's box ~4 KB, past the size
    /// glibc's allocator serves from each thread's own cache (1,032 bytes): with 64
    /// callers on two workers every read then took the allocator's shared arena locks,
    /// which cost the 64-task throughput a third of raw redis's (BENCHMARKS.md, "Redis L2,
    /// 64 tasks: where the throughput went").
    async fn on_shared<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        conn: Conn,
        op: F,
    ) -> Result<T, TierError>
    where
        F: FnOnce(Conn) -> Fut + Clone + Send,
        Fut: Future<Output = Result<T, RedisError>> + Send,
        T: Send,
    {
        let again = op.clone();
        match op(conn).await {
            Ok(value) => Ok(value),
            Err(e) => match self.shared_failed(what, &e) {
                // Boxed apart (see above), and in the backend runtime's context at every
                // poll: it connects, and `in_context` enters the context at the first only.
                None => background::run(self.after_dead(what, again)).await,
                Some(failed) => Err(failed),
            },
        }
    }

    /// What `e`, the failure of a one-request operation on the shared connection, leads to:
    /// `None` when the connection is found dead (the operation is to be sent once more, on a
    /// new connection: [`after_dead`](Self::after_dead)), else the error to fail with.
    fn shared_failed(&self, what: &'static str, e: &RedisError) -> Option<TierError> {
        if is_dead_connection(e) {
            tracing::debug!(target = %self.target, what, "cachet: redis connection found dead; reconnecting once");
            return None;
        }
        Some(self.fault(what, e))
    }

    /// [`on_shared`](Self::on_shared)'s retry: forgets the dead connection and runs `op`
    /// on a new one, bounded by `operation_timeout` (a new connection: `bounded` does not
    /// retry again).
    async fn after_dead<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        op: F,
    ) -> Result<T, TierError>
    where
        F: FnOnce(Conn) -> Fut + Clone + Send,
        Fut: Future<Output = Result<T, RedisError>> + Send,
    {
        self.forget_dead().await;
        self.bounded(what, Some(self.operation_timeout), op).await
    }

    /// `op` on `conn`, the connection of the caller's runtime (made by the connect of
    /// `ticket`), polled in the caller's context (its timers and sockets are that
    /// runtime's). A connection-level failure retires it (reads go through the backend's
    /// connection for a while; not counted as a failed connect) but keeps the shared
    /// connection, unless the server says it is no longer a master (`READONLY`); one found
    /// dead is retried once on the shared connection, as [`run_one`](Self::run_one) retries
    /// on its own.
    async fn on_local<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        ticket: local::Ticket,
        conn: Conn,
        op: F,
    ) -> Result<T, TierError>
    where
        F: FnOnce(Conn) -> Fut + Clone + Send,
        Fut: Future<Output = Result<T, RedisError>> + Send,
        T: Send,
    {
        let again = op.clone();
        match op(conn).await {
            Ok(value) => Ok(value),
            Err(e) => match self.local_failed(what, ticket, &e) {
                None => self.run(what, Some(self.operation_timeout), again).await,
                Some(failed) => Err(failed),
            },
        }
    }

    /// What `e`, the failure of a one-request operation on the connection of a runtime (made
    /// by the connect of `ticket`), leads to: `None` when that connection is found dead (it
    /// is retired, and the operation sent once more on the shared one), else the error to
    /// fail with (a connection-level failure retires it too).
    fn local_failed(
        &self,
        what: &'static str,
        ticket: local::Ticket,
        e: &RedisError,
    ) -> Option<TierError> {
        if is_dead_connection(e) {
            self.locals.retire(ticket);
            tracing::debug!(target = %self.target, what, "cachet: a runtime's own redis connection found dead; using the shared one");
            return None;
        }
        if is_connection_fault(e) {
            self.locals.retire(ticket);
        }
        // The shared connection is another one: only a server no longer master says
        // something of it too.
        if e.code() == Some("READONLY") {
            Some(self.fault(what, e))
        } else {
            Some(self.error(what, e))
        }
    }

    /// Makes the connection of `runtime` (the connect of `ticket`) on a task of that
    /// runtime, so its driver task is that runtime's. The task holds `kept` until the
    /// runtime shuts down (dropping the task) or the entry goes (retired, or the tier
    /// dropped), connecting meanwhile; it holds no strong reference to `self`,
    /// so a tier dropped mid-connect goes at once. A connect that fails or panics (a
    /// runtime built without I/O or time) leaves that runtime on the shared connection.
    fn make_local(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        ticket: local::Ticket,
        mut kept: local::Kept,
    ) {
        let Some(client) = self.source.node().cloned() else {
            return;
        };
        let this = Arc::downgrade(self);
        // Bounded by `connect_timeout` of the runtime's driven time, not by a timer that
        // runs while the runtime sits idle (see `within_driven_time`).
        let config = self.node_config().set_connection_timeout(None);
        let limit = self.connect_timeout;
        drop(runtime.spawn(async move {
            let connect = AssertUnwindSafe(async move {
                let made = client.get_multiplexed_async_connection_with_config(&config);
                local::within_driven_time(limit, made).await
            })
            .catch_unwind();
            let attempt = match futures_util::future::select(std::pin::pin!(connect), &mut kept)
                .await
            {
                futures_util::future::Either::Left((attempt, _)) => attempt,
                // The entry went meanwhile.
                futures_util::future::Either::Right(_) => return,
            };
            let Some(conn) = this.upgrade() else {
                return;
            };
            match attempt {
                Ok(Some(Ok(made))) => conn.locals.made(ticket, Conn::Node(made)),
                Ok(failure) => {
                    let failures = conn.locals.connect_failed(ticket);
                    if failures == 1 {
                        let why = match failure {
                            Some(Err(e)) => conn.redact(&e.to_string()),
                            _ => format!("no connection within connect_timeout ({limit:?}) of the runtime's driven time, or 10x that (at least 30 s) in all"),
                        };
                        tracing::debug!(target = %conn.target, error = %why, "cachet: a runtime's own redis connection could not be made; its reads use the shared one");
                    }
                }
                Err(_) => conn.locals.never(ticket),
            }
            drop(conn);
            // Until the runtime shuts down (dropping this task) or the entry goes.
            let _ = kept.await;
        }));
    }

    /// [`run_one`](Self::run_one) on a cluster: the command goes from its caller straight
    /// to `key`'s master when the route is known ([`super::router`]), bounded by that
    /// node connection's response timeout (one timer, as on one server). A failure the
    /// topology explains (a redirect, a lost node) sends it again through the cluster
    /// connection within what is left of the one deadline, `operation_timeout` from the
    /// start, and has the routes read again; so does an unknown route, which goes through
    /// the cluster connection (bounded by its own overall timeout) meanwhile.
    ///
    /// `op` is sent again after a failed direct attempt, which the node may have carried
    /// out (a timeout, a connection lost after the command was written): it must be
    /// idempotent, as [`run_one`](Self::run_one) says.
    fn routed<'a, T, F, Fut>(
        self: &'a Arc<Self>,
        what: &'static str,
        key: &str,
        cluster: ClusterConnection,
        op: F,
    ) -> background::Remote<'a, T>
    where
        F: FnOnce(Conn) -> Fut + Clone + Send + 'a,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'a,
        T: Send + 'a,
    {
        let this = Arc::clone(self);
        let route = self
            .source
            .cluster()
            .and_then(|source| source.router().route(key.as_bytes()));
        let Some(route) = route else {
            self.refresh_routes();
            return background::run(async move {
                op(Conn::Cluster(cluster))
                    .await
                    .map_err(|e| this.fault(what, &e))
            });
        };
        background::run(async move {
            let started = Instant::now();
            let again = op.clone();
            let (e, misroute) = match op(Conn::Node(route.conn)).await {
                Ok(value) => return Ok(value),
                Err(e) => match router::misroute(&e) {
                    Some(misroute) => (e, misroute),
                    None => return Err(this.fault(what, &e)),
                },
            };
            if misroute == router::Misroute::Node {
                if let Some(source) = this.source.cluster() {
                    source.router().failed(&route.at);
                }
            }
            this.refresh_routes();
            let left = this
                .operation_timeout
                .checked_sub(started.elapsed())
                .filter(|left| !left.is_zero());
            let Some(left) = left else {
                return Err(this.fault(what, &e));
            };
            tracing::debug!(target = %this.target, what, error = %redact_text(&e.to_string(), this.password.as_deref()), "cachet: a cluster node failed a command; sending it through the cluster connection");
            match tokio::time::timeout(left, again(Conn::Cluster(cluster))).await {
                Ok(out) => out.map_err(|e| this.fault(what, &e)),
                Err(_) => Err(TierError::with_kind(
                    format!(
                        "redis {}: {what} timed out after {:?}",
                        this.target, this.operation_timeout
                    ),
                    TierErrorKind::Unavailable,
                )),
            }
        })
    }

    /// Reads the cluster's slot map again in the background, unless a reading is under way
    /// or the last one was too recent ([`router::REFRESH_GAP`], longer after readings
    /// that left slots without a route). What a reading could not route is logged,
    /// without credentials: at `warn` when it starts a run of incomplete readings, at
    /// `debug` while it lasts.
    fn refresh_routes(self: &Arc<Self>) {
        let Some(source) = self.source.cluster() else {
            return;
        };
        let Some(claim) = source.router().claim_refresh() else {
            return;
        };
        let this = Arc::clone(self);
        let reading = async move {
            let Some(source) = this.source.cluster() else {
                return;
            };
            let Some(Conn::Cluster(mut conn)) = this.current() else {
                return;
            };
            let candidates = source.router().answering_candidates(source.seed());
            let read = tokio::time::timeout(
                this.operation_timeout,
                cluster::slots_from(&mut conn, &candidates, this.operation_timeout / 3),
            )
            .await;
            let slots = match read {
                Ok(Ok(slots)) => slots,
                Ok(Err(e)) => {
                    let why = redact_text(&e.to_string(), this.password.as_deref());
                    this.incomplete_reading(&format!("CLUSTER SLOTS failed: {why}"));
                    return;
                }
                Err(_) => {
                    this.incomplete_reading(&format!(
                        "CLUSTER SLOTS timed out after {:?}",
                        this.operation_timeout
                    ));
                    return;
                }
            };
            let config = this.node_config();
            let reading = source
                .router()
                .install(
                    slots.ranges,
                    slots.unaddressed,
                    source.seed(),
                    &config,
                    claim,
                )
                .await;
            if !reading.is_complete() {
                let mut why = Vec::new();
                for ((host, port), e) in &reading.unreachable {
                    let e = redact_text(e, this.password.as_deref());
                    why.push(format!("cannot connect to master {host}:{port}: {e}"));
                }
                if reading.unaddressed > 0 {
                    why.push(format!(
                        "{} slot ranges have a master named by no usable address (`?`)",
                        reading.unaddressed
                    ));
                }
                this.log_incomplete(&why.join("; "));
            }
        };
        // The claim travels with the reading and ends it when dropped, however the reading
        // ends (or here, if it cannot start).
        if let Ok(rt) = background::handle() {
            drop(rt.spawn(reading));
        }
    }

    /// A reading of the slot map failed before it read the map: counted (the next one
    /// waits longer) and logged.
    fn incomplete_reading(&self, why: &str) {
        if let Some(source) = self.source.cluster() {
            source.router().read_was(false);
        }
        self.log_incomplete(why);
    }

    /// Logs what a reading left without a route (`why` holds no credentials): at `warn`
    /// for the first incomplete reading in a row, at `debug` for the next ones.
    fn log_incomplete(&self, why: &str) {
        let first = self
            .source
            .cluster()
            .is_some_and(|source| source.router().incomplete_readings() == 1);
        if first {
            tracing::warn!(target = %self.target, "cachet: reading the cluster's slot map left slots unrouted (their commands go through the cluster connection): {why}");
        } else {
            tracing::debug!(target = %self.target, "cachet: reading the cluster's slot map left slots unrouted: {why}");
        }
    }

    /// How every connection to a node is made: bounded by `connect_timeout`, each request
    /// by `operation_timeout`.
    fn node_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.operation_timeout))
    }

    /// The live connection, made now if there is none; `true` with a connection kept
    /// from earlier (which may have died since), `false` with one made for this call.
    async fn connection(&self) -> Result<(Conn, bool), TierError> {
        if let Some(conn) = self.current() {
            return Ok((conn, true));
        }
        let _connecting = self.connecting.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(conn) = self.current() {
            return Ok((conn, true));
        }
        let config = self.node_config();
        let attempt = self.source.connect(&config);
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
    fn current(&self) -> Option<Conn> {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A fresh pub/sub connection, bounded by `connect_timeout` (on a cluster, by that
    /// per node tried, finding the nodes through the data connection when it is up).
    pub(crate) async fn pubsub(&self) -> Result<PubSub, TierError> {
        let live = if self.is_cluster() {
            match self.connection().await {
                Ok((conn, _)) => Some(conn),
                Err(_) => None,
            }
        } else {
            None
        };
        let attempt = self.source.pubsub(live, self.connect_timeout);
        let limit = if self.is_cluster() {
            // Every node may be tried in turn.
            self.connect_timeout * 4
        } else {
            self.connect_timeout
        };
        match tokio::time::timeout(limit, attempt).await {
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
    /// `retire_runtimes`: the runtimes' connections are likely of a server process that is
    /// gone too (see [`forget`](Self::forget)).
    fn reset(&self, retire_runtimes: bool) {
        if let Ok(_connecting) = self.connecting.try_lock() {
            self.forget(retire_runtimes);
        }
    }

    /// Forgets a connection found dead, waiting for a connect in progress rather than
    /// skipping (as [`reset`](Self::reset) does), so the retry that follows connects anew.
    /// At worst it forgets a connection another task has just made: one extra connect.
    async fn forget_dead(&self) {
        let _connecting = self.connecting.lock().await;
        self.forget(true);
    }

    /// Drops the live connection, if any (its caller holds `connecting`), and, when
    /// `retire_runtimes` (the connection found dead, or the server no longer a master), the
    /// runtimes' connections made beside it: a new generation. A timeout does not retire
    /// them: a slow server is the same process, and every runtime reconnecting at once
    /// would only add to its load.
    fn forget(&self, retire_runtimes: bool) {
        let forgotten = self
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if forgotten.is_some() && retire_runtimes {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
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

    /// Maps a command's error; connection-level faults also drop the connection (but a
    /// cluster connection, which reconnects to each node and follows the topology by
    /// itself, is kept). `READONLY` means the server was a master and is now a replica (a
    /// Sentinel failover demoted it): unavailable too, and the next connection is made to
    /// whichever server is master now.
    fn fault(&self, what: &str, e: &RedisError) -> TierError {
        if is_unavailable(e) && !self.is_cluster() {
            self.reset(is_dead_connection(e) || e.code() == Some("READONLY"));
        }
        self.error(what, e)
    }

    /// Maps a command's error as [`fault`](Self::fault) does, keeping the connection.
    fn error(&self, what: &str, e: &RedisError) -> TierError {
        let unavailable = is_unavailable(e);
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

/// Where a one-request operation off a cluster runs ([`Connection::path`]).
enum Path {
    /// On the connection of the caller's `current_thread` runtime (made by the connect of
    /// the ticket), polled in the caller's context.
    Local(local::Ticket, Conn),
    /// On the shared connection, live, polled in the backend runtime's context.
    Shared(Conn),
    /// No live shared connection: connect first, bounded as a whole.
    Connect,
}

/// Whether `e` says the server cannot be used now: a failure of the connection, a timeout,
/// a cluster error, or `READONLY` (the server was a master and is now a replica).
fn is_unavailable(e: &RedisError) -> bool {
    e.code() == Some("READONLY")
        || e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
}

/// Whether `e` is a failure of the connection rather than the server's answer: a timeout
/// too (the connection is then retired, as [`Connection::fault`] drops a shared one).
fn is_connection_fault(e: &RedisError) -> bool {
    e.is_timeout() || is_dead_connection(e) || e.code() == Some("READONLY")
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
    fn urls_are_redacted() {
        assert_eq!(redact_url("redis://u:sec@h/0"), "redis://u:***@h/0");
        assert_eq!(redact_url("redis://h/0"), "redis://h/0");
    }

    #[test]
    fn target_never_holds_the_password() {
        let c = Connection::new(&RedisOptions::new("redis://bob:hunter2@127.0.0.1:7/3")).unwrap();
        assert_eq!(c.target(), "redis://bob@127.0.0.1:7/3");
        let e = c.connect_error("auth failed for hunter2");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let c = Connection::new(&RedisOptions::cluster(["redis://:hunter2@127.0.0.1:7"])).unwrap();
        assert!(c.is_cluster());
        let e = c.connect_error("auth failed for hunter2");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    /// A read's future, the one box a read makes (the tier's `get`), holds redis's request
    /// inline, so it is past what glibc's allocator serves from each thread's own cache
    /// (chunks up to 1,032 bytes), as the box redis makes of that request for a raw read is:
    /// one such allocation a read, as a raw redis read makes, not two. What must stay out of
    /// it is the dead connection's retry (a connect, its lock, a timer): inline, it made the
    /// box 4,080 bytes and took the allocator's shared locks at every read, a third of the
    /// 64-task throughput (BENCHMARKS.md, "Redis L2, 64 tasks: where the throughput went").
    /// The generic one-request operation (writes, the bus), whose request redis boxes,
    /// stays under the cache's limit.
    #[test]
    fn a_read_is_one_box_without_its_retry() {
        let c = Connection::new(&RedisOptions::new("redis://127.0.0.1:7/0")).unwrap();
        let size = std::mem::size_of_val(&c.read("app:c:1"));
        assert!(size <= 2048, "a read's future is {size} bytes");
        // Writes and the bus's publish: the generic path.
        let (stored, last) = ("app:c:1", c.read_end.as_str());
        let read = c.run_one("GET", stored, move |conn| batch::read(conn, stored, last));
        let size = std::mem::size_of_val(&read);
        assert!(
            size <= 1024,
            "a one-request operation's future is {size} bytes"
        );
    }

    /// Sharded pub/sub (`SPUBLISH`, and the bus's second request when a server refuses it)
    /// is for clusters only: `run_one` sends those through `routed` or `run`, which enter
    /// the backend runtime's context at every poll, never through `on_node`, which enters
    /// it at the first poll only.
    #[test]
    fn only_a_cluster_publishes_sharded() {
        let node = Connection::new(&RedisOptions::new("redis://127.0.0.1:7/0")).unwrap();
        assert_eq!(node.flavour(), Flavour::Classic);
        let cluster = Connection::new(&RedisOptions::cluster(["redis://127.0.0.1:7"])).unwrap();
        assert_eq!(cluster.flavour(), Flavour::Sharded);
        cluster.use_classic_pubsub();
        assert_eq!(cluster.flavour(), Flavour::Classic);
    }

    #[test]
    fn only_a_single_server_gets_runtime_connections() {
        let node = Connection::new(&RedisOptions::new("redis://127.0.0.1:7/0")).unwrap();
        assert!(node.runtime_connections);
        let off = RedisOptions::new("redis://127.0.0.1:7/0").runtime_connections(false);
        assert!(!Connection::new(&off).unwrap().runtime_connections);
        let sentinel = RedisOptions::sentinel(["redis://127.0.0.1:7"], "mymaster");
        assert!(!Connection::new(&sentinel).unwrap().runtime_connections);
        let cluster = RedisOptions::cluster(["redis://127.0.0.1:7"]);
        assert!(!Connection::new(&cluster).unwrap().runtime_connections);
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for url in ["http://x:pw@h", "redis://:pw@h:notaport/0", "pw"] {
            let why = topology::parse_client(url).unwrap_err();
            assert!(!why.contains("pw"), "{why}");
        }
    }
}
