//! The memory driver's behaviours, run on every engine (quick_cache with and without its
//! front table); then what quick_cache needs on top (its expiry sweep); the front table's
//! stress test is in `front_stress.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::store::{L1Key, L1KeyRef, LocalEntry, LocalTier, Scope};

use super::quick_engine::{QuickTier, SWEEP_PERIOD};
use super::{MemoryBound, MemoryEngine, MemoryOptions, MemoryTier};

fn entry(v: u64, keep: Option<Instant>) -> LocalEntry {
    LocalEntry::new(Arc::new(v), None, keep, 100)
}

/// The value under `key`, read three times (a front table takes a key in on its second
/// read and serves the third): every read must agree.
fn value(tier: &dyn LocalTier, key: &str) -> Option<u64> {
    let once = || {
        tier.get(&L1KeyRef::parse(key))
            .and_then(|e| e.value.downcast_ref::<u64>().copied())
    };
    let first = once();
    assert_eq!(once(), first, "{key}: a second read disagrees");
    assert_eq!(once(), first, "{key}: a third read disagrees");
    first
}

/// An engine, and whether reads go through a front table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Setup {
    pub(super) engine: MemoryEngine,
    pub(super) front: bool,
}

impl PartialEq<MemoryEngine> for Setup {
    fn eq(&self, engine: &MemoryEngine) -> bool {
        self.engine == *engine
    }
}

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.front {
            true => write!(f, "{} with a front table", self.engine),
            false => write!(f, "{}", self.engine),
        }
    }
}

/// A tier per engine (quick_cache with and without a front table), each with these
/// options otherwise.
fn each_engine(options: MemoryOptions) -> Vec<(Setup, Arc<MemoryTier>)> {
    let setups = MemoryEngine::ALL.into_iter().flat_map(|engine| {
        let fronts: &[bool] = match engine {
            MemoryEngine::QuickCache => &[false, true],
            _ => &[false],
        };
        fronts.iter().map(move |&front| Setup { engine, front })
    });
    setups
        .map(|setup| {
            let options = options.engine(setup.engine).front_table(setup.front);
            (setup, MemoryTier::new(options))
        })
        .collect()
}

#[test]
fn engine_follows_options() {
    for (setup, tier) in each_engine(MemoryOptions::max_entries(10)) {
        assert_eq!(tier.engine(), setup.engine);
        assert_eq!(tier.front_table(), setup.front);
        assert_eq!(tier.driver(), "memory");
        assert!(
            format!("{tier:?}").contains(&format!("{:?}", setup.engine)),
            "{tier:?}"
        );
    }
    assert_eq!(
        MemoryTier::new(MemoryOptions::default()).engine(),
        MemoryEngine::QuickCache
    );
}

#[test]
fn insert_get_replace_remove() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(100)) {
        assert_eq!(value(&*tier, "p:c:1"), None, "{engine}");
        tier.insert(L1Key::parse("p:c:1"), entry(1, None));
        assert_eq!(value(&*tier, "p:c:1"), Some(1), "{engine}");
        tier.insert(L1Key::parse("p:c:1"), entry(2, None));
        assert_eq!(value(&*tier, "p:c:1"), Some(2), "{engine}: insert replaces");
        tier.remove(&L1KeyRef::parse("p:c:1"));
        assert_eq!(value(&*tier, "p:c:1"), None, "{engine}");
        assert_eq!(tier.entry_count(), 0, "{engine}");
    }
}

#[test]
fn scope_removal_spares_other_caches() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(100)) {
        tier.insert(L1Key::parse("p:users:1"), entry(1, None));
        tier.insert(L1Key::parse("p:users#admins:1"), entry(2, None));
        tier.insert(L1Key::parse("p:users2:1"), entry(3, None));
        tier.remove_scope(&Scope::new("p:users"));
        assert!(
            tier.get(&L1KeyRef::parse("p:users:1")).is_none(),
            "{engine}"
        );
        assert!(
            tier.get(&L1KeyRef::parse("p:users#admins:1")).is_none(),
            "{engine}"
        );
        assert!(
            tier.get(&L1KeyRef::parse("p:users2:1")).is_some(),
            "{engine}"
        );
    }
}

