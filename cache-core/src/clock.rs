//! The one clock of the engine, and entry timing in its two scales: `Instant`s for the
//! in-process tier, unix milliseconds for the envelope of remote values (shared by machines
//! whose monotonic clocks differ).
//!
//! Everything that reads time for cache semantics — an entry's freshness, grace and eager
//! refresh point, a soft or hard timeout, the circuit breaker, the replay of pending L2
//! changes — reads it from its store's [`Clock`], and waits through [`Clock::sleep`]. A
//! manager built with a [`ManualClock`] (tests) sees time stand still until the test
//! advances it: TTL and grace tests need no sleeping, and managers in parallel tests each
//! have their own time. Only waits about time outside the process (a Redis lock's expiry,
//! a connection timeout) stay on real time.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::{select, Either};

use crate::timer::{self, lock_ignoring_poison as lock, PauseState};

/// How long a remote tier keeps an entry that never expires logically: every Redis key
/// carries a TTL.
pub(crate) const FOREVER_REMOTE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Milliseconds since the unix epoch, now, by the system's clock.
fn system_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The time source of a store: the system's clocks, or a [`ManualClock`].
#[derive(Clone, Default)]
pub(crate) struct Clock {
    manual: Option<ManualClock>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::System"),
            Some(manual) => write!(f, "Clock::Manual(+{:?})", manual.elapsed()),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Self {
            manual: Some(manual),
        }
    }
}

impl Clock {
    /// Whether this is the system's clock (not a [`ManualClock`]): its `now` is
    /// `Instant::now()`.
    #[inline]
    pub(crate) fn is_system(&self) -> bool {
        self.manual.is_none()
    }

    /// The monotonic instant now.
    pub(crate) fn now(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(manual) => manual.now(),
        }
    }

    /// Milliseconds since the unix epoch, now.
    pub(crate) fn unix_ms(&self) -> u64 {
        match &self.manual {
            None => system_unix_ms(),
            Some(manual) => manual
                .state
                .origin_unix_ms
                .saturating_add(ms(manual.elapsed())),
        }
    }

    /// Milliseconds since an origin fixed for the clock, at least 1 (so 0 can mean
    /// "never"): what counters in atomics (the breaker, rate limits) compare.
    pub(crate) fn ticks_ms(&self) -> u64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let since = match &self.manual {
            None => ORIGIN.get_or_init(Instant::now).elapsed(),
            Some(manual) => manual.elapsed(),
        };
        ms(since).saturating_add(1)
    }

    /// Completes once `duration` has passed on this clock: real time for the system clock
    /// (cachet's one timer, which works in any runtime or none), or once a test advanced
    /// a manual clock that far.
    pub(crate) fn sleep(&self, duration: Duration) -> Sleep {
        match &self.manual {
            None => Sleep::Real(timer::pause(duration)),
            Some(manual) => Sleep::Manual(manual.wake_after(duration)),
        }
    }

    /// `future`'s output, unless `limit` passes on this clock first.
    pub(crate) async fn within<T>(
        &self,
        limit: Duration,
        future: impl Future<Output = T>,
    ) -> Option<T> {
        let timer = std::pin::pin!(self.sleep(limit));
        match select(std::pin::pin!(future), timer).await {
            Either::Left((output, _)) => Some(output),
            Either::Right(_) => None,
        }
    }
}

/// A wait on a [`Clock`]; see [`Clock::sleep`].
pub(crate) enum Sleep {
    Real(timer::Pause),
    Manual(Arc<PauseState>),
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Sleep::Real(pause) => Pin::new(pause).poll(cx),
            Sleep::Manual(state) => state.poll_done(cx),
        }
    }
}

