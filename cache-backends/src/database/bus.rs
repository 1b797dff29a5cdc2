//! [`PostgresBus`]: invalidations over PostgreSQL `LISTEN` / `NOTIFY`, for services whose
//! only shared server is PostgreSQL.
//!
//! Messages are the Redis bus's ([`crate::redis`]'s wire format: keys only, the sender's
//! random id, a version byte), hex-encoded because a `NOTIFY` payload is text of at most
//! 8,000 bytes: an invalidation of many keys is split into several notifications. The
//! channel is the store's `{prefix}:__bus`, or, when that is longer than PostgreSQL's
//! 63-byte identifiers, its first bytes and a hash of the whole (two prefixes never share
//! a channel by truncation).
//!
//! The same rules as the Redis bus: an instance ignores its own messages; garbage,
//! oversized and unknown-version payloads are ignored and counted; after the listening
//! connection is lost and made again, the subscriber is told
//! ([`BusEvent::Resubscribed`]), so the store clears its L1, which may have missed
//! messages. A failed write is never announced (core publishes after the L2 write).

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::config::TierConfig;
use cache_core::driver::BusSettings;
use cache_core::store::{BoxFuture, Bus, BusEvent, BusHandler, Invalidation};
use cache_core::{CacheError, TierError, TierErrorKind};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool};

use super::options::redacted_target;
use crate::background;
use crate::bus_check::{probe_payload, BusCheck};
use crate::message::{self, InstanceId};

/// The longest `NOTIFY` payload PostgreSQL accepts is 7,999 bytes; hex doubles a message.
const MAX_RAW_MESSAGE: usize = 3_999;
/// PostgreSQL identifiers (channel names) are cut at 63 bytes.
const MAX_CHANNEL: usize = 63;
/// Connections a bus publishes on.
const BUS_CONNECTIONS: u32 = 2;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An invalidation bus on PostgreSQL `LISTEN` / `NOTIFY`.
///
/// ```no_run
/// use cache_backends::database::PostgresBus;
/// use cache_core::store::{Bus, Invalidation};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = PostgresBus::new("postgres://app@127.0.0.1:5432/app", "shop:__bus")?;
/// bus.publish(Invalidation::Keys(vec!["shop:users:42".into()])).await?;
/// # Ok(()) }
/// ```
pub struct PostgresBus {
    shared: Arc<Shared>,
    subscriber: background::SubscriberSlot,
}

struct Shared {
    id: InstanceId,
    channel: String,
    target: String,
    pool: PgPool,
    operation_timeout: Duration,
    subscribed: AtomicBool,
    delivered: AtomicU64,
    own: AtomicU64,
    ignored: AtomicU64,
    resubscriptions: AtomicU64,
}

/// The channel of a bus: `channel` itself when it fits a PostgreSQL identifier, else its
/// first bytes and an FNV-1a hash of all of it.
fn channel_name(channel: &str) -> String {
    if channel.len() <= MAX_CHANNEL {
        return channel.to_owned();
    }
    let hash = channel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut cut = MAX_CHANNEL - 17;
    while !channel.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash:016x}", &channel[..cut])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

impl PostgresBus {
    /// A bus on the PostgreSQL server at `url`, publishing and listening on `channel`.
    /// Does not connect.
    pub fn new(url: &str, channel: impl Into<String>) -> Result<Self, CacheError> {
        Self::with_timeouts(
            url,
            channel.into(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .map_err(|why| crate::builder_error("url", &why))
    }

    fn with_timeouts(
        url: &str,
        channel: String,
        operation_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(
                "a postgres:// URL (the postgres bus runs on PostgreSQL LISTEN/NOTIFY)".into(),
            );
        }
        let password = url
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, p)| p.to_owned());
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            let mut text = e.to_string();
            if let Some(p) = password.as_deref().filter(|p| !p.is_empty()) {
                text = text.replace(p, "***");
            }
            format!(
                "a valid postgres URL ({})",
                cache_core::redact::redact_text(&text)
            )
        })?;
        let handle = background::handle().map_err(|e| e.to_string())?;
        let _context = handle.enter();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(BUS_CONNECTIONS)
            .acquire_timeout(connect_timeout.min(operation_timeout))
            .test_before_acquire(false)
            .connect_lazy_with(connect);
        Ok(Self {
            shared: Arc::new(Shared {
                id: message::random_id(),
                channel: channel_name(&channel),
                target: redacted_target(url),
                pool,
                operation_timeout,
                subscribed: AtomicBool::new(false),
                delivered: AtomicU64::new(0),
                own: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                resubscriptions: AtomicU64::new(0),
            }),
            subscriber: background::SubscriberSlot::new(),
        })
    }

    /// The PostgreSQL channel this bus notifies and listens on.
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }

    /// Whether the listening connection is established (notifications sent from now on
    /// arrive).
    pub fn is_subscribed(&self) -> bool {
        self.shared.subscribed.load(Ordering::Acquire)
    }

    /// How many payloads were ignored: garbage, oversized or of an unknown version.
    pub fn ignored_messages(&self) -> u64 {
        self.shared.ignored.load(Ordering::Relaxed)
    }

    /// How many messages of other instances were delivered.
    pub fn delivered_messages(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// How many times the listening connection was lost and made again.
    pub fn resubscriptions(&self) -> u64 {
        self.shared.resubscriptions.load(Ordering::Relaxed)
    }
}

