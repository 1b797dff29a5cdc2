//! The hit path's record of a cache: what a `#[cacheable]` hit reads of its first cache (its
//! L1, its key space, `force_fresh`, its counters), kept once per operation and manager so
//! a hit follows one pointer to it instead of the engine's chain of `Arc`s.

use std::sync::Arc;

use crate::engine::{Engine, FirstL1, Verdict};
use crate::events::EventKind;
use crate::slot::Slot;
use crate::stats::StatsCounters;
use crate::store::{KeySpace, L1KeyRef, LocalTier};

/// A cache's hit path, owned: kept in the operation's resolution (`private/resolve.rs`),
/// built once per manager. Everything in it is fixed for the engine's lifetime (a view's
/// options do not change once it is built), so it cannot go stale while the engine it was
/// taken from is the one in effect.
pub(crate) struct HitPath {
    engine: Engine,
    l1: Arc<dyn LocalTier>,
    space: KeySpace,
    stats: Arc<StatsCounters>,
    force_fresh: bool,
}

impl HitPath {
    /// `engine`'s hit path; `None` when its store has no L1 (a hit needs no record then:
    /// every call goes to L2).
    pub(crate) fn of(engine: &Engine) -> Option<Self> {
        let inner = &engine.inner;
        Some(HitPath {
            l1: inner.store.l1.clone()?,
            space: inner.space.clone(),
            stats: inner.stats.clone(),
            force_fresh: engine.skips(|o| o.force_fresh),
            engine: engine.clone(),
        })
    }

    /// The record, borrowed as the probe reads it.
    #[inline]
    pub(crate) fn get(&self) -> HitRef<'_> {
        HitRef {
            engine: &self.engine,
            l1: &*self.l1,
            space: &self.space,
            stats: &self.stats,
            force_fresh: self.force_fresh,
        }
    }
}

/// A cache's hit path, borrowed: from a [`HitPath`] record, or straight from an engine
/// (a `testing` or [`crate::CacheManager::scope`] scope, which keeps no record).
#[derive(Clone, Copy)]
pub(crate) struct HitRef<'a> {
    engine: &'a Engine,
    l1: &'a dyn LocalTier,
    space: &'a KeySpace,
    stats: &'a StatsCounters,
    /// The view's `force_fresh`: no hit, the function runs.
    pub(crate) force_fresh: bool,
}

impl<'a> HitRef<'a> {
    /// `engine`'s hit path, read through its chain; `None` without L1.
    #[inline]
    pub(crate) fn of(engine: &'a Engine) -> Option<Self> {
        let inner = &engine.inner;
        Some(HitRef {
            engine,
            l1: &**inner.store.l1.as_ref()?,
            space: &inner.space,
            stats: &inner.stats,
            force_fresh: engine.skips(|o| o.force_fresh),
        })
    }

    /// The L1 key of a key encoded for this cache.
    #[inline]
    pub(crate) fn key_of<'k>(&'k self, encoded: &'k [u8]) -> L1KeyRef<'k> {
        self.space.key_ref(encoded)
    }

    /// The hit path's look at L1: the fresh value under `key`, counted as a hit, or what
    /// the rest of the call may skip. With `EAGER`, a value past its eager refresh point is
    /// not taken (nor counted): the caller's full path serves it and starts the refresh.
    #[inline(always)]
    pub(crate) fn hit_in_l1<V: Slot, const EAGER: bool>(
        self,
        key: &L1KeyRef<'_>,
    ) -> Result<V::Value, FirstL1> {
        let engine = self.engine;
        // The verdict is made on the lent entry, as small as the hit path needs it:
        // nothing larger than the value crosses the tier's `dyn` call. Each written where
        // it is made: an untimed hit's value is stored straight into `verdict`, not through
        // a temporary shared with the timed judgement (one cost a hit ~10 instructions).
        let mut verdict = Verdict::Missed(FirstL1::Empty);
        self.l1.read_at(
            key,
            &mut |entry, at| match Engine::judge_untimed::<V>(entry) {
                Some(judged) => verdict = judged,
                None => engine.judge_timed::<V, EAGER>(entry, at, &mut verdict),
            },
        );
        let value = match verdict {
            Verdict::Fresh(value) => value,
            Verdict::Missed(first_l1) => return Err(first_l1),
            Verdict::Touched(judged, ttl) => {
                touch(engine, key, ttl);
                judged?
            }
        };
        self.stats.l1_hit();
        engine.tell_key(EventKind::Hit, key);
        Ok(value)
    }
}

/// Renews the L2 copy of an idle-timed entry the hit path read (out of its way).
#[cold]
#[inline(never)]
fn touch(engine: &Engine, key: &L1KeyRef<'_>, ttl: std::time::Duration) {
    engine.touch_l2(&key.to_string(), ttl);
}