/// A clock for tests that stands still until told to move: hand it to a manager
/// ([`CacheManagerBuilder::manual_clock`](crate::CacheManagerBuilder::manual_clock)) and
/// [`advance`](ManualClock::advance) it past a TTL instead of sleeping. Everything that
/// manager reads time for — freshness, grace, eager refresh, soft and hard timeouts, the
/// circuit breaker, the replay of changes an open breaker held back — follows it; other
/// managers keep their own time, so tests running in parallel never disturb each other.
///
/// Real time still passes for what lives outside the process: a Redis key's own expiry
/// (set from the same TTLs, so it lasts at least as long in real time as the test needs),
/// a distributed lock's expiry, connection timeouts. In-process tiers drop entries by real
/// time too; cachet itself checks every entry against this clock, so only a test that
/// runs for longer than an entry's TTL in real time could see it vanish early.
///
/// Cheap to clone; clones are the same clock.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use cache_core::{CacheManager, StoreBuilder, store::MapTier, testing::ManualClock};
/// let clock = ManualClock::new();
/// let manager = CacheManager::builder()
///     .store("main", StoreBuilder::new().l1(MapTier::new()))
///     .ttl(Duration::from_secs(60))
///     .manual_clock(clock.clone())
///     .build()
///     .unwrap();
/// let users = manager.cache("users").unwrap();
/// users.set(&1u64, &"ann".to_string()).await.unwrap();
/// clock.advance(Duration::from_secs(59));
/// assert!(users.has(&1u64).await.unwrap());
/// clock.advance(Duration::from_secs(1)); // the TTL has passed, and no one slept
/// assert!(users.missing(&1u64).await.unwrap());
/// # });
/// ```
#[derive(Clone)]
pub struct ManualClock {
    state: Arc<ManualState>,
}

struct ManualState {
    /// The real instant and unix time when the clock was made: its time zero.
    origin: Instant,
    origin_unix_ms: u64,
    moved: Mutex<Moved>,
}

/// How far the clock moved, and who waits for it to move further.
#[derive(Default)]
struct Moved {
    elapsed: Duration,
    sleepers: Vec<(Duration, Arc<PauseState>)>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

impl ManualClock {
    /// A clock reading the real time now, which then stands still.
    pub fn new() -> Self {
        Self {
            state: Arc::new(ManualState {
                origin: Instant::now(),
                origin_unix_ms: system_unix_ms(),
                moved: Mutex::new(Moved::default()),
            }),
        }
    }

    /// Moves the clock forward by `by`, waking whatever waited for that much time (a soft
    /// timeout, a pause of the replay of held-back changes).
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = cache_core::testing::ManualClock::new();
    /// let before = clock.now();
    /// clock.advance(Duration::from_secs(3600));
    /// assert_eq!(clock.now() - before, Duration::from_secs(3600));
    /// ```
    pub fn advance(&self, by: Duration) {
        let due = {
            let mut moved = lock(&self.state.moved);
            moved.elapsed = moved.elapsed.saturating_add(by);
            let now = moved.elapsed;
            let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut moved.sleepers)
                .into_iter()
                .partition(|(deadline, _)| *deadline <= now);
            moved.sleepers = waiting;
            due
        };
        // Woken outside the lock: a woken future may read the clock at once.
        for (_, state) in due {
            state.finish();
        }
    }

    /// The clock's time now.
    pub fn now(&self) -> Instant {
        self.state.origin + self.elapsed()
    }

    /// How far the clock was advanced since it was made.
    pub fn elapsed(&self) -> Duration {
        lock(&self.state.moved).elapsed
    }

    /// A wait that ends once the clock moved `duration` past now.
    fn wake_after(&self, duration: Duration) -> Arc<PauseState> {
        let state = Arc::new(PauseState::default());
        let mut moved = lock(&self.state.moved);
        if duration.is_zero() {
            state.finish();
        } else {
            let deadline = moved.elapsed.saturating_add(duration);
            moved.sleepers.push((deadline, state.clone()));
        }
        state
    }
}

/// The times an envelope carries (milliseconds since the epoch) against the system clock,
/// read once: whether the entry is gone or fresh, all that an L2 hit needs on a store
/// without L1, `tti` or eager refresh. [`RemoteTimes::timing`] places them on the monotonic
/// clock (a second clock read) when more is needed: two clock reads and the arithmetic of
/// placing both times cost an L2 hit ~200 instructions (BENCHMARKS.md, "64 tasks, phase J").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteTimes {
    pub(crate) fresh_until_ms: Option<u64>,
    pub(crate) keep_until_ms: Option<u64>,
    now_ms: u64,
}

impl RemoteTimes {
    /// An envelope's times, against the system clock now.
    pub(crate) fn read(
        clock: &Clock,
        fresh_until_ms: Option<u64>,
        keep_until_ms: Option<u64>,
    ) -> Self {
        Self {
            fresh_until_ms,
            keep_until_ms,
            now_ms: clock.unix_ms(),
        }
    }

