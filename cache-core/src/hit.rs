//! The hit path's record of a cache: what a `#[cacheable]` hit reads of its first cache (its
//! L1, its key space, its counters), kept once per operation and manager so a hit follows
//! one pointer to it instead of the engine's chain of `Arc`s. A cache whose view has
//! `force_fresh` has no hit path: no call of it is a hit.

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
}

impl HitPath {
    /// `engine`'s hit path; `None` when its store has no L1 (a hit needs no record then:
    /// every call goes to L2), or when its view has `force_fresh` (every call runs the
    /// function: a `#[cache_put]` stacked over it, say).
    pub(crate) fn of(engine: &Engine) -> Option<Self> {
        let inner = &engine.inner;
        if engine.skips(|o| o.force_fresh) {
            return None;
        }
        Some(HitPath {
            l1: inner.store.l1.clone()?,
            space: inner.space.clone(),
            stats: inner.stats.clone(),
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
}

impl<'a> HitRef<'a> {
    /// `engine`'s hit path, read through its chain; `None` without L1 or with `force_fresh`
    /// (as [`HitPath::of`]).
    #[inline]
    pub(crate) fn of(engine: &'a Engine) -> Option<Self> {
        let inner = &engine.inner;
        if engine.skips(|o| o.force_fresh) {
            return None;
        }
        Some(HitRef {
            engine,
            l1: &**inner.store.l1.as_ref()?,
            space: &inner.space,
            stats: &inner.stats,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::MapTier;
    use crate::{CacheManager, CacheOptions, StoreBuilder};

    /// The probe reads no `force_fresh` of its own: a view with it must have no hit path,
    /// recorded or read from the engine, or its calls would be answered from L1.
    #[test]
    fn a_view_with_force_fresh_has_no_hit_path() {
        let manager = CacheManager::builder()
            .store("main", StoreBuilder::new().l1(MapTier::new()))
            .build()
            .unwrap();
        let cache = manager.cache("a").unwrap();
        assert!(HitPath::of(&cache.engine).is_some());
        assert!(HitRef::of(&cache.engine).is_some());
        let forced = cache.with_options(CacheOptions::new().force_fresh(true));
        assert!(HitPath::of(&forced.engine).is_none(), "recorded");
        assert!(HitRef::of(&forced.engine).is_none(), "read from the engine");
    }
}
