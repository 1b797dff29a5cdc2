//! Memory bound: 1,000,000 distinct keys into a store bounded by `max_size = "64mb"`;
//! prints the process's resident memory growth next to the bound.
//!
//! `cargo bench --bench memory` (a plain program: `harness = false`). Each scenario runs in
//! a fresh child process (this program, with `CACHET_MEMORY_SCENARIO` set) so one's
//! allocations cannot hide in another's numbers. cachet runs on both engines of its memory
//! driver: quick_cache (the default) and moka (`engine = "moka"`).

use std::process::Command;
use std::time::Instant;

use futures_util::FutureExt;

const KEYS: u64 = 1_000_000;
const MAX_SIZE: u64 = 64 << 20;
/// Entries held by the entry-bounded scenarios (with no eviction churn): about what the
/// 64 MB bound held under cachet's first weight estimate (121 B per entry).
const HELD: u64 = 555_000;
/// x86_64 Linux pages.
const PAGE: u64 = 4096;

const SCENARIOS: &[(&str, &str)] = &[
    (
        "cachet_memory_64mb",
        "cachet, memory store (quick_cache), max_size = \"64mb\", 1,000,000 keys  <- the target",
    ),
    (
        "cachet_memory_entries",
        "cachet, memory store (quick_cache), max_entries = 555,000, 555,000 keys (no eviction)",
    ),
    (
        "cachet_moka_64mb",
        "cachet, memory store (moka), max_size = \"64mb\", 1,000,000 keys",
    ),
    (
        "cachet_moka_entries",
        "cachet, memory store (moka), max_entries = 555,000, 555,000 keys (no eviction)",
    ),
    (
        "raw_moka",
        "raw moka Cache<String, u64>, max_capacity 555,000, 555,000 keys",
    ),
    (
        "raw_quick_cache",
        "raw quick_cache Cache<String, u64>, capacity 555,000, 555,000 keys",
    ),
];

/// Resident bytes, from `/proc/self/statm` (second field, in pages).
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm resident field");
    pages * PAGE
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1 << 20) as f64)
}

/// What one scenario measured.
struct Measured {
    growth: u64,
    held: u64,
    ns_per_insert: f64,
}

fn cachet_scenario(manager: cachet::CacheManager, keys: u64) -> Option<Measured> {
    cachet::init(manager).expect("the global manager is set once");
    let cache = cachet::cache("mem").expect("cache");
    // A memory write completes on its first poll: no runtime needed.
    if cache
        .set(&u64::MAX, &0u64)
        .now_or_never()
        .map(|r| r.is_ok())
        != Some(true)
    {
        eprintln!("SKIPPED memory bound: Cache::set fails (is the key encoder in place?)");
        return None;
    }
    let before = resident();
    let t0 = Instant::now();
    for i in 0..keys {
        cache
            .set(&i, &i)
            .now_or_never()
            .expect("a memory write is ready at once")
            .expect("set");
    }
    let ns_per_insert = t0.elapsed().as_nanos() as f64 / keys as f64;
    // Reading every key counts what is held and lets the engine finish pending evictions.
    let held = (0..keys)
        .filter(|i| cache.has(i).now_or_never().expect("ready").expect("has"))
        .count() as u64;
    Some(Measured {
        growth: resident().saturating_sub(before),
        held,
        ns_per_insert,
    })
}

fn raw_scenario(insert: impl Fn(String, u64), held: impl Fn(&str) -> bool) -> Measured {
    let before = resident();
    let t0 = Instant::now();
    for i in 0..HELD {
        insert(format!("cachet:mem:{i}"), i);
    }
    let ns_per_insert = t0.elapsed().as_nanos() as f64 / HELD as f64;
    let held = (0..HELD)
        .filter(|i| held(&format!("cachet:mem:{i}")))
        .count() as u64;
    Measured {
        growth: resident().saturating_sub(before),
        held,
        ns_per_insert,
    }
}

