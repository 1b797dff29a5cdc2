//! Reads, writes, TTLs, deletes, concurrent writers, and expiries on the server.

use std::time::Duration;

use futures_util::future::join_all;

use super::support::{pattern, Check, LONG_TTL};
use super::{Expiry, Fixture};

const MINUTE: Duration = Duration::from_secs(60);

/// A value reads back exactly as written; a missing key is `None`; an overwrite replaces
/// both the value and its TTL; a write is visible to the very next read.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::get_set_overwrite(fixture).await;
/// # }
/// ```
pub async fn get_set_overwrite(fixture: &impl Fixture) {
    let check = Check::new("get_set_overwrite");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let key = check.key("c:1");
    check.expect(
        check
            .ok("get of a missing key", tier.get(&key).await)
            .is_none(),
        "a key never written reads as present",
    );
    check.ok("set", tier.set(&key, b"one".to_vec(), MINUTE).await);
    let read = check.ok("get", tier.get(&key).await);
    check.expect(
        read.as_deref() == Some(&b"one"[..]),
        format_args!("wrote b\"one\", read {read:?}"),
    );
    match fixture.expiry_of(&key).await {
        Expiry::In(left) if left <= MINUTE && left > Duration::ZERO => {}
        other => check.fail(format_args!(
            "a key written with a 60 s TTL has expiry {other:?} on the server"
        )),
    }
    // An overwrite with a shorter TTL: new value, and the TTL shrinks too.
    let long = pattern(1000, 7);
    check.ok(
        "set (overwrite)",
        tier.set(&key, long.clone(), Duration::from_secs(5)).await,
    );
    let read = check.ok("get after overwrite", tier.get(&key).await);
    check.expect(
        read.as_deref() == Some(&long[..]),
        "an overwrite did not replace the value",
    );
    let expiry = fixture.expiry_of(&key).await;
    check.expect(
        expiry.within(Duration::from_secs(5)),
        format_args!("an overwrite with a 5 s TTL left expiry {expiry:?} (the old TTL was kept)"),
    );
    // A shorter value over a longer one leaves nothing of the old.
    check.ok("set (shorter)", tier.set(&key, b"2".to_vec(), MINUTE).await);
    let read = check.ok("get after a shorter overwrite", tier.get(&key).await);
    check.expect(
        read.as_deref() == Some(&b"2"[..]),
        format_args!("wrote b\"2\" over a longer value, read {read:?}"),
    );
    // Keys differing only in case, or by a trailing character, are distinct.
    for (other, value) in [("c:1 ", "space"), ("C:1", "upper"), ("c:10", "ten")] {
        let other = check.key(other);
        check.ok(
            "set",
            tier.set(&other, value.as_bytes().to_vec(), MINUTE).await,
        );
    }
    let read = check.ok("get", tier.get(&key).await);
    check.expect(
        read.as_deref() == Some(&b"2"[..]),
        format_args!("keys that differ from `{key}` overwrote it: read {read:?}"),
    );
    for (other, value) in [("c:1 ", "space"), ("C:1", "upper"), ("c:10", "ten")] {
        let read = check.ok("get", tier.get(&check.key(other)).await);
        check.expect(
            read.as_deref() == Some(value.as_bytes()),
            format_args!("`{other}` read {read:?}, expected {value:?}"),
        );
    }
    // Long keys and non-ASCII keys are keys like any other.
    let long_key = check.key(&format!("c:{}", "k".repeat(400)));
    let unicode_key = check.key("c:ünïcödé✓");
    for k in [&long_key, &unicode_key] {
        check.ok("set", tier.set(k, k.as_bytes().to_vec(), MINUTE).await);
        let read = check.ok("get", tier.get(k).await);
        check.expect(
            read.as_deref() == Some(k.as_bytes()),
            format_args!("key of {} bytes read back {read:?}", k.len()),
        );
    }
    check.clean(tier).await;
}

