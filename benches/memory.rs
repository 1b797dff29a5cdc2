//! Memory bound: 1,000,000 distinct keys into a store bounded by `max_size = "64mb"`;
//! prints the process's resident memory growth next to the bound.
//!
//! `cargo bench --bench memory` (a plain program: `harness = false`).

use std::time::Instant;

use futures_util::FutureExt;

const KEYS: u64 = 1_000_000;
const MAX_SIZE: u64 = 64 << 20;
/// x86_64 Linux pages.
const PAGE: u64 = 4096;

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

/// Peak resident bytes (`VmHWM` of `/proc/self/status`).
fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn main() {
    let manager = cachet::CacheManager::from_toml_str(
        "default_store = \"m\"\n[stores.m]\nl1 = { driver = \"memory\", max_size = \"64mb\" }",
    )
    .expect("config");
    cachet::init(manager).expect("the global manager is set once");
    let cache = cachet::cache("mem").expect("cache");
    // A memory write completes on its first poll: no runtime needed.
    if cache.set(&0u64, &0u64).now_or_never().map(|r| r.is_ok()) != Some(true) {
        eprintln!("SKIPPED memory bound: Cache::set fails (is the key encoder in place?)");
        return;
    }
    let stored_key_len = format!("cachet:mem:{}", KEYS / 2).len();

    let before = resident();
    let t0 = Instant::now();
    for i in 0..KEYS {
        cache
            .set(&i, &i)
            .now_or_never()
            .expect("a memory write is ready at once")
            .expect("set");
    }
    let insert_time = t0.elapsed();
    let after_insert = resident();
    // Reading every key both counts what is held and lets the engine finish its pending
    // evictions (moka applies them in batches during reads and writes).
    let mut held = 0u64;
    for i in 0..KEYS {
        if cache.has(&i).now_or_never().expect("ready").expect("has") {
            held += 1;
        }
    }
    let after_reads = resident();
    let growth = after_reads.saturating_sub(before);
    let estimated_weight = stored_key_len as u64 + 8 + 96;

    println!("memory bound: {KEYS} distinct u64 keys -> u64 values, store max_size = \"64mb\"");
    println!(
        "  inserts took               {:.2?} ({:.0} ns/insert)",
        insert_time,
        insert_time.as_nanos() as f64 / KEYS as f64
    );
    println!("  resident before            {}", mib(before));
    println!(
        "  resident after inserts     {}  (growth {})",
        mib(after_insert),
        mib(after_insert.saturating_sub(before))
    );
    println!(
        "  resident after reads       {}  (growth {})",
        mib(after_reads),
        mib(growth)
    );
    println!("  peak resident (VmHWM)      {}", mib(peak()));
    println!("  entries held               {held}");
    println!("  estimated weight / entry   {estimated_weight} B  (key {stored_key_len} + value 8 + overhead 96)");
    println!(
        "  estimated total held       {}",
        mib(held * estimated_weight)
    );
    println!(
        "  resident growth / entry    {:.0} B",
        growth as f64 / held.max(1) as f64
    );
    let ratio = growth as f64 / MAX_SIZE as f64;
    println!(
        "  growth / max_size          {ratio:.2}  (target <= 1.25: {})",
        if ratio <= 1.25 { "met" } else { "MISSED" }
    );
}
