//! The distributed lock: one holder at a time, expiry, no foreign release.

use std::time::Duration;

use futures_util::future::join_all;

use super::support::Check;
use super::Fixture;

/// With the `lock` capability: of many concurrent takers of one free lock exactly one wins;
/// a held lock refuses others; releasing with another's token is refused and leaves the
/// lock held; the holder's release frees it (once); a lock expires by itself after its
/// TTL, and a holder whose lock expired and was taken by another cannot release the
/// other's. Locks of distinct keys are independent. Without it: taking a lock fails.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::lock(fixture).await;
/// # }
/// ```
pub async fn lock(fixture: &impl Fixture) {
    let check = Check::new("lock");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let long = Duration::from_secs(30);
    let key = check.key("~lock:c:1");
    if !fixture.capabilities().has_lock() {
        let answer = tier.try_lock(&key, "a", long).await;
        check.expect(
            answer.is_err(),
            "the tier does not claim the lock, but try_lock answered as if it did",
        );
        return;
    }
    // Contention: exactly one of many concurrent takers wins.
    let tokens: Vec<String> = (0..24).map(|i| format!("taker-{i}")).collect();
    let answers = join_all(tokens.iter().map(|t| tier.try_lock(&key, t, long))).await;
    let winners: Vec<&String> = tokens
        .iter()
        .zip(answers)
        .filter_map(|(t, a)| check.ok("a concurrent try_lock", a).then_some(t))
        .collect();
    check.expect(
        winners.len() == 1,
        format_args!(
            "{} of 24 concurrent takers got one lock: {winners:?}",
            winners.len()
        ),
    );
    let holder = winners[0].clone();
    let other = if holder == "taker-0" {
        "taker-1"
    } else {
        "taker-0"
    };
    check.expect(
        !check.ok("try_lock", tier.try_lock(&key, other, long).await),
        "a held lock was taken by another token",
    );
    check.expect(
        !check.ok("try_lock", tier.try_lock(&key, &holder, long).await),
        "a held lock was taken again by its own holder (locks are not reentrant)",
    );
    // A foreign release is refused and leaves the lock held.
    check.expect(
        !check.ok("unlock (foreign)", tier.unlock(&key, other).await),
        "a lock was released with another holder's token",
    );
    check.expect(
        !check.ok("try_lock", tier.try_lock(&key, other, long).await),
        "a foreign release freed the lock",
    );
    // Another key's lock is independent.
    let key2 = check.key("~lock:c:2");
    check.expect(
        check.ok(
            "try_lock (another key)",
            tier.try_lock(&key2, other, long).await,
        ),
        "the lock of another key could not be taken",
    );
    check.expect(
        check.ok("unlock (another key)", tier.unlock(&key2, other).await),
        "the holder of another key's lock could not release it",
    );
    // The holder's release frees it, once.
    check.expect(
        check.ok("unlock", tier.unlock(&key, &holder).await),
        "the holder's release was refused",
    );
    check.expect(
        !check.ok("unlock (again)", tier.unlock(&key, &holder).await),
        "a lock was released twice",
    );
    check.expect(
        check.ok(
            "try_lock after release",
            tier.try_lock(&key, other, long).await,
        ),
        "a released lock could not be taken",
    );
    check.expect(
        check.ok("unlock", tier.unlock(&key, other).await),
        "release refused",
    );
    check.expect(
        !check.ok(
            "unlock of a free lock",
            tier.unlock(&check.key("~lock:c:never"), "x").await,
        ),
        "a lock never taken was released",
    );
    // Expiry: a lock whose holder never releases it frees itself.
    let expiring = check.key("~lock:c:expiring");
    check.expect(
        check.ok(
            "try_lock",
            tier.try_lock(&expiring, "crashed", Duration::from_millis(150))
                .await,
        ),
        "a free lock could not be taken",
    );
    check
        .eventually(
            "a lock taken for 150 ms can still not be taken by another",
            || async { check.ok("try_lock", tier.try_lock(&expiring, "next", long).await) },
        )
        .await;
    // The first holder, back late, cannot release the next one's lock.
    check.expect(
        !check.ok(
            "unlock (expired holder)",
            tier.unlock(&expiring, "crashed").await,
        ),
        "a holder whose lock expired released the next holder's lock",
    );
    check.expect(
        !check.ok("try_lock", tier.try_lock(&expiring, "third", long).await),
        "an expired holder's release freed the next holder's lock",
    );
    check.expect(
        check.ok("unlock", tier.unlock(&expiring, "next").await),
        "the next holder could not release its lock",
    );
    check.clean(tier).await;
}
