//! The attributes of an item, and its expiry.
//!
//! | attribute | type | on | holds |
//! | --- | --- | --- | --- |
//! | `pk`, `sk` | S | every item | the key (see [`super::layout`]) |
//! | `v` | B | entries | the value's bytes (cachet's envelope) |
//! | `expires_at` | N | every item | expiry, unix seconds: DynamoDB's TTL attribute |
//! | `expires_ms` | N | every item | expiry, unix milliseconds: checked on every read |
//! | `token` | S | locks | the holder's token |
//! | `member` | S | tag rows | the stored key written with the tag |
//! | `child` | BOOL | registrations | marks a registration of a partition |
//!
//! DynamoDB's TTL deletes expired items lazily (typically within days), so an item past
//! `expires_ms` is treated as absent by every read, lock and scan.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;

use super::layout::ItemKey;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const VALUE: &str = "v";
pub(crate) const EXPIRES_AT: &str = "expires_at";
pub(crate) const EXPIRES_MS: &str = "expires_ms";
pub(crate) const TOKEN: &str = "token";
pub(crate) const MEMBER: &str = "member";
pub(crate) const CHILD: &str = "child";

/// An item's attributes as the SDK takes and gives them.
pub(crate) type Attributes = HashMap<String, AttributeValue>;

/// Milliseconds since the unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When an item written now with `ttl` expires: unix milliseconds, saturating.
pub(crate) fn expiry_ms(ttl: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// The key attributes of an item.
pub(crate) fn key(key: &ItemKey) -> Attributes {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// The key attributes and both expiry attributes of an item expiring at `expires_ms`.
pub(crate) fn expiring(item: &ItemKey, expires_ms: u64) -> Attributes {
    let mut attrs = key(item);
    attrs.insert(EXPIRES_AT.to_owned(), number(expires_ms.div_ceil(1000)));
    attrs.insert(EXPIRES_MS.to_owned(), number(expires_ms));
    attrs
}

pub(crate) fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A string attribute, if the item has it as a string.
pub(crate) fn string<'a>(attrs: &'a Attributes, name: &str) -> Option<&'a str> {
    match attrs.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// Whether an item read at `now` is still alive: not past `expires_ms`. An item without
/// a readable expiry is not one of cachet's expiring items (a registration, or something
/// written by hand): alive.
pub(crate) fn is_alive(attrs: &Attributes, now: u64) -> bool {
    match attrs.get(EXPIRES_MS) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().map_or(true, |at| at > now),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_checked_to_the_millisecond() {
        let at = 1_700_000_000_123u64;
        let item = expiring(
            &ItemKey {
                pk: "p:c".into(),
                sk: ":1".into(),
            },
            at,
        );
        assert_eq!(item.get(EXPIRES_AT), Some(&number(1_700_000_001)));
        assert!(is_alive(&item, at - 1));
        assert!(!is_alive(&item, at));
        assert!(is_alive(&Attributes::new(), at));
        assert!(expiry_ms(Duration::ZERO) > now_ms() - 1);
        assert_eq!(expiry_ms(Duration::MAX), u64::MAX);
    }
}
