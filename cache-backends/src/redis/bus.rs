//! [`RedisBus`]: invalidations over Redis pub/sub.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use cache_core::store::{BoxFuture, Bus, BusEvent, BusHandler, Invalidation};
use cache_core::{CacheError, TierError, TierErrorKind};

use super::connection::Connection;
use super::message::{self, InstanceId, Refused};
use super::options::RedisOptions;
use super::subscription::{self, Flavour, Messages};
use crate::background;
pub use crate::bus_check::BusCheck;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// A subscription that lasted this long was not flapping: the next one is made at once.
const STABLE_SUBSCRIPTION: Duration = Duration::from_secs(5);

/// What a bus has seen, for diagnostics and tests.
///
/// ```
/// use cache_backends::redis::BusCounters;
/// let c = BusCounters::default();
/// assert_eq!(c.ignored(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusCounters {
    /// Messages from other instances handed to the handler.
    pub delivered: u64,
    /// This instance's own messages, skipped.
    pub own: u64,
    /// Messages that did not parse.
    pub garbage: u64,
    /// Messages over the size limit.
    pub oversized: u64,
    /// Messages of a version this build does not know.
    pub unknown_version: u64,
    /// Times the subscription was lost and made again.
    pub resubscriptions: u64,
}

impl BusCounters {
    /// Messages ignored for any reason (garbage, oversized, unknown version).
    pub fn ignored(&self) -> u64 {
        self.garbage + self.oversized + self.unknown_version
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    own: AtomicU64,
    garbage: AtomicU64,
    oversized: AtomicU64,
    unknown_version: AtomicU64,
    resubscriptions: AtomicU64,
}

/// State shared by the bus handle and its subscriber task.
struct Shared {
    conn: Arc<Connection>,
    channel: String,
    id: InstanceId,
    counters: Counters,
    subscribed: AtomicBool,
}

/// An invalidation bus on Redis pub/sub.
///
/// Messages carry keys only, with the publishing instance's random id, so an instance
/// never handles its own. The subscriber runs on the backend's own runtime; when the
/// subscription drops it reconnects with backoff and, once subscribed again, tells the
/// handler [`BusEvent::Resubscribed`] (messages may have been missed meanwhile).
/// Dropping the bus stops the subscriber.
///
/// ```no_run
/// use cache_backends::redis::{RedisBus, RedisOptions};
/// use cache_core::store::{Bus, BusEvent, Invalidation};
/// use std::sync::Arc;
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let opts = RedisOptions::new("redis://127.0.0.1:6379/0");
/// let bus = RedisBus::new(&opts, "shop:__bus")?;
/// bus.subscribe(Arc::new(|event: BusEvent| println!("{event:?}")));
/// bus.publish(Invalidation::Keys(vec!["shop:users:42".into()])).await?;
/// # Ok(()) }
/// ```
pub struct RedisBus {
    shared: Arc<Shared>,
    subscriber: background::SubscriberSlot,
}

impl RedisBus {
    /// A bus on `channel`. Does not connect.
    pub fn new(opts: &RedisOptions, channel: impl Into<String>) -> Result<Self, CacheError> {
        let conn = Connection::new(opts).map_err(RedisOptions::builder_error)?;
        Ok(Self::from_connection(conn, channel.into()))
    }

    pub(crate) fn from_connection(conn: Arc<Connection>, channel: String) -> Self {
        Self {
            shared: Arc::new(Shared {
                conn,
                channel,
                id: message::random_id(),
                counters: Counters::default(),
                subscribed: AtomicBool::new(false),
            }),
            subscriber: background::SubscriberSlot::new(),
        }
    }

    /// What the bus has seen so far.
    pub fn counters(&self) -> BusCounters {
        let c = &self.shared.counters;
        BusCounters {
            delivered: c.delivered.load(Ordering::Relaxed),
            own: c.own.load(Ordering::Relaxed),
            garbage: c.garbage.load(Ordering::Relaxed),
            oversized: c.oversized.load(Ordering::Relaxed),
            unknown_version: c.unknown_version.load(Ordering::Relaxed),
            resubscriptions: c.resubscriptions.load(Ordering::Relaxed),
        }
    }

    /// Messages ignored because they were garbage, oversized or of an unknown version.
    pub fn ignored_messages(&self) -> u64 {
        self.counters().ignored()
    }

    /// Whether the subscription is currently established (messages published from now
    /// on will be received).
    pub fn is_subscribed(&self) -> bool {
        self.shared.subscribed.load(Ordering::Acquire)
    }