    /// Past `keep_until`: must not be served at all.
    pub(crate) fn is_gone(&self) -> bool {
        self.keep_until_ms.is_some_and(|keep| keep <= self.now_ms)
    }

    /// Before `fresh_until`.
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh_until_ms.is_none_or(|fresh| fresh > self.now_ms)
    }

    /// These times on the monotonic clock, read now.
    pub(crate) fn timing(&self, clock: &Clock) -> Timing {
        let now = clock.now();
        let at = |until_ms: u64| {
            now.checked_add(Duration::from_millis(until_ms.saturating_sub(self.now_ms)))
        };
        Timing {
            fresh_until: self.fresh_until_ms.and_then(at),
            keep_until: self.keep_until_ms.and_then(at),
            times: *self,
            now,
        }
    }
}

/// When an entry stops being fresh, and when it must be dropped (grace included): on the
/// monotonic clock, and as the envelope carries them ([`RemoteTimes`]), both against the
/// same now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) fresh_until: Option<Instant>,
    pub(crate) keep_until: Option<Instant>,
    /// The same times in milliseconds since the epoch, with the unix time of `now`.
    pub(crate) times: RemoteTimes,
    now: Instant,
}

impl Timing {
    /// An entry written now, fresh for `ttl` (`None`: forever) and kept `grace` longer.
    pub(crate) fn starting_now(
        clock: &Clock,
        ttl: Option<Duration>,
        grace: Option<Duration>,
    ) -> Self {
        let (now, now_ms) = (clock.now(), clock.unix_ms());
        let keep = ttl.map(|ttl| ttl.saturating_add(grace.unwrap_or_default()));
        Self {
            fresh_until: ttl.and_then(|ttl| now.checked_add(ttl)),
            keep_until: keep.and_then(|keep| now.checked_add(keep)),
            times: RemoteTimes {
                fresh_until_ms: ttl.map(|ttl| now_ms.saturating_add(ms(ttl))),
                keep_until_ms: keep.map(|keep| now_ms.saturating_add(ms(keep))),
                now_ms,
            },
            now,
        }
    }

    /// Fresh for `fresh_for` (but not past `keep_until`), dropped at `keep_until`.
    pub(crate) fn until(clock: &Clock, fresh_for: Duration, keep_until: Option<Instant>) -> Self {
        let (now, now_ms) = (clock.now(), clock.unix_ms());
        let fresh_until = now
            .checked_add(fresh_for)
            .map(|fresh| keep_until.map_or(fresh, |keep| fresh.min(keep)));
        let as_ms = |at: Instant| now_ms.saturating_add(ms(at.saturating_duration_since(now)));
        Self {
            fresh_until,
            keep_until,
            times: RemoteTimes {
                fresh_until_ms: fresh_until.map(as_ms),
                keep_until_ms: keep_until.map(as_ms),
                now_ms,
            },
            now,
        }
    }

    /// The instant `ratio` (0..1) of the way from now to `fresh_until`, if it expires.
    pub(crate) fn refresh_point(&self, ratio: f64) -> Option<Instant> {
        let ttl = self.fresh_until?.saturating_duration_since(self.now);
        self.now.checked_add(ttl.mul_f64(ratio))
    }

    /// Before `fresh_until`.
    pub(crate) fn is_fresh(&self) -> bool {
        self.times.is_fresh()
    }

    /// The TTL a remote tier should set: until `keep_until`, at least a millisecond.
    pub(crate) fn physical_ttl(&self) -> Duration {
        match self.keep_until {
            Some(keep) => keep
                .saturating_duration_since(self.now)
                .max(Duration::from_millis(1)),
            None => FOREVER_REMOTE_TTL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timing an envelope carries, in this process's clocks.
    fn timing_of(clock: &Clock, fresh_until_ms: Option<u64>, keep_until_ms: Option<u64>) -> Timing {
        RemoteTimes::read(clock, fresh_until_ms, keep_until_ms).timing(clock)
    }

    #[test]
    fn written_now_and_read_back_agree() {
        let clock = Clock::default();
        let t = Timing::starting_now(
            &clock,
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(50)),
        );
        assert!(t.is_fresh() && !t.times.is_gone());
        assert!(
            t.physical_ttl() > Duration::from_secs(59)
                && t.physical_ttl() <= Duration::from_secs(60)
        );
        let back = timing_of(&clock, t.times.fresh_until_ms, t.times.keep_until_ms);
        assert!(back.is_fresh());
        let left = back
            .fresh_until
            .unwrap()
            .saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(9), "{left:?}");
    }