/// Builds the bus of a `bus = { driver = "postgres", url = ".." }` entry.
pub(crate) fn build_bus(
    cfg: &TierConfig,
    settings: &BusSettings,
) -> Result<Arc<dyn Bus>, CacheError> {
    Ok(Arc::new(PostgresBus::from_tier_config(
        cfg,
        settings.channel.clone(),
    )?))
}

impl fmt::Debug for PostgresBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBus")
            .field("target", &self.shared.target)
            .field("channel", &self.shared.channel)
            .field("subscribed", &self.is_subscribed())
            .finish_non_exhaustive()
    }
}

impl PostgresBus {
    /// The bus of a `bus = { driver = "postgres", url = ".." }` entry (options `url`,
    /// `operation_timeout`, `connect_timeout`), on `channel`, as a store's configuration
    /// makes it; `cachet check` makes one to check the store's bus. Does not connect.
    ///
    /// ```
    /// use cache_backends::database::PostgresBus;
    /// use cache_core::{config::TierConfig, ConfigOrigin};
    /// let options = toml::from_str(r#"url = "postgres://app:s3cret@127.0.0.1:5432/app""#).unwrap();
    /// let cfg = TierConfig::new("postgres", options, "stores.db.bus", ConfigOrigin::String);
    /// let bus = PostgresBus::from_tier_config(&cfg, "shop:__bus")?;
    /// assert_eq!(bus.channel(), "shop:__bus");
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn from_tier_config(
        cfg: &TierConfig,
        channel: impl Into<String>,
    ) -> Result<Self, CacheError> {
        let mut url = None;
        let mut timeouts = [Duration::from_secs(1), Duration::from_secs(1)];
        for (name, value) in &cfg.options {
            match name.as_str() {
                "url" => url = Some(cfg.string(name, value, "a postgres:// URL string")?),
                "operation_timeout" => timeouts[0] = cfg.duration(name, value)?,
                "connect_timeout" => timeouts[1] = cfg.duration(name, value)?,
                other => {
                    return Err(
                        cfg.unknown_option(other, &["url", "operation_timeout", "connect_timeout"])
                    )
                }
            }
        }
        let url = url.ok_or_else(|| {
            cfg.error("url", "a postgres:// URL (the postgres bus requires `url`)")
        })?;
        Self::with_timeouts(&url, channel.into(), timeouts[0], timeouts[1])
            .map_err(|why| cfg.error("url", why))
    }

    /// Checks the bus end to end, as an instance uses it, without reaching any instance:
    /// opens a listening connection of its own and `LISTEN`s on the bus channel and on
    /// [`check_channel`](Self::check_channel) (so an unreachable server or refused
    /// credentials show here), then sends a probe with `NOTIFY` on the check channel and
    /// waits until it comes back.
    ///
    /// Instances listen on the bus channel only, so the probe evicts nothing; were it
    /// ever delivered to a bus it would be ignored (it is no message of any version). Each
    /// step is bounded by `operation_timeout` (connecting and listening by twice it, as
    /// the bus's own listener is). The error says which step failed and why, without the
    /// password.
    ///
    /// ```no_run
    /// use cache_backends::database::PostgresBus;
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let bus = PostgresBus::new("postgres://app@127.0.0.1:5432/app", "shop:__bus")?;
    /// let checked = bus.check().await?;
    /// println!("round trip {:?}", checked.round_trip);
    /// # Ok(()) }
    /// ```
    pub async fn check(&self) -> Result<BusCheck, TierError> {
        background::run(probe(Arc::clone(&self.shared))).await
    }

