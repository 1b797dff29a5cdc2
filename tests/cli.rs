//! The `cachet` binary, run as a user runs it, against a real `redis-server`: values are
//! written with the library API, then inspected, counted and cleared from the command
//! line, and checked with `redis-cli`.

#![cfg(feature = "cli")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cachet::CacheManager;
use support::redis_server::RedisServer;
use support::temp_dir::TempDir;
use support::{eventually, redis_cli};

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `cachet ARGS` in `dir`, with no configuration from the environment.
fn cachet(dir: &Path, args: &[&str]) -> Run {
    cachet_with(dir, args, None)
}

fn cachet_with(dir: &Path, args: &[&str], config_var: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cachet"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CACHET_CONFIG")
        .env_remove("CACHET_TYPE");
    if let Some(path) = config_var {
        cmd.env("CACHET_CONFIG", path);
    }
    let out = cmd.output().expect("the cachet binary runs");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh, empty directory for one test, removed when dropped.
fn temp_dir() -> TempDir {
    TempDir::new("cli")
}

/// Two Redis stores with different prefixes on one server (`main`, the default, and
/// `other`), a tiered one, and an in-process one.
fn config_text(url: &str) -> String {
    format!(
        r#"
        default_store = "main"
        prefix = "app"
        ttl = "1h"
        grace = "6h"

        [stores.main]
        l2 = {{ driver = "redis", url = "{url}", connect_timeout = "500ms" }}

        [stores.other]
        prefix = "other"
        l2 = {{ driver = "redis", url = "{url}", connect_timeout = "500ms" }}

        [stores.tiered]
        prefix = "tier"
        l1 = {{ driver = "memory", max_entries = 100 }}
        l2 = {{ driver = "redis", url = "{url}", connect_timeout = "500ms" }}
        bus = {{ driver = "redis", url = "{url}", connect_timeout = "500ms" }}

        [stores.mem]
        l1 = {{ driver = "memory", max_entries = 100 }}

        [caches.posts]
        store = "other"
        "#
    )
}