#[test]
fn scope_removal_reaches_every_shard() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(10_000)) {
        for i in 0..1000 {
            tier.insert(L1Key::parse(&format!("p:a:{i}")), entry(i, None));
            tier.insert(L1Key::parse(&format!("p:a#ns:{i}")), entry(i, None));
            tier.insert(L1Key::parse(&format!("p:b:{i}")), entry(i, None));
        }
        let visible = |cache: &str| {
            (0..1000)
                .filter(|i| value(&*tier, &format!("p:{cache}:{i}")) == Some(*i))
                .count()
        };
        tier.remove_scope(&Scope::new("p:a#ns"));
        assert_eq!(
            (visible("a"), visible("a#ns"), visible("b")),
            (1000, 0, 1000),
            "{engine}"
        );
        tier.remove_scope(&Scope::new("p:a"));
        assert_eq!((visible("a"), visible("b")), (0, 1000), "{engine}");
        if engine == MemoryEngine::QuickCache {
            // moka applies invalidation closures in its housekeeping: its count lags.
            assert_eq!(tier.entry_count(), 1000);
        }
    }
}

#[test]
fn clear_drops_everything() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(100)) {
        for i in 0..20 {
            tier.insert(L1Key::parse(&format!("p:c{}:{i}", i % 3)), entry(i, None));
        }
        tier.clear();
        assert_eq!(tier.entry_count(), 0, "{engine}");
        assert!((0..20).all(|i| tier
            .get(&L1KeyRef::parse(&format!("p:c{}:{i}", i % 3)))
            .is_none()));
    }
}

#[test]
fn entries_expire_at_keep_until() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(100)) {
        let keep = Instant::now() + Duration::from_millis(30);
        tier.insert(L1Key::parse("k"), entry(1, Some(keep)));
        tier.insert(L1Key::parse("forever"), entry(2, None));
        assert!(tier.get(&L1KeyRef::parse("k")).is_some(), "{engine}");
        assert!(tier.get(&L1KeyRef::parse("k")).is_some(), "{engine}");
        assert!(tier.get(&L1KeyRef::parse("k")).is_some(), "{engine}");
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            tier.get(&L1KeyRef::parse("k")).is_none(),
            "{engine}: returned past keep_until"
        );
        assert_eq!(value(&*tier, "forever"), Some(2), "{engine}");
        if engine == MemoryEngine::QuickCache {
            // moka drops expired entries on its timer wheel's ticks: its count lags.
            assert_eq!(tier.entry_count(), 1, "the expired entry is not counted");
        }
    }
}

#[test]
fn an_entry_already_past_keep_until_is_never_returned() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(100)) {
        tier.insert(L1Key::parse("k"), entry(1, Some(Instant::now())));
        assert!(tier.get(&L1KeyRef::parse("k")).is_none(), "{engine}");
        // and a fresh value under the same key is not mistaken for it
        tier.insert(L1Key::parse("k"), entry(2, None));
        assert_eq!(value(&*tier, "k"), Some(2), "{engine}");
    }
}

#[test]
fn entry_bound_is_respected() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(50)) {
        for i in 0..1000 {
            tier.insert(L1Key::parse(&format!("k{i}")), entry(i, None));
        }
        assert!(tier.entry_count() <= 50, "{engine}: {}", tier.entry_count());
        assert!(tier.entry_count() > 0, "{engine}");
    }
}

#[test]
fn entry_bound_holds_across_shards() {
    for (engine, tier) in each_engine(MemoryOptions::max_entries(2000)) {
        for i in 0..20_000 {
            tier.insert(L1Key::parse(&format!("k{i}")), entry(i, None));
        }
        // Each shard holds its share of the bound (rounded up), moka its total.
        let held = tier.entry_count();
        assert!((1000..=2000 + 64).contains(&held), "{engine}: {held}");
    }
}

#[test]
fn byte_bound_is_respected() {
    for (engine, tier) in each_engine(MemoryOptions::max_size(10_000)) {
        for i in 0..1000 {
            tier.insert(L1Key::parse(&format!("k{i}")), entry(i, None));
        }
        // every entry weighs 100 bytes
        assert!(
            tier.entry_count() <= 100,
            "{engine}: {}",
            tier.entry_count()
        );
        assert!(tier.entry_count() > 0, "{engine}");
    }
}

#[test]
fn overhead_is_each_engines_own() {
    let overhead =
        |engine| MemoryTier::new(MemoryOptions::default().engine(engine)).entry_overhead();
    assert_eq!(
        overhead(MemoryEngine::Moka),
        super::moka_engine::ENTRY_OVERHEAD
    );
    assert_eq!(
        overhead(MemoryEngine::QuickCache),
        super::quick_engine::ENTRY_OVERHEAD
    );
    assert!(overhead(MemoryEngine::QuickCache) < overhead(MemoryEngine::Moka));
}

