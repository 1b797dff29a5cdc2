//! No crate of the workspace has an import cycle among its modules: this test reads each
//! crate's sources (every member's `src/` as the root `Cargo.toml` lists them: cache-core,
//! cache-backends, cache-macros, the service example; the facade's `src/` and each binary
//! under `src/bin/`), maps every file to its module, collects the
//! crate-internal paths each file uses and fails, naming one cycle, when the files import
//! each other in a circle (or the top-level modules do, with a module's files taken
//! together). It runs with the rest of the suite (`scripts/test`, so `.ci/run`).
//!
//! What counts as a use of another file:
//! - a `use` of a path starting with `crate`, `super`, `self` or a child module, and an
//!   inline path starting with `crate::`, `super::` or `self::` (or a child module name);
//! - resolved to the file that defines the item: a facade's (`mod.rs`, `lib.rs`) `use`
//!   that re-exports a name is followed, so `crate::store::LocalTier` is a use of
//!   `store/tier.rs`, not of `store/mod.rs`. A `pub use` is itself no edge: a facade does
//!   not use what it re-exports.
//!
//! Left out: `#[cfg(test)]` items (test modules may reach anywhere), comments, string
//! literals, and the crate root (`lib.rs`, or a binary's `main.rs`), which declares every
//! module. A library's `src/bin/` holds other crates (binaries), checked on their own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path: `[]` for the crate root, `["store", "tier"]` for `store/tier.rs`.
type ModPath = Vec<String>;