/// A value is a miss once its TTL has passed, whatever cleanup the server does or has not
/// done yet; a TTL below a millisecond still expires (never "forever"); writing a key
/// again after it expired stores the new value.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::ttl_and_expiry(fixture).await;
/// # }
/// ```
pub async fn ttl_and_expiry(fixture: &impl Fixture) {
    let check = Check::new("ttl_and_expiry");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let short = check.key("c:short");
    let tiny = check.key("c:tiny");
    let zero = check.key("c:zero");
    let kept = check.key("c:kept");
    check.ok("set", tier.set(&kept, b"kept".to_vec(), MINUTE).await);
    check.ok(
        "set (150 ms)",
        tier.set(&short, b"short".to_vec(), Duration::from_millis(150))
            .await,
    );
    check.ok(
        "set (10 µs)",
        tier.set(&tiny, b"tiny".to_vec(), Duration::from_micros(10))
            .await,
    );
    check.ok(
        "set (zero TTL)",
        tier.set(&zero, b"zero".to_vec(), Duration::ZERO).await,
    );
    for (key, bound) in [
        (&short, Duration::from_millis(150)),
        (&tiny, Duration::from_millis(1000)),
        (&zero, Duration::from_millis(1000)),
    ] {
        let expiry = fixture.expiry_of(key).await;
        check.expect(
            expiry.within(bound),
            format_args!("`{key}` written to expire within {bound:?} has expiry {expiry:?}"),
        );
    }
    for key in [&short, &tiny, &zero] {
        check
            .eventually(&format!("`{key}` is still read after its TTL"), || async {
                check.ok("get", tier.get(key).await).is_none()
            })
            .await;
    }
    let read = check.ok("get", tier.get(&kept).await);
    check.expect(
        read.as_deref() == Some(&b"kept"[..]),
        format_args!("a key with a 60 s TTL vanished with its short-lived neighbours: {read:?}"),
    );
    // Written again after it expired (its old record may still be on the server).
    check.ok(
        "set after expiry",
        tier.set(&short, b"again".to_vec(), MINUTE).await,
    );
    let read = check.ok("get", tier.get(&short).await);
    check.expect(
        read.as_deref() == Some(&b"again"[..]),
        format_args!("a key written again after it expired reads {read:?}"),
    );
    check.clean(tier).await;
}

/// `delete_many` deletes exactly the keys listed (missing ones are no error), however many:
/// an empty list, one key, and more keys than any batch or statement limit.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::delete_many(fixture).await;
/// # }
/// ```
pub async fn delete_many(fixture: &impl Fixture) {
    let check = Check::new("delete_many");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    check.ok("delete_many of no key", tier.delete_many(&[]).await);
    let keys: Vec<String> = (0..1500).map(|i| check.key(&format!("c:{i}"))).collect();
    for batch in keys.chunks(50) {
        for result in join_all(
            batch
                .iter()
                .map(|k| tier.set(k, k.as_bytes().to_vec(), LONG_TTL)),
        )
        .await
        {
            check.ok("set", result);
        }
    }
    // Every even key, and some that were never written.
    let mut doomed: Vec<String> = keys.iter().step_by(2).cloned().collect();
    doomed.push(check.key("c:never-written"));
    doomed.push(check.key("c:also-never"));
    check.ok(
        &format!("delete_many of {} keys", doomed.len()),
        tier.delete_many(&doomed).await,
    );
    let survivors: Vec<&String> = keys.iter().skip(1).step_by(2).collect();
    for batch in keys.chunks(50) {
        let reads = join_all(batch.iter().map(|k| tier.get(k))).await;
        for (key, read) in batch.iter().zip(reads) {
            let read = check.ok("get", read);
            let index: usize = key
                .rsplit(':')
                .next()
                .and_then(|i| i.parse().ok())
                .unwrap_or(0);
            if index.is_multiple_of(2) {
                check.expect(read.is_none(), format_args!("`{key}` survived delete_many"));
            } else {
                check.expect(
                    read.as_deref() == Some(key.as_bytes()),
                    format_args!("`{key}`, not listed, was deleted or changed: {read:?}"),
                );
            }
        }
    }
    // One key at a time too.
    check.ok(
        "delete_many of one key",
        tier.delete_many(&[survivors[0].clone()]).await,
    );
    check.expect(
        check.ok("get", tier.get(survivors[0]).await).is_none(),
        "a one-key delete_many left the key",
    );
    check.clean(tier).await;
}