    /// The channel [`check`](Self::check) sends its probe on: the bus channel with
    /// `:check` appended (cut with a hash like the bus channel when too long).
    ///
    /// ```
    /// use cache_backends::database::PostgresBus;
    /// let bus = PostgresBus::new("postgres://app@127.0.0.1:5432/app", "shop:__bus")?;
    /// assert_eq!(bus.check_channel(), "shop:__bus:check");
    /// # Ok::<(), cache_core::CacheError>(())
    /// ```
    pub fn check_channel(&self) -> String {
        channel_name(&cache_core::driver::check_channel(&self.shared.channel))
    }
}

/// [`PostgresBus::check`], on the backend runtime.
async fn probe(shared: Arc<Shared>) -> Result<BusCheck, TierError> {
    let limit = shared.operation_timeout;
    let failed = |what: String, kind| {
        TierError::with_kind(format!("postgres bus {}: {what}", shared.target), kind)
    };
    let fault = |what: &str, e: &sqlx::Error| {
        failed(
            format!(
                "{what} failed: {}",
                cache_core::redact::redact_text(&e.to_string())
            ),
            if super::pool::is_connection_fault(e) {
                TierErrorKind::Unavailable
            } else {
                TierErrorKind::Other
            },
        )
    };
    let check_channel = channel_name(&cache_core::driver::check_channel(&shared.channel));

    let started = Instant::now();
    let listening = tokio::time::timeout(limit * 2, async {
        let mut listener = PgListener::connect_with(&shared.pool).await?;
        listener
            .listen_all([shared.channel.as_str(), check_channel.as_str()])
            .await?;
        Ok::<_, sqlx::Error>(listener)
    })
    .await;
    let mut listener = match listening {
        Ok(Ok(listener)) => listener,
        Ok(Err(e)) => return Err(fault("LISTEN", &e)),
        Err(_) => {
            return Err(failed(
                format!("LISTEN timed out after {:?}", limit * 2),
                TierErrorKind::Unavailable,
            ))
        }
    };
    let subscribe = started.elapsed();

    let probe = probe_payload();
    let sent = Instant::now();
    let notify = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(&check_channel)
        .bind(&probe)
        .execute(&shared.pool);
    match tokio::time::timeout(limit, notify).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(fault("NOTIFY", &e)),
        Err(_) => {
            return Err(failed(
                format!("NOTIFY timed out after {limit:?}"),
                TierErrorKind::Unavailable,
            ))
        }
    }
    let back = async {
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if n.channel() == check_channel && n.payload() == probe => {
                    return Ok(true)
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    };
    match tokio::time::timeout(limit, back).await {
        Ok(Ok(true)) => Ok(BusCheck {
            subscribe,
            round_trip: sent.elapsed(),
        }),
        Ok(Ok(false)) => Err(failed(
            format!(
                "the listening connection closed before the probe on {check_channel} came back"
            ),
            TierErrorKind::Unavailable,
        )),
        Ok(Err(e)) => Err(fault("waiting for the probe", &e)),
        Err(_) => Err(failed(
            format!("the probe sent on {check_channel} did not come back within {limit:?}"),
            TierErrorKind::Unavailable,
        )),
    }
}

impl Bus for PostgresBus {
    fn publish<'a>(&'a self, inv: Invalidation) -> BoxFuture<'a, Result<(), TierError>> {
        let Some(messages) = message::encode_within(&self.shared.id, &inv, MAX_RAW_MESSAGE) else {
            return Box::pin(async {
                Err(TierError::with_kind(
                    "bus message refused: a key is longer than a NOTIFY payload can carry",
                    TierErrorKind::Other,
                ))
            });
        };
        if messages.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let shared = Arc::clone(&self.shared);
        Box::pin(background::run(async move {
            let limit = shared.operation_timeout;
            let sent = tokio::time::timeout(limit, async {
                for m in &messages {
                    let notify = || {
                        sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(&shared.channel)
                            .bind(hex(m))
                            .execute(&shared.pool)
                    };
                    // A pooled connection the server dropped (a restart) fails once and
                    // is discarded: with every pooled one tried, the next is made afresh.
                    let mut attempt = 0;
                    loop {
                        match notify().await {
                            Err(e)
                                if super::pool::is_connection_fault(&e)
                                    && attempt < BUS_CONNECTIONS =>
                            {
                                attempt += 1
                            }
                            other => break other.map(|_| ())?,
                        };
                    }
                }
                Ok::<(), sqlx::Error>(())
            })
            .await;
            match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(TierError::with_kind(
                    format!(
                        "postgres bus {}: NOTIFY failed: {}",
                        shared.target,
                        cache_core::redact::redact_text(&e.to_string())
                    ),
                    if super::pool::is_connection_fault(&e) {
                        TierErrorKind::Unavailable
                    } else {
                        TierErrorKind::Other
                    },
                )),
                Err(_) => Err(TierError::with_kind(
                    format!(
                        "postgres bus {}: NOTIFY timed out after {limit:?}",
                        shared.target
                    ),
                    TierErrorKind::Unavailable,
                )),
            }
        }))
    }

    fn subscribe(&self, handler: BusHandler) {
        let shared = Arc::clone(&self.shared);
        self.subscriber
            .start("postgres bus", &self.shared.channel, move || {
                listen(shared, handler)
            });
    }

    fn describe(&self) -> String {
        format!(
            "postgres bus {} channel {}",
            self.shared.target, self.shared.channel
        )
    }
}

