//! `cachet inventory` and `cachet check --src`: the cached operations of a program, read
//! from its sources by the binary, as a user runs it (no server needed).

#![cfg(feature = "cli")]

use std::path::Path;
use std::process::Command;

const SOURCES: &str = r#"use cachet::{cache_evict, cacheable, caches};

cachet::caches! {
    /// Users by id.
    pub USERS: u64 => User = "users", ttl = "5m";
}

#[cacheable(USERS)]
async fn find_user(id: u64) -> Result<User, DbError> { todo!() }

#[cacheable("prices", skip(db), grace = "1h", tags = ["catalog"])]
fn price(db: &Db, id: u64) -> Option<u64> { todo!() }

mod admin {
    #[cache_evict("prices", key = id, after_commit)]
    fn forget(id: &u64) {}
}

#[cache_put("prices", key = item.id)]
fn store_price(item: Item) -> u64 { todo!() }

#[cache_evict("prices", all_entries)]
fn reprice_all(db: &Db) {}
"#;

const CONFLICT: &str = r#"#[cacheable("prices")]
fn price_label(name: &str) -> String { todo!() }
"#;

/// Only the key type differs (`&str` against `u64`); `Box<u64>` encodes as `u64`.
const KEY_CONFLICT: &str = r#"#[cacheable("prices")]
fn price_by_name(name: &str) -> u64 { todo!() }

#[cache_evict("prices")]
fn forget_boxed(id: Box<u64>) {}
"#;

fn cachet(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cachet"))
        .args(args)
        .current_dir(dir)
        .env_remove("CACHET_CONFIG")
        .env_remove("CACHET_TYPE")
        .output()
        .expect("the cachet binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn inventory_lists_every_operation_and_declaration() {
    let dir = tempfile_dir();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), SOURCES).unwrap();
    let (code, out) = cachet(&dir, &["inventory"]);
    assert_eq!(code, 0, "{out}");
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("find_user"),
        "find_user src/lib.rs:9 cacheable users u64 User ttl=5m typed USERS"
    );
    assert_eq!(
        line("price "),
        "price src/lib.rs:12 cacheable prices u64 u64 grace=1h tags=catalog string"
    );
    assert_eq!(
        line("admin::forget"),
        "admin::forget src/lib.rs:16 cache_evict prices u64 - - string"
    );
    assert_eq!(
        line("caches! USERS"),
        "caches! USERS src/lib.rs:5 declaration users u64 User ttl=5m typed USERS"
    );
    // A key that is another expression, and an eviction of every entry, have no key type.
    assert_eq!(
        line("store_price"),
        "store_price src/lib.rs:20 cache_put prices ? u64 - string"
    );
    assert_eq!(
        line("reprice_all"),
        "reprice_all src/lib.rs:23 cache_evict prices ? - - string"
    );
    assert!(out.contains("6 operations and declarations"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_with_sources_fails_when_two_operations_disagree() {
    let dir = tempfile_dir();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), SOURCES).unwrap();
    let (code, out) = cachet(&dir, &["check", "--src", "src"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("types agree: ok"), "{out}");

    std::fs::write(dir.join("src/more.rs"), CONFLICT).unwrap();
    let (code, out) = cachet(&dir, &["check", "--src", "src"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("sources: FAILED: cache `prices`")
            && out.contains("price (src/lib.rs:12)")
            && out.contains("price_label (src/more.rs:2)"),
        "{out}"
    );

    std::fs::write(dir.join("src/more.rs"), KEY_CONFLICT).unwrap();
    let (code, out) = cachet(&dir, &["check", "--src", "src"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("sources: FAILED: cache `prices`: price (src/lib.rs:12) has key type `u64`")
            && out.contains("price_by_name (src/more.rs:2) has `str`"),
        "{out}"
    );
    // Every disagreement is listed, and each is with `price_by_name`: `Box<u64>` is `u64`.
    let failed: Vec<&str> = out.lines().filter(|l| l.contains("FAILED")).collect();
    assert!(
        failed.len() == 2 && failed.iter().all(|l| l.contains("price_by_name")),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A fresh directory under the system temp dir, removed by the test.
fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cachet-inventory-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
