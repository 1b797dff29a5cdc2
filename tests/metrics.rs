//! With the `metrics` feature, cache events reach the `metrics` facade under Spring Boot
//! Actuator's names.
#![cfg(feature = "metrics")]

use cachet::CacheManager;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A counter's name, labels and value.
type Counter = (String, Vec<(String, String)>, u64);

#[test]
fn gets_puts_and_evictions_are_counted_per_cache() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let users = CacheManager::builder()
                .memory_store("memory")
                .build()
                .unwrap()
                .cache("users")
                .unwrap();
            users.set(&1u64, &1u8).await.unwrap();
            let _: Option<u8> = users.get(&1u64).await.unwrap();
            let _: Option<u8> = users.get(&2u64).await.unwrap();
            users.delete(&1u64).await.unwrap();
        });
    });
    let counters: Vec<Counter> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                Some((key.name().to_owned(), labels, n))
            }
            _ => None,
        })
        .collect();
    let count = |name: &str, label: Option<(&str, &str)>| -> u64 {
        counters
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && labels.iter().any(|(k, v)| k == "cache" && v == "users")
                    && label.is_none_or(|(lk, lv)| labels.iter().any(|(k, v)| k == lk && v == lv))
            })
            .map(|(_, _, n)| n)
            .sum()
    };
    assert_eq!(
        count("cache.gets", Some(("result", "hit"))),
        1,
        "{counters:?}"
    );
    assert_eq!(count("cache.gets", Some(("result", "miss"))), 1);
    assert_eq!(count("cache.puts", None), 1);
    assert_eq!(count("cache.evictions", None), 1);
}

/// Hits of the L1 tier reach the recorder in effect when they happen: one installed after
/// the cache's first calls (a service's warm-up), or another one later, gets the next
/// hits, with the cache's labels.
#[test]
fn a_recorder_installed_after_the_first_calls_gets_the_next_hits() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let users = CacheManager::builder()
        .memory_store("memory")
        .build()
        .unwrap()
        .cache("warmed")
        .unwrap();
    let hit = || {
        runtime.block_on(async {
            let _: Option<u8> = users.get(&1u64).await.unwrap();
        })
    };
    // Warm-up: a write and a hit with no recorder, then a hit under a first one.
    runtime.block_on(users.set(&1u64, &1u8)).unwrap();
    hit();
    let first = DebuggingRecorder::new();
    metrics::with_local_recorder(&first, hit);
    let second = DebuggingRecorder::new();
    let snapshotter = second.snapshotter();
    metrics::with_local_recorder(&second, || {
        hit();
        hit();
    });
    let hits: Vec<(Vec<(String, String)>, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if key.key().name() == "cache.gets" => Some((
                key.key()
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect(),
                n,
            )),
            _ => None,
        })
        .collect();
    let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        hits,
        vec![(
            labels(&[
                ("cache", "warmed"),
                ("store", "memory"),
                ("result", "hit"),
                ("tier", "l1")
            ]),
            2
        )]
    );
}
