//! Durations (`"250ms"`, `"5m"`, `"1h 30m"`) and sizes (`"64mb"`, `"512kb"`) as written in
//! configuration.
//!
//! Both parsers return a plain-words message on failure that quotes the value and shows
//! what a valid one looks like, so a caller can put it in a
//! [`CacheError::Config`](crate::CacheError::Config) as is.
//!
//! Size units are binary, as in Redis' `maxmemory`: `kb`, `mb`, `gb` and `tb` are powers
//! of 1024, and `kib`, `mib`, `gib`, `tib` mean the same. Bare `k`, `m`, `g` are refused
//! because Redis reads them as powers of 1000, and guessing either way would surprise
//! someone.

use std::time::Duration;

/// What a duration looks like, appended to every duration error.
const DURATION_HINT: &str =
    "write a number and a unit, e.g. \"250ms\", \"30s\", \"5m\", \"6h\", \"1d\" or \"1h 30m\"";

/// What a size looks like, appended to every size error.
const SIZE_HINT: &str = "write a whole number of bytes, optionally with a unit b, kb, mb, gb \
     or tb (powers of 1024; kib, mib, gib, tib are the same), e.g. \"64mb\", \"512kb\" or \"1048576\"";

/// Parses a duration such as `250ms`, `30s`, `5m`, `6h`, `1d` or `1h 30m`.
///
/// The units are humantime's: `ns`, `us`, `ms`, `s`/`sec`, `m`/`min`, `h`/`hr`, `d`,
/// `w`, `M` (month), `y` and their long forms; parts add up (`1h 30m`) and a part may
/// have a fraction (`1.5h`). Surrounding whitespace is ignored. Empty, negative or
/// unit-less values are refused with a message that quotes the value.
///
/// ```
/// use std::time::Duration;
/// use cache_core::config::units::parse_duration;
///
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
/// let err = parse_duration("5 minuts").unwrap_err();
/// assert!(err.contains("unknown unit \"minuts\""), "{err}");
/// assert!(err.contains("\"30s\""), "{err}");
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    use humantime::DurationError as E;

    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!(
            "an empty string is not a duration; {DURATION_HINT}"
        ));
    }
    if trimmed.starts_with('-') {
        return Err(format!(
            "{text:?} is negative, and a duration cannot be; {DURATION_HINT}"
        ));
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        let why = match e {
            E::InvalidCharacter(at) => match trimmed.get(at..).and_then(|s| s.chars().next()) {
                Some(c) => format!("unexpected character {c:?}"),
                None => "unexpected character".to_owned(),
            },
            E::NumberExpected(at) => match trimmed.get(at..) {
                Some(rest) => format!("expected a number at {:?}", rest.trim()),
                None => "expected a number".to_owned(),
            },
            E::UnknownUnit { unit, value, .. } if unit.is_empty() => {
                format!("{value} has no unit")
            }
            E::UnknownUnit { unit, .. } => format!("unknown unit {unit:?}"),
            E::NumberOverflow => "it is too large, or finer than a nanosecond".to_owned(),
            E::Empty => "it is empty".to_owned(),
        };
        format!("{text:?} is not a duration: {why}; {DURATION_HINT}")
    })
}

