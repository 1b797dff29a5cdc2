//! Redaction: what `Debug`, `Display`, errors and logs show of values that may hold
//! credentials (connection URLs, options named like secrets).
//!
//! Every type of cachet that holds configuration formats through these functions, and
//! drivers should too (a new driver's options, errors and descriptions): credentials
//! never appear in any output.
//!
//! ```
//! use cache_core::redact::{is_secret_name, redact_url};
//! assert_eq!(redact_url("redis://app:hunter2@10.0.0.5:6379/0"), "redis://app:***@10.0.0.5:6379/0");
//! assert!(is_secret_name("api_token"));
//! ```

/// What replaces a secret.
pub const MASK: &str = "***";

/// Shown instead of a value that is not a URL and might hold a secret.
const UNPARSABLE: &str = "<redacted: not a URL>";

/// Whether an option or parameter named `name` holds a secret: it contains `password`,
/// `passwd`, `pwd`, `secret`, `token`, `key`, `credential` or `auth`, in any case.
///
/// ```
/// use cache_core::redact::is_secret_name;
/// assert!(is_secret_name("password"));
/// assert!(is_secret_name("DB_PASSWORD"));
/// assert!(is_secret_name("secret_access_key"));
/// assert!(is_secret_name("sessionToken"));
/// assert!(!is_secret_name("url"));
/// assert!(!is_secret_name("max_entries"));
/// ```
pub fn is_secret_name(name: &str) -> bool {
    const SECRET_WORDS: [&str; 8] = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "key",
        "credential",
        "auth",
    ];
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// `url` with its credentials replaced by `***`: the password of the user-info part
/// (the user name is kept), and the value of every query parameter named like a secret
/// ([`is_secret_name`]). A value that is not URL-shaped and might hold a secret (a stray
/// `:` where a port belongs, spaces or control characters after the user-info) is never
/// echoed: it is replaced as a whole.
///
/// ```
/// use cache_core::redact::redact_url;
/// // The password goes, the user, host and database stay.
/// assert_eq!(redact_url("redis://:s3cret@cache:6379/2"), "redis://:***@cache:6379/2");
/// assert_eq!(redact_url("postgres://app:p@ss@db/app"), "postgres://app:***@db/app");
/// // Secret-named query parameters go.
/// assert_eq!(
///     redact_url("postgres://db/app?sslmode=require&password=s3cret"),
///     "postgres://db/app?sslmode=require&password=***",
/// );
/// // Nothing secret: unchanged.
/// assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
/// // A forgotten `@host` leaves the password where the port belongs: not echoed.
/// assert!(!redact_url("redis://:s3cret").contains("s3cret"));
/// // Not a URL at all: not echoed.
/// assert!(!redact_url("password = s3cret").contains("s3cret"));
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        Some(_) => return UNPARSABLE.to_owned(),
        None => (None, url),
    };
    // The user-info ends at the last `@`: a password may hold `@`, `/`, `?` or `#` that
    // were not percent-encoded, and cutting at the first of those would leak its tail.
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    if rest
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\'))
    {
        return UNPARSABLE.to_owned();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _password)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
            }
            None => out.push_str(userinfo),
        }
        out.push('@');
    }
    if plausible_authority(authority) {
        out.push_str(authority);
    } else {
        out.push_str(MASK);
    }
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (tail, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_query(query));
        }
        None => out.push_str(before_fragment),
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(&redact_query(fragment));
    }
    out
}

