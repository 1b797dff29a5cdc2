//! Batches: `get_many` and `set_many`, on the tier and through a cache over it.

use std::collections::HashMap;
use std::time::Duration;

use super::support::{pattern, Check};
use super::{Expiry, Fixture};
use crate::error::TierErrorKind;
use crate::manager::{CacheManager, StoreBuilder};
use crate::store::RemoteEntry;

const MINUTE: Duration = Duration::from_secs(60);

/// `get_many` answers one value per key asked, in order (`None` for a missing or expired
/// key, the same value for a key asked twice), across more keys than any one request of a
/// driver carries; `set_many` stores each entry with its own TTL, a key listed twice keeps
/// its last value, and empty batches are no-ops. A value over `max_value_size` is never
/// returned whole by `get_many` either. Through a cache over the tier, `get_or_set_many`
/// reads what `set_many` wrote and stores what its factory loaded.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::batches(fixture).await;
/// # }
/// ```
pub async fn batches(fixture: &impl Fixture) {
    let check = Check::new("batches");
    let tier = fixture.tier();
    let tier_ref = tier.as_ref();
    let nothing = check.ok("get_many of no key", tier_ref.get_many(&[]).await);
    check.expect(nothing.is_empty(), "get_many of no key answered values");
    check.ok("set_many of no entry", tier_ref.set_many(Vec::new()).await);

    // More keys than one request of any driver carries; every other one written.
    let keys: Vec<String> = (0..700).map(|i| check.key(&format!("b:{i}"))).collect();
    let value_of = |i: usize| format!("value {i}").into_bytes();
    let entries: Vec<RemoteEntry> = (0..keys.len())
        .filter(|i| i % 2 == 0)
        .map(|i| RemoteEntry::new(keys[i].clone(), value_of(i), MINUTE))
        .collect();
    check.ok("set_many of 350 entries", tier_ref.set_many(entries).await);
    let read = check.ok("get_many of 700 keys", tier_ref.get_many(&keys).await);
    check.expect(
        read.len() == keys.len(),
        format_args!(
            "get_many of {} keys answered {} values",
            keys.len(),
            read.len()
        ),
    );
    for (i, got) in read.iter().enumerate() {
        let expected = (i % 2 == 0).then(|| value_of(i));
        check.expect(
            *got == expected,
            format_args!("get_many answered {got:?} for key {i}, expected {expected:?}"),
        );
    }
    let single = check.ok("get", tier_ref.get(&keys[10]).await);
    check.expect(
        single == Some(value_of(10)),
        "a value written by set_many does not read back with get",
    );
    let (absent, ten, one) = (check.key("b:absent"), keys[10].clone(), keys[1].clone());
    let asked = [ten.clone(), one, absent, ten];
    let read = check.ok("get_many of a key twice", tier_ref.get_many(&asked).await);
    check.expect(
        read == [Some(value_of(10)), None, None, Some(value_of(10))],
        format_args!("get_many of [10, 1, absent, 10] answered {read:?}"),
    );

    // Each entry its own TTL; a key listed twice keeps its last value.
    let (short, long, twice) = (
        check.key("t:short"),
        check.key("t:long"),
        check.key("t:twice"),
    );
    check.ok(
        "set_many with TTLs",
        tier_ref
            .set_many(vec![
                RemoteEntry::new(short.clone(), b"short".to_vec(), Duration::from_millis(300)),
                RemoteEntry::new(long.clone(), b"long".to_vec(), MINUTE),
                RemoteEntry::new(twice.clone(), b"first".to_vec(), MINUTE),
                RemoteEntry::new(twice.clone(), b"last".to_vec(), MINUTE),
            ])
            .await,
    );
    match fixture.expiry_of(&long).await {
        Expiry::In(left) if left <= MINUTE && left > Duration::ZERO => {}
        other => check.fail(format_args!(
            "an entry set_many wrote with a 60 s TTL has expiry {other:?} on the server"
        )),
    }
    let read = check.ok("get of a key listed twice", tier_ref.get(&twice).await);
    check.expect(
        read.as_deref() == Some(&b"last"[..]),
        format_args!("a key set_many listed twice holds {read:?}, not its last value"),
    );
    check
        .eventually(
            "an entry set_many wrote with a 300 ms TTL is a miss past it",
            || async {
                matches!(
                    tier_ref.get_many(&[short.clone(), long.clone()]).await.as_deref(),
                    Ok([None, Some(l)]) if l == b"long"
                )
            },
        )
        .await;

    // Oversized values are never returned whole by a batch read either.
    let max = fixture.max_value_size();
    let big = check.key("big");
    let stored = match tier_ref.set(&big, pattern(max + 4096, 5), MINUTE).await {
        Ok(()) => true,
        Err(err) if err.kind() != TierErrorKind::Unavailable => false, // refused: fine
        Err(err) => check.fail(format_args!(
            "a write over max_value_size failed as an outage: {err}"
        )),
    };
    if stored {
        let read = check.ok(
            "get_many of an oversized value",
            tier_ref.get_many(&[big]).await,
        );
        if let [Some(read)] = read.as_slice() {
            check.expect(
                read.len() > max && read.len() <= max + 1,
                format_args!(
                    "get_many read a value over max_value_size {max} as {} bytes; expected nothing or {} bytes",
                    read.len(),
                    max + 1
                ),
            );
        }
    }

    // Through a cache: a batch load reads what set_many stored, loads only the rest.
    let manager = CacheManager::builder()
        .prefix(check.prefix())
        .store("conformance", StoreBuilder::new().l2(tier.clone()))
        .validate_declarations(false)
        .build()
        .unwrap_or_else(|e| check.fail(format_args!("building a manager over the tier: {e}")));
    let cache = manager
        .cache("batch")
        .unwrap_or_else(|e| check.fail(format_args!("the manager's cache: {e}")));
    let written: Vec<(u64, String)> = (0..50).map(|i| (i, format!("set {i}"))).collect();
    if let Err(e) = cache.set_many(&written).await {
        check.fail(format_args!("Cache::set_many: {e}"));
    }
    let ids: Vec<u64> = (0..100).collect();
    let all = cache
        .get_or_set_many(&ids, |missing: Vec<u64>| async move {
            missing
                .into_iter()
                .map(|id| (id, format!("loaded {id}")))
                .collect::<HashMap<_, _>>()
        })
        .await
        .unwrap_or_else(|e| check.fail(format_args!("Cache::get_or_set_many: {e}")));
    for id in ids.iter().copied() {
        let expected = if id < 50 {
            format!("set {id}")
        } else {
            format!("loaded {id}")
        };
        check.expect(
            all.get(&id) == Some(&expected),
            format_args!(
                "get_or_set_many answered {:?} for {id}, expected {expected}",
                all.get(&id)
            ),
        );
    }
    let read = cache
        .get_many::<String, _>(&ids)
        .await
        .unwrap_or_else(|e| check.fail(format_args!("Cache::get_many: {e}")));
    check.expect(
        read == all,
        "what get_or_set_many loaded is not what the tier holds afterwards",
    );
    check.clean(tier_ref).await;
}
