//! Tag sets: listing, union, deleting, and outliving their entries.

use std::collections::BTreeSet;
use std::time::Duration;

use super::support::{Check, LONG_TTL};
use super::{Expiry, Fixture};
use crate::error::TierError;
use crate::store::RemoteTier;

/// With the `tags` capability: a tagged write stores the value and lists its key in each
/// tag set; [`tagged_keys`](crate::store::RemoteTier::tagged_keys) is the union of the
/// sets; [`delete_tagged`](crate::store::RemoteTier::delete_tagged) deletes exactly the
/// given keys and takes only them out of the sets (a key tagged meanwhile stays listed);
/// a tag set expires, never before the entries it lists (its expiry is raised by a longer
/// write, never lowered by a shorter one), and memberships last the `tags_ttl` they were
/// written for, past the entry's own first expiry (an entry renewed by `touch`, as time
/// to idle does, stays listed), a `tags_ttl` shorter than the entry's TTL counting as the
/// TTL. Without it: a tagged write fails, and stores nothing.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::tags(fixture).await;
/// # }
/// ```
pub async fn tags(fixture: &impl Fixture) {
    let check = Check::new("tags");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let minute = Duration::from_secs(60);
    let sale = check.key("c:=tag:sale");
    let new = check.key("c:=tag:new");
    let k1 = check.key("c:1");
    let k2 = check.key("c:2");
    let k3 = check.key("c:3");
    if !fixture.capabilities().has_tags() {
        let answer = tagged(tier, &k1, b"v", minute, std::slice::from_ref(&sale)).await;
        check.expect(
            answer.is_err(),
            "the tier does not claim tags, but a tagged write succeeded",
        );
        check.expect(
            check.ok("get", tier.get(&k1).await).is_none(),
            "a tagged write that failed stored its value",
        );
        return;
    }
    let set = |keys: &[&String]| keys.iter().map(|k| (*k).clone()).collect::<BTreeSet<_>>();
    check.expect(
        check
            .ok("tagged_keys of no tag", tier.tagged_keys(&[]).await)
            .is_empty(),
        "tagged_keys of no tag listed keys",
    );
    check.expect(
        check
            .ok(
                "tagged_keys of an unknown tag",
                tier.tagged_keys(std::slice::from_ref(&sale)).await,
            )
            .is_empty(),
        "an unknown tag lists keys",
    );
    check.ok(
        "set_tagged",
        tagged(tier, &k1, b"1", minute, std::slice::from_ref(&sale)).await,
    );
    check.ok(
        "set_tagged (two tags)",
        tagged(tier, &k2, b"2", minute, &[sale.clone(), new.clone()]).await,
    );
    check.ok(
        "set_tagged",
        tagged(tier, &k3, b"3", minute, std::slice::from_ref(&new)).await,
    );
    check.ok(
        "set_tagged (no tag)",
        tagged(tier, &check.key("c:4"), b"4", minute, &[]).await,
    );
    let read = check.ok("get", tier.get(&k2).await);
    check.expect(
        read.as_deref() == Some(&b"2"[..]),
        format_args!("a tagged write read back {read:?}"),
    );
    // Writing a key again with the same tag lists it once.
    check.ok(
        "set_tagged (again)",
        tagged(tier, &k1, b"1", minute, std::slice::from_ref(&sale)).await,
    );
    check.expect(
        listed(&check, tier, std::slice::from_ref(&sale)).await == set(&[&k1, &k2]),
        "tag `sale` lists the wrong keys",
    );
    check.expect(
        listed(&check, tier, std::slice::from_ref(&new)).await == set(&[&k2, &k3]),
        "tag `new` lists the wrong keys",
    );
    check.expect(
        listed(&check, tier, &[sale.clone(), new.clone()]).await == set(&[&k1, &k2, &k3]),
        "two tags do not list the union of their keys",
    );
    // Tag sets expire, never before what they list.
    check.ok(
        "set_tagged (shorter)",
        tagged(
            tier,
            &check.key("c:5"),
            b"5",
            Duration::from_secs(5),
            std::slice::from_ref(&sale),
        )
        .await,
    );
    match fixture.expiry_of(&sale).await {
        Expiry::In(left) if left > Duration::from_secs(30) && left <= minute + Duration::from_secs(1) => {}
        other => check.fail(format_args!(
            "after tagged writes for 60 s then 5 s, the tag set has expiry {other:?} (expected about 60 s: never lowered, never none)"
        )),
    }
    check.ok(
        "set_tagged (longer)",
        tagged(
            tier,
            &check.key("c:6"),
            b"6",
            Duration::from_secs(600),
            std::slice::from_ref(&sale),
        )
        .await,
    );
    match fixture.expiry_of(&sale).await {
        Expiry::In(left) if left > Duration::from_secs(500) && left <= Duration::from_secs(601) => {}
        other => check.fail(format_args!(
            "after a tagged write for 600 s, the tag set has expiry {other:?} (expected raised to about 600 s)"
        )),
    }
    // Delete what `sale` listed; a key tagged after the listing stays listed.
    let doomed: Vec<String> = listed(&check, tier, std::slice::from_ref(&sale))
        .await
        .into_iter()
        .collect();
    let late = check.key("c:late");
    check.ok(
        "set_tagged",
        tagged(tier, &late, b"l", minute, std::slice::from_ref(&sale)).await,
    );
    check.ok(
        "delete_tagged",
        tier.delete_tagged(&doomed, std::slice::from_ref(&sale))
            .await,
    );
    for key in &doomed {
        check.expect(
            check.ok("get", tier.get(key).await).is_none(),
            format_args!("`{key}` survived delete_tagged"),
        );
    }
    check.expect(
        listed(&check, tier, std::slice::from_ref(&sale)).await == set(&[&late]),
        "after delete_tagged, the tag set does not list exactly the key tagged meanwhile",
    );
    let read = check.ok("get", tier.get(&k3).await);
    check.expect(
        read.as_deref() == Some(&b"3"[..]),
        "an entry of another tag was deleted",
    );
    check.ok(
        "delete_tagged of no key",
        tier.delete_tagged(&[], std::slice::from_ref(&sale)).await,
    );
    memberships_outlive_the_first_expiry(&check, fixture).await;
    a_shorter_tags_ttl_counts_as_ttl(&check, fixture).await;
    check.clean(tier).await;
    check.expect(
        listed(&check, tier, &[sale.clone(), new.clone()])
            .await
            .is_empty(),
        "clearing the scope left tag sets listing keys",
    );
}