/// The driver as configuration builds it, through a manager: `engine` picks the engine and
/// caches behave the same on both.
#[tokio::test]
async fn caches_behave_alike_on_both_engines() {
    for engine in [
        "engine = \"quick_cache\"",
        "engine = \"quick_cache\", front_table = false",
        "engine = \"moka\"",
    ] {
        let manager = cache_core::CacheManager::from_toml_str(&format!(
            "default_store = \"m\"\n[stores.m]\n\
             l1 = {{ driver = \"memory\", {engine}, max_size = \"1mb\" }}\n\
             [caches.short]\nttl = \"40ms\"\n"
        ))
        .expect("config");
        let users = manager.cache("users").expect("users");
        let admins = users.namespace("admins");
        let short = manager.cache("short").expect("short");
        users.set(&1u64, &"ann".to_owned()).await.expect("set");
        admins.set(&1u64, &"root".to_owned()).await.expect("set");
        short.set(&1u64, &7u64).await.expect("set");
        // Three reads each: a front table serves the third.
        for _ in 0..3 {
            let name: Option<String> = users.get(&1u64).await.expect("get");
            assert_eq!(name.as_deref(), Some("ann"), "{engine}");
            let name: Option<String> = admins.get(&1u64).await.expect("get");
            assert_eq!(name.as_deref(), Some("root"), "{engine}");
            assert_eq!(short.get::<u64>(&1u64).await.expect("get"), Some(7));
        }

        admins.clear().await.expect("clear");
        assert_eq!(admins.get::<String>(&1u64).await.expect("get"), None);
        assert!(users.has(&1u64).await.expect("has"), "{engine}");

        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            short.get::<u64>(&1u64).await.expect("get"),
            None,
            "{engine}"
        );

        users.delete(&1u64).await.expect("delete");
        assert!(users.missing(&1u64).await.expect("missing"), "{engine}");
    }
}

#[test]
fn config_selects_the_engine() {
    for (name, engine) in [
        ("quick_cache", MemoryEngine::QuickCache),
        ("moka", MemoryEngine::Moka),
    ] {
        let config: toml::Table =
            toml::from_str(&format!("engine = \"{name}\"\nmax_entries = 5")).expect("toml");
        let tier = cache_core::config::TierConfig::new(
            "memory",
            config,
            "stores.m.l1",
            cache_core::ConfigOrigin::String,
        );
        let options = MemoryOptions::from_config(&tier).expect("options");
        assert_eq!(MemoryTier::new(options).engine(), engine);
    }
}

// ------------------------------------------------------------ quick_cache's expiry sweep

/// A tier of one part (one sweep step walks it all).
fn quick(period: Duration) -> QuickTier {
    QuickTier::with_sweep_period(MemoryBound::Entries(5_000), period)
}

fn soon(ms: u64) -> Option<Instant> {
    Some(Instant::now() + Duration::from_millis(ms))
}

#[test]
fn sweep_drops_expired_entries_nobody_reads() {
    let tier = quick(Duration::ZERO);
    for i in 0..100 {
        tier.insert(L1Key::parse(&format!("p:c:{i}")), entry(i, soon(20)));
    }
    for i in 0..10 {
        tier.insert(L1Key::parse(&format!("p:d:{i}")), entry(i, None));
    }
    assert_eq!(tier.len(), 110);
    std::thread::sleep(Duration::from_millis(40));
    // One insert, no read of the expired keys: the sweep runs on it.
    tier.insert(L1Key::parse("p:d:new"), entry(0, None));
    assert_eq!(tier.len(), 11);
}

#[test]
fn a_miss_also_sweeps() {
    let tier = quick(Duration::ZERO);
    for i in 0..50 {
        tier.insert(L1Key::parse(&format!("p:c:{i}")), entry(i, soon(20)));
    }
    std::thread::sleep(Duration::from_millis(40));
    assert!(tier.get(&L1KeyRef::parse("p:other:1")).is_none());
    assert_eq!(tier.len(), 0);
}

#[test]
fn sweep_keeps_entries_not_yet_expired_and_comes_back_for_them() {
    let tier = quick(Duration::ZERO);
    tier.insert(L1Key::parse("p:c:early"), entry(1, soon(20)));
    tier.insert(L1Key::parse("p:c:late"), entry(2, soon(120)));
    tier.insert(L1Key::parse("p:c:forever"), entry(3, None));
    std::thread::sleep(Duration::from_millis(40));
    tier.insert(L1Key::parse("p:c:trigger"), entry(4, None));
    assert_eq!(tier.len(), 3, "only the early entry is swept");
    assert!(tier.get(&L1KeyRef::parse("p:c:late")).is_some());
    std::thread::sleep(Duration::from_millis(100));
    // The first sweep remembered the late entry's expiry: the next one drops it.
    tier.insert(L1Key::parse("p:c:trigger2"), entry(5, None));
    assert_eq!(tier.len(), 3);
    assert!(tier.get(&L1KeyRef::parse("p:c:late")).is_none());
    assert!(tier.get(&L1KeyRef::parse("p:c:forever")).is_some());
}

