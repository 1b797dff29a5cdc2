//! The `cachet` binary on a DynamoDB store (the seed's `cachet clear dynamodb`), against a
//! DynamoDB emulator started by the harness on a loopback port. Values are written with
//! the library API, then inspected, counted and cleared from the command line.
//!
//! The binary reads its credentials from the standard AWS chain, so each run gets the
//! static test credentials in its environment, with instance metadata disabled and the
//! profile files pointed at nothing: the chain never looks past the environment.

#![cfg(all(feature = "cli", feature = "dynamodb"))]

#[allow(dead_code)] // the Redis helpers
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cachet::dynamodb::{DynamoOptions, DynamoTier};
use cachet::{CacheManager, StoreBuilder};
use support::dynamodb_server::{DynamoServer, TEST_REGION};
use support::temp_dir::TempDir;

/// A secret no output may show.
const SECRET: &str = "cli-secret-Zq81x";
const ACCESS_KEY: &str = "AKIDCLITEST";

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `cachet ARGS` in `dir` with the test credentials in its environment.
fn cachet(dir: &Path, args: &[&str]) -> Run {
    let nowhere = dir.join("no-such-aws-file");
    let out = Command::new(env!("CARGO_BIN_EXE_cachet"))
        .args(args)
        .current_dir(dir)
        .env_remove("CACHET_CONFIG")
        .env_remove("CACHET_TYPE")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .output()
        .expect("the cachet binary runs");
    let run = Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "a credential was printed: {run:?}"
    );
    run
}

fn setup(endpoint: &str) -> TempDir {
    let dir = TempDir::new("cli-dynamodb");
    std::fs::write(
        dir.join("cachet.toml"),
        format!(
            r#"
            default_store = "dynamodb"
            prefix = "app"
            ttl = "1h"

            [stores.dynamodb]
            l1 = {{ driver = "memory", max_entries = 100 }}
            l2 = {{ driver = "dynamodb", table = "cachet", region = "{TEST_REGION}", endpoint = "{endpoint}", operation_timeout = "3s", connect_timeout = "300ms" }}
            "#
        ),
    )
    .unwrap();
    dir
}

/// A manager like the application's (same prefix, store and table), built in code with
/// the test credentials.
fn app(server: &DynamoServer) -> CacheManager {
    let tier = DynamoTier::new(
        DynamoOptions::new("cachet")
            .region(TEST_REGION)
            .endpoint(server.endpoint())
            .static_credentials(ACCESS_KEY, SECRET)
            .auto_create(true)
            .operation_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    CacheManager::builder()
        .prefix("app")
        .ttl(Duration::from_secs(3600))
        .store("dynamodb", StoreBuilder::new().l2(Arc::new(tier)))
        .build()
        .unwrap()
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn stats_rows(run: &Run) -> Vec<Vec<String>> {
    run.stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn get_delete_stats_clear_and_check_work_on_a_dynamodb_store() {
    let server = DynamoServer::start();
    let dir = setup(&server.endpoint());
    let manager = app(&server);
    block(async {
        let users = manager.cache("users").unwrap();
        for id in 1..=3u64 {
            users.set(&id, &format!("user {id}")).await.unwrap();
        }
        users
            .namespace("admins")
            .set(&7u64, &"root".to_string())
            .await
            .unwrap();
        manager
            .cache("orders")
            .unwrap()
            .set(&"o-1", &1u32)
            .await
            .unwrap();
    });

    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("store `dynamodb`: l2 ok: connected and answered PING in ")
            && run.stdout.contains(&format!(
                "(dynamodb table cachet at {} ({TEST_REGION}))",
                server.endpoint()
            )),
        "{run:?}"
    );

    let run = cachet(&dir, &["get", "dynamodb", "users", "2"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("app:users:2"), "{run:?}");
    assert_eq!(cachet(&dir, &["get", "dynamodb", "users", "9"]).code, 1);

    let run = cachet(&dir, &["stats", "dynamodb"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        stats_rows(&run),
        [["orders", "1"], ["users", "4"], ["total", "5"]],
        "{run:?}"
    );

    let run = cachet(&dir, &["delete", "dynamodb", "users", "2"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(cachet(&dir, &["get", "dynamodb", "users", "2"]).code, 1);

    // one cache, with its namespaces; the other cache stays
    let run = cachet(&dir, &["clear", "dynamodb", "--cache", "users"]);
    assert_eq!(run.code, 0, "{run:?}");
    block(async {
        let users = manager.cache("users").unwrap();
        assert_eq!(users.get::<String>(&1u64).await.unwrap(), None);
        assert_eq!(
            users
                .namespace("admins")
                .get::<String>(&7u64)
                .await
                .unwrap(),
            None
        );
        let orders = manager.cache("orders").unwrap();
        assert_eq!(orders.get::<u32>(&"o-1").await.unwrap(), Some(1));
    });

    // the seed's command: the whole store
    let run = cachet(&dir, &["clear", "dynamodb"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = cachet(&dir, &["stats", "dynamodb"]);
    assert_eq!(
        stats_rows(&run),
        [vec!["(no", "keys)"], vec!["total", "0"]],
        "{run:?}"
    );
}

#[test]
fn check_fails_on_an_unreachable_endpoint_without_printing_credentials() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = setup(&format!("http://127.0.0.1:{dead}"));
    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("store `dynamodb`: l2 FAILED: "),
        "{run:?}"
    );
    assert!(!run.stdout.contains(ACCESS_KEY), "{run:?}");
    let run = cachet(&dir, &["clear", "dynamodb"]);
    assert_ne!(run.code, 0, "{run:?}");
}