/// Time to idle: an entry written for less than its full lifetime and kept by `touch`
/// stays listed by its tags past the expiry it was first written with, because its
/// memberships were written for the full lifetime (`tags_ttl`). Were they written with the
/// entry's first expiry, `delete_by_tag` would stop finding an entry still being served.
async fn memberships_outlive_the_first_expiry(check: &Check, fixture: &impl Fixture) {
    let tier = fixture.tier();
    let tier = tier.as_ref();
    // Long enough for a tagged write and a touch on a loaded emulator.
    let first = Duration::from_secs(5);
    let idle = check.key("c:idle");
    let idle_tag = check.key("c:=tag:idle");
    check.ok(
        "set_tagged (written for 5 s, listed for an hour)",
        tier.set_tagged(
            &idle,
            b"i".to_vec(),
            first,
            std::slice::from_ref(&idle_tag),
            LONG_TTL,
        )
        .await,
    );
    // Right after the write, well within its first TTL.
    let touched =
        fixture.capabilities().has_touch() && check.ok("touch", tier.touch(&idle, LONG_TTL).await);
    check.expect(
        touched || !fixture.capabilities().has_touch(),
        "touching a live tagged entry answered false",
    );
    // Written after `idle` for as long: once it is gone, `idle`'s first expiry has passed.
    let control = check.key("c:control");
    check.ok("set", tier.set(&control, b"c".to_vec(), first).await);
    match fixture.expiry_of(&idle_tag).await {
        Expiry::In(left) if left > LONG_TTL / 2 && left <= LONG_TTL + Duration::from_secs(1) => {}
        other => check.fail(format_args!(
            "a tagged write for {first:?} listed for {LONG_TTL:?} left the tag set with expiry {other:?} (expected about {LONG_TTL:?}: memberships last `tags_ttl`, not the entry's TTL)"
        )),
    }
    check
        .eventually("an entry written for 5 s is still read", || async {
            check.ok("get", tier.get(&control).await).is_none()
        })
        .await;
    check.expect(
        listed(check, tier, std::slice::from_ref(&idle_tag)).await
            == BTreeSet::from([idle.clone()]),
        "past the entry's first expiry, its tag no longer lists it although its memberships were written for an hour",
    );
    if touched {
        let read = check.ok("get", tier.get(&idle).await);
        check.expect(
            read.as_deref() == Some(&b"i"[..]),
            format_args!("a touched tagged entry read back {read:?} past its first expiry"),
        );
    }
}

/// A `tags_ttl` shorter than the entry's TTL counts as the TTL (the trait's promise to any
/// caller): memberships never end before the entry they list, or `delete_by_tag` would
/// stop finding an entry still served.
async fn a_shorter_tags_ttl_counts_as_ttl(check: &Check, fixture: &impl Fixture) {
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let (ttl, tags_ttl) = (Duration::from_secs(600), Duration::from_secs(1));
    let key = check.key("c:short-tags-ttl");
    let tag = check.key("c:=tag:short-tags-ttl");
    check.ok(
        "set_tagged (written for 600 s, tags_ttl 1 s)",
        tier.set_tagged(
            &key,
            b"s".to_vec(),
            ttl,
            std::slice::from_ref(&tag),
            tags_ttl,
        )
        .await,
    );
    match fixture.expiry_of(&tag).await {
        Expiry::In(left) if left > Duration::from_secs(500) && left <= ttl + Duration::from_secs(1) => {}
        other => check.fail(format_args!(
            "a tagged write for {ttl:?} with a `tags_ttl` of {tags_ttl:?} left the tag set with expiry {other:?} (expected about {ttl:?}: a `tags_ttl` shorter than its TTL counts as the TTL)"
        )),
    }
}

/// The keys the tag sets `tags` list, failing if one is listed twice.
async fn listed(check: &Check, tier: &dyn RemoteTier, tags: &[String]) -> BTreeSet<String> {
    let keys = check.ok("tagged_keys", tier.tagged_keys(tags).await);
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    check.expect(
        unique.len() == keys.len(),
        format_args!("tagged_keys listed a key twice: {keys:?}"),
    );
    unique
}

/// A tagged write whose memberships last as long as the entry (`ttl` for both): what every
/// check but the one of a longer `tags_ttl` writes.
async fn tagged(
    tier: &dyn RemoteTier,
    key: &str,
    value: &[u8],
    ttl: Duration,
    tags: &[String],
) -> Result<(), TierError> {
    tier.set_tagged(key, value.to_vec(), ttl, tags, ttl).await
}
