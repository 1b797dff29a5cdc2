//! The dynamodb L2 tier against a real DynamoDB emulator (moto's server) started by the
//! harness on a loopback port. Every client here has an explicit loopback endpoint,
//! static test credentials and a region: nothing reaches for the default AWS chain.
#![cfg(feature = "dynamodb")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/dynamodb_server.rs"]
mod dynamodb_server;
mod scope_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use cache_backends::dynamodb::{DynamoOptions, DynamoTier};
use cache_core::config::TierConfig;
use cache_core::driver::find_driver;
use cache_core::store::{RemoteTier, Scope};
use cache_core::{CacheError, ConfigOrigin, TierErrorKind};
use dynamodb_server::{DynamoServer, TEST_REGION};

const TABLE: &str = "cachet";

fn opts(server: &DynamoServer) -> DynamoOptions {
    let (id, secret) = server.credentials();
    DynamoOptions::new(TABLE)
        .region(TEST_REGION)
        .endpoint(server.endpoint())
        .static_credentials(id, secret)
        .auto_create(true)
        .operation_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_millis(500))
}

fn tier(server: &DynamoServer) -> DynamoTier {
    DynamoTier::new(opts(server)).unwrap()
}

/// The SDK itself, for looking at and planting items.
fn raw(server: &DynamoServer) -> aws_sdk_dynamodb::Client {
    let (id, secret) = server.credentials();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(TEST_REGION))
        .endpoint_url(server.endpoint())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            id, secret, None, None, "test",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Every item of the table, as `pk + sk` with its attribute names.
