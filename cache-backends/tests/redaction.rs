//! Credentials never appear in the `Debug` or `Display` output of any public type that holds
//! configuration: every one of them is formatted here, holding a password in its URL, in a
//! URL query parameter and in options named like secrets.
#![cfg(all(feature = "redis", feature = "memory"))]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use cache_backends::redis::{RedisBus, RedisOptions, RedisTier};
use cache_core::config::{parse_toml, StoreConfig, TierConfig};
use cache_core::store::{MapTier, RemoteTier};
use cache_core::{CacheError, CacheManager, ConfigOrigin, StoreBuilder, TierError};
use redis_server::RedisServer;

/// Every secret used below: none may appear in any output.
const SECRETS: [&str; 5] = [
    "Pa55-in-userinfo",
    "Pa55-in-query",
    "Pa55-in-option",
    "Pa55-in-nested",
    "Pa55-wrong",
];

fn assert_redacted(what: &str, shown: &str) {
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{what} shows {secret}: {shown}");
    }
}

fn debug_and_display<T: std::fmt::Debug + std::fmt::Display>(what: &str, value: &T) {
    assert_redacted(what, &format!("{value:?}"));
    assert_redacted(what, &format!("{value:#?}"));
    assert_redacted(what, &format!("{value}"));
}

fn debug<T: std::fmt::Debug>(what: &str, value: &T) {
    assert_redacted(what, &format!("{value:?}"));
    assert_redacted(what, &format!("{value:#?}"));
}

fn url(server: &RedisServer) -> String {
    format!("redis://:Pa55-in-userinfo@127.0.0.1:{}/0", server.port())
}

/// A configuration holding secrets in every place a configuration can hold them.
fn toml_text(url: &str) -> String {
    format!(
        r#"
        prefix = "app"
        default_store = "shared"
        [stores.shared]
        l1 = {{ driver = "memory", max_entries = 100 }}
        l2 = {{ driver = "redis", url = "{url}", operation_timeout = "300ms", connect_timeout = "300ms" }}
        bus = {{ driver = "redis", url = "{url}" }}
        [stores.odd]
        l2 = {{ driver = "redis", url = "redis://127.0.0.1:1/0?password=Pa55-in-query", token = "Pa55-in-option", tls = {{ client_key = "Pa55-in-nested" }} }}
        "#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_configuration_holder_shows_a_credential() {
    let server = RedisServer::start_with_password("Pa55-in-userinfo");
    let url = url(&server);

    // The parsed configuration and its parts.
    let config = parse_toml(&toml_text(&url), ConfigOrigin::String).unwrap();
    debug("ManagerConfig", &config);
    let shared: &StoreConfig = &config.stores["shared"];
    debug("StoreConfig", shared);
    let l2: &TierConfig = shared.l2.as_ref().unwrap();
    debug("TierConfig", l2);
    let odd: &StoreConfig = &config.stores["odd"];
    debug("StoreConfig (odd)", odd);
    assert!(format!("{odd:?}").contains("***"), "{odd:?}");

    // The builders, from configuration and from code.
    let builder = CacheManager::builder()
        .store_config("shared", shared.clone())
        .store_config("odd", odd.clone())
        .default_store("shared");
    debug("CacheManagerBuilder", &builder);
    let options = RedisOptions::new(&url)
        .operation_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300));
    debug("RedisOptions", &options);
    let tier = RedisTier::new(&options).unwrap();
    debug("RedisTier", &tier);
    assert_redacted("RedisTier::describe", &tier.describe());
    let bus = RedisBus::new(&options, "app:__bus").unwrap();
    debug("RedisBus", &bus);
    let store = StoreBuilder::new()
        .l1(MapTier::new())
        .l2(Arc::new(tier.clone()))
        .bus(Arc::new(bus));
    debug("StoreBuilder", &store);

    // A configuration with an option the driver refuses: the error names it, never its value.
    let refused = CacheManager::from_config(config.clone()).unwrap_err();
    assert!(refused.to_string().contains("no such option"), "{refused}");
    debug_and_display("CacheError::Config (unknown option)", &refused);

    // A URL the driver cannot parse.
    let bad = RedisTier::new(&RedisOptions::new(
        "redis://:Pa55-in-userinfo@127.0.0.1:notaport/0",
    ))
    .unwrap_err();
    debug_and_display("CacheError::Config (bad URL)", &bad);

    // The manager, its stores and caches.
    let manager = CacheManager::from_toml_str(&toml_text(&url).replace(
        ", token = \"Pa55-in-option\", tls = { client_key = \"Pa55-in-nested\" }",
        "",
    ))
    .unwrap();
    debug("CacheManager", &manager);
    debug("Store", &manager.store("shared").unwrap());
    // Redacted, not emptied: a store still shows what it is made of, its server included.
    let shown = format!("{:?}", manager.store("shared").unwrap());
    assert!(
        shown.contains("memory") && shown.contains(&format!(":{}", server.port())),
        "{shown}"
    );
    let cache = manager.cache("users").unwrap();
    debug("Cache", &cache);
    cache.set(&1u64, &"one".to_string()).await.unwrap();
    assert_eq!(
        cache.get::<String>(&1u64).await.unwrap().as_deref(),
        Some("one")
    );

    // Errors of a live tier: refused credentials.
    let wrong = RedisTier::new(
        &RedisOptions::new(format!("redis://:Pa55-wrong@127.0.0.1:{}/0", server.port()))
            .connect_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let err: TierError = wrong.get("app:users:1").await.unwrap_err();
    debug_and_display("TierError (wrong password)", &err);
    let wrapped = CacheError::Tier {
        store: "shared".into(),
        source: err,
    };
    debug_and_display("CacheError::Tier", &wrapped);

    // Errors made by drivers from text that repeats a URL.
    let made =
        TierError::new("cannot reach redis://:Pa55-in-userinfo@h:6379/0?token=Pa55-in-query");
    debug_and_display("TierError (from text)", &made);
    let tier_config = TierConfig::new(
        "custom",
        toml::Table::new(),
        "stores.s.l2",
        ConfigOrigin::Builder,
    );
    debug_and_display(
        "CacheError from TierConfig::error",
        &tier_config.error("dsn", format!("a reachable database, not {url}")),
    );
    let literal = CacheError::Config {
        origin: ConfigOrigin::Builder,
        field: "url".into(),
        expected: format!("a URL; found {url} with password=Pa55-in-option"),
    };
    debug_and_display("CacheError::Config (made by hand)", &literal);
}
