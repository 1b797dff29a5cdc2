//! Bytes: returned as stored, garbage a miss for a cache, size limits.

use std::time::Duration;

use super::support::{pattern, Check};
use super::Fixture;
use crate::codec::{self, EnvelopeMeta};
use crate::error::TierErrorKind;
use crate::manager::{CacheManager, StoreBuilder};

const MINUTE: Duration = Duration::from_secs(60);

/// The tier returns exactly the bytes it was given, whatever they are (NUL bytes, every
/// byte value, invalid UTF-8, a cachet header over a garbage payload); and a cache over the
/// tier reads garbage, a value of another type or a foreign envelope version as a miss
/// (never an error, never a panic), counts it, and overwrites it with the function's value.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::bad_bytes(fixture).await;
/// # }
/// ```
pub async fn bad_bytes(fixture: &impl Fixture) {
    let check = Check::new("bad_bytes");
    let tier = fixture.tier();
    let good = codec::encode(
        &5u64,
        &EnvelopeMeta::new(codec::fingerprint::<u64>(), None, None),
    )
    .unwrap_or_else(|e| check.fail(format_args!("encoding a u64: {e}")));
    let mut garbage_payload = good[..codec::HEADER_LEN].to_vec();
    garbage_payload.extend_from_slice(&[0xC1, 0xFF, 0x00, 0xDE, 0xAD]);
    let mut other_version = good.clone();
    other_version[2] = codec::FORMAT_VERSION.wrapping_add(1);
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("a NUL byte", vec![0]),
        ("NUL bytes around text", b"\0a\0b\0".to_vec()),
        ("every byte value", all_bytes.clone()),
        (
            "every byte value, reversed",
            all_bytes.iter().rev().copied().collect(),
        ),
        ("invalid UTF-8", vec![0xC3, 0x28, 0xA0, 0xA1, 0xFF, 0xFE]),
        ("a header over a garbage payload", garbage_payload.clone()),
        ("another envelope version", other_version.clone()),
        ("text that looks like SQL", b"'); DROP TABLE x; --".to_vec()),
        ("a valid envelope", good.clone()),
    ];
    let tier_ref = tier.as_ref();
    for (i, (what, bytes)) in samples.iter().enumerate() {
        let key = check.key(&format!("raw:{i}"));
        check.ok("set", tier_ref.set(&key, bytes.clone(), MINUTE).await);
        let read = check.ok("get", tier_ref.get(&key).await);
        check.expect(
            read.as_deref() == Some(&bytes[..]),
            format_args!("{what} did not read back as written: wrote {bytes:?}, read {read:?}"),
        );
    }

    // Through a cache: every kind of bad bytes is a miss, counted, then overwritten.
    let manager = CacheManager::builder()
        .prefix(check.prefix())
        .store("conformance", StoreBuilder::new().l2(tier.clone()))
        .validate_declarations(false)
        .build()
        .unwrap_or_else(|e| check.fail(format_args!("building a manager over the tier: {e}")));
    let cache = manager
        .cache("bad")
        .unwrap_or_else(|e| check.fail(format_args!("the manager's cache: {e}")));
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"not an envelope at all".to_vec()),
        ("a NUL byte", vec![0]),
        ("a header over a garbage payload", garbage_payload),
        ("another envelope version", other_version),
        (
            "a value of another type",
            codec::encode(
                &"text".to_string(),
                &EnvelopeMeta::new(codec::fingerprint::<String>(), None, None),
            )
            .unwrap_or_default(),
        ),
        (
            "more bytes than the tier's max_value_size",
            pattern(fixture.max_value_size() + 100, 3),
        ),
    ];
    for (i, (what, bytes)) in bad.into_iter().enumerate() {
        let key = i as u64;
        let stored = cache.stored_key_for(&key.to_string());
        check.expect(
            stored.starts_with(check.prefix()),
            format_args!("the cache's stored key `{stored}` is outside the check's prefix"),
        );
        match tier_ref.set(&stored, bytes, MINUTE).await {
            Ok(()) => {}
            // A tier may refuse to store an oversized value; then there is nothing to read.
            Err(err) if err.kind() != TierErrorKind::Unavailable && i == 5 => continue,
            Err(err) => check.fail(format_args!("set of {what}: {err}")),
        }
        let errors_before = cache.stats().errors;
        match cache.get::<u64>(&key).await {
            Ok(None) => {}
            other => check.fail(format_args!("a cache read {what} as {other:?}, not a miss")),
        }
        check.expect(
            cache.stats().errors > errors_before,
            format_args!("a cache read {what} without counting it as an error"),
        );
        let value = cache
            .get_or_set(&key, move || async move { 1000 + key })
            .await
            .unwrap_or_else(|e| check.fail(format_args!("get_or_set over {what}: {e}")));
        check.expect(
            value == 1000 + key,
            format_args!("get_or_set over {what} answered {value}"),
        );
        // The function's value replaced the bad bytes in the tier.
        let read = check
            .ok("get", tier_ref.get(&stored).await)
            .unwrap_or_default();
        match codec::decode::<u64>(&read, codec::fingerprint::<u64>(), fixture.max_value_size()) {
            Ok((v, _)) if v == 1000 + key => {}
            other => check.fail(format_args!(
                "after get_or_set over {what}, the tier holds {other:?}, not the function's value"
            )),
        }
    }
    check.clean(tier_ref).await;
}

/// A value of exactly `max_value_size` bytes reads back whole. A bigger one is never
/// returned whole: the tier refuses to store it, reads it as absent, or returns at most
/// `max_value_size + 1` bytes (so it never costs more memory than that, and the codec
/// refuses it as oversized) — and neither its write nor its read is an outage.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::max_value_size(fixture).await;
/// # }
/// ```
pub async fn max_value_size(fixture: &impl Fixture) {
    let check = Check::new("max_value_size");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let max = fixture.max_value_size();
    for (name, len) in [("at", max), ("one below", max.saturating_sub(1))] {
        let key = check.key(&format!("c:{}", len));
        let value = pattern(len, 11);
        check.ok(
            &format!("set of {len} bytes"),
            tier.set(&key, value.clone(), MINUTE).await,
        );
        let read = check.ok("get", tier.get(&key).await);
        match read {
            Some(read) if read == value => {}
            Some(read) => check.fail(format_args!(
                "a value {name} max_value_size ({len} bytes) read back as {} other bytes",
                read.len()
            )),
            None => check.fail(format_args!(
                "a value {name} max_value_size ({len} bytes) read back as absent"
            )),
        }
    }
    for over in [1usize, 4096, max] {
        let len = max + over;
        let key = check.key(&format!("c:{len}"));
        match tier.set(&key, pattern(len, 13), MINUTE).await {
            Ok(()) => {}
            Err(err) if err.kind() == TierErrorKind::Unavailable => check.fail(format_args!(
                "a write of {len} bytes (over max_value_size {max}) failed as an outage: {err}"
            )),
            Err(_) => continue, // refused: fine
        }
        match tier.get(&key).await {
            Ok(None) => {}
            Ok(Some(read)) => check.expect(
                read.len() > max && read.len() <= max + 1,
                format_args!(
                    "a value of {len} bytes (max_value_size {max}) read back as {} bytes; expected nothing or {} bytes",
                    read.len(),
                    max + 1
                ),
            ),
            Err(err) => check.expect(
                err.kind() != TierErrorKind::Unavailable,
                format_args!("a read of {len} bytes over max_value_size failed as an outage: {err}"),
            ),
        }
    }
    check.clean(tier).await;
}