async fn items(server: &DynamoServer) -> Vec<(String, Vec<String>)> {
    let out = raw(server).scan().table_name(TABLE).send().await.unwrap();
    let mut found: Vec<(String, Vec<String>)> = out
        .items()
        .iter()
        .map(|item| {
            let s = |n: &str| match item.get(n) {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            let mut names: Vec<String> = item.keys().cloned().collect();
            names.sort();
            (format!("{}{}", s("pk"), s("sk")), names)
        })
        .collect();
    found.sort();
    found
}

async fn stored_keys(server: &DynamoServer) -> Vec<String> {
    items(server)
        .await
        .into_iter()
        .filter(|(_, attrs)| attrs.iter().any(|a| a == "v"))
        .map(|(k, _)| k)
        .collect()
}

#[tokio::test]
async fn set_get_delete_and_every_item_carries_its_expiry() {
    let server = DynamoServer::start();
    let t = tier(&server);
    assert_eq!(t.get("app:users:1").await.unwrap(), None);
    t.set("app:users:1", b"one".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    t.set("app:users:", b"empty key".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    t.set("app:users#eu:1", b"eu".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(t.get("app:users:1").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(
        t.get("app:users:").await.unwrap(),
        Some(b"empty key".to_vec())
    );
    assert_eq!(t.get("app:users#eu:1").await.unwrap(), Some(b"eu".to_vec()));
    // overwrite
    t.set("app:users:1", b"uno".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(t.get("app:users:1").await.unwrap(), Some(b"uno".to_vec()));
    // every item has both expiry attributes (DynamoDB's TTL one and the exact one)
    let all = items(&server).await;
    assert!(!all.is_empty());
    for (key, attrs) in &all {
        assert!(attrs.contains(&"expires_at".to_owned()), "{key}: {attrs:?}");
        assert!(attrs.contains(&"expires_ms".to_owned()), "{key}: {attrs:?}");
    }
    // registrations: the cache in the store's root, the namespace in the cache
    let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "app:users",
            "app:users#eu",
            "app:users#eu:1",
            "app:users:",
            "app:users:1"
        ]
    );
    t.delete_many(&[
        "app:users:1".into(),
        "app:users:1".into(),
        "app:users:missing".into(),
    ])
    .await
    .unwrap();
    t.delete_many(&[]).await.unwrap();
    assert_eq!(t.get("app:users:1").await.unwrap(), None);
    assert_eq!(stored_keys(&server).await, ["app:users#eu:1", "app:users:"]);
    // many keys: batches of 25
    let many: Vec<String> = (0..60).map(|i| format!("app:m:{i}")).collect();
    for k in &many {
        t.set(k, b"v".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
    }
    t.delete_many(&many).await.unwrap();
    assert_eq!(stored_keys(&server).await, ["app:users#eu:1", "app:users:"]);
}

/// An item's number attribute, read from the table.
async fn number_of(server: &DynamoServer, pk: &str, sk: &str, name: &str) -> Option<u64> {
    let out = raw(server)
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    match out.item()?.get(name)? {
        AttributeValue::N(n) => n.parse().ok(),
        _ => None,
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `touch` (time to idle) renews both expiry attributes — DynamoDB's TTL one too, or
/// DynamoDB would delete a renewed entry at its old time — and the registration that
/// lets a clear find the entry; it never makes an item, nor touches a lock.
#[tokio::test]
async fn touch_renews_both_expiries_of_a_live_entry_and_its_registration() {
    let server = DynamoServer::start();
    let t = tier(&server);
    t.set("app:users:1", b"one".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    let day = Duration::from_secs(24 * 3600);
    assert!(t.touch("app:users:1", day).await.unwrap());
    let renewed = unix_ms() + 24 * 3600 * 1000;
    let ms = number_of(&server, "app:users", ":1", "expires_ms")
        .await
        .unwrap();
    let at = number_of(&server, "app:users", ":1", "expires_at")
        .await
        .unwrap();
    assert!(
        ms.abs_diff(renewed) < 60_000,
        "expires_ms {ms}, wanted ~{renewed}"
    );
    assert_eq!(at, ms.div_ceil(1000), "DynamoDB's TTL attribute follows");
    let registered = number_of(&server, "app", ":users", "expires_ms")
        .await
        .unwrap();
    assert!(
        registered >= ms,
        "the registration ({registered}) must outlive the entry ({ms})"
    );
    assert_eq!(t.get("app:users:1").await.unwrap(), Some(b"one".to_vec()));
    // nothing to renew: no item is made
    assert!(!t.touch("app:users:2", day).await.unwrap());
    assert_eq!(stored_keys(&server).await, ["app:users:1"]);
    assert_eq!(
        number_of(&server, "app:users", ":2", "expires_ms").await,
        None
    );
    // a lock is no entry: left as it was
    assert!(t
        .try_lock("app:~lock:users:1", "me", Duration::from_secs(30))
        .await
        .unwrap());
    let lock_ms = number_of(&server, "app:~lock:users", ":1", "expires_ms").await;
    assert!(!t.touch("app:~lock:users:1", day).await.unwrap());
    assert_eq!(
        number_of(&server, "app:~lock:users", ":1", "expires_ms").await,
        lock_ms
    );
}

#[tokio::test]
async fn expired_items_are_misses_before_dynamodb_deletes_them() {
    let server = DynamoServer::start();
    let t = tier(&server);
    t.set("app:c:short", b"x".to_vec(), Duration::from_millis(100))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.get("app:c:short").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // the emulator (like DynamoDB, for a while) still holds the item
    assert_eq!(stored_keys(&server).await, ["app:c:short"]);
    // an item planted with a past expiry is a miss too, a future one a hit
    let past = raw(&server)
        .put_item()
        .table_name(TABLE)
        .item("pk", AttributeValue::S("app:c".into()))
        .item("sk", AttributeValue::S(":planted".into()))
        .item("v", AttributeValue::B(b"old".to_vec().into()))
        .item("expires_ms", AttributeValue::N("1000".into()));
    past.send().await.unwrap();
    assert_eq!(t.get("app:c:planted").await.unwrap(), None);
    // and scans do not list them
    let (next, keys) = t.scan_scope(&Scope::new("app:c"), 0).await.unwrap();
    assert_eq!((next, keys), (0, Vec::<String>::new()));
}

#[tokio::test]
async fn clear_scope_deletes_its_partitions_and_nothing_else() {
    let server = DynamoServer::start();
    let shop = tier(&server);
    let ttl = Duration::from_secs(60);
    scope_support::seed(&shop, 120, &["shop:products:1", "other:users:1"], ttl).await;
    // a nested namespace alone
    shop.clear_scope(&Scope::new("shop:users#admins#root"))
        .await
        .unwrap();
    assert_eq!(shop.get("shop:users#admins#root:2").await.unwrap(), None);
    assert!(shop.get("shop:users#admins:1").await.unwrap().is_some());
    // the cache, with its namespaces
    shop.clear_scope(&Scope::new("shop:users")).await.unwrap();
    assert_eq!(
        stored_keys(&server).await,
        ["other:users:1", "shop:products:1", "shop:users2:1"]
    );
    // a namespace written again after its cache was cleared is cleared again
    shop.set("shop:users#admins:3", b"y".to_vec(), ttl)
        .await
        .unwrap();
    shop.clear_scope(&Scope::new("shop:users")).await.unwrap();
    assert_eq!(shop.get("shop:users#admins:3").await.unwrap(), None);
    // a second instance (no memory of registering) writes into a cleared namespace
    let other_instance = tier(&server);
    other_instance
        .set("shop:users#admins:4", b"z".to_vec(), ttl)
        .await
        .unwrap();
    shop.clear_scope(&Scope::new("shop:users")).await.unwrap();
    assert_eq!(shop.get("shop:users#admins:4").await.unwrap(), None);
    // the whole store
    shop.clear_scope(&Scope::new("shop")).await.unwrap();
    assert_eq!(stored_keys(&server).await, ["other:users:1"]);
    // a scope inside one partition (a key's own sub-keys, as scopes are text)
    shop.set("other:users:1:a", b"a".to_vec(), ttl)
        .await
        .unwrap();
    shop.set("other:users:1#b", b"b".to_vec(), ttl)
        .await
        .unwrap();
    shop.clear_scope(&Scope::new("other:users:1"))
        .await
        .unwrap();
    assert_eq!(stored_keys(&server).await, ["other:users:1"]);
    // the empty scope (every store of the table) is refused
    let err = shop.clear_scope(&Scope::new("")).await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Other);
}

#[tokio::test]
async fn scan_scope_pages_through_a_store_and_its_namespaces() {
    let server = DynamoServer::start();
    let t = tier(&server);
    let ttl = Duration::from_secs(60);
    let mut expected = Vec::new();
    for i in 0..30 {
        for key in [
            format!("shop:users:{i}"),
            format!("shop:users#eu:{i}"),
            format!("shop:orders:{i}"),
        ] {
            t.set(&key, b"x".to_vec(), ttl).await.unwrap();
            expected.push(key);
        }
    }
    t.set("posts:users:1", b"p".to_vec(), ttl).await.unwrap();
    let tags = ["shop:orders:=tag:big".to_owned()];
    t.set_tagged("shop:orders:99", b"t".to_vec(), ttl, &tags, ttl)
        .await
        .unwrap();
    expected.push("shop:orders:99".into());
    t.try_lock("shop:~lock:users:1", "tok", ttl).await.unwrap();
    let scan = |scope: &'static str| {
        let t = t.clone();
        async move {
            let scope = Scope::new(scope);
            let (mut cursor, mut keys, mut steps) = (0, Vec::new(), 0);
            loop {
                let (next, page) = t.scan_scope(&scope, cursor).await.unwrap();
                keys.extend(page);
                steps += 1;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            keys.sort();
            keys.dedup();
            (keys, steps)
        }
    };
    let (keys, steps) = scan("shop").await;
    // entries and the lock (as a scan of a Redis prefix lists them); no registration, no
    // tag row
    expected.push("shop:~lock:users:1".into());
    expected.sort();
    assert_eq!(keys, expected);
    assert!(steps >= 4, "the root, then one partition per step: {steps}");
    let (eu, _) = scan("shop:users#eu").await;
    assert_eq!(eu.len(), 30);
    assert!(eu.iter().all(|k| k.starts_with("shop:users#eu:")));
    // a finished cursor is gone
    assert!(t.scan_scope(&Scope::new("shop"), 12345).await.is_err());
}

#[tokio::test]
async fn tags_list_their_entries_and_delete_exactly_those() {
    let server = DynamoServer::start();
    let t = tier(&server);
    let ttl = Duration::from_secs(60);
    let sale = "shop:products:=tag:sale".to_owned();
    let new = "shop:products:=tag:new".to_owned();
    t.set_tagged(
        "shop:products:1",
        b"1".to_vec(),
        ttl,
        std::slice::from_ref(&sale),
        ttl,
    )
    .await
    .unwrap();
    t.set_tagged(
        "shop:products:2",
        b"2".to_vec(),
        ttl,
        &[sale.clone(), new.clone(), sale.clone()],
        ttl,
    )
    .await
    .unwrap();
    t.set_tagged(
        "shop:products:3",
        b"3".to_vec(),
        ttl,
        std::slice::from_ref(&new),
        ttl,
    )
    .await
    .unwrap();
    // a short-lived tagged entry's row expires with it
    t.set_tagged(
        "shop:products:4",
        b"4".to_vec(),
        Duration::from_millis(50),
        std::slice::from_ref(&sale),
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.get("shop:products:4").await.unwrap().is_some() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        t.tagged_keys(std::slice::from_ref(&sale)).await.unwrap(),
        ["shop:products:1", "shop:products:2"]
    );
    assert_eq!(
        t.tagged_keys(&[sale.clone(), new.clone()]).await.unwrap(),
        ["shop:products:1", "shop:products:2", "shop:products:3"]
    );
    assert!(t.tagged_keys(&[]).await.unwrap().is_empty());
    let keys = t.tagged_keys(std::slice::from_ref(&sale)).await.unwrap();
    t.delete_tagged(&keys, std::slice::from_ref(&sale))
        .await
        .unwrap();
    assert_eq!(t.get("shop:products:1").await.unwrap(), None);
    assert_eq!(t.get("shop:products:2").await.unwrap(), None);
    assert_eq!(t.get("shop:products:3").await.unwrap(), Some(b"3".to_vec()));
    // `new` still lists 2 (its row of `new` was not asked to go): deleting more than
    // asked is safe, less never happens
    assert_eq!(
        t.tagged_keys(std::slice::from_ref(&new)).await.unwrap(),
        ["shop:products:2", "shop:products:3"]
    );
    // clearing the cache clears its tag rows too
    t.clear_scope(&Scope::new("shop:products")).await.unwrap();
    assert!(t.tagged_keys(&[new]).await.unwrap().is_empty());
}

#[tokio::test]
async fn locks_have_one_holder_expire_and_only_the_holder_releases() {
    let server = DynamoServer::start();
    let t = tier(&server);
    let key = "app:~lock:users:1";
    assert!(t.try_lock(key, "a", Duration::from_secs(30)).await.unwrap());
    assert!(!t.try_lock(key, "b", Duration::from_secs(30)).await.unwrap());
    assert!(!t.unlock(key, "b").await.unwrap());
    assert!(t.unlock(key, "a").await.unwrap());
    assert!(!t.unlock(key, "a").await.unwrap());
    assert!(t.try_lock(key, "b", Duration::from_secs(30)).await.unwrap());
    // an expired lock is free, and its old holder cannot delete the new one's
    let short = "app:~lock:users:2";
    assert!(t
        .try_lock(short, "old", Duration::from_millis(50))
        .await
        .unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !t
        .try_lock(short, "new", Duration::from_secs(30))
        .await
        .unwrap()
    {
        assert!(Instant::now() < deadline, "the lock never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!t.unlock(short, "old").await.unwrap());
    assert!(t.unlock(short, "new").await.unwrap());
    // a lock is no entry
    assert_eq!(t.get(key).await.unwrap(), None);
}

#[tokio::test]
async fn oversized_values_are_refused_before_any_request() {
    let server = DynamoServer::start();
    let t = DynamoTier::new(opts(&server).max_value_size(1000)).unwrap();
    let err = t
        .set("app:c:big", vec![7; 1001], Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Other);
    assert!(err.to_string().contains("max_value_size"), "{err}");
    let err = t
        .set_tagged(
            "app:c:big",
            vec![7; 1001],
            Duration::from_secs(60),
            &["app:c:=tag:t".into()],
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Other);
    t.set("app:c:fits", vec![7; 1000], Duration::from_secs(60))
        .await
        .unwrap();
    // the default bound: a value over 400 KB is refused by the tier, a large one under it
    // is stored (moto counts a binary attribute by its base64 text, 4/3 of its bytes, so a
    // value near the default bound, which fits in DynamoDB, is refused by moto itself)
    let t = tier(&server);
    let large = 280 * 1024;
    t.set("app:c:max", vec![1; large], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        t.get("app:c:max").await.unwrap().map(|v| v.len()),
        Some(large)
    );
    let err = t
        .set(
            "app:c:over",
            vec![1; 400 * 1024 + 1],
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_value_size"), "{err}");
    assert_eq!(stored_keys(&server).await, ["app:c:fits", "app:c:max"]);
}

#[tokio::test]
async fn killed_emulator_fails_fast_as_unavailable_then_works_after_restart() {
    let server = DynamoServer::start();
    // moto answers its first DynamoDB request slowly (it loads the service then)
    tier(&server).ping().await.unwrap();
    let t = DynamoTier::new(
        opts(&server)
            .operation_timeout(Duration::from_millis(800))
            .connect_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    t.set("app:c:1", b"1".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    server.kill();
    let started = Instant::now();
    let err = t.get("app:c:1").await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    server.restart();
    // the emulator keeps nothing: make the table again
    tier(&server).ping().await.unwrap();
    assert_eq!(t.get("app:c:1").await.unwrap(), None);
    t.set("app:c:1", b"2".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(t.get("app:c:1").await.unwrap(), Some(b"2".to_vec()));
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_never_shown() {
    let server = DynamoServer::start_with_auth();
    let (id, _) = server.credentials();
    let good = tier(&server);
    good.ping().await.unwrap();
    good.set("app:c:1", b"1".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    let wrong_secret = "not-the-secret-123";
    let bad = DynamoTier::new(opts(&server).static_credentials(id, wrong_secret)).unwrap();
    let err = bad.get("app:c:1").await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Other, "{err}");
    let unknown =
        DynamoTier::new(opts(&server).static_credentials("AKIDUNKNOWN42", wrong_secret)).unwrap();
    let err2 = unknown.ping().await.unwrap_err();
    for text in [
        err.to_string(),
        err2.to_string(),
        format!("{bad:?}"),
        bad.describe(),
        format!(
            "{:?}",
            opts(&server).static_credentials("AKIDUNKNOWN42", wrong_secret)
        ),
    ] {
        assert!(!text.contains(wrong_secret), "{text}");
        assert!(!text.contains("AKIDUNKNOWN42"), "{text}");
        assert!(!text.contains(id), "{text}");
    }
}

#[test]
fn tier_outlives_the_runtime_that_first_used_it() {
    let server = DynamoServer::start();
    let t = tier(&server);
    for round in 0..3u8 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            t.set("app:c:1", vec![round], Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(t.get("app:c:1").await.unwrap(), Some(vec![round]));
        });
        drop(rt);
    }
}

fn tier_config(options: &str) -> TierConfig {
    TierConfig::new(
        "dynamodb",
        toml::from_str(options).unwrap(),
        "stores.dynamo.l2",
        ConfigOrigin::String,
    )
}

fn build(cfg: &TierConfig) -> Result<Arc<dyn RemoteTier>, CacheError> {
    (find_driver("dynamodb").unwrap().remote.unwrap())(cfg)
}

#[test]
fn driver_builds_without_a_server_and_checks_its_options() {
    // Building never connects nor resolves credentials: no request is made here.
    let t = build(&tier_config(
        r#"table = "cachet"
           region = "eu-west-1"
           endpoint = "http://user:pw@127.0.0.1:1""#,
    ))
    .unwrap();
    assert_eq!(
        t.describe(),
        "dynamodb table cachet at http://user:***@127.0.0.1:1 (eu-west-1)"
    );
    let err = build(&tier_config(r#"region = "eu-west-1""#))
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("stores.dynamo.l2.table"), "{err}");
    let err = build(&tier_config("table = \"t\"\nmax_value_size = \"500kb\""))
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("max_value_size"), "{err}");
    let err = build(&tier_config("table = \"t\"\nurl = \"x\""))
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("known options"), "{err}");
    // options given in code are checked the same way
    assert!(DynamoTier::new(DynamoOptions::new("")).is_err());
    assert!(DynamoTier::new(DynamoOptions::new("t").max_value_size(500 * 1024)).is_err());
}
