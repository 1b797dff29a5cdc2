//! How the tool shows durations and a stored value's envelope.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_core::codec::{
    null_fingerprint, read_header, CodecError, EnvelopeMeta, BINCODE, JSON, MSGPACK,
};

/// `2d 3h`, `4m 59s`, `350ms`: whole seconds past a second, every non-zero unit.
pub(crate) fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let mut secs = d.as_secs();
    let mut parts = Vec::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            parts.push(format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    parts.join(" ")
}

/// A measured latency: `0.42ms` to the hundredth of a millisecond under a second (local
/// round trips take well under one), else as [`duration`] writes it.
pub(crate) fn latency(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.2}ms", d.as_secs_f64() * 1000.0)
    } else {
        duration(d)
    }
}

/// Milliseconds since the unix epoch, now (the envelope's clock).
pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The lines `cachet get` prints for the bytes under `stored_key`, as of `now_ms`.
/// `max` is the store's `max_value_size`: reads stop one byte past it.
pub(crate) fn describe_entry(
    stored_key: &str,
    bytes: &[u8],
    max: usize,
    now_ms: u64,
) -> Vec<(String, String)> {
    let size = if bytes.len() > max {
        format!(
            "more than {max} bytes: over max_value_size, so the application treats it as a miss"
        )
    } else {
        format!("{} bytes", bytes.len())
    };
    let mut lines = vec![
        ("stored key".to_owned(), stored_key.to_owned()),
        ("size".to_owned(), size),
    ];
    // The size limit is the application's business; here the header alone is read.
    let (codec, meta) = match read_header(bytes, usize::MAX) {
        Ok(read) => read,
        Err(CodecError::UnsupportedVersion { found }) => {
            lines.push((
                "format".to_owned(),
                format!(
                    "version {found}: not a format this build knows, so the application treats it as a miss"
                ),
            ));
            return lines;
        }
        Err(err) => {
            lines.push(("format".to_owned(), format!("unreadable: {err}")));
            return lines;
        }
    };
    // A store reading with another codec than the one named here treats it as a miss.
    let codec = match codec {
        MSGPACK => "msgpack".to_owned(),
        BINCODE => "bincode".to_owned(),
        JSON => "json".to_owned(),
        id => format!("an application's codec (id {id})"),
    };
    lines.push(("format".to_owned(), codec));
    lines.extend(timing(&meta, now_ms));
    // The null marker: an entry (the function is not run) that no read takes as a value.
    let kind = if meta.fingerprint == null_fingerprint() {
        "cached absence (None)".to_owned()
    } else {
        format!("fingerprint {:#018x}", meta.fingerprint)
    };
    lines.push(("type".to_owned(), kind));
    lines
}

/// "fresh for", "stale for", "kept for", from the envelope's times.
fn timing(meta: &EnvelopeMeta, now_ms: u64) -> Vec<(String, String)> {
    let ms = Duration::from_millis;
    let fresh = match meta.fresh_until_ms {
        None => "forever (no TTL)".to_owned(),
        Some(until) if until > now_ms => duration(ms(until - now_ms)),
        Some(until) => format!("0s (stale since {} ago)", duration(ms(now_ms - until))),
    };
    // The grace window: served only when refreshing fails.
    let stale = match (meta.fresh_until_ms, meta.keep_until_ms) {
        (None, _) => "never".to_owned(),
        (Some(fresh), Some(keep)) if keep > fresh => {
            let from = fresh.max(now_ms);
            let left = duration(ms(keep.saturating_sub(from)));
            if fresh > now_ms {
                format!("{left} more, once no longer fresh (grace)")
            } else {
                format!("{left} more (grace)")
            }
        }
        (Some(_), _) => "0s (no grace)".to_owned(),
    };
    let kept = match meta.keep_until_ms {
        None => "until Redis expires it".to_owned(),
        Some(keep) if keep > now_ms => duration(ms(keep - now_ms)),
        Some(_) => "0s (expired: a miss, dropped by Redis shortly)".to_owned(),
    };
    vec![
        ("fresh for".to_owned(), fresh),
        ("stale for".to_owned(), stale),
        ("kept for".to_owned(), kept),
    ]
}

/// `label:` padded so the values line up.
pub(crate) fn table(lines: &[(String, String)]) -> String {
    let width = lines.iter().map(|(l, _)| l.len() + 1).max().unwrap_or(0);
    lines
        .iter()
        .map(|(label, value)| format!("{:<width$}  {value}\n", format!("{label}:")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::codec::encode;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_millis(350)), "350ms");
        assert_eq!(duration(Duration::from_secs(299)), "4m 59s");
        assert_eq!(duration(Duration::from_secs(3600 * 6)), "6h");
        assert_eq!(duration(Duration::from_secs(86_400 + 3_601)), "1d 1h 1s");
    }

    #[test]
    fn latencies_keep_fractions_of_a_millisecond() {
        assert_eq!(latency(Duration::from_micros(420)), "0.42ms");
        assert_eq!(latency(Duration::from_micros(12_346)), "12.35ms");
        assert_eq!(latency(Duration::from_millis(2_500)), "2s");
    }

    fn value(get: &[(String, String)], label: &str) -> String {
        get.iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_fresh_entry_with_grace() {
        let now = 1_000_000_000;
        let meta = EnvelopeMeta::new(0xab, Some(now + 60_000), Some(now + 3_660_000));
        let bytes = encode(&1u8, &meta).unwrap();
        let lines = describe_entry("app:users:1", &bytes, 1024, now);
        assert_eq!(value(&lines, "size"), format!("{} bytes", bytes.len()));
        assert_eq!(value(&lines, "format"), "msgpack");
        assert_eq!(value(&lines, "fresh for"), "1m");
        assert_eq!(
            value(&lines, "stale for"),
            "1h more, once no longer fresh (grace)"
        );
        assert_eq!(value(&lines, "kept for"), "1h 1m");
        assert_eq!(value(&lines, "type"), "fingerprint 0x00000000000000ab");
    }

    #[test]
    fn a_stale_entry_and_one_without_ttl() {
        let now = 1_000_000_000;
        let stale = EnvelopeMeta::new(1, Some(now - 5_000), Some(now + 10_000));
        let lines = describe_entry("k", &encode(&1u8, &stale).unwrap(), 1024, now);
        assert_eq!(value(&lines, "fresh for"), "0s (stale since 5s ago)");
        assert_eq!(value(&lines, "stale for"), "10s more (grace)");
        let forever = EnvelopeMeta::new(1, None, None);
        let lines = describe_entry("k", &encode(&1u8, &forever).unwrap(), 1024, now);
        assert_eq!(value(&lines, "fresh for"), "forever (no TTL)");
        assert_eq!(value(&lines, "kept for"), "until Redis expires it");
    }

    #[test]
    fn other_formats_are_named_not_decoded() {
        let mut bytes = encode(&1u8, &EnvelopeMeta::new(1, None, None)).unwrap();
        bytes[2] = 9;
        let lines = describe_entry("k", &bytes, 1024, 0);
        assert!(value(&lines, "format").starts_with("version 9: not a format this build knows"));
        let lines = describe_entry("k", b"{\"json\": true}", 1024, 0);
        assert!(
            value(&lines, "format").starts_with("unreadable"),
            "{lines:?}"
        );
        let lines = describe_entry("k", &[0; 11], 10, 0);
        assert!(
            value(&lines, "size").starts_with("more than 10 bytes"),
            "{lines:?}"
        );
    }
}
