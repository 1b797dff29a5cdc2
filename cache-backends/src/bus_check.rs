//! [`BusCheck`]: what `cachet check` measures of a bus (the Redis bus, the PostgreSQL bus),
//! and the probe it sends.

use std::time::Duration;

/// What a bus check measured: the bus can be subscribed to, and a message published on
/// it comes back. `RedisBus::check` and `PostgresBus::check` make it.
///
/// ```
/// use cache_backends::BusCheck;
/// fn report(c: &BusCheck) -> String {
///     format!("subscribed in {:?}, round trip {:?}", c.subscribe, c.round_trip)
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusCheck {
    /// Connecting a subscriber and subscribing to the bus channel and the check channel.
    pub subscribe: Duration,
    /// From publishing the probe to receiving it through the subscription.
    pub round_trip: Duration,
}

/// A probe payload unique to one check, so concurrent checks never mix: `cachet-check:`
/// and 32 hex digits. Its first byte is no version any build writes, so were it ever
/// delivered to a bus it would be ignored as garbage.
pub(crate) fn probe_payload() -> String {
    let mut probe = String::from("cachet-check:");
    for b in crate::message::random_id() {
        probe.push_str(&format!("{b:02x}"));
    }
    probe
}