/// The listener: connect and `LISTEN`, deliver, and on loss listen again with backoff,
/// telling the subscriber it may have missed messages.
async fn listen(shared: Arc<Shared>, handler: BusHandler) {
    let mut backoff = MIN_BACKOFF;
    let mut lost = false;
    loop {
        let listening = tokio::time::timeout(shared.operation_timeout * 2, async {
            let mut listener = PgListener::connect_with(&shared.pool).await?;
            listener.listen(&shared.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        })
        .await;
        match listening {
            Ok(Ok(mut listener)) => {
                shared.subscribed.store(true, Ordering::Release);
                backoff = MIN_BACKOFF;
                if lost {
                    shared.resubscriptions.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(channel = %shared.channel, "postgres bus listening again");
                    deliver(&handler, BusEvent::Resubscribed);
                }
                // `try_recv` answers `None` when the connection is lost; this loop, not
                // sqlx, reconnects, so the loss is seen and reported.
                while let Ok(Some(notification)) = listener.try_recv().await {
                    on_message(&shared, &handler, notification.payload());
                }
                shared.subscribed.store(false, Ordering::Release);
                tracing::warn!(channel = %shared.channel, target = %shared.target, "postgres bus connection lost; listening again");
                lost = true;
            }
            failed => {
                if !lost {
                    let why = match failed {
                        Ok(Err(e)) => cache_core::redact::redact_text(&e.to_string()),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(target = %shared.target, error = %why, "postgres bus cannot listen; retrying");
                }
                lost = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn on_message(shared: &Shared, handler: &BusHandler, payload: &str) {
    let decoded = unhex(payload)
        .ok_or(message::Refused::Garbage)
        .and_then(|b| message::decode(&b));
    match decoded {
        Ok((from, _)) if from == shared.id => {
            shared.own.fetch_add(1, Ordering::Relaxed);
        }
        Ok((_, inv)) => {
            shared.delivered.fetch_add(1, Ordering::Relaxed);
            deliver(handler, BusEvent::Invalidate(inv));
        }
        Err(why) => {
            shared.ignored.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(channel = %shared.channel, reason = ?why, len = payload.len(), "ignored a bus message");
        }
    }
}

/// Calls the handler; a panicking handler must not kill the listener.
fn deliver(handler: &BusHandler, event: BusEvent) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| handler(event))).is_err() {
        tracing::error!("the bus handler panicked; the listener goes on");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("AB"), None);
    }

    #[test]
    fn long_channels_are_cut_with_a_hash_so_they_stay_distinct() {
        assert_eq!(channel_name("shop:__bus"), "shop:__bus");
        let a = channel_name(&format!("{}a:__bus", "p".repeat(80)));
        let b = channel_name(&format!("{}b:__bus", "p".repeat(80)));
        assert!(a.len() <= MAX_CHANNEL && b.len() <= MAX_CHANNEL);
        assert_ne!(a, b);
        let wide = channel_name(&"é".repeat(40));
        assert!(wide.len() <= MAX_CHANNEL);
    }

    #[test]
    fn the_largest_message_fits_a_notify_payload() {
        let keys: Vec<String> = (0..1000).map(|i| format!("shop:users:{i}")).collect();
        let messages =
            message::encode_within(&[1; 16], &Invalidation::Keys(keys), MAX_RAW_MESSAGE).unwrap();
        assert!(messages.len() > 1);
        for m in messages {
            assert!(hex(&m).len() < 8000);
        }
    }
}