#[test]
fn sweeps_wait_for_their_period_but_entry_count_does_not() {
    let tier = quick(Duration::from_secs(3600));
    // The first operation takes the period's sweep step (nothing is due yet).
    tier.insert(L1Key::parse("p:c:a"), entry(1, soon(10)));
    std::thread::sleep(Duration::from_millis(20));
    tier.insert(L1Key::parse("p:c:b"), entry(2, None)); // a is past, but the period is not
    assert!(tier.get(&L1KeyRef::parse("p:c:other")).is_none()); // nor on a miss
    assert_eq!(tier.len(), 2);
    assert_eq!(tier.entry_count(), 1, "a count sweeps what is due");
    assert_eq!(tier.len(), 1);
}

#[test]
fn expired_entry_read_is_dropped_even_without_a_sweep() {
    let tier = quick(Duration::from_secs(3600));
    tier.insert(L1Key::parse("p:c:gone"), entry(0, Some(Instant::now()))); // the period's sweep step
    tier.insert(L1Key::parse("p:c:first"), entry(0, None));
    tier.insert(L1Key::parse("p:c:a"), entry(1, soon(10)));
    std::thread::sleep(Duration::from_millis(20));
    assert!(tier.get(&L1KeyRef::parse("p:c:a")).is_none());
    assert_eq!(tier.len(), 1);
}

#[test]
fn entries_that_never_expire_are_never_swept() {
    let tier = quick(Duration::ZERO);
    for i in 0..100 {
        tier.insert(L1Key::parse(&format!("p:c:{i}")), entry(i, None));
    }
    assert_eq!(tier.entry_count(), 100);
    assert!((0..100).all(|i| tier.get(&L1KeyRef::parse(&format!("p:c:{i}"))).is_some()));
}

#[test]
fn concurrent_writers_and_readers_leave_no_expired_entry() {
    let tier = Arc::new(quick(Duration::ZERO));
    let deadline = Instant::now() + Duration::from_millis(30);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let tier = tier.clone();
            s.spawn(move || {
                for i in 0..3000u64 {
                    let key = format!("p:c:{t}:{}", i % 500);
                    tier.insert(L1Key::parse(&key), entry(i, Some(deadline)));
                    let _ = tier.get(&L1KeyRef::parse(&format!("p:c:{}:{}", 1 - t, i % 500)));
                }
            });
        }
    });
    while Instant::now() <= deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(tier.entry_count(), 0);
}

#[test]
fn a_big_tier_is_swept_one_part_per_step() {
    // 100,000 entries: 8 parts of ~12,500.
    let tier = QuickTier::with_sweep_period(MemoryBound::Entries(100_000), Duration::ZERO);
    for i in 0..1000 {
        tier.insert(L1Key::parse(&format!("p:c:{i}")), entry(i, soon(20)));
    }
    std::thread::sleep(Duration::from_millis(40));
    tier.insert(L1Key::parse("p:d:0"), entry(0, None)); // one step: one part
    let left = tier.len();
    assert!(
        left > 1 && left < 1001,
        "one step swept one part: {left} left"
    );
    assert!((0..1000).all(|i| tier.get(&L1KeyRef::parse(&format!("p:c:{i}"))).is_none()));
    for i in 1..8 {
        tier.insert(L1Key::parse(&format!("p:d:{i}")), entry(i, None));
    }
    assert_eq!(tier.len(), 8, "eight steps swept every part");
}

#[test]
fn a_big_tier_keeps_its_bound_across_parts() {
    for bound in [
        MemoryBound::Entries(40_000),
        MemoryBound::Bytes(40_000 * 100),
    ] {
        let tier = QuickTier::with_sweep_period(bound, SWEEP_PERIOD);
        for i in 0..80_000 {
            tier.insert(L1Key::parse(&format!("k{i}")), entry(i, None));
        }
        let held = tier.len();
        assert!((20_000..=40_000 + 256).contains(&held), "{bound:?}: {held}");
    }
}