/// Every URL-like word of free text (an error message, a description) redacted with
/// [`redact_url`], and the value of every `name=value` whose name is secret-like masked.
/// For messages built from values that may hold credentials, e.g. a driver's error that
/// might repeat its connection string.
///
/// ```
/// use cache_core::redact::redact_text;
/// assert_eq!(
///     redact_text("cannot connect to redis://u:pw@h:6379/0: refused"),
///     "cannot connect to redis://u:***@h:6379/0: refused",
/// );
/// assert_eq!(redact_text("bad password=hunter2 given"), "bad password=*** given");
/// ```
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        let space = &word[trimmed.len()..];
        // Leave surrounding punctuation (quotes, brackets, a trailing `:` or `,`) in place.
        let start = trimmed
            .find(|c: char| c.is_alphanumeric())
            .unwrap_or(trimmed.len());
        let (lead, body) = trimmed.split_at(start);
        let end = body
            .char_indices()
            .rfind(|(_, c)| c.is_alphanumeric() || matches!(c, '/' | '*'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let (body, trail) = body.split_at(end);
        out.push_str(lead);
        match body.split_once('=') {
            _ if body.contains("://") => out.push_str(&redact_url(body)),
            Some((name, _value)) if is_secret_name(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(body),
        }
        out.push_str(trail);
        out.push_str(space);
    }
    out
}

/// A TOML table as it may be shown: values under secret-like names masked, and every
/// string redacted as [`redact_text`] does, at any depth.
pub(crate) fn redact_table(table: &toml::Table) -> toml::Table {
    table
        .iter()
        .map(|(name, value)| {
            let shown = if is_secret_name(name) {
                toml::Value::String(MASK.to_owned())
            } else {
                redact_value(value)
            };
            (name.clone(), shown)
        })
        .collect()
}

fn redact_value(value: &toml::Value) -> toml::Value {
    match value {
        toml::Value::String(s) => toml::Value::String(redact_text(s)),
        toml::Value::Array(items) => toml::Value::Array(items.iter().map(redact_value).collect()),
        toml::Value::Table(t) => toml::Value::Table(redact_table(t)),
        other => other.clone(),
    }
}

/// `scheme` per RFC 3986: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `host`, `host:port` (digits), `[v6]`, `[v6]:port`, or several of those joined by `,`
/// (multi-host URLs). Anything else (`:s3cret` where a port belongs) may be a password.
fn plausible_authority(authority: &str) -> bool {
    authority.split(',').all(|host_port| {
        let (host, port) = match host_port.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((_, after)) => ("v6", after.strip_prefix(':').unwrap_or(after)),
                None => return false,
            },
            None => host_port.split_once(':').unwrap_or((host_port, "")),
        };
        let port_ok = match host_port.contains(':') && !host_port.starts_with('[') {
            true => !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()),
            false => port.chars().all(|c| c.is_ascii_digit()),
        };
        !host.contains(':') && port_ok
    })
}

/// `a=1&password=x` with the values of secret-named parameters masked.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(&percent_decoded(name)) => format!("{name}={MASK}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `name` with `%XX` escapes decoded (lossily), so `pass%77ord` is seen as `password`.
fn percent_decoded(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_info_are_masked() {
        for (url, shown) in [
            ("redis://u:sec@h/0", "redis://u:***@h/0"),
            ("redis://:sec@h:6379", "redis://:***@h:6379"),
            ("rediss://u:s/e?c#r@h:1/2", "rediss://u:***@h:1/2"),
            ("u:sec@h:6379", "u:***@h:6379"),
            ("redis://u@h/0", "redis://u@h/0"),
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
            ("mongodb://u:sec@a:1,b:2/db", "mongodb://u:***@a:1,b:2/db"),
            ("/var/run/redis.sock", "/var/run/redis.sock"),
            ("", ""),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        assert_eq!(
            redact_url("redis://h/0?db=1&pass%77ord=sec&ApiKey=sec2#token=sec3"),
            "redis://h/0?db=1&pass%77ord=***&ApiKey=***#token=***"
        );
    }

    #[test]
    fn unparsable_values_are_never_echoed() {
        for text in [
            "redis://:sec",
            "redis://sec:",
            "redis://h:sec/0",
            "redis://h:1/0 sec",
            "not a scheme://sec",
            "sec\u{0}x",
            "redis://[::1:sec",
        ] {
            let shown = redact_url(text);
            assert!(!shown.contains("sec"), "{text:?} shown as {shown:?}");
        }
    }

    #[test]
    fn text_is_scrubbed_of_urls_and_secret_assignments() {
        assert_eq!(
            redact_text("(url \"redis://:pw@h/0\", token: abc, key=v)\n"),
            "(url \"redis://:***@h/0\", token: abc, key=***)\n"
        );
        assert_eq!(redact_text("plain words: stay"), "plain words: stay");
    }

    #[test]
    fn tables_are_masked_at_any_depth() {
        let table: toml::Table = toml::from_str(
            "url = \"redis://:pw1@h/0\"\npassword = \"pw2\"\n[tls]\nclient_key = \"pw3\"\nurls = [\"redis://:pw4@h\"]",
        )
        .expect("valid TOML");
        let shown = format!("{:?}", redact_table(&table));
        for secret in ["pw1", "pw2", "pw3", "pw4"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("redis://:***@h/0"), "{shown}");
    }
}
