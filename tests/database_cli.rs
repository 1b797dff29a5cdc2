//! The `cachet` binary on database stores, as a user runs it: `prune`, `stats`, `get`,
//! `delete`, `clear` on SQLite and PostgreSQL, and `check` with a wrong password, which fails without
//! ever showing the password.

#![cfg(all(feature = "cli", feature = "postgres", feature = "sqlite"))]

#[path = "support/postgres_server.rs"]
mod postgres_server;
#[path = "support/temp_dir.rs"]
mod temp_dir;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cachet::CacheManager;
use postgres_server::PostgresServer;
use temp_dir::TempDir;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cachet(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_cachet"))
        .args(args)
        .current_dir(dir)
        .env_remove("CACHET_CONFIG")
        .env_remove("CACHET_TYPE")
        .output()
        .expect("the cachet binary runs");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh, empty directory for one test, removed when dropped.
fn temp_dir() -> TempDir {
    TempDir::new("dbcli")
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Writes 3 entries that expire at once and 2 that live, then runs the commands.
fn exercise(dir: &Path, url: &str) {
    let file = dir.join("cachet.toml");
    std::fs::write(
        &file,
        format!("prefix = \"app\"\ndefault_store = \"db\"\n[stores.db]\nl2 = {{ driver = \"database\", url = \"{url}\" }}\n"),
    )
    .unwrap();
    block(async {
        let manager = CacheManager::from_toml_file(&file).unwrap();
        let users = manager.cache("users").unwrap();
        for i in 0..3u64 {
            users
                .set_with(&i, &"gone".to_string(), Duration::from_millis(1))
                .await
                .unwrap();
        }
        users.set(&10u64, &"ann".to_string()).await.unwrap();
        users.set(&11u64, &"bob".to_string()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    let run = cachet(dir, &["prune"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("pruned 3 expired entries from store `db` (database "),
        "{}",
        run.stdout
    );
    let run = cachet(dir, &["prune", "db"]);
    assert!(
        run.stdout.contains("pruned 0 expired entries"),
        "{}",
        run.stdout
    );
    let run = cachet(dir, &["stats", "db"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("users") && run.stdout.contains("total"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("total") && l.trim_end().ends_with(" 2")),
        "{}",
        run.stdout
    );
    let run = cachet(dir, &["get", "db", "users", "10"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("app:users:10"), "{}", run.stdout);
    let run = cachet(dir, &["delete", "db", "users", "10"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.stdout.trim(), "deleted app:users:10");
    let run = cachet(dir, &["delete", "db", "users", "10"]);
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.stdout.trim(), "no entry at app:users:10");
    let run = cachet(dir, &["get", "db", "users", "10"]);
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    // Only that entry went.
    let run = cachet(dir, &["get", "db", "users", "11"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("app:users:11"), "{}", run.stdout);
    let run = cachet(dir, &["clear", "db", "--cache", "users"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let run = cachet(dir, &["get", "db", "users", "11"]);
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    let run = cachet(dir, &["check"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("store `db`: l2 ok"), "{}", run.stdout);
}

#[test]
fn prune_stats_get_delete_clear_and_check_work_on_a_sqlite_store() {
    let dir = temp_dir();
    exercise(&dir, &format!("sqlite://{}/cache.db", dir.display()));
}

#[test]
fn prune_stats_get_delete_clear_and_check_work_on_a_postgres_store() {
    let server = PostgresServer::start();
    let dir = temp_dir();
    exercise(&dir, &server.url());
}

#[test]
fn check_reaches_a_postgres_bus_and_reports_a_dead_one() {
    let server = PostgresServer::start();
    let dir = temp_dir();
    let url = server.url();
    std::fs::write(
        dir.join("cachet.toml"),
        format!(
            "prefix = \"app\"\n[stores.db]\nl1 = {{ driver = \"memory\" }}\nl2 = {{ driver = \"database\", url = \"{url}\" }}\nbus = {{ driver = \"postgres\", url = \"{url}\" }}\n"
        ),
    )
    .unwrap();
    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("store `db`: bus ok: connected and subscribed in "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("probe round trip"), "{}", run.stdout);
    // The same store once its server is gone: the bus check fails too, within its bound.
    drop(server);
    let run = cachet(&dir, &["check"]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "{all}");
    assert!(
        all.contains("store `db`: bus FAILED: postgres bus "),
        "{all}"
    );
}

#[test]
fn check_with_a_wrong_password_fails_and_never_shows_it() {
    let server = PostgresServer::start_with_password("right-pw-1");
    let dir = temp_dir();
    let wrong = server.url_with_password("wrong-pw-2");
    std::fs::write(
        dir.join("cachet.toml"),
        format!(
            "[stores.db]\nl1 = {{ driver = \"memory\" }}\nl2 = {{ driver = \"database\", url = \"{wrong}\", connect_timeout = \"5s\", operation_timeout = \"5s\" }}\nbus = {{ driver = \"postgres\", url = \"{wrong}\" }}\n"
        ),
    )
    .unwrap();
    let run = cachet(&dir, &["check"]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "{all}");
    assert!(all.contains("store `db`: l2 FAILED"), "{all}");
    assert!(all.contains("store `db`: bus FAILED"), "{all}");
    assert!(all.contains("password authentication failed"), "{all}");
    assert!(!all.contains("wrong-pw-2"), "the password leaked: {all}");
    assert!(!all.contains("right-pw-1"), "{all}");
    for args in [
        &["stats", "db"][..],
        &["prune", "db"],
        &["get", "db", "users", "1"],
    ] {
        let run = cachet(&dir, args);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert_ne!(run.code, 0, "{args:?}: {all}");
        assert!(
            !all.contains("wrong-pw-2"),
            "{args:?} leaked the password: {all}"
        );
    }
}