/// A key the engine builds (its cache's key space and the encoded key; the base compared
/// by pointer) and the same key read back from its stored text (a bus message, a tag
/// delete, a replay: the base compared by text, the hash computed again) are one entry on
/// every engine, whichever way round, held inline or on the heap.
#[test]
fn an_engine_built_key_and_its_stored_text_are_one_entry() {
    use cache_core::store::KeySpace;
    let base = r"p:or\:ders#eu";
    let space = KeySpace::new(base);
    let long = "k".repeat(30);
    for encoded in [
        cache_core::key::encode_key(&("a:b", 7)).unwrap(),
        cache_core::key::encode_key(&(long.as_str(), 7)).unwrap(),
    ] {
        let joined = format!("{base}:{encoded}");
        let key = || space.key_ref(encoded.as_bytes());
        let held = |tier: &MemoryTier| {
            tier.get(&key())
                .and_then(|e| e.value.downcast_ref::<u64>().copied())
        };
        for (engine, tier) in each_engine(MemoryOptions::max_entries(100)) {
            tier.insert(space.key(encoded.as_bytes()), entry(1, None));
            assert_eq!(
                value(&*tier, &joined),
                Some(1),
                "{engine}: found by its text"
            );
            tier.remove(&L1KeyRef::parse(&joined));
            assert_eq!(held(&tier), None, "{engine}: removed by its text");
            tier.insert(L1Key::parse(&joined), entry(2, None));
            assert_eq!(held(&tier), Some(2), "{engine}: inserted from its text");
            tier.insert(space.key(encoded.as_bytes()), entry(3, None));
            assert_eq!(tier.entry_count(), 1, "{engine}: replaced, not added");
            tier.remove_scope(&Scope::new(base));
            assert_eq!(held(&tier), None, "{engine}: the namespace's clear");
            tier.insert(space.key(encoded.as_bytes()), entry(4, None));
            tier.remove_scope(&Scope::new(r"p:or\:ders"));
            assert_eq!(held(&tier), None, "{engine}: the cache's clear");
        }
    }
}

/// Hand-made keys that are no engine's (a base with no separator or two, a key that is not
/// UTF-8, the empty base with separators in its key): every tier, `MapTier` included, files
/// them by their parts, so they agree on which keys are one entry and on what a removal by
/// the joined text (which such a key does not read back as) takes away.
#[test]
fn every_tier_agrees_on_hand_made_keys() {
    use cache_core::store::{KeySpace, MapTier};
    let pairs: [(&str, &[u8]); 7] = [
        ("p:c", b"1"),
        ("app", b"users:1"),
        ("p:c:d", b"1"),
        ("", b"a:b:c"),
        ("", b"plain"),
        ("p:c", &[0xff]),
        ("p:c", &[0xfe]),
    ];
    let mut tiers: Vec<(String, Arc<dyn LocalTier>)> = vec![("map".into(), MapTier::new())];
    for (engine, tier) in each_engine(MemoryOptions::max_entries(100)) {
        tiers.push((engine.to_string(), tier));
    }
    let mut verdicts = Vec::new();
    for (name, tier) in &tiers {
        let spaces: Vec<KeySpace> = pairs.iter().map(|(b, _)| KeySpace::new(b)).collect();
        for (i, ((_, key), space)) in pairs.iter().zip(&spaces).enumerate() {
            tier.insert(space.key(key), entry(i as u64, None));
        }
        assert_eq!(
            tier.entry_count(),
            pairs.len() as u64,
            "{name}: one entry per pair"
        );
        let held = |i: usize| {
            tier.get(&spaces[i].key_ref(pairs[i].1))
                .and_then(|e| e.value.downcast_ref::<u64>().copied())
        };
        for i in 0..pairs.len() {
            assert_eq!(held(i), Some(i as u64), "{name}: pair {i}");
        }
        for (i, space) in spaces.iter().enumerate() {
            tier.remove(&L1KeyRef::parse(&space.key_ref(pairs[i].1).to_string()));
        }
        verdicts.push((name, (0..pairs.len()).map(held).collect::<Vec<_>>()));
    }
    let (first, expected) = &verdicts[0];
    for (name, kept) in &verdicts[1..] {
        assert_eq!(kept, expected, "{name} and {first} disagree");
    }
    // The engine's own keys go by their text; the others stay wherever they are filed.
    assert_eq!(expected[0], None);
    assert_eq!(expected[4], None);
    assert_eq!(
        expected[1],
        Some(1),
        "`app:users:1` reads back as (`app:users`, `1`)"
    );
}