    /// The channel this bus publishes and listens on.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }
}

impl RedisBus {
    /// Checks the bus end to end, as an instance uses it, without reaching any instance:
    /// connects a subscriber of its own and subscribes to the bus channel (so a refused
    /// connection, refused credentials or an ACL without the channel show here), then
    /// publishes a probe on [`check_channel`](Self::check_channel), next to the bus
    /// channel, and waits until the probe comes back.
    ///
    /// Instances listen on the bus channel only, so the probe evicts nothing and counts
    /// nowhere; were it ever delivered to a bus it would be ignored (it is no message of
    /// any version). Each step is bounded by the connection's `connect_timeout` or
    /// `operation_timeout`. The error says which step failed and why, without the password.
    ///
    /// ```no_run
    /// use cache_backends::redis::{RedisBus, RedisOptions};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let bus = RedisBus::new(&RedisOptions::new("redis://127.0.0.1:6379/0"), "shop:__bus")?;
    /// let checked = bus.check().await?;
    /// println!("round trip {:?}", checked.round_trip);
    /// # Ok(()) }
    /// ```
    pub async fn check(&self) -> Result<BusCheck, TierError> {
        background::run(probe(Arc::clone(&self.shared))).await
    }

    /// The channel [`check`](Self::check) publishes its probe on: the bus channel with
    /// `:check` appended, so ACLs granting the store's `{prefix}:*` channels grant it too.
    ///
    /// ```
    /// use cache_backends::redis::{RedisBus, RedisOptions};
    /// let bus = RedisBus::new(&RedisOptions::new("redis://127.0.0.1/0"), "shop:__bus")?;
    /// assert_eq!(bus.check_channel(), "shop:__bus:check");
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn check_channel(&self) -> String {
        cache_core::driver::check_channel(&self.shared.channel)
    }
}

/// [`RedisBus::check`], on the backend runtime.
async fn probe(shared: Arc<Shared>) -> Result<BusCheck, TierError> {
    let conn = &shared.conn;
    let limit = conn.operation_timeout;
    let failed =
        |what: String, kind| TierError::with_kind(format!("redis {}: {what}", conn.target()), kind);
    let check_channel = cache_core::driver::check_channel(&shared.channel);

    let started = Instant::now();
    let mut messages = conn
        .subscribe(&[shared.channel.as_str(), check_channel.as_str()])
        .await?;
    let subscribe = started.elapsed();

    // The publishing connection is made first, so the round trip measures the bus alone.
    conn.run("PING", Some(limit), |mut c| async move {
        redis::cmd("PING").query_async::<()>(&mut c).await
    })
    .await?;
    // Not a bus message of any version (its first byte is no version this build or an
    // older one writes), and unique to this check, so concurrent checks never mix.
    let probe = crate::bus_check::probe_payload().into_bytes();
    let sent = Instant::now();
    let (channel, payload) = (check_channel.clone(), probe.clone());
    let publisher = Arc::clone(&shared.conn);
    let receivers: i64 = conn
        .run("PUBLISH", Some(limit), move |mut c| async move {
            let sharded = publisher.flavour() == Flavour::Sharded;
            let publish = |sharded: bool| {
                let mut cmd = redis::cmd(if sharded { "SPUBLISH" } else { "PUBLISH" });
                cmd.arg(&channel).arg(&payload);
                cmd
            };
            match publish(sharded).query_async(&mut c).await {
                Err(e) if sharded && subscription::is_unknown_command(&e) => {
                    publisher.use_classic_pubsub();
                    publish(false).query_async(&mut c).await
                }
                other => other,
            }
        })
        .await?;
    // A cluster node counts only its own subscribers (a `PUBLISH` is forwarded to the
    // other nodes' subscribers), so there only the round trip proves the subscription.
    if receivers < 1 && !conn.is_cluster() {
        return Err(failed(
            format!("published a probe on {check_channel}, but the server knows no subscriber to it (subscribed on another server or database?)"),
            TierErrorKind::Other,
        ));
    }
    let back = async {
        while let Some(msg) = messages.next().await {
            if msg.channel == check_channel.as_bytes() && msg.payload == probe {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(limit, back).await {
        Ok(true) => Ok(BusCheck {
            subscribe,
            round_trip: sent.elapsed(),
        }),
        Ok(false) => Err(failed(
            format!("the subscription to {check_channel} closed before the probe came back"),
            TierErrorKind::Unavailable,
        )),
        Err(_) => Err(failed(
            format!("the probe published on {check_channel} did not come back within {limit:?}"),
            TierErrorKind::Unavailable,
        )),
    }
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("target", &self.shared.conn.target())
            .field("channel", &self.shared.channel)
            .field("subscribed", &self.is_subscribed())
            .finish_non_exhaustive()
    }
}

impl Bus for RedisBus {
    fn publish<'a>(&'a self, inv: Invalidation) -> BoxFuture<'a, Result<(), TierError>> {
        let Some(messages) = message::encode(&self.shared.id, &inv) else {
            return Box::pin(async {
                Err(TierError::with_kind(
                    "bus message refused: a key is longer than the message size limit",
                    TierErrorKind::Other,
                ))
            });
        };
        if messages.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let channel = self.shared.channel.clone();
        let publisher = Arc::clone(&self.shared.conn);
        // One request on the channel's slot: on a cluster it goes straight to the slot's
        // master through the routes (read again when a node fails, so a frozen master's
        // successor is found as for the tier's own commands), not through the cluster
        // connection, whose slot map a frozen master never invalidates. It may be sent
        // more than once, up to three times from a `current_thread` runtime's own
        // connection (see `run_one`): an invalidation delivered again evicts nothing more.
        Box::pin(self.shared.conn.run_one(
            "PUBLISH",
            &self.shared.channel,
            move |mut c| async move {
                let sharded = publisher.flavour() == Flavour::Sharded;
                let pipe = |sharded: bool| {
                    let mut pipe = redis::pipe();
                    for m in &messages {
                        pipe.cmd(if sharded { "SPUBLISH" } else { "PUBLISH" })
                            .arg(&channel)
                            .arg(m)
                            .ignore();
                    }
                    pipe
                };
                match pipe(sharded).query_async::<()>(&mut c).await {
                    // A cluster before Redis 7: classic pub/sub, which its subscribers
                    // switch to as well when their SSUBSCRIBE is refused the same way.
                    // A second request, sent after the first poll: sound because sharded
                    // is a cluster only, where `run_one` enters the backend runtime's
                    // context at every poll (see its doc).
                    Err(e) if sharded && subscription::is_unknown_command(&e) => {
                        publisher.use_classic_pubsub();
                        pipe(false).query_async::<()>(&mut c).await
                    }
                    other => other,
                }
            },
        ))
    }

    fn subscribe(&self, handler: BusHandler) {
        let shared = Arc::clone(&self.shared);
        self.subscriber
            .start("redis bus", &self.shared.channel, move || {
                listen(shared, handler)
            });
    }

    fn describe(&self) -> String {
        format!(
            "redis bus {} channel {}",
            self.shared.conn.target(),
            self.shared.channel
        )
    }
}

/// The subscriber: subscribe, deliver, and on loss resubscribe with backoff. A
/// subscription lost soon after it was made (a cluster still settling after a node's loss)
/// is made again only after the backoff, so a flapping node costs one resubscription a
/// second at most.
async fn listen(shared: Arc<Shared>, handler: BusHandler) {
    let mut backoff = MIN_BACKOFF;
    let mut lost = false;
    let mut warnings = Warnings::default();
    loop {
        match shared.conn.subscribe(&[shared.channel.as_str()]).await {
            Ok(mut messages) => {
                shared.subscribed.store(true, Ordering::Release);
                if lost {
                    shared
                        .counters
                        .resubscriptions
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(channel = %shared.channel, "redis bus resubscribed");
                    deliver(&handler, BusEvent::Resubscribed);
                }
                let since = Instant::now();
                let loss = hear(&shared, &handler, &mut messages, &mut warnings).await;
                drop(messages);
                shared.subscribed.store(false, Ordering::Release);
                let error = loss.error.as_deref().unwrap_or("");
                match warnings.lost.allow(Instant::now()) {
                    Some(suppressed) => {
                        tracing::warn!(channel = %shared.channel, target = %shared.conn.target(), why = loss.why, error, suppressed, "redis bus subscription lost; reconnecting")
                    }
                    None => {
                        tracing::debug!(channel = %shared.channel, target = %shared.conn.target(), why = loss.why, error, "redis bus subscription lost; reconnecting")
                    }
                }
                lost = true;
                if since.elapsed() >= STABLE_SUBSCRIPTION {
                    backoff = MIN_BACKOFF;
                } else {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            Err(e) => {
                if !lost {
                    tracing::warn!(error = %e, "redis bus cannot subscribe; retrying");
                }
                // Messages may be missed until the subscription is made.
                lost = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// How often the subscriber may warn of one kind of event; the ones held back in between
/// go to `debug` and are counted in the next warning (`suppressed`).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The longest a [`RateLimit::backing_off`] waits between two warnings.
const WARN_AT_LEAST_EVERY: Duration = Duration::from_secs(3_600);

/// One warning per [`WARN_EVERY`] (or, backing off, per a wait that doubles after each
/// warning), owned by the subscriber task (no sharing, no atomics).
#[derive(Debug)]
struct RateLimit {
    last: Option<Instant>,
    suppressed: u64,
    /// How long after the last warning the next may come.
    wait: Duration,
    /// Whether each warning after the first doubles `wait`, up to [`WARN_AT_LEAST_EVERY`].
    backs_off: bool,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            last: None,
            suppressed: 0,
            wait: WARN_EVERY,
            backs_off: false,
        }
    }
}

impl RateLimit {
    /// Warnings [`WARN_EVERY`], then after twice as long each time, at least once an hour:
    /// for a state that may well be permanent (an ACL that refuses `PING`).
    fn backing_off() -> Self {
        Self {
            backs_off: true,
            ..Self::default()
        }
    }

    /// `Some(held back since the last warning)` if a warning may be logged at `now`.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        let Some(last) = self.last else {
            self.last = Some(now);
            return Some(std::mem::take(&mut self.suppressed));
        };
        if now.saturating_duration_since(last) < self.wait {
            self.suppressed += 1;
            return None;
        }
        if self.backs_off {
            self.wait = self.wait.saturating_mul(2).min(WARN_AT_LEAST_EVERY);
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// What was warned of is over: the next warning comes at once, the waits start again.
    fn reset(&mut self) {
        *self = Self {
            backs_off: self.backs_off,
            ..Self::default()
        };
    }
}

/// The subscriber's rate-limited warnings.
#[derive(Debug)]
struct Warnings {
    /// "subscription lost" (a flapping node would log one a second).
    lost: RateLimit,
    /// A `PING` answered with an error (each heartbeat, on a server or ACL that refuses it):
    /// backing off, as an ACL without `+ping` is there to stay; reset by a `PING` answered.
    refused_ping: RateLimit,
}

impl Default for Warnings {
    fn default() -> Self {
        Self {
            lost: RateLimit::default(),
            refused_ping: RateLimit::backing_off(),
        }
    }
}

/// Why a subscription was lost: a fixed reason and, when a command failed, its error
/// (without the password).
#[derive(Debug)]
struct Loss {
    why: &'static str,
    error: Option<String>,
}

impl Loss {
    fn because(why: &'static str) -> Self {
        Self { why, error: None }
    }
}

/// How many times `operation_timeout` (or the heartbeat, if longer) a `PING` may wait for its
/// answer: a healthy server stalls now and then (a fork for a save, a slow script), and a
/// subscription lost clears the L1 of every instance subscribed to that server at once.
const PONG_PATIENCE: u32 = 3;

/// Delivers the subscription's messages until it is lost, and says why it was. Every
/// `heartbeat` (unless zero) the subscribed node is pinged: a node that stopped answering
/// without closing the connection (frozen, partitioned) sends nothing, not even a
/// disconnection, and its subscription would otherwise stay deaf until it thawed. A `PING`
/// unanswered within [`PONG_PATIENCE`] × `operation_timeout` (or the heartbeat, if longer),
/// or failing on the connection, loses it; a node that answers with an error is alive.
async fn hear(
    shared: &Shared,
    handler: &BusHandler,
    messages: &mut Messages,
    warnings: &mut Warnings,
) -> Loss {
    let every = shared.conn.heartbeat;
    if every.is_zero() {
        while let Some(msg) = messages.next().await {
            on_message(shared, handler, &msg.payload);
        }
        return Loss::because("the connection closed");
    }
    let patience = shared
        .conn
        .operation_timeout
        .max(every)
        .saturating_mul(PONG_PATIENCE);
    let mut beat = later(every);
    loop {
        // Dropping `next` at the beat loses nothing: messages wait in its queue.
        match tokio::time::timeout_at(beat, messages.next()).await {
            Ok(Some(msg)) => on_message(shared, handler, &msg.payload),
            Ok(None) => return Loss::because("the connection closed"),
            Err(_) => {
                if let Some(loss) = heartbeat(shared, messages, patience, warnings).await {
                    // What arrived before the silence is still delivered.
                    while let Some(Some(msg)) = messages.next().now_or_never() {
                        on_message(shared, handler, &msg.payload);
                    }
                    return loss;
                }
                beat = later(every);
            }
        }
    }
}

/// `now + after`, or about a century from now if that overflows.
fn later(after: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 100))
}

/// One liveness check: `PING`s the subscribed node until it answers or `patience` has
/// passed. Any answer proves the node alive, an error reply too (an ACL without `ping`,
/// `LOADING`, `BUSY`: logged, rate-limited). A client-side timeout shorter than `patience`
/// (the cluster connection's own response timeout) sends another `PING` within it, at
/// most one per `operation_timeout`; a connection that failed, or no answer at all, is a
/// loss.
async fn heartbeat(
    shared: &Shared,
    messages: &mut Messages,
    patience: Duration,
    warnings: &mut Warnings,
) -> Option<Loss> {
    let until = later(patience);
    loop {
        let sent = tokio::time::Instant::now();
        let e = match tokio::time::timeout_at(until, messages.ping()).await {
            Ok(Ok(())) => {
                warnings.refused_ping.reset();
                return None;
            }
            Ok(Err(e)) => e,
            Err(_) => {
                return Some(Loss::because(
                    "the subscribed node did not answer a PING in time",
                ))
            }
        };
        let error = shared.conn.redact(&e.to_string());
        if e.code().is_some() {
            match warnings.refused_ping.allow(Instant::now()) {
                Some(suppressed) => {
                    tracing::warn!(channel = %shared.channel, target = %shared.conn.target(), error, suppressed, "redis bus: the subscribed node answered the heartbeat's PING with an error; it is alive, but a frozen node cannot be told from it until PING is allowed (an ACL needs `+ping`)")
                }
                None => {
                    tracing::debug!(channel = %shared.channel, error, "redis bus: the subscribed node answered a PING with an error")
                }
            }
            return None;
        }
        if !(e.is_timeout() && tokio::time::Instant::now() < until) {
            return Some(Loss {
                why: "the PING to the subscribed node failed",
                error: Some(error),
            });
        }
        // Never more than one PING per `operation_timeout` (a client-side timeout takes
        // that long; one reported at once, a socket's stale `ETIMEDOUT`, would otherwise
        // spin on the I/O thread until `patience` runs out).
        let next = sent + shared.conn.operation_timeout;
        tokio::time::sleep_until(next.min(until)).await;
    }
}

fn on_message(shared: &Shared, handler: &BusHandler, bytes: &[u8]) {
    let c = &shared.counters;
    match message::decode(bytes) {
        Ok((from, _)) if from == shared.id => {
            c.own.fetch_add(1, Ordering::Relaxed);
        }
        Ok((_, inv)) => {
            c.delivered.fetch_add(1, Ordering::Relaxed);
            deliver(handler, BusEvent::Invalidate(inv));
        }
        Err(why) => {
            let counter = match why {
                Refused::Oversized => &c.oversized,
                Refused::UnknownVersion => &c.unknown_version,
                Refused::Garbage => &c.garbage,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(channel = %shared.channel, reason = ?why, len = bytes.len(), "ignored a bus message");
        }
    }
}

/// Calls the handler; a panicking handler must not kill the subscriber.
fn deliver(handler: &BusHandler, event: BusEvent) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| handler(event))).is_err() {
        tracing::error!("the bus handler panicked; the subscriber goes on");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ() {
        assert_ne!(message::random_id(), message::random_id());
    }

    #[test]
    fn a_loss_is_warned_of_once_per_period_and_counts_the_ones_held_back() {
        let mut limit = RateLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.allow(t0), Some(0));
        assert_eq!(limit.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(limit.allow(t0 + Duration::from_secs(9)), None);
        assert_eq!(limit.allow(t0 + WARN_EVERY), Some(2));
        assert_eq!(limit.allow(t0 + WARN_EVERY * 2), Some(0));
    }

    #[test]
    fn a_refused_ping_is_warned_of_less_and_less_often() {
        let mut limit = Warnings::default().refused_ping;
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(limit.allow(at(0)), Some(0));
        assert_eq!(limit.allow(at(10)), Some(0));
        assert_eq!(limit.allow(at(20)), None, "20 s after the second warning");
        assert_eq!(limit.allow(at(30)), Some(1));
        assert_eq!(limit.allow(at(60)), None, "40 s after the third");
        assert_eq!(limit.allow(at(70)), Some(1));
        let mut t = 70;
        for _ in 0..20 {
            t += 3_600;
            assert!(limit.allow(at(t)).is_some(), "at least once an hour");
        }
        assert_eq!(limit.allow(at(t + 3_599)), None, "at most once an hour");
    }

    #[test]
    fn a_far_beat_saturates_instead_of_panicking() {
        assert!(later(Duration::MAX) > tokio::time::Instant::now());
    }
}