/// Comments, strings and character literals blanked out (lifetimes are kept).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, text: &[u8]| {
        for &c in text {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (1, 2);
            while j < rest.len() && depth > 0 {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let start = 2 + hashes;
            let end = rest[start..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(rest.len(), |p| start + p + close.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            let end = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else if rest.get(2) == Some(&b'\'') {
                Some(3)
            } else {
                // A multi-byte char literal, or a lifetime.
                let ch = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(2 + ch)
            };
            match end {
                Some(end) => {
                    blank(&mut out, &rest[..end]);
                    i += end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The index just past the item starting at `from`: its `;`, or its `{ .. }` block.
fn item_end(text: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut j = from;
    while j < text.len() {
        match text[j] {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && text[j] == b'}' {
                    return j + 1;
                }
            }
            b';' if depth == 0 => return j + 1,
            _ => {}
        }
        j += 1;
    }
    text.len()
}

/// The index just past the `]` matching the `[` at `open`.
fn bracket_end(text: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, &c) in text.iter().enumerate().skip(open) {
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// `text` without its `#[cfg(test)]` items, and the names of the child modules declared
/// test-only (`#[cfg(test)] mod tests;`).
fn without_test_items(text: &str) -> (String, BTreeSet<String>) {
    let mut out = text.to_owned();
    let mut test_mods = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|p| p + from) {
        let bytes = out.as_bytes();
        // Skip further attributes, then the item.
        let mut j = at + "#[cfg(test)]".len();
        loop {
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if bytes[j..].starts_with(b"#[") {
                j = bracket_end(bytes, j + 1);
            } else {
                break;
            }
        }
        let head: String = out[j..].chars().take(200).collect();
        let words: Vec<&str> = head
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        let declared = match words.as_slice() {
            ["mod", name, ..] | ["pub", "mod", name, ..] | ["pub", "crate", "mod", name, ..] => {
                Some(*name)
            }
            _ => None,
        };
        if let Some(name) = declared {
            test_mods.insert(name.to_owned());
        }
        let end = item_end(out.as_bytes(), j);
        out.replace_range(at..end, &" ".repeat(end - at));
        from = at;
    }
    (out, test_mods)
}

/// One `use` tree flattened: each path (its segments), and the name it binds.
fn flatten_use(tree: &str) -> Vec<(Vec<String>, Option<String>)> {
    fn walk(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, Option<String>)>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        if let Some(open) = tree.find('{') {
            let close = tree.rfind('}').unwrap_or(tree.len());
            let mut path = prefix.to_vec();
            path.extend(
                tree[..open]
                    .split("::")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            let inner = &tree[open + 1..close];
            let (mut depth, mut start) = (0, 0);
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        walk(&path, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            walk(&path, &inner[start..], out);
            return;
        }
        let (path_text, alias) = match tree.split_once(" as ") {
            Some((p, a)) => (p.trim(), Some(a.trim().to_owned())),
            None => (tree, None),
        };
        let mut path = prefix.to_vec();
        path.extend(
            path_text
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        if path.last().is_some_and(|s| s == "self") {
            path.pop();
        }
        let name = alias
            .or_else(|| path.last().cloned())
            .filter(|n| n != "*" && n != "_");
        out.push((path, name));
    }
    let mut out = Vec::new();
    walk(&[], tree, &mut out);
    out
}

/// What one file says: its `use` paths (and whether each is a re-export), its inline
/// paths, its child modules.
#[derive(Default)]
struct FileInfo {
    uses: Vec<(Vec<String>, Option<String>, bool)>,
    inline: Vec<Vec<String>>,
    children: BTreeSet<String>,
    test_children: BTreeSet<String>,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn parse(src: &str) -> FileInfo {
    let (text, test_children) = without_test_items(&strip(src));
    let mut info = FileInfo {
        test_children,
        ..FileInfo::default()
    };
    let bytes = text.as_bytes();
    let mut rest = text.clone();
    // `mod name;` declarations and `use` items.
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !is_ident(bytes[i - 1]);
        if word_start && bytes[i..].starts_with(b"mod ") {
            let name: String = text[i + 4..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let after = text[i + 4..].trim_start()[name.len()..].trim_start();
            if after.starts_with(';') && !name.is_empty() {
                info.children.insert(name);
            }
        }
        if word_start && bytes[i..].starts_with(b"use ") {
            let end = item_end(bytes, i);
            let before = text[..i].trim_end();
            let public = before.ends_with("pub")
                || before.ends_with(')') && {
                    let open = before.rfind('(').unwrap_or(0);
                    before[..open].trim_end().ends_with("pub")
                };
            let tree = text[i + 4..end].trim_end_matches(';');
            for (path, name) in flatten_use(tree) {
                info.uses.push((path, name, public));
            }
            rest.replace_range(i..end, &" ".repeat(end - i));
            i = end;
            continue;
        }
        i += 1;
    }
    // Inline paths: `crate::a::b`, `super::..`, `self::..` and `child::..`.
    let rb = rest.as_bytes();
    let mut i = 0;
    while i < rb.len() {
        if is_ident(rb[i])
            && (i == 0 || !(is_ident(rb[i - 1]) || rb[i - 1] == b'$' || rb[i - 1] == b':'))
        {
            let mut j = i;
            let mut segs = Vec::new();
            loop {
                let s = j;
                while j < rb.len() && is_ident(rb[j]) {
                    j += 1;
                }
                segs.push(rest[s..j].to_owned());
                if rb[j..].starts_with(b"::") && rb.get(j + 2).is_some_and(|&c| is_ident(c)) {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                info.inline.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    info
}

/// Every `.rs` file under `src`, by module path.
fn modules(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    fn visit(dir: &Path, src: &Path, out: &mut BTreeMap<ModPath, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                // `src/bin/*`: binaries, crates of their own.
                if dir == src && path.file_name().is_some_and(|n| n == "bin") {
                    continue;
                }
                visit(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).expect("under src");
                let mut segs: ModPath = rel
                    .iter()
                    .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_owned())
                    .collect();
                let root = segs.len() == 1 && segs[0] == "main";
                if root || segs.last().is_some_and(|s| s == "mod" || s == "lib") {
                    segs.pop();
                }
                out.insert(segs, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(src, src, &mut out);
    out
}

struct Crate {
    files: BTreeMap<ModPath, PathBuf>,
    info: BTreeMap<ModPath, FileInfo>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let files = modules(src);
        let info = files
            .iter()
            .map(|(m, path)| {
                let text = std::fs::read_to_string(path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                (m.clone(), parse(&text))
            })
            .collect();
        Crate { files, info }
    }

    fn is_module(&self, m: &ModPath) -> bool {
        self.files.contains_key(m)
    }

    /// Where a path used in module `at` starts, and the segments left; `None` for a path
    /// outside the crate.
    fn start<'p>(&self, at: &ModPath, path: &'p [String]) -> Option<(ModPath, &'p [String])> {
        let mut m = at.clone();
        let mut rest = path;
        match rest.first()?.as_str() {
            "crate" => {
                m.clear();
                rest = &rest[1..];
            }
            "self" => rest = &rest[1..],
            "super" => {
                while rest.first().is_some_and(|s| s == "super") {
                    m.pop()?;
                    rest = &rest[1..];
                }
            }
            first => {
                let mut child = at.clone();
                child.push(first.to_owned());
                if !self.is_module(&child) {
                    return None;
                }
            }
        }
        Some((m, rest))
    }

    /// The file (module) that defines what `path`, used in module `at`, names.
    fn resolve(&self, at: &ModPath, path: &[String], depth: u32) -> Option<ModPath> {
        let (mut m, rest) = self.start(at, path)?;
        for (k, seg) in rest.iter().enumerate() {
            let mut child = m.clone();
            child.push(seg.clone());
            if self.is_module(&child) {
                m = child;
                continue;
            }
            // A name the module imports (a facade's re-export): follow it.
            if depth < 16 {
                let info = self.info.get(&m)?;
                if let Some((target, _, _)) = info
                    .uses
                    .iter()
                    .find(|(_, name, _)| name.as_deref() == Some(seg.as_str()))
                {
                    let mut followed = target.clone();
                    followed.extend(rest[k + 1..].iter().cloned());
                    if let Some(found) = self.resolve(&m, &followed, depth + 1) {
                        return Some(found);
                    }
                }
            }
            return Some(m);
        }
        Some(m)
    }

    /// File-level edges: module → the modules whose files it uses.
    fn edges(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (m, info) in &self.info {
            if m.is_empty() || self.test_only(m) {
                continue;
            }
            let paths = info
                .uses
                .iter()
                .filter(|(_, _, public)| !public)
                .map(|(p, _, _)| p)
                .chain(info.inline.iter());
            for path in paths {
                if let Some(target) = self.resolve(m, path, 0) {
                    if &target != m && !target.is_empty() && !self.test_only(&target) {
                        edges.entry(m.clone()).or_default().insert(target);
                    }
                }
            }
        }
        edges
    }

    /// Whether a module is declared `#[cfg(test)]` by its parent (or sits under one).
    fn test_only(&self, m: &ModPath) -> bool {
        (1..=m.len()).any(|n| {
            let parent = m[..n - 1].to_vec();
            self.info
                .get(&parent)
                .is_some_and(|i| i.test_children.contains(&m[n - 1]))
        })
    }
}

/// One cycle in `edges`, if there is any (depth-first search).
fn find_cycle(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    fn dfs(
        node: &ModPath,
        edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        state: &mut BTreeMap<ModPath, u8>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = dfs(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            if let Some(cycle) = dfs(node, edges, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

/// The same edges between top-level modules (a module's files taken together).
fn top_level(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut out: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (from, tos) in edges {
        for to in tos {
            if from[0] != to[0] {
                out.entry(vec![from[0].clone()])
                    .or_default()
                    .insert(vec![to[0].clone()]);
            }
        }
    }
    out
}

fn show(cycle: &[ModPath]) -> String {
    cycle
        .iter()
        .map(|m| m.join("::"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The cycles found in the crate under `src`: among files, then among top-level modules.
fn cycles(src: &Path) -> (Option<String>, Option<String>) {
    let krate = Crate::read(src);
    let edges = krate.edges();
    (
        find_cycle(&edges).map(|c| show(&c)),
        find_cycle(&top_level(&edges)).map(|c| show(&c)),
    )
}

/// The workspace's members, as the root `Cargo.toml` lists them (`members = [..]`, on one
/// line), and the root package itself (`""`).
fn workspace_members(root: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("the root Cargo.toml");
    let list = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = ["))
        .expect("a `members = [..]` line in the root Cargo.toml");
    let mut members: Vec<String> = list
        .split(']')
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    members.push(String::new());
    members
}

/// The source trees of the workspace's crates: each member's `src/` and each binary's
/// directory under the facade's `src/bin/`.
fn workspace_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cache-core sits in the workspace")
        .to_owned();
    let mut sources: Vec<PathBuf> = workspace_members(&root)
        .iter()
        .map(|member| root.join(member).join("src"))
        .collect();
    let bins = root.join("src").join("bin");
    let mut binaries: Vec<PathBuf> = std::fs::read_dir(&bins)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", bins.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("main.rs").is_file())
        .collect();
    binaries.sort();
    sources.extend(binaries);
    sources
}

/// `MODULE_CYCLES_SRC=path/to/src` checks that source tree only (another crate, or an
/// older commit's `cache-core/src`).
#[test]
fn no_crate_of_the_workspace_imports_its_modules_in_a_cycle() {
    let sources = match std::env::var_os("MODULE_CYCLES_SRC") {
        Some(src) => vec![PathBuf::from(src)],
        None => {
            let sources = workspace_sources();
            // cache-core, cache-backends, cache-macros, the facade, the `cachet` binary at
            // least (and the service example).
            let named = |s: &str| sources.iter().any(|p| p.ends_with(s));
            assert!(
                [
                    "cache-core/src",
                    "cache-backends/src",
                    "cache-macros/src",
                    "bin/cachet"
                ]
                .iter()
                .all(|s| named(s)),
                "the crates' sources: {sources:?}"
            );
            sources
        }
    };
    let mut found = Vec::new();
    for src in &sources {
        assert!(
            src.join("lib.rs").is_file() || src.join("main.rs").is_file(),
            "{} is no crate's source",
            src.display()
        );
        let (files, top) = cycles(src);
        if let Some(cycle) = files {
            found.push(format!("{}: files in a cycle: {cycle}", src.display()));
        }
        if let Some(cycle) = top {
            found.push(format!(
                "{}: top-level modules in a cycle: {cycle}",
                src.display()
            ));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

/// A throwaway crate source tree for the checker's own tests.
fn fake_crate(files: &[(&str, &str)]) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cachet-module-cycles-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, text).expect("a file");
    }
    dir
}

#[test]
fn the_checker_finds_a_cycle_through_a_facade_and_an_inline_path() {
    let dir = fake_crate(&[
        ("lib.rs", "mod a;\npub mod store;\n"),
        ("a.rs", "use crate::store::Thing;\npub struct A;\n"),
        ("store/mod.rs", "mod tier;\npub use tier::{Thing, Other};\n"),
        // The cycle closes through an inline path, not a `use`.
        (
            "store/tier.rs",
            "pub struct Thing;\npub struct Other;\nfn f() -> crate::a::A { crate::a::A }\n",
        ),
    ]);
    let (files, top) = cycles(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(files.as_deref(), Some("a -> store::tier -> a"));
    assert!(top.is_some());
}

#[test]
fn the_checker_ignores_reexports_tests_comments_and_strings() {
    let dir = fake_crate(&[
        ("lib.rs", "mod a;\npub mod store;\npub use a::A;\n"),
        (
            "a.rs",
            "use crate::store::Thing;\npub struct A;\n#[cfg(test)]\nmod tests {\n    use crate::store::tier_user::*;\n}\n",
        ),
        ("store/mod.rs", "mod tier;\nmod tier_user;\npub use tier::Thing;\n"),
        ("store/tier.rs", "pub struct Thing; // crate::a::A\nconst S: &str = \"crate::a::A\";\n"),
        // Uses `a` only from a test: no edge.
        ("store/tier_user.rs", "#[cfg(test)]\nuse crate::a::A;\n"),
    ]);
    let (files, top) = cycles(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(files, None);
    assert_eq!(top, None);
}

#[test]
fn the_checker_reads_a_binary_from_its_main_and_leaves_src_bin_to_the_binaries() {
    // A binary: `main.rs` is its root, as `lib.rs` is a library's.
    let bin = fake_crate(&[
        ("main.rs", "mod a;\nmod b;\nfn main() {}\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        (
            "b.rs",
            "pub struct B;\nfn f() -> crate::a::A { crate::a::A }\n",
        ),
    ]);
    let (files, _) = cycles(&bin);
    let _ = std::fs::remove_dir_all(&bin);
    assert_eq!(files.as_deref(), Some("a -> b -> a"));
    // A library whose `bin/` holds a binary with the same module names: not the library's.
    let lib = fake_crate(&[
        ("lib.rs", "mod a;\n"),
        ("a.rs", "pub struct A;\n"),
        ("bin/tool/main.rs", "mod a;\nmod b;\nfn main() {}\n"),
        ("bin/tool/a.rs", "use crate::b::B;\n"),
        ("bin/tool/b.rs", "pub struct B;\nuse crate::a::*;\n"),
    ]);
    let (files, top) = cycles(&lib);
    let _ = std::fs::remove_dir_all(&lib);
    assert_eq!((files, top), (None, None));
}