    /// An envelope's times judged on the system clock alone, and placed on the monotonic
    /// clock, at literal instants of a manual clock: fresh for 10 s then kept 50 s more.
    #[test]
    fn an_envelopes_times_at_the_edges_of_freshness_and_grace() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let (start, start_ms) = (clock.now(), clock.unix_ms());
        let (fresh, keep) = (Some(start_ms + 10_000), Some(start_ms + 60_000));
        let at = |ms: u64| Some(start + Duration::from_millis(ms));
        // (clock moved to, fresh, gone, where the times are placed)
        for (moved_to, fresh_now, gone_now, placed) in [
            (0, true, false, (at(10_000), at(60_000))),
            (9_999, true, false, (at(10_000), at(60_000))),
            (10_000, false, false, (at(10_000), at(60_000))),
            (59_999, false, false, (at(59_999), at(60_000))),
            (60_000, false, true, (at(60_000), at(60_000))),
        ] {
            manual.advance(Duration::from_millis(moved_to) - manual.elapsed());
            assert_eq!(clock.now(), start + Duration::from_millis(moved_to));
            let times = RemoteTimes::read(&clock, fresh, keep);
            assert_eq!(times.is_fresh(), fresh_now, "at {moved_to} ms");
            assert_eq!(times.is_gone(), gone_now, "at {moved_to} ms");
            let timing = times.timing(&clock);
            // A time already past is placed at now.
            assert_eq!(
                (timing.fresh_until, timing.keep_until),
                placed,
                "at {moved_to} ms"
            );
            assert_eq!(timing.is_fresh(), fresh_now, "at {moved_to} ms");
        }
        // No times: fresh and kept forever, placed nowhere.
        let times = RemoteTimes::read(&clock, None, None);
        assert!(times.is_fresh() && !times.is_gone());
        let timing = times.timing(&clock);
        assert_eq!((timing.fresh_until, timing.keep_until), (None, None));
    }

    #[test]
    fn stale_and_gone() {
        let clock = Clock::default();
        let now = clock.unix_ms();
        let stale = timing_of(&clock, Some(now - 10), Some(now + 10_000));
        assert!(!stale.is_fresh() && !stale.times.is_gone());
        let gone = RemoteTimes::read(&clock, Some(now - 10), Some(now - 5));
        assert!(gone.is_gone());
        assert_eq!(
            Timing::starting_now(&clock, None, None).physical_ttl(),
            FOREVER_REMOTE_TTL
        );
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_wakes_its_sleepers() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let (start, start_ms, ticks) = (clock.now(), clock.unix_ms(), clock.ticks_ms());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!((clock.now(), clock.unix_ms()), (start, start_ms));
        let t = Timing::starting_now(&clock, Some(Duration::from_secs(10)), None);
        let mut sleep = Box::pin(clock.sleep(Duration::from_secs(10)));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        manual.advance(Duration::from_secs(9));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert!(timing_of(&clock, t.times.fresh_until_ms, t.times.keep_until_ms).is_fresh());
        manual.advance(Duration::from_secs(1));
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
        assert!(!timing_of(&clock, t.times.fresh_until_ms, t.times.keep_until_ms).is_fresh());
        assert_eq!(clock.now() - start, Duration::from_secs(10));
        assert_eq!(clock.unix_ms() - start_ms, 10_000);
        assert_eq!(clock.ticks_ms() - ticks, 10_000);
    }

    #[tokio::test]
    async fn within_gives_up_when_the_clock_passes_the_limit() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let slow = clock.within(Duration::from_secs(5), std::future::pending::<()>());
        let advance = async {
            tokio::task::yield_now().await;
            manual.advance(Duration::from_secs(5));
        };
        let (outcome, ()) = tokio::join!(slow, advance);
        assert_eq!(outcome, None);
        assert_eq!(
            Clock::default()
                .within(Duration::from_secs(5), async { 3 })
                .await,
            Some(3)
        );
    }
}