fn run(scenario: &str) -> Option<Measured> {
    let toml = |bound: &str| {
        cachet::CacheManager::from_toml_str(&format!(
            "default_store = \"m\"\n[stores.m]\nl1 = {{ driver = \"memory\", {bound} }}"
        ))
        .expect("config")
    };
    match scenario {
        "cachet_memory_64mb" => cachet_scenario(toml("max_size = \"64mb\""), KEYS),
        "cachet_memory_entries" => cachet_scenario(toml(&format!("max_entries = {HELD}")), HELD),
        "cachet_moka_64mb" => cachet_scenario(toml("engine = \"moka\", max_size = \"64mb\""), KEYS),
        "cachet_moka_entries" => cachet_scenario(
            toml(&format!("engine = \"moka\", max_entries = {HELD}")),
            HELD,
        ),
        "raw_moka" => {
            let c = moka::sync::Cache::<String, u64>::new(HELD);
            Some(raw_scenario(|k, v| c.insert(k, v), |k| c.get(k).is_some()))
        }
        "raw_quick_cache" => {
            let c = quick_cache::sync::Cache::<String, u64>::new(HELD as usize);
            Some(raw_scenario(|k, v| c.insert(k, v), |k| c.get(k).is_some()))
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// Entries the sweep scenario lets expire.
const SWEPT: u64 = 300_000;

/// The cost of one sweep on the default engine: `SWEPT` entries with a 6 s TTL (no
/// grace; long enough that none expires while they are written, so no sweep runs during
/// the fill), then, once all have expired, one more `set`, which runs the sweep. Returns
/// that `set`'s time in ns and the entries still readable (must be 0).
fn sweep_scenario() -> (u128, u64) {
    use std::time::Duration;
    let manager = cachet::CacheManager::from_toml_str(
        "default_store = \"m\"\n[stores.m]\nl1 = { driver = \"memory\", max_entries = 1000000 }",
    )
    .expect("config");
    cachet::init(manager).expect("the global manager is set once");
    let cache = cachet::cache("mem").expect("cache");
    let ttl = Duration::from_secs(6);
    for i in 0..SWEPT {
        cache
            .set_with(&i, &i, ttl)
            .now_or_never()
            .expect("a memory write is ready at once")
            .expect("set");
    }
    std::thread::sleep(ttl + Duration::from_millis(200));
    let t0 = Instant::now();
    cache
        .set(&u64::MAX, &0u64)
        .now_or_never()
        .expect("ready")
        .expect("set");
    let took = t0.elapsed().as_nanos();
    let left = (0..SWEPT)
        .filter(|i| cache.has(i).now_or_never().expect("ready").expect("has"))
        .count() as u64;
    (took, left)
}

fn main() {
    if std::env::var("CACHET_MEMORY_SCENARIO").as_deref() == Ok("sweep") {
        let (ns, left) = sweep_scenario();
        println!("{ns} {left}");
        return;
    }
    if let Ok(scenario) = std::env::var("CACHET_MEMORY_SCENARIO") {
        if let Some(m) = run(&scenario) {
            println!("{} {} {:.0}", m.growth, m.held, m.ns_per_insert);
        }
        return;
    }
    let exe = std::env::current_exe().expect("this program");
    println!(
        "memory: resident growth (/proc/self/statm) while filling a store; u64 keys -> u64 values \
         (stored key `cachet:mem:N`, 11-17 bytes); each row a fresh process"
    );
    println!(
        "{:<82} {:>10} {:>9} {:>8} {:>10} {:>9}",
        "scenario", "growth MiB", "held", "B/entry", "ns/insert", "/64 MiB"
    );
    for (name, what) in SCENARIOS {
        let out = Command::new(&exe)
            .env("CACHET_MEMORY_SCENARIO", name)
            .output()
            .expect("child process");
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<f64> = text
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [growth, held, ns] = fields[..] else {
            println!(
                "{what:<82} (no result: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            continue;
        };
        let ratio = growth / MAX_SIZE as f64;
        let verdict = if name.ends_with("_64mb") {
            if ratio <= 1.25 {
                "  met (<= 1.25)"
            } else {
                "  MISSED (> 1.25)"
            }
        } else {
            ""
        };
        println!(
            "{:<82} {:>10} {:>9} {:>8.0} {:>10.0} {:>9.2}{verdict}",
            what,
            mib(growth as u64),
            held,
            growth / held.max(1.0),
            ns,
            ratio,
        );
    }
    let out = Command::new(&exe)
        .env("CACHET_MEMORY_SCENARIO", "sweep")
        .output()
        .expect("child process");
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        [ns, left] => println!(
            "sweep (quick_cache): one set after {SWEPT} entries expired took {:.2} ms \
             (it sweeps them); {left} expired entries still readable",
            ns.parse::<f64>().unwrap_or(f64::NAN) / 1e6
        ),
        _ => println!(
            "sweep: no result: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}
