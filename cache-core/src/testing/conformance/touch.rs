//! Renewing an entry's expiry (`touch`, what time to idle uses on the shared tier).

use std::time::Duration;

use super::support::{Check, LONG_TTL};
use super::{Expiry, Fixture};

/// With the `touch` capability: touching a live entry moves its expiry on the server
/// later, to the new TTL from now, and leaves its bytes as they were; it never moves it
/// sooner (a touch for less than what is left answers `false` and changes nothing: a
/// touch computed from an older copy must not cut short a newer entry); touching a missing
/// key or an expired entry answers `false` and brings nothing back. Without it, touching
/// answers `false` and moves nothing.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::touch(fixture).await;
/// # }
/// ```
pub async fn touch(fixture: &impl Fixture) {
    let check = Check::new("touch");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let key = check.key("c:idle");
    let short = Duration::from_secs(5);
    check.ok("set", tier.set(&key, b"kept".to_vec(), short).await);
    let touched = check.ok("touch", tier.touch(&key, LONG_TTL).await);
    let expiry = fixture.expiry_of(&key).await;
    if !fixture.capabilities().has_touch() {
        check.expect(
            !touched,
            "touch answered true though the tier claims no touch",
        );
        check.expect(
            expiry.within(short + Duration::from_secs(1)),
            format_args!("touch moved the expiry ({expiry:?}) though the tier claims no touch"),
        );
        check.clean(tier).await;
        return;
    }
    check.expect(touched, "touching a live entry answered false");
    // The server may round to its own clock's resolution: a second of slack.
    let slack = Duration::from_secs(1);
    check.expect(
        matches!(expiry, Expiry::In(left) if left > short + slack && left <= LONG_TTL + slack),
        format_args!(
            "an entry written for {short:?} and touched for {LONG_TTL:?} has expiry {expiry:?}"
        ),
    );
    let read = check.ok("get after touch", tier.get(&key).await);
    check.expect(
        read.as_deref() == Some(&b"kept"[..]),
        format_args!("touch changed the entry's bytes: read {read:?}"),
    );
    // Never sooner: a touch only raises an expiry, it never lowers it.
    let sooner = Duration::from_secs(3);
    let touched = check.ok("touch (sooner)", tier.touch(&key, sooner).await);
    check.expect(
        !touched,
        "touching an entry for less than it has left answered true",
    );
    let expiry = fixture.expiry_of(&key).await;
    check.expect(
        matches!(expiry, Expiry::In(left) if left > LONG_TTL / 2),
        format_args!(
            "an entry touched for {LONG_TTL:?}, then for {sooner:?}, has expiry {expiry:?} (a touch moved it sooner)"
        ),
    );
    // Later again, from a touched expiry.
    let later = 2 * LONG_TTL;
    let touched = check.ok("touch (later)", tier.touch(&key, later).await);
    check.expect(touched, "touching a live entry for longer answered false");
    let expiry = fixture.expiry_of(&key).await;
    check.expect(
        matches!(expiry, Expiry::In(left) if left > LONG_TTL + slack && left <= later + slack),
        format_args!(
            "an entry touched for {LONG_TTL:?}, then for {later:?}, has expiry {expiry:?}"
        ),
    );
    // Nothing to touch: no entry, or one that expired (its record may still be there).
    let missing = check.key("c:never-written");
    check.expect(
        !check.ok(
            "touch of a missing key",
            tier.touch(&missing, LONG_TTL).await,
        ),
        "touching a key never written answered true",
    );
    check.expect(
        check.ok("get", tier.get(&missing).await).is_none(),
        "touching a key never written made an entry",
    );
    let expired = check.key("c:expired");
    check.ok(
        "set (150 ms)",
        tier.set(&expired, b"gone".to_vec(), Duration::from_millis(150))
            .await,
    );
    check
        .eventually(
            &format!("`{expired}` is still read after its TTL"),
            || async { check.ok("get", tier.get(&expired).await).is_none() },
        )
        .await;
    check.expect(
        !check.ok(
            "touch of an expired entry",
            tier.touch(&expired, LONG_TTL).await,
        ),
        "touching an expired entry answered true",
    );
    check.expect(
        check.ok("get", tier.get(&expired).await).is_none(),
        "touching an expired entry brought it back",
    );
    check.clean(tier).await;
}
