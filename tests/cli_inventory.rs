//! `cachet inventory` and `cachet check --src`: the cached operations of a program, read
//! from its sources by the binary, as a user runs it (no server needed).

#![cfg(feature = "cli")]

use std::path::Path;
use std::process::Command;

#[path = "support/temp_dir.rs"]
mod temp_dir;

use temp_dir::TempDir;

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

/// Annotations on `impl` blocks, with what the macros refuse or leave alone.
const IMPL_BLOCKS: &str = r#"use cachet::{cache_config, cache_evict, cacheable};

#[cacheable("repo", ttl = "1m")]
impl Repo {
    fn open() -> Self { Repo }

    async fn find(&self, id: u64) -> Option<User> { todo!() }

    fn rename(&mut self, id: u64) -> User { todo!() }

    #[cache_evict("repo")]
    fn forget(&self, id: u64) -> bool { todo!() }
}

#[cache_config(cache = "orders")]
#[cacheable]
impl Orders {
    fn order(&self, id: u64) -> Order { todo!() }
}

#[cacheable("refused", key = id)]
impl Refused {
    fn refused(&self, id: u64) -> u64 { todo!() }
}

impl<K: Serialize> Index<K> {
    #[cacheable("index")]
    fn rank(&self, key: &K) -> u64 { todo!() }
}

#[cacheable("index")]
fn rank_of(id: u64) -> u64 { todo!() }
"#;

/// A method of the `repo` block whose key disagrees with `find`'s.
const IMPL_CONFLICT: &str = r#"#[cacheable("repo")]
impl Repo {
    fn by_name(&self, name: &str) -> User { todo!() }
}
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
    let dir = program(SOURCES);
    let (code, out) = cachet(&dir, &["inventory"]);
    assert_eq!(code, 0, "{out}");
    let line = |needle: &str| row(&out, needle);
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
}

#[test]
fn check_with_sources_fails_when_two_operations_disagree() {
    let dir = program(SOURCES);
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
}

#[test]
fn inventory_and_check_read_annotations_on_impl_blocks() {
    let dir = program(IMPL_BLOCKS);
    let (code, out) = cachet(&dir, &["inventory"]);
    assert_eq!(code, 0, "{out}");
    let line = |needle: &str| row(&out, needle);
    // The block's cache and options on each method it caches; a method's own annotation wins.
    assert_eq!(
        line("find "),
        "find src/lib.rs:7 cacheable repo u64 User ttl=1m string"
    );
    assert_eq!(
        line("forget "),
        "forget src/lib.rs:12 cache_evict repo u64 - - string"
    );
    // `#[cache_config]` names the block's cache.
    assert_eq!(
        line("order "),
        "order src/lib.rs:18 cacheable orders u64 Order - string"
    );
    // A key of the `impl`'s type parameter has no one type: unknown.
    assert_eq!(
        line("rank "),
        "rank src/lib.rs:28 cacheable index ? u64 - string"
    );
    // Left as written by the macro: no receiver, `&mut self`; a block with a per-method
    // option is a compile error and caches nothing.
    for left in ["open ", "rename ", "refused "] {
        assert!(!out.lines().any(|l| l.starts_with(left)), "{left}: {out}");
    }
    assert!(out.contains("5 operations and declarations"), "{out}");

    // So it is not compared with `rank_of`'s `u64`.
    let (code, out) = cachet(&dir, &["check", "--src", "src"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("5 cached operations: types agree: ok"),
        "{out}"
    );

    // Two methods of the block disagree on the key.
    std::fs::write(dir.join("src/more.rs"), IMPL_CONFLICT).unwrap();
    let (code, out) = cachet(&dir, &["check", "--src", "src"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("sources: FAILED: cache `repo`: find (src/lib.rs:7) has key type `u64`")
            && out.contains("by_name (src/more.rs:3) has `str`"),
        "{out}"
    );
    assert_eq!(out.matches("FAILED").count(), 1, "{out}");
}

#[path = "fixtures/impl_blocks.rs"]
mod impl_blocks;

/// `cachet inventory` lists the operations of `fixtures/impl_blocks.rs` exactly as the
/// macros declared them in this test binary: function, line, kind, cache, key and value
/// types, typed cache.
#[test]
fn inventory_of_impl_blocks_is_what_the_macros_declare() {
    const FILE: &str = "tests/fixtures/impl_blocks.rs";
    let (code, out) = cachet(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["inventory", "--src", FILE],
    );
    assert_eq!(code, 0, "{out}");
    let listed: Vec<String> = out
        .lines()
        .filter(|l| l.contains(FILE) && !l.starts_with("caches!"))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let by = match cells[cells.len() - 2..] {
                ["typed", decl] => format!("typed {decl}"),
                [_, by] => by.to_owned(),
                _ => unreachable!("a line has more than 6 cells"),
            };
            format!("{} {by}", cells[..6].join(" "))
        })
        .collect();
    let declared: Vec<String> = cachet::declared_caches()
        .iter()
        .filter(|d| d.file == FILE)
        .map(|d| {
            let function = d.function.trim_start_matches(module_path!());
            let function = function.trim_start_matches("::impl_blocks::");
            let key = if d.key_type.is_empty() {
                "?"
            } else {
                d.key_type
            };
            let value = if d.annotation == "cache_evict" {
                "-"
            } else {
                d.value_type
            };
            let by = d
                .typed
                .map_or_else(|| "string".to_owned(), |t| format!("typed {t}"));
            format!(
                "{function} {FILE}:{} {} {} {key} {value} {by}",
                d.line, d.annotation, d.cache
            )
        })
        .collect();
    assert_eq!(listed.len(), 8, "{out}");
    assert_eq!(listed, declared, "{out}");
    // The startup check finds they agree: the block's `K` is not compared with `u64`.
    if let Err(e) = cachet::CacheManager::builder().build() {
        panic!("the startup check failed: {e}");
    }
}

/// The first line of `out` containing `needle`, its cells one space apart.
fn row(out: &str, needle: &str) -> String {
    out.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle}:\n{out}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A program's sources, `src/lib.rs`, in a fresh directory removed when dropped.
fn program(lib: &str) -> TempDir {
    let dir = TempDir::new("inventory");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    dir
}
