//! A crafted value under a cached key is a miss, never a crash (issue 16, fault 1): the
//! issue's recursive enum, nested 100,000 deep (~500 KB) in a valid envelope in Redis.
#![cfg(feature = "redis")]

#[allow(dead_code)]
mod support;

use cachet::CacheManager;
use serde::{Deserialize, Serialize};
use support::redis_server::RedisServer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Filter {
    Eq(String),
    Not(Box<Filter>),
}

#[tokio::test]
async fn a_value_nested_100_000_deep_is_a_miss_and_is_replaced() {
    let server = RedisServer::start();
    let manager = CacheManager::from_toml_str(&format!(
        "prefix = \"p\"\n[stores.shared]\nl2 = {{ driver = \"redis\", url = \"{}\" }}\n",
        server.url()
    ))
    .unwrap();
    let filters = manager.cache("filters").unwrap();

    // A valid envelope for `Filter` (from a real write), its payload replaced.
    filters.set(&1u64, &Filter::Eq("x".into())).await.unwrap();
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let written: Vec<u8> = redis::cmd("GET")
        .arg("p:filters:1")
        .query(&mut raw)
        .unwrap();
    let mut crafted = written[..cache_core::codec::HEADER_LEN].to_vec();
    for _ in 0..100_000 {
        crafted.extend_from_slice(&[0x81, 0xa3, b'N', b'o', b't']);
    }
    crafted.extend_from_slice(&[0x81, 0xa2, b'E', b'q', 0xa0]);
    assert!(crafted.len() > 500_000);
    let _: () = redis::cmd("SET")
        .arg("p:filters:1")
        .arg(&crafted)
        .query(&mut raw)
        .unwrap();

    assert_eq!(filters.get::<Filter>(&1u64).await.unwrap(), None);
    // A miss like any other: the function's value replaces it.
    let value: Filter = filters
        .get_or_set(&1u64, || async { Filter::Eq("fresh".into()) })
        .await
        .unwrap();
    assert_eq!(value, Filter::Eq("fresh".into()));
    assert_eq!(
        filters.get::<Filter>(&1u64).await.unwrap(),
        Some(Filter::Eq("fresh".into()))
    );
}
