//! Clearing and scanning scopes: exactly a cache's or namespace's keys, whatever its name.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::support::{Check, LONG_TTL};
use super::Fixture;
use crate::store::{RemoteTier, Scope};

/// Names that are wildcards or escapes in SQL `LIKE` (`%`, `_`, `\`), Redis globs (`*`,
/// `?`, `[`, `]`, `\`) or separators of cachet's own key layout (`:`, `#`), alone and next
/// to ordinary characters; and the ordinary names they would match if taken literally.
const NAMES: &[&str] = &[
    "a", "ab", "aXb", "a_b", "a%b", "a*b", "a?b", "a[b", "a]b", r"a\b", r"a\:b", "a:b", "a#b", "%",
    "_", "*", "?", "[", "]", r"\", ":", "#", "x", "%%", "__", r"\\", "a%", "a_", "a*", r"a\",
];

/// Every key of the layout a check writes: per name, an entry of a namespace of that name,
/// an entry of a namespace nested in it, and near misses around the cache itself.
fn layout(check: &Check) -> Vec<String> {
    let mut keys = vec![
        check.key("c:1"),
        check.key("c#n:1"),
        check.key("c"),
        check.key("cc:1"),
        check.key("c_:1"),
        check.key("c%:1"),
        check.key("d:1"),
        format!("{}x:c:1", check.prefix()),
    ];
    for name in NAMES {
        keys.push(check.key(&format!("c#{name}:1")));
        keys.push(check.key(&format!("c#{name}#sub:2")));
        keys.push(check.key(&format!("c#{name}")));
        keys.push(check.key(&format!("c#{name}x:3")));
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The scopes a check clears: the cache, and a namespace of each name.
fn bases(check: &Check) -> Vec<String> {
    let mut bases = vec![check.key("c")];
    bases.extend(NAMES.iter().map(|name| check.key(&format!("c#{name}"))));
    bases
}

async fn write_all(check: &Check, tier: &dyn RemoteTier, keys: &[String]) {
    for batch in keys.chunks(64) {
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
}

async fn present(check: &Check, tier: &dyn RemoteTier, keys: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for batch in keys.chunks(64) {
        let reads = join_all(batch.iter().map(|k| tier.get(k))).await;
        for (key, read) in batch.iter().zip(reads) {
            if let Some(bytes) = check.ok("get", read) {
                check.expect(
                    bytes == key.as_bytes(),
                    format_args!("`{key}` holds another key's value"),
                );
                found.insert(key.clone());
            }
        }
    }
    found
}

/// `clear_scope` deletes exactly the keys [`Scope::contains`] names (the scope's own
/// entries and its nested namespaces') and nothing else, for a cache and for namespaces
/// whose names hold `%`, `_`, `*`, `?`, `[`, `]`, `\`, `:` or `#`: no name widens a clear
/// to a neighbour's keys. Clearing an empty scope is no error.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::clear_scopes(fixture).await;
/// # }
/// ```
pub async fn clear_scopes(fixture: &impl Fixture) {
    let check = Check::new("clear_scopes");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    let keys = layout(&check);
    check.ok(
        "clear_scope of an empty scope",
        tier.clear_scope(&Scope::new(check.key("empty"))).await,
    );
    let mut stored: BTreeSet<String> = BTreeSet::new();
    for base in bases(&check) {
        // Write back only what the last clear removed.
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| !stored.contains(*k))
            .cloned()
            .collect();
        write_all(&check, tier, &missing).await;
        let scope = Scope::new(base.clone());
        check.ok(
            &format!("clear_scope `{base}`"),
            tier.clear_scope(&scope).await,
        );
        stored = present(&check, tier, &keys).await;
        for key in &keys {
            let expected = !scope.contains(key);
            let found = stored.contains(key);
            if expected && !found {
                check.fail(format_args!(
                    "clearing `{base}` deleted `{key}`, outside it"
                ));
            }
            if !expected && found {
                check.fail(format_args!("clearing `{base}` left `{key}`, inside it"));
            }
        }
    }
    check.clean(tier).await;
}

/// With the `scan` capability: stepping [`RemoteTier::scan_scope`] from cursor 0 until it
/// answers 0 lists every key of the scope (possibly twice) and no other, for many keys
/// and for the hostile names of [`clear_scopes`]. Without it: scanning fails.
///
/// ```no_run
/// # async fn demo(fixture: &impl cache_core::testing::conformance::Fixture) {
/// cache_core::testing::conformance::scan(fixture).await;
/// # }
/// ```
pub async fn scan(fixture: &impl Fixture) {
    let check = Check::new("scan");
    let tier = fixture.tier();
    let tier = tier.as_ref();
    if !fixture.capabilities().has_scan() {
        let answer = tier.scan_scope(&Scope::new(check.key("c")), 0).await;
        check.expect(
            answer.is_err(),
            "the tier does not claim scans, but scan_scope answered as if it did",
        );
        return;
    }
    let mut keys = layout(&check);
    keys.extend((0..1200).map(|i| check.key(&format!("c:many{i}"))));
    write_all(&check, tier, &keys).await;
    for base in bases(&check) {
        let scope = Scope::new(base.clone());
        let mut listed = BTreeSet::new();
        let mut cursor = 0;
        let mut steps = 0usize;
        loop {
            let (next, page) = check.ok(
                &format!("scan_scope `{base}` at cursor {cursor}"),
                tier.scan_scope(&scope, cursor).await,
            );
            listed.extend(page);
            steps += 1;
            check.expect(
                steps < 100_000,
                format_args!("scanning `{base}` did not end after {steps} steps"),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let expected: BTreeSet<String> =
            keys.iter().filter(|k| scope.contains(k)).cloned().collect();
        if let Some(extra) = listed.difference(&expected).next() {
            check.fail(format_args!(
                "scanning `{base}` listed `{extra}`, outside it"
            ));
        }
        if let Some(missed) = expected.difference(&listed).next() {
            check.fail(format_args!("scanning `{base}` did not list `{missed}`"));
        }
    }
    check.clean(tier).await;
}
