//! Per-store payload codecs against a real `redis-server`: the envelope records the codec,
//! so a store whose codec changed reads the old entries as misses (never errors, never
//! wrong values) and overwrites them.
#![cfg(all(feature = "redis", feature = "bincode", feature = "json"))]

#[allow(dead_code)]
mod support;

use cachet::codec::ValueCodec;
use cachet::CacheManager;
use serde::{Deserialize, Serialize};
use support::redis_cli;
use support::redis_server::RedisServer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    roles: Vec<u32>,
}

fn ann() -> User {
    User {
        id: 42,
        name: "ann".into(),
        roles: vec![1, 2],
    }
}

/// An L2-only store (every read goes to Redis) with `codec`, or the default when `None`.
fn store(server: &RedisServer, codec: Option<&str>) -> CacheManager {
    let codec = codec
        .map(|c| format!("codec = \"{c}\"\n"))
        .unwrap_or_default();
    CacheManager::from_toml_str(&format!(
        "prefix = \"app\"\nttl = \"1h\"\n[stores.shared]\nl2 = {{ driver = \"redis\", url = \"{}\" }}\n{codec}",
        server.url()
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_stores_codec_turns_old_entries_into_misses_then_overwrites_them() {
    let server = RedisServer::start();
    let codecs = [None, Some("msgpack"), Some("bincode"), Some("json")];
    for (i, writer) in codecs.iter().enumerate() {
        for reader in codecs.iter().skip(i + 1) {
            let same = writer.unwrap_or("msgpack") == reader.unwrap_or("msgpack");
            let (old, new) = (store(&server, *writer), store(&server, *reader));
            let (old_users, new_users) = (old.cache("users").unwrap(), new.cache("users").unwrap());
            old_users.set(&42u64, &ann()).await.unwrap();

            let read: Option<User> = new_users.get(&42u64).await.unwrap();
            if same {
                assert_eq!(read, Some(ann()), "{writer:?} then {reader:?}");
                continue;
            }
            assert_eq!(read, None, "{writer:?} read as {reader:?}: a miss");
            assert!(!new_users.has(&42u64).await.unwrap());
            assert_eq!(new_users.stats().misses, 1);

            // The miss runs the factory and overwrites the entry in the new codec.
            let renamed = User {
                name: "ann 2".into(),
                ..ann()
            };
            let got: User = new_users
                .get_or_set(&42u64, || {
                    let renamed = renamed.clone();
                    async move { renamed }
                })
                .await
                .unwrap();
            assert_eq!(got, renamed);
            let read: Option<User> = new_users.get(&42u64).await.unwrap();
            assert_eq!(
                read,
                Some(renamed.clone()),
                "{reader:?} reads its own entry"
            );
            // ... which the old codec in turn reads as a miss.
            let read: Option<User> = old_users.get(&42u64).await.unwrap();
            assert_eq!(read, None, "{writer:?} reads {reader:?}'s entry as a miss");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_entries_are_readable_in_redis() {
    let server = RedisServer::start();
    let manager = store(&server, Some("json"));
    manager
        .cache("users")
        .unwrap()
        .set(&42u64, &ann())
        .await
        .unwrap();
    let raw = redis_cli(server.port(), &["--no-raw", "GET", "app:users:42"]);
    assert!(
        raw.contains(r#"{\"id\":42,\"name\":\"ann\",\"roles\":[1,2]}"#),
        "{raw}"
    );
}

#[test]
fn codecs_by_name_in_configuration() {
    let parse = |codec: &str| {
        CacheManager::from_toml_str(&format!(
            "[stores.shared]\ndriver = \"none\"\ncodec = \"{codec}\""
        ))
    };
    for codec in ["msgpack", "bincode", "json"] {
        parse(codec).unwrap();
    }
    let err = parse("cbor").unwrap_err().to_string();
    assert!(
        err.contains("stores.shared.codec") && err.contains("cbor") && err.contains("msgpack"),
        "{err}"
    );
    assert_eq!(ValueCodec::builtin("json").unwrap().unwrap().name(), "json");
}