/// A directory holding `cachet.toml` for `server`; returns it and the file.
fn setup(server: &RedisServer) -> (TempDir, PathBuf) {
    let dir = temp_dir();
    let file = dir.join("cachet.toml");
    std::fs::write(&file, config_text(&server.url())).unwrap();
    (dir, file)
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Writes `value` under `key` in `cache` (optionally a namespace) of `store`, as an
/// application does.
fn seed<K: serde::Serialize>(file: &Path, store: &str, cache: &str, ns: Option<&str>, key: K) {
    let manager = CacheManager::from_toml_file(file).unwrap();
    block(async {
        let mut cache = manager.store(store).unwrap().cache(cache);
        if let Some(ns) = ns {
            cache = cache.namespace(ns);
        }
        cache.set(&key, &"a value".to_string()).await.unwrap();
    });
}

fn exists(server: &RedisServer, key: &str) -> bool {
    redis_cli(server.port(), &["EXISTS", key]) == "1"
}

/// `value` on the `label:` line of `get`'s output.
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{label}:` line in:\n{stdout}"))
}

#[test]
fn clear_without_a_store_clears_the_default_one_only() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    seed(&file, "main", "users", None, 1u64);
    seed(&file, "main", "users", Some("admins"), 7u64);
    seed(&file, "main", "sessions", None, "abc");
    seed(&file, "other", "users", None, 1u64);
    assert!(exists(&server, "app:users:1") && exists(&server, "app:users#admins:7"));

    let run = cachet(&dir, &["clear"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("cleared store `main`"), "{run:?}");
    assert!(!exists(&server, "app:users:1"));
    assert!(!exists(&server, "app:users#admins:7"));
    assert!(!exists(&server, "app:sessions:abc"));
    assert!(
        exists(&server, "other:users:1"),
        "the other store is untouched"
    );

    let run = cachet(&dir, &["clear", "other"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!exists(&server, "other:users:1"));
}

#[test]
fn clear_one_cache_or_one_namespace() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    seed(&file, "main", "users", None, 1u64);
    seed(&file, "main", "users", Some("admins"), 7u64);
    seed(&file, "main", "users", Some("guests"), 8u64);
    seed(&file, "main", "sessions", None, "abc");
    seed(&file, "main", "users2", None, 1u64);

    let run = cachet(
        &dir,
        &["clear", "main", "--cache", "users", "--namespace", "admins"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("cleared namespace `admins` of cache `users` in store `main`"),
        "{run:?}"
    );
    assert!(!exists(&server, "app:users#admins:7"));
    assert!(exists(&server, "app:users#guests:8"));
    assert!(exists(&server, "app:users:1"));

    let run = cachet(&dir, &["clear", "main", "--cache", "users"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!exists(&server, "app:users:1"));
    assert!(
        !exists(&server, "app:users#guests:8"),
        "namespaces go with their cache"
    );
    assert!(exists(&server, "app:sessions:abc"), "other caches stay");
    assert!(
        exists(&server, "app:users2:1"),
        "a cache whose name extends it stays"
    );

    // A cache named alone is cleared in the store the configuration puts it in.
    seed(&file, "other", "posts", None, 3u64);
    let run = cachet(
        &dir,
        &[
            "--config",
            file.to_str().unwrap(),
            "clear",
            "--cache",
            "posts",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("store `other`"), "{run:?}");
    assert!(!exists(&server, "other:posts:3"));

    // --namespace needs --cache
    let run = cachet(&dir, &["clear", "main", "--namespace", "admins"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn get_shows_the_envelope_and_exits_1_when_there_is_no_entry() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    seed(&file, "main", "users", None, 42u64);
    seed(&file, "main", "users", None, (42u64, "alice"));
    seed(&file, "main", "users", Some("admins"), 7u64);

    let run = cachet(&dir, &["get", "main", "users", "42"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "stored key"), "app:users:42");
    let strlen = redis_cli(server.port(), &["STRLEN", "app:users:42"]);
    assert_eq!(field(&run.stdout, "size"), format!("{strlen} bytes"));
    assert_eq!(field(&run.stdout, "format"), "msgpack");
    // ttl 1h, grace 6h: fresh for under an hour, kept for under seven.
    let fresh = field(&run.stdout, "fresh for");
    assert!(fresh.starts_with("59m ") || fresh == "1h", "{fresh}");
    assert_eq!(
        field(&run.stdout, "stale for"),
        "6h more, once no longer fresh (grace)"
    );
    let kept = field(&run.stdout, "kept for");
    assert!(kept.starts_with("6h 59m") || kept == "7h", "{kept}");
    assert!(
        field(&run.stdout, "type").starts_with("fingerprint 0x"),
        "{run:?}"
    );

    let run = cachet(&dir, &["get", "main", "users", "42:alice"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "stored key"), "app:users:42:alice");

    let run = cachet(
        &dir,
        &["get", "main", "users", "7", "--namespace", "admins"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(field(&run.stdout, "stored key"), "app:users#admins:7");

    let run = cachet(&dir, &["get", "main", "users", "99"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout.trim(), "no entry at app:users:99");

    // Bytes that are not an envelope are shown as such, not decoded.
    redis_cli(server.port(), &["SET", "app:users:junk", "{\"json\":1}"]);
    let run = cachet(&dir, &["get", "main", "users", "junk"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        field(&run.stdout, "format").starts_with("unreadable"),
        "{run:?}"
    );
}

/// An `Option`-returning function: `None` is cached as the null marker.
#[cachet::cacheable("people")]
async fn nobody(id: u64) -> Option<String> {
    let _ = id;
    None
}

#[test]
fn get_labels_a_cached_absence() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    let manager = CacheManager::from_toml_file(&file).unwrap();
    assert_eq!(
        block(cachet::testing::with_manager(manager, nobody(5))),
        None
    );
    let run = cachet(&dir, &["get", "main", "people", "5"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        field(&run.stdout, "type"),
        "cached absence (None)",
        "{run:?}"
    );
}

#[test]
fn delete_removes_one_entry() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    seed(&file, "main", "users", None, 42u64);
    seed(&file, "main", "users", None, 43u64);

    let run = cachet(&dir, &["delete", "main", "users", "42"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), "deleted app:users:42");
    assert!(!exists(&server, "app:users:42"));
    assert!(exists(&server, "app:users:43"));

    let run = cachet(&dir, &["delete", "main", "users", "42"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout.trim(), "no entry at app:users:42");

    // The library no longer finds it either.
    let manager = CacheManager::from_toml_file(&file).unwrap();
    let users = manager.store("main").unwrap().cache("users");
    assert_eq!(block(users.get::<String>(&42u64)).unwrap(), None);
}

#[test]
fn stats_counts_keys_per_cache() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    for id in 1..=3u64 {
        seed(&file, "main", "users", None, id);
    }
    seed(&file, "main", "users", Some("admins"), 7u64);
    seed(&file, "main", "sessions", None, "abc");
    seed(&file, "other", "users", None, 1u64);

    let run = cachet(&dir, &["stats", "main"]);
    assert_eq!(run.code, 0, "{run:?}");
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["sessions", "1"],
            vec!["users", "4"],
            vec!["total", "5"]
        ],
        "{run:?}"
    );
    assert!(
        run.stdout
            .starts_with("store `main` (redis redis://127.0.0.1:"),
        "{run:?}"
    );

    let run = cachet(&dir, &["stats", "other"]);
    assert!(
        run.stdout.contains("users") && run.stdout.contains("total"),
        "{run:?}"
    );
    let total = run.stdout.lines().last().unwrap().split_whitespace().last();
    assert_eq!(total, Some("1"), "{run:?}");
}

#[test]
fn stats_reads_back_cache_names_holding_reserved_characters() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    // Stored keys escape these names (`app:orders\:eu:1`); a split at the first `:`
    // would count all three `orders…` caches under one truncated name.
    seed(&file, "main", "orders:eu", None, 1u64);
    seed(&file, "main", "orders:eu", None, 2u64);
    seed(&file, "main", "orders:us", Some("vip"), 3u64);
    seed(&file, "main", "orders#x", None, 4u64);
    seed(&file, "main", "orders", None, 5u64);
    assert!(exists(&server, "app:orders\\:eu:1"));

    let run = cachet(&dir, &["stats", "main"]);
    assert_eq!(run.code, 0, "{run:?}");
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["orders", "1"],
            vec!["orders#x", "1"],
            vec!["orders:eu", "2"],
            vec!["orders:us", "1"],
            vec!["total", "5"]
        ],
        "{run:?}"
    );

    // The names `stats` shows are the ones the other commands take.
    let run = cachet(&dir, &["clear", "main", "--cache", "orders:eu"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!exists(&server, "app:orders\\:eu:1"));
    assert!(exists(&server, "app:orders:5"));
    assert!(exists(&server, "app:orders\\:us#vip:3"));
}

/// The line of `check`'s output that starts with `start`.
fn line<'a>(run: &'a Run, start: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?}: {run:?}"))
}

#[test]
fn check_reports_each_store_and_fails_when_redis_is_down() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);

    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("config: cachet.toml: ok\n"),
        "{run:?}"
    );
    for store in ["main", "other", "tiered"] {
        let l2 = line(&run, &format!("store `{store}`: l2 "));
        assert!(
            l2.starts_with(&format!(
                "store `{store}`: l2 ok: connected and answered PING in "
            )) && l2.ends_with(&format!("ms (redis redis://127.0.0.1:{}/0)", server.port())),
            "{l2}"
        );
    }
    let bus = line(&run, "store `tiered`: bus ");
    assert!(
        bus.starts_with("store `tiered`: bus ok: connected and subscribed in ")
            && bus.contains("ms, probe round trip ")
            && bus.ends_with("channel tier:__bus)"),
        "{bus}"
    );
    assert_eq!(
        line(&run, "store `mem`:"),
        "store `mem`: ok (in-process: nothing to connect to)"
    );
    assert_eq!(run.stdout.lines().last(), Some("checks: 5 ok"), "{run:?}");
    let named = cachet(&dir, &["--config", file.to_str().unwrap(), "check"]);
    assert!(
        named
            .stdout
            .starts_with(&format!("config: {}: ok\n", file.display())),
        "{named:?}"
    );

    server.kill();
    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    for (store, part) in [
        ("main", "l2"),
        ("other", "l2"),
        ("tiered", "l2"),
        ("tiered", "bus"),
    ] {
        let line = line(&run, &format!("store `{store}`: {part} "));
        assert!(
            line.starts_with(&format!(
                "store `{store}`: {part} FAILED: redis redis://127.0.0.1:{}/0: cannot connect: ",
                server.port()
            )),
            "{line}"
        );
    }
    assert!(run.stdout.contains("store `mem`: ok"), "{run:?}");
    assert_eq!(
        run.stdout.lines().last(),
        Some("checks: 1 ok, 4 FAILED"),
        "{run:?}"
    );

    // Commands that need the server fail with one line and exit 1.
    let run = cachet(&dir, &["get", "main", "users", "1"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.starts_with("error: store `main` failed: redis "),
        "{run:?}"
    );
}

/// A loopback port nothing listens on (bound, then let go).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn check_fails_on_a_dead_bus_even_when_the_l2_answers() {
    let server = RedisServer::start();
    let dir = temp_dir();
    let dead = dead_port();
    std::fs::write(
        dir.join("cachet.toml"),
        format!(
            r#"
            prefix = "app"
            [stores.split]
            l1 = {{ driver = "memory", max_entries = 100 }}
            l2 = {{ driver = "redis", url = "{url}" }}
            bus = {{ driver = "redis", url = "redis://127.0.0.1:{dead}/0", connect_timeout = "300ms" }}
            "#,
            url = server.url()
        ),
    )
    .unwrap();

    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        line(&run, "store `split`: l2 ").starts_with("store `split`: l2 ok: "),
        "{run:?}"
    );
    assert_eq!(
        run.stdout.lines().filter(|l| l.contains("FAILED")).count(),
        2,
        "one line for the failure, one summary: {run:?}"
    );
    let bus = line(&run, "store `split`: bus ");
    assert!(
        bus.starts_with(&format!(
            "store `split`: bus FAILED: redis redis://127.0.0.1:{dead}/0: cannot connect: "
        )),
        "{bus}"
    );
    assert_eq!(
        run.stdout.lines().last(),
        Some("checks: 1 ok, 1 FAILED"),
        "{run:?}"
    );
}

#[test]
fn check_subscribes_so_a_user_without_the_bus_channel_fails() {
    let server = RedisServer::start();
    let port = server.port();
    // Both users may touch the store's keys (so PING and the L2 work); only `app` may use
    // its channels, as an ACL limited to `~app:*` keys and `&app:*` channels allows.
    for (user, channels) in [("app", "&app:*"), ("stranger", "&elsewhere:*")] {
        redis_cli(
            port,
            &[
                "ACL", "SETUSER", user, "on", ">pw", "~app:*", channels, "+@all",
            ],
        );
    }
    let dir = temp_dir();
    let store = |name: &str, user: &str| {
        let url = format!("redis://{user}:pw@127.0.0.1:{port}/0");
        format!(
            "[stores.{name}]\nl1 = {{ driver = \"memory\", max_entries = 10 }}\n\
             l2 = {{ driver = \"redis\", url = \"{url}\" }}\n\
             bus = {{ driver = \"redis\", url = \"{url}\" }}\n"
        )
    };
    std::fs::write(
        dir.join("cachet.toml"),
        format!(
            "prefix = \"app\"\ndefault_store = \"granted\"\n{}{}",
            store("granted", "app"),
            store("refused", "stranger")
        ),
    )
    .unwrap();

    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        line(&run, "store `granted`: bus ").starts_with("store `granted`: bus ok: "),
        "{run:?}"
    );
    assert!(
        line(&run, "store `refused`: l2 ").starts_with("store `refused`: l2 ok: "),
        "a PING needs no channel: {run:?}"
    );
    let bus = line(&run, "store `refused`: bus ");
    assert!(
        bus.starts_with(&format!(
            "store `refused`: bus FAILED: redis redis://stranger@127.0.0.1:{port}/0: SUBSCRIBE app:__bus refused: "
        )) && bus.contains("no permissions"),
        "{bus}"
    );
    assert!(!run.stdout.contains(":pw@"), "{run:?}");
}

#[test]
fn passwords_are_never_printed() {
    let server = RedisServer::start_with_password("s3cret-pw");
    let (dir, _file) = setup(&server);
    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run_stats = cachet(&dir, &["stats"]);
    assert_eq!(run_stats.code, 0, "{run_stats:?}");
    server.kill();
    let failed = cachet(&dir, &["check"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    for run in [run, run_stats, failed] {
        assert!(
            !run.stdout.contains("s3cret-pw") && !run.stderr.contains("s3cret-pw"),
            "{run:?}"
        );
    }
}

#[test]
fn in_process_stores_cannot_be_inspected_from_another_process() {
    let server = RedisServer::start();
    let (dir, _file) = setup(&server);
    for args in [
        &["get", "mem", "users", "1"][..],
        &["delete", "mem", "users", "1"],
        &["stats", "mem"],
    ] {
        let run = cachet(&dir, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
        assert!(
            run.stderr.contains("store `mem` is in-process")
                && run.stderr.contains("cannot be inspected from another"),
            "{run:?}"
        );
    }
    let run = cachet(&dir, &["clear", "mem"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("nothing shared to clear"), "{run:?}");
}

#[test]
fn configuration_is_found_like_the_application_finds_it() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    seed(&file, "main", "users", None, 1u64);
    let elsewhere = temp_dir();

    // ./cachet.toml
    assert_eq!(cachet(&dir, &["get", "main", "users", "1"]).code, 0);
    // CACHET_CONFIG
    let run = cachet_with(&elsewhere, &["get", "main", "users", "1"], Some(&file));
    assert_eq!(run.code, 0, "{run:?}");
    // --config wins over CACHET_CONFIG
    let missing = elsewhere.join("missing.toml");
    let run = cachet_with(
        &elsewhere,
        &[
            "--config",
            file.to_str().unwrap(),
            "get",
            "main",
            "users",
            "1",
        ],
        Some(&missing),
    );
    assert_eq!(run.code, 0, "{run:?}");
    // CACHET_CONFIG naming no file
    let run = cachet_with(&elsewhere, &["check"], Some(&missing));
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: cannot read configuration file ")
            && run.stderr.contains("missing.toml"),
        "{run:?}"
    );
}

#[test]
fn check_without_a_file_checks_the_embedded_default_and_says_so() {
    let dir = temp_dir();
    let run = cachet(&dir, &["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "config: no file (no --config, CACHET_CONFIG or ./cachet.toml): checking the embedded default, what the application runs on without one: one in-memory store\n\
         store `memory`: ok (in-process: nothing to connect to)\n\
         checks: 1 ok\n"
    );
    assert!(run.stderr.is_empty(), "{run:?}");
}

#[test]
fn other_commands_without_a_file_are_an_error() {
    let dir = temp_dir();
    for args in [
        &["clear"][..],
        &["stats"],
        &["get", "memory", "users", "1"],
        &["delete", "memory", "users", "1"],
    ] {
        let run = cachet(&dir, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.starts_with(
                "error: no configuration: pass --config, set CACHET_CONFIG or add cachet.toml (without one the application runs on the embedded default"
            ),
            "{args:?}: {run:?}"
        );
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
}

#[test]
fn a_bad_configuration_is_one_line_naming_file_and_field() {
    let dir = temp_dir();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[stores.main]\nl2 = { driver = \"redis\", url = \"http://user:hunter2@localhost\" }\n",
    )
    .unwrap();
    let run = cachet(&dir, &["--config", file.to_str().unwrap(), "check"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.starts_with("error: "), "{run:?}");
    assert!(run.stderr.contains("bad.toml"), "{run:?}");
    assert!(run.stderr.contains("`stores.main.l2.url`"), "{run:?}");
    assert!(!run.stderr.contains("hunter2"), "{run:?}");

    std::fs::write(&file, "ttl = 5\n[stores.main]\ndriver = \"none\"\n").unwrap();
    let run = cachet(&dir, &["--config", file.to_str().unwrap(), "clear"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("bad.toml") && run.stderr.contains("`ttl`"),
        "{run:?}"
    );
}

#[test]
fn an_unknown_store_is_a_usage_error() {
    let server = RedisServer::start();
    let (dir, _file) = setup(&server);
    let run = cachet(&dir, &["stats", "nope"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "error: no store named `nope` (configured stores: main, mem, other, tiered)"
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let run = cachet(&temp_dir(), &["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    for text in [
        "Exit codes:",
        "clear",
        "get",
        "delete",
        "stats",
        "check",
        "CACHET_CONFIG",
    ] {
        assert!(run.stdout.contains(text), "{text}: {run:?}");
    }
}

#[test]
fn a_usage_error_is_one_line_with_the_usage() {
    let run = cachet(&temp_dir(), &["get", "main"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: the following required arguments were not provided: <CACHE> <KEY> (usage: cachet get <STORE> <CACHE> <KEY>)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_and_delete_reach_the_l1_of_running_instances_through_the_bus() {
    let server = RedisServer::start();
    let (dir, file) = setup(&server);
    // A running instance, holding its values in its L1 as well as in Redis.
    let app = CacheManager::from_toml_file(&file).unwrap();
    let users = app.store("tiered").unwrap().cache("users");
    users.set(&1u64, &"ann".to_string()).await.unwrap();
    users.set(&2u64, &"bob".to_string()).await.unwrap();

    // Once Redis no longer has it, only a bus message can take it out of the L1; the
    // instance subscribes in the background, so repeat until a message has reached it.
    eventually("`cachet delete` reaches the instance's L1", async || {
        cachet(&dir, &["delete", "tiered", "users", "1"]);
        users.get::<String>(&1u64).await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        users.get::<String>(&2u64).await.unwrap().as_deref(),
        Some("bob")
    );

    eventually("`cachet clear` reaches the instance's L1", async || {
        assert_eq!(cachet(&dir, &["clear", "tiered"]).code, 0);
        users.get::<String>(&2u64).await.unwrap().is_none()
    })
    .await;
}