/// Concurrent writers of one key all succeed (an upsert never fails on a race with
/// another), and the key then holds one of the written values, whole; concurrent writes
/// and deletes of one key fail none of them.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::concurrent_writers(fixture).await;
/// # }
/// ```
pub async fn concurrent_writers(fixture: &impl Fixture) {
    let check = Check::new("concurrent_writers");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let key = check.key("c:hot");
    for round in 0..4u8 {
        let values: Vec<Vec<u8>> = (0..32u8)
            .map(|writer| {
                let mut v = pattern(64 + usize::from(writer) * 16, writer ^ round);
                v[0] = writer;
                v
            })
            .collect();
        let writes = values
            .iter()
            .enumerate()
            .map(|(i, v)| tier.set(&key, v.clone(), Duration::from_secs(30 + i as u64)));
        for result in join_all(writes).await {
            check.ok("a concurrent set of one key", result);
        }
        let read = check.ok("get", tier.get(&key).await);
        let Some(read) = read else {
            check.fail("after 32 concurrent writes the key is missing")
        };
        check.expect(
            values.contains(&read),
            format_args!(
                "after concurrent writes the key holds {} bytes that no writer wrote whole",
                read.len()
            ),
        );
        let expiry = fixture.expiry_of(&key).await;
        check.expect(
            matches!(expiry, Expiry::In(left) if left <= Duration::from_secs(62)),
            format_args!("after concurrent writes the key has expiry {expiry:?}"),
        );
    }
    // Writers and deleters at once: no operation fails.
    let other = check.key("c:churn");
    let ops = (0..32u8).map(|i| {
        let other = &other;
        async move {
            if i % 3 == 0 {
                tier.delete_many(std::slice::from_ref(other)).await
            } else {
                tier.set(other, vec![i; 32], MINUTE).await
            }
        }
    });
    for result in join_all(ops).await {
        check.ok("a concurrent set or delete of one key", result);
    }
    if let Some(read) = check.ok("get", tier.get(&other).await) {
        check.expect(
            read.len() == 32 && read.iter().all(|b| *b == read[0]),
            "after concurrent writes and deletes the key holds a mix of values",
        );
    }
    check.clean(tier).await;
}

/// Every key the tier writes carries an expiry on the server, set with the value: entries
/// whatever their TTL (zero, tiny, a year), tag sets and locks (when claimed).
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::every_key_expires(fixture).await;
/// # }
/// ```
pub async fn every_key_expires(fixture: &impl Fixture) {
    let check = Check::new("every_key_expires");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let year = Duration::from_secs(365 * 24 * 3600);
    let mut written: Vec<(String, Duration)> = Vec::new();
    for (name, ttl) in [
        ("zero", Duration::ZERO),
        ("tiny", Duration::from_micros(1)),
        ("second", Duration::from_secs(1)),
        ("hour", Duration::from_secs(3600)),
        ("year", year),
    ] {
        let key = check.key(&format!("c:{name}"));
        check.ok("set", tier.set(&key, name.as_bytes().to_vec(), ttl).await);
        written.push((key, ttl.max(Duration::from_millis(1))));
    }
    let caps = fixture.capabilities();
    if caps.has_tags() {
        let tag = check.key("c:=tag:t");
        let key = check.key("c:tagged");
        check.ok(
            "set_tagged",
            tier.set_tagged(
                &key,
                b"v".to_vec(),
                Duration::from_secs(90),
                std::slice::from_ref(&tag),
                Duration::from_secs(90),
            )
            .await,
        );
        written.push((key, Duration::from_secs(90)));
        // A tag set outlives its entries, but not by much more than the longest.
        written.push((tag, Duration::from_secs(90)));
    }
    if caps.has_lock() {
        let lock = check.key("~lock:c:1");
        let taken = check.ok(
            "try_lock",
            tier.try_lock(&lock, "token", Duration::from_secs(45)).await,
        );
        check.expect(taken, "a free lock could not be taken");
        written.push((lock, Duration::from_secs(45)));
    }
    for (key, ttl) in &written {
        let expiry = fixture.expiry_of(key).await;
        // The server may round up to its own clock's resolution: a second of slack.
        let bound = *ttl + Duration::from_secs(1);
        match expiry {
            Expiry::Never => check.fail(format_args!("`{key}` has no expiry on the server")),
            Expiry::In(left) if left > bound => check.fail(format_args!(
                "`{key}` written for {ttl:?} expires in {left:?}"
            )),
            _ => {}
        }
    }
    check.clean(tier).await;
}