/// Parses a size in bytes such as `64mb`, `64 MiB`, `512kb`, `1gb`, `100b` or `1048576`.
///
/// Units are case-insensitive and binary (`1kb` = 1024 bytes, as in Redis'
/// `maxmemory`); `kib`/`mib`/`gib`/`tib` are accepted as the same units. A space may
/// separate the number from its unit. Refused, each with a message that quotes the
/// value: empty and negative values, fractions (`"1.5gb"`: write `"1536mb"`), bare
/// `k`/`m`/`g`, unknown units, and values over `u64::MAX` bytes.
///
/// ```
/// use cache_core::config::units::parse_size;
///
/// assert_eq!(parse_size("64mb"), Ok(64 * 1024 * 1024));
/// assert_eq!(parse_size("64 MiB"), Ok(64 * 1024 * 1024));
/// assert_eq!(parse_size("1048576"), Ok(1_048_576));
/// let err = parse_size("1.5gb").unwrap_err();
/// assert!(err.contains("fraction"), "{err}");
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("an empty string is not a size; {SIZE_HINT}"));
    }
    if trimmed.starts_with('-') {
        return Err(format!(
            "{text:?} is negative, and a size cannot be; {SIZE_HINT}"
        ));
    }
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    // `digits` is the byte index of an ASCII boundary (or the end), so splitting is safe.
    let (number, rest) = trimmed.split_at(digits);
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a size: it does not start with a number; {SIZE_HINT}"
        ));
    }
    if rest.starts_with(['.', ',']) {
        return Err(format!(
            "{text:?} is not a size: fractions are not supported, use a smaller unit \
             (e.g. \"1536mb\" rather than \"1.5gb\"); {SIZE_HINT}"
        ));
    }
    let unit = rest.trim_start().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        "tb" | "tib" => 1 << 40,
        "k" | "m" | "g" | "t" => {
            return Err(format!(
                "{text:?} is not a size: the unit {:?} is ambiguous, write {:?}; {SIZE_HINT}",
                rest.trim_start(),
                format!("{unit}b"),
            ))
        }
        _ => {
            return Err(format!(
                "{text:?} is not a size: unknown unit {:?}; {SIZE_HINT}",
                rest.trim_start()
            ))
        }
    };
    // `number` is all ASCII digits, so the only way to fail is overflow.
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| {
            format!(
                "{text:?} is too large: a size must fit in {} bytes; {SIZE_HINT}",
                u64::MAX
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn durations_in_humantime_forms() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("6h", Duration::from_secs(6 * 3600)),
            ("1d", Duration::from_secs(86_400)),
            ("1h 30m", Duration::from_secs(5400)),
            ("1h30m", Duration::from_secs(5400)),
            (" 10 s ", Duration::from_secs(10)),
            ("1.5h", Duration::from_secs(5400)),
            ("0s", Duration::ZERO),
            ("2 minutes", Duration::from_secs(120)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text:?}");
        }
    }

    fn duration_err(text: &str) -> String {
        match parse_duration(text) {
            Ok(d) => panic!("{text:?} parsed as {d:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn duration_errors_say_what_a_duration_looks_like() {
        for text in [
            "",
            "  ",
            "-5s",
            "5",
            "abc",
            "5 minuts",
            "5s!",
            "99999999999999999999y",
        ] {
            let err = duration_err(text);
            assert!(err.contains(DURATION_HINT), "{text:?}: {err}");
        }
    }

    #[test]
    fn duration_error_texts() {
        assert_eq!(
            duration_err(""),
            format!("an empty string is not a duration; {DURATION_HINT}")
        );
        assert_eq!(
            duration_err("-5s"),
            format!("\"-5s\" is negative, and a duration cannot be; {DURATION_HINT}")
        );
        assert_eq!(
            duration_err("5"),
            format!("\"5\" is not a duration: 5 has no unit; {DURATION_HINT}")
        );
        assert_eq!(
            duration_err("5 minuts"),
            format!("\"5 minuts\" is not a duration: unknown unit \"minuts\"; {DURATION_HINT}")
        );
        assert_eq!(
            duration_err("abc"),
            format!("\"abc\" is not a duration: expected a number at \"abc\"; {DURATION_HINT}")
        );
        assert_eq!(
            duration_err("5s!"),
            format!("\"5s!\" is not a duration: unexpected character '!'; {DURATION_HINT}")
        );
        assert!(duration_err("99999999999999999999y").contains("too large"));
    }

    #[test]
    fn sizes_with_binary_units() {
        let cases = [
            ("64mb", 64 * MIB),
            ("64MB", 64 * MIB),
            ("64 MiB", 64 * MIB),
            ("512kb", 512 * 1024),
            ("512KiB", 512 * 1024),
            ("1gb", 1024 * MIB),
            ("1 GiB", 1024 * MIB),
            ("2tb", 2 << 40),
            ("100b", 100),
            ("100 B", 100),
            ("1048576", 1_048_576),
            (" 7 ", 7),
            ("0", 0),
            ("18446744073709551615", u64::MAX),
            ("16777215tb", 16_777_215 << 40),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "{text:?}");
        }
    }

    fn size_err(text: &str) -> String {
        match parse_size(text) {
            Ok(n) => panic!("{text:?} parsed as {n}"),
            Err(e) => e,
        }
    }

    #[test]
    fn size_error_texts() {
        assert_eq!(
            size_err(""),
            format!("an empty string is not a size; {SIZE_HINT}")
        );
        assert_eq!(
            size_err("-1mb"),
            format!("\"-1mb\" is negative, and a size cannot be; {SIZE_HINT}")
        );
        assert_eq!(
            size_err("mb"),
            format!("\"mb\" is not a size: it does not start with a number; {SIZE_HINT}")
        );
        assert_eq!(
            size_err("1.5gb"),
            format!(
                "\"1.5gb\" is not a size: fractions are not supported, use a smaller unit \
                 (e.g. \"1536mb\" rather than \"1.5gb\"); {SIZE_HINT}"
            )
        );
        assert_eq!(
            size_err("64k"),
            format!(
                "\"64k\" is not a size: the unit \"k\" is ambiguous, write \"kb\"; {SIZE_HINT}"
            )
        );
        assert_eq!(
            size_err("64 megs"),
            format!("\"64 megs\" is not a size: unknown unit \"megs\"; {SIZE_HINT}")
        );
        assert_eq!(
            size_err("18446744073709551616"),
            format!(
                "\"18446744073709551616\" is too large: a size must fit in 18446744073709551615 \
                 bytes; {SIZE_HINT}"
            )
        );
        assert!(size_err("16777216tb").contains("too large"));
        assert!(size_err("1,5mb").contains("fractions"));
        assert!(size_err("+5mb").contains("does not start with a number"));
        assert!(size_err("5 mb extra").contains("unknown unit \"mb extra\""));
    }

    proptest::proptest! {
        #[test]
        fn sizes_round_trip(
            n: u64,
            (unit, multiplier) in proptest::sample::select(vec![
                ("", 1u64), ("b", 1), ("B", 1), ("kb", 1 << 10), ("KiB", 1 << 10),
                ("mb", 1 << 20), ("MiB", 1 << 20), ("GB", 1 << 30), ("gib", 1 << 30),
                ("tb", 1 << 40), ("TiB", 1 << 40),
            ]),
            space: bool,
        ) {
            let text = format!("{n}{}{unit}", if space { " " } else { "" });
            match n.checked_mul(multiplier) {
                Some(bytes) => proptest::prop_assert_eq!(parse_size(&text), Ok(bytes)),
                None => proptest::prop_assert!(parse_size(&text).is_err()),
            }
        }

        #[test]
        fn seconds_round_trip(n in 0u64..1 << 40) {
            proptest::prop_assert_eq!(parse_duration(&format!("{n}s")), Ok(Duration::from_secs(n)));
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,24}") {
            let _ = parse_size(&text);
            let _ = parse_duration(&text);
        }
    }
}
